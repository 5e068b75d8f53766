//! Between-subject conditions (docs/study.md §10), on SQLite and on Postgres: concurrent
//! arrivals are balanced over the conditions and, within each, over its counterbalanced orders;
//! each participant sees their condition's instructions, tasks and light semantics, and is judged
//! under them; the exports carry the condition and judge each trial on its condition's task;
//! preview sessions are assigned but not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use reqwest::StatusCode;
use rstest::rstest;
use serde_json::Value;
use server::domain::SessionToken;
use server::experiment::{EmbeddedFiles, Experiment};
use server::researcher::export::{ExportOptions, Exporter, Format, Sink};
use server::store::{ArmOrders, Assignment, NewSession, Store};

use crate::support::{Backend, Participant, TempDir, TestDb, solutions, spawn_app_with};

/// Two conditions: `toggle` sees tasks a and b (counterbalanced: two orders) with toggling
/// lights and the top-level instruction screen; `idem` sees task c only, with idempotent lights
/// and two instruction screens of its own.
const DEFINITION: &str = r#"
slug = "arms"
title = "Arms"
light = "idempotent"
skip_delay_seconds = 600
recruiter_id_params = ["PROLIFIC_PID"]
[consent]
text = "Agree?"
[[instructions]]
text = "Top-level instructions."
[[tasks]]
task = "correa2025/a"
[[tasks]]
task = "correa2025/b"
[order]
mode = "balanced"
[completion]
code = "ARMS-DONE"

[[conditions]]
name = "toggle"
light = "toggle"

[[conditions]]
name = "idem"
tasks = [{ task = "correa2025/c" }]
instructions = [{ text = "Condition instructions." }, { text = "One more screen." }]
"#;

/// Arrivals per test: six per condition, three per order of `toggle`.
const ARRIVALS: usize = 12;

fn experiment() -> Experiment {
    server::experiment::parse(DEFINITION, "test:arms.toml", &EmbeddedFiles(&[]))
        .expect("a valid definition")
}

/// The published solution of a correa2025 task, by `mdp_idx` (a = 0, b = 1, c = 2).
fn solution(mdp_idx: usize) -> String {
    solutions().tasks[mdp_idx].clone()
}

fn solves(mdp_idx: usize, program: &str, light: dsl::LightMode) -> bool {
    let task = &dsl::tasks::correa2025().tasks[mdp_idx].task;
    let limits = dsl::Limits::default();
    let program = dsl::parse_program(program, None, &limits).expect("a program");
    dsl::run(
        task,
        &program,
        &dsl::RunOptions {
            light,
            ..Default::default()
        },
    )
    .solved
}

/// The task's solution with one Light doubled: it still solves where Light is idempotent, but
/// switches a light off again where it toggles.
fn doubled_light(mdp_idx: usize) -> String {
    let program = solution(mdp_idx);
    (0..program.len())
        .filter(|&i| program.as_bytes()[i] == b'S')
        .map(|i| format!("{}S{}", &program[..i], &program[i..]))
        .find(|p| {
            solves(mdp_idx, p, dsl::LightMode::Idempotent)
                && !solves(mdp_idx, p, dsl::LightMode::Toggle)
        })
        .expect("a doubled Light that only idempotent lights forgive")
}

/// What one participant saw, walking the study to its end.
#[derive(Debug, Default)]
struct Seen {
    arm: String,
    screens: Vec<String>,
    /// The main tasks' labels, in the order shown.
    labels: Vec<String>,
    lights: BTreeSet<String>,
}

/// Walks a participant through the whole study: on each main task, runs and submits the
/// doubled-Light program (accepted only under idempotent lights), then the solution if it was
/// refused.
async fn walk(participant: &mut Participant, arm: &str) -> Seen {
    let mut seen = Seen {
        arm: arm.to_owned(),
        ..Seen::default()
    };
    let (status, body) = participant.consent(true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut run = 0;
    loop {
        let step = participant.step();
        match participant.kind() {
            "screen" => {
                let text = participant.last["current"]["text"]["markdown"].clone();
                seen.screens
                    .push(text.as_str().unwrap_or_default().trim().to_owned());
                let (status, body) = participant.continue_step(step).await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
            "task" => {
                let trial = participant.last["current"]["trial"].clone();
                let label = trial["label"].as_str().expect("a label").to_owned();
                let mdp_idx = ["a", "b", "c"]
                    .iter()
                    .position(|l| *l == label)
                    .expect("a correa2025 task");
                seen.labels.push(label);
                seen.lights
                    .insert(trial["light"].as_str().unwrap_or_default().to_owned());
                let forgiving = doubled_light(mdp_idx);
                let idempotent = trial["light"] == "idempotent";
                run += 1;
                let (status, body) = participant.run(step, run, &forgiving).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                assert_eq!(body["solved"].as_bool(), Some(idempotent), "{arm}: {body}");
                let (status, body) = participant.submit(step, &forgiving).await;
                if idempotent {
                    assert_eq!(status, StatusCode::OK, "{arm}: {body}");
                } else {
                    assert_eq!(
                        (status, body["error"]["code"].as_str()),
                        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_solved")),
                        "{arm}: {body}"
                    );
                    let (status, body) = participant.submit(step, &solution(mdp_idx)).await;
                    assert_eq!(status, StatusCode::OK, "{arm}: {body}");
                }
            }
            "complete" => {
                let (status, body) = participant.complete(None).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                return seen;
            }
            other => panic!("unexpected step kind {other}"),
        }
    }
}

/// An export as (columns, rows).
async fn export_table(exporter: &Exporter, format: Format) -> (Vec<String>, Vec<Vec<String>>) {
    let buffer = SharedBuffer::default();
    exporter
        .write(format, &mut Sink::Writer(Box::new(buffer.clone())))
        .await
        .expect("export");
    let bytes = buffer.0.lock().unwrap().clone();
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let columns = reader
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.expect("a record").iter().map(str::to_owned).collect())
        .collect();
    (columns, rows)
}

#[derive(Clone, Default)]
struct SharedBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `column` of every row, keyed by the row's `key` column.
fn by(columns: &[String], rows: &[Vec<String>], key: &str, column: &str) -> Vec<(String, String)> {
    let at = |name: &str| {
        columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("a column {name} in {columns:?}"))
    };
    let (k, c) = (at(key), at(column));
    rows.iter().map(|r| (r[k].clone(), r[c].clone())).collect()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_arrivals_are_balanced_and_each_sees_and_is_judged_by_its_condition(
    #[case] backend: Backend,
) {
    // Arrange: a server running the two-condition experiment.
    let Some(app) = spawn_app_with(backend, vec![experiment()], |_| {}).await else {
        return;
    };
    let app = Arc::new(app);

    // Act: twelve participants arrive at once.
    let arrivals: Vec<_> = (0..ARRIVALS)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let pid = format!("pid-{i:02}");
                let participant = app.enter("arms", &[("PROLIFIC_PID", pid.as_str())]).await;
                (pid, participant)
            })
        })
        .collect();
    let mut participants = Vec::new();
    for arrival in arrivals {
        participants.push(arrival.await.expect("an arrival"));
    }

    // Assert: six per condition, and three per order within each: the top-level balanced order
    // over the condition's tasks, a balanced Latin square (for `idem`'s one task, an odd number,
    // its row and the mirrored row).
    let mut cells: BTreeMap<(String, Option<i64>), usize> = BTreeMap::new();
    let mut arm_of: BTreeMap<String, String> = BTreeMap::new();
    for (pid, participant) in &participants {
        let id = participant.last["session_id"].as_str().expect("an id");
        let session = app.store.session(id).await.expect("the session");
        let arm = session.arm.clone().expect("every session has a condition");
        let expected_order = match (arm.as_str(), session.condition) {
            ("toggle", Some(0)) => vec![0, 1],
            ("toggle", Some(1)) => vec![1, 0],
            ("idem", Some(0 | 1)) => vec![0],
            other => panic!("unexpected assignment {other:?}"),
        };
        assert_eq!(session.task_order, expected_order);
        *cells.entry((arm.clone(), session.condition)).or_default() += 1;
        arm_of.insert(pid.clone(), arm);
    }
    let expected: BTreeMap<(String, Option<i64>), usize> = [
        (("idem".to_owned(), Some(0)), 3),
        (("idem".to_owned(), Some(1)), 3),
        (("toggle".to_owned(), Some(0)), 3),
        (("toggle".to_owned(), Some(1)), 3),
    ]
    .into();
    assert_eq!(cells, expected);

    // Act: everyone walks the study (run and submit on every task, then completion).
    let mut seen = Vec::new();
    for (pid, mut participant) in participants {
        let arm = arm_of[&pid].clone();
        seen.push((pid, walk(&mut participant, &arm).await));
    }

    // Assert: each saw their condition's screens, tasks and lights (walk checked the judgement).
    for (pid, seen) in &seen {
        match seen.arm.as_str() {
            "toggle" => {
                assert_eq!(seen.screens, ["Top-level instructions."], "{pid}");
                let labels: BTreeSet<&str> = seen.labels.iter().map(String::as_str).collect();
                assert_eq!(labels, BTreeSet::from(["a", "b"]), "{pid}");
                assert_eq!(seen.lights, BTreeSet::from(["toggle".to_owned()]), "{pid}");
            }
            _ => {
                assert_eq!(
                    seen.screens,
                    ["Condition instructions.", "One more screen."],
                    "{pid}"
                );
                assert_eq!(seen.labels, ["c"], "{pid}");
                assert_eq!(
                    seen.lights,
                    BTreeSet::from(["idempotent".to_owned()]),
                    "{pid}"
                );
            }
        }
    }

    // Assert: the exports carry each participant's condition and judge each trial on its
    // condition's task (the canonical program is empty for a program that does not solve it).
    let database = server::store::connect(&app.db.url).await.expect("open");
    let exporter = Exporter::new(
        database.store,
        database.research,
        Arc::new(experiment()),
        ExportOptions {
            raw_ids: true,
            ..ExportOptions::default()
        },
    )
    .await
    .expect("an exporter");
    let (columns, rows) = export_table(&exporter, Format::ProgramsCsv).await;
    assert_eq!(
        &columns[columns.len() - 2..],
        ["condition", "recruiter_id"],
        "{columns:?}"
    );
    assert_eq!(rows.len(), 6 * 2 + 6, "two tasks in toggle, one in idem");
    for (pid, condition) in by(&columns, &rows, "recruiter_id", "condition") {
        assert_eq!(condition, arm_of[&pid], "{pid}");
    }
    for (pid, canonical) in by(&columns, &rows, "recruiter_id", "preprocessed_program") {
        assert!(!canonical.is_empty(), "{pid}: no canonical program");
    }
    let (columns, rows) = export_table(&exporter, Format::TrialsCsv).await;
    for ((pid, condition), (_, solved)) in by(&columns, &rows, "recruiter_id", "condition")
        .into_iter()
        .zip(by(&columns, &rows, "recruiter_id", "solved"))
    {
        assert_eq!(condition, arm_of[&pid], "{pid}");
        assert_eq!(solved, "true", "{pid}: judged on another task");
    }
    let (columns, rows) = export_table(&exporter, Format::QuestionnaireCsv).await;
    assert!(columns.contains(&"condition".to_owned()) && rows.is_empty());

    let dir = TempDir::new();
    exporter.write_psych_ds(dir.path()).await.expect("psych-ds");
    let description: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("dataset_description.json")).expect("read"),
    )
    .expect("JSON");
    let variables = description["variableMeasured"].as_array().expect("a list");
    let condition = variables
        .iter()
        .find(|v| v["name"] == "condition")
        .expect("the condition column is described");
    assert_eq!(condition["levels"], serde_json::json!(["toggle", "idem"]));
    let text = condition["description"].as_str().unwrap_or_default();
    assert!(
        text.contains("\"toggle\" (toggle light, 2 tasks)")
            && text.contains("\"idem\" (idempotent light, 1 task)"),
        "{text}"
    );
}

async fn open(backend: Backend) -> Option<(TestDb, Arc<dyn Store>)> {
    let db = TestDb::new(backend).await?;
    let store = server::store::connect(&db.url)
        .await
        .expect("the store opens")
        .store;
    Some((db, store))
}

fn new_session(arms: &[ArmOrders], preview: bool, draw: u64) -> NewSession {
    NewSession {
        id: uuid::Uuid::new_v4().to_string(),
        experiment: "exp".into(),
        experiment_version: "v1".into(),
        token_hash: SessionToken::generate().hash(),
        recruiter_id: None,
        unique_recruiter: false,
        params: BTreeMap::new(),
        seed: 1,
        assignment: Assignment::Conditions {
            arms: arms.to_vec(),
            draw,
        },
        at: server::clock::now(),
        preview,
        device: None,
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_balances_conditions_then_orders_under_concurrency_and_counts_no_previews(
    #[case] backend: Backend,
) {
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let arms = vec![
        ArmOrders {
            name: "three-orders".into(),
            orders: vec![vec![0, 1, 2], vec![1, 2, 0], vec![2, 0, 1]],
            balanced: true,
            seed: 11,
        },
        ArmOrders {
            name: "fixed".into(),
            orders: vec![vec![0, 1]],
            balanced: false,
            seed: 22,
        },
    ];
    // 24 arrivals and 6 previews at once, with every tie-breaking draw.
    let mut handles = Vec::new();
    for i in 0..30u64 {
        let store = store.clone();
        let new = new_session(&arms, i % 5 == 4, i);
        handles.push(tokio::spawn(async move {
            store.create_session(new).await.unwrap()
        }));
    }
    let mut cells: BTreeMap<(String, Option<i64>), usize> = BTreeMap::new();
    let mut previews = 0;
    for handle in handles {
        let session = handle.await.unwrap();
        let arm = session.arm.clone().expect("a condition");
        let chosen = arms.iter().find(|a| a.name == arm).expect("a known arm");
        let index = session.condition.unwrap_or(0) as usize;
        assert_eq!(session.task_order, chosen.orders[index]);
        assert_eq!(session.seed, chosen.seed);
        if session.preview {
            previews += 1;
        } else {
            *cells.entry((arm, session.condition)).or_default() += 1;
        }
    }
    assert_eq!(previews, 6);
    let expected: BTreeMap<(String, Option<i64>), usize> = [
        (("fixed".to_owned(), None), 12),
        (("three-orders".to_owned(), Some(0)), 4),
        (("three-orders".to_owned(), Some(1)), 4),
        (("three-orders".to_owned(), Some(2)), 4),
    ]
    .into();
    assert_eq!(cells, expected);
    // Cells: three-orders 0..3, fixed 3 (stride 3).
    assert_eq!(store.table_counts().await.unwrap().assignment_counters, 4);

    // A tie between the conditions goes by the draw; a condition behind is next whatever the
    // draw.
    for draw in 0..4u64 {
        let tied = store
            .create_session(new_session(&arms, false, draw))
            .await
            .unwrap();
        assert_eq!(
            tied.arm.as_deref(),
            Some(arms[(draw % 2) as usize].name.as_str())
        );
        let behind = store
            .create_session(new_session(&arms, false, draw))
            .await
            .unwrap();
        assert_ne!(behind.arm, tied.arm, "draw {draw}");
    }
}
