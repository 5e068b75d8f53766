//! The dashboard at a real study's size, in headless Chromium against the real `proglab serve`:
//! 300 participants (the 120 published ones imported, 180 driven through the API by a harness,
//! some of them left to go idle or abandoned) plus live ones. A researcher filters to
//! "abandoned", sorts by elapsed time, finds a participant by recruiter ID and excludes them,
//! unlocks a recruiter ID refused as a repeat (who then enters again, the earlier session kept),
//! and sees a live participant's step change without reloading the page.
//! Screenshots go to `target/e2e-screenshots/scale-*.png`.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use super::researcher::{add_ada, import_published, sign_in_as_ada};
use super::{Browser, Scratch, Server, browser_or_skip, free_port, write_experiment};

/// A session is abandoned this long after its start; the test waits for the first wave to pass it.
const TIME_LIMIT_S: i64 = 40;

/// Enters with these parameters; the body and the token.
async fn enter(
    client: &reqwest::Client,
    server: &Server,
    pid: &str,
    submission: &str,
) -> anyhow::Result<(reqwest::StatusCode, Value)> {
    let response = client
        .post(server.url("/api/v1/experiments/correa2025/sessions"))
        .json(&json!({ "params": { "PROLIFIC_PID": pid, "SESSION_ID": submission } }))
        .send()
        .await?;
    Ok((response.status(), response.json().await?))
}

async fn post(
    client: &reqwest::Client,
    server: &Server,
    token: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let response = client
        .post(server.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    ensure!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    Ok(response.json().await?)
}

/// One harness participant: enters, and consents (`Some(true)`), declines (`Some(false)`) or
/// leaves at the consent page (`None`); a consenting one reads `screens` (0 or 1) screens. The token.
async fn drive(
    client: &reqwest::Client,
    server: &Server,
    pid: &str,
    consent: Option<bool>,
    screens: i64,
) -> anyhow::Result<String> {
    let (status, body) = enter(client, server, pid, "SUB").await?;
    ensure!(status.is_success(), "{pid}: {body}");
    let token = body["token"].as_str().context("a token")?.to_owned();
    if let Some(agree) = consent {
        post(
            client,
            server,
            &token,
            "/api/v1/session/consent",
            json!({ "agree": agree }),
        )
        .await?;
        if agree {
            for step in 1..=screens {
                post(
                    client,
                    server,
                    &token,
                    &format!("/api/v1/session/steps/{step}/continue"),
                    Value::Null,
                )
                .await?;
            }
        }
    }
    Ok(token)
}

/// 60 participants of a wave, in a mix of states.
async fn wave(client: &reqwest::Client, server: &Server, name: &str) -> anyhow::Result<()> {
    for i in 0..60 {
        let pid = format!("PID-{name}-{i:03}");
        let (consent, screens) = match i % 6 {
            0 => (None, 0),
            1 => (Some(false), 0),
            2 | 3 => (Some(true), 1),
            _ => (Some(true), 0),
        };
        drive(client, server, &pid, consent, screens).await?;
    }
    Ok(())
}

async fn rows_text(browser: &Browser, column: usize) -> anyhow::Result<Vec<String>> {
    let cells = browser
        .js(&format!(
            "return [...document.querySelectorAll('#participants tbody tr td:nth-child({column})')].map(td => td.textContent.trim())"
        ))
        .await?;
    Ok(serde_json::from_value(cells)?)
}

fn seconds(clock: &str) -> i64 {
    // "1:02:03", "2:03" or "45 s" style: the dashboard's elapsed column.
    let digits: Vec<i64> = clock
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect();
    digits.iter().fold(0, |acc, d| acc * 60 + d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_researcher_runs_a_300_participant_study_from_the_dashboard() -> anyhow::Result<()> {
    let Some(binaries) =
        browser_or_skip("a_researcher_runs_a_300_participant_study_from_the_dashboard")
    else {
        return Ok(());
    };
    let scratch = Scratch::new("scale")?;
    let url = format!("sqlite://{}", scratch.path().join("proglab.db").display());
    let experiment = write_experiment(scratch.path(), |table| {
        let mut timing = toml::Table::new();
        timing.insert("idle_after_seconds".into(), 5.into());
        timing.insert("time_limit_seconds".into(), TIME_LIMIT_S.into());
        table.insert("timing".into(), timing.into());
    })?;
    add_ada(&url)?;
    import_published(&url, &experiment)?;
    let server = Server::start(&url, &experiment, free_port()?)?;
    let client = reqwest::Client::new();

    // The harness: three waves of 60 (180). The first wave passes its time limit during the test.
    wave(&client, &server, "A").await?;
    // Every session of the first wave started before this instant.
    let first_wave = Instant::now();
    // A participant who declined, and then came back as a repeat and was refused.
    drive(&client, &server, "PID-REPEAT", Some(false), 0).await?;
    let (status, body) = enter(&client, &server, "PID-REPEAT", "SUB-2").await?;
    ensure!(
        status == reqwest::StatusCode::CONFLICT && body["error"]["code"] == "already_participated",
        "{status} {body}"
    );
    // The later waves start 20 s after the first has entered, so that they are still within their
    // limit (idle, not abandoned) when the whole first wave has passed it, however slow the machine.
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(first_wave.elapsed())).await;
    wave(&client, &server, "B").await?;
    // Wave C is at most 59: with PID-REPEAT that makes 180 harness sessions.
    for i in 0..59 {
        drive(
            &client,
            &server,
            &format!("PID-C-{i:03}"),
            Some(true),
            i % 2,
        )
        .await?;
    }

    let browser = Browser::start(&binaries, 1400, 1000).await?;
    sign_in_as_ada(&browser, &server).await?;
    browser
        .goto(&server.url("/researcher/experiments/correa2025"))
        .await?;
    browser
        .wait_for("document.getElementById('state-counts')", "the dashboard")
        .await?;
    let all = browser
        .js("return document.querySelector('#state-counts [data-state=\"\"] b').textContent")
        .await?;
    ensure!(all == json!("300"), "sessions counted: {all}");
    let rows = browser
        .js("return document.querySelectorAll('#participants tbody tr').length")
        .await?;
    ensure!(rows == json!(50), "one page of 50 rows: {rows}");
    browser.screenshot("scale-1-dashboard").await?;

    // Wait for the first wave to pass its limit, then filter to "abandoned" with the counts bar.
    let wait = Duration::from_secs(TIME_LIMIT_S as u64 + 2).saturating_sub(first_wave.elapsed());
    tokio::time::sleep(wait).await;
    browser
        .goto(&server.url("/researcher/experiments/correa2025"))
        .await?;
    browser
        .wait_for("document.getElementById('state-counts')", "the dashboard")
        .await?;
    browser
        .click("#state-counts a[data-state=\"abandoned\"]")
        .await?;
    browser
        .wait_for(
            "document.querySelector('#state-counts a.selected[data-state=\"abandoned\"]')",
            "the abandoned filter",
        )
        .await?;
    let summary = browser
        .js("return document.getElementById('table-summary').textContent")
        .await?;
    // Wave A's unfinished sessions: 50 of 60 (10 declined), and none of the others yet.
    ensure!(
        summary
            .as_str()
            .is_some_and(|s| s.starts_with("50 matching")),
        "abandoned: {summary}"
    );
    let states = rows_text(&browser, 2).await?;
    ensure!(
        states.len() == 50 && states.iter().all(|s| s.starts_with("abandoned")),
        "{states:?}"
    );
    browser.screenshot("scale-2-abandoned").await?;

    // Sort by elapsed time, longest first (the second click on the header).
    browser.click("#sort-elapsed").await?;
    browser.wait_for("document.querySelector('th[data-sort=\"elapsed\"]').textContent.includes('▼') || document.querySelector('th[data-sort=\"elapsed\"]').textContent.includes('▲')", "sorted").await?;
    let arrow = browser
        .js("return document.querySelector('th[data-sort=\"elapsed\"]').textContent")
        .await?;
    if arrow.as_str().is_some_and(|t| t.contains('▲')) {
        browser.click("#sort-elapsed").await?;
        browser
            .wait_for(
                "document.querySelector('th[data-sort=\"elapsed\"]').textContent.includes('▼')",
                "sorted, longest first",
            )
            .await?;
    }
    let elapsed: Vec<i64> = rows_text(&browser, 6)
        .await?
        .iter()
        .map(|t| seconds(t))
        .collect();
    ensure!(
        elapsed.windows(2).all(|w| w[0] >= w[1]),
        "longest first: {elapsed:?}"
    );
    let still_filtered = rows_text(&browser, 2).await?;
    ensure!(
        still_filtered.iter().all(|s| s.starts_with("abandoned")),
        "sorting keeps the filter"
    );
    browser.screenshot("scale-3-sorted").await?;

    // Find one participant by recruiter ID and exclude them.
    browser
        .goto(&server.url("/researcher/experiments/correa2025"))
        .await?;
    browser
        .wait_for("document.getElementById('filter-q')", "the search")
        .await?;
    browser.type_into("#filter-q", "PID-B-017").await?;
    browser.click("#filter-apply").await?;
    browser
        .wait_for(
            "document.getElementById('table-summary').textContent.startsWith('1 matching')",
            "one participant found",
        )
        .await?;
    browser
        .click("#participants tbody tr a.participant-link")
        .await?;
    browser
        .wait_for(
            "document.getElementById('exclude-form')",
            "the participant page",
        )
        .await?;
    ensure!(
        browser
            .js("return document.getElementById('participant-recruiter').textContent")
            .await?
            .to_string()
            .contains("PID-B-017")
    );
    browser.click("#exclude-button").await?;
    browser
        .wait_for(
            "document.getElementById('notice') && document.getElementById('include-button')",
            "excluded",
        )
        .await?;
    let state = browser
        .js("return document.getElementById('participant-state').textContent")
        .await?;
    ensure!(
        state.as_str().is_some_and(|s| s.contains("excluded")),
        "{state}"
    );
    browser.screenshot("scale-4-excluded").await?;

    // Unlock the refused repeat from the dashboard; they enter again, the earlier session kept.
    browser.click("#back-to-dashboard").await?;
    browser
        .wait_for(
            "document.getElementById('refused-repeats')",
            "the refused repeats",
        )
        .await?;
    let listed = browser
        .js("return document.getElementById('refused-repeats').textContent")
        .await?;
    ensure!(listed.to_string().contains("PID-REPEAT"), "{listed}");
    browser
        .click("#refused-repeats .unlock-form button")
        .await?;
    browser.wait_for("document.getElementById('notice') && document.getElementById('notice').textContent.startsWith('Unlocked')", "unlocked").await?;
    browser.screenshot("scale-5-unlocked").await?;
    let (status, body) = enter(&client, &server, "PID-REPEAT", "SUB-3").await?;
    ensure!(
        status == reqwest::StatusCode::CREATED,
        "entered again: {status} {body}"
    );
    browser
        .goto(&server.url("/researcher/experiments/correa2025?q=PID-REPEAT"))
        .await?;
    browser
        .wait_for(
            "document.getElementById('table-summary').textContent.startsWith('2 matching')",
            "both sessions of PID-REPEAT",
        )
        .await?;

    // A live participant: the page follows their steps without a reload.
    let token = drive(&client, &server, "PID-LIVE", Some(true), 0).await?;
    browser
        .goto(&server.url("/researcher/experiments/correa2025?q=PID-LIVE"))
        .await?;
    browser
        .wait_for(
            "document.getElementById('table-summary').textContent.startsWith('1 matching')",
            "the live participant",
        )
        .await?;
    browser
        .js("window.__sameDocument = true; return true")
        .await?;
    browser
        .wait_for(
            "document.getElementById('live-status').dataset.mode === 'pushed'",
            "the live stream",
        )
        .await?;
    let before = rows_text(&browser, 3).await?;
    for step in 1..=11 {
        post(
            &client,
            &server,
            &token,
            &format!("/api/v1/session/steps/{step}/continue"),
            Value::Null,
        )
        .await
        .or_else(|_| Ok::<Value, anyhow::Error>(Value::Null))?;
    }
    // Through the tutorial's first screens to its first level: the task column names it.
    browser
        .wait_for("document.querySelector('#participants tbody tr td:nth-child(8)').textContent.includes('tutorial level')", "the step change pushed")
        .await?;
    let same = browser.js("return window.__sameDocument === true").await?;
    ensure!(same == json!(true), "the page was not reloaded");
    let after = rows_text(&browser, 8).await?;
    browser.screenshot("scale-6-live").await?;
    ensure!(!after.is_empty(), "before {before:?}, after {after:?}");
    browser.close().await;
    Ok(())
}
