//! The researcher side in headless Chromium: sign in, open the dashboard and a replay,
//! play a recorded program with the participant app's renderer, and run a pasted program; and
//! the same sign-in, dashboard and replay on Postgres.
//! Screenshots go to `target/e2e-screenshots/researcher-*.png`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::json;

use super::{
    Browser, Scratch, Server, browser_or_skip, free_port, workspace_root, write_experiment,
};
use crate::support::{Backend, Participant, TestDb, proglab, solutions};

pub(super) const PASSWORD: &str = "a long enough passphrase";

/// Adds the account `ada` (password [`PASSWORD`]) to the database at `url`, with the command line.
pub(super) fn add_ada(url: &str) -> anyhow::Result<()> {
    let add = [
        "researcher",
        "add",
        "ada",
        "--password-stdin",
        "--database-url",
        url,
    ];
    proglab(&add, Some(&format!("{PASSWORD}\n")))
}

/// Imports the published development data (120 participants) into `url` under `experiment`.
pub(super) fn import_published(url: &str, experiment: &Path) -> anyhow::Result<()> {
    let published = workspace_root().join("analysis/data/programs-dev.csv");
    proglab(
        &[
            "import",
            "--experiment",
            experiment.to_str().context("path")?,
            "--programs",
            published.to_str().context("path")?,
            "--database-url",
            url,
        ],
        None,
    )
}

/// Signs `ada` in through the sign-in form; ends on the experiment list.
pub(super) async fn sign_in_as_ada(browser: &Browser, server: &Server) -> anyhow::Result<()> {
    browser.goto(&server.url("/researcher")).await?;
    browser
        .wait_for("document.getElementById('username')", "the sign-in form")
        .await?;
    browser.type_into("#username", "ada").await?;
    browser.type_into("#password", PASSWORD).await?;
    browser.click("#sign-in").await?;
    browser
        .wait_for(
            "document.getElementById('experiments')",
            "the experiment list",
        )
        .await?;
    Ok(())
}

/// A SQLite database in `scratch` with the account `ada` (password [`PASSWORD`]), and the bundled
/// experiment's file: the database URL and the file's path.
pub(super) fn database_with_researcher(scratch: &Scratch) -> anyhow::Result<(String, PathBuf)> {
    let url = format!("sqlite://{}", scratch.path().join("proglab.db").display());
    let experiment = write_experiment(scratch.path(), |_| {})?;
    add_ada(&url)?;
    Ok((url, experiment))
}

/// A live participant who edits and runs programs on the first main task through the API.
async fn live_participant(server: &Server) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let entered: serde_json::Value = client
        .post(server.url("/api/v1/experiments/correa2025/sessions"))
        .json(&json!({ "params": { "PROLIFIC_PID": "PIDLIVE" } }))
        .send()
        .await?
        .json()
        .await?;
    let mut participant = Participant {
        base: server.url(""),
        client,
        token: entered["token"].as_str().context("token")?.to_owned(),
        last: entered["session"].clone(),
    };
    let solutions = solutions();
    participant.consent(true).await;
    let mut seq = 0;
    loop {
        let step = participant.step();
        match participant.kind() {
            "screen" => {
                participant.continue_step(step).await;
            }
            "task" => {
                let trial = participant.last["current"]["trial"].clone();
                let program = match trial["phase"].as_str().unwrap_or("") {
                    "tutorial" => {
                        let before = participant.last["progress"]["phase_step"]
                            .as_i64()
                            .unwrap_or(0);
                        let index = [1, 5, 9, 11]
                            .iter()
                            .position(|&i| i == before)
                            .context("tutorial level")?;
                        solutions.tutorial[index].to_owned()
                    }
                    "practice" => solutions.practice.to_owned(),
                    _ => break,
                };
                participant.submit(step, &program).await;
            }
            other => anyhow::bail!("unexpected step {other}"),
        }
    }
    // The first main task (mdp_idx 0 in the fixed order): three versions, two runs, a submit.
    let step = participant.step();
    let answer = solutions.tasks[0].clone();
    for (i, program) in ["WW|||", "JRWS|||", answer.as_str()].iter().enumerate() {
        seq += 1;
        participant
            .events(json!([{ "seq": seq, "type": "edit", "step": step, "data": { "op": "add", "program": program } }]))
            .await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        if i > 0 {
            participant.run(step, i as i64, program).await;
        }
    }
    let (status, body) = participant.submit(step, &answer).await;
    ensure!(status.is_success(), "submit: {body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_researcher_signs_in_opens_the_dashboard_and_plays_a_replay() -> anyhow::Result<()> {
    let Some(binaries) =
        browser_or_skip("a_researcher_signs_in_opens_the_dashboard_and_plays_a_replay")
    else {
        return Ok(());
    };
    // Arrange: an account, the published development data imported, one live participant.
    let scratch = Scratch::new("researcher")?;
    let (url, experiment) = database_with_researcher(&scratch)?;
    import_published(&url, &experiment)?;
    let server = Server::start(&url, &experiment, free_port()?)?;
    live_participant(&server).await?;
    let browser = Browser::start(&binaries, 1400, 1000).await?;

    // Sign in.
    browser.goto(&server.url("/researcher")).await?;
    browser
        .wait_for("document.getElementById('username')", "the sign-in form")
        .await?;
    browser.screenshot("researcher-0-sign-in").await?;
    browser.type_into("#username", "ada").await?;
    browser.type_into("#password", PASSWORD).await?;
    browser.click("#sign-in").await?;
    browser
        .wait_for(
            "document.getElementById('experiments')",
            "the experiment list",
        )
        .await?;
    browser.screenshot("researcher-1-experiments").await?;

    // The dashboard: 121 participants (120 imported, 1 live), per-task charts.
    browser.click("#experiments a").await?;
    browser
        .wait_for("document.getElementById('task-summaries')", "the dashboard")
        .await?;
    // 121 participants, shown 50 to a page.
    let rows = browser
        .js("return document.querySelectorAll('#participants tbody tr').length")
        .await?;
    ensure!(
        rows == json!(50),
        "participant rows on the first page: {rows}"
    );
    let summary = browser
        .js("return document.getElementById('table-summary').textContent")
        .await?;
    ensure!(
        summary
            .as_str()
            .is_some_and(|s| s.starts_with("121 matching")),
        "table summary: {summary}"
    );
    let bars = browser
        .js("return document.querySelectorAll('#task-summaries svg').length")
        .await?;
    ensure!(bars == json!(20), "charts: {bars}");
    browser.screenshot("researcher-2-dashboard").await?;

    // The live participant's replay: its history has the edits, the runs and the submit.
    browser
        .js("const rows = [...document.querySelectorAll('#participants tbody tr')]; \
             rows.find(r => r.textContent.includes('active') || r.textContent.includes('tasks')).querySelector('a.replay-link').click()")
        .await?;
    browser.wait_for("document.getElementById('replay') && document.getElementById('replay').dataset.ready === 'true'", "the replay").await?;
    let kinds = browser
        .js("return [...document.querySelectorAll('#timeline .timeline-entry')].map(b => b.className.match(/kind-(\\w+)/)[1])")
        .await?;
    let kinds: Vec<String> = serde_json::from_value(kinds)?;
    ensure!(
        kinds.iter().filter(|k| *k == "edit").count() == 3,
        "{kinds:?}"
    );
    ensure!(
        kinds.iter().filter(|k| *k == "run").count() == 2,
        "{kinds:?}"
    );
    ensure!(
        kinds.last().map(String::as_str) == Some("submit"),
        "{kinds:?}"
    );
    browser.screenshot("researcher-3-replay").await?;

    // Play the submitted program: the server's trace animated on the participant app's board.
    browser.click("#play").await?;
    browser
        .wait_for(
            "document.querySelector('#routines .token.current')",
            "an instruction highlighted",
        )
        .await?;
    browser.screenshot("researcher-4-replay-playing").await?;
    browser
        .wait_for_within(
            "document.getElementById('replay').dataset.played === '1'",
            "the replay to finish",
            Duration::from_secs(90),
        )
        .await?;
    let solved = browser
        .js("return document.getElementById('board').dataset.allLit")
        .await?;
    ensure!(
        solved == json!("true"),
        "every light is on after the replay: {solved}"
    );
    browser.screenshot("researcher-5-replay-played").await?;

    // An earlier version (the first run) can be played too: it does not solve the task.
    browser.click("#timeline .kind-run").await?;
    browser.click("#play").await?;
    browser
        .wait_for_within(
            "document.getElementById('replay').dataset.played === '2'",
            "the second replay",
            Duration::from_secs(60),
        )
        .await?;
    ensure!(
        browser
            .js("return document.getElementById('replay').dataset.lastSolved")
            .await?
            == json!("false")
    );

    // Paste a program and run it on another task.
    browser
        .js("document.getElementById('try-task').value = '2'")
        .await?;
    browser
        .type_into("#try-program", "1LJL1RJR1|WWWS|||")
        .await?;
    browser.click("#try-run").await?;
    browser
        .wait_for_within(
            "document.getElementById('replay').dataset.played === '3'",
            "the pasted program",
            Duration::from_secs(90),
        )
        .await?;
    ensure!(
        browser
            .js("return document.getElementById('replay').dataset.lastSolved")
            .await?
            == json!("true")
    );
    browser.screenshot("researcher-6-pasted-program").await?;
    browser.close().await;
    Ok(())
}

/// The researcher side on Postgres, as a lab with several instances runs it: sign in, the
/// dashboard lists the one participant, and the replay opens with their edits, runs and submit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_researcher_signs_in_and_opens_a_replay_on_postgres() -> anyhow::Result<()> {
    let test = "a_researcher_signs_in_and_opens_a_replay_on_postgres";
    let Some(binaries) = browser_or_skip(test) else {
        return Ok(());
    };
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return Ok(());
    };
    // Arrange: an account and one live participant, on a fresh Postgres database.
    let scratch = Scratch::new("researcher-postgres")?;
    let experiment = write_experiment(scratch.path(), |_| {})?;
    add_ada(&db.url)?;
    let server = Server::start(&db.url, &experiment, free_port()?)?;
    live_participant(&server).await?;
    let browser = Browser::start(&binaries, 1400, 1000).await?;

    // Act: sign in and open the experiment's dashboard.
    sign_in_as_ada(&browser, &server).await?;
    browser.click("#experiments a").await?;
    browser
        .wait_for("document.getElementById('task-summaries')", "the dashboard")
        .await?;

    // Assert: one participant, whose replay has the three edits, two runs and the submit.
    browser
        .wait_for(
            "document.querySelectorAll('#participants tbody tr').length === 1 \
             && document.querySelector('#participants tbody tr a.replay-link')",
            "the dashboard listing the participant",
        )
        .await?;
    browser.screenshot("researcher-postgres-dashboard").await?;
    browser
        .click("#participants tbody tr a.replay-link")
        .await?;
    browser
        .wait_for(
            "document.getElementById('replay') && document.getElementById('replay').dataset.ready === 'true'",
            "the replay",
        )
        .await?;
    let kinds = browser
        .js("return [...document.querySelectorAll('#timeline .timeline-entry')].map(b => b.className.match(/kind-(\\w+)/)[1])")
        .await?;
    let kinds: Vec<String> = serde_json::from_value(kinds)?;
    let count = |kind: &str| kinds.iter().filter(|k| *k == kind).count();
    ensure!(count("edit") == 3 && count("run") == 2, "{kinds:?}");
    ensure!(
        kinds.last().map(String::as_str) == Some("submit"),
        "{kinds:?}"
    );
    browser.screenshot("researcher-postgres-replay").await?;
    browser.close().await;
    drop(server);
    drop(db);
    Ok(())
}
