//! "Run any program" on the replay page, in headless Chromium: it starts from a clean stage (the
//! chosen task's level at its start, no participant history, no animation left running, nothing
//! highlighted) and shows a parse error inline, next to the input, as an alert.
//! Screenshots go to `target/e2e-screenshots/replay-*.png`.

use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use super::researcher::{database_with_researcher, sign_in_as_ada};
use super::{Browser, Scratch, Server, browser_or_skip, free_port};
use crate::replay::walk_to_first_task;
use crate::support::{Participant, solutions};

/// Sends one client event on `step`.
async fn send(participant: &mut Participant, seq: &mut i64, step: i64, kind: &str, data: Value) {
    *seq += 1;
    let event = json!([{ "seq": *seq, "type": kind, "step": step, "data": data }]);
    participant.events(event).await;
}

/// A participant who reloads, turns the camera, edits, runs in every mode and submits the first
/// main task; returns the session's ID.
async fn participant_with_history(server: &Server) -> anyhow::Result<String> {
    let client = reqwest::Client::new();
    let entered: Value = client
        .post(server.url("/api/v1/experiments/correa2025/sessions"))
        .json(&json!({ "params": { "PROLIFIC_PID": "PIDREPLAY" } }))
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
    walk_to_first_task(&mut participant).await;
    let session_id = participant.last["session_id"]
        .as_str()
        .context("session ID")?
        .to_owned();
    let step = participant.step();
    let answer = solutions().tasks[0].clone();
    let p = &mut participant;
    let mut seq = 0;
    send(
        p,
        &mut seq,
        step,
        "page",
        json!({ "page": "task", "program": "||||" }),
    )
    .await;
    send(
        p,
        &mut seq,
        step,
        "camera",
        json!({ "rotation": 1, "delta": 1, "via": "key" }),
    )
    .await;
    send(
        p,
        &mut seq,
        step,
        "fullscreen",
        json!({ "state": "entered" }),
    )
    .await;
    for (i, program) in ["WW|||", "JRWS|||", answer.as_str()].iter().enumerate() {
        send(
            p,
            &mut seq,
            step,
            "edit",
            json!({ "op": "add", "program": program }),
        )
        .await;
        let mode = ["quick_run", "step", "run"][i];
        let run = json!({ "run": i + 1, "mode": mode, "program": program });
        send(p, &mut seq, step, "run", run.clone()).await;
        let path = format!("/api/v1/session/steps/{step}/runs");
        p.post(&path, Some(run)).await;
    }
    let (status, body) = participant.submit(step, &answer).await;
    ensure!(status.is_success(), "submit: {body}");
    Ok(session_id)
}

const ROOT: &str = "document.getElementById('replay')";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_any_program_starts_clean_and_shows_its_error_next_to_the_input() -> anyhow::Result<()>
{
    let test = "run_any_program_starts_clean_and_shows_its_error_next_to_the_input";
    let Some(binaries) = browser_or_skip(test) else {
        return Ok(());
    };
    // Arrange: an account, a participant with a history, the replay open and playing.
    let scratch = Scratch::new("replay")?;
    let (url, experiment) = database_with_researcher(&scratch)?;
    let server = Server::start(&url, &experiment, free_port()?)?;
    let session_id = participant_with_history(&server).await?;
    let browser = Browser::start(&binaries, 1400, 1900).await?;
    sign_in_as_ada(&browser, &server).await?;
    browser
        .goto(&server.url(&format!(
            "/researcher/experiments/correa2025/sessions/{session_id}"
        )))
        .await?;
    browser
        .wait_for(
            &format!("{ROOT} && {ROOT}.dataset.ready === 'true'"),
            "the replay",
        )
        .await?;
    let entries = browser
        .js("return document.querySelectorAll('#timeline .timeline-entry').length")
        .await?;
    ensure!(entries == json!(11), "the trial's history: {entries}");
    browser.screenshot("replay-0-history").await?;
    browser.click("#play").await?;
    browser
        .wait_for(
            "document.querySelector('#routines .token.current')",
            "the submitted program playing",
        )
        .await?;

    // Act: a program that does not parse, on task 2, while the animation runs.
    browser
        .js("document.getElementById('try-task').value = '2'")
        .await?;
    browser.type_into("#try-program", "WW(").await?;
    browser.click("#try-run").await?;
    browser
        .wait_for(
            "!document.getElementById('try-error').hidden",
            "the inline error",
        )
        .await?;

    // Assert: the error is an alert right under the input, and only there.
    let error = browser
        .js("const e = document.getElementById('try-error'); \
             const input = document.getElementById('try-program').getBoundingClientRect(); \
             const box = e.getBoundingClientRect(); \
             return { text: e.textContent, role: e.getAttribute('role'), \
                      inForm: e.closest('#try-form') !== null, gap: box.top - input.bottom, \
                      invalid: document.getElementById('try-program').getAttribute('aria-invalid'), \
                      status: document.getElementById('replay-status').textContent }")
        .await?;
    ensure!(
        error["text"]
            .as_str()
            .is_some_and(|t| t.contains("does not parse")),
        "{error}"
    );
    ensure!(
        error["role"] == json!("alert") && error["inForm"] == json!(true),
        "{error}"
    );
    ensure!(
        error["gap"]
            .as_f64()
            .is_some_and(|g| (0.0..24.0).contains(&g)),
        "{error}"
    );
    ensure!(error["invalid"] == json!("true"), "{error}");
    ensure!(
        !error["status"].as_str().unwrap_or("").contains("parse"),
        "the error is not in the stage's status line: {error}"
    );
    browser.screenshot("replay-1-inline-error").await?;
    // The stage is clean: task 2 at its start, no history, no trial chosen, nothing playing.
    let stage = "const root = document.getElementById('replay'); \
                 const board = document.getElementById('board'); \
                 const start = JSON.parse(root.dataset.replay).tasks[2].map.start; \
                 return { shown: root.dataset.shown, playing: root.dataset.playing, \
                          robot: board.dataset.robot, start: `${start.x},${start.y},${start.direction}`, \
                          lit: board.dataset.lit, \
                          entries: document.querySelectorAll('#timeline .timeline-entry').length, \
                          chosen: document.querySelectorAll('.trial-button.selected').length, \
                          tokens: document.querySelectorAll('#routines .token').length, \
                          highlighted: document.querySelectorAll('#routines .current').length }";
    let before = browser.js(stage).await?;
    // An animation left running would move the robot meanwhile.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = browser.js(stage).await?;
    ensure!(before == after, "the stage changed: {before} then {after}");
    ensure!(after["shown"] == json!("tasks/2"), "{after}");
    ensure!(after["playing"] == json!("false"), "{after}");
    ensure!(after["robot"] == after["start"], "{after}");
    ensure!(after["lit"] == json!(""), "{after}");
    ensure!(
        after["entries"] == json!(0) && after["chosen"] == json!(0),
        "{after}"
    );
    ensure!(
        after["tokens"] == json!(0) && after["highlighted"] == json!(0),
        "{after}"
    );

    // A program that parses runs from that clean stage, and the error goes away.
    let played = browser
        .js(&format!("return {ROOT}.dataset.played || '0'"))
        .await?;
    browser
        .js("document.getElementById('try-program').value = ''")
        .await?;
    browser
        .type_into("#try-program", "1LJL1RJR1|WWWS|||")
        .await?;
    let hidden = browser
        .js("return document.getElementById('try-error').hidden")
        .await?;
    ensure!(hidden == json!(true), "typing clears the error");
    browser.click("#try-run").await?;
    browser
        .wait_for_within(
            &format!("{ROOT}.dataset.played !== {played} && {ROOT}.dataset.playing === 'false'"),
            "the pasted program to play",
            Duration::from_secs(90),
        )
        .await?;
    let result = browser
        .js(&format!(
            "return {{ solved: {ROOT}.dataset.lastSolved, \
                       error: document.getElementById('try-error').hidden, \
                       lit: document.getElementById('board').dataset.allLit }}"
        ))
        .await?;
    ensure!(
        result == json!({ "solved": "true", "error": true, "lit": "true" }),
        "{result}"
    );
    browser.screenshot("replay-2-clean-run").await?;

    // An empty program is refused next to the input too.
    browser
        .js("document.getElementById('try-program').value = ''")
        .await?;
    browser.click("#try-run").await?;
    let empty = browser
        .wait_for(
            "!document.getElementById('try-error').hidden && document.getElementById('try-error').textContent",
            "the empty-program error",
        )
        .await?;
    ensure!(empty == json!("Type a program first."), "{empty}");
    browser.close().await;
    Ok(())
}
