//! Frame rate of the board while a long run plays (docs/rendering.md).
//!
//! Starts `proglab serve` (this package's `proglab-e2e`) with the bundled study cut down to task j
//! (correa2025/j, blocks 1 to 8 high), opens the task page in headless Chromium at 1280x800,
//! clicks in a program that never lights anything and so runs the whole 1000-token budget
//! (`1|WJRWJL1|||`: walks, jumps, turns and failed moves), presses Run, and counts the frames
//! `requestAnimationFrame` delivers until the run has been shown to its end. Prints frames per
//! second (mean) and the frame intervals (median, 95th percentile, worst), the 95th percentile as
//! the 5th-percentile frame rate.
//!
//! `cargo bench -p tests --bench render` (add `-- --help` for the options: the view, the pace,
//! the window size).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// A program for task j that runs until the budget is spent: no Light, so it never solves.
const PROGRAM: &str = "1|WJRWJL1|||";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Pace {
    /// The player's own pace: 380 ms per primitive for the first 60 tokens, 152 ms after.
    Normal,
    /// 40 ms per primitive, for a quick look (animations shorten with it).
    Fast,
}

/// Frame rate of the board while a 1000-token run plays on task j.
#[derive(Debug, Parser)]
#[command(name = "render")]
struct Args {
    /// `isometric` or `flat`.
    #[arg(long, default_value = "isometric")]
    view: String,
    #[arg(long, value_enum, default_value_t = Pace::Normal)]
    pace: Pace,
    #[arg(long, default_value_t = 1280)]
    width: u32,
    #[arg(long, default_value_t = 800)]
    height: u32,
    #[arg(long, default_value = "/usr/bin/chromium")]
    chromium: PathBuf,
    #[arg(long, default_value = "/usr/bin/chromedriver")]
    chromedriver: PathBuf,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// A child process killed when dropped.
struct Guarded(Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package sits in the workspace")
        .to_path_buf()
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The bundled study with only task j, in `view`, written into `dir`.
fn experiment(dir: &Path, view: &str) -> Result<PathBuf> {
    let source = workspace_root().join("server/experiments");
    for entry in std::fs::read_dir(&source)? {
        let entry = entry?;
        std::fs::copy(entry.path(), dir.join(entry.file_name()))?;
    }
    let path = dir.join("correa2025.toml");
    let mut table: toml::Table = std::fs::read_to_string(&path)?.parse()?;
    for part in ["tutorial", "practice", "instructions"] {
        table.remove(part);
    }
    table.insert("board".into(), view.into());
    let mut j = toml::Table::new();
    j.insert("task".into(), "correa2025/j".into());
    table.insert("tasks".into(), toml::Value::Array(vec![j.into()]));
    std::fs::write(&path, toml::to_string(&table)?)?;
    Ok(path)
}

/// `proglab serve` on a fresh SQLite file; returns it and its base URL.
fn start_server(dir: &Path, experiment: &Path) -> Result<(Guarded, String)> {
    let port = free_port()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_proglab-e2e"))
        .args(["serve", "--database-url"])
        .arg(format!("sqlite://{}", dir.join("render.db").display()))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--experiment"])
        .arg(experiment)
        .arg("--static-dir")
        .arg(workspace_root().join("static"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start proglab-e2e")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let guarded = Guarded(child);
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sender = Some(sender);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("listening on")
                && let Some(sender) = sender.take()
            {
                let _ = sender.send(());
            }
        }
    });
    receiver
        .recv_timeout(Duration::from_secs(30))
        .context("the server did not start within 30 s")?;
    Ok((guarded, format!("http://127.0.0.1:{port}")))
}

/// chromedriver and a headless Chromium session with a `width` x `height` window.
async fn start_browser(args: &Args, profile: &Path) -> Result<(Guarded, Client)> {
    let port = free_port()?;
    let driver = Guarded(
        Command::new(&args.chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start chromedriver")?,
    );
    let webdriver = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(response) = http.get(format!("{webdriver}/status")).send().await {
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
    let chrome_args = vec![
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-extensions".to_owned(),
        "--no-first-run".to_owned(),
        "--hide-scrollbars".to_owned(),
        "--force-device-scale-factor=1".to_owned(),
        format!("--user-data-dir={}", profile.display()),
        format!("--window-size={},{}", args.width, args.height),
    ];
    let mut capabilities = Capabilities::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": args.chromium, "args": chrome_args }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&webdriver)
        .await
        .context("cannot open a WebDriver session")?;
    Ok((driver, client))
}

async fn wait_for(client: &Client, expression: &str, limit: Duration) -> Result<Value> {
    let script = format!("try {{ return ({expression}); }} catch (e) {{ return null; }}");
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(value) = client.execute(&script, Vec::new()).await
            && !matches!(value, Value::Null | Value::Bool(false))
        {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for `{expression}`");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn click(client: &Client, css: &str) -> Result<()> {
    client
        .find(Locator::Css(css))
        .await
        .with_context(|| format!("no element {css}"))?
        .click()
        .await
        .with_context(|| format!("cannot click {css}"))
}

/// Sets the window so the page's viewport is exactly `width` x `height`.
async fn viewport(client: &Client, width: u32, height: u32) -> Result<()> {
    for _ in 0..5 {
        let size = client
            .execute(
                "return [innerWidth, innerHeight, outerWidth, outerHeight]",
                Vec::new(),
            )
            .await?;
        let get = |i: usize| size[i].as_u64().unwrap_or(0) as u32;
        if get(0) == width && get(1) == height {
            return Ok(());
        }
        client
            .set_window_size(
                (width + get(2)).saturating_sub(get(0)),
                (height + get(3)).saturating_sub(get(1)),
            )
            .await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("cannot make the viewport {width}x{height}")
}

async fn measure(args: &Args, client: &Client, base: &str) -> Result<Value> {
    client
        .goto(&format!("{base}/e/correa2025?PROLIFIC_PID=render-bench"))
        .await?;
    wait_for(
        client,
        "document.querySelector('#proglab-app button')",
        Duration::from_secs(20),
    )
    .await?;
    click(client, "#proglab-app button").await?;
    wait_for(
        client,
        "document.getElementById('agree')",
        Duration::from_secs(20),
    )
    .await?;
    click(client, "#agree").await?;
    wait_for(
        client,
        "document.getElementById('app')?.dataset.page === 'task' && window.proglab && window.proglab.board",
        Duration::from_secs(20),
    )
    .await?;
    viewport(client, args.width, args.height).await?;
    let view = client
        .execute(
            "return document.getElementById('board').dataset.view",
            Vec::new(),
        )
        .await?;
    if view != json!(args.view) {
        bail!("the page shows the {view} view, not {}", args.view);
    }
    for (routine, letters) in PROGRAM.split('|').enumerate() {
        if letters.is_empty() {
            continue;
        }
        click(client, &format!("#routine-{routine}-name")).await?;
        for letter in letters.chars() {
            click(client, &format!(".palette-item[data-letter=\"{letter}\"]")).await?;
        }
    }
    if args.pace == Pace::Fast {
        // The same module instance the page uses: its pace is read on every token.
        client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 import('/static/js/player.js').then((m) => { m.PACE.primitive = 40; m.PACE.call = 20; done(true); });",
                Vec::new(),
            )
            .await?;
    }
    // Count frames from the press of Run until the run has been shown to its end.
    client
        .execute(
            "window.renderBench = { intervals: [], last: null, on: true, start: performance.now() };
             const tick = (t) => {
               const b = window.renderBench;
               if (b.last !== null) b.intervals.push(t - b.last);
               b.last = t;
               if (b.on) requestAnimationFrame(tick);
             };
             requestAnimationFrame(tick);",
            Vec::new(),
        )
        .await?;
    click(client, "#run").await?;
    wait_for(
        client,
        "document.getElementById('app').dataset.status === 'running'",
        Duration::from_secs(20),
    )
    .await?;
    wait_for(
        client,
        "document.getElementById('app').dataset.status === 'finished'",
        Duration::from_secs(900),
    )
    .await?;
    let result = client
        .execute(
            "const b = window.renderBench; b.on = false;
             return { intervals: b.intervals, elapsed: performance.now() - b.start,
                      status: document.getElementById('run-status').textContent };",
            Vec::new(),
        )
        .await?;
    Ok(result)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if !args.chromium.is_file() || !args.chromedriver.is_file() {
        bail!("Chromium or chromedriver is missing: run scripts/install-browser.sh");
    }
    let scratch =
        std::env::temp_dir().join(format!("proglab-render-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(scratch.join("profile"))?;
    let outcome = async {
        let experiment = experiment(&scratch, &args.view)?;
        let (_server, base) = start_server(&scratch, &experiment)?;
        let (_driver, client) = start_browser(&args, &scratch.join("profile")).await?;
        let result = measure(&args, &client, &base).await;
        let _ = client.close().await;
        result
    }
    .await;
    let _ = std::fs::remove_dir_all(&scratch);
    let result = outcome?;

    let mut intervals: Vec<f64> = result["intervals"]
        .as_array()
        .context("no intervals")?
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    let total: f64 = intervals.iter().sum();
    intervals.sort_by(f64::total_cmp);
    let frames = intervals.len();
    let mean_fps = frames as f64 / (total / 1000.0);
    let median = percentile(&intervals, 0.5);
    let p95 = percentile(&intervals, 0.95);
    let worst = intervals.last().copied().unwrap_or(f64::NAN);
    println!(
        "render: {} view, {:?} pace, {}x{}, task j, program {PROGRAM}",
        args.view, args.pace, args.width, args.height
    );
    println!("  run shown in {:.1} s: {frames} frames", total / 1000.0);
    println!("  mean {mean_fps:.1} frames/s");
    println!(
        "  frame interval: median {median:.1} ms, 95th percentile {p95:.1} ms (5th-percentile rate {:.1} frames/s), worst {worst:.1} ms",
        1000.0 / p95
    );
    println!(
        "  page says: {}",
        result["status"].as_str().unwrap_or_default()
    );
    Ok(())
}
