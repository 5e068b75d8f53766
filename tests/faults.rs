//! Faults around the real `proglab serve` process: SIGKILL under load, a Postgres restart under
//! load, a full disk under SQLite, and connections cut in the middle of requests and responses.
//!
//! Every test drives participant clients that keep a ledger of what the server acknowledged (a
//! complete 2xx answer) and retry anything else with the same payload, as the browser app does.
//! At the end the database is checked against the ledgers: every acknowledged event, run and
//! submit is stored exactly once, and nothing is stored that no client saw acknowledged.
//! The counts of statuses and transport errors the clients met are printed (`--nocapture`) so a
//! run shows what each fault made the server do; the assertions never depend on timings.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};
use server::domain::{SessionStatus, TrialOutcome};
use sqlx::Connection;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{Backend, ServerProcess, Solutions, TempDir, TestDb, solutions};

/// How long a client keeps retrying one request before the test fails.
const RETRY_LIMIT: Duration = Duration::from_secs(45);
/// How long the load may go without the acknowledgements a test waits for.
const PROGRESS_LIMIT: Duration = Duration::from_secs(30);

static SOLUTIONS: LazyLock<Solutions> = LazyLock::new(solutions);

// ---------------------------------------------------------------------------------------------
// Clients that retry until acknowledged
// ---------------------------------------------------------------------------------------------

/// Where the clients send their requests. A test that restarts the server elsewhere replaces it,
/// and every client reads it again on its next attempt.
#[derive(Clone)]
struct Target(Arc<RwLock<String>>);

impl Target {
    fn new(base: &str) -> Target {
        Target(Arc::new(RwLock::new(base.to_owned())))
    }

    fn get(&self) -> String {
        self.0.read().unwrap().clone()
    }

    fn set(&self, base: &str) {
        *self.0.write().unwrap() = base.to_owned();
    }
}

/// What the clients met, all together. The assertions compare ledgers with the database; these
/// counts are printed to show what a fault made the server do.
#[derive(Default)]
struct Tally {
    acknowledged: AtomicU64,
    transport_errors: AtomicU64,
    /// Answers other than 2xx, by status and error code.
    refusals: Mutex<BTreeMap<String, u64>>,
    /// Acknowledgements that said the write was already stored: a retry of a request whose
    /// answer was lost after the server committed it.
    duplicates: AtomicU64,
}

impl Tally {
    fn refusals(&self) -> BTreeMap<String, u64> {
        self.refusals.lock().unwrap().clone()
    }

    fn report(&self, test: &str) {
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
type Attempt = Result<(StatusCode, Value), reqwest::Error>;

/// Whether a refusal may succeed when sent again: a fault on the server (5xx), a timeout, or a
/// write that met a simultaneous change (docs/api.md: "rare; send it again").
fn retryable(status: StatusCode, body: &Value) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || (status == StatusCode::CONFLICT && body["error"]["code"] == "conflict")
}

/// Paces the retries of one request and fails the test when they go on too long.
struct Backoff {
    started: Instant,
    pause: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            started: Instant::now(),
            pause: Duration::from_millis(10),
        }
    }

    /// The pause before the next attempt (a plain future, so that callers stay `Send`).
    fn wait(&mut self, what: &str, last: &dyn std::fmt::Debug) -> tokio::time::Sleep {
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
struct Api {
    http: reqwest::Client,
    target: Target,
    tally: Arc<Tally>,
}

impl Api {
    /// `reuse_connections: false` opens a connection per request, so that a proxy that decides
    /// per connection decides per request.
    fn new(target: Target, tally: Arc<Tally>, reuse_connections: bool) -> Api {
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
    async fn attempt(
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
    async fn post(&self, path: &str, token: &str, body: Option<&Value>) -> Value {
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
struct Ledger {
    session_id: String,
    /// Event numbers acknowledged as stored.
    events: Vec<i64>,
    /// Acknowledged runs: (run number, step, program in compact form).
    runs: Vec<(i64, i64, String)>,
    /// Acknowledged submits: (step, program in compact form).
    submits: Vec<(i64, String)>,
    /// The step of the last session view the server sent.
    step: i64,
    completed: bool,
}

/// A participant walking through the bundled study, sending events and runs around every step
/// as the browser app does, and recording every acknowledgement in its ledger.
struct Participant {
    api: Api,
    token: String,
    view: Value,
    ledger: Ledger,
    next_seq: i64,
    next_run: i64,
    tutorials_solved: usize,
}

impl Participant {
    /// Enters the bundled study and consents.
    ///
    /// An entry whose answer was lost cannot be sent again as it was: the server stored the
    /// recruiter ID, so the same one is refused (`already_participated`), and the token was never
    /// seen. Each attempt therefore uses a recruiter ID of its own, as a new participant would;
    /// a lost entry leaves an empty session behind, which the audit allows for.
    async fn enter(api: &Api, recruiter_id: &str) -> Participant {
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

    async fn post(&self, path: &str, body: Option<&Value>) -> Value {
        self.api.post(path, &self.token, body).await
    }

    fn set_view(&mut self, view: Value) {
        self.ledger.step = view["progress"]["step"].as_i64().expect("a step");
        self.view = view;
    }

    fn step(&self) -> i64 {
        self.ledger.step
    }

    fn kind(&self) -> &str {
        self.view["current"]["kind"].as_str().expect("a step kind")
    }

    /// The published solution of the current task.
    fn solution(&self) -> String {
        let trial = &self.view["current"]["trial"];
        match trial["phase"].as_str().expect("a phase") {
            "tutorial" => SOLUTIONS.tutorial[self.tutorials_solved].to_owned(),
            "practice" => SOLUTIONS.practice.to_owned(),
            _ => SOLUTIONS.tasks[trial["task_index"].as_u64().expect("a task index") as usize]
                .clone(),
        }
    }

    /// The next `count` events, each with `data_bytes` of filler in its data.
    fn event_batch(&mut self, count: i64, data_bytes: usize) -> Value {
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
    fn acknowledge_events(&mut self, batch: &Value, answer: &Value) {
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
        self.ledger.events.extend(stored);
    }

    async fn send_events(&mut self, count: i64) {
        let batch = self.event_batch(count, 0);
        let answer = self.post("/api/v1/session/events", Some(&batch)).await;
        self.acknowledge_events(&batch, &answer);
    }

    /// The next run of `program` on the current step.
    fn run_request(&mut self, program: &str) -> (String, Value) {
        let path = format!("/api/v1/session/steps/{}/runs", self.step());
        let body = json!({ "run": self.next_run, "program": program });
        self.next_run += 1;
        (path, body)
    }

    fn acknowledge_run(&mut self, body: &Value, answer: &Value) {
        assert_eq!(answer["run"], body["run"], "{answer}");
        if answer["duplicate"] == true {
            self.api.tally.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        let program = answer["program"].as_str().expect("a program").to_owned();
        let run = body["run"].as_i64().expect("a run number");
        self.ledger.runs.push((run, self.step(), program));
    }

    async fn run(&mut self, program: &str) {
        let (path, body) = self.run_request(program);
        let answer = self.post(&path, Some(&body)).await;
        self.acknowledge_run(&body, &answer);
    }

    fn acknowledge_submit(&mut self, answer: &Value) {
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

    async fn submit(&mut self, program: &str) {
        let path = format!("/api/v1/session/steps/{}/submit", self.step());
        let answer = self.post(&path, Some(&json!({ "program": program }))).await;
        self.acknowledge_submit(&answer);
    }

    /// Does what the current step asks, with events (and on tasks, `runs_per_task` runs, the last
    /// one the solution) before it; false once the session is completed.
    async fn take_step(&mut self, runs_per_task: usize) -> bool {
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
struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    clients: Vec<tokio::task::JoinHandle<Vec<Ledger>>>,
}

impl Load {
    fn start(api: &Api, clients: usize, runs_per_task: usize, name: &str) -> Load {
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
    async fn progress(&self, count: u64) -> Duration {
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
    async fn stop(self) -> Vec<Ledger> {
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

fn sorted<T: Ord + Clone>(items: &[T]) -> Vec<T> {
    let mut items = items.to_vec();
    items.sort();
    items
}

/// Checks the database against the ledgers: each session holds exactly the events, runs and
/// submits its client saw acknowledged, each once, and stands where the client last saw it; and
/// no table holds events or runs that no client saw acknowledged. Returns the row counts.
async fn audit(database_url: &str, ledgers: &[Ledger]) -> server::store::TableCounts {
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

fn summary(ledgers: &[Ledger]) -> String {
    format!(
        "{} sessions ({} completed), {} events, {} runs, {} submits",
        ledgers.len(),
        ledgers.iter().filter(|l| l.completed).count(),
        ledgers.iter().map(|l| l.events.len()).sum::<usize>(),
        ledgers.iter().map(|l| l.runs.len()).sum::<usize>(),
        ledgers.iter().map(|l| l.submits.len()).sum::<usize>(),
    )
}

// ---------------------------------------------------------------------------------------------
// 1. SIGKILL under load
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_twice_under_load_loses_and_duplicates_nothing(#[case] backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let mut server = ServerProcess::start(&db.url);
    // The successor listens on the same address, so the clients find it by retrying; the target
    // is still set on each restart, as a client that learns a new address would have it.
    let address = server.address().to_owned();
    let tally = Arc::new(Tally::default());
    let target = Target::new(&server.base);
    let load = Load::start(
        &Api::new(target.clone(), tally.clone(), true),
        20,
        2,
        "kill",
    );

    for kill in 1..=2 {
        load.progress(500).await;
        server.kill();
        let killed = Instant::now();
        server = tokio::task::block_in_place(|| ServerProcess::start_with(&db.url, &address, None));
        let listening = killed.elapsed();
        target.set(&server.base);
        let recovered = load.progress(1).await;
        eprintln!(
            "kill {kill}: the successor listened {listening:?} after the kill; the first acknowledgement came {recovered:?} later"
        );
    }
    load.progress(500).await;
    let ledgers = load.stop().await;
    tally.report(&format!("kill -9 ({backend:?})"));

    let counts = audit(&db.url, &ledgers).await;
    eprintln!(
        "kill -9 ({backend:?}): {}; {} sessions in the database",
        summary(&ledgers),
        counts.sessions
    );
    assert!(server.is_running());
}

/// SIGTERM under load: the server stops taking connections, answers what is in flight (client
/// events wait in the group commit's queue for their transaction) and exits by itself; nothing
/// it acknowledged is missing once a successor has served the clients' retries.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_with_sigterm_under_load_drains_what_it_took(#[case] backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let server = ServerProcess::start(&db.url);
    let address = server.address().to_owned();
    let tally = Arc::new(Tally::default());
    let target = Target::new(&server.base);
    let load = Load::start(
        &Api::new(target.clone(), tally.clone(), true),
        20,
        2,
        "term",
    );

    load.progress(300).await;
    let exit = tokio::task::block_in_place(|| server.terminate(Duration::from_secs(30)));
    assert!(
        exit.is_some_and(|status| status.success()),
        "the server exits cleanly on SIGTERM: {exit:?}"
    );
    let server = tokio::task::block_in_place(|| ServerProcess::start_with(&db.url, &address, None));
    target.set(&server.base);
    load.progress(300).await;
    let ledgers = load.stop().await;
    tally.report(&format!("SIGTERM ({backend:?})"));

    let counts = audit(&db.url, &ledgers).await;
    eprintln!(
        "SIGTERM ({backend:?}): {}; {} sessions in the database",
        summary(&ledgers),
        counts.sessions
    );
}

// ---------------------------------------------------------------------------------------------
// 2. A Postgres restart under load
// ---------------------------------------------------------------------------------------------

const POSTGRES_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A private Postgres cluster in a scratch folder, on a port of its own, run as the `postgres`
/// user. Unlike the shared server every other test uses, the test may stop and start it; it is
/// stopped (immediately) and removed when dropped, also when the test fails.
struct PgCluster {
    dir: TempDir,
    port: u16,
}

impl PgCluster {
    fn create() -> PgCluster {
        let dir = TempDir::new();
        checked(
            Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path()),
        );
        // Built before initdb, so that the drop guard stops whatever a failing start left behind.
        let cluster = PgCluster {
            dir,
            port: free_port(),
        };
        let data = cluster.data();
        cluster.as_postgres(
            "initdb",
            &[
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "-D",
                &data,
            ],
        );
        cluster.start();
        cluster
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log").display().to_string();
        self.as_postgres(
            "pg_ctl",
            &[
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
            ],
        );
    }

    fn stop(&self, mode: &str) {
        self.as_postgres(
            "pg_ctl",
            &["stop", "-w", "-t", "60", "-m", mode, "-D", &self.data()],
        );
    }

    /// Runs a Postgres program as the `postgres` user (the tests run as root, which Postgres
    /// refuses), failing the test with its output if it fails.
    fn as_postgres(&self, program: &str, args: &[&str]) -> Output {
        checked(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(format!("{POSTGRES_BIN}/{program}"))
                .args(args)
                .current_dir(self.dir.path()),
        )
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{POSTGRES_BIN}/pg_ctl"))
            .args(["stop", "-w", "-m", "immediate", "-D", &self.data()])
            .current_dir(self.dir.path())
            .output();
    }
}

/// Runs a command to its end; a failure fails the test with the command's output.
fn checked(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_is_survived_without_restarting_the_server() {
    let cluster = tokio::task::block_in_place(PgCluster::create);
    let mut server = tokio::task::block_in_place(|| ServerProcess::start(&cluster.url()));
    let tally = Arc::new(Tally::default());
    let load = Load::start(
        &Api::new(Target::new(&server.base), tally.clone(), true),
        10,
        2,
        "pg-restart",
    );

    load.progress(500).await;
    let stopped = Instant::now();
    tokio::task::block_in_place(|| cluster.stop("fast"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| cluster.start());
    let outage = stopped.elapsed();
    let recovered = load.progress(1).await;
    load.progress(500).await;
    assert!(
        server.is_running(),
        "proglab serve exited when its database restarted"
    );
    let ledgers = load.stop().await;
    tally.report("postgres restart");
    eprintln!(
        "postgres restart: the database was down for {outage:?}; the first acknowledgement came {recovered:?} after it was back; {}",
        summary(&ledgers)
    );
    audit(&cluster.url(), &ledgers).await;
}

// ---------------------------------------------------------------------------------------------
// 3. A full disk under SQLite
// ---------------------------------------------------------------------------------------------

/// A small tmpfs mounted on a folder, unmounted when dropped.
struct TmpfsMount {
    path: PathBuf,
}

impl TmpfsMount {
    /// Mounts a tmpfs of `size` (`mount -o size=...`) on `path`. The test needs it to fill a
    /// disk without filling the machine's, so a failure (not root, no mount permission) fails the
    /// test with the reason.
    fn new(path: PathBuf, size: &str) -> TmpfsMount {
        std::fs::create_dir_all(&path).expect("create the mount point");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("run mount");
        assert!(
            output.status.success(),
            "the full-disk test needs to mount a tmpfs (it runs as root in CI): mount failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        TmpfsMount { path }
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Something still holds a file there: detach it now, it goes when released.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Writes a filler file until the file system refuses more; returns its size.
fn fill_disk(filler: &Path) -> u64 {
    use std::io::Write;
    let mut file = std::fs::File::create(filler).expect("create the filler file");
    let mut written = 0u64;
    for chunk in [256 * 1024, 4096, 1] {
        let block = vec![0xA5u8; chunk];
        while file.write_all(&block).is_ok() {
            written += chunk as u64;
        }
    }
    let _ = file.sync_all();
    written
}

/// `PRAGMA integrity_check` through a connection of its own, read-only.
async fn integrity_check(database: &Path) -> String {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(database)
        .read_only(true);
    let mut connection = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("open the database read-only");
    let (result,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut connection)
        .await
        .expect("run the integrity check");
    let _ = connection.close().await;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_cleanly_and_they_succeed_once_there_is_room() {
    let scratch = TempDir::new();
    let disk = TmpfsMount::new(scratch.path().join("disk"), "8m");
    let database = disk.path.join("proglab.db");
    let log = scratch.path().join("server.log");
    let mut server = ServerProcess::start_with(
        &format!("sqlite://{}", database.display()),
        "127.0.0.1:0",
        Some(&log),
    );
    let tally = Arc::new(Tally::default());
    let api = Api::new(Target::new(&server.base), tally.clone(), true);
    let mut participant = Participant::enter(&api, "disk").await;
    while participant.kind() != "task" {
        participant.take_step(1).await;
    }
    participant.send_events(5).await;
    participant.run("W").await;

    // Act: fill the disk, then write until the server refuses: large event batches, so that the
    // write-ahead log must grow at once.
    let filler = disk.path.join("filler");
    let filled = fill_disk(&filler);
    let mut refused = None;
    for _ in 0..50 {
        let batch = participant.event_batch(3, 60_000);
        let outcome = api
            .attempt(
                Method::POST,
                "/api/v1/session/events",
                Some(&participant.token),
                Some(&batch),
            )
            .await
            .expect("the server answers");
        match outcome {
            (status, answer) if status.is_success() => {
                participant.acknowledge_events(&batch, &answer)
            }
            (status, answer) => {
                refused = Some((status, answer, batch));
                break;
            }
        }
    }
    let (status, answer, refused_batch) =
        refused.expect("with the disk full, an event batch is refused within 50 batches");
    assert!(
        status.is_server_error() && answer["error"]["code"].is_string(),
        "a write on a full disk is answered with a 5xx error: {status} {answer}"
    );
    eprintln!("full disk ({filled} filler bytes): an event batch got {status} {answer}");

    // A run and a submit on the full disk: refused with a 5xx (or, should SQLite find room in
    // its log, acknowledged and accounted for), never anything else.
    let (run_path, run_body) = participant.run_request("W");
    let run_outcome = api
        .attempt(
            Method::POST,
            &run_path,
            Some(&participant.token),
            Some(&run_body),
        )
        .await
        .expect("the server answers");
    match &run_outcome {
        (status, answer) if status.is_success() => participant.acknowledge_run(&run_body, answer),
        (status, answer) => assert!(status.is_server_error(), "{status} {answer}"),
    }
    let submit_path = format!("/api/v1/session/steps/{}/submit", participant.step());
    let submit_body = json!({ "program": participant.solution() });
    let submit_outcome = api
        .attempt(
            Method::POST,
            &submit_path,
            Some(&participant.token),
            Some(&submit_body),
        )
        .await
        .expect("the server answers");
    match &submit_outcome {
        (status, answer) if status.is_success() => participant.acknowledge_submit(answer),
        (status, answer) => assert!(status.is_server_error(), "{status} {answer}"),
    }
    eprintln!(
        "full disk: a run got {}, a submit got {}",
        run_outcome.0, submit_outcome.0
    );

    // Reads still work, the server is up and the database is sound.
    let (status, view) = api
        .attempt(
            Method::GET,
            "/api/v1/session",
            Some(&participant.token),
            None,
        )
        .await
        .expect("the server answers");
    assert_eq!(status, StatusCode::OK, "reading the session: {view}");
    assert_eq!(view["progress"]["step"], participant.step());
    let (status, health) = api
        .attempt(Method::GET, "/api/v1/health", None, None)
        .await
        .expect("the server answers");
    assert_eq!(status, StatusCode::OK, "health: {health}");
    assert!(server.is_running(), "the server exited on a full disk");
    assert_eq!(integrity_check(&database).await, "ok");

    // Free the space: the refused requests, sent again as they were, are acknowledged, and the
    // participant goes on.
    std::fs::remove_file(&filler).expect("remove the filler file");
    let (status, answer) = api
        .attempt(
            Method::POST,
            "/api/v1/session/events",
            Some(&participant.token),
            Some(&refused_batch),
        )
        .await
        .expect("the server answers");
    assert_eq!(
        status,
        StatusCode::OK,
        "with room on the disk again, the first write succeeds: {answer}"
    );
    participant.acknowledge_events(&refused_batch, &answer);
    if !run_outcome.0.is_success() {
        let answer = participant.post(&run_path, Some(&run_body)).await;
        participant.acknowledge_run(&run_body, &answer);
    }
    if !submit_outcome.0.is_success() {
        let answer = participant.post(&submit_path, Some(&submit_body)).await;
        participant.acknowledge_submit(&answer);
    }
    participant.take_step(2).await;
    participant.take_step(2).await;
    tally.report("full disk");

    audit(
        &format!("sqlite://{}", database.display()),
        &[participant.ledger],
    )
    .await;
    assert_eq!(integrity_check(&database).await, "ok");
    assert!(server.is_running(), "the server exited on a full disk");
    server.kill();
    let logs = std::fs::read_to_string(&log).expect("read the server's log");
    assert!(!logs.contains("panicked"), "the server panicked:\n{logs}");
    // The client's answer says nothing of the cause (a 5xx body never does); the log names it.
    assert!(
        logs.contains("database or disk is full"),
        "the server's log names the full disk:\n{logs}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Connections cut mid-request and mid-response
// ---------------------------------------------------------------------------------------------

/// How the proxy treats one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Cut {
    /// Forwards everything both ways.
    None,
    /// Forwards the request's headers and half its body (half its headers when it has no body),
    /// then closes both sides: the server never sees a whole request.
    MidRequest,
    /// Forwards the whole request and the first bytes of the answer's status line and headers,
    /// then closes: the server has answered, so it has committed.
    MidResponseHead,
    /// Forwards the whole request, the answer's headers and half its body: the client sees a
    /// status whose body never completes.
    MidResponseBody,
}

/// Connection after connection, the proxy cycles through these: two in five go through.
const CUTS: [Cut; 5] = [
    Cut::None,
    Cut::MidRequest,
    Cut::MidResponseHead,
    Cut::None,
    Cut::MidResponseBody,
];

/// A TCP proxy in front of the server that cuts connections as [`CUTS`] says.
struct CuttingProxy {
    address: SocketAddr,
    connections: Arc<Mutex<BTreeMap<Cut, u64>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl CuttingProxy {
    async fn start(upstream: SocketAddr) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let address = listener.local_addr().expect("the proxy's address");
        let connections = Arc::new(Mutex::new(BTreeMap::new()));
        let counted = connections.clone();
        let accept = tokio::spawn(async move {
            for n in 0.. {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let cut = CUTS[n % CUTS.len()];
                *counted.lock().unwrap().entry(cut).or_insert(0u64) += 1;
                tokio::spawn(async move {
                    let _ = relay(client, upstream, cut).await;
                });
            }
        });
        CuttingProxy {
            address,
            connections,
            accept,
        }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// The length of an HTTP message's head (through the blank line) and its `Content-Length`, once
/// the head has arrived.
fn message_head(buffer: &[u8]) -> Option<(usize, usize)> {
    let end = buffer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    Some((end, length))
}

/// Reads until `cut` names a length the bytes read reach (or the stream ends), and returns that
/// many bytes.
async fn read_until_cut(
    reader: &mut (impl AsyncRead + Unpin),
    cut: impl Fn(&[u8]) -> Option<usize>,
) -> std::io::Result<Vec<u8>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(at) = cut(&buffer)
            && buffer.len() >= at
        {
            buffer.truncate(at);
            return Ok(buffer);
        }
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Ok(buffer);
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// Carries one connection to the server, cutting it as `cut` says; dropping the sockets at the
/// end closes both sides.
async fn relay(mut client: TcpStream, upstream: SocketAddr, cut: Cut) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    match cut {
        Cut::None => {
            tokio::io::copy_bidirectional(&mut client, &mut server).await?;
        }
        Cut::MidRequest => {
            let partial = read_until_cut(&mut client, |buffer| {
                message_head(buffer).map(
                    |(head, body)| {
                        if body >= 2 { head + body / 2 } else { head / 2 }
                    },
                )
            })
            .await?;
            server.write_all(&partial).await?;
            server.flush().await?;
        }
        Cut::MidResponseHead | Cut::MidResponseBody => {
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let request = tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
            });
            let partial = read_until_cut(&mut server_read, |buffer| {
                if cut == Cut::MidResponseHead {
                    Some(24)
                } else {
                    message_head(buffer).map(|(head, body)| head + body / 2)
                }
            })
            .await;
            request.abort();
            client_write.write_all(&partial?).await?;
            client_write.flush().await?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_cut_mid_request_and_mid_response_lose_and_duplicate_nothing() {
    let db = TestDb::new(Backend::Sqlite)
        .await
        .expect("a SQLite database");
    let server = ServerProcess::start(&db.url);
    let proxy = CuttingProxy::start(server.address().parse().expect("an address")).await;
    let tally = Arc::new(Tally::default());
    // Entries go straight to the server (a lost entry cannot be retried as it was, see
    // `Participant::enter`); everything else goes through the proxy, a connection per request,
    // so that the proxy's cuts fall on requests in turn.
    let direct = Api::new(Target::new(&server.base), tally.clone(), true);
    let cut = Api::new(
        Target::new(&format!("http://{}", proxy.address)),
        tally.clone(),
        false,
    );
    let clients: Vec<_> = (0..6)
        .map(|client| {
            let (direct, cut) = (direct.clone(), cut.clone());
            tokio::spawn(async move {
                let mut participant = Participant::enter(&direct, &format!("cut-{client}")).await;
                participant.api = cut;
                while participant.take_step(2).await {}
                participant.ledger
            })
        })
        .collect();
    let mut ledgers = Vec::new();
    for client in clients {
        ledgers.push(client.await.expect("a client ran to its end"));
    }
    let connections = proxy.connections.lock().unwrap().clone();
    tally.report("cut connections");
    eprintln!("cut connections: {connections:?}; {}", summary(&ledgers));

    for cut in CUTS {
        assert!(connections.get(&cut).is_some_and(|&n| n > 0), "no {cut:?}");
    }
    // Hundreds of answers were cut after the server committed; retries of writes among them
    // were told so.
    assert!(tally.duplicates.load(Ordering::Relaxed) > 0);
    // Cut connections are the clients' problem alone: the server never failed a request.
    let server_errors: Vec<_> = tally
        .refusals()
        .into_iter()
        .filter(|(key, _)| key.starts_with('5'))
        .collect();
    assert!(server_errors.is_empty(), "{server_errors:?}");
    assert!(ledgers.iter().all(|l| l.completed));
    audit(&db.url, &ledgers).await;
}
