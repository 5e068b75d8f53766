//! Load harness for the participant API.
//!
//! Two modes: `walk` sends simulated participants through the bundled study the way the browser
//! app does (front door, entry, consent, screens, tasks with edit events and runs, questionnaire,
//! completion), each paced to a mean request rate; `ceiling` sends single-event batches as fast as
//! a fixed number of connections allows. Either way the report gives throughput, latency per
//! endpoint kind, errors, the server's CPU time and peak memory (when the harness started it), and
//! a loss audit: what the server acknowledged against what its database holds.
//!
//! `cargo bench -p tests --bench loadtest -- --help` lists the options; docs/loadtest.md explains
//! them and every figure of the report.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

/// The bundled study; the solutions below are for its tasks.
const EXPERIMENT: &str = "correa2025";

/// Published programs for the tutorial levels (in the order they are served) and the practice
/// problem of the bundled study, as docs/api.md §4 submits them.
const TUTORIAL_SOLUTIONS: [&str; 4] = ["S", "WWWWS", "JJJS", "WWLWWS"];
const PRACTICE_SOLUTION: &str = "WJLWJSLWWRJWS";

/// A participant whose step-advancing requests fail this many times in a row gives up, so that a
/// broken server ends the run instead of spinning.
const MAX_STEP_FAILURES: u32 = 3;

/// The API refuses batches larger than this.
const MAX_BATCH: usize = 1000;

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    /// Simulated participants walking the whole study at a human pace.
    Walk,
    /// The event endpoint alone, as fast as the connections allow.
    Ceiling,
}

/// Load test of the participant API (docs/loadtest.md).
#[derive(Debug, Clone, Parser)]
#[command(name = "loadtest")]
struct Args {
    #[arg(long, value_enum, default_value_t = Mode::Walk)]
    mode: Mode,
    /// Base URL of a running server (http://HOST:PORT); without it the harness starts its own.
    #[arg(long)]
    url: Option<String>,
    /// The server's database, read for the loss audit. Required with --url; for a server the
    /// harness starts it defaults to a fresh SQLite file in a temporary folder.
    #[arg(long)]
    database_url: Option<String>,
    /// The proglab binary to start (relative paths are taken from the workspace root).
    #[arg(long, default_value = "target/release/proglab")]
    server_bin: PathBuf,
    /// Start the server with --no-group-commit (each request commits its own transaction). With
    /// --url it only labels the report.
    #[arg(long)]
    no_group_commit: bool,
    /// Pin the server the harness starts to these CPUs (`taskset -c`, e.g. `0`); run the harness
    /// itself under `taskset -c 1` so that client and server do not share a core.
    #[arg(long)]
    server_cpus: Option<String>,
    /// Simulated participants (walk).
    #[arg(long, default_value_t = 100)]
    participants: usize,
    /// Participants start evenly spread over this many seconds (walk).
    #[arg(long, default_value_t = 30.0)]
    ramp_seconds: f64,
    /// Mean requests per second of each participant (walk).
    #[arg(long, default_value_t = 0.63)]
    rate: f64,
    /// Seconds of load; a walk also ends when every participant has finished.
    #[arg(long, default_value_t = 300.0)]
    duration: f64,
    /// Concurrent workers, each with its own session (ceiling).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Event batches sent while solving each main task (walk).
    #[arg(long, default_value_t = 6)]
    event_batches: usize,
    /// Edit events per batch (walk).
    #[arg(long, default_value_t = 5)]
    batch_size: usize,
    /// Runs per main task, the last one with the solving program (walk).
    #[arg(long, default_value_t = 3)]
    runs_per_task: usize,
    /// Seconds before a request counts as failed at the transport level (and is retried).
    #[arg(long, default_value_t = 30.0)]
    request_timeout: f64,
    /// Attempts per request (the first and its retries) before a participant gives up.
    #[arg(long, default_value_t = 5)]
    max_attempts: u32,
    /// Seed of the think times.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Keep the temporary folder (database and server log) of a server the harness started.
    #[arg(long)]
    keep_data: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Walk => "walk",
            Mode::Ceiling => "ceiling",
        }
    }
}

impl Args {
    fn check(&self) -> Result<()> {
        if self.url.is_some() && self.database_url.is_none() {
            bail!("--url needs --database-url: the loss audit reads the server's database");
        }
        if !(self.rate > 0.0 && self.duration > 0.0 && self.request_timeout > 0.0) {
            bail!("--rate, --duration and --request-timeout must be positive");
        }
        if self.ramp_seconds < 0.0 {
            bail!("--ramp-seconds must not be negative");
        }
        if self.participants == 0 || self.connections == 0 || self.max_attempts == 0 {
            bail!("--participants, --connections and --max-attempts must be at least 1");
        }
        if self.runs_per_task == 0 {
            bail!("--runs-per-task must be at least 1: the last run is the solving program");
        }
        if !(1..=MAX_BATCH).contains(&self.batch_size) {
            bail!("--batch-size must be from 1 to {MAX_BATCH}");
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Study content
// ---------------------------------------------------------------------------------------------

/// A solving program for every task of the bundled study.
struct Solutions {
    /// One per main task, indexed by the task's `task_index` (`mdp_idx` in the published data).
    tasks: Vec<String>,
}

impl Solutions {
    /// Reads the published programs: for each task the first row in file order that was not a
    /// skip (participant 0's where they solved it), whose raw `program` solves the task.
    fn load() -> Result<Solutions> {
        let path = workspace_root().join("analysis/data/programs-dev.csv");
        let mut reader = csv::Reader::from_path(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let headers = reader.headers()?.clone();
        let column = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .with_context(|| format!("{} has no column {name}", path.display()))
        };
        let (task, skipped, program) = (column("mdp_idx")?, column("skipped")?, column("program")?);
        let mut tasks: BTreeMap<usize, String> = BTreeMap::new();
        for record in reader.records() {
            let record = record?;
            if &record[skipped] == "True" {
                continue;
            }
            let index: usize = record[task].parse().context("mdp_idx")?;
            tasks
                .entry(index)
                .or_insert_with(|| record[program].to_owned());
        }
        let count = tasks.len();
        if tasks.keys().copied().ne(0..count) {
            bail!("{} lacks a solved program for some task", path.display());
        }
        Ok(Solutions {
            tasks: tasks.into_values().collect(),
        })
    }
}

/// What a participant does on one main task, in order (always ending with the solving run and the
/// submit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// A batch of edit events.
    Edits,
    /// A run of the unfinished program.
    DraftRun,
    SolvingRun,
    Submit,
}

/// Spreads the draft runs evenly among the event batches, as someone who edits, tries, and edits
/// again would.
fn main_task_plan(batches: usize, runs: usize) -> Vec<Action> {
    let drafts = runs.saturating_sub(1);
    let mut plan = Vec::new();
    let mut placed = 0;
    for batch in 0..batches {
        plan.push(Action::Edits);
        let due = (batch + 1) * drafts / batches;
        while placed < due {
            plan.push(Action::DraftRun);
            placed += 1;
        }
    }
    plan.extend(std::iter::repeat_n(Action::DraftRun, drafts - placed));
    plan.extend([Action::SolvingRun, Action::Submit]);
    plan
}

/// The program as typed so far: the first `fraction` of the solution's characters.
fn draft(solution: &str, fraction: f64) -> String {
    let length = (solution.chars().count() as f64 * fraction).ceil() as usize;
    solution.chars().take(length.max(1)).collect()
}

/// A draft that always parses: its primitive instructions only (a prefix may call a subroutine
/// that is not written yet, which the server refuses with 400).
fn runnable_draft(solution: &str, fraction: f64) -> String {
    let primitives: String = draft(solution, fraction)
        .chars()
        .filter(|c| "SJWRL".contains(*c))
        .collect();
    if primitives.is_empty() {
        "W".to_owned()
    } else {
        primitives
    }
}

// ---------------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------------

/// Endpoint kinds, as the report groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Entry,
    Step,
    Events,
    Run,
    Submit,
    Finish,
    Page,
    /// `GET /api/v1/session`, only after a refused step (the harness's way to find where it is).
    Resync,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::Entry,
        Kind::Step,
        Kind::Events,
        Kind::Run,
        Kind::Submit,
        Kind::Finish,
        Kind::Page,
        Kind::Resync,
    ];

    fn label(self) -> &'static str {
        match self {
            Kind::Entry => "entry",
            Kind::Step => "consent/continue",
            Kind::Events => "events",
            Kind::Run => "run",
            Kind::Submit => "submit",
            Kind::Finish => "questionnaire/complete",
            Kind::Page => "page",
            Kind::Resync => "session (resync)",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What one endpoint kind saw.
#[derive(Debug, Default)]
struct KindStats {
    /// Time from sending to the whole body received, of every answered request.
    latencies_us: Vec<u64>,
    statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
    retries: u64,
}

/// Each participant records on its own (no locks on the hot path); the recorders are merged at
/// the end.
#[derive(Debug, Default)]
struct Recorder {
    kinds: [KindStats; Kind::ALL.len()],
}

impl Recorder {
    fn answered(&mut self, kind: Kind, status: StatusCode, took: Duration) {
        let stats = &mut self.kinds[kind.index()];
        stats.latencies_us.push(took.as_micros() as u64);
        *stats.statuses.entry(status.as_u16()).or_default() += 1;
    }

    fn transport_error(&mut self, kind: Kind) {
        self.kinds[kind.index()].transport_errors += 1;
    }

    fn retry(&mut self, kind: Kind) {
        self.kinds[kind.index()].retries += 1;
    }

    fn merge(&mut self, other: Recorder) {
        for (mine, theirs) in self.kinds.iter_mut().zip(other.kinds) {
            mine.latencies_us.extend(theirs.latencies_us);
            for (status, count) in theirs.statuses {
                *mine.statuses.entry(status).or_default() += count;
            }
            mine.transport_errors += theirs.transport_errors;
            mine.retries += theirs.retries;
        }
    }
}

/// What the server acknowledged to one session (2xx answers), for the loss audit.
#[derive(Debug, Default)]
struct Ledger {
    session_id: String,
    events: BTreeSet<i64>,
    runs: BTreeSet<i64>,
    /// Steps whose submit was acknowledged.
    submits: BTreeSet<i64>,
    /// Items an answer called duplicates although this was the request's first attempt: the server
    /// already had them without having said so.
    duplicates_first_attempt: u64,
    /// Items a retry's answer called duplicates: the lost attempt had taken effect (expected).
    duplicates_on_retry: u64,
}

impl Ledger {
    fn note_duplicates(&mut self, count: usize, retried: bool) {
        if retried {
            self.duplicates_on_retry += count as u64;
        } else {
            self.duplicates_first_attempt += count as u64;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/// Why a participant stopped before finishing.
#[derive(Debug)]
enum Halt {
    /// The run's time is up.
    Deadline,
    GaveUp(String),
}

/// One request, as data, so that a retry sends exactly the same thing.
struct Call {
    kind: Kind,
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
    /// Send the session token (every request but entry and the front door).
    authorised: bool,
}

impl Call {
    fn get(kind: Kind, path: impl Into<String>) -> Call {
        Call {
            kind,
            method: Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: None,
            authorised: true,
        }
    }

    fn post(kind: Kind, path: impl Into<String>, body: Option<Value>) -> Call {
        Call {
            method: Method::POST,
            body,
            ..Call::get(kind, path)
        }
    }

    fn anonymous(self) -> Call {
        Call {
            authorised: false,
            ..self
        }
    }
}

struct Answer {
    status: StatusCode,
    /// The JSON body, or `Null` for anything else (the HTML pages).
    body: Value,
    /// Whether an earlier attempt of this request failed at the transport level.
    retried: bool,
}

impl Answer {
    fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    fn describe(&self) -> String {
        format!("{} {}", self.status.as_u16(), self.error_code())
    }
}

/// The HTTP side every simulated participant shares: one connection pool (the API authenticates
/// with a bearer token, so no cookie jar is needed), the retry policy and the deadline.
struct Api {
    http: reqwest::Client,
    base: String,
    max_attempts: u32,
    deadline: Instant,
    /// Answers so far, for the progress line.
    answered: AtomicU64,
}

impl Api {
    /// Sends `call`, again with the same payload after a transport failure (the API treats a
    /// repeated request as a retry), until it is answered or the attempts run out.
    async fn exchange(
        &self,
        call: &Call,
        token: &str,
        recorder: &mut Recorder,
    ) -> Result<Answer, Halt> {
        let mut attempt = 0;
        loop {
            let started = Instant::now();
            match self.send(call, token).await {
                Ok((status, text)) => {
                    recorder.answered(call.kind, status, started.elapsed());
                    self.answered.fetch_add(1, Ordering::Relaxed);
                    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
                    return Ok(Answer {
                        status,
                        body,
                        retried: attempt > 0,
                    });
                }
                Err(error) => {
                    recorder.transport_error(call.kind);
                    attempt += 1;
                    if attempt >= self.max_attempts {
                        return Err(Halt::GaveUp(format!(
                            "{}: {attempt} transport failures, the last: {error}",
                            call.kind.label()
                        )));
                    }
                    if Instant::now() >= self.deadline {
                        return Err(Halt::Deadline);
                    }
                    recorder.retry(call.kind);
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
    }

    async fn send(&self, call: &Call, token: &str) -> reqwest::Result<(StatusCode, String)> {
        let mut request = self
            .http
            .request(call.method.clone(), format!("{}{}", self.base, call.path));
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        if call.authorised {
            request = request.bearer_auth(token);
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        // Latency includes the body: a participant waits for all of it.
        let text = response.text().await?;
        Ok((status, text))
    }
}

/// Waits between retries: short at first (a dropped keep-alive connection), longer if the server
/// stays unreachable.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100u64 << attempt.min(5)).min(2000))
}

// ---------------------------------------------------------------------------------------------
// Pacing
// ---------------------------------------------------------------------------------------------

/// SplitMix64: small, seedable, and good enough for think times.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    fn exponential(&mut self, mean: f64) -> f64 {
        -mean * self.unit().ln()
    }
}

/// Think times: each request starts an exponentially distributed time after the previous one
/// started, so a participant sends `rate` requests per second on average (as long as answers take
/// less than the think time) and the participants together arrive like a Poisson process.
struct Pacer {
    rng: Rng,
    mean_gap: f64,
    last_start: Option<Instant>,
}

impl Pacer {
    fn new(rate: f64, seed: u64) -> Pacer {
        Pacer {
            rng: Rng(seed),
            mean_gap: 1.0 / rate,
            last_start: None,
        }
    }

    async fn wait(&mut self, deadline: Instant) -> Result<(), Halt> {
        let at = match self.last_start {
            Some(last) => last + Duration::from_secs_f64(self.rng.exponential(self.mean_gap)),
            None => Instant::now(),
        };
        if at >= deadline {
            return Err(Halt::Deadline);
        }
        tokio::time::sleep_until(at.into()).await;
        self.last_start = Some(Instant::now());
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Participants
// ---------------------------------------------------------------------------------------------

/// One simulated participant (or ceiling worker) and the session it holds.
struct Participant {
    api: Arc<Api>,
    /// None in the ceiling mode: no think time.
    pacer: Option<Pacer>,
    recorder: Recorder,
    ledger: Ledger,
    recruiter_id: String,
    token: String,
    /// The last session view the server sent.
    view: Value,
    next_seq: i64,
    next_run: i64,
    /// Events not yet acknowledged; sent again with the next batch, as the browser does.
    pending: Vec<Value>,
    started: Instant,
    tutorials_solved: usize,
    step_failures: u32,
}

/// What a participant hands back when it stops.
struct Outcome {
    recorder: Recorder,
    /// None when it never got a session.
    ledger: Option<Ledger>,
    /// None when it finished.
    halt: Option<Halt>,
}

impl Participant {
    fn new(api: Arc<Api>, pacer: Option<Pacer>, recruiter_id: String) -> Participant {
        Participant {
            api,
            pacer,
            recorder: Recorder::default(),
            ledger: Ledger::default(),
            recruiter_id,
            token: String::new(),
            view: Value::Null,
            next_seq: 1,
            next_run: 1,
            pending: Vec::new(),
            started: Instant::now(),
            tutorials_solved: 0,
            step_failures: 0,
        }
    }

    fn finish(self, result: Result<(), Halt>) -> Outcome {
        let has_session = !self.ledger.session_id.is_empty();
        Outcome {
            recorder: self.recorder,
            ledger: has_session.then_some(self.ledger),
            halt: result.err(),
        }
    }

    /// Paces, then sends.
    async fn call(&mut self, call: Call) -> Result<Answer, Halt> {
        match &mut self.pacer {
            Some(pacer) => pacer.wait(self.api.deadline).await?,
            None if Instant::now() >= self.api.deadline => return Err(Halt::Deadline),
            None => {}
        }
        self.api
            .exchange(&call, &self.token, &mut self.recorder)
            .await
    }

    fn step(&self) -> Result<i64, Halt> {
        self.view["progress"]["step"]
            .as_i64()
            .ok_or_else(|| Halt::GaveUp("a session view without a step".into()))
    }

    fn current(&self, field: &str) -> &str {
        self.view["current"][field].as_str().unwrap_or("")
    }

    /// Keeps the session view an answer carries (at its top level, or under `session`).
    fn adopt_view(&mut self, body: &Value) {
        if body.get("session_id").is_some() {
            self.view = body.clone();
        } else if let Some(session) = body.get("session") {
            self.view = session.clone();
        }
    }

    /// The session's params: a unique Prolific ID so that entries never collide with an earlier
    /// run on the same database.
    fn entry_params(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PROLIFIC_PID", self.recruiter_id.clone()),
            ("STUDY_ID", "loadtest".to_owned()),
            ("SESSION_ID", uuid::Uuid::new_v4().simple().to_string()),
        ]
    }

    /// Enters the study; with `front_door`, first loads the page a recruiter's link opens.
    async fn enter(&mut self, front_door: bool) -> Result<(), Halt> {
        let params = self.entry_params();
        if front_door {
            let mut page = Call::get(Kind::Page, format!("/e/{EXPERIMENT}")).anonymous();
            page.query = params.clone();
            self.call(page).await?;
        }
        let params: BTreeMap<_, _> = params.into_iter().collect();
        let path = format!("/api/v1/experiments/{EXPERIMENT}/sessions");
        let call = Call::post(Kind::Entry, path, Some(json!({ "params": params }))).anonymous();
        let answer = self.call(call).await?;
        // Entry is the one request that cannot be retried blindly: if a lost attempt created the
        // session, the retry is refused as `already_participated` and the token is gone.
        if answer.status != StatusCode::CREATED {
            return Err(Halt::GaveUp(format!("entry: {}", answer.describe())));
        }
        let (Some(token), Some(session_id)) = (
            answer.body["token"].as_str(),
            answer.body["session"]["session_id"].as_str(),
        ) else {
            return Err(Halt::GaveUp("entry: an answer without a token".into()));
        };
        self.token = token.to_owned();
        self.ledger.session_id = session_id.to_owned();
        self.started = Instant::now();
        self.view = answer.body["session"].clone();
        Ok(())
    }

    /// Sends a request meant to move the session on. A refusal is answered like a person reloading
    /// the page: look where the session is and go on from there, up to a limit.
    async fn advance(&mut self, call: Call) -> Result<Answer, Halt> {
        let kind = call.kind;
        let answer = self.call(call).await?;
        if answer.status.is_success() {
            self.step_failures = 0;
            self.adopt_view(&answer.body);
            return Ok(answer);
        }
        self.step_failures += 1;
        if self.step_failures >= MAX_STEP_FAILURES {
            return Err(Halt::GaveUp(format!(
                "{}: {} refusals in a row, the last: {}",
                kind.label(),
                self.step_failures,
                answer.describe()
            )));
        }
        let resync = self
            .call(Call::get(Kind::Resync, "/api/v1/session"))
            .await?;
        if resync.status.is_success() {
            self.adopt_view(&resync.body);
        }
        Ok(answer)
    }

    async fn consent(&mut self) -> Result<(), Halt> {
        let body = json!({ "agree": true });
        self.advance(Call::post(
            Kind::Step,
            "/api/v1/session/consent",
            Some(body),
        ))
        .await?;
        Ok(())
    }

    async fn continue_screen(&mut self, step: i64) -> Result<(), Halt> {
        let path = format!("/api/v1/session/steps/{step}/continue");
        self.advance(Call::post(Kind::Step, path, None)).await?;
        Ok(())
    }

    /// The study page the browser loads after every step (`/e/{slug}/study`, HTML).
    async fn load_page(&mut self) -> Result<(), Halt> {
        self.call(Call::get(Kind::Page, format!("/e/{EXPERIMENT}/study")))
            .await?;
        Ok(())
    }

    /// Numbers new events and sends them with any still unacknowledged.
    async fn send_events(&mut self, fresh: Vec<(String, Value)>, step: i64) -> Result<(), Halt> {
        for (kind, data) in fresh {
            let t = self.started.elapsed().as_millis() as i64;
            let seq = self.next_seq;
            self.next_seq += 1;
            self.pending
                .push(json!({ "seq": seq, "type": kind, "step": step, "t": t, "data": data }));
        }
        self.flush_events().await
    }

    /// One events request with what is pending; a refused batch stays pending.
    async fn flush_events(&mut self) -> Result<(), Halt> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch: Vec<Value> = self.pending.iter().take(MAX_BATCH).cloned().collect();
        let body = json!({ "events": batch });
        let answer = self
            .call(Call::post(
                Kind::Events,
                "/api/v1/session/events",
                Some(body),
            ))
            .await?;
        if !answer.status.is_success() {
            return Ok(());
        }
        let numbers = |field: &str| -> Vec<i64> {
            answer.body[field]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|item| item.as_i64().or_else(|| item["seq"].as_i64()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (stored, duplicates, refused) =
            (numbers("stored"), numbers("duplicates"), numbers("refused"));
        self.ledger
            .note_duplicates(duplicates.len(), answer.retried);
        self.ledger.events.extend(&stored);
        let settled: BTreeSet<i64> = stored.into_iter().chain(refused).collect();
        self.pending.retain(|event| {
            !event["seq"]
                .as_i64()
                .is_some_and(|seq| settled.contains(&seq))
        });
        Ok(())
    }

    async fn run(&mut self, step: i64, program: &str) -> Result<(), Halt> {
        let run = self.next_run;
        self.next_run += 1;
        let body = json!({ "run": run, "program": program, "mode": "run" });
        let path = format!("/api/v1/session/steps/{step}/runs");
        let answer = self.call(Call::post(Kind::Run, path, Some(body))).await?;
        if answer.status.is_success() {
            self.ledger.runs.insert(run);
            if answer.body["duplicate"] == true {
                self.ledger.note_duplicates(1, answer.retried);
            }
        }
        Ok(())
    }

    async fn submit(&mut self, step: i64, program: &str) -> Result<(), Halt> {
        let path = format!("/api/v1/session/steps/{step}/submit");
        let call = Call::post(Kind::Submit, path, Some(json!({ "program": program })));
        let answer = self.advance(call).await?;
        if answer.status.is_success() {
            self.ledger.submits.insert(step);
            if answer.body["duplicate"] == true {
                self.ledger.note_duplicates(1, answer.retried);
            }
        }
        Ok(())
    }

    /// A tutorial level or the practice problem: run the published solution, then submit it.
    async fn warm_up_task(&mut self, step: i64, program: &str) -> Result<(), Halt> {
        self.run(step, program).await?;
        self.submit(step, program).await
    }

    /// A main task: edits in batches with draft runs between them, then the solution.
    async fn main_task(&mut self, step: i64, solution: &str, script: &Script) -> Result<(), Halt> {
        let batches = script.event_batches().max(1) as f64;
        let mut batches_sent = 0;
        for action in &script.main_task {
            let typed = batches_sent as f64 / batches;
            match action {
                Action::Edits => {
                    let events = (1..=script.batch_size)
                        .map(|i| {
                            let typed = typed + i as f64 / script.batch_size as f64 / batches;
                            let data = json!({ "program": draft(solution, typed) });
                            ("edit".to_owned(), data)
                        })
                        .collect();
                    self.send_events(events, step).await?;
                    batches_sent += 1;
                }
                Action::DraftRun => self.run(step, &runnable_draft(solution, typed)).await?,
                Action::SolvingRun => self.run(step, solution).await?,
                Action::Submit => self.submit(step, solution).await?,
            }
        }
        Ok(())
    }

    async fn task(&mut self, step: i64, script: &Script) -> Result<(), Halt> {
        let trial = &self.view["current"]["trial"];
        let phase = trial["phase"].as_str().unwrap_or("").to_owned();
        let task_index = trial["task_index"].as_u64();
        match phase.as_str() {
            "tutorial" => {
                let program = TUTORIAL_SOLUTIONS
                    .get(self.tutorials_solved)
                    .ok_or_else(|| Halt::GaveUp("more tutorial levels than solutions".into()))?;
                self.warm_up_task(step, program).await?;
                if self.step()? != step {
                    self.tutorials_solved += 1;
                }
            }
            "practice" => self.warm_up_task(step, PRACTICE_SOLUTION).await?,
            "tasks" => {
                let solution = task_index
                    .and_then(|index| script.solutions.tasks.get(index as usize))
                    .ok_or_else(|| Halt::GaveUp(format!("no solution for task {task_index:?}")))?
                    .clone();
                self.main_task(step, &solution, script).await?;
            }
            other => return Err(Halt::GaveUp(format!("a task in phase `{other}`"))),
        }
        Ok(())
    }

    async fn questionnaire(&mut self) -> Result<(), Halt> {
        let answers = json!({
            "programming_exp": "None",
            "programming_game_exp": "No",
            "strategy": "I looked for repeated patterns.",
        });
        let body = json!({ "answers": answers });
        let call = Call::post(Kind::Finish, "/api/v1/session/questionnaire", Some(body));
        self.advance(call).await?;
        Ok(())
    }

    /// Completion names the last event number, so the server refuses it while any acknowledged
    /// event is missing: one more check against loss.
    async fn complete(&mut self) -> Result<(), Halt> {
        self.flush_events().await?;
        let body = json!({ "events_through": self.next_seq - 1 });
        let call = Call::post(Kind::Finish, "/api/v1/session/complete", Some(body));
        self.advance(call).await?;
        Ok(())
    }

    /// The whole study, as the browser app walks it: a page load for every step, then the step's
    /// requests.
    async fn walk(&mut self, script: &Script) -> Result<(), Halt> {
        self.enter(true).await?;
        loop {
            self.load_page().await?;
            if self.view["status"] == "completed" {
                return Ok(());
            }
            let step = self.step()?;
            match self.current("kind") {
                "consent" => self.consent().await?,
                "screen" => self.continue_screen(step).await?,
                "task" => self.task(step, script).await?,
                "questionnaire" => self.questionnaire().await?,
                "complete" => self.complete().await?,
                "done" => return Ok(()),
                other => return Err(Halt::GaveUp(format!("an unknown step kind `{other}`"))),
            }
        }
    }

    /// The ceiling worker: one session, then single-event batches back to back until the
    /// deadline.
    async fn hammer(&mut self) -> Result<(), Halt> {
        self.enter(false).await?;
        self.consent().await?;
        let step = self.step()?;
        loop {
            let event = ("click".to_owned(), json!({ "target": "run" }));
            self.send_events(vec![event], step).await?;
        }
    }
}

/// How every participant of a walk behaves.
struct Script {
    solutions: Solutions,
    main_task: Vec<Action>,
    batch_size: usize,
}

impl Script {
    fn new(args: &Args) -> Result<Script> {
        Ok(Script {
            solutions: Solutions::load()?,
            main_task: main_task_plan(args.event_batches, args.runs_per_task),
            batch_size: args.batch_size,
        })
    }

    fn event_batches(&self) -> usize {
        self.main_task
            .iter()
            .filter(|action| **action == Action::Edits)
            .count()
    }
}

// ---------------------------------------------------------------------------------------------
// The load
// ---------------------------------------------------------------------------------------------

/// Everything the participants saw, merged.
struct Load {
    recorder: Recorder,
    ledgers: Vec<Ledger>,
    started: usize,
    finished: usize,
    stopped_at_deadline: usize,
    gave_up: BTreeMap<String, usize>,
    /// From the first participant's start to the last answer.
    window: Duration,
}

async fn run_load(args: &Args, api: Arc<Api>, script: Option<Arc<Script>>) -> Load {
    let began = Instant::now();
    // Recruiter IDs unique to this run, so a rerun against the same database is not refused.
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let mut handles = Vec::new();
    match script {
        Some(script) => {
            for i in 0..args.participants {
                let delay = args.ramp_seconds * i as f64 / args.participants as f64;
                let seed = args
                    .seed
                    .wrapping_add((i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
                let pacer = Pacer::new(args.rate, seed);
                let mut participant =
                    Participant::new(api.clone(), Some(pacer), format!("lt-{run_id}-{i}"));
                let script = script.clone();
                handles.push(tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs_f64(delay)).await;
                    let result = participant.walk(&script).await;
                    participant.finish(result)
                }));
            }
        }
        None => {
            for i in 0..args.connections {
                let mut worker = Participant::new(api.clone(), None, format!("lc-{run_id}-{i}"));
                handles.push(tokio::spawn(async move {
                    let result = worker.hammer().await;
                    worker.finish(result)
                }));
            }
        }
    }
    let progress = tokio::spawn(report_progress(api.clone(), began));
    let mut load = Load {
        recorder: Recorder::default(),
        ledgers: Vec::new(),
        started: handles.len(),
        finished: 0,
        stopped_at_deadline: 0,
        gave_up: BTreeMap::new(),
        window: Duration::ZERO,
    };
    for handle in handles {
        match handle.await {
            Ok(outcome) => load.add(outcome),
            Err(error) => {
                *load
                    .gave_up
                    .entry(format!("task failed: {error}"))
                    .or_default() += 1
            }
        }
    }
    load.window = began.elapsed();
    progress.abort();
    load
}

impl Load {
    fn add(&mut self, outcome: Outcome) {
        self.recorder.merge(outcome.recorder);
        self.ledgers.extend(outcome.ledger);
        match outcome.halt {
            None => self.finished += 1,
            Some(Halt::Deadline) => self.stopped_at_deadline += 1,
            Some(Halt::GaveUp(why)) => *self.gave_up.entry(why).or_default() += 1,
        }
    }
}

/// A line on stderr every 10 s, so a long run shows it is alive.
async fn report_progress(api: Arc<Api>, began: Instant) {
    let mut ticks = tokio::time::interval(Duration::from_secs(10));
    ticks.tick().await;
    let mut before = 0;
    loop {
        ticks.tick().await;
        let now = api.answered.load(Ordering::Relaxed);
        eprintln!(
            "loadtest: {:>5.0} s  {now} answers ({:.1}/s over the last 10 s)",
            began.elapsed().as_secs_f64(),
            (now - before) as f64 / 10.0
        );
        before = now;
    }
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// A temporary folder for the database and the server's log, removed at the end unless kept.
struct Scratch {
    path: PathBuf,
    keep: bool,
}

impl Scratch {
    fn new(keep: bool) -> Result<Scratch> {
        let name = format!("proglab-loadtest-{}", uuid::Uuid::new_v4().simple());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Scratch { path, keep })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("loadtest: kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The `proglab serve` child process.
struct ServerProcess {
    child: Child,
    base: String,
    log: PathBuf,
    clock_ticks: f64,
}

impl ServerProcess {
    /// Starts the server on a free port (`--listen 127.0.0.1:0`) and learns the port from the line
    /// it prints once it listens.
    async fn start(
        binary: &Path,
        database_url: &str,
        group_commit: bool,
        cpus: Option<&str>,
        log: &Path,
    ) -> Result<ServerProcess> {
        if !binary.is_file() {
            bail!(
                "no server binary at {} (build it with `cargo build --release -p server --bin proglab`, or pass --server-bin)",
                binary.display()
            );
        }
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        // `taskset` execs the server, so the child's pid is the server's.
        let mut command = match cpus {
            Some(cpus) => {
                let mut command = Command::new("taskset");
                command.args(["-c", cpus]).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command
            .args(["serve", "--database-url", database_url])
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file);
        if !group_commit {
            command.arg("--no-group-commit");
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let (address_tx, address_rx) = tokio::sync::oneshot::channel();
        // Reads the address, then keeps draining stdout so the server never blocks on it.
        std::thread::spawn(move || {
            let mut address_tx = Some(address_tx);
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Some((_, address)) = line.split_once("listening on ") else {
                    continue;
                };
                if let Some(tx) = address_tx.take() {
                    let _ = tx.send(address.trim().to_owned());
                }
            }
        });
        let mut server = ServerProcess {
            child,
            base: String::new(),
            log: log.to_owned(),
            clock_ticks: clock_ticks(),
        };
        match tokio::time::timeout(Duration::from_secs(120), address_rx).await {
            Ok(Ok(address)) => server.base = address,
            _ => bail!(
                "the server did not start listening; its log ends with:\n{}",
                server.log_tail()
            ),
        }
        Ok(server)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// User plus system CPU time so far (/proc/PID/stat fields 14 and 15, in clock ticks).
    fn cpu_seconds(&self) -> Result<f64> {
        let path = format!("/proc/{}/stat", self.pid());
        let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        // The command name (field 2) may hold spaces; the fields after it are plain numbers.
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |index: usize| -> Result<f64> {
            let field = fields.get(index).with_context(|| format!("short {path}"))?;
            Ok(field.parse::<u64>()? as f64)
        };
        // `fields[0]` is field 3 (state), so utime and stime are at 11 and 12.
        Ok((ticks(11)? + ticks(12)?) / self.clock_ticks)
    }

    /// Peak resident memory (VmHWM) in KiB.
    fn peak_rss_kib(&self) -> Result<u64> {
        let path = format!("/proc/{}/status", self.pid());
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let line = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .with_context(|| format!("no VmHWM in {path}"))?;
        let kib = line.trim().trim_end_matches("kB").trim();
        Ok(kib.parse()?)
    }

    /// Stops the server as an operator would (SIGTERM, so that it finishes what it holds), and
    /// kills it if it takes too long.
    fn stop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(20) {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Clock ticks per second for /proc times (`getconf CLK_TCK`; 100 on every usual Linux).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The server under test: one the harness started, or one given by --url.
struct Target {
    base: String,
    database_url: String,
    server: Option<ServerProcess>,
    /// Declared after `server`, so the folder outlives the process that writes into it.
    _scratch: Option<Scratch>,
}

impl Target {
    async fn prepare(args: &Args) -> Result<Target> {
        let target = match &args.url {
            Some(url) => Target {
                base: url.trim_end_matches('/').to_owned(),
                database_url: args
                    .database_url
                    .clone()
                    .context("--url needs --database-url")?,
                server: None,
                _scratch: None,
            },
            None => {
                let scratch = Scratch::new(args.keep_data)?;
                let database_url = args.database_url.clone().unwrap_or_else(|| {
                    format!("sqlite://{}", scratch.path.join("proglab.db").display())
                });
                let binary = workspace_root().join(&args.server_bin);
                let log = scratch.path.join("server.log");
                let server = ServerProcess::start(
                    &binary,
                    &database_url,
                    !args.no_group_commit,
                    args.server_cpus.as_deref(),
                    &log,
                )
                .await?;
                Target {
                    base: server.base.clone(),
                    database_url,
                    server: Some(server),
                    _scratch: Some(scratch),
                }
            }
        };
        Ok(target)
    }

    /// Waits until the server answers its health check; returns the database it reports.
    async fn wait_healthy(&self, http: &reqwest::Client) -> Result<String> {
        let url = format!("{}/api/v1/health", self.base);
        let asked = Instant::now();
        loop {
            let answer = http.get(&url).send().await.ok();
            if let Some(response) = answer.filter(|r| r.status().is_success()) {
                let body: Value = response.json().await.unwrap_or(Value::Null);
                return Ok(body["database"].as_str().unwrap_or("unknown").to_owned());
            }
            if asked.elapsed() > Duration::from_secs(60) {
                bail!("{url} did not answer 200 within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The loss audit
// ---------------------------------------------------------------------------------------------

/// A read-only look at the server's database (the `sqlx` `any` driver is not enabled in this
/// workspace, hence one variant per backend).
enum Database {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Database {
    async fn connect(url: &str) -> Result<Database> {
        if url.starts_with("sqlite:") {
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await
                .context("cannot open the SQLite database for the audit")?;
            Ok(Database::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect(url)
                .await
                .context("cannot connect to Postgres for the audit")?;
            Ok(Database::Postgres(pool))
        } else {
            bail!("--database-url must start with sqlite: or postgres:");
        }
    }

    /// One integer column of the rows of one session (`$1` is the session ID; both backends read
    /// `$1`).
    async fn numbers(&self, sql: &str, session_id: &str) -> Result<Vec<i64>> {
        let rows = match self {
            Database::Sqlite(pool) => {
                sqlx::query_scalar(sql)
                    .bind(session_id)
                    .fetch_all(pool)
                    .await?
            }
            Database::Postgres(pool) => {
                sqlx::query_scalar(sql)
                    .bind(session_id)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows)
    }

    async fn close(self) {
        match self {
            Database::Sqlite(pool) => pool.close().await,
            Database::Postgres(pool) => pool.close().await,
        }
    }
}

/// Acknowledged against stored, for one kind of record.
#[derive(Debug, Default, Serialize)]
struct Tally {
    acknowledged: u64,
    stored: u64,
    /// Acknowledged, yet not in the database: lost.
    missing: u64,
    /// Rows beyond the first for one key.
    duplicates: u64,
    /// Stored though the client never saw an acknowledgement (a request cut off, an answer lost):
    /// not a loss.
    stored_unacknowledged: u64,
}

impl Tally {
    fn add(&mut self, acknowledged: &BTreeSet<i64>, rows: &[i64]) {
        let stored: BTreeSet<i64> = rows.iter().copied().collect();
        self.acknowledged += acknowledged.len() as u64;
        self.stored += rows.len() as u64;
        self.duplicates += (rows.len() - stored.len()) as u64;
        self.missing += acknowledged.difference(&stored).count() as u64;
        self.stored_unacknowledged += stored.difference(acknowledged).count() as u64;
    }
}

#[derive(Debug, Default, Serialize)]
struct Audit {
    sessions: Tally,
    events: Tally,
    runs: Tally,
    submits: Tally,
    duplicates_acknowledged_on_first_attempt: u64,
    duplicates_acknowledged_on_retry: u64,
}

impl Audit {
    fn clean(&self) -> bool {
        [&self.sessions, &self.events, &self.runs, &self.submits]
            .iter()
            .all(|tally| tally.missing == 0 && tally.duplicates == 0)
    }
}

/// Reads back, session by session (the primary keys make each query an index range), what the
/// harness's sessions left in the database.
async fn audit(database: &Database, ledgers: &[Ledger]) -> Result<Audit> {
    const SESSION: &str = "SELECT COUNT(*) FROM sessions WHERE id = $1";
    const EVENTS: &str = "SELECT seq FROM events WHERE session_id = $1";
    const RUNS: &str = "SELECT seq FROM runs WHERE session_id = $1";
    const SUBMITS: &str = "SELECT CAST(step AS BIGINT) FROM trials \
                           WHERE session_id = $1 AND outcome = 'submitted'";
    let mut audit = Audit::default();
    for ledger in ledgers {
        let id = ledger.session_id.as_str();
        // A session is one key (0 here) acknowledged by its entry, stored as many times as it has
        // rows.
        let rows = database.numbers(SESSION, id).await?;
        let session_rows = vec![0; rows.first().copied().unwrap_or(0).max(0) as usize];
        audit.sessions.add(&BTreeSet::from([0]), &session_rows);
        audit
            .events
            .add(&ledger.events, &database.numbers(EVENTS, id).await?);
        audit
            .runs
            .add(&ledger.runs, &database.numbers(RUNS, id).await?);
        audit
            .submits
            .add(&ledger.submits, &database.numbers(SUBMITS, id).await?);
        audit.duplicates_acknowledged_on_first_attempt += ledger.duplicates_first_attempt;
        audit.duplicates_acknowledged_on_retry += ledger.duplicates_on_retry;
    }
    Ok(audit)
}

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct Settings {
    mode: Mode,
    participants: usize,
    ramp_seconds: f64,
    rate_per_participant: f64,
    connections: usize,
    duration_seconds: f64,
    event_batches_per_task: usize,
    events_per_batch: usize,
    runs_per_task: usize,
    seed: u64,
    target: String,
    server_started_by_harness: bool,
    backend: String,
    group_commit: String,
}

#[derive(Debug, Serialize)]
struct Latency {
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

impl Latency {
    /// Exact percentiles (nearest rank) of every answered request, in milliseconds.
    fn of(latencies_us: &[u64]) -> Option<Latency> {
        let mut sorted = latencies_us.to_vec();
        sorted.sort_unstable();
        let rank = |p: f64| {
            let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[index] as f64 / 1000.0
        };
        let max = *sorted.last()? as f64 / 1000.0;
        Some(Latency {
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            max,
        })
    }
}

#[derive(Debug, Serialize)]
struct KindReport {
    kind: &'static str,
    /// Answered requests plus transport failures (each attempt counts).
    requests: u64,
    /// Fraction of all requests.
    share: f64,
    ok: u64,
    errors_by_status: BTreeMap<u16, u64>,
    transport_errors: u64,
    retries: u64,
    latency_ms: Option<Latency>,
}

#[derive(Debug, Serialize)]
struct ServerReport {
    pid: u32,
    cpu_seconds: f64,
    /// CPU seconds per second of the window: 1.0 is one core busy all the time.
    cpu_utilisation: f64,
    peak_rss_kib: u64,
}

#[derive(Debug, Serialize)]
struct ParticipantsReport {
    started: usize,
    finished: usize,
    stopped_at_deadline: usize,
    gave_up: BTreeMap<String, usize>,
}

#[derive(Debug, Serialize)]
struct Report {
    settings: Settings,
    window_seconds: f64,
    requests: u64,
    answered: u64,
    /// Answered requests per second of the window.
    requests_per_second: f64,
    kinds: Vec<KindReport>,
    transport_errors: u64,
    retries: u64,
    participants: ParticipantsReport,
    server: Option<ServerReport>,
    audit: Audit,
    audit_clean: bool,
}

impl Report {
    fn new(settings: Settings, load: Load, server: Option<ServerReport>, audit: Audit) -> Report {
        let stats = &load.recorder.kinds;
        let total: u64 = stats
            .iter()
            .map(|s| s.latencies_us.len() as u64 + s.transport_errors)
            .sum();
        let answered: u64 = stats.iter().map(|s| s.latencies_us.len() as u64).sum();
        let kinds = Kind::ALL
            .iter()
            .zip(stats)
            .filter_map(|(kind, stats)| {
                let requests = stats.latencies_us.len() as u64 + stats.transport_errors;
                (requests > 0).then(|| kind_report(*kind, stats, requests, total))
            })
            .collect();
        let window = load.window.as_secs_f64();
        Report {
            settings,
            window_seconds: window,
            requests: total,
            answered,
            requests_per_second: answered as f64 / window.max(1e-9),
            kinds,
            transport_errors: stats.iter().map(|s| s.transport_errors).sum(),
            retries: stats.iter().map(|s| s.retries).sum(),
            participants: ParticipantsReport {
                started: load.started,
                finished: load.finished,
                stopped_at_deadline: load.stopped_at_deadline,
                gave_up: load.gave_up,
            },
            server,
            audit_clean: audit.clean(),
            audit,
        }
    }
}

fn kind_report(kind: Kind, stats: &KindStats, requests: u64, total: u64) -> KindReport {
    let is_ok = |status: u16| (200..300).contains(&status);
    KindReport {
        kind: kind.label(),
        requests,
        share: requests as f64 / total.max(1) as f64,
        ok: stats
            .statuses
            .iter()
            .filter(|(status, _)| is_ok(**status))
            .map(|(_, count)| count)
            .sum(),
        errors_by_status: stats
            .statuses
            .iter()
            .filter(|(status, _)| !is_ok(**status))
            .map(|(status, count)| (*status, *count))
            .collect(),
        transport_errors: stats.transport_errors,
        retries: stats.retries,
        latency_ms: Latency::of(&stats.latencies_us),
    }
}

/// The report as text; every `writeln!` into a String cannot fail, hence the ignored results.
fn render_text(report: &Report) -> String {
    let mut out = String::new();
    render_settings(&mut out, &report.settings);
    render_traffic(&mut out, report);
    if let Some(server) = &report.server {
        let _ = writeln!(
            out,
            "\nServer (pid {}): {:.2} CPU s over {:.1} s = {:.1}% of one core; peak RSS (VmHWM) {:.1} MiB",
            server.pid,
            server.cpu_seconds,
            report.window_seconds,
            server.cpu_utilisation * 100.0,
            server.peak_rss_kib as f64 / 1024.0
        );
    }
    render_audit(&mut out, &report.audit, report.audit_clean);
    out
}

fn render_settings(out: &mut String, s: &Settings) {
    let _ = writeln!(out, "proglab load test");
    let _ = writeln!(out, "  mode          {}", s.mode.label());
    match s.mode {
        Mode::Walk => {
            let _ = writeln!(
                out,
                "  participants  {} (started over {} s), {} requests/s each on average",
                s.participants, s.ramp_seconds, s.rate_per_participant
            );
            let _ = writeln!(
                out,
                "  per task      {} event batches of {} edits, {} runs, 1 submit",
                s.event_batches_per_task, s.events_per_batch, s.runs_per_task
            );
        }
        Mode::Ceiling => {
            let _ = writeln!(
                out,
                "  connections   {} (single-event batches, no think time)",
                s.connections
            );
        }
    }
    let _ = writeln!(out, "  duration      {} s at most", s.duration_seconds);
    let _ = writeln!(out, "  target        {}", s.target);
    let _ = writeln!(out, "  backend       {}", s.backend);
    let _ = writeln!(out, "  group commit  {}", s.group_commit);
    let _ = writeln!(out, "  seed          {}", s.seed);
}

fn render_traffic(out: &mut String, report: &Report) {
    let p = &report.participants;
    let _ = writeln!(
        out,
        "\n{:.1} requests/s ({} answered in {:.1} s); transport errors {}, retries {}",
        report.requests_per_second,
        report.answered,
        report.window_seconds,
        report.transport_errors,
        report.retries
    );
    let _ = writeln!(
        out,
        "{}: {} started, {} finished, {} stopped at the deadline, {} gave up",
        if report.settings.mode == Mode::Walk {
            "Participants"
        } else {
            "Workers"
        },
        p.started,
        p.finished,
        p.stopped_at_deadline,
        p.gave_up.values().sum::<usize>()
    );
    for (why, count) in &p.gave_up {
        let _ = writeln!(out, "  gave up ({count}): {why}");
    }
    let mix: Vec<String> = report
        .kinds
        .iter()
        .map(|k| format!("{} {:.1}%", k.kind, k.share * 100.0))
        .collect();
    let _ = writeln!(out, "Request mix: {}", mix.join(", "));
    let _ = writeln!(
        out,
        "\n{:<22} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7}  errors",
        "kind", "requests", "2xx", "p50 ms", "p95 ms", "p99 ms", "max ms", "transport", "retries"
    );
    for k in &report.kinds {
        let (p50, p95, p99, max) = k
            .latency_ms
            .as_ref()
            .map_or((0.0, 0.0, 0.0, 0.0), |l| (l.p50, l.p95, l.p99, l.max));
        let errors: Vec<String> = k
            .errors_by_status
            .iter()
            .map(|(status, count)| format!("{status}x{count}"))
            .collect();
        let _ = writeln!(
            out,
            "{:<22} {:>8} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9} {:>7}  {}",
            k.kind,
            k.requests,
            k.ok,
            p50,
            p95,
            p99,
            max,
            k.transport_errors,
            k.retries,
            if errors.is_empty() {
                "-".to_owned()
            } else {
                errors.join(" ")
            }
        );
    }
}

fn render_audit(out: &mut String, audit: &Audit, clean: bool) {
    let _ = writeln!(
        out,
        "\nLoss audit (the harness's sessions, read back from the database): {}",
        if clean {
            "nothing acknowledged is missing, nothing duplicated"
        } else {
            "LOSS OR DUPLICATION FOUND"
        }
    );
    let _ = writeln!(
        out,
        "{:<10} {:>12} {:>10} {:>9} {:>11} {:>22}",
        "", "acknowledged", "stored", "missing", "duplicates", "stored, unacknowledged"
    );
    for (name, tally) in [
        ("sessions", &audit.sessions),
        ("events", &audit.events),
        ("runs", &audit.runs),
        ("submits", &audit.submits),
    ] {
        let _ = writeln!(
            out,
            "{:<10} {:>12} {:>10} {:>9} {:>11} {:>22}",
            name,
            tally.acknowledged,
            tally.stored,
            tally.missing,
            tally.duplicates,
            tally.stored_unacknowledged
        );
    }
    let _ = writeln!(
        out,
        "Answers that called items duplicates: {} on a first attempt, {} on a retry",
        audit.duplicates_acknowledged_on_first_attempt, audit.duplicates_acknowledged_on_retry
    );
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

fn settings(args: &Args, target: &Target, backend: String) -> Settings {
    let group_commit = match (&target.server, args.no_group_commit) {
        (Some(_), false) => "on",
        (Some(_), true) => "off (--no-group-commit)",
        (None, true) => "off, as stated (external server)",
        (None, false) => "not known (external server)",
    };
    let target_text = match &target.server {
        Some(server) => format!(
            "{} (pid {}) at {}, started by the harness{}",
            args.server_bin.display(),
            server.pid(),
            target.base,
            args.server_cpus
                .as_deref()
                .map_or(String::new(), |cpus| format!(", on CPU {cpus}"))
        ),
        None => format!("{} (external)", target.base),
    };
    Settings {
        mode: args.mode,
        participants: args.participants,
        ramp_seconds: args.ramp_seconds,
        rate_per_participant: args.rate,
        connections: args.connections,
        duration_seconds: args.duration,
        event_batches_per_task: args.event_batches,
        events_per_batch: args.batch_size,
        runs_per_task: args.runs_per_task,
        seed: args.seed,
        target: target_text,
        server_started_by_harness: target.server.is_some(),
        backend,
        group_commit: group_commit.to_owned(),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    args.check()?;
    let script = match args.mode {
        Mode::Walk => Some(Arc::new(Script::new(&args)?)),
        Mode::Ceiling => None,
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(args.request_timeout))
        .tcp_nodelay(true)
        .build()?;

    let mut target = Target::prepare(&args).await?;
    let backend = target.wait_healthy(&http).await?;
    let database = Database::connect(&target.database_url).await?;
    let settings = settings(&args, &target, backend);
    eprintln!("loadtest: {} against {}", args.mode.label(), target.base);

    let cpu_before = match &target.server {
        Some(server) => server.cpu_seconds()?,
        None => 0.0,
    };
    let api = Arc::new(Api {
        http,
        base: target.base.clone(),
        max_attempts: args.max_attempts,
        deadline: Instant::now() + Duration::from_secs_f64(args.duration),
        answered: AtomicU64::new(0),
    });
    let load = run_load(&args, api, script).await;
    let server = match &target.server {
        Some(server) => {
            let cpu_seconds = server.cpu_seconds()? - cpu_before;
            Some(ServerReport {
                pid: server.pid(),
                cpu_seconds,
                cpu_utilisation: cpu_seconds / load.window.as_secs_f64(),
                peak_rss_kib: server.peak_rss_kib()?,
            })
        }
        None => None,
    };
    // Audited while the server still runs: an acknowledgement must mean the row is committed.
    let audit = audit(&database, &load.ledgers).await?;
    database.close().await;
    if let Some(server) = &mut target.server {
        server.stop();
    }

    let report = Report::new(settings, load, server, audit);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_text(&report));
    }
    Ok(())
}
