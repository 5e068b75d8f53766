//! The real `proglab serve` as a child process, for the tests that kill it, restart it or watch it
//! survive faults around it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `proglab serve` child process, killed (SIGKILL) when dropped.
pub struct ServerProcess {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl ServerProcess {
    /// Starts `proglab serve` on a free port and waits until it says where it listens.
    pub fn start(database_url: &str) -> ServerProcess {
        ServerProcess::start_with(database_url, "127.0.0.1:0", None)
    }

    /// Starts `proglab serve` on `listen` (`HOST:PORT`; port 0 picks a free one), its logs
    /// (stderr) written to `log` if given, and waits until it says where it listens.
    pub fn start_with(database_url: &str, listen: &str, log: Option<&Path>) -> ServerProcess {
        ServerProcess::start_with_args(database_url, listen, &[], log)
    }

    /// As [`ServerProcess::start_with`], with more `proglab serve` arguments.
    pub fn start_with_args(
        database_url: &str,
        listen: &str,
        args: &[&str],
        log: Option<&Path>,
    ) -> ServerProcess {
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("create the log file")),
            None if std::env::var("TEST_LOG").is_ok() => Stdio::inherit(),
            None => Stdio::null(),
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_proglab-e2e"))
            .args(["serve", "--database-url", database_url, "--listen", listen])
            .args(args)
            .env_remove("DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start proglab serve");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("proglab: listening on ") {
                    let _ = sender.send(address.to_owned());
                }
            }
        });
        let base = match receiver.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!("proglab serve did not start: {:?}", child.wait());
            }
        };
        ServerProcess { child, base }
    }

    /// `127.0.0.1:PORT`, to start a successor on the same address.
    pub fn address(&self) -> &str {
        self.base
            .strip_prefix("http://")
            .expect("the base is an http:// URL")
    }

    /// Whether the process is still running (it has not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("query the child").is_none()
    }

    /// SIGTERM, then waits (up to `limit`) for the process to exit by itself; `None` if it did
    /// not.
    pub fn terminate(self, limit: Duration) -> Option<std::process::ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        self.wait_for_exit(limit)
    }

    /// Waits (up to `limit`) for the process to exit by itself, after a signal sent elsewhere;
    /// `None` if it did not.
    pub fn wait_for_exit(mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if let Some(exit) = self.child.try_wait().expect("query the child") {
                return Some(exit);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
