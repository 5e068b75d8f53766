//! The researcher's level editor in headless Chromium: a level drawn on the grid (size, heights,
//! lights, the robot's start and heading) is checked live, saved to the server's levels folder
//! (and the save is in the audit log), accepted by `proglab experiment check` in a study, and
//! solved by a participant of that study in the browser. Bad file names and requests without the
//! CSRF token are refused. Screenshots go to `target/e2e-screenshots/level-editor-*.png`.

use std::path::Path;

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use super::own_study::complete_study;
use super::researcher::{add_ada, sign_in_as_ada};
use super::{Browser, Scratch, Server, browser_or_skip, free_port};
use crate::support::proglab;

/// `proglab serve` for `study`, saving level files into `levels`.
fn start_server(url: &str, study: &Path, levels: &Path) -> anyhow::Result<Server> {
    let mut server = Server {
        child: None,
        port: free_port()?,
        args: Vec::new(),
    };
    server.args = [
        "serve",
        "--database-url",
        url,
        "--listen",
        &format!("127.0.0.1:{}", server.port),
        "--experiment",
        &study.display().to_string(),
        "--levels-dir",
        &levels.display().to_string(),
        "--static-dir",
        &super::workspace_root().join("static").display().to_string(),
    ]
    .map(str::to_owned)
    .to_vec();
    server.spawn()?;
    Ok(server)
}

/// Waits until the editor's check of the current level has come back.
async fn checked(browser: &Browser) -> anyhow::Result<Value> {
    browser
        .wait_for(
            "(() => { const r = document.getElementById('level-editor');
               return r.dataset.check === 'done' ? { solvable: r.dataset.solvable, steps: r.dataset.steps } : null; })()",
            "the check",
        )
        .await
}

/// A `fetch` from the page: the response's status.
async fn status_of(browser: &Browser, url: &str, csrf: bool, body: Value) -> anyhow::Result<i64> {
    let script = format!(
        "const done = arguments[arguments.length - 1];
         const data = JSON.parse(document.getElementById('level-editor').dataset.editor);
         const headers = {{ 'content-type': 'application/json' }};
         if ({csrf}) headers['x-csrf-token'] = data.csrf;
         fetch('{url}', {{ method: 'POST', credentials: 'same-origin', headers, body: JSON.stringify({body}) }})
           .then((r) => done(r.status), () => done(0));"
    );
    let status = browser.client().execute_async(&script, Vec::new()).await?;
    status.as_i64().context("a status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_level_drawn_in_the_editor_is_checked_saved_and_solved_by_a_participant()
-> anyhow::Result<()> {
    let Some(binaries) =
        browser_or_skip("a_level_drawn_in_the_editor_is_checked_saved_and_solved_by_a_participant")
    else {
        return Ok(());
    };
    let scratch = Scratch::new("level-editor")?;
    let dir = scratch.path().display().to_string();
    proglab(&["experiment", "new", "edited", "--dir", &dir], None)?;
    let study = scratch.path().join("edited.toml");
    let levels = scratch.path().join("levels");
    let url = format!("sqlite://{}", scratch.path().join("study.db").display());
    add_ada(&url)?;
    let mut server = start_server(&url, &study, &levels)?;
    let browser = Browser::start(&binaries, 1400, 1000).await?;
    let outcome = draw_save_and_play(&browser, &mut server, &study, &levels).await;
    browser.close().await;
    outcome
}

async fn draw_save_and_play(
    browser: &Browser,
    server: &mut Server,
    study: &Path,
    levels: &Path,
) -> anyhow::Result<()> {
    // Sign in, and follow the navigation's link to the editor.
    sign_in_as_ada(browser, server).await?;
    browser.click("a[href='/researcher/levels/editor']").await?;
    browser
        .wait_for(
            "document.getElementById('level-editor')?.dataset.ready === 'true'",
            "the editor",
        )
        .await?;
    // The starting level (a row of four, the light at the end) is solved by walking.
    let first = checked(browser).await?;
    ensure!(
        first == json!({ "solvable": "true", "steps": "4" }),
        "{first}"
    );

    // Three wide, two deep: the light at x = 3 falls off, so the level has no light and says so.
    browser
        .js(
            "const w = document.getElementById('le-width'); w.value = '3';
             w.dispatchEvent(new Event('change'));
             const h = document.getElementById('le-height'); h.value = '2';
             h.dispatchEvent(new Event('change'));",
        )
        .await?;
    checked(browser).await?;
    let status = browser
        .js("return document.getElementById('le-check-status').textContent")
        .await?;
    ensure!(
        status
            .as_str()
            .is_some_and(|s| s.contains("no light tiles")),
        "{status}"
    );
    // A step up at (1, 0) and a light out of reach on a tower at (2, 1): unsolvable.
    browser.click("#le-tool-raise").await?;
    browser.click("#le-cell-1-0").await?;
    for _ in 0..3 {
        browser.click("#le-cell-2-1").await?;
    }
    browser.click("#le-tool-light").await?;
    browser.click("#le-cell-2-1").await?;
    let unsolvable = checked(browser).await?;
    ensure!(unsolvable["solvable"] == "false", "{unsolvable}");
    // Lower the tower to one step above the block in front of it, add a light behind the step,
    // and start the robot at (0, 1) facing south-east (towards y = 0).
    browser.click("#le-tool-lower").await?;
    browser.click("#le-cell-2-1").await?;
    browser.click("#le-cell-2-1").await?;
    browser.click("#le-tool-light").await?;
    browser.click("#le-cell-2-0").await?;
    browser.click("#le-tool-start").await?;
    browser.click("#le-cell-0-1").await?;
    browser
        .js(
            "const d = document.getElementById('le-direction'); d.value = '0';
             d.dispatchEvent(new Event('change'));",
        )
        .await?;
    let solvable = checked(browser).await?;
    ensure!(solvable["solvable"] == "true", "{solvable}");
    let figures = browser
        .js("return ['le-steps', 'le-states', 'le-candidates'].map((id) => document.getElementById(id).textContent)")
        .await?;
    ensure!(
        figures[2]
            .as_str()
            .is_some_and(|c| c.chars().next().is_some_and(|d| d.is_ascii_digit())),
        "the candidates are counted: {figures}"
    );
    // The participant's view shows the level: the isometric world, then the flat grid.
    ensure!(
        browser
            .js("return document.querySelectorAll('#le-board svg').length")
            .await?
            == json!(1)
    );
    browser.screenshot("level-editor-1-drawn").await?;
    browser
        .js(
            "const v = document.getElementById('le-view'); v.value = 'flat';
             v.dispatchEvent(new Event('change'));",
        )
        .await?;
    browser
        .wait_for(
            "document.getElementById('le-board').dataset.view === 'flat'",
            "the flat view",
        )
        .await?;

    // Saving: a bad name and a request without the CSRF token are refused.
    let level = browser
        .js("return JSON.parse(document.getElementById('le-json').textContent)[0]")
        .await?;
    let refused = status_of(
        browser,
        "/researcher/levels/save",
        true,
        json!({ "name": "../escape", "level": level }),
    )
    .await?;
    ensure!(refused == 400, "a path as a file name: {refused}");
    let forged = status_of(
        browser,
        "/researcher/levels/save",
        false,
        json!({ "name": "forged", "level": level }),
    )
    .await?;
    ensure!(forged == 403, "a save without the CSRF token: {forged}");
    ensure!(!levels.join("forged.json").exists() && !scratch_has(levels, "escape"));

    browser.type_into("#le-name", "step-up").await?;
    browser.click("#le-save").await?;
    browser
        .wait_for(
            "document.getElementById('level-editor').dataset.saved === 'step-up'",
            "the save",
        )
        .await?;
    browser.screenshot("level-editor-2-saved").await?;
    let saved = levels.join("step-up.json");
    let task = dsl::Task::from_level_file(&std::fs::read_to_string(&saved)?, "step-up.json", 0)?;
    ensure!(
        (
            task.width,
            task.height,
            task.n_lights,
            task.start_x,
            task.start_y
        ) == (3, 2, 2, 0, 1),
        "saved {task:?}"
    );
    // Saving again under the same name needs "Replace".
    browser.click("#le-save").await?;
    browser
        .wait_for(
            "document.getElementById('le-save-status').textContent.includes('exists already')",
            "the refusal to overwrite",
        )
        .await?;
    // The saved file opens again in the editor.
    browser
        .js("document.getElementById('le-open-file').value = 'step-up'")
        .await?;
    browser.click("#le-open").await?;
    browser
        .wait_for(
            "document.getElementById('le-save-status').textContent.startsWith('Opened step-up.json')",
            "the file to open",
        )
        .await?;
    let reopened = checked(browser).await?;
    ensure!(
        reopened == solvable,
        "reopened: {reopened}, drawn: {solvable}"
    );
    browser.goto(&server.url("/researcher/audit")).await?;
    let audit = browser.js("return document.body.textContent").await?;
    ensure!(
        audit
            .as_str()
            .is_some_and(|t| t.contains("level_save") && t.contains("step-up.json")),
        "the save is not in the audit log"
    );

    // A study whose task is the saved level passes the check, and a participant solves it.
    let mut table: toml::Table = std::fs::read_to_string(study)?.parse()?;
    let mut entry = toml::Table::new();
    entry.insert("map".into(), "levels/step-up.json".into());
    entry.insert("level".into(), 0.into());
    entry.insert("label".into(), "step-up".into());
    table.insert("tasks".into(), toml::Value::Array(vec![entry.into()]));
    std::fs::write(study, toml::to_string(&table)?)?;
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
    server.restart()?;
    let experiment = server::experiment::load_file(study)?;
    let served = &experiment.tasks[0].task;
    ensure!(
        experiment.tasks.len() == 1
            && (&served.heights, &served.lights, served.start_direction)
                == (&task.heights, &task.lights, task.start_direction),
        "the study does not serve the saved level"
    );
    let code = complete_study(browser, server, &experiment, "edited-1", "level-editor-3").await?;
    ensure!(code == "REPLACE-ME", "completion code {code}");
    Ok(())
}

/// Whether any file under `dir`'s parent is named `name` with a `.json` extension.
fn scratch_has(dir: &Path, name: &str) -> bool {
    let parent = dir.parent().unwrap_or(dir);
    [
        parent.join(format!("{name}.json")),
        dir.join(format!("{name}.json")),
    ]
    .iter()
    .any(|p| p.exists())
}
