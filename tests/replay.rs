//! The researcher's replay of a participant, over HTTP on both backends: a participant edits,
//! runs in every mode, steps, stops, resets, goes back, reloads, turns the camera, leaves full
//! screen and skips; the replay page shows the program at skip time (from the events, or from the
//! runs when no event carried one), every event kind in order with its label, the events outside
//! the tasks, and every questionnaire answer next to its question, escaped.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rstest::rstest;
use serde_json::{Value, json};

use crate::support::signed_in::Researcher;
use crate::support::{Backend, Participant, bundled_with, solutions, spawn_app_with};

/// Consents and answers every step before the first main task, solving the tutorial levels and
/// the practice problem.
pub(crate) async fn walk_to_first_task(participant: &mut Participant) {
    let solutions = solutions();
    let (status, body) = participant.consent(true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    loop {
        let step = participant.step();
        match participant.kind() {
            "screen" => {
                let (status, body) = participant.continue_step(step).await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
            "task" => {
                let trial = participant.last["current"]["trial"].clone();
                let program = match trial["phase"].as_str().unwrap_or("") {
                    "tutorial" => {
                        let before = participant.last["progress"]["phase_step"]
                            .as_i64()
                            .unwrap_or(0);
                        let index = [1, 5, 9, 11]
                            .iter()
                            .position(|&i| i == before)
                            .expect("a tutorial level");
                        solutions.tutorial[index].to_owned()
                    }
                    "practice" => solutions.practice.to_owned(),
                    _ => return,
                };
                let (status, body) = participant.submit(step, &program).await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
            other => panic!("unexpected step kind {other} before the main tasks"),
        }
    }
}

/// Sends one event (numbered by `seq`) on `step`, without a client time: the server's time orders it.
async fn event(participant: &mut Participant, seq: &mut i64, step: i64, kind: &str, data: Value) {
    *seq += 1;
    let (status, body) = participant
        .events(json!([{ "seq": *seq, "type": kind, "step": step, "data": data }]))
        .await;
    assert_eq!(
        (status, &body["stored"]),
        (StatusCode::OK, &json!([*seq])),
        "{kind}: {body}"
    );
}

/// Records a run in `mode` as the app does: the `run` event, then the run itself.
async fn run(
    participant: &mut Participant,
    seq: &mut i64,
    step: i64,
    number: i64,
    mode: &str,
    program: &str,
) {
    let data = json!({ "run": number, "mode": mode, "program": program });
    event(participant, seq, step, "run", data).await;
    let body = json!({ "run": number, "program": program, "mode": mode });
    let path = format!("/api/v1/session/steps/{step}/runs");
    let (status, answer) = participant.post(&path, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// Skips `step`, waiting out the (short) skip delay.
async fn skip(participant: &mut Participant, step: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = participant.skip(step).await;
        if status == StatusCode::OK {
            return;
        }
        assert_eq!(body["error"]["code"], "skip_not_available", "{body}");
        assert!(Instant::now() < deadline, "the skip never became available");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Text as askama writes it into HTML (numeric character references).
fn escaped(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// The history template of the trial at `step` (the page renders one per trial).
fn history<'a>(html: &'a str, marker: &str) -> &'a str {
    html.split("<template id=\"history-")
        .skip(1)
        .map(|chunk| chunk.split("</template>").next().unwrap_or(""))
        .find(|chunk| chunk.contains(marker))
        .unwrap_or_else(|| panic!("no history with {marker:?}"))
}

/// `data-kind` of every entry of a history, in order.
fn kinds(history: &str) -> Vec<&str> {
    history
        .split("data-kind=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect()
}

const FINAL: &str = "RRWJ|L|||";
const STRATEGY: &str = "<script>alert(\"x\")</script> & 'quotes' <b>bold</b>";
const COMMENTS: &str = "line one\nline two  (two spaces)";

/// The first main task, as the app records it: every kind of event the task page sends, one
/// unknown kind, and a skip with the program at that moment.
async fn first_task(participant: &mut Participant, seq: &mut i64, step: i64) {
    let p = participant;
    let page = json!({ "page": "task", "phase": "tasks", "restored": false, "program": "||||" });
    event(p, seq, step, "page", page).await;
    let edit =
        |program: &str| json!({ "op": "add", "routine": 0, "instr": "W", "program": program });
    event(p, seq, step, "edit", edit("W||||")).await;
    event(p, seq, step, "edit", edit("WJ||||")).await;
    run(p, seq, step, 1, "quick_run", "WJ||||").await;
    event(p, seq, step, "reset", json!({})).await;
    run(p, seq, step, 2, "step", "WJ||||").await;
    event(p, seq, step, "step", json!({ "index": 1 })).await;
    event(p, seq, step, "stop", json!({ "status": "stepping" })).await;
    let camera = json!({ "rotation": 1, "delta": 1, "via": "key" });
    event(p, seq, step, "camera", camera).await;
    let fullscreen = json!({ "state": "left", "reason": "participant" });
    event(p, seq, step, "fullscreen", fullscreen).await;
    event(p, seq, step, "help", json!({})).await;
    let reload = json!({ "page": "task", "phase": "tasks", "restored": true, "program": "WJ||||" });
    event(p, seq, step, "page", reload).await;
    event(p, seq, step, "edit", edit("WJL||||")).await;
    run(p, seq, step, 3, "run", "WJL||||").await;
    event(p, seq, step, "success_back", json!({ "key": "escape" })).await;
    let mystery = json!({ "note": "<b>x</b>", "n": 7 });
    event(p, seq, step, "mystery_kind", mystery).await;
    event(p, seq, step, "edit", edit(FINAL)).await;
    event(p, seq, step, "skip_open", json!({})).await;
    event(p, seq, step, "skip_cancel", json!({ "key": "escape" })).await;
    event(p, seq, step, "skip_open", json!({})).await;
    event(p, seq, step, "skip", json!({ "program": FINAL })).await;
    skip(p, step).await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_shows_the_program_at_skip_time_every_event_and_every_answer(
    #[case] backend: Backend,
) {
    let experiment = bundled_with(&[("skip_delay_seconds = 210", "skip_delay_seconds = 1")]);
    let questionnaire = experiment.questionnaire.clone();
    let Some(app) = spawn_app_with(backend, vec![experiment], |_| {}).await else {
        return;
    };
    let mut participant = app
        .enter("correa2025", &[("PROLIFIC_PID", "replayed")])
        .await;
    walk_to_first_task(&mut participant).await;
    let session_id = participant.last["session_id"]
        .as_str()
        .expect("a session ID")
        .to_owned();

    // Act: the first task with every event kind; the second skipped after a run without events;
    // the third skipped with nothing recorded; the rest solved; the questionnaire; the end.
    let mut seq = 0;
    let step = participant.step();
    first_task(&mut participant, &mut seq, step).await;
    let second = participant.step();
    let (status, body) = participant.run(second, 4, "WWL").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    skip(&mut participant, second).await;
    skip(&mut participant, second + 1).await;
    let solutions = solutions();
    while participant.kind() == "task" {
        let step = participant.step();
        let task = participant.last["current"]["trial"]["task_index"]
            .as_u64()
            .expect("a main task") as usize;
        let (status, body) = participant.submit(step, &solutions.tasks[task]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(participant.kind(), "questionnaire");
    let step = participant.step();
    let items = json!({ "items": ["programming_exp", "strategy"] });
    event(&mut participant, &mut seq, step, "questionnaire", items).await;
    let answers = json!({
        "programming_exp": "None",
        "programming_game_exp": "No",
        "strategy": STRATEGY,
        "comments": COMMENTS,
    });
    let (status, body) = participant.questionnaire(answers).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let step = participant.step();
    event(
        &mut participant,
        &mut seq,
        step,
        "page",
        json!({ "page": "complete" }),
    )
    .await;
    let (status, body) = participant.complete(Some(seq)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let ada = Researcher::sign_in(&app, "ada").await;
    let (status, html) = ada
        .page(&format!(
            "/researcher/experiments/correa2025/sessions/{session_id}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);

    // Assert: the program at skip time, from the last event before the skip.
    let first = history(&html, FINAL);
    assert!(
        first.contains(
            "<span class=\"r-final-label\">Program at skip time</span>:\n  \
             <code class=\"r-program r-final-program\">RRWJ|L|||</code>"
        ),
        "{first}"
    );
    // Every entry in order: the outcome stands for the client's skip event.
    assert_eq!(
        kinds(first),
        [
            "start",
            "page",
            "edit",
            "edit",
            "run",
            "reset",
            "run",
            "step",
            "stop",
            "camera",
            "fullscreen",
            "help",
            "page",
            "edit",
            "run",
            "success_back",
            "mystery_kind",
            "edit",
            "skip_open",
            "skip_cancel",
            "skip_open",
            "skip",
        ]
    );
    for label in [
        "Task shown",
        "Page shown",
        "Edit",
        "Quick run",
        "Reset",
        "Step (run)",
        "Step",
        "Stop",
        "Camera rotation",
        "Full screen",
        "Help opened",
        "Reload",
        "Run",
        "Go back",
        "Other event: mystery_kind",
        "Skip: dialog opened",
        "Skip: cancelled",
        "Skipped",
    ] {
        assert!(
            first.contains(&format!("<span class=\"r-what\">{label}</span>")),
            "{label}: {first}"
        );
    }
    for detail in [
        "delta: 1, rotation: 1, via: key",
        "reason: participant, state: left",
        "run 1, ",
        "not solved",
        "n: 7, note: &#60;b&#62;x&#60;/b&#62;",
    ] {
        assert!(first.contains(detail), "{detail}: {first}");
    }
    assert!(!html.contains("<b>x</b>"), "event data is escaped");
    // Without events, the program at skip time is the last run's; with nothing, none is recorded.
    let runs_only = history(
        &html,
        "<code class=\"r-program r-final-program\">WWL||||</code>",
    );
    assert!(runs_only.contains("Program at skip time"), "{runs_only}");
    assert_eq!(kinds(runs_only), ["start", "run", "skip"]);
    assert!(html.contains("Program at skip time</span>:\n  <em>none recorded</em>"));
    // The events outside the tasks.
    let outside = html
        .split("id=\"session-events\"")
        .nth(1)
        .expect("the events outside the tasks");
    assert!(outside.contains("data-kind=\"questionnaire\""), "{outside}");
    assert!(outside.contains("<td>Questionnaire sent</td>"), "{outside}");
    assert!(outside.contains("page: complete"), "{outside}");

    // Every question with its answer, verbatim and escaped.
    let section = html.split("id=\"answers\"").nth(1).expect("the answers");
    for item in &questionnaire {
        let question = format!(
            "<dt data-item=\"{}\">{}</dt>",
            item.id,
            escaped(&item.prompt)
        );
        assert!(section.contains(&question), "{question}: {section}");
    }
    for (item, answer) in [
        ("programming_exp", "None"),
        ("programming_game_exp", "No"),
        ("strategy", STRATEGY),
        ("comments", COMMENTS),
    ] {
        let shown = format!(
            "<dd data-item=\"{item}\"><span class=\"r-answer\">{}</span></dd>",
            escaped(answer)
        );
        assert!(section.contains(&shown), "{shown}: {section}");
    }
    assert!(
        section.contains("<dd data-item=\"confusing\"><em class=\"muted\">not answered</em></dd>")
    );
    assert!(!html.contains("<script>alert"), "answers are escaped");
}
