//! The deployment a lab copies (docs/deploy.md), started for real: Caddy with `deploy/Caddyfile`
//! (its local CA signing the certificate) in front of two `proglab serve` instances on one
//! Postgres. Fifty participant clients go through the bundled study over HTTPS while each
//! instance is restarted once (SIGTERM, drained); the database must then hold every acknowledged
//! write once, the counterbalancing must be exact, and no client may have lost its session. The
//! instances' `/metrics` must account for the requests the clients sent.
//!
//! Also: two instances started at the same moment on an empty database migrate it once, the
//! systemd unit passes `systemd-analyze verify`, and a SQLite backup taken during load restores
//! and exports with every event acknowledged before it.
//!
//! Caddy comes from Debian's `caddy` package (`.ci/run` installs it); without it the Caddy test
//! prints a notice and passes, unless `PROGLAB_REQUIRE_CADDY=1` (CI).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::support::clients::{Api, Load, Tally, Target, audit, summary};
use crate::support::{Backend, ServerProcess, TempDir, TestDb, proglab};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Caddy's path, or `None` (after a notice) when it is not installed and not required.
fn caddy_or_skip() -> Option<PathBuf> {
    let path = std::env::var_os("PROGLAB_CADDY")
        .map_or_else(|| PathBuf::from("/usr/bin/caddy"), PathBuf::from);
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("PROGLAB_REQUIRE_CADDY").is_ok_and(|v| v == "1") {
        panic!(
            "PROGLAB_REQUIRE_CADDY=1 but Caddy is not at {}",
            path.display()
        );
    }
    eprintln!(
        "NOTICE: skipping the deployment test: no Caddy at {} (apt-get install caddy)",
        path.display()
    );
    None
}

/// A child process killed when dropped.
struct Guarded(Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One `proglab serve` behind the proxy: its public and metrics ports stay the same across
/// restarts, so the proxy finds the successor.
struct Instance {
    port: u16,
    metrics_port: u16,
    experiment: PathBuf,
    database_url: String,
    process: Option<ServerProcess>,
}

impl Instance {
    fn new(database_url: &str, experiment: &Path) -> Instance {
        Instance {
            port: free_port(),
            metrics_port: free_port(),
            experiment: experiment.to_path_buf(),
            database_url: database_url.to_owned(),
            process: None,
        }
    }

    fn start(&mut self) {
        let metrics = format!("127.0.0.1:{}", self.metrics_port);
        let experiment = self.experiment.display().to_string();
        let process = ServerProcess::start_with_args(
            &self.database_url,
            &format!("127.0.0.1:{}", self.port),
            &[
                "--experiment",
                &experiment,
                "--trusted-proxy",
                "127.0.0.1",
                "--hsts",
                "--metrics-listen",
                &metrics,
                "--metrics-linger",
                "10",
                "--shutdown-delay",
                "3",
            ],
            None,
        );
        self.process = Some(process);
    }

    fn upstream(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGTERM, and the last counts of its metrics: scraped once the public listener has closed
    /// (the drain is over), while the metrics listener lingers.
    async fn stop(&mut self) -> BTreeMap<String, f64> {
        let process = self.process.take().expect("a running instance");
        let status = Command::new("kill")
            .args(["-TERM", &process.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the instance did not drain"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let counts = self.scrape().await;
        let exit = tokio::task::block_in_place(|| process.wait_for_exit(Duration::from_secs(30)));
        assert!(
            exit.is_some_and(|e| e.success()),
            "the instance exited with {exit:?}"
        );
        counts
    }

    /// Request counts by route from `/metrics`, every route but the proxy's health checks.
    async fn scrape(&self) -> BTreeMap<String, f64> {
        let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", self.metrics_port))
            .await
            .expect("the metrics listener answers")
            .text()
            .await
            .expect("metrics text");
        request_counts(&text)
    }
}

/// `proglab_http_requests_total` by `method route`, summed over statuses, without the health
/// checks (Caddy's, not the clients').
fn request_counts(text: &str) -> BTreeMap<String, f64> {
    let mut counts = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("proglab_http_requests_total{"))
    {
        let (labels, value) = line.rsplit_once(' ').expect("a sample");
        let label = |name: &str| {
            labels
                .split(&format!("{name}=\"")[..])
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default()
                .to_owned()
        };
        if label("route") == "/api/v1/health" {
            continue;
        }
        *counts
            .entry(format!("{} {}", label("method"), label("route")))
            .or_insert(0.0) += value.parse::<f64>().expect("a number");
    }
    counts
}

/// Rows of two integers.
async fn pairs(connection: &mut sqlx::PgConnection, sql: &str) -> Vec<(i64, i64)> {
    sqlx::query_as(sql)
        .fetch_all(connection)
        .await
        .expect("the query runs")
}

fn total(counts: &[BTreeMap<String, f64>]) -> f64 {
    counts.iter().flat_map(|c| c.values()).sum()
}

/// The bundled study with counterbalanced task orders, in `dir`.
fn balanced_experiment(dir: &Path) -> PathBuf {
    let source = workspace_root().join("server/experiments");
    std::fs::copy(
        source.join("tutorial-levels.json"),
        dir.join("tutorial-levels.json"),
    )
    .unwrap();
    let text = std::fs::read_to_string(source.join("correa2025.toml")).unwrap();
    let text = text.replace("mode = \"fixed\"", "mode = \"balanced\"");
    assert!(text.contains("mode = \"balanced\""));
    let path = dir.join("correa2025.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Caddy with the repository's Caddyfile, its ports, storage and local CA in `dir`.
struct Caddy {
    _child: Guarded,
    https_port: u16,
    root_pem: Vec<u8>,
}

impl Caddy {
    async fn start(caddy: &Path, dir: &Path, upstreams: &[String]) -> Caddy {
        let (http_port, https_port) = (free_port(), free_port());
        let options = format!(
            "admin off\n\thttp_port {http_port}\n\thttps_port {https_port}\n\tlocal_certs\n\tskip_install_trust\n\tstorage file_system {}",
            dir.join("storage").display()
        );
        let log = std::fs::File::create(dir.join("caddy.log")).unwrap();
        let child = Command::new(caddy)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(workspace_root().join("deploy/Caddyfile"))
            .env("PROGLAB_SITE", format!("localhost:{https_port}"))
            .env("PROGLAB_UPSTREAMS", upstreams.join(" "))
            .env("CADDY_OPTIONS", options)
            .env("HOME", dir)
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start caddy");
        let child = Guarded(child);
        let root = dir.join("storage/pki/authorities/local/root.crt");
        let started = Instant::now();
        let root_pem = loop {
            if let Ok(pem) = std::fs::read(&root)
                && !pem.is_empty()
            {
                break pem;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "Caddy made no CA: {}",
                std::fs::read_to_string(dir.join("caddy.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Caddy {
            _child: child,
            https_port,
            root_pem,
        }
    }

    fn base(&self) -> String {
        format!("https://localhost:{}", self.https_port)
    }

    /// A client that trusts Caddy's local CA and nothing else.
    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(&self.root_pem).expect("Caddy's root certificate"),
            )
            .timeout(Duration::from_secs(15))
            .build()
            .expect("an HTTPS client")
    }

    /// Waits until the site answers over HTTPS with a certificate from the local CA.
    async fn wait_ready(&self) {
        let client = self.client();
        let started = Instant::now();
        loop {
            if let Ok(response) = client
                .get(format!("{}/api/v1/live", self.base()))
                .send()
                .await
                && response.status() == StatusCode::OK
            {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "Caddy never served the site"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

/// `name=value` of a cookie set by a response.
fn cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    set_cookies(response).into_iter().find_map(|c| {
        c.strip_prefix(&format!("{name}="))
            .map(|rest| format!("{name}={}", rest.split(';').next().unwrap_or("")))
    })
}

/// Signs in on the instance at `base` (plain HTTP); the answer to the form.
async fn try_sign_in(base: &str, name: &str, password: &str) -> reqwest::Response {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = http
        .get(format!("{base}/researcher/sign-in"))
        .send()
        .await
        .unwrap();
    let csrf_cookie = cookie(&form, "proglab_sign_in_csrf").expect("a sign-in CSRF cookie");
    let csrf = csrf_cookie.split_once('=').unwrap().1.to_owned();
    http.post(format!("{base}/researcher/sign-in"))
        .header(reqwest::header::COOKIE, csrf_cookie)
        .form(&[
            ("username", name),
            ("password", password),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

/// A researcher signed in on one instance works on the other, and sign-in failures on both count
/// together.
async fn researchers_across_instances(a: &str, b: &str, database_url: &str) {
    const PASSWORD: &str = "a long enough passphrase";
    for name in ["ada", "grace"] {
        proglab(
            &[
                "researcher",
                "add",
                name,
                "--password-stdin",
                "--database-url",
                database_url,
            ],
            Some(&format!("{PASSWORD}\n")),
        )
        .expect("an account");
    }
    let signed_in = try_sign_in(a, "ada", PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let session = cookie(&signed_in, "proglab_researcher").expect("a researcher session");
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{b}/researcher/experiments/correa2025"))
        .header(reqwest::header::COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF field")
        .to_owned();
    // A state-changing request with the CSRF token the other instance's session carries.
    let export = http
        .post(format!("{a}/researcher/experiments/correa2025/export"))
        .header(reqwest::header::COOKIE, &session)
        .form(&[("csrf", csrf.as_str()), ("format", "trials-csv")])
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), StatusCode::OK);
    let forged = http
        .post(format!("{b}/researcher/experiments/correa2025/export"))
        .header(reqwest::header::COOKIE, &session)
        .form(&[("csrf", "not-the-token"), ("format", "trials-csv")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // Failures alternate between the instances and are counted together.
    for attempt in 0..5 {
        let base = if attempt % 2 == 0 { a } else { b };
        let response = try_sign_in(base, "grace", "wrong password!").await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }
    assert_eq!(
        try_sign_in(b, "grace", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_in_front_of_two_instances_on_postgres_survives_a_rolling_restart() {
    let Some(caddy) = caddy_or_skip() else {
        return;
    };
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let dir = TempDir::new();
    let experiment = balanced_experiment(dir.path());
    let mut instances = [
        Instance::new(&db.url, &experiment),
        Instance::new(&db.url, &experiment),
    ];

    // Both start at the same moment on the empty database; each migration is applied once.
    {
        let [a, b] = &mut instances;
        tokio::task::block_in_place(|| {
            std::thread::scope(|scope| {
                scope.spawn(|| a.start());
                scope.spawn(|| b.start());
            });
        });
    }
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    let applied = pairs(
        &mut connection,
        "SELECT version, COUNT(*) FROM _sqlx_migrations WHERE success GROUP BY version ORDER BY version",
    )
    .await;
    let files = std::fs::read_dir(workspace_root().join("migrations/postgres"))
        .unwrap()
        .count();
    assert_eq!(applied.len(), files, "{applied:?}");
    assert!(applied.iter().all(|(_, n)| *n == 1), "{applied:?}");

    let upstreams: Vec<String> = instances.iter().map(Instance::upstream).collect();
    let proxy = Caddy::start(&caddy, dir.path(), &upstreams).await;
    proxy.wait_ready().await;
    let https = proxy.client();

    // Cookies are Secure through the proxy, derived from its X-Forwarded-Proto (the instances
    // run without --secure-cookies); the same instance over plain HTTP sets them without.
    let entered = https
        .post(format!(
            "{}/api/v1/experiments/correa2025/sessions",
            proxy.base()
        ))
        .json(&json!({ "params": { "PROLIFIC_PID": "cookie-check" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(entered.status(), StatusCode::CREATED);
    assert_eq!(
        entered.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let cookies = set_cookies(&entered);
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("proglab_session=") && c.contains("; Secure")),
        "{cookies:?}"
    );
    let sign_in = https
        .get(format!("{}/researcher/sign-in", proxy.base()))
        .send()
        .await
        .unwrap();
    assert!(set_cookies(&sign_in).iter().all(|c| c.contains("; Secure")));
    let direct = reqwest::Client::new()
        .post(format!(
            "http://{}/api/v1/experiments/correa2025/sessions",
            instances[0].upstream()
        ))
        .json(&json!({ "params": { "PROLIFIC_PID": "cookie-check-plain" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), StatusCode::CREATED);
    assert!(set_cookies(&direct).iter().all(|c| !c.contains("Secure")));
    assert!(!direct.headers().contains_key("strict-transport-security"));
    // Metrics are not on the public address.
    let public_metrics = https
        .get(format!("{}/metrics", proxy.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(public_metrics.status(), StatusCode::NOT_FOUND);

    // The load, and a rolling restart under it.
    let before = [instances[0].scrape().await, instances[1].scrape().await];
    let tally = Arc::new(Tally::default());
    let api = Api::with_client(https.clone(), Target::new(&proxy.base()), tally.clone());
    let load = Load::start(&api, 50, 1, "deploy");
    let mut scraped = Vec::new();
    for instance in &mut instances {
        load.progress(400).await;
        scraped.push(instance.stop().await);
        tokio::task::block_in_place(|| instance.start());
        // As a rolling restart should: the next instance stops only once the proxy's health
        // check (every 2 s) has seen this one back.
        tokio::time::sleep(Duration::from_secs(3)).await;
        load.progress(50).await;
    }
    load.progress(400).await;
    let ledgers = load.stop().await;
    tally.report("deploy");
    for instance in &instances {
        scraped.push(instance.scrape().await);
    }

    // Every acknowledged write once, nothing else.
    let counts = audit(&db.url, &ledgers).await;
    eprintln!(
        "deploy: {}; {} sessions in the database",
        summary(&ledgers),
        counts.sessions
    );
    assert!(ledgers.iter().filter(|l| l.completed).count() > 0);

    // Counterbalancing stayed exact across the instances: the counters match the sessions, and
    // no condition is more than one ahead.
    let conditions = pairs(
        &mut connection,
        "SELECT condition, COUNT(*) FROM sessions WHERE experiment = 'correa2025' GROUP BY condition ORDER BY condition",
    )
    .await;
    let counters = pairs(
        &mut connection,
        "SELECT condition, assigned FROM assignment_counters WHERE experiment = 'correa2025' AND assigned > 0 ORDER BY condition",
    )
    .await;
    assert_eq!(conditions, counters);
    let sizes: Vec<i64> = conditions.iter().map(|(_, n)| *n).collect();
    assert!(
        sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1 && conditions.len() == 10,
        "{conditions:?}"
    );

    // Researcher sessions, CSRF tokens and sign-in throttling hold across the instances.
    let bases: Vec<String> = instances
        .iter()
        .map(|i| format!("http://{}", i.upstream()))
        .collect();
    researchers_across_instances(&bases[0], &bases[1], &db.url).await;

    // The metrics account for what the clients sent: at least what was acknowledged, at most
    // every attempt.
    let served = total(&scraped) - total(&before);
    let acknowledged = tally.acknowledged.load(Ordering::Relaxed) as f64;
    let refusals: u64 = tally.refusals().values().sum();
    let attempts =
        acknowledged + refusals as f64 + tally.transport_errors.load(Ordering::Relaxed) as f64;
    eprintln!(
        "deploy: metrics counted {served} requests; {acknowledged} acknowledged of {attempts} sent"
    );
    assert!(
        served >= acknowledged && served <= attempts,
        "{served} not in [{acknowledged}, {attempts}]"
    );
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let Ok(status) = Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
    else {
        if std::env::var("PROGLAB_REQUIRE_CADDY").is_ok_and(|v| v == "1") {
            panic!("systemd-analyze is missing");
        }
        eprintln!("NOTICE: skipping: no systemd-analyze (apt-get install systemd)");
        return;
    };
    assert!(status.success());
    let dir = TempDir::new();
    let unit = std::fs::read_to_string(workspace_root().join("deploy/proglab.service")).unwrap();
    // The unit names the installed binary; here the one this test package built stands in.
    let unit = unit.replace("/usr/local/bin/proglab", env!("CARGO_BIN_EXE_proglab-e2e"));
    let path = dir.path().join("proglab.service");
    std::fs::write(&path, unit).unwrap();
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && !stderr.contains("proglab.service"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_backup_taken_under_load_restores_with_every_acknowledged_event() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let server = ServerProcess::start(&db.url);
    let tally = Arc::new(Tally::default());
    let load = Load::start(
        &Api::new(Target::new(&server.base), tally.clone(), true),
        10,
        1,
        "backup",
    );
    load.progress(300).await;

    let dir = TempDir::new();
    let backup = dir.path().join("backup.db");
    let began = Instant::now();
    let backup_path = backup.to_str().expect("a UTF-8 path");
    proglab(
        &["backup", "--database-url", &db.url, "--out", backup_path],
        None,
    )
    .expect("the backup");
    load.progress(100).await;
    let ledgers = load.stop().await;
    let before: Vec<(String, i64)> = tally
        .acknowledged_events
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, at)| *at < began)
        .map(|(session, seq, _)| (session.clone(), *seq))
        .collect();
    assert!(!before.is_empty());
    // The live database holds everything; the restored copy everything acknowledged before.
    audit(&db.url, &ledgers).await;
    let restored = format!("sqlite://{}", dir.path().join("restored.db").display());
    proglab(
        &[
            "restore",
            "--database-url",
            &restored,
            "--from",
            backup_path,
        ],
        None,
    )
    .expect("the restore");
    let store = server::store::connect(&restored).await.unwrap().store;
    let mut by_session: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (session, seq) in &before {
        by_session.entry(session.clone()).or_default().push(*seq);
    }
    for (session, seqs) in &by_session {
        let record = store
            .session_record(session)
            .await
            .expect("the session is in the backup");
        let stored: Vec<i64> = record.events.iter().map(|e| e.seq).collect();
        for seq in seqs {
            assert!(
                stored.contains(seq),
                "session {session}: event {seq} acknowledged before the backup is missing"
            );
        }
    }
    store.close().await;
    // And the export reads it.
    let export = dir.path().join("events.jsonl");
    proglab(
        &[
            "export",
            "--format",
            "events-jsonl",
            "--database-url",
            &restored,
            "--out",
            export.to_str().expect("a UTF-8 path"),
        ],
        None,
    )
    .expect("the export");
    let lines = std::fs::read_to_string(&export).unwrap();
    let events = lines
        .lines()
        .filter(|l| l.contains("\"record\":\"event\""))
        .count();
    assert!(
        events >= before.len(),
        "{events} events exported, {} acknowledged before the backup",
        before.len()
    );
    drop(server);
}
