//! A study of the lab's own design, end to end: `proglab experiment new` writes it, `proglab
//! experiment check` accepts it, the real `proglab serve` runs it, and a participant goes through
//! it in headless Chromium (consent, the tutorial screen, the practice level, the instructions,
//! both tasks solved with shortest programs, the questionnaire, the completion code).
//! Screenshots go to `target/e2e-screenshots/own-study-*.png`.

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use super::{Browser, Scratch, Server, browser_or_skip, free_port, shortest_program};
use crate::support::proglab;

/// Goes through `experiment` (served as `slug`) as a participant with recruiter ID `pid`, solving
/// every level with a shortest program clicked in from the palette; returns the completion code.
/// `shots` names the screenshots (`{shots}-consent` and so on).
pub(super) async fn complete_study(
    browser: &Browser,
    server: &Server,
    experiment: &server::experiment::Experiment,
    pid: &str,
    shots: &str,
) -> anyhow::Result<String> {
    let slug = experiment.slug.as_str();
    browser
        .goto(&server.url(&format!("/e/{slug}?PROLIFIC_PID={pid}")))
        .await?;
    browser
        .wait_for(
            "document.querySelector('#proglab-app button')",
            "the start button",
        )
        .await?;
    browser.click("#proglab-app button").await?;
    let mut page = browser.page().await?;
    ensure!(page.kind == "consent", "expected consent, got {page:?}");
    // The study's own consent text, from its own file.
    let consent = browser.js("return document.body.textContent").await?;
    ensure!(
        consent
            .as_str()
            .is_some_and(|t| t.contains("replace this text with the consent form")),
        "the consent page does not show the study's consent text"
    );
    browser.screenshot(&format!("{shots}-consent")).await?;
    browser.click("#agree").await?;
    page = browser.next_page(page.step).await?;
    let mut solved = 0;
    loop {
        match page.kind.as_str() {
            "screen" => browser.click("#continue").await?,
            "task" => {
                let trial = page.trial.clone().context("a task page has a trial")?;
                let index = trial["task_index"].as_u64().context("task_index")? as usize;
                let task = match trial["phase"].as_str().unwrap_or_default() {
                    "practice" => &experiment.practice[index].task,
                    "tasks" => &experiment.tasks[index].task,
                    "tutorial" => {
                        &experiment.tutorial[index]
                            .level
                            .as_ref()
                            .context("a tutorial task has a level")?
                            .task
                    }
                    other => bail!("unexpected phase {other}"),
                };
                let program = shortest_program(task, experiment.light)?;
                browser.click_program(&program).await?;
                if solved == 0 {
                    browser.screenshot(&format!("{shots}-task")).await?;
                }
                browser.click("#quick-run").await?;
                browser
                    .wait_for(
                        "document.getElementById('success-dialog').open",
                        "the success dialog",
                    )
                    .await?;
                browser.click("#success-submit").await?;
                solved += 1;
            }
            "questionnaire" => break,
            other => bail!("unexpected page {other} at step {}", page.step),
        }
        page = browser.next_page(page.step).await?;
    }
    ensure!(
        solved == experiment.practice.len() + experiment.tasks.len(),
        "{solved} levels solved"
    );
    browser
        .click("input[name='programming_exp'][value='None']")
        .await?;
    browser.click("#questionnaire-submit").await?;
    page = browser.next_page(page.step).await?;
    ensure!(
        page.page == "done",
        "expected the completion page, got {page:?}"
    );
    let code = browser
        .wait_for(
            "document.getElementById('completion-code')?.textContent",
            "the completion code",
        )
        .await?;
    browser.screenshot(&format!("{shots}-done")).await?;
    match code {
        Value::String(code) => Ok(code),
        other => bail!("completion code {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_study_is_checked_served_and_completed_in_a_browser() -> anyhow::Result<()> {
    let Some(binaries) =
        browser_or_skip("a_new_study_is_checked_served_and_completed_in_a_browser")
    else {
        return Ok(());
    };
    let scratch = Scratch::new("own-study")?;
    let dir = scratch.path().display().to_string();
    proglab(&["experiment", "new", "own-study", "--dir", &dir], None)?;
    let study = scratch.path().join("own-study.toml");
    let study_arg = study.display().to_string();
    proglab(
        &[
            "experiment",
            "check",
            &study_arg,
            "--candidate-limit",
            "20000",
        ],
        None,
    )?;
    let experiment = server::experiment::load_file(&study)?;
    let url = format!("sqlite://{}", scratch.path().join("study.db").display());
    let server = Server::start(&url, &study, free_port()?)?;
    let browser = Browser::start(&binaries, 1280, 900).await?;
    let outcome = complete_study(&browser, &server, &experiment, "own-1", "own-study").await;
    browser.close().await;
    let code = outcome?;
    ensure!(code == "REPLACE-ME", "completion code {code}");
    Ok(())
}
