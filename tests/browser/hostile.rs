//! Hostile participant input in researcher pages: recruiter parameters, event types and data,
//! programs and questionnaire answers carrying HTML and script are shown as text, and no script
//! of theirs runs, on every page a researcher opens (the dashboard with its refused arrivals,
//! search and error pages, the participant page with a note, the replay, the level editor, the
//! audit log). A sign-in attempt with a hostile name puts
//! one in the audit log too.

use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::json;

use super::researcher::{PASSWORD, database_with_researcher};
use super::{Browser, Scratch, Server, browser_or_skip, free_port};
use crate::support::{Participant, solutions};

/// Each payload sets `window.__hostile` if it ever runs, to its own number.
fn payload(n: u32) -> String {
    format!(
        "<script>window.__hostile={n}</script><img src=x onerror=\"window.__hostile={n}\"><svg onload=\"window.__hostile={n}\"></svg>"
    )
}

/// A payload short enough for an event type (64 characters at most).
fn short_payload(n: u32) -> String {
    format!("<img src=x onerror=window.__hostile={n}>")
}

/// A participant who puts a payload into everything the API stores, then completes the study.
async fn hostile_participant(server: &Server) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let entered: serde_json::Value = client
        .post(server.url("/api/v1/experiments/correa2025/sessions"))
        .json(&json!({ "params": {
            "PROLIFIC_PID": payload(1),
            "STUDY_ID": payload(2),
            payload(3): payload(4),
        } }))
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
    let (mut seq, mut run, mut tutorial) = (0, 0, 0);
    loop {
        let step = participant.step();
        // An event of a hostile type, and an edit whose program is a payload (the replay lists
        // edits with their program).
        seq += 2;
        let (status, body) = participant
            .events(json!([
                { "seq": seq - 1, "type": short_payload(5), "step": step,
                  "data": { "note": payload(6), payload(7): [payload(8)] } },
                { "seq": seq, "type": "edit", "step": step,
                  "data": { "op": "add", "program": payload(16) } },
            ]))
            .await;
        ensure!(
            status.is_success() && body["stored"] == json!([seq - 1, seq]),
            "events: {body}"
        );
        match participant.kind() {
            "screen" => {
                participant.continue_step(step).await;
            }
            "task" => {
                let trial = participant.last["current"]["trial"].clone();
                let program = match trial["phase"].as_str().unwrap_or("") {
                    "tutorial" => {
                        tutorial += 1;
                        solutions.tutorial[tutorial - 1].to_owned()
                    }
                    "practice" => solutions.practice.to_owned(),
                    _ => solutions.tasks[trial["task_index"].as_u64().context("task")? as usize]
                        .clone(),
                };
                // A program that is itself a payload: refused as a program, but tried.
                run += 1;
                participant.run(step, run, &payload(9)).await;
                let (status, body) = participant.submit(step, &program).await;
                ensure!(status.is_success(), "submit: {body}");
            }
            "questionnaire" => {
                let answers = json!({
                    "programming_exp": "None",
                    "programming_game_exp": "No",
                    "strategy": payload(10),
                    "confusing": payload(11),
                    "suggestions": payload(12),
                    "technical": payload(13),
                    "comments": payload(14),
                });
                let (status, body) = participant.questionnaire(answers).await;
                ensure!(status.is_success(), "questionnaire: {body}");
            }
            "complete" => break,
            other => anyhow::bail!("unexpected step {other}"),
        }
    }
    let (status, body) = participant.complete(None).await;
    ensure!(status.is_success(), "complete: {body}");
    Ok(())
}

/// Waits long enough for an `onerror` or `onload` to fire, then checks that nothing ran and no
/// element of a payload was created.
async fn assert_inert(browser: &Browser, page: &str) -> anyhow::Result<()> {
    tokio::time::sleep(Duration::from_millis(400)).await;
    let ran = browser
        .js("return window.__hostile === undefined ? null : window.__hostile")
        .await?;
    ensure!(ran.is_null(), "{page}: payload {ran} ran");
    let elements = browser
        .js("return document.querySelectorAll('img[src=\"x\"], svg[onload], script:not([src]):not([type])').length")
        .await?;
    ensure!(
        elements == json!(0),
        "{page}: {elements} payload elements in the page"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_participant_input_is_inert_in_every_researcher_page() -> anyhow::Result<()> {
    let Some(binaries) =
        browser_or_skip("hostile_participant_input_is_inert_in_every_researcher_page")
    else {
        return Ok(());
    };
    // Arrange: an account, a participant who put payloads everywhere, a hostile sign-in name.
    let scratch = Scratch::new("hostile")?;
    let (url, experiment) = database_with_researcher(&scratch)?;
    let server = Server::start(&url, &experiment, free_port()?)?;
    hostile_participant(&server).await?;
    // The same hostile recruiter ID comes back and is refused as a repeat: the dashboard lists it
    // with an unlock button.
    let again = reqwest::Client::new()
        .post(server.url("/api/v1/experiments/correa2025/sessions"))
        .json(&json!({ "params": { "PROLIFIC_PID": payload(1), "SESSION_ID": "again" } }))
        .send()
        .await?;
    ensure!(
        again.status() == reqwest::StatusCode::CONFLICT,
        "{}",
        again.status()
    );
    let browser = Browser::start(&binaries, 1400, 1000).await?;
    browser.goto(&server.url("/researcher")).await?;
    browser
        .wait_for("document.getElementById('username')", "the sign-in form")
        .await?;
    browser.type_into("#username", &payload(15)).await?;
    browser.type_into("#password", "wrong password").await?;
    browser.click("#sign-in").await?;
    // The error, not the form: the form is on the page before the submission returns too.
    browser
        .wait_for(
            "document.getElementById('sign-in-error')",
            "the sign-in form again, with its error",
        )
        .await?;
    assert_inert(&browser, "the failed sign-in").await?;

    // Act and assert: every researcher page that shows participant data.
    // The failed form keeps the name typed; start from empty fields.
    browser
        .js("document.getElementById('username').value = ''; document.getElementById('password').value = ''")
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
    assert_inert(&browser, "the experiment list").await?;

    browser.click("#experiments a").await?;
    browser
        .wait_for("document.getElementById('task-summaries')", "the dashboard")
        .await?;
    browser
        .wait_for(
            "document.querySelectorAll('#participants tbody tr').length === 1",
            "the participant's row",
        )
        .await?;
    assert_inert(&browser, "the dashboard").await?;

    browser
        .click("#participants tbody tr a.replay-link")
        .await?;
    browser
        .wait_for(
            "document.getElementById('replay') && document.getElementById('replay').dataset.ready === 'true'",
            "the replay",
        )
        .await?;
    assert_inert(&browser, "the replay").await?;
    // The edits' programs are listed as text, so the payload is on the page as written.
    let shown = browser
        .js("return document.body.innerText.includes('<script>window.__hostile=16</script>')")
        .await?;
    let text = browser.js("return document.body.innerText").await?;
    ensure!(
        shown == json!(true),
        "the replay shows the payload as text: {text}"
    );
    // Open every history entry, so that whatever renders an entry's details runs too.
    let entries = browser
        .js("return document.querySelectorAll('#timeline .timeline-entry').length")
        .await?;
    let entries = entries.as_u64().context("entries")?;
    ensure!(entries > 0, "the replay lists the history");
    for i in 0..entries {
        browser
            .js(&format!(
                "document.querySelectorAll('#timeline .timeline-entry')[{i}].click()"
            ))
            .await?;
    }
    assert_inert(&browser, "the replay's history").await?;

    // The participant's page, with a hostile note added through its form.
    browser.click("#participant-page-link").await?;
    browser
        .wait_for(
            "document.getElementById('note-form')",
            "the participant page",
        )
        .await?;
    assert_inert(&browser, "the participant page").await?;
    browser.type_into("#note-text", &payload(20)).await?;
    browser.click("#note-form button").await?;
    browser
        .wait_for("document.getElementById('notice')", "the note saved")
        .await?;
    let noted = browser
        .js("return document.getElementById('notes').innerText.includes('window.__hostile=20')")
        .await?;
    ensure!(noted == json!(true), "the note is shown as text");
    assert_inert(&browser, "the participant page with a note").await?;

    // The dashboard with the refused repeat listed, a hostile search and a hostile sort (an
    // error page that quotes it).
    let dashboard = "/researcher/experiments/correa2025";
    browser.goto(&server.url(dashboard)).await?;
    browser
        .wait_for(
            "document.getElementById('refused-repeats')",
            "the refused repeat",
        )
        .await?;
    assert_inert(&browser, "the dashboard's refused arrivals").await?;
    let search: String = form_urlencoded::byte_serialize(payload(21).as_bytes()).collect();
    browser
        .goto(&server.url(&format!("{dashboard}?q={search}")))
        .await?;
    browser
        .wait_for("document.getElementById('filter-q')", "the search")
        .await?;
    let kept = browser
        .js("return document.getElementById('filter-q').value.includes('window.__hostile=21')")
        .await?;
    ensure!(
        kept == json!(true),
        "the search box shows the query as typed"
    );
    assert_inert(&browser, "a hostile search").await?;
    browser
        .goto(&server.url(&format!("{dashboard}?sort={search}")))
        .await?;
    browser
        .wait_for(
            "document.getElementById('researcher-error')",
            "the error page",
        )
        .await?;
    assert_inert(&browser, "an error page quoting the request").await?;
    browser
        .goto(&server.url("/researcher/levels/editor"))
        .await?;
    browser
        .wait_for("document.readyState === 'complete'", "the level editor")
        .await?;
    assert_inert(&browser, "the level editor").await?;

    browser.goto(&server.url("/researcher/audit")).await?;
    browser
        .wait_for("document.readyState === 'complete'", "the audit log")
        .await?;
    let logged = browser
        .js("return document.body.innerText.includes('window.__hostile=15')")
        .await?;
    ensure!(
        logged == json!(true),
        "the audit log shows the hostile name as text"
    );
    assert_inert(&browser, "the audit log").await?;
    browser
        .screenshot("researcher-7-hostile-input-inert")
        .await?;
    browser.close().await;
    Ok(())
}
