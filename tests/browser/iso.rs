//! The isometric board (static/js/iso.js) in headless Chromium.
//!
//! - Geometry: on the task page of every bundled level (the practice level and tasks a to j), at
//!   every camera rotation, what is drawn (read back from the drawing with `board.scene()`) has
//!   each cell once with the height of the level file, in a valid painter's order (a cell nearer
//!   the viewer is drawn later), at the screen position the projection gives; the robot stands
//!   on its cell, drawn after it and before every cell in front of it, its arrow pointing along
//!   its heading. Then a solving program is stepped through with Step, the camera turning
//!   between steps, and after every step the drawn robot matches the interpreter's trace.
//! - The camera buttons and keys turn the view, and each turn is a `camera` event in the database.
//! - Screenshots at 1280x800 of the mid-animation frames (walk, jump up, jump down, turn, light,
//!   a failed move) in both views, and of the four rotations of task j.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Browser, Scratch, Server, browser_or_skip, free_port, published_programs, shortest_program,
    write_experiment,
};

const PARTICIPANT: &str = "browser-iso-1";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Unit {
    half_width: f64,
    half_height: f64,
    block: f64,
}

#[derive(Debug, Deserialize)]
struct Block {
    x: usize,
    y: usize,
    h: u8,
    levels: usize,
    order: usize,
    top: [f64; 2],
}

#[derive(Debug, Deserialize)]
struct Robot {
    x: usize,
    y: usize,
    direction: u8,
    order: usize,
    screen: [f64; 2],
    heading: [f64; 2],
    moving: bool,
}

#[derive(Debug, Deserialize)]
struct Scene {
    rotation: u8,
    unit: Unit,
    blocks: Vec<Block>,
    robot: Robot,
}

/// Where the camera puts game cell (x, y) at `rotation` (a quarter turn clockwise per step):
/// the rotated grid coordinates (p, q). The screen position is ((p - q) a, -(p + q) b - h c), so a
/// smaller p + q is nearer the viewer.
fn rotated(x: f64, y: f64, width: usize, height: usize, rotation: u8) -> (f64, f64) {
    let (w, h) = ((width - 1) as f64, (height - 1) as f64);
    match rotation % 4 {
        0 => (x, y),
        1 => (y, w - x),
        2 => (w - x, h - y),
        _ => (h - y, x),
    }
}

/// The heading's step in game coordinates (docs/semantics.md §1.3).
fn heading_delta(direction: u8) -> (f64, f64) {
    match direction {
        0 => (0.0, -1.0),
        1 => (1.0, 0.0),
        2 => (0.0, 1.0),
        _ => (-1.0, 0.0),
    }
}

/// Checks a scene against the level and the robot's expected state.
fn check_scene(
    task: &dsl::Task,
    scene: &Scene,
    rotation: u8,
    expected: &dsl::State,
    what: &str,
) -> anyhow::Result<()> {
    ensure!(
        scene.rotation == rotation,
        "{what}: rotation {} drawn, {rotation} expected",
        scene.rotation
    );
    // Every cell exactly once, with its height and that many blocks.
    let mut seen = BTreeSet::new();
    for block in &scene.blocks {
        ensure!(
            block.x < task.width && block.y < task.height,
            "{what}: a block outside the level at ({}, {})",
            block.x,
            block.y
        );
        ensure!(
            seen.insert((block.x, block.y)),
            "{what}: cell ({}, {}) drawn twice",
            block.x,
            block.y
        );
        let h = task.height_at(block.x, block.y);
        ensure!(
            block.h == h && block.levels == h as usize,
            "{what}: cell ({}, {}) drawn {} high with {} blocks, the level says {h}",
            block.x,
            block.y,
            block.h,
            block.levels
        );
    }
    ensure!(
        seen.len() == task.width * task.height,
        "{what}: {} cells drawn of {}",
        seen.len(),
        task.width * task.height
    );
    let depth = |x: usize, y: usize| {
        let (p, q) = rotated(x as f64, y as f64, task.width, task.height, rotation);
        p + q
    };
    // Painter's order: a cell nearer the viewer (smaller p + q) is drawn after every farther one.
    for a in &scene.blocks {
        for b in &scene.blocks {
            if depth(a.x, a.y) > depth(b.x, b.y) {
                ensure!(
                    a.order < b.order,
                    "{what}: cell ({}, {}) is behind ({}, {}) but drawn after it",
                    a.x,
                    a.y,
                    b.x,
                    b.y
                );
            }
        }
    }
    // Each top face where the projection puts it, relative to the first cell.
    let unit = &scene.unit;
    let place = |x: usize, y: usize, h: u8| {
        let (p, q) = rotated(x as f64, y as f64, task.width, task.height, rotation);
        (
            (p - q) * unit.half_width,
            -(p + q) * unit.half_height - f64::from(h) * unit.block,
        )
    };
    let first = &scene.blocks[0];
    let origin = {
        let (sx, sy) = place(first.x, first.y, first.h);
        (first.top[0] - sx, first.top[1] - sy)
    };
    for block in &scene.blocks {
        let (sx, sy) = place(block.x, block.y, block.h);
        let (dx, dy) = (origin.0 + sx - block.top[0], origin.1 + sy - block.top[1]);
        ensure!(
            dx.abs() < 1.5 && dy.abs() < 1.5,
            "{what}: the top of cell ({}, {}) is drawn {dx:.1}, {dy:.1} px off",
            block.x,
            block.y
        );
    }
    // The robot: the expected cell and heading, drawn on that cell's top, after it and before
    // every cell in front of it, its arrow pointing along the heading.
    let robot = &scene.robot;
    let (x, y, direction) = (
        expected.x as usize,
        expected.y as usize,
        expected.direction.index(),
    );
    ensure!(
        (robot.x, robot.y, robot.direction) == (x, y, direction),
        "{what}: robot at ({}, {}) facing {}, expected ({x}, {y}) facing {direction}",
        robot.x,
        robot.y,
        robot.direction
    );
    ensure!(!robot.moving, "{what}: the robot is still moving");
    let cell = scene
        .blocks
        .iter()
        .find(|b| (b.x, b.y) == (x, y))
        .context("the robot's cell")?;
    ensure!(
        (robot.screen[0] - cell.top[0]).abs() < 2.0 && (robot.screen[1] - cell.top[1]).abs() < 2.0,
        "{what}: the robot is drawn at {:?}, its cell's top at {:?}",
        robot.screen,
        cell.top
    );
    ensure!(
        robot.order > cell.order,
        "{what}: the robot is drawn before its cell"
    );
    for block in &scene.blocks {
        if depth(block.x, block.y) < depth(x, y) {
            ensure!(
                robot.order < block.order,
                "{what}: cell ({}, {}) is in front of the robot but drawn before it",
                block.x,
                block.y
            );
        }
    }
    let (dx, dy) = heading_delta(direction);
    let (p0, q0) = rotated(0.0, 0.0, task.width, task.height, rotation);
    let (p1, q1) = rotated(dx, dy, task.width, task.height, rotation);
    let (dp, dq) = (p1 - p0, q1 - q0);
    let screen = (dp - dq, -(dp + dq));
    ensure!(
        robot.heading[0].signum() == screen.0.signum()
            && robot.heading[1].signum() == screen.1.signum(),
        "{what}: the arrow points to {:?}, the heading is {:?} on the screen",
        robot.heading,
        screen
    );
    Ok(())
}

fn lit_indices(state: &dsl::State) -> Vec<u64> {
    (0..64).filter(|i| state.lit & (1 << i) != 0).collect()
}

async fn scene(browser: &Browser) -> anyhow::Result<Scene> {
    let value = browser
        .wait_for(
            "!window.proglab.board.animating && window.proglab.board.scene()",
            "the scene",
        )
        .await?;
    Ok(serde_json::from_value(value)?)
}

async fn enter(browser: &Browser, server: &Server, participant: &str) -> anyhow::Result<()> {
    browser
        .start_study(server, &format!("?PROLIFIC_PID={participant}"))
        .await?;
    let consent = browser.page().await?;
    ensure!(consent.kind == "consent", "expected consent: {consent:?}");
    browser.click("#agree").await?;
    browser.next_page(consent.step).await?;
    Ok(())
}

async fn press(browser: &Browser, key: char) -> anyhow::Result<()> {
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    browser.client().perform_actions(keys).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_level_is_drawn_in_painter_order_at_every_rotation_and_follows_the_trace() {
    let Some(binaries) = browser_or_skip("isometric board geometry test") else {
        return;
    };
    let scratch = Scratch::new("browser-iso").unwrap();
    // Consent, the practice level and the ten problems.
    let experiment_path = write_experiment(scratch.path(), |table| {
        table.remove("tutorial");
        table.remove("instructions");
        if let Some(completion) = table.get_mut("completion").and_then(|c| c.as_table_mut()) {
            completion.remove("redirect_url");
        }
    })
    .unwrap();
    let experiment = server::experiment::load_file(&experiment_path).unwrap();
    let database_url = format!("sqlite://{}", scratch.path().join("iso.db").display());
    let server = Server::start(&database_url, &experiment_path, free_port().unwrap()).unwrap();
    let browser = Browser::start(&binaries, 1280, 800).await.unwrap();
    let outcome = every_level(&browser, &server, &experiment).await;
    browser.close().await;
    let (session_id, levels) = outcome.unwrap();
    assert_eq!(levels, 11, "the practice level and the ten problems");

    // The camera turns are events: the button's first, then the key's.
    let store = server::store::connect(&database_url).await.unwrap().store;
    let record = store.session_record(&session_id).await.unwrap();
    let camera: Vec<&Value> = record
        .events
        .iter()
        .filter(|e| e.kind == "camera")
        .map(|e| &e.data)
        .collect();
    assert!(camera.len() >= 2, "camera events: {camera:?}");
    assert_eq!(
        camera[0],
        &json!({ "rotation": 3, "delta": -1, "via": "button" })
    );
    assert_eq!(
        camera[1],
        &json!({ "rotation": 0, "delta": 1, "via": "key" })
    );
    store.close().await;
}

/// Goes through every level; returns the session and the number of levels checked.
async fn every_level(
    browser: &Browser,
    server: &Server,
    experiment: &server::experiment::Experiment,
) -> anyhow::Result<(String, usize)> {
    let programs = published_programs()?;
    enter(browser, server, PARTICIPANT).await?;
    let mut page = browser.page().await?;
    let session_id = page.session_id.clone();
    let mut levels = 0;
    while page.kind == "task" {
        let trial = page.trial.clone().context("a task page has a trial")?;
        let phase = trial["phase"].as_str().unwrap_or_default().to_owned();
        let index = trial["task_index"].as_u64().context("task_index")? as usize;
        let entry = match phase.as_str() {
            "practice" => &experiment.practice[index],
            "tasks" => &experiment.tasks[index],
            other => bail!("unexpected phase {other}"),
        };
        // The bundled level, straight from the dsl's task set.
        let task = &dsl::tasks::lookup(&entry.source)
            .with_context(|| format!("bundled task {}", entry.source))?
            .task;
        let what = entry.source.clone();
        let start = task.start_state();
        ensure!(
            browser
                .js("return document.getElementById('board').dataset.view")
                .await?
                == json!("isometric"),
            "{what}: not the isometric view"
        );

        if levels == 0 {
            // One turn left with the button, one right with the key.
            browser.click("#camera-left").await?;
            check_scene(task, &scene(browser).await?, 3, &start, &what)?;
            press(browser, ']').await?;
            check_scene(task, &scene(browser).await?, 0, &start, &what)?;
        }
        for rotation in 0..4u8 {
            let shown = scene(browser).await?;
            check_scene(
                task,
                &shown,
                rotation,
                &start,
                &format!("{what} rotation {rotation}"),
            )?;
            browser.click("#camera-right").await?;
        }

        // A solving program, stepped through with the camera turning between steps.
        let program = if phase == "practice" {
            format!("{}||||", shortest_program(task, experiment.light)?)
        } else {
            programs[&(index as i64)].clone()
        };
        let parsed = dsl::compact::parse(&program, &experiment.limits)?;
        let outcome = dsl::run(
            task,
            &parsed,
            &dsl::RunOptions {
                light: experiment.light,
                budget: dsl::interp::DEFAULT_BUDGET,
                trace: true,
            },
        );
        ensure!(outcome.solved, "{what}: {program} does not solve it");
        browser.click_program(&program).await?;
        // Count the trace entries the page shows, and show them without animation.
        browser
            .js("const b = window.proglab.board; window.shownEntries = 0;
                 const show = b.show.bind(b);
                 b.show = (state, options = {}) => {
                   if (options.animate !== false) window.shownEntries += 1;
                   return show(state, { ...options, duration: 0 });
                 };")
            .await?;
        for (k, entry) in outcome.trace.iter().enumerate() {
            browser
                .js("document.getElementById('camera-right').click(); document.getElementById('step').click();")
                .await?;
            let value = browser
                .wait_for(
                    &format!(
                        "window.shownEntries >= {} && !window.proglab.board.animating && window.proglab.board.scene()",
                        k + 1
                    ),
                    "the next step",
                )
                .await?;
            let shown: Scene = serde_json::from_value(value)?;
            let step_what = format!("{what} step {} ({})", k + 1, entry.instr.letter());
            check_scene(task, &shown, ((k + 1) % 4) as u8, &entry.after, &step_what)?;
            let lit = browser
                .js("return document.getElementById('board').dataset.lit")
                .await?;
            let expected: Vec<String> = lit_indices(&entry.after)
                .iter()
                .map(u64::to_string)
                .collect();
            ensure!(
                lit == json!(expected.join(",")),
                "{step_what}: lights {lit} shown, {expected:?} lit"
            );
        }
        browser
            .wait_for_within(
                "document.getElementById('success-dialog').open",
                "the success dialog",
                Duration::from_secs(20),
            )
            .await?;
        browser.click("#success-submit").await?;
        levels += 1;
        page = browser.next_page(page.step).await?;
    }
    ensure!(
        page.kind == "questionnaire",
        "expected the questionnaire after the levels, got {page:?}"
    );
    Ok((session_id, levels))
}

/// An example of each animation on a level: the state before and after (equal for a failed move).
fn examples(
    task: &dsl::Task,
    light: dsl::LightMode,
) -> BTreeMap<&'static str, (dsl::State, dsl::State, &'static str)> {
    use dsl::Action;
    let mut found = BTreeMap::new();
    let start = task.start_state();
    let mut queue = VecDeque::from([start]);
    let mut seen = HashSet::from([start]);
    while let Some(state) = queue.pop_front() {
        let h = task.height_at(state.x as usize, state.y as usize);
        for action in Action::ALL {
            let next = state.apply(task, action, light);
            let kind = match (action, next) {
                (Action::Walk, Some(_)) => "walk",
                (Action::Walk, None) => "bump",
                (Action::Jump, Some(n)) if task.height_at(n.x as usize, n.y as usize) > h => {
                    "jump-up"
                }
                (Action::Jump, Some(_)) => "jump-down",
                (Action::Left | Action::Right, Some(_)) => "turn",
                (Action::Light, Some(n)) if n.lit > state.lit => "light",
                _ => continue,
            };
            let effect = if next.is_some() { "changed" } else { "no_op" };
            found
                .entry(kind)
                .or_insert((state, next.unwrap_or(state), effect));
            if let Some(next) = next
                && seen.insert(next)
            {
                queue.push_back(next);
            }
        }
    }
    found
}

fn state_json(state: &dsl::State) -> Value {
    json!({
        "x": state.x,
        "y": state.y,
        "direction": state.direction.index(),
        "lit": lit_indices(state),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mid_animation_frames_in_both_views_and_the_rotations_of_task_j() {
    let Some(binaries) = browser_or_skip("isometric board screenshots") else {
        return;
    };
    for view in ["isometric", "flat"] {
        let scratch = Scratch::new("browser-iso-shots").unwrap();
        // Straight to task j, in the view under test.
        let experiment_path = write_experiment(scratch.path(), |table| {
            table.remove("tutorial");
            table.remove("practice");
            table.remove("instructions");
            table.insert("board".into(), view.into());
            let mut j = toml::Table::new();
            j.insert("task".into(), "correa2025/j".into());
            table.insert("tasks".into(), toml::Value::Array(vec![j.into()]));
        })
        .unwrap();
        let experiment = server::experiment::load_file(&experiment_path).unwrap();
        let database_url = format!("sqlite://{}", scratch.path().join("shots.db").display());
        let server = Server::start(&database_url, &experiment_path, free_port().unwrap()).unwrap();
        let browser = Browser::start(&binaries, 1280, 800).await.unwrap();
        let outcome = frames(&browser, &server, &experiment, view).await;
        browser.close().await;
        outcome.unwrap();
    }
}

/// Makes the page's viewport `width` x `height` CSS pixels (headless Chromium's window size
/// includes an infobar that comes and goes).
async fn viewport(browser: &Browser, width: u32, height: u32) -> anyhow::Result<()> {
    for _ in 0..5 {
        let size = browser
            .js("return [innerWidth, innerHeight, outerWidth, outerHeight]")
            .await?;
        let get = |i: usize| size[i].as_u64().unwrap_or(0) as u32;
        if get(0) == width && get(1) == height {
            return Ok(());
        }
        let outer_width = (width + get(2)).saturating_sub(get(0));
        let outer_height = (height + get(3)).saturating_sub(get(1));
        browser
            .client()
            .set_window_size(outer_width, outer_height)
            .await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("cannot make the viewport {width}x{height}")
}

/// A screenshot with a 1280x800 viewport.
async fn shot(browser: &Browser, name: &str) -> anyhow::Result<()> {
    viewport(browser, 1280, 800).await?;
    browser.screenshot(name).await?;
    Ok(())
}

async fn frames(
    browser: &Browser,
    server: &Server,
    experiment: &server::experiment::Experiment,
    view: &str,
) -> anyhow::Result<()> {
    enter(browser, server, &format!("browser-iso-shots-{view}")).await?;
    let page = browser.page().await?;
    ensure!(page.kind == "task", "expected task j, got {page:?}");
    let task = &dsl::tasks::lookup("correa2025/j").context("task j")?.task;
    ensure!(
        browser
            .js("return document.getElementById('board').dataset.view")
            .await?
            == json!(view),
        "the page does not show the {view} view"
    );
    // The whole task page fits a 1280x800 viewport.
    viewport(browser, 1280, 800).await?;
    let fits = browser
        .js("return [document.documentElement.scrollHeight, window.innerHeight, document.documentElement.scrollWidth, window.innerWidth]")
        .await?;
    // The flat view is the page as it was before the isometric board; the isometric one must fit.
    if view == "isometric" {
        ensure!(
            fits[0].as_f64() <= fits[1].as_f64() && fits[2].as_f64() <= fits[3].as_f64(),
            "{view}: the task page needs scrolling at 1280x800: {fits}"
        );
    }
    let short = if view == "isometric" { "iso" } else { "flat" };
    for (kind, (before, after, effect)) in examples(task, experiment.light) {
        browser
            .js(&format!(
                "const b = window.proglab.board;
                 b.show({}, {{ animate: false }});
                 b.freezeAt(0.5);
                 b.show({}, {{ animate: true, effect: '{effect}', duration: 2000 }});",
                state_json(&before),
                state_json(&after)
            ))
            .await?;
        shot(browser, &format!("{short}-{kind}-mid")).await?;
        browser
            .js("const b = window.proglab.board; b.freezeAt(null); b.reset();")
            .await?;
    }
    if view == "isometric" {
        for rotation in 0..4 {
            browser
                .wait_for(
                    &format!("document.getElementById('board').dataset.rotation === '{rotation}'"),
                    "the rotation",
                )
                .await?;
            shot(browser, &format!("iso-task-j-rotation-{rotation}")).await?;
            browser.click("#camera-right").await?;
        }
    } else {
        let buttons = browser
            .js("return document.querySelectorAll('#camera-left, #camera-right').length")
            .await?;
        ensure!(buttons == json!(0), "the flat view has camera buttons");
        shot(browser, "flat-task-j").await?;
    }
    Ok(())
}
