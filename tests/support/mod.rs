//! Test helpers: a fresh database per test on either backend, a server on a free port, and a
//! participant client with one method per endpoint.
//!
//! Postgres: `PROGLAB_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`) names
//! a database to connect to; each test creates its own UUID-named database there and drops it at
//! the end. Without a reachable server the Postgres cases print a notice and return, unless
//! `PROGLAB_REQUIRE_POSTGRES=1` (set by `.ci/run`), which turns the skip into a failure.
//! `TEST_LOG=1` shows the server's logs.

#![allow(dead_code)] // Each test module uses a different part of the helpers.

pub mod clients;
mod server_process;
pub mod signed_in;
pub mod simulate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use server::config::Config;
use server::experiment::Experiment;
use server::startup::App;
use server::store::Store;
use sqlx::Connection;

pub use server_process::ServerProcess;

/// Runs a `proglab` subcommand (this package's binary) to completion, with `stdin` as its input;
/// an error carries its stderr. `DATABASE_URL` is not passed on: the arguments name the database.
pub fn proglab(args: &[&str], stdin: Option<&str>) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_proglab-e2e"))
        .args(args)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(text.as_bytes())?;
    }
    drop(child.stdin.take());
    let output = child.wait_with_output()?;
    anyhow::ensure!(
        output.status.success(),
        "proglab {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn postgres_base_url() -> String {
    std::env::var("PROGLAB_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn postgres_required() -> bool {
    std::env::var("PROGLAB_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// A scratch folder removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let path =
            std::env::temp_dir().join(format!("proglab-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("create a temporary folder");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A database for one test: a SQLite file in a scratch folder, or a fresh Postgres database that
/// is dropped with this value.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    postgres_name: Option<String>,
    _dir: Option<TempDir>,
}

impl TestDb {
    /// Another handle on the same database, for a second server instance; dropping it leaves
    /// the database to this one.
    pub fn shared(&self) -> TestDb {
        TestDb {
            backend: self.backend,
            url: self.url.clone(),
            postgres_name: None,
            _dir: None,
        }
    }

    /// `None` when the backend is Postgres and no server is reachable (and it is not required).
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = TempDir::new();
                let url = format!("sqlite://{}", dir.path().join("proglab.db").display());
                Some(TestDb {
                    backend,
                    url,
                    postgres_name: None,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let base = postgres_base_url();
                let connected = tokio::time::timeout(
                    Duration::from_secs(5),
                    sqlx::PgConnection::connect(&base),
                )
                .await;
                let mut connection = match connected {
                    Ok(Ok(connection)) => connection,
                    Ok(Err(e)) => return postgres_unavailable(&base, &e.to_string()),
                    Err(_) => return postgres_unavailable(&base, "timed out"),
                };
                let name = format!("proglab_test_{}", uuid::Uuid::new_v4().simple());
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut connection)
                    .await
                    .expect("create a test database");
                let _ = connection.close().await;
                let url = replace_database(&base, &name);
                Some(TestDb {
                    backend,
                    url,
                    postgres_name: Some(name),
                    _dir: None,
                })
            }
        }
    }
}

fn postgres_unavailable(base: &str, why: &str) -> Option<TestDb> {
    if postgres_required() {
        panic!("PROGLAB_REQUIRE_POSTGRES=1 but Postgres at {base} is not reachable: {why}");
    }
    eprintln!(
        "NOTICE: skipping a Postgres test: no server at {base} ({why}); set PROGLAB_REQUIRE_POSTGRES=1 to fail instead"
    );
    None
}

/// `postgres://user@host:port/db?x` with `db` replaced.
fn replace_database(url: &str, name: &str) -> String {
    let (head, query) = url
        .split_once('?')
        .map_or((url, None), |(h, q)| (h, Some(q)));
    let scheme_end = head.find("://").map_or(0, |i| i + 3);
    let base = match head[scheme_end..].find('/') {
        Some(slash) => &head[..scheme_end + slash],
        None => head,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else {
            return;
        };
        let base = postgres_base_url();
        // Drop runs inside a tokio test; a separate thread with its own runtime can block on the
        // cleanup without stalling the test's runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(mut connection) = sqlx::PgConnection::connect(&base).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut connection)
                        .await;
                    let _ = connection.close().await;
                }
            });
        })
        .join();
    }
}

pub fn init_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        server::telemetry::init();
    }
}

/// A server running in this process on a free port.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub db: TestDb,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub fn test_config(db: &TestDb) -> Config {
    Config {
        database_url: db.url.clone().into(),
        listen: "127.0.0.1:0".into(),
        static_dir: None,
        ..Config::default()
    }
}

/// The bundled experiments, served from a fresh database.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(
        backend,
        server::experiment::bundled().expect("bundled experiments"),
        |_| {},
    )
    .await
}

pub async fn spawn_app_with(
    backend: Backend,
    experiments: Vec<Experiment>,
    configure: impl FnOnce(&mut Config),
) -> Option<TestApp> {
    init_logs();
    let db = TestDb::new(backend).await?;
    Some(start_app(db, experiments, configure).await)
}

/// Starts a server on an existing database.
pub async fn start_app(
    db: TestDb,
    experiments: Vec<Experiment>,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = test_config(&db);
    configure(&mut config);
    let app = App::build_with(config, experiments)
        .await
        .expect("the server starts");
    let base = format!("http://{}", app.address());
    let store = app.store();
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp {
        base,
        client: reqwest::Client::new(),
        store,
        db,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

impl TestApp {
    /// Stops the server gracefully and hands back its database.
    pub async fn stop(mut self) -> TestDb {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran");
        }
        let backend = self.db.backend;
        std::mem::replace(
            &mut self.db,
            TestDb {
                backend,
                url: String::new(),
                postgres_name: None,
                _dir: None,
            },
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Enters the bundled study (or `slug`) with these URL parameters and returns a participant.
    pub async fn enter(&self, slug: &str, params: &[(&str, &str)]) -> Participant {
        let (status, body) = self.enter_raw(slug, params, None).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let token = body["token"]
            .as_str()
            .expect("a new session has a token")
            .to_owned();
        Participant {
            base: self.base.clone(),
            client: self.client.clone(),
            token,
            last: body["session"].clone(),
        }
    }

    /// `POST /api/v1/experiments/{slug}/sessions`, optionally with a token.
    pub async fn enter_raw(
        &self,
        slug: &str,
        params: &[(&str, &str)],
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let params: BTreeMap<&str, &str> = params.iter().copied().collect();
        let mut request = self
            .client
            .post(self.url(&format!("/api/v1/experiments/{slug}/sessions")))
            .json(&json!({ "params": params }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        into_parts(request.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        into_parts(
            self.client
                .get(self.url(path))
                .send()
                .await
                .expect("request"),
        )
        .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

pub async fn into_parts(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("response body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// A participant's side of the API, authenticated with the bearer token.
pub struct Participant {
    pub base: String,
    pub client: reqwest::Client,
    pub token: String,
    /// The last session view the server sent.
    pub last: Value,
}

impl Participant {
    pub async fn get_session(&mut self) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("{}/api/v1/session", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        let (status, body) = into_parts(response).await;
        if status.is_success() {
            self.last = body.clone();
        }
        (status, body)
    }

    pub async fn post(&mut self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let (status, body) = into_parts(request.send().await.expect("request")).await;
        if status.is_success() {
            if body.get("session_id").is_some() {
                self.last = body.clone();
            } else if let Some(session) = body.get("session") {
                self.last = session.clone();
            }
        }
        (status, body)
    }

    pub fn step(&self) -> i64 {
        self.last["progress"]["step"]
            .as_i64()
            .expect("a session view has a step")
    }

    pub fn kind(&self) -> &str {
        self.last["current"]["kind"]
            .as_str()
            .expect("a session view has a current kind")
    }

    pub async fn consent(&mut self, agree: bool) -> (StatusCode, Value) {
        self.post("/api/v1/session/consent", Some(json!({ "agree": agree })))
            .await
    }

    pub async fn continue_step(&mut self, step: i64) -> (StatusCode, Value) {
        self.post(&format!("/api/v1/session/steps/{step}/continue"), None)
            .await
    }

    pub async fn run(&mut self, step: i64, run: i64, program: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/session/steps/{step}/runs"),
            Some(json!({ "run": run, "program": program })),
        )
        .await
    }

    pub async fn submit(&mut self, step: i64, program: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/session/steps/{step}/submit"),
            Some(json!({ "program": program })),
        )
        .await
    }

    pub async fn skip(&mut self, step: i64) -> (StatusCode, Value) {
        self.post(&format!("/api/v1/session/steps/{step}/skip"), None)
            .await
    }

    pub async fn events(&mut self, events: Value) -> (StatusCode, Value) {
        self.post("/api/v1/session/events", Some(json!({ "events": events })))
            .await
    }

    pub async fn questionnaire(&mut self, answers: Value) -> (StatusCode, Value) {
        self.post(
            "/api/v1/session/questionnaire",
            Some(json!({ "answers": answers })),
        )
        .await
    }

    pub async fn complete(&mut self, events_through: Option<i64>) -> (StatusCode, Value) {
        let body = events_through.map(|n| json!({ "events_through": n }));
        self.post("/api/v1/session/complete", body).await
    }
}

/// Solutions for every task of the bundled study: the tutorial levels, the practice problem, and
/// for each main task (by `mdp_idx`) a published program from `analysis/data/programs-dev.csv`
/// (raw `program` column, docs/semantics.md §3.2): participant 0's where they did not skip, else
/// the first participant's who solved it.
pub struct Solutions {
    pub tutorial: Vec<&'static str>,
    pub practice: &'static str,
    pub tasks: Vec<String>,
}

pub fn solutions() -> Solutions {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../analysis/data/programs-dev.csv");
    let mut reader = csv::Reader::from_path(&path).expect("read programs-dev.csv");
    let headers = reader.headers().expect("headers").clone();
    let column = |name: &str| headers.iter().position(|h| h == name).expect("column");
    let (participant, mdp, skipped, program) = (
        column("participant_idx"),
        column("mdp_idx"),
        column("skipped"),
        column("program"),
    );
    let mut tasks: Vec<Option<String>> = vec![None; 10];
    for record in reader.records() {
        let record = record.expect("record");
        if &record[skipped] == "True" {
            continue;
        }
        let index: usize = record[mdp].parse().expect("mdp_idx");
        let from_participant_0 = &record[participant] == "0";
        if tasks[index].is_none() || from_participant_0 {
            tasks[index] = Some(record[program].to_owned());
        }
    }
    Solutions {
        tutorial: vec!["S", "WWWWS", "JJJS", "WWLWWS"],
        practice: "WJLWJSLWWRJWS",
        tasks: tasks
            .into_iter()
            .map(|t| t.expect("a solution for every task"))
            .collect(),
    }
}

/// The bundled experiment's definition with some keys changed (for example a short skip delay).
pub fn bundled_with(replacements: &[(&str, &str)]) -> Experiment {
    let mut text = server::experiment::BUNDLED[0].1.to_owned();
    for (from, to) in replacements {
        assert!(
            text.contains(from),
            "the bundled definition has no {from:?}"
        );
        text = text.replacen(from, to, 1);
    }
    let files = server::experiment::EmbeddedFiles(&[(
        "tutorial-levels.json",
        include_str!("../../server/experiments/tutorial-levels.json"),
    )]);
    server::experiment::parse(&text, "test:correa2025.toml", &files)
        .expect("a valid variant of the bundled experiment")
}
