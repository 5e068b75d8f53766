//! The bundled tutorial in headless Chromium, screen by screen: each of its 14 screens offers
//! exactly the instructions taught so far, processes stay hidden until the process screens, every
//! demonstration waits for Play (the robot stays at its start until then) and plays again from the
//! start when Play is pressed again, the looped process can be halted with Stop, and no screen's
//! text names a direction the screen contradicts. The database must hold one `demo_play` event per
//! press.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use super::{
    Browser, PageInfo, Scratch, Server, browser_or_skip, free_port, shortest_program,
    write_experiment,
};

const PARTICIPANT: &str = "tutorial-participant";

/// Which screen (0-based) first teaches which instructions: the reference study's order.
const TAUGHT: &[(usize, &str)] = &[(0, "S"), (2, "W"), (6, "J"), (10, "LR"), (12, "1")];
/// The palette's order of instructions.
const PALETTE_ORDER: &str = "WJLRS123456789";
/// The first screen about processes.
const FIRST_PROCESS_SCREEN: usize = 12;
/// The looped process, whose demonstration is halted with Stop.
const LOOP_SCREEN: usize = 13;
/// Phrases that contradict a program editor whose lists run left to right, in rows, next to
/// the level (the board has no fixed sides: the isometric camera turns).
const WRONG_DIRECTIONS: &[&str] = &[
    "top to bottom",
    "from top",
    "from the top",
    "bottom to top",
    "right to left",
    "below the",
    "above the",
    "to the left of",
    "to the right of",
];

/// The instructions taught up to and including screen `index`, in palette order.
fn taught_by(index: usize) -> String {
    let letters: String = TAUGHT
        .iter()
        .filter(|(screen, _)| *screen <= index)
        .map(|(_, letters)| *letters)
        .collect();
    PALETTE_ORDER
        .chars()
        .filter(|c| letters.contains(*c))
        .collect()
}

#[derive(Default)]
struct Seen {
    session_id: String,
    screens: usize,
    demo_plays: usize,
    demo_screens: Vec<i64>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tutorial_screen_teaches_only_what_it_has_shown() {
    let Some(binaries) = browser_or_skip("tutorial browser test") else {
        return;
    };
    let scratch = Scratch::new("browser-tutorial").unwrap();
    let port = free_port().unwrap();
    let experiment_path = write_experiment(scratch.path(), |_| {}).unwrap();
    let experiment = server::experiment::load_file(&experiment_path).unwrap();
    let database_url = format!("sqlite://{}", scratch.path().join("study.db").display());
    let server = Server::start(&database_url, &experiment_path, port).unwrap();

    let browser = Browser::start(&binaries, 1280, 900).await.unwrap();
    let outcome = go_through_the_tutorial(&browser, &server, &experiment).await;
    browser.close().await;
    let seen = outcome.unwrap();
    assert_eq!(
        seen.screens, 14,
        "the reference study's 14 tutorial screens"
    );

    let store = server::store::connect(&database_url).await.unwrap().store;
    let record = store.session_record(&seen.session_id).await.unwrap();
    let plays: Vec<i64> = record
        .events
        .iter()
        .filter(|e| e.kind == "demo_play")
        .map(|e| e.step.unwrap_or(-1))
        .collect();
    assert_eq!(
        plays.len(),
        seen.demo_plays,
        "one demo_play event per press of Play: {plays:?}"
    );
    for step in &seen.demo_screens {
        assert!(
            plays.iter().filter(|s| *s == step).count() >= 2,
            "the demonstration at step {step} was played and replayed: {plays:?}"
        );
    }
    assert!(
        record.events.iter().any(|e| e.kind == "demo_stop"),
        "Stop on the looped process is recorded"
    );
    store.close().await;
}

async fn go_through_the_tutorial(
    browser: &Browser,
    server: &Server,
    experiment: &server::experiment::Experiment,
) -> anyhow::Result<Seen> {
    let mut seen = Seen::default();
    browser
        .start_study(server, &format!("?PROLIFIC_PID={PARTICIPANT}"))
        .await?;
    let mut page = browser.page().await?;
    ensure!(page.kind == "consent", "expected consent, got {page:?}");
    seen.session_id = page.session_id.clone();
    browser.click("#agree").await?;
    page = browser.next_page(page.step).await?;

    while page.phase.as_deref() == Some("tutorial") {
        let index = browser
            .js("return window.proglab.pageState.session.progress.phase_step")
            .await?
            .as_u64()
            .context("phase_step")? as usize;
        seen.screens += 1;
        let expected = taught_by(index);
        check_palette(browser, &page, index, &expected).await?;
        check_directions(browser, index).await?;
        match page.kind.as_str() {
            "screen" => {
                let has_demo = browser
                    .js("return Boolean(window.proglab.pageState.session.current.demo)")
                    .await?
                    == Value::Bool(true);
                if has_demo {
                    check_demo(browser, index, &mut seen).await?;
                    seen.demo_screens.push(page.step);
                }
                browser
                    .screenshot(&format!("tutorial-{:02}", index + 1))
                    .await?;
                browser.click("#continue").await?;
            }
            "task" => {
                solve(browser, experiment, index, &expected).await?;
            }
            other => bail!("unexpected {other} in the tutorial"),
        }
        page = browser.next_page(page.step).await?;
    }
    ensure!(
        page.phase.as_deref() == Some("practice"),
        "the practice problem follows the tutorial, got {page:?}"
    );
    // Everything the tutorial recorded reaches the server.
    for _ in 0..100 {
        if browser.event_counters(&seen.session_id).await?.1 == 0 {
            return Ok(seen);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("events still pending after the tutorial")
}

/// The palette (a task's editor, or a screen's "Instructions so far") holds exactly the
/// instructions taught so far, and the process lists appear only with the process screens.
async fn check_palette(
    browser: &Browser,
    page: &PageInfo,
    index: usize,
    expected: &str,
) -> anyhow::Result<()> {
    let served: String = browser
        .js("const s = window.proglab.pageState.session.current;
             return (s.trial ? s.trial.palette : s.palette || []).join('')")
        .await?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    ensure!(
        served == expected,
        "screen {}: the server offers {served}, taught so far {expected}",
        index + 1
    );
    let shown = browser
        .js("return [...document.querySelectorAll('#palette .palette-item')].map((e) => e.dataset.letter).join('')")
        .await?;
    ensure!(
        shown.as_str() == Some(expected),
        "screen {}: the palette shows {shown}, taught so far {expected}",
        index + 1
    );
    let process_lists = browser
        .js("return document.querySelectorAll('#routines .routine:not([data-routine=\"0\"]), #demo-program .routine:not([data-routine=\"0\"])').length")
        .await?
        .as_u64()
        .unwrap_or(0);
    if index < FIRST_PROCESS_SCREEN {
        ensure!(
            process_lists == 0 && !expected.contains('1'),
            "screen {}: a process is shown before the process screens",
            index + 1
        );
    } else if page.kind == "screen" {
        ensure!(
            process_lists == 1,
            "screen {}: the process example shows P1",
            index + 1
        );
    }
    Ok(())
}

/// No direction word that the page contradicts; "left to right" only where Main runs in a row.
async fn check_directions(browser: &Browser, index: usize) -> anyhow::Result<()> {
    let text = browser
        .js("return (document.querySelector('.screen-text, .task-text') || {}).textContent || ''")
        .await?
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    ensure!(!text.trim().is_empty(), "screen {} has no text", index + 1);
    for phrase in WRONG_DIRECTIONS {
        ensure!(
            !text.contains(phrase),
            "screen {} says {phrase:?}: {text}",
            index + 1
        );
    }
    if text.contains("left") && text.contains("turn") {
        // Left is counter-clockwise and Right clockwise, as the robot turns (docs/semantics.md §1.3).
        ensure!(
            text.contains("counter-clockwise") && text.contains("clockwise"),
            "screen {} names turns without their sense: {text}",
            index + 1
        );
        let left = text.find("counter-clockwise").unwrap_or(0);
        ensure!(
            text[..left].contains("left") && text[left..].contains("right"),
            "screen {}: Left must go with counter-clockwise: {text}",
            index + 1
        );
    }
    if text.contains("left to right") {
        // A task page: put two instructions in Main and look; a screen: its example's Main.
        let row = browser
            .js("const main = document.querySelector('#routines .routine[data-routine=\"0\"] .tokens');
                 if (main) { document.getElementById('routine-0-name').click();
                   const item = document.querySelector('.palette-item[data-letter]');
                   item.click(); item.click(); }
                 const tokens = [...document.querySelectorAll('[data-routine=\"0\"] .token')].slice(0, 2)
                   .map((t) => t.getBoundingClientRect());
                 const inRow = tokens.length === 2 && tokens[1].left > tokens[0].right - 1
                   && Math.abs(tokens[1].top - tokens[0].top) < 2;
                 if (main) document.querySelector('#routines .routine[data-routine=\"0\"] .routine-clear').click();
                 return inRow;")
            .await?;
        ensure!(
            row == Value::Bool(true),
            "screen {} says left to right, but Main's instructions are not in a row",
            index + 1
        );
    }
    Ok(())
}

/// The board's robot and lights, as the page shows them.
async fn board_state(browser: &Browser) -> anyhow::Result<String> {
    let value = browser
        .js("const b = document.getElementById('board'); return `${b.dataset.robot}|${b.dataset.lit}`")
        .await?;
    Ok(value.as_str().unwrap_or_default().to_owned())
}

fn state_text(state: &Value) -> String {
    let lit: Vec<String> = state["lit"]
        .as_array()
        .map(|l| l.iter().map(|v| v.to_string()).collect())
        .unwrap_or_default();
    format!(
        "{},{},{}|{}",
        state["x"],
        state["y"],
        state["direction"],
        lit.join(",")
    )
}

/// Play starts the demonstration (nothing moves before), Play again starts it over from the start.
async fn check_demo(browser: &Browser, index: usize, seen: &mut Seen) -> anyhow::Result<()> {
    let current = browser
        .js("return window.proglab.pageState.session.current")
        .await?;
    let start = state_text(&current["level"]["start"]);
    let trace = current["demo"]["trace"]
        .as_array()
        .context("a demonstration has a trace")?;
    let end = state_text(&trace.last().context("an empty demonstration")?["state"]);
    // A demonstration of what fails ends where it started; the others move the robot or light.
    let fails = index == 3;
    ensure!(
        (start == end) == fails,
        "screen {}: the demonstration goes from {start} to {end}",
        index + 1
    );
    // No autoplay: a while after the page has started, the robot is still at its start.
    tokio::time::sleep(Duration::from_millis(800)).await;
    ensure!(
        board_state(browser).await? == start,
        "screen {}: the demonstration started by itself",
        index + 1
    );
    let demo = browser
        .js("return document.getElementById('app').dataset.demo")
        .await?;
    ensure!(demo == "ready", "screen {}: demo state {demo}", index + 1);
    if index == 10 {
        // The turning demonstration: Left first, a quarter turn counter-clockwise (d -> d + 1).
        let first = &trace[0];
        ensure!(
            first["instr"] == "L",
            "the turning example starts with Left"
        );
        let before = current["level"]["start"]["direction"].as_u64().unwrap_or(0);
        ensure!(first["state"]["direction"].as_u64() == Some((before + 1) % 4));
    }
    if index == LOOP_SCREEN {
        // Stop halts the looped process where it is.
        browser.click("#demo-play").await?;
        seen.demo_plays += 1;
        browser
            .wait_for(
                "document.getElementById('board').dataset.robot !== undefined
                 && !document.getElementById('demo-stop').disabled",
                "Stop to be available",
            )
            .await?;
        tokio::time::sleep(Duration::from_millis(900)).await;
        browser.click("#demo-stop").await?;
        let stopped = browser
            .wait_for(
                "document.getElementById('app').dataset.demo === 'stopped'",
                "the demonstration to stop",
            )
            .await?;
        ensure!(stopped == Value::Bool(true));
        let at = board_state(browser).await?;
        tokio::time::sleep(Duration::from_millis(900)).await;
        ensure!(
            board_state(browser).await? == at && at != end,
            "screen {}: the robot goes on after Stop",
            index + 1
        );
    }
    for play in 0..2 {
        // A synchronous click: the board is back at the start before the first step is shown.
        let right_after = browser
            .js("document.getElementById('demo-play').click();
                 const b = document.getElementById('board');
                 return `${b.dataset.robot}|${b.dataset.lit}|${document.getElementById('app').dataset.demo}`")
            .await?;
        seen.demo_plays += 1;
        ensure!(
            right_after.as_str() == Some(format!("{start}|playing").as_str()),
            "screen {}: play {} starts at {right_after}, not playing from the start {start}",
            index + 1,
            play + 1
        );
        // The example's instructions light up as they run.
        browser
            .wait_for(
                "document.querySelector('#demo-program .token.current')",
                "the running instruction to be highlighted",
            )
            .await?;
        browser
            .wait_for_within(
                "document.getElementById('app').dataset.demo === 'done'",
                "the demonstration to end",
                Duration::from_secs(30),
            )
            .await?;
        let shown = board_state(browser).await?;
        ensure!(
            shown == end,
            "screen {}: the demonstration ends at {shown}, its trace at {end}",
            index + 1
        );
    }
    Ok(())
}

/// A level to solve: a shortest program, made only of the instructions offered, clicked in and run.
async fn solve(
    browser: &Browser,
    experiment: &server::experiment::Experiment,
    index: usize,
    expected: &str,
) -> anyhow::Result<()> {
    let task = &experiment.tutorial[index]
        .level
        .as_ref()
        .context("a level to solve")?
        .task;
    let program = shortest_program(task, experiment.light)?;
    ensure!(
        program.chars().all(|c| expected.contains(c)),
        "screen {}: solving needs {program}, but only {expected} is offered",
        index + 1
    );
    browser.click_program(&format!("{program}|")).await?;
    browser
        .screenshot(&format!("tutorial-{:02}", index + 1))
        .await?;
    run_and_go_on(browser).await
}

/// Runs the program in the editor and, once the success dialog opens, goes on.
async fn run_and_go_on(browser: &Browser) -> anyhow::Result<()> {
    browser.click("#run").await?;
    browser
        .wait_for_within(
            "document.getElementById('success-dialog').open",
            "the success dialog",
            Duration::from_secs(30),
        )
        .await?;
    browser.click("#success-submit").await
}

/// On a phone-sized window the lists sit below the level: a run must keep the level in view
/// rather than scroll to the instruction being run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_on_a_narrow_screen_keeps_the_level_in_view() {
    let Some(binaries) = browser_or_skip("narrow-screen browser test") else {
        return;
    };
    let scratch = Scratch::new("browser-narrow").unwrap();
    let port = free_port().unwrap();
    // The bundled study asks for a wide window; this copy lets a phone in.
    let experiment_path = write_experiment(scratch.path(), |table| {
        table.remove("device");
    })
    .unwrap();
    let experiment = server::experiment::load_file(&experiment_path).unwrap();
    let database_url = format!("sqlite://{}", scratch.path().join("study.db").display());
    let server = Server::start(&database_url, &experiment_path, port).unwrap();
    let browser = Browser::start(&binaries, 390, 844).await.unwrap();
    let outcome = run_on_a_phone(&browser, &server, &experiment).await;
    browser.close().await;
    outcome.unwrap();
}

async fn run_on_a_phone(
    browser: &Browser,
    server: &Server,
    experiment: &server::experiment::Experiment,
) -> anyhow::Result<()> {
    browser
        .start_study(server, "?PROLIFIC_PID=phone-participant")
        .await?;
    let mut page = browser.page().await?;
    browser.click("#agree").await?;
    page = browser.next_page(page.step).await?;
    // Through the tutorial to its first level with Walk: the practice of screen 6.
    loop {
        let index = browser
            .js("return window.proglab.pageState.session.progress.phase_step")
            .await?
            .as_u64()
            .unwrap_or(0) as usize;
        if page.kind == "screen" {
            browser.click("#continue").await?;
        } else if index < 5 {
            let task = &experiment.tutorial[index]
                .level
                .as_ref()
                .context("level")?
                .task;
            browser
                .click_program(&shortest_program(task, experiment.light)?)
                .await?;
            run_and_go_on(browser).await?;
        } else {
            break;
        }
        page = browser.next_page(page.step).await?;
    }
    let task = &experiment.tutorial[5].level.as_ref().context("level")?.task;
    browser
        .click_program(&shortest_program(task, experiment.light)?)
        .await?;
    // Where the participant is after adding instructions: at the lists, below the level.
    browser
        .js("window.scrollTo(0, document.body.scrollHeight)")
        .await?;
    browser.click("#run").await?;
    browser
        .wait_for(
            "document.getElementById('app').dataset.status === 'running'",
            "the run",
        )
        .await?;
    for _ in 0..6 {
        let visible = browser
            .js(
                "const r = document.getElementById('board').getBoundingClientRect();
                 return r.top >= -1 && r.bottom <= window.innerHeight + 1",
            )
            .await?;
        ensure!(
            visible == Value::Bool(true),
            "the level scrolled out of view during the run"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    browser.screenshot("narrow-run").await?;
    Ok(())
}
