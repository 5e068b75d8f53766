//! Participant clients that retry until acknowledged, keep a ledger of every acknowledgement,
//! and the audit that checks a database against those ledgers: shared by the fault tests and the
//! deployment test (several instances behind a proxy).
//!
//! Each client does what the browser app does around every step (events, runs, the submit), and
//! sends anything not acknowledged again with the same payload. At the end the database must hold
//! every acknowledged event, run and submit exactly once, and nothing no client saw acknowledged.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::domain::{SessionStatus, TrialOutcome};

use super::{Solutions, solutions};

/// How long a client keeps retrying one request before the test fails.
pub(crate) const RETRY_LIMIT: Duration = Duration::from_secs(45);
/// How long the load may go without the acknowledgements a test waits for.
pub(crate) const PROGRESS_LIMIT: Duration = Duration::from_secs(30);

pub(crate) static SOLUTIONS: LazyLock<Solutions> = LazyLock::new(solutions);

// ---------------------------------------------------------------------------------------------
// Clients that retry until acknowledged
// ---------------------------------------------------------------------------------------------

/// Where the clients send their requests. A test that restarts the server elsewhere replaces it,
/// and every client reads it again on its next attempt.
#[derive(Clone)]
pub(crate) struct Target(Arc<RwLock<String>>);

impl Target {
    pub(crate) fn new(base: &str) -> Target {
        Target(Arc::new(RwLock::new(base.to_owned())))
    }

    pub(crate) fn get(&self) -> String {
        self.0.read().unwrap().clone()
    }

    pub(crate) fn set(&self, base: &str) {
        *self.0.write().unwrap() = base.to_owned();
    }
}

/// What the clients met, all together. The assertions compare ledgers with the database; these
/// counts are printed to show what a fault made the server do.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) acknowledged: AtomicU64,
    pub(crate) transport_errors: AtomicU64,
    /// Answers other than 2xx, by status and error code.
    pub(crate) refusals: Mutex<BTreeMap<String, u64>>,
    /// Acknowledgements that said the write was already stored: a retry of a request whose
    /// answer was lost after the server committed it.
    pub(crate) duplicates: AtomicU64,
    /// Every event acknowledged as stored, (session, seq), with when the acknowledgement came:
    /// a test can ask which were acknowledged before a moment (a backup's start).
    pub(crate) acknowledged_events: Mutex<Vec<(String, i64, Instant)>>,
}

impl Tally {
    pub(crate) fn refusals(&self) -> BTreeMap<String, u64> {
        self.refusals.lock().unwrap().clone()
    }

    pub(crate) fn report(&self, test: &str) {
        eprintln!(
            "{test}: {} acknowledged, {} transport errors, refusals {:?}, {} duplicate acknowledgements",
            self.acknowledged.load(Ordering::Relaxed),
            self.transport_errors.load(Ordering::Relaxed),
            self.refusals(),
            self.duplicates.load(Ordering::Relaxed),
        );
    }
}

/// One attempt's outcome: a complete answer, or a transport error (a refused, reset or cut
/// connection, or a body that ended early).
pub(crate) type Attempt = Result<(StatusCode, Value), reqwest::Error>;

/// Whether a refusal may succeed when sent again: a fault on the server (5xx), a timeout, or a
/// write that met a simultaneous change (docs/api.md: "rare; send it again").
pub(crate) fn retryable(status: StatusCode, body: &Value) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || (status == StatusCode::CONFLICT && body["error"]["code"] == "conflict")
}

/// Paces the retries of one request and fails the test when they go on too long.
pub(crate) struct Backoff {
    started: Instant,
    pause: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff {
            started: Instant::now(),
            pause: Duration::from_millis(10),
        }
    }

    /// The pause before the next attempt (a plain future, so that callers stay `Send`).
    pub(crate) fn wait(&mut self, what: &str, last: &dyn std::fmt::Debug) -> tokio::time::Sleep {
        assert!(
            self.started.elapsed() < RETRY_LIMIT,
            "{what} was not acknowledged within {RETRY_LIMIT:?}; last outcome: {last:?}"
        );
        let pause = self.pause;
        self.pause = (pause * 2).min(Duration::from_millis(200));
        tokio::time::sleep(pause)
    }
}

/// The participant API as a client that retries sees it.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) target: Target,
    pub(crate) tally: Arc<Tally>,
}

impl Api {
    /// `reuse_connections: false` opens a connection per request, so that a proxy that decides
    /// per connection decides per request.
    /// An API client on a client of the test's making (its own TLS roots, say).
    pub(crate) fn with_client(http: reqwest::Client, target: Target, tally: Arc<Tally>) -> Api {
        Api {
            http,
            target,
            tally,
        }
    }

    pub(crate) fn new(target: Target, tally: Arc<Tally>, reuse_connections: bool) -> Api {
        let mut http = reqwest::Client::builder().timeout(Duration::from_secs(15));
        if !reuse_connections {
            http = http.pool_max_idle_per_host(0);
        }
        Api {
            http: http.build().expect("an HTTP client"),
            target,
            tally,
        }
    }

    /// Sends one request once. An answer counts only when its body arrived whole: a 2xx whose
    /// body was cut off is a transport error, so the client sends the request again.
    pub(crate) async fn attempt(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Attempt {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.target.get()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let answer = match request.send().await {
            Ok(response) => {
                let status = response.status();
                response.bytes().await.map(|bytes| (status, bytes))
            }
            Err(e) => Err(e),
        };
        match answer {
            Ok((status, bytes)) => {
                let body = serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
                if status.is_success() {
                    self.tally.acknowledged.fetch_add(1, Ordering::Relaxed);
                } else {
                    let key = format!("{} {}", status.as_u16(), body["error"]["code"]);
                    *self.tally.refusals.lock().unwrap().entry(key).or_default() += 1;
                }
                Ok((status, body))
            }
            Err(e) => {
                self.tally.transport_errors.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// POSTs the same payload until the server acknowledges it; any answer that a retry cannot
    /// change (a 4xx other than a conflict) fails the test.
    pub(crate) async fn post(&self, path: &str, token: &str, body: Option<&Value>) -> Value {
        let mut backoff = Backoff::new();
        loop {
            let outcome = self.attempt(Method::POST, path, Some(token), body).await;
            match &outcome {
                Ok((status, answer)) if status.is_success() => return answer.clone(),
                Ok((status, answer)) if !retryable(*status, answer) => {
                    panic!("POST {path} {body:?} was refused for good: {status} {answer}")
                }
                _ => {}
            }
            backoff.wait(&format!("POST {path}"), &outcome).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Participants and their ledgers
// ---------------------------------------------------------------------------------------------

/// What the server acknowledged to one participant.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ledger {
    pub(crate) session_id: String,
    /// Event numbers acknowledged as stored.
    pub(crate) events: Vec<i64>,
    /// Acknowledged runs: (run number, step, program in compact form).
    pub(crate) runs: Vec<(i64, i64, String)>,
    /// Acknowledged submits: (step, program in compact form).
    pub(crate) submits: Vec<(i64, String)>,
    /// The step of the last session view the server sent.
    pub(crate) step: i64,
    pub(crate) completed: bool,
}

/// A participant walking through the bundled study, sending events and runs around every step
/// as the browser app does, and recording every acknowledgement in its ledger.
pub(crate) struct Participant {
    pub(crate) api: Api,
    pub(crate) token: String,
    pub(crate) view: Value,
    pub(crate) ledger: Ledger,
    pub(crate) next_seq: i64,
    pub(crate) next_run: i64,
    pub(crate) tutorials_solved: usize,
}

impl Participant {
    /// Enters the bundled study and consents.
    ///
    /// An entry whose answer was lost cannot be sent again as it was: the server stored the
    /// recruiter ID, so the same one is refused (`already_participated`), and the token was never
    /// seen. Each attempt therefore uses a recruiter ID of its own, as a new participant would;
    /// a lost entry leaves an empty session behind, which the audit allows for.
    pub(crate) async fn enter(api: &Api, recruiter_id: &str) -> Participant {
        let mut backoff = Backoff::new();
        let mut attempt = 0;
        let entered = loop {
            attempt += 1;
            let body = json!({ "params": { "PROLIFIC_PID": format!("{recruiter_id}-{attempt}") } });
            let outcome = api
                .attempt(
                    Method::POST,
                    "/api/v1/experiments/correa2025/sessions",
                    None,
                    Some(&body),
                )
                .await;
            match &outcome {
                Ok((StatusCode::CREATED, entered)) => break entered.clone(),
                Ok((status, answer)) if !retryable(*status, answer) => {
                    panic!("entry was refused for good: {status} {answer}")
                }
                _ => {}
            }
            backoff.wait("entry", &outcome).await;
        };
        let mut participant = Participant {
            api: api.clone(),
            token: entered["token"].as_str().expect("a token").to_owned(),
            view: Value::Null,
            ledger: Ledger {
                session_id: entered["session"]["session_id"]
                    .as_str()
                    .expect("a session ID")
                    .to_owned(),
                ..Ledger::default()
            },
            next_seq: 1,
            next_run: 1,
            tutorials_solved: 0,
        };
        participant.set_view(entered["session"].clone());
        let view = participant
            .post("/api/v1/session/consent", Some(&json!({ "agree": true })))
            .await;
        participant.set_view(view);
        participant
    }

    pub(crate) async fn post(&self, path: &str, body: Option<&Value>) -> Value {
        self.api.post(path, &self.token, body).await
    }

    pub(crate) fn set_view(&mut self, view: Value) {
        self.ledger.step = view["progress"]["step"].as_i64().expect("a step");
        self.view = view;
    }

    pub(crate) fn step(&self) -> i64 {
        self.ledger.step
    }

    pub(crate) fn kind(&self) -> &str {
        self.view["current"]["kind"].as_str().expect("a step kind")
    }

    /// The published solution of the current task.
    pub(crate) fn solution(&self) -> String {
        let trial = &self.view["current"]["trial"];
        match trial["phase"].as_str().expect("a phase") {
            "tutorial" => SOLUTIONS.tutorial[self.tutorials_solved].to_owned(),
            "practice" => SOLUTIONS.practice.to_owned(),
            _ => SOLUTIONS.tasks[trial["task_index"].as_u64().expect("a task index") as usize]
                .clone(),
        }
    }

    /// The next `count` events, each with `data_bytes` of filler in its data.
    pub(crate) fn event_batch(&mut self, count: i64, data_bytes: usize) -> Value {
        let step = self.step();
        let events: Vec<Value> = (0..count)
            .map(|i| {
                json!({
                    "seq": self.next_seq + i,
                    "type": "edit",
                    "step": step,
                    "data": { "program": "W", "filler": "x".repeat(data_bytes) },
                })
            })
            .collect();
        self.next_seq += count;
        json!({ "events": events })
    }

    /// Records an acknowledged event batch: every number of the batch is stored.
    pub(crate) fn acknowledge_events(&mut self, batch: &Value, answer: &Value) {
        let sent: Vec<i64> = batch["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["seq"].as_i64().expect("a seq"))
            .collect();
        let stored: Vec<i64> =
            serde_json::from_value(answer["stored"].clone()).expect("stored numbers");
        assert_eq!(
            stored, sent,
            "every event of an acknowledged batch is stored: {answer}"
        );
        let duplicates = answer["duplicates"].as_array().map_or(0, Vec::len);
        self.api
            .tally
            .duplicates
            .fetch_add(duplicates as u64, Ordering::Relaxed);
        let now = Instant::now();
        self.api.tally.acknowledged_events.lock().unwrap().extend(
            stored
                .iter()
                .map(|&seq| (self.ledger.session_id.clone(), seq, now)),
        );
        self.ledger.events.extend(stored);
    }

    pub(crate) async fn send_events(&mut self, count: i64) {
        let batch = self.event_batch(count, 0);
        let answer = self.post("/api/v1/session/events", Some(&batch)).await;
        self.acknowledge_events(&batch, &answer);
    }

    /// The next run of `program` on the current step.
    pub(crate) fn run_request(&mut self, program: &str) -> (String, Value) {
        let path = format!("/api/v1/session/steps/{}/runs", self.step());
        let body = json!({ "run": self.next_run, "program": program });
        self.next_run += 1;
        (path, body)
    }

    pub(crate) fn acknowledge_run(&mut self, body: &Value, answer: &Value) {
        assert_eq!(answer["run"], body["run"], "{answer}");
        if answer["duplicate"] == true {
            self.api.tally.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        let program = answer["program"].as_str().expect("a program").to_owned();
        let run = body["run"].as_i64().expect("a run number");
        self.ledger.runs.push((run, self.step(), program));
    }

    pub(crate) async fn run(&mut self, program: &str) {
        let (path, body) = self.run_request(program);
        let answer = self.post(&path, Some(&body)).await;
        self.acknowledge_run(&body, &answer);
    }

    pub(crate) fn acknowledge_submit(&mut self, answer: &Value) {
        if answer["duplicate"] == true {
            self.api.tally.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        if self.view["current"]["trial"]["phase"] == "tutorial" {
            self.tutorials_solved += 1;
        }
        let program = answer["program"].as_str().expect("a program").to_owned();
        self.ledger.submits.push((self.step(), program));
        self.set_view(answer["session"].clone());
    }

    pub(crate) async fn submit(&mut self, program: &str) {
        let path = format!("/api/v1/session/steps/{}/submit", self.step());
        let answer = self.post(&path, Some(&json!({ "program": program }))).await;
        self.acknowledge_submit(&answer);
    }

    /// Does what the current step asks, with events (and on tasks, `runs_per_task` runs, the last
    /// one the solution) before it; false once the session is completed.
    pub(crate) async fn take_step(&mut self, runs_per_task: usize) -> bool {
        match self.kind() {
            "screen" => {
                self.send_events(2).await;
                let path = format!("/api/v1/session/steps/{}/continue", self.step());
                let view = self.post(&path, None).await;
                self.set_view(view);
            }
            "task" => {
                let solution = self.solution();
                for run in 1..=runs_per_task {
                    self.send_events(3).await;
                    self.run(if run == runs_per_task { &solution } else { "W" })
                        .await;
                }
                self.send_events(1).await;
                self.submit(&solution).await;
            }
            "questionnaire" => {
                self.send_events(1).await;
                let answers = json!({ "answers": {
                    "programming_exp": "None",
                    "programming_game_exp": "No",
                    "strategy": "Look for repeated moves.",
                }});
                let view = self
                    .post("/api/v1/session/questionnaire", Some(&answers))
                    .await;
                self.set_view(view);
            }
            "complete" => {
                // Completion checks that every event up to the last one is stored.
                let body = json!({ "events_through": self.next_seq - 1 });
                let answer = self.post("/api/v1/session/complete", Some(&body)).await;
                assert_eq!(answer["code"], "CORREA2025", "{answer}");
                self.set_view(answer["session"].clone());
                self.ledger.completed = true;
                return false;
            }
            other => panic!("unexpected step kind {other}"),
        }
        true
    }
}

/// Participant clients working concurrently, each entering a new session when it has completed
/// one, until stopped.
pub(crate) struct Load {
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) tally: Arc<Tally>,
    pub(crate) clients: Vec<tokio::task::JoinHandle<Vec<Ledger>>>,
}

impl Load {
    pub(crate) fn start(api: &Api, clients: usize, runs_per_task: usize, name: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..clients)
            .map(|client| {
                let (api, stop) = (api.clone(), stop.clone());
                let name = format!("{name}-{client}");
                tokio::spawn(async move {
                    let mut ledgers = Vec::new();
                    for session in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let mut participant =
                            Participant::enter(&api, &format!("{name}-{session}")).await;
                        while !stop.load(Ordering::Relaxed)
                            && participant.take_step(runs_per_task).await
                        {}
                        ledgers.push(participant.ledger);
                    }
                    ledgers
                })
            })
            .collect();
        Load {
            stop,
            tally: api.tally.clone(),
            clients,
        }
    }

    /// Waits until the clients have had `count` more requests acknowledged, and says how long
    /// that took.
    pub(crate) async fn progress(&self, count: u64) -> Duration {
        let started = Instant::now();
        let goal = self.tally.acknowledged.load(Ordering::Relaxed) + count;
        while self.tally.acknowledged.load(Ordering::Relaxed) < goal {
            assert!(
                started.elapsed() < PROGRESS_LIMIT,
                "the clients had fewer than {count} requests acknowledged in {PROGRESS_LIMIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        started.elapsed()
    }

    /// Stops the clients once each has its current request acknowledged, and returns the
    /// ledgers of all their sessions.
    pub(crate) async fn stop(self) -> Vec<Ledger> {
        self.stop.store(true, Ordering::Relaxed);
        let mut ledgers = Vec::new();
        for client in self.clients {
            ledgers.extend(client.await.expect("a client ran to its end"));
        }
        ledgers
    }
}

// ---------------------------------------------------------------------------------------------
// The audit
// ---------------------------------------------------------------------------------------------

pub(crate) fn sorted<T: Ord + Clone>(items: &[T]) -> Vec<T> {
    let mut items = items.to_vec();
    items.sort();
    items
}

/// Checks the database against the ledgers: each session holds exactly the events, runs and
/// submits its client saw acknowledged, each once, and stands where the client last saw it; and
/// no table holds events or runs that no client saw acknowledged. Returns the row counts.
pub(crate) async fn audit(database_url: &str, ledgers: &[Ledger]) -> server::store::TableCounts {
    let store = server::store::connect(database_url)
        .await
        .expect("open the database")
        .store;
    for ledger in ledgers {
        let id = &ledger.session_id;
        let record = store
            .session_record(id)
            .await
            .expect("every entered session is stored");
        let events: Vec<i64> = record.events.iter().map(|e| e.seq).collect();
        assert_eq!(
            sorted(&events),
            sorted(&ledger.events),
            "session {id}: stored events against acknowledged ones"
        );
        let runs: Vec<(i64, i64, String)> = record
            .runs
            .iter()
            .map(|r| (r.seq, r.step, r.program.clone()))
            .collect();
        assert_eq!(
            sorted(&runs),
            sorted(&ledger.runs),
            "session {id}: stored runs against acknowledged ones"
        );
        let steps: Vec<i64> = record.trials.iter().map(|t| t.step).collect();
        let mut distinct = sorted(&steps);
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            steps.len(),
            "session {id}: one trial per step"
        );
        let finished: Vec<(i64, String)> = record
            .trials
            .iter()
            .filter(|t| t.outcome.is_some())
            .map(|t| {
                assert_eq!(t.outcome, Some(TrialOutcome::Submitted), "session {id}");
                (t.step, t.program.clone().expect("a submitted program"))
            })
            .collect();
        assert_eq!(
            sorted(&finished),
            sorted(&ledger.submits),
            "session {id}: finished trials against acknowledged submits"
        );
        for trial in &record.trials {
            let stored = record.runs.iter().filter(|r| r.step == trial.step).count();
            assert_eq!(
                trial.runs, stored as i64,
                "session {id}: the run counter of step {}",
                trial.step
            );
        }
        assert_eq!(
            record.session.step, ledger.step,
            "session {id}: the step the client last saw"
        );
        assert_eq!(
            record.session.status == SessionStatus::Completed,
            ledger.completed,
            "session {id}: completed exactly when acknowledged"
        );
    }
    let counts = store.table_counts().await.expect("table counts");
    // Sessions whose entry answer was lost are empty: nobody ever had their token.
    let events: usize = ledgers.iter().map(|l| l.events.len()).sum();
    let runs: usize = ledgers.iter().map(|l| l.runs.len()).sum();
    assert_eq!(
        counts.events, events as i64,
        "events nobody saw acknowledged"
    );
    assert_eq!(counts.runs, runs as i64, "runs nobody saw acknowledged");
    assert!(counts.sessions >= ledgers.len() as i64);
    store.close().await;
    counts
}

pub(crate) fn summary(ledgers: &[Ledger]) -> String {
    format!(
        "{} sessions ({} completed), {} events, {} runs, {} submits",
        ledgers.len(),
        ledgers.iter().filter(|l| l.completed).count(),
        ledgers.iter().map(|l| l.events.len()).sum::<usize>(),
        ledgers.iter().map(|l| l.runs.len()).sum::<usize>(),
        ledgers.iter().map(|l| l.submits.len()).sum::<usize>(),
    )
}
