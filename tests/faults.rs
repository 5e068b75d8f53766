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
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::json;
use sqlx::Connection;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::clients::{Api, Load, Participant, Tally, Target, audit, summary};
use crate::support::{Backend, ServerProcess, TempDir, TestDb};

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
