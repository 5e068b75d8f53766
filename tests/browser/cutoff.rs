//! The server goes away in the middle of a task (killed, no goodbye) and comes back on the same
//! database: the page says it is reconnecting, keeps everything the participant does meanwhile,
//! and once the server is back sends it all, finishes the run that was waiting, and lets the
//! participant submit. Nothing is missing in the database.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::Value;
use server::domain::TrialOutcome;

use super::{
    Browser, Scratch, Server, browser_or_skip, free_port, program_tokens, published_programs,
    write_experiment,
};

const PARTICIPANT: &str = "browser-cutoff-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_reconnects_after_the_server_is_cut_off_and_loses_nothing() {
    let Some(binaries) = browser_or_skip("server cut-off browser test") else {
        return;
    };
    let scratch = Scratch::new("browser-cutoff").unwrap();
    // Straight from consent to the problems: this test is about the task page.
    let experiment_path = write_experiment(scratch.path(), |table| {
        table.remove("tutorial");
        table.remove("practice");
        table.remove("instructions");
        if let Some(completion) = table.get_mut("completion").and_then(|c| c.as_table_mut()) {
            completion.remove("redirect_url");
        }
    })
    .unwrap();
    let database_url = format!("sqlite://{}", scratch.path().join("cutoff.db").display());
    let mut server = Server::start(&database_url, &experiment_path, free_port().unwrap()).unwrap();

    let browser = Browser::start(&binaries, 1280, 900).await.unwrap();
    let outcome = cut_off_mid_task(&browser, &mut server).await;
    browser.close().await;
    let (session_id, last_seq, program) = outcome.unwrap();

    // Everything the participant did is stored: each event once, the run made while the server
    // was away, and the submitted program.
    let store = server::store::connect(&database_url).await.unwrap().store;
    let record = store.session_record(&session_id).await.unwrap();
    let seqs: Vec<i64> = record.events.iter().map(|e| e.seq).collect();
    let unique: BTreeSet<i64> = seqs.iter().copied().collect();
    assert_eq!(unique.len(), seqs.len(), "an event is stored twice");
    assert_eq!(
        unique,
        (1..=last_seq).collect::<BTreeSet<_>>(),
        "events missing"
    );
    let edits: Vec<&Value> = record
        .events
        .iter()
        .filter(|e| e.kind == "edit")
        .map(|e| &e.data["program"])
        .collect();
    let letters = program.chars().filter(|c| *c != '|').count();
    assert_eq!(
        edits.len(),
        letters,
        "one edit event per instruction clicked"
    );
    assert_eq!(
        edits.last().and_then(|p| p.as_str()),
        Some(program.as_str())
    );
    assert_eq!(
        record.runs.len(),
        1,
        "the run made while the server was away"
    );
    assert_eq!(record.runs[0].program, program);
    assert_eq!(record.runs[0].mode, "quick_run");
    let first = record
        .trials
        .iter()
        .find(|t| t.phase == "tasks" && t.position == 0)
        .unwrap();
    assert_eq!(first.outcome, Some(TrialOutcome::Submitted));
    assert_eq!(first.program.as_deref(), Some(program.as_str()));
    store.close().await;
}

/// Returns the session, its last event number, and the program written.
async fn cut_off_mid_task(
    browser: &Browser,
    server: &mut Server,
) -> anyhow::Result<(String, i64, String)> {
    browser
        .start_study(server, &format!("?PROLIFIC_PID={PARTICIPANT}"))
        .await?;
    let consent = browser.page().await?;
    browser.click("#agree").await?;
    let page = browser.next_page(consent.step).await?;
    let trial = page.trial.clone().context("the first problem")?;
    let task = trial["task_index"].as_i64().context("task_index")?;
    let program = published_programs()?[&task].clone();

    // The first instructions reach the server.
    let tokens = program_tokens(&program);
    let half = tokens.len() / 2;
    browser.click_tokens(&tokens[..half]).await?;
    let session = page.session_id.clone();
    browser
        .wait_for(
            &format!(
                "JSON.parse(localStorage.getItem('proglab:{session}:events') || '[]').length === 0"
            ),
            "the first edits to be stored",
        )
        .await?;

    // The server dies. The participant goes on writing and presses Quick Run.
    server.kill();
    browser.click_tokens(&tokens[half..]).await?;
    browser
        .wait_for(
            "!document.getElementById('connection').hidden",
            "the reconnecting notice",
        )
        .await?;
    ensure!(
        browser.program().await? == program,
        "the editor shows {}",
        browser.program().await?
    );
    browser.click("#quick-run").await?;
    browser
        .wait_for(
            "document.getElementById('app').dataset.status === 'waiting'",
            "the run to wait",
        )
        .await?;
    let pending = browser.event_counters(&session).await?.1;
    ensure!(
        pending > 0,
        "no events are waiting while the server is away"
    );
    browser.screenshot("20-cutoff-reconnecting").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Still waiting, still editing nothing, still saying so.
    ensure!(
        browser
            .js("return document.getElementById('connection').hidden")
            .await?
            == Value::Bool(false)
    );

    // Back on the same database: the page catches up by itself.
    server.restart()?;
    browser
        .wait_for_within(
            "document.getElementById('success-dialog').open",
            "the waiting run to finish",
            Duration::from_secs(30),
        )
        .await?;
    browser
        .wait_for_within(
            &format!("document.getElementById('connection').hidden && JSON.parse(localStorage.getItem('proglab:{session}:events') || '[]').length === 0"),
            "the events to be stored",
            Duration::from_secs(30),
        )
        .await?;
    browser.screenshot("21-cutoff-recovered").await?;
    browser.click("#success-submit").await?;
    let next = browser.next_page(page.step).await?;
    ensure!(next.kind == "task", "after submitting: {next:?}");
    // The next page's own event may still be on its way.
    browser
        .wait_for(
            &format!(
                "JSON.parse(localStorage.getItem('proglab:{session}:events') || '[]').length === 0"
            ),
            "the last events",
        )
        .await?;
    let (last_seq, _) = browser.event_counters(&session).await?;
    Ok((session, last_seq, program))
}
