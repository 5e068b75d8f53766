//! Browser tests: headless Chromium, driven over WebDriver (chromedriver and fantoccini), against
//! a real `proglab serve` process (the `proglab-e2e` binary of this package) on a SQLite file,
//! so a test can kill the server and start it again on the same database.
//!
//! Chromium and chromedriver come from Debian's `chromium` and `chromium-driver` packages
//! (`scripts/install-browser.sh`), at /usr/bin/chromium and /usr/bin/chromedriver unless
//! `PROGLAB_CHROMIUM` / `PROGLAB_CHROMEDRIVER` say otherwise. Without them each test prints a
//! notice and passes, unless `PROGLAB_REQUIRE_BROWSER=1` (CI), which makes it fail.
//!
//! Screenshots of every distinct page go to `target/e2e-screenshots/`.

mod cutoff;
mod dashboard_at_scale;
mod entry;
mod full_study;
mod hostile;
mod iso;
mod level_editor;
mod own_study;
mod replay;
mod researcher;
mod tutorial;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Chromium switches for a headless run that talks to nothing but the test's own server.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
];

const WAIT: Duration = Duration::from_secs(20);

/// A scratch folder removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> anyhow::Result<Scratch> {
        let path =
            std::env::temp_dir().join(format!("proglab-{tag}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path)?;
        Ok(Scratch(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package sits in the workspace")
        .to_path_buf()
}

pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        workspace_root().join(target)
    };
    target.join("e2e-screenshots")
}

fn browser_required() -> bool {
    std::env::var("PROGLAB_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

/// Chromium and chromedriver, if both are installed.
fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium = std::env::var_os("PROGLAB_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let driver = std::env::var_os("PROGLAB_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"));
    (chromium.is_file() && driver.is_file()).then_some((chromium, driver))
}

/// The browser binaries, or `None` after a notice when they are missing and not required.
pub fn browser_or_skip(test: &str) -> Option<(PathBuf, PathBuf)> {
    match browser_binaries() {
        Some(found) => Some(found),
        None if browser_required() => panic!(
            "{test}: Chromium or chromedriver is missing and PROGLAB_REQUIRE_BROWSER=1; \
             run scripts/install-browser.sh"
        ),
        None => {
            eprintln!(
                "notice: {test} skipped: no Chromium/chromedriver (run scripts/install-browser.sh, \
                 or set PROGLAB_REQUIRE_BROWSER=1 to make this a failure)"
            );
            None
        }
    }
}

/// A port that was free a moment ago (the server is restarted on the same port, so it cannot be
/// left to the server to choose).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A child process killed when dropped.
struct Guarded(Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `proglab serve` process.
pub struct Server {
    child: Option<Guarded>,
    pub port: u16,
    args: Vec<String>,
}

impl Server {
    /// Starts the server on `port` with the given database and experiment file.
    pub fn start(database_url: &str, experiment: &Path, port: u16) -> anyhow::Result<Server> {
        let args = vec![
            "serve".to_owned(),
            "--database-url".to_owned(),
            database_url.to_owned(),
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--experiment".to_owned(),
            experiment.display().to_string(),
            "--static-dir".to_owned(),
            workspace_root().join("static").display().to_string(),
        ];
        let mut server = Server {
            child: None,
            port,
            args,
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let show_logs = std::env::var("TEST_LOG").is_ok();
        let mut child = Command::new(env!("CARGO_BIN_EXE_proglab-e2e"))
            .args(&self.args)
            .env("RUST_LOG", if show_logs { "info" } else { "warn" })
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if show_logs {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .context("cannot start proglab-e2e")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let guarded = Guarded(child);
        // The server prints its address once it listens; the rest of its output is drained.
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sender = Some(sender);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("listening on")
                    && let Some(sender) = sender.take()
                {
                    let _ = sender.send(line);
                }
            }
        });
        receiver
            .recv_timeout(Duration::from_secs(30))
            .context("the server did not start listening within 30 s")?;
        self.child = Some(guarded);
        Ok(())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Kills the server at once (SIGKILL): nothing is flushed or closed politely.
    pub fn kill(&mut self) {
        self.child = None;
    }

    /// Starts the server again with the same arguments (same port, same database).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() < deadline => {
                    eprintln!("restart failed ({e:#}), trying again");
                    std::thread::sleep(Duration::from_millis(300));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Writes the bundled `correa2025` experiment (with every file it refers to) into `dir`, changed
/// by `change`, and returns the path of the TOML file.
pub fn write_experiment(
    dir: &Path,
    change: impl FnOnce(&mut toml::Table),
) -> anyhow::Result<PathBuf> {
    let source = workspace_root().join("server/experiments");
    for entry in std::fs::read_dir(&source)? {
        let entry = entry?;
        std::fs::copy(entry.path(), dir.join(entry.file_name()))?;
    }
    let path = dir.join("correa2025.toml");
    let mut table: toml::Table = std::fs::read_to_string(&path)?.parse()?;
    change(&mut table);
    std::fs::write(&path, toml::to_string(&table)?)?;
    Ok(path)
}

/// Headless Chromium with its chromedriver.
pub struct Browser {
    client: Option<Client>,
    _driver: Guarded,
    _profile: Scratch,
    shots: PathBuf,
}

/// What the app's page shows now (from `window.proglab.pageState`).
#[derive(Debug, Clone)]
pub struct PageInfo {
    pub page: String,
    pub step: i64,
    pub kind: String,
    pub session_id: String,
    pub phase: Option<String>,
    pub trial: Option<Value>,
}

impl Browser {
    pub async fn start(
        binaries: &(PathBuf, PathBuf),
        width: u32,
        height: u32,
    ) -> anyhow::Result<Browser> {
        Browser::start_as(binaries, width, height, false).await
    }

    /// A browser that emulates a touch phone whose screen is `width` by `height` CSS pixels.
    pub async fn start_phone(
        binaries: &(PathBuf, PathBuf),
        width: u32,
        height: u32,
    ) -> anyhow::Result<Browser> {
        Browser::start_as(binaries, width, height, true).await
    }

    async fn start_as(
        binaries: &(PathBuf, PathBuf),
        width: u32,
        height: u32,
        phone: bool,
    ) -> anyhow::Result<Browser> {
        let (chromium, driver_path) = binaries;
        let port = free_port()?;
        let driver = Guarded(
            Command::new(driver_path)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("cannot start chromedriver")?,
        );
        let webdriver = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let http = reqwest::Client::new();
        loop {
            let ready = http.get(format!("{webdriver}/status")).send().await;
            if let Ok(response) = ready {
                let status: Value = response.json().await.unwrap_or(Value::Null);
                if status["value"]["ready"] == json!(true) {
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not become ready within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = Scratch::new("chromium-profile")?;
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push(format!("--window-size={width},{height}"));
        // The screen as large as the window: a page in fullscreen (the task phase) then keeps
        // the window's size instead of headless Chromium's default 800x600 screen.
        args.push(format!("--screen-info={{{width}x{height}}}"));
        let mut capabilities = Capabilities::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        let mut options = json!({ "binary": chromium, "args": args });
        if phone {
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 3.0, "touch": true },
                "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
            });
        }
        capabilities.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&webdriver)
            .await
            .context("cannot open a WebDriver session")?;
        let shots = screenshot_dir();
        std::fs::create_dir_all(&shots)?;
        Ok(Browser {
            client: Some(client),
            _driver: driver,
            _profile: profile,
            shots,
        })
    }

    pub fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("the session is open until close()")
    }

    /// Ends the WebDriver session (closing Chromium) before chromedriver is killed.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.client()
            .goto(url)
            .await
            .with_context(|| format!("goto {url}"))
    }

    pub async fn js(&self, script: &str) -> anyhow::Result<Value> {
        self.client()
            .execute(script, Vec::new())
            .await
            .with_context(|| format!("script failed: {script}"))
    }

    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let element = self
            .client()
            .find(Locator::Css(css))
            .await
            .with_context(|| format!("no element {css}"))?;
        element
            .click()
            .await
            .with_context(|| format!("cannot click {css}"))
    }

    pub async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let element = self.client().find(Locator::Css(css)).await?;
        element.send_keys(text).await?;
        Ok(())
    }

    /// Opens the bundled study's front door with `query` (`?PROLIFIC_PID=...`) and presses
    /// Start, as a participant arriving from the recruiter does.
    pub async fn start_study(&self, server: &Server, query: &str) -> anyhow::Result<()> {
        self.goto(&server.url(&format!("/e/correa2025{query}")))
            .await?;
        self.wait_for(
            "document.querySelector('#proglab-app button')",
            "the start button",
        )
        .await?;
        self.click("#proglab-app button").await
    }

    /// Polls a JavaScript expression until it is truthy; returns its value.
    pub async fn wait_for(&self, expression: &str, what: &str) -> anyhow::Result<Value> {
        self.wait_for_within(expression, what, WAIT).await
    }

    pub async fn wait_for_within(
        &self,
        expression: &str,
        what: &str,
        limit: Duration,
    ) -> anyhow::Result<Value> {
        let script = format!("try {{ return ({expression}); }} catch (e) {{ return null; }}");
        let deadline = Instant::now() + limit;
        loop {
            // A navigation in progress makes a script fail; that is just "not yet".
            if let Ok(value) = self.client().execute(&script, Vec::new()).await {
                let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                    && value != json!(0)
                    && value != json!("");
                if truthy {
                    return Ok(value);
                }
            }
            if Instant::now() > deadline {
                let url = self
                    .client()
                    .current_url()
                    .await
                    .map(|u| u.to_string())
                    .unwrap_or_default();
                let error = self
                    .js("const e = document.getElementById('page-error'); return e && !e.hidden ? e.textContent : ''")
                    .await
                    .unwrap_or(Value::Null);
                bail!(
                    "timed out waiting for {what} (`{expression}`) at {url}; page error: {error}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The app's current page, once it has started.
    pub async fn page(&self) -> anyhow::Result<PageInfo> {
        let value = self
            .wait_for(
                "(() => { const app = document.getElementById('app');
                  if (!app || app.dataset.ready !== 'true' || !window.proglab) return null;
                  const s = window.proglab.pageState.session;
                  return { page: app.dataset.page, step: s.progress.step, kind: s.current.kind,
                           session_id: s.session_id, phase: s.current.phase || null,
                           trial: s.current.trial || null }; })()",
                "the app to start",
            )
            .await?;
        Ok(PageInfo {
            page: value["page"].as_str().unwrap_or_default().to_owned(),
            step: value["step"].as_i64().unwrap_or(-1),
            kind: value["kind"].as_str().unwrap_or_default().to_owned(),
            session_id: value["session_id"].as_str().unwrap_or_default().to_owned(),
            phase: value["phase"].as_str().map(str::to_owned),
            trial: (!value["trial"].is_null()).then(|| value["trial"].clone()),
        })
    }

    /// Waits for the page of a later step than `step` (after an answer moved the session on).
    pub async fn next_page(&self, step: i64) -> anyhow::Result<PageInfo> {
        self.wait_for(
            &format!(
                "document.getElementById('app') && document.getElementById('app').dataset.ready === 'true'
                 && window.proglab && (window.proglab.pageState.session.progress.step > {step}
                 || window.proglab.pageState.session.status !== 'active')"
            ),
            "the next page",
        )
        .await?;
        self.page().await
    }

    /// Saves a screenshot as `target/e2e-screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        // Let transitions settle so the picture shows the state, not an animation frame.
        tokio::time::sleep(Duration::from_millis(350)).await;
        self.js("window.scrollTo(0, 0)").await?;
        let png = self.client().screenshot().await?;
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// The program in the editor, in compact form.
    pub async fn program(&self) -> anyhow::Result<String> {
        let value = self.js("return window.proglab.editor.program()").await?;
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no program"))
    }

    /// Clicks a program in as a person would: select a list, click palette items. Returns the
    /// number of edits made (one per instruction).
    pub async fn click_program(&self, compact: &str) -> anyhow::Result<usize> {
        let mut edits = 0;
        for (routine, letters) in compact.split('|').enumerate() {
            if letters.is_empty() {
                continue;
            }
            self.click(&format!("#routine-{routine}-name")).await?;
            for letter in letters.chars() {
                self.click(&format!(".palette-item[data-letter=\"{letter}\"]"))
                    .await?;
                edits += 1;
            }
        }
        Ok(edits)
    }

    /// Clicks instructions in, selecting each list before its first instruction.
    pub async fn click_tokens(&self, tokens: &[(usize, char)]) -> anyhow::Result<usize> {
        let mut selected = None;
        for &(routine, letter) in tokens {
            if selected != Some(routine) {
                self.click(&format!("#routine-{routine}-name")).await?;
                selected = Some(routine);
            }
            self.click(&format!(".palette-item[data-letter=\"{letter}\"]"))
                .await?;
        }
        Ok(tokens.len())
    }

    /// The session's last event number and pending events, from the page's storage.
    pub async fn event_counters(&self, session_id: &str) -> anyhow::Result<(i64, usize)> {
        let value = self
            .js(&format!(
                "return [Number(localStorage.getItem('proglab:{session_id}:seq')),
                         JSON.parse(localStorage.getItem('proglab:{session_id}:events') || '[]').length]"
            ))
            .await?;
        Ok((
            value[0].as_i64().unwrap_or(0),
            value[1].as_u64().unwrap_or(0) as usize,
        ))
    }
}

/// A program's instructions as (routine, letter), in the order a person would add them.
pub fn program_tokens(program: &str) -> Vec<(usize, char)> {
    program
        .split('|')
        .enumerate()
        .flat_map(|(routine, letters)| letters.chars().map(move |letter| (routine, letter)))
        .collect()
}

/// Raw programs of the published data (the `program` column), one per task: for each `mdp_idx`,
/// the lowest-numbered participant who did not skip it.
pub fn published_programs() -> anyhow::Result<BTreeMap<i64, String>> {
    let path = workspace_root().join("analysis/data/programs-dev.csv");
    let mut reader =
        csv::Reader::from_path(&path).with_context(|| format!("{}", path.display()))?;
    let mut chosen: BTreeMap<i64, (i64, String)> = BTreeMap::new();
    for row in reader.deserialize::<BTreeMap<String, String>>() {
        let row = row?;
        if row["skipped"] == "True" {
            continue;
        }
        let participant: i64 = row["participant_idx"].parse()?;
        let task: i64 = row["mdp_idx"].parse()?;
        let program = row["program"].clone();
        match chosen.get(&task) {
            Some((p, _)) if *p <= participant => {}
            _ => {
                chosen.insert(task, (participant, program));
            }
        }
    }
    Ok(chosen
        .into_iter()
        .map(|(task, (_, program))| (task, program))
        .collect())
}

/// A shortest flat program for a task under the experiment's light mode (breadth-first search
/// over states), for tutorial and practice levels, which have no published solutions.
pub fn shortest_program(task: &dsl::Task, light: dsl::LightMode) -> anyhow::Result<String> {
    use std::collections::{HashMap, VecDeque};
    let start = task.start_state();
    let mut came_from: HashMap<dsl::State, (dsl::State, char)> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    let mut seen = std::collections::HashSet::from([start]);
    while let Some(state) = queue.pop_front() {
        if task.is_terminal(&state) {
            let mut letters = Vec::new();
            let mut at = state;
            while let Some(&(previous, letter)) = came_from.get(&at) {
                letters.push(letter);
                at = previous;
            }
            letters.reverse();
            return Ok(letters.into_iter().collect());
        }
        for action in dsl::Action::ALL {
            if let Some(next) = state.apply(task, action, light)
                && seen.insert(next)
            {
                came_from.insert(next, (state, action.letter()));
                queue.push_back(next);
            }
        }
    }
    bail!("the task has no solution")
}
