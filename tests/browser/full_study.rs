//! A participant goes through the whole bundled study in headless Chromium, as a person would:
//! the front door, consent, every tutorial screen and level, the practice problem, the
//! instructions, the ten problems (each solved with a published program clicked in from the
//! palette, one reloaded half-way, one skipped after the delay, one run with animation), the
//! questionnaire and the completion code. Along the way: the favicon, the Skip countdown, the
//! progress label (full at the end), one camera turn, and full screen on the main-task pages
//! (entered at the first click, left before the next page, and left for good by the participant on
//! the second task). Then the database must hold every event once (the camera turn and the
//! full-screen changes among them), every trial and the answers. A second participant declines
//! consent.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use fantoccini::Locator;
use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use serde_json::Value;
use server::domain::{SessionStatus, TrialOutcome};

use super::{
    Browser, PageInfo, Scratch, Server, browser_or_skip, free_port, program_tokens,
    published_programs, shortest_program, write_experiment,
};

/// Short, so the test can skip a task without waiting 3.5 minutes.
const SKIP_DELAY_SECONDS: i64 = 8;
/// The main task (position in the order) skipped, and the one reloaded half-way.
const SKIPPED_POSITION: i64 = 5;
const RELOADED_POSITION: i64 = 2;
/// The main task run with animation (Run rather than Quick Run).
const ANIMATED_POSITION: i64 = 2;
const PARTICIPANT: &str = "browser-participant-1";

/// What the test did, to compare with the database.
#[derive(Default)]
struct Done {
    edits: usize,
    runs: usize,
    /// Step -> submitted program (compact form, as the editor has it).
    submitted: BTreeMap<i64, String>,
    skipped: BTreeSet<i64>,
    /// The reloaded task's step and the program the reload had to keep.
    reload: Option<(i64, String)>,
    answers: BTreeMap<String, String>,
    screens: usize,
    /// The main task where the camera was turned.
    camera_step: Option<i64>,
    last_seq: i64,
    session_id: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_completes_the_bundled_study_in_a_real_browser() {
    let Some(binaries) = browser_or_skip("full study browser test") else {
        return;
    };
    let scratch = Scratch::new("browser-study").unwrap();
    let port = free_port().unwrap();
    let experiment_path = write_experiment(scratch.path(), |table| {
        table.insert("skip_delay_seconds".into(), SKIP_DELAY_SECONDS.into());
        // Back to this server rather than to Prolific: the test must not leave the machine.
        let completion = table["completion"].as_table_mut().expect("[completion]");
        completion.insert(
            "redirect_url".into(),
            format!("http://127.0.0.1:{port}/?returned=[COMPLETION_CODE]").into(),
        );
    })
    .unwrap();
    let experiment = server::experiment::load_file(&experiment_path).unwrap();
    let database_url = format!("sqlite://{}", scratch.path().join("study.db").display());
    let server = Server::start(&database_url, &experiment_path, port).unwrap();

    let browser = Browser::start(&binaries, 1280, 900).await.unwrap();
    let outcome = go_through_the_study(&browser, &server, &experiment).await;
    let declined = if outcome.is_ok() {
        decline_consent(&browser, &server).await
    } else {
        Ok(())
    };
    browser.close().await;
    let done = outcome.unwrap();
    declined.unwrap();

    check_database(&database_url, &experiment, &done)
        .await
        .unwrap();
}

async fn go_through_the_study(
    browser: &Browser,
    server: &Server,
    experiment: &server::experiment::Experiment,
) -> anyhow::Result<Done> {
    let programs = published_programs()?;
    let mut done = Done::default();

    // The front door, with the recruiter's parameters.
    browser
        .goto(&server.url(&format!(
            "/e/correa2025?PROLIFIC_PID={PARTICIPANT}&STUDY_ID=study-1&SESSION_ID=visit-1"
        )))
        .await?;
    browser
        .wait_for(
            "document.querySelector('#proglab-app button')",
            "the start button",
        )
        .await?;
    browser.screenshot("01-front-door").await?;
    // Every page names an icon, and the address browsers try anyway answers with it.
    let icon = reqwest::get(server.url("/favicon.ico")).await?;
    ensure!(
        icon.status().is_success()
            && icon.headers()["content-type"]
                .to_str()
                .is_ok_and(|t| t.starts_with("image/svg+xml")),
        "favicon: {} {:?}",
        icon.status(),
        icon.headers().get("content-type")
    );
    let linked = browser
        .js("return document.querySelector('link[rel=icon]')?.getAttribute('href')")
        .await?;
    ensure!(linked == "/static/favicon.svg", "icon link {linked}");
    browser.click("#proglab-app button").await?;

    let mut page = browser.page().await?;
    ensure!(page.kind == "consent", "expected consent, got {page:?}");
    done.session_id = page.session_id.clone();
    browser.screenshot("02-consent").await?;
    browser.click("#agree").await?;
    page = browser.next_page(page.step).await?;

    let mut shot = Shots::default();
    let mut tutorial_tasks = 0;
    loop {
        match page.kind.as_str() {
            "screen" => {
                done.screens += 1;
                shot.screen(browser, &page).await?;
                browser.click("#continue").await?;
            }
            "task" => {
                ensure!(page.page == "task", "a task shown as {}", page.page);
                let trial = page.trial.clone().context("a task page has a trial")?;
                let phase = trial["phase"].as_str().unwrap_or_default().to_owned();
                let index = trial["task_index"].as_i64().context("task_index")? as usize;
                let position = trial["position"].as_i64().context("position")?;
                match phase.as_str() {
                    "tutorial" => {
                        let task = &experiment.tutorial[index]
                            .level
                            .as_ref()
                            .context("level")?
                            .task;
                        let program = format!("{}|", shortest_program(task, experiment.light)?);
                        tutorial_tasks += 1;
                        // The first level to solve teaches Walk and Light: drag and drop, the
                        // keyboard, and Step through.
                        if tutorial_tasks == 2 {
                            drag_and_drop(browser, &mut done).await?;
                            browser.screenshot("04-tutorial-task").await?;
                            done.edits += browser.click_program(&program).await?;
                            step_through(browser, &mut done).await?;
                        } else {
                            done.edits += browser.click_program(&program).await?;
                            run_animated(browser, &mut done).await?;
                        }
                        submit(browser, &page, &program, &mut done).await?;
                    }
                    "practice" => {
                        let task = &experiment.practice[index].task;
                        let program = format!("{}||||", shortest_program(task, experiment.light)?);
                        browser.screenshot("06-practice").await?;
                        done.edits += browser.click_program(&program).await?;
                        quick_run(browser, &mut done).await?;
                        submit(browser, &page, &program, &mut done).await?;
                    }
                    "tasks" => {
                        main_task(
                            browser,
                            &page,
                            position,
                            &programs[&(index as i64)],
                            &mut done,
                        )
                        .await?;
                    }
                    other => bail!("unexpected phase {other}"),
                }
            }
            "questionnaire" => break,
            other => bail!("unexpected page {other} at step {}", page.step),
        }
        page = browser.next_page(page.step).await?;
    }

    questionnaire(browser, &mut done).await?;
    page = browser.next_page(page.step).await?;
    // First "complete" (the page sends what is pending and completes), then "done".
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
    ensure!(code == "CORREA2025", "completion code {code}");
    // The progress bar is full, and says so.
    let progress = browser
        .js("const p = document.getElementById('study-progress');
             return [p.value === p.max, document.getElementById('progress-label').textContent]")
        .await?;
    ensure!(
        progress == serde_json::json!([true, "Finished"]),
        "progress at completion: {progress}"
    );
    let (last_seq, pending) = browser.event_counters(&done.session_id).await?;
    ensure!(pending == 0, "{pending} events still pending at completion");
    done.last_seq = last_seq;
    browser.screenshot("13-completion").await?;
    // Then back to the recruiter, with the code in the address.
    browser
        .wait_for_within(
            "location.search.includes('returned=CORREA2025')",
            "the redirect to the recruiter",
            Duration::from_secs(20),
        )
        .await?;
    Ok(done)
}

/// Screenshots of the first screen of each kind.
#[derive(Default)]
struct Shots {
    tutorial_demo: bool,
    tutorial_text: bool,
    instructions: bool,
    length: bool,
}

impl Shots {
    async fn screen(&mut self, browser: &Browser, page: &PageInfo) -> anyhow::Result<()> {
        let has_demo = browser
            .js("return Boolean(document.getElementById('demo-play'))")
            .await?
            == Value::Bool(true);
        let phase = page.phase.as_deref().unwrap_or_default();
        let name = match (phase, has_demo) {
            ("tutorial", true) if !self.tutorial_demo => {
                self.tutorial_demo = true;
                // The example waits for Play; let it play to its end, so the picture shows the
                // light on.
                browser.click("#demo-play").await?;
                browser
                    .wait_for_within(
                        "document.getElementById('board').dataset.allLit === 'true'",
                        "the example",
                        Duration::from_secs(15),
                    )
                    .await?;
                Some("03-tutorial-screen")
            }
            ("tutorial", false) if !self.tutorial_text => {
                self.tutorial_text = true;
                Some("05-tutorial-text-screen")
            }
            ("instructions", false) if !self.instructions => {
                self.instructions = true;
                Some("07-instructions")
            }
            ("instructions", true) if !self.length => {
                self.length = true;
                browser.click("#demo-play").await?;
                browser
                    .wait_for_within(
                        "document.getElementById('board').dataset.allLit === 'true'",
                        "the example",
                        Duration::from_secs(15),
                    )
                    .await?;
                Some("08-length-instructions")
            }
            _ => None,
        };
        if let Some(name) = name {
            browser.screenshot(name).await?;
        }
        Ok(())
    }
}

/// The tutorial level with Walk and Light: instructions dragged in, reordered by dragging, dragged out to
/// remove, and the list cleared.
async fn drag_and_drop(browser: &Browser, done: &mut Done) -> anyhow::Result<()> {
    let client = browser.client();
    let drag = |from: fantoccini::elements::Element,
                to: fantoccini::elements::Element,
                dx: f64,
                dy: f64| {
        MouseActions::new("mouse".into())
            .then(PointerAction::MoveToElement {
                element: from,
                duration: None,
                x: 0.0,
                y: 0.0,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::MoveBy {
                duration: Some(Duration::from_millis(80)),
                x: 12.0,
                y: 12.0,
            })
            .then(PointerAction::MoveToElement {
                element: to,
                duration: Some(Duration::from_millis(150)),
                x: dx,
                y: dy,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            })
    };
    let main = || client.find(Locator::Css("#routines .routine[data-routine='0'] .tokens"));
    let palette = |letter: &'static str| {
        client.find(Locator::Css(match letter {
            "W" => ".palette-item[data-letter='W']",
            _ => ".palette-item[data-letter='S']",
        }))
    };
    // Walk into Main, then Light after it.
    client
        .perform_actions(drag(palette("W").await?, main().await?, 0.0, 0.0))
        .await?;
    client
        .perform_actions(drag(palette("S").await?, main().await?, 100.0, 0.0))
        .await?;
    ensure!(
        browser.program().await? == "WS",
        "after two drags: {}",
        browser.program().await?
    );
    // Light moved before Walk: dropped on the left half of the first token.
    let first = client
        .find(Locator::Css(
            "#routines .routine[data-routine='0'] .token[data-index='0']",
        ))
        .await?;
    let light = client
        .find(Locator::Css(
            "#routines .routine[data-routine='0'] .token[data-index='1']",
        ))
        .await?;
    let (_, _, width, _) = first.rectangle().await?;
    client
        .perform_actions(drag(light, first, -width / 2.0 + 2.0, 0.0))
        .await?;
    ensure!(
        browser.program().await? == "SW",
        "after the reorder: {}",
        browser.program().await?
    );
    // Light dragged out of the lists (onto the palette's title) is removed.
    let light = client
        .find(Locator::Css(
            "#routines .routine[data-routine='0'] .token[data-index='0']",
        ))
        .await?;
    let title = client.find(Locator::Css("#palette-title")).await?;
    client.perform_actions(drag(light, title, 0.0, 0.0)).await?;
    ensure!(
        browser.program().await? == "W",
        "after dragging out: {}",
        browser.program().await?
    );
    // Keyboard: Delete on a focused instruction removes it; then Clear empties a list.
    done.edits += browser.click_program("SW|").await?;
    let light = client
        .find(Locator::Css(
            "#routines .routine[data-routine='0'] .token[data-index='1']",
        ))
        .await?;
    light
        .send_keys(&fantoccini::key::Key::Delete.to_string())
        .await?;
    ensure!(
        browser.program().await? == "WW",
        "after Delete: {}",
        browser.program().await?
    );
    browser
        .click("#routines .routine[data-routine='0'] .routine-clear")
        .await?;
    ensure!(
        browser.program().await?.is_empty(),
        "after Clear: {}",
        browser.program().await?
    );
    // Two drags in, one move, one drag out, Delete, Clear.
    done.edits += 6;
    Ok(())
}

async fn wait_for_success(browser: &Browser) -> anyhow::Result<()> {
    browser
        .wait_for_within(
            "document.getElementById('success-dialog').open",
            "the success dialog",
            Duration::from_secs(60),
        )
        .await?;
    Ok(())
}

/// Step, one instruction at a time, until the success dialog opens.
async fn step_through(browser: &Browser, done: &mut Done) -> anyhow::Result<()> {
    done.runs += 1;
    for _ in 0..100 {
        browser.wait_for("!document.getElementById('step').disabled || document.getElementById('success-dialog').open", "Step").await?;
        if browser
            .js("return document.getElementById('success-dialog').open")
            .await?
            == Value::Bool(true)
        {
            return Ok(());
        }
        browser.click("#step").await?;
        // Each step highlights the instruction it executed.
        browser.wait_for("document.querySelector('.token.current') || document.getElementById('success-dialog').open", "a highlighted instruction").await?;
    }
    bail!("stepping never finished")
}

async fn run_animated(browser: &Browser, done: &mut Done) -> anyhow::Result<()> {
    done.runs += 1;
    browser.click("#run").await?;
    // While it runs, editing is locked and the executing instruction is highlighted.
    let seen = browser
        .wait_for_within(
            "(document.getElementById('app').dataset.status === 'running' && document.querySelector('.routine.executing .token.current')
               && document.querySelector('.palette-item').disabled) || document.getElementById('success-dialog').open",
            "the animation",
            Duration::from_secs(10),
        )
        .await?;
    ensure!(seen != Value::Null);
    wait_for_success(browser).await
}

async fn quick_run(browser: &Browser, done: &mut Done) -> anyhow::Result<()> {
    done.runs += 1;
    browser.click("#quick-run").await?;
    wait_for_success(browser).await
}

async fn submit(
    browser: &Browser,
    page: &PageInfo,
    program: &str,
    done: &mut Done,
) -> anyhow::Result<()> {
    let shown = browser.program().await?;
    ensure!(
        same_program(&shown, program),
        "the editor shows {shown}, expected {program}"
    );
    done.submitted.insert(page.step, program.to_owned());
    browser.click("#success-submit").await
}

async fn main_task(
    browser: &Browser,
    page: &PageInfo,
    position: i64,
    program: &str,
    done: &mut Done,
) -> anyhow::Result<()> {
    // Before the delay has passed, Skip is not available.
    if position == 0 {
        let disabled = browser
            .js("return document.getElementById('skip').disabled")
            .await?;
        ensure!(disabled == Value::Bool(true), "Skip is available at once");
        // A live countdown says when it will be, and the progress bar says where this is.
        let countdown = browser
            .wait_for(
                "document.getElementById('skip-countdown').textContent",
                "the skip countdown",
            )
            .await?;
        ensure!(
            countdown
                .as_str()
                .is_some_and(|t| t.starts_with("Skip available in 0:")),
            "countdown {countdown}"
        );
        let label = browser
            .js("return document.getElementById('progress-label').textContent")
            .await?;
        let steps = browser
            .js("return window.proglab.pageState.session.progress.steps")
            .await?;
        ensure!(
            label.as_str() == Some(format!("Step {} of {steps}", page.step + 1).as_str()),
            "progress label {label}"
        );
        // One turn of the camera, recorded.
        browser.click("#camera-left").await?;
        done.camera_step = Some(page.step);
        browser.screenshot("09-task").await?;
        browser.click("#help").await?;
        browser.screenshot("10-help-dialog").await?;
        browser.click("#help-close").await?;
    }
    if position == SKIPPED_POSITION {
        // Some work first, then give up once Skip becomes available.
        done.edits += browser.click_program("WJ").await?;
        browser
            .wait_for_within(
                "!document.getElementById('skip').disabled",
                "Skip to become available",
                Duration::from_secs(SKIP_DELAY_SECONDS as u64 + 10),
            )
            .await?;
        browser.click("#skip").await?;
        browser
            .wait_for(
                "document.getElementById('skip-dialog').open",
                "the skip dialog",
            )
            .await?;
        browser.screenshot("12-skip-dialog").await?;
        browser.click("#skip-confirm").await?;
        done.skipped.insert(page.step);
        return Ok(());
    }
    if position == 1 {
        // The first click asks for full screen; changing the window size leaves it, as a
        // participant may: it is recorded, and this participant is not asked again.
        done.edits += browser.click_program(program).await?;
        browser
            .wait_for("document.fullscreenElement", "full screen")
            .await?;
        // The narrowest window the study supports.
        browser.client().set_window_size(800, 700).await?;
        browser
            .wait_for("!document.fullscreenElement", "full screen to end")
            .await?;
        browser.screenshot("09-task-800px").await?;
        browser.client().set_window_size(1280, 900).await?;
    } else if position == RELOADED_POSITION {
        // Half the program, a reload, and the rest: the first half must survive.
        let tokens = program_tokens(program);
        let half = tokens.len() / 2;
        done.edits += browser.click_tokens(&tokens[..half]).await?;
        let partial = browser.program().await?;
        browser.client().refresh().await?;
        let again = browser.page().await?;
        ensure!(
            again.step == page.step,
            "the reload moved from step {} to {}",
            page.step,
            again.step
        );
        let restored = browser.program().await?;
        ensure!(
            restored == partial,
            "after the reload the editor shows {restored}, not {partial}"
        );
        done.reload = Some((page.step, partial));
        done.edits += browser.click_tokens(&tokens[half..]).await?;
    } else {
        done.edits += browser.click_program(program).await?;
    }
    if position == 0 {
        unlabelled_controls(browser).await?;
    }
    if position == ANIMATED_POSITION {
        run_animated(browser, done).await?;
    } else {
        quick_run(browser, done).await?;
    }
    if position == 0 {
        browser.screenshot("11-success-dialog").await?;
    }
    submit(browser, page, program, done).await
}

async fn questionnaire(browser: &Browser, done: &mut Done) -> anyhow::Result<()> {
    // Submitting without the required answers shows what is missing and sends nothing.
    browser.click("#questionnaire-submit").await?;
    browser
        .wait_for(
            "!document.querySelector('[data-item=programming_exp] .item-error').hidden",
            "the missing-answer message",
        )
        .await?;
    browser.screenshot("12-questionnaire").await?;
    browser
        .click("input[name='programming_exp'][value='None']")
        .await?;
    browser
        .click("input[name='programming_game_exp'][value='No']")
        .await?;
    browser
        .type_into("#q-strategy", "I looked for repeated patterns.")
        .await?;
    browser.type_into("#q-comments", "Nice puzzles.").await?;
    done.answers = BTreeMap::from([
        ("programming_exp".to_owned(), "None".to_owned()),
        ("programming_game_exp".to_owned(), "No".to_owned()),
        (
            "strategy".to_owned(),
            "I looked for repeated patterns.".to_owned(),
        ),
        ("comments".to_owned(), "Nice puzzles.".to_owned()),
    ]);
    browser.click("#questionnaire-submit").await
}

/// A second participant, in the same browser with the cookies cleared, says no.
async fn decline_consent(browser: &Browser, server: &Server) -> anyhow::Result<()> {
    browser.client().delete_all_cookies().await?;
    // Without its cookie, the study page cannot know who this is, and says how to get back in.
    browser.goto(&server.url("/e/correa2025/study")).await?;
    let text = browser
        .wait_for(
            "document.querySelector('.end-page')?.textContent",
            "the no-session page",
        )
        .await?;
    ensure!(
        text.as_str()
            .is_some_and(|t| t.contains("open the study again")),
        "no-session page says {text}"
    );
    browser.screenshot("15-no-session").await?;
    browser
        .start_study(server, "?PROLIFIC_PID=browser-participant-2")
        .await?;
    let page = browser.page().await?;
    ensure!(page.kind == "consent", "expected consent, got {page:?}");
    browser.click("#decline").await?;
    let page = browser.next_page(page.step).await?;
    ensure!(
        page.kind == "declined",
        "expected the decline page, got {page:?}"
    );
    browser.screenshot("14-declined").await?;
    Ok(())
}

async fn check_database(
    database_url: &str,
    experiment: &server::experiment::Experiment,
    done: &Done,
) -> anyhow::Result<()> {
    let store = server::store::connect(database_url).await?.store;
    let sessions = store.sessions_of("correa2025").await?;
    let session = sessions
        .iter()
        .find(|s| s.recruiter_id.as_deref() == Some(PARTICIPANT))
        .context("the participant's session")?;
    ensure!(session.id == done.session_id);
    ensure!(
        session.status == SessionStatus::Completed,
        "status {:?}",
        session.status
    );
    ensure!(session.completion_code.as_deref() == Some("CORREA2025"));
    let declined = sessions
        .iter()
        .find(|s| s.recruiter_id.as_deref() == Some("browser-participant-2"))
        .context("the declining participant's session")?;
    ensure!(declined.status == SessionStatus::Declined);
    // The consent page's events waited for consent; declining discarded them.
    let declined_events = store.session_record(&declined.id).await?.events;
    ensure!(
        declined_events.is_empty(),
        "{} events stored for a participant who declined",
        declined_events.len()
    );

    let record = store.session_record(&session.id).await?;
    ensure!(record.params.get("STUDY_ID").map(String::as_str) == Some("study-1"));
    ensure!(record.params.get("SESSION_ID").map(String::as_str) == Some("visit-1"));

    // Every event once: exactly the numbers 1..=last, each stored one time.
    let seqs: Vec<i64> = record.events.iter().map(|e| e.seq).collect();
    let unique: BTreeSet<i64> = seqs.iter().copied().collect();
    ensure!(unique.len() == seqs.len(), "an event is stored twice");
    ensure!(
        unique == (1..=done.last_seq).collect::<BTreeSet<i64>>(),
        "stored events {} of {} (first missing: {:?})",
        unique.len(),
        done.last_seq,
        (1..=done.last_seq).find(|s| !unique.contains(s))
    );
    let count = |kind: &str| record.events.iter().filter(|e| e.kind == kind).count();
    ensure!(
        count("edit") == done.edits,
        "{} edit events, the test made {} edits",
        count("edit"),
        done.edits
    );
    ensure!(
        count("run") == done.runs,
        "{} run events, the test made {} runs",
        count("run"),
        done.runs
    );
    ensure!(
        record.runs.len() == done.runs,
        "{} runs stored, the test made {}",
        record.runs.len(),
        done.runs
    );
    ensure!(
        count("continue") == done.screens,
        "{} continue events for {} screens",
        count("continue"),
        done.screens
    );
    ensure!(
        count("consent") == 1
            && count("submit") == done.submitted.len()
            && count("skip") == done.skipped.len()
    );

    // The camera turn on a main task.
    let camera_step = done.camera_step.context("the camera was turned")?;
    ensure!(
        record
            .events
            .iter()
            .any(|e| e.kind == "camera" && e.step == Some(camera_step)),
        "no camera event at step {camera_step}"
    );
    // Full screen during the main tasks: entered at the first click of a task page, left before
    // the page goes on; every change recorded, and only on main-task pages.
    let task_steps: BTreeSet<i64> = record
        .trials
        .iter()
        .filter(|t| t.phase == "tasks")
        .map(|t| t.step)
        .collect();
    let fullscreen: Vec<&server::store::StoredEvent> = record
        .events
        .iter()
        .filter(|e| e.kind == "fullscreen")
        .collect();
    ensure!(
        fullscreen
            .iter()
            .all(|e| e.step.is_some_and(|s| task_steps.contains(&s))),
        "a fullscreen event outside the main tasks"
    );
    let states: Vec<(i64, String, String)> = fullscreen
        .iter()
        .map(|e| {
            (
                e.step.unwrap_or(-1),
                e.data["state"].as_str().unwrap_or_default().to_owned(),
                e.data["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    // The first task: entered at the first click, left before the next page. The second: left
    // by the participant (a window change), after which full screen is not asked for again.
    let first_task = *task_steps.first().context("main tasks")?;
    let second_task = *task_steps.iter().nth(1).context("main tasks")?;
    let expected: Vec<(i64, String, String)> = vec![
        (first_task, "entered".into(), String::new()),
        (first_task, "left".into(), "next_page".into()),
        (second_task, "entered".into(), String::new()),
        (second_task, "left".into(), "participant".into()),
    ];
    ensure!(states == expected, "fullscreen events {states:?}");

    // The reload kept the half-written program, and the page said so.
    let (reload_step, partial) = done.reload.clone().context("a task was reloaded")?;
    ensure!(
        record.events.iter().any(|e| e.kind == "page"
            && e.step == Some(reload_step)
            && e.data["restored"] == Value::Bool(true)
            && e.data["program"] == Value::String(partial.clone())),
        "no page event shows the restored program {partial}"
    );

    // Every trial: the tutorial levels, the practice problem and the ten problems.
    let solve_levels = experiment.tutorial.iter().filter(|s| s.solve).count();
    let expected_trials = solve_levels + experiment.practice.len() + experiment.tasks.len();
    ensure!(
        record.trials.len() == expected_trials,
        "{} trials, expected {expected_trials}",
        record.trials.len()
    );
    for trial in &record.trials {
        let runs = record.runs.iter().filter(|r| r.step == trial.step).count() as i64;
        ensure!(
            trial.runs == runs,
            "trial at step {} counts {} runs, {} stored",
            trial.step,
            trial.runs,
            runs
        );
        ensure!(
            trial.ended_at.is_some(),
            "trial at step {} has no end",
            trial.step
        );
        if done.skipped.contains(&trial.step) {
            ensure!(trial.outcome == Some(TrialOutcome::Skipped) && trial.program.is_none());
            ensure!(trial.phase == "tasks");
        } else {
            let expected = done
                .submitted
                .get(&trial.step)
                .context("a submitted trial")?;
            ensure!(
                trial.outcome == Some(TrialOutcome::Submitted),
                "trial at step {}: {:?}",
                trial.step,
                trial.outcome
            );
            let stored = trial.program.as_deref().unwrap_or_default();
            ensure!(
                same_program(stored, expected),
                "trial at step {} stored {stored}, the participant submitted {expected}",
                trial.step
            );
        }
    }
    let main_trials = record.trials.iter().filter(|t| t.phase == "tasks").count();
    ensure!(main_trials == 10);

    // The answers, as typed.
    let answers: BTreeMap<String, String> = record
        .answers
        .iter()
        .map(|a| (a.item.clone(), a.answer.clone()))
        .collect();
    ensure!(answers == done.answers, "answers {answers:?}");
    store.close().await;
    Ok(())
}

/// Compact forms that differ only in trailing empty routines name the same program.
fn same_program(a: &str, b: &str) -> bool {
    a.trim_end_matches('|') == b.trim_end_matches('|')
}

/// Every control a keyboard or screen-reader user meets has a name: its text, `aria-label`,
/// `aria-labelledby` or a `<label>`.
async fn unlabelled_controls(browser: &Browser) -> anyhow::Result<()> {
    let unnamed = browser
        .js("const controls = document.querySelectorAll('button, input, textarea, select, [tabindex], [role=img], ol.tokens');
             const named = (e) => (e.getAttribute('aria-label') || '').trim()
               || (e.getAttribute('aria-labelledby') || '').split(' ').some((id) => document.getElementById(id)?.textContent.trim())
               || (e.labels && [...e.labels].some((l) => l.textContent.trim()))
               || (e.tagName === 'svg' && e.querySelector('title')?.textContent.trim())
               || (e.tagName !== 'svg' && e.textContent.trim());
             return [...controls].filter((e) => !named(e)).map((e) => e.outerHTML.slice(0, 80));")
        .await?;
    ensure!(
        unnamed.as_array().is_some_and(Vec::is_empty),
        "controls without a name: {unnamed}"
    );
    // Instructions in the lists are reachable from the keyboard.
    let focusable = browser
        .js("const tokens = [...document.querySelectorAll('.token')];
             return tokens.length > 0 && tokens.every((t) => t.tabIndex === 0)")
        .await?;
    ensure!(
        focusable == Value::Bool(true),
        "an instruction is not focusable"
    );
    Ok(())
}
