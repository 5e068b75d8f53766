//! Arrivals in headless Chromium, each checked in the database: an arrival without `PROLIFIC_PID`
//! is refused, a 390x844 touch phone fails the bundled study's device check, a second browser
//! with the same `PROLIFIC_PID` and `SESSION_ID` continues the session (the first is told so), a
//! solved task can still be submitted after "Go back" and a failed attempt to improve it, and a
//! researcher's preview session is left out of the export unless asked for.
//! Screenshots: `target/e2e-screenshots/entry-*.png`.

use std::collections::BTreeSet;

use anyhow::{Context, ensure};
use serde_json::Value;
use server::domain::TrialOutcome;
use server::store::Store;

use super::researcher::{database_with_researcher, sign_in_as_ada};
use super::{Browser, Scratch, Server, browser_or_skip, free_port, shortest_program};

const PID: &str = "entry-participant";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrivals_resumes_refusals_a_kept_solution_and_previews() {
    let Some(binaries) = browser_or_skip("entry") else {
        return;
    };
    let scratch = Scratch::new("entry").unwrap();
    // The bundled study, its account `ada`, and a file without the screens before the tasks, so
    // that the first step after consent is a main task.
    let (database_url, _) = database_with_researcher(&scratch).unwrap();
    let experiment = super::write_experiment(scratch.path(), |table| {
        for key in ["tutorial", "practice", "instructions"] {
            table.remove(key);
        }
    })
    .unwrap();
    let server = Server::start(&database_url, &experiment, free_port().unwrap()).unwrap();
    let store = server::store::connect(&database_url).await.unwrap().store;

    refuse_without_recruiter_id(&binaries, &server, store.as_ref())
        .await
        .unwrap();
    refuse_a_phone(&binaries, &server, store.as_ref())
        .await
        .unwrap();
    let session_id = continue_in_a_second_browser(&binaries, &server, store.as_ref())
        .await
        .unwrap();
    let trials = store.session_record(&session_id).await.unwrap().trials;
    ensure_submitted_after_go_back(&trials).unwrap();
    preview_is_left_out_of_the_export(&binaries, &server, store.as_ref())
        .await
        .unwrap();
}

/// A task page asks for full screen at the first click; the click on the board that grants it,
/// and the resize settling, come before the clicks that matter.
async fn settle_fullscreen(browser: &Browser) -> anyhow::Result<()> {
    browser.click("#board").await?;
    browser
        .wait_for("document.fullscreenElement", "full screen")
        .await?;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    Ok(())
}

async fn refuse_without_recruiter_id(
    binaries: &(std::path::PathBuf, std::path::PathBuf),
    server: &Server,
    store: &dyn Store,
) -> anyhow::Result<()> {
    let browser = Browser::start(binaries, 1280, 800).await?;
    browser.start_study(server, "?STUDY_ID=s1").await?;
    let refused = browser
        .wait_for(
            "document.getElementById('proglab-app').dataset.refused",
            "the refusal",
        )
        .await?;
    ensure!(refused == "recruiter_id_missing", "refused as {refused}");
    let message = browser
        .js("return document.querySelector('#proglab-app .page-error').textContent")
        .await?;
    ensure!(
        message.as_str().is_some_and(|m| m.contains("PROLIFIC_PID")),
        "the page says {message}"
    );
    browser.screenshot("entry-1-no-recruiter-id").await?;
    browser.close().await;
    let arrivals = store.refused_arrivals("correa2025").await?;
    ensure!(
        arrivals.len() == 1 && arrivals[0].reason == "recruiter_id_missing",
        "{arrivals:?}"
    );
    ensure!(store.sessions_of("correa2025").await?.is_empty());
    Ok(())
}

async fn refuse_a_phone(
    binaries: &(std::path::PathBuf, std::path::PathBuf),
    server: &Server,
    store: &dyn Store,
) -> anyhow::Result<()> {
    let browser = Browser::start_phone(binaries, 390, 844).await?;
    browser
        .start_study(server, "?PROLIFIC_PID=phone-user")
        .await?;
    let refused = browser
        .wait_for(
            "document.getElementById('proglab-app').dataset.refused",
            "the refusal",
        )
        .await?;
    ensure!(refused == "device_not_supported", "refused as {refused}");
    browser.screenshot("entry-2-phone-refused").await?;
    browser.close().await;
    let arrivals = store.refused_arrivals("correa2025").await?;
    let phone = arrivals.last().context("no refusal stored")?;
    ensure!(phone.reason == "device_not_supported", "{phone:?}");
    ensure!(phone.recruiter_id.as_deref() == Some("phone-user"));
    let device = phone.device.clone().context("no device stored")?;
    ensure!(
        device["width"] == 390 && device["touch"] == true,
        "measured {device}"
    );
    Ok(())
}

async fn continue_in_a_second_browser(
    binaries: &(std::path::PathBuf, std::path::PathBuf),
    server: &Server,
    store: &dyn Store,
) -> anyhow::Result<String> {
    let query = format!("?PROLIFIC_PID={PID}&STUDY_ID=s1&SESSION_ID=sub-1");
    let first = Browser::start(binaries, 1280, 800).await?;
    first.start_study(server, &query).await?;
    let page = first.page().await?;
    ensure!(page.kind == "consent", "expected consent, got {page:?}");
    first.click("#agree").await?;
    let page = first.next_page(page.step).await?;
    ensure!(page.kind == "task", "expected the first task, got {page:?}");
    let session_id = page.session_id.clone();

    // The same participant opens the link in another browser: the same session, where it was.
    let second = Browser::start(binaries, 1280, 800).await?;
    second.start_study(server, &query).await?;
    let resumed = second.page().await?;
    ensure!(
        resumed.session_id == session_id && resumed.step == page.step,
        "the second browser got {resumed:?}"
    );
    second.screenshot("entry-3-second-browser").await?;

    // The first browser's next request says where the session went: a click there goes full
    // screen, and the event recording it is refused.
    first.click("#board").await?;
    first
        .wait_for(
            "document.getElementById('app').dataset.moved === 'true'",
            "the continued-elsewhere notice",
        )
        .await?;
    first.screenshot("entry-4-continued-elsewhere").await?;
    first.close().await;

    settle_fullscreen(&second).await?;
    submit_after_go_back(&second, page.step).await?;
    second.close().await;

    let sessions = store.sessions_of("correa2025").await?;
    ensure!(sessions.len() == 1, "{} sessions", sessions.len());
    Ok(session_id)
}

/// Solve, "Go back", make the program worse, and submit the kept solution from the Submit bar.
async fn submit_after_go_back(browser: &Browser, step: i64) -> anyhow::Result<()> {
    let task = &dsl::tasks::lookup("correa2025/a").context("task a")?.task;
    let solution = shortest_program(task, dsl::LightMode::Toggle)?;
    browser.click_program(&solution).await?;
    browser.click("#quick-run").await?;
    browser
        .wait_for(
            "document.getElementById('success-dialog').open",
            "the success dialog",
        )
        .await?;
    browser.click("#success-back").await?;
    browser
        .wait_for(
            "!document.getElementById('solution-bar').hidden",
            "the Submit bar",
        )
        .await?;
    // An attempt to improve it that fails: Main cleared, one Walk, run.
    browser
        .click("#routines .routine[data-routine='0'] .routine-clear")
        .await?;
    browser.click_program("W").await?;
    browser.click("#quick-run").await?;
    browser
        .wait_for(
            "document.getElementById('app').dataset.status === 'finished'",
            "the failed run",
        )
        .await?;
    let open = browser
        .js("return document.getElementById('success-dialog').open")
        .await?;
    ensure!(open == false, "the worse program solved the task");
    browser.screenshot("entry-5-submit-after-go-back").await?;
    browser.click("#submit-solution").await?;
    browser.next_page(step).await?;
    Ok(())
}

fn ensure_submitted_after_go_back(trials: &[server::store::Trial]) -> anyhow::Result<()> {
    let task = &dsl::tasks::lookup("correa2025/a").context("task a")?.task;
    let solution = shortest_program(task, dsl::LightMode::Toggle)?;
    let first = trials.first().context("no trial stored")?;
    ensure!(
        first.outcome == Some(TrialOutcome::Submitted),
        "the first task ended as {:?}",
        first.outcome
    );
    let submitted = first.program.as_deref().unwrap_or_default();
    ensure!(
        submitted.split('|').next() == Some(solution.as_str()),
        "submitted {submitted}, the solution was {solution}"
    );
    Ok(())
}

/// Events export lines' participants, downloaded from the dashboard's form.
async fn exported_participants(
    browser: &Browser,
    include_preview: bool,
) -> anyhow::Result<BTreeSet<String>> {
    let script = format!(
        "const csrf = document.querySelector('#export-form input[name=csrf]').value;
         const body = new URLSearchParams({{ csrf, format: 'events-jsonl' }});
         if ({include_preview}) body.set('include_preview', '1');
         const response = await fetch('/researcher/experiments/correa2025/export', {{ method: 'POST', body }});
         return await response.text();"
    );
    let text = browser
        .client()
        .execute_async(
            &format!("const done = arguments[arguments.length - 1]; (async () => {{ {script} }})().then(done, e => done(String(e)));"),
            Vec::new(),
        )
        .await?;
    let text = text.as_str().context("no export text")?.to_owned();
    let mut participants = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let value: Value = serde_json::from_str(line).with_context(|| format!("line {line}"))?;
        participants.insert(value["participant"].as_str().unwrap_or_default().to_owned());
    }
    Ok(participants)
}

async fn preview_is_left_out_of_the_export(
    binaries: &(std::path::PathBuf, std::path::PathBuf),
    server: &Server,
    store: &dyn Store,
) -> anyhow::Result<()> {
    let browser = Browser::start(binaries, 1280, 800).await?;
    // Signing in waits for the page it leads to: navigating away at once could cancel the form's
    // submission before its cookie is set.
    sign_in_as_ada(&browser, server).await?;
    browser
        .goto(&server.url("/researcher/experiments/correa2025"))
        .await?;
    browser
        .wait_for(
            "document.getElementById('preview-form')",
            "the preview button",
        )
        .await?;
    let before = exported_participants(&browser, false).await?;
    browser.click("#preview-form button").await?;
    let page = browser.page().await?;
    ensure!(page.kind == "consent", "the preview opened {page:?}");
    browser.click("#agree").await?;
    browser.next_page(page.step).await?;
    settle_fullscreen(&browser).await?;
    browser.click_program("W").await?;
    // Wait until the preview's events are stored.
    let preview = loop {
        let sessions = store.sessions_of("correa2025").await?;
        if let Some(p) = sessions.iter().find(|s| s.preview)
            && !store.session_record(&p.id).await?.events.is_empty()
        {
            break p.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    ensure!(preview.recruiter_id.is_none(), "{preview:?}");
    browser
        .goto(&server.url("/researcher/experiments/correa2025"))
        .await?;
    browser
        .wait_for("document.getElementById('export-form')", "the dashboard")
        .await?;
    let status = browser
        .js("return [...document.querySelectorAll('#participants tbody tr td:nth-child(2)')].map(td => td.textContent)")
        .await?;
    ensure!(
        status.to_string().contains("(preview)"),
        "the dashboard shows {status}"
    );
    browser.screenshot("entry-6-dashboard-with-preview").await?;
    let without = exported_participants(&browser, false).await?;
    let with = exported_participants(&browser, true).await?;
    ensure!(
        without == before,
        "the export changed: {before:?} -> {without:?}"
    );
    ensure!(
        with.len() == without.len() + 1 && without.is_subset(&with),
        "with previews {with:?}, without {without:?}"
    );
    browser.close().await;
    Ok(())
}
