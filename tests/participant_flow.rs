//! A participant's whole session over HTTP, on both backends: the full bundled study with the
//! published programs as solutions, retries, reloads, repeats, skips, refused submits, tokens and
//! body limits.

use std::time::Duration;

use reqwest::StatusCode;
use rstest::rstest;
use serde_json::{Value, json};
use server::domain::{SessionStatus, TrialOutcome};

use crate::support::{Backend, Participant, bundled_with, solutions, spawn_app, spawn_app_with};

/// The compact form the server stores for a program.
fn compact(program: &str) -> String {
    dsl::parse_program(program, None, &dsl::Limits::default())
        .expect("a valid program")
        .to_compact()
}

/// Answers every step until the first main task (or, with `to_end`, until the questionnaire),
/// solving tutorial and practice levels. Returns the number of events sent.
async fn walk_to_first_task(participant: &mut Participant) {
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
                let program = match trial["phase"].as_str().unwrap() {
                    "tutorial" => {
                        let solved_before =
                            participant.last["progress"]["phase_step"].as_i64().unwrap();
                        let index = [1, 5, 9, 11]
                            .iter()
                            .position(|&i| i == solved_before)
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

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_completes_the_bundled_study_and_every_row_is_stored(
    #[case] backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let solutions = solutions();
    let params = [
        ("PROLIFIC_PID", "pid-0001"),
        ("STUDY_ID", "study-9"),
        ("SESSION_ID", "sess-3"),
        ("note", "a b&c=d"),
    ];
    let mut participant = app.enter("correa2025", &params).await;
    assert_eq!(participant.kind(), "consent");

    // Act: answer every step; on every task run a wrong program, then the solution, then submit;
    // log an event for every step.
    let mut seq = 0i64;
    let mut run = 0i64;
    let mut expected_trials: Vec<(String, i64, String)> = Vec::new();
    let mut sent_events = Vec::new();
    loop {
        let step = participant.step();
        let kind = participant.kind().to_owned();
        if kind == "consent" {
            // Events are stored only once consent is given, so the consent step's event follows it.
            assert_eq!(participant.consent(true).await.0, StatusCode::OK);
        }
        seq += 1;
        let event = json!({ "seq": seq, "type": "step_shown", "step": step, "t": seq * 100, "data": { "kind": kind } });
        sent_events.push(event.clone());
        let (status, body) = participant.events(json!([event])).await;
        assert_eq!(
            (status, &body["stored"]),
            (StatusCode::OK, &json!([seq])),
            "{body}"
        );
        match kind.as_str() {
            "consent" => {}
            "screen" => assert_eq!(participant.continue_step(step).await.0, StatusCode::OK),
            "task" => {
                let trial = participant.last["current"]["trial"].clone();
                let phase = trial["phase"].as_str().unwrap().to_owned();
                let program = match phase.as_str() {
                    "tutorial" => solutions.tutorial[expected_trials.len()].to_owned(),
                    "practice" => solutions.practice.to_owned(),
                    _ => solutions.tasks[trial["task_index"].as_u64().unwrap() as usize].clone(),
                };
                run += 1;
                let (status, body) = participant.run(step, run, "W").await;
                assert_eq!(
                    (status, body["solved"].as_bool()),
                    (StatusCode::OK, Some(false)),
                    "{body}"
                );
                run += 1;
                let (status, body) = participant.run(step, run, &program).await;
                assert_eq!(
                    (status, body["solved"].as_bool()),
                    (StatusCode::OK, Some(true)),
                    "{program}: {body}"
                );
                assert_eq!(
                    body["trace"].as_array().unwrap().len() as u64,
                    body["steps"].as_u64().unwrap() + calls(&body)
                );
                let (status, body) = participant.submit(step, &program).await;
                assert_eq!(status, StatusCode::OK, "{program}: {body}");
                expected_trials.push((phase, step, compact(&program)));
            }
            "questionnaire" => {
                let answers = json!({
                    "programming_exp": "None",
                    "programming_game_exp": "No",
                    "strategy": "Look for repeated moves.",
                    "comments": "",
                });
                let (status, body) = participant.questionnaire(answers).await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
            "complete" => {
                let (status, body) = participant.complete(Some(seq)).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                assert_eq!(body["code"], "CORREA2025");
                assert_eq!(
                    body["redirect_url"],
                    "https://app.prolific.com/submissions/complete?cc=CORREA2025"
                );
                assert_eq!(participant.kind(), "done");
                break;
            }
            other => panic!("unexpected step kind {other}"),
        }
    }

    // Assert: the session view, then every stored row.
    let (status, view) = participant.get_session().await;
    assert_eq!(
        (status, view["status"].as_str()),
        (StatusCode::OK, Some("completed"))
    );
    assert_eq!(view["current"]["code"], "CORREA2025");
    let session_id = view["session_id"].as_str().unwrap();
    let record = app.store.session_record(session_id).await.unwrap();
    let experiment = server::experiment::bundled().unwrap().remove(0);

    let session = &record.session;
    assert_eq!(session.status, SessionStatus::Completed);
    assert_eq!(session.step, 34);
    assert_eq!(session.consent, Some(true));
    assert!(session.consent_at.is_some() && session.completed_at.is_some());
    assert_eq!(session.completion_code.as_deref(), Some("CORREA2025"));
    assert_eq!(session.experiment, "correa2025");
    assert_eq!(session.experiment_version, experiment.version);
    assert_eq!(session.recruiter_id.as_deref(), Some("pid-0001"));
    assert_eq!(session.task_order, (0..10).collect::<Vec<_>>());
    assert_eq!(session.condition, None);

    let stored_params: Vec<(&str, &str)> = record
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut expected_params = params.to_vec();
    expected_params.sort();
    assert_eq!(stored_params, expected_params);

    assert_eq!(
        record.trials.len(),
        15,
        "4 tutorial levels, the practice problem, 10 tasks"
    );
    for (trial, (phase, step, program)) in record.trials.iter().zip(&expected_trials) {
        assert_eq!((trial.phase.as_str(), trial.step), (phase.as_str(), *step));
        assert_eq!(trial.outcome, Some(TrialOutcome::Submitted));
        assert_eq!(trial.program.as_deref(), Some(program.as_str()));
        assert_eq!(trial.runs, 2);
        assert!(trial.ended_at.unwrap() >= trial.started_at);
        assert!(trial.ended_ms.unwrap() >= trial.started_ms);
    }
    let main: Vec<_> = record
        .trials
        .iter()
        .filter(|t| t.phase == "tasks")
        .collect();
    let labels: Vec<&str> = main.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels, ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]);
    assert!(
        main.iter()
            .enumerate()
            .all(|(i, t)| t.position == i as i64 && t.task_index == i as i64)
    );

    assert_eq!(record.runs.len(), 30);
    for (i, stored) in record.runs.iter().enumerate() {
        assert_eq!(stored.seq, i as i64 + 1);
        let trial = &expected_trials[i / 2];
        assert_eq!(stored.step, trial.1);
        if i % 2 == 0 {
            assert_eq!((stored.program.as_str(), stored.solved), ("W||||", false));
        } else {
            assert_eq!((&stored.program, stored.solved), (&trial.2, true));
        }
        assert_eq!(stored.mode, "run");
    }

    assert_eq!(record.events.len(), sent_events.len());
    for (stored, sent) in record.events.iter().zip(&sent_events) {
        assert_eq!(stored.seq, sent["seq"].as_i64().unwrap());
        assert_eq!(stored.kind, "step_shown");
        assert_eq!(stored.step, sent["step"].as_i64());
        assert_eq!(stored.client_ms, sent["t"].as_i64());
        assert_eq!(stored.data, sent["data"]);
    }

    let answers: Vec<(&str, &str)> = record
        .answers
        .iter()
        .map(|a| (a.item.as_str(), a.answer.as_str()))
        .collect();
    assert_eq!(
        answers,
        [
            ("comments", ""),
            ("programming_exp", "None"),
            ("programming_game_exp", "No"),
            ("strategy", "Look for repeated moves.")
        ]
    );

    let counts = app.store.table_counts().await.unwrap();
    assert_eq!(
        counts,
        server::store::TableCounts {
            sessions: 1,
            session_params: 4,
            participations: 1,
            assignment_counters: 0,
            trials: 15,
            runs: 30,
            events: sent_events.len() as i64,
            answers: 4,
        }
    );
}

/// Call tokens in a run's trace (the trace has one entry per token, `steps` counts primitives).
fn calls(run: &Value) -> u64 {
    run["trace"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["effect"] == "call")
        .count() as u64
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_event_batch_or_run_or_submit_is_not_duplicated(#[case] backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut participant = app.enter("correa2025", &[("PROLIFIC_PID", "retry")]).await;
    participant.consent(true).await;
    participant.continue_step(1).await;
    assert_eq!((participant.step(), participant.kind()), (2, "task"));
    let session_id = participant.last["session_id"].as_str().unwrap().to_owned();

    let batch = json!([
        { "seq": 1, "type": "edit", "data": { "program": "W" } },
        { "seq": 2, "type": "edit", "data": { "program": "WW" } },
        { "seq": 3, "type": "click", "data": null },
    ]);
    let (status, first) = participant.events(batch.clone()).await;
    assert_eq!(
        (status, &first["stored"], &first["duplicates"]),
        (StatusCode::OK, &json!([1, 2, 3]), &json!([]))
    );
    let (status, again) = participant.events(batch).await;
    assert_eq!(
        (status, &again["stored"], &again["duplicates"]),
        (StatusCode::OK, &json!([1, 2, 3]), &json!([1, 2, 3]))
    );
    let (_, overlap) = participant
        .events(json!([{ "seq": 3, "type": "other" }, { "seq": 4, "type": "edit" }]))
        .await;
    assert_eq!(
        (&overlap["stored"], &overlap["duplicates"]),
        (&json!([3, 4]), &json!([3]))
    );

    let (status, run) = participant.run(2, 1, "WWWWS").await;
    assert_eq!((status, &run["duplicate"]), (StatusCode::OK, &json!(false)));
    let (status, retry) = participant.run(2, 1, "WWWWS").await;
    assert_eq!(
        (status, &retry["duplicate"]),
        (StatusCode::OK, &json!(true))
    );
    assert_eq!(retry["trace"], run["trace"]);
    let (status, reused) = participant.run(2, 1, "WS").await;
    assert_eq!(
        (status, reused["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("run_number_reused"))
    );

    let (status, submitted) = participant.submit(2, "WWWWS").await;
    assert_eq!(
        (status, &submitted["duplicate"]),
        (StatusCode::OK, &json!(false))
    );
    let (status, resubmitted) = participant.submit(2, "WWWWS").await;
    assert_eq!(
        (status, &resubmitted["duplicate"]),
        (StatusCode::OK, &json!(true))
    );
    assert_eq!(
        resubmitted["session"]["progress"]["step"], 3,
        "a retried submit does not advance twice"
    );
    let (status, retry_after_submit) = participant.run(2, 1, "WWWWS").await;
    assert_eq!(
        (status, &retry_after_submit["duplicate"]),
        (StatusCode::OK, &json!(true))
    );
    let (status, late) = participant.run(2, 2, "WWWWS").await;
    assert_eq!(
        (status, late["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("wrong_step"))
    );
    let (status, continued) = participant.continue_step(1).await;
    assert_eq!(
        (status, &continued["progress"]["step"]),
        (StatusCode::OK, &json!(3)),
        "a retried continue is a no-op"
    );

    let record = app.store.session_record(&session_id).await.unwrap();
    assert_eq!(record.events.len(), 4);
    assert_eq!(
        record.events[2].kind, "click",
        "the first write of a sequence number wins"
    );
    assert_eq!(record.runs.len(), 1);
    assert_eq!(record.trials.len(), 1);
    assert_eq!(record.trials[0].runs, 1);
    assert_eq!(record.session.step, 3);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_resumes_exactly_where_the_participant_was(#[case] backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // A browser: the cookie is the only credential it sends.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let enter = |client: reqwest::Client| {
        let url = app.url("/api/v1/experiments/correa2025/sessions");
        async move {
            crate::support::into_parts(
                client
                    .post(url)
                    .json(&json!({ "params": { "PROLIFIC_PID": "reloader" } }))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let (status, entered) = enter(browser.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{entered}");
    let session_id = entered["session"]["session_id"].clone();
    let post = |path: &str, body: Value| browser.post(app.url(path)).json(&body).send();
    assert_eq!(
        post("/api/v1/session/consent", json!({ "agree": true }))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        post("/api/v1/session/steps/1/continue", json!({}))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let (_, before) = crate::support::into_parts(
        browser
            .get(app.url("/api/v1/session"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(before["current"]["kind"], "task");

    tokio::time::sleep(Duration::from_millis(20)).await;
    // Reload: the page enters again with the same URL parameters and the cookie.
    let (status, resumed) = enter(browser.clone()).await;
    assert_eq!(status, StatusCode::OK, "{resumed}");
    assert_eq!(resumed["resumed"], true);
    assert_eq!(resumed["token"], Value::Null);
    assert_eq!(resumed["session"]["session_id"], session_id);
    assert_eq!(resumed["session"]["progress"], before["progress"]);
    assert_eq!(
        resumed["session"]["current"]["trial"]["started_at"],
        before["current"]["trial"]["started_at"],
        "the task's clock is not restarted by a reload"
    );
    let (_, after) = crate::support::into_parts(
        browser
            .get(app.url("/api/v1/session"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(after["current"], before["current"]);
    assert_eq!(app.store.table_counts().await.unwrap().sessions, 1);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recruiter_id_that_already_took_part_is_refused(#[case] backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut first = app
        .enter(
            "correa2025",
            &[("PROLIFIC_PID", "again"), ("SESSION_ID", "1")],
        )
        .await;
    // The participant's own token resumes.
    let (status, resumed) = app
        .enter_raw(
            "correa2025",
            &[("PROLIFIC_PID", "again")],
            Some(&first.token),
        )
        .await;
    assert_eq!(
        (status, &resumed["resumed"]),
        (StatusCode::OK, &json!(true))
    );
    let (status, _) = first.consent(false).await;
    assert_eq!(status, StatusCode::OK);

    // Once the session has ended, the same ID is refused, whatever its submission.
    for submission in ["1", "2"] {
        let (status, refused) = app
            .enter_raw(
                "correa2025",
                &[("PROLIFIC_PID", "again"), ("SESSION_ID", submission)],
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        assert_eq!(refused["error"]["code"], "already_participated");
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains("already taken part")
        );
    }
    // A token of another session does not get around it either.
    let other = app
        .enter("correa2025", &[("PROLIFIC_PID", "someone-else")])
        .await;
    let (status, _) = app
        .enter_raw(
            "correa2025",
            &[("PROLIFIC_PID", "again")],
            Some(&other.token),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let counts = app.store.table_counts().await.unwrap();
    assert_eq!(
        (
            counts.sessions,
            counts.participations,
            counts.session_params
        ),
        (2, 2, 3)
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_are_accepted_when_the_experiment_allows_them(#[case] backend: Backend) {
    let experiment = bundled_with(&[("allow_repeats = false", "allow_repeats = true")]);
    let Some(app) = spawn_app_with(backend, vec![experiment], |_| {}).await else {
        return;
    };
    app.enter(
        "correa2025",
        &[("PROLIFIC_PID", "twice"), ("SESSION_ID", "1")],
    )
    .await;
    app.enter(
        "correa2025",
        &[("PROLIFIC_PID", "twice"), ("SESSION_ID", "2")],
    )
    .await;
    // The same submission again is a retry: it resumes the second session.
    let (status, retried) = app
        .enter_raw(
            "correa2025",
            &[("PROLIFIC_PID", "twice"), ("SESSION_ID", "2")],
            None,
        )
        .await;
    assert_eq!(
        (status, &retried["resumed"]),
        (StatusCode::OK, &json!(true))
    );
    let counts = app.store.table_counts().await.unwrap();
    assert_eq!((counts.sessions, counts.participations), (2, 0));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_study_refuses_a_skip_before_210_seconds(#[case] backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut participant = app
        .enter("correa2025", &[("PROLIFIC_PID", "impatient")])
        .await;
    walk_to_first_task(&mut participant).await;
    let step = participant.step();
    let trial = participant.last["current"]["trial"].clone();
    assert_eq!(trial["skip"]["delay_seconds"], 210);
    assert_eq!(trial["skip"]["available"], false);

    let (status, refused) = participant.skip(step).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "skip_not_available");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("210 s"),
        "{refused}"
    );
    let (_, view) = participant.get_session().await;
    assert_eq!(view["progress"]["step"], step);
    let session_id = view["session_id"].as_str().unwrap();
    let trial = app.store.trial(session_id, step).await.unwrap();
    assert_eq!(trial.outcome, None);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skip_is_refused_before_the_delay_and_recorded_after_it(#[case] backend: Backend) {
    let experiment = bundled_with(&[("skip_delay_seconds = 210", "skip_delay_seconds = 2")]);
    let Some(app) = spawn_app_with(backend, vec![experiment], |_| {}).await else {
        return;
    };
    let mut participant = app
        .enter("correa2025", &[("PROLIFIC_PID", "skipper")])
        .await;
    participant.consent(true).await;
    participant.continue_step(1).await;
    let (status, tutorial_skip) = participant.skip(2).await;
    assert_eq!(
        (status, tutorial_skip["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("skip_not_allowed"))
    );

    walk_to_first_task(&mut participant).await;
    let step = participant.step();
    let (status, early) = participant.skip(step).await;
    assert_eq!(
        (status, early["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("skip_not_available"))
    );

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, skipped) = participant.skip(step).await;
    assert_eq!(status, StatusCode::OK, "{skipped}");
    assert_eq!(skipped["progress"]["step"], step + 1);
    let (status, again) = participant.skip(step).await;
    assert_eq!(
        (status, &again["progress"]["step"]),
        (StatusCode::OK, &json!(step + 1)),
        "a retried skip is a no-op"
    );

    let session_id = skipped["session_id"].as_str().unwrap();
    let trial = app.store.trial(session_id, step).await.unwrap();
    assert_eq!(trial.outcome, Some(TrialOutcome::Skipped));
    assert_eq!(trial.program, None);
    let waited = trial.ended_at.unwrap() - trial.started_at;
    assert!(
        waited >= time::Duration::seconds(2),
        "skipped after {waited}"
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsolved_or_malformed_program_cannot_be_submitted(#[case] backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut participant = app
        .enter("correa2025", &[("PROLIFIC_PID", "unsolved")])
        .await;
    participant.consent(true).await;
    participant.continue_step(1).await;

    let (status, refused) = participant.submit(2, "WWW").await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_solved"))
    );
    let (status, malformed) = participant.submit(2, "main { walk hop }").await;
    assert_eq!(
        (status, malformed["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_program"))
    );
    assert_eq!(
        (
            malformed["error"]["line"].as_u64(),
            malformed["error"]["column"].as_u64()
        ),
        (Some(1), Some(13)),
        "{malformed}"
    );
    let (status, bad_run) = participant.run(2, 1, "WWQ").await;
    assert_eq!(
        (status, bad_run["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_program"))
    );
    // docs/semantics.md §1.8: programs that never solve the task return promptly.
    for (run, program) in [(2, "1|1"), (3, "1|11"), (4, "1|W1")] {
        let (status, body) = participant.run(2, run, program).await;
        assert_eq!(
            (status, body["solved"].as_bool()),
            (StatusCode::OK, Some(false)),
            "{program}"
        );
    }
    let (status, refused) = participant.submit(2, "1|W1").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");

    let (_, view) = participant.get_session().await;
    assert_eq!(view["progress"]["step"], 2);
    let trial = app
        .store
        .trial(view["session_id"].as_str().unwrap(), 2)
        .await
        .unwrap();
    assert_eq!((trial.outcome, trial.program, trial.runs), (None, None, 3));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_token_gets_401_and_touches_nothing(#[case] backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut participant = app.enter("correa2025", &[("PROLIFIC_PID", "victim")]).await;
    participant.consent(true).await;
    participant.continue_step(1).await;
    participant
        .events(json!([{ "seq": 1, "type": "edit" }]))
        .await;
    let session_id = participant.last["session_id"].as_str().unwrap().to_owned();
    let before = app.store.session_record(&session_id).await.unwrap();
    let counts_before = app.store.table_counts().await.unwrap();

    let requests: Vec<(&str, &str, Value)> = vec![
        ("GET", "/api/v1/session", Value::Null),
        ("POST", "/api/v1/session/consent", json!({ "agree": false })),
        ("POST", "/api/v1/session/steps/2/continue", json!({})),
        (
            "POST",
            "/api/v1/session/steps/2/runs",
            json!({ "run": 9, "program": "WWWWS" }),
        ),
        (
            "POST",
            "/api/v1/session/steps/2/submit",
            json!({ "program": "WWWWS" }),
        ),
        ("POST", "/api/v1/session/steps/2/skip", json!({})),
        (
            "POST",
            "/api/v1/session/events",
            json!({ "events": [{ "seq": 2, "type": "edit" }] }),
        ),
        (
            "POST",
            "/api/v1/session/questionnaire",
            json!({ "answers": {} }),
        ),
        ("POST", "/api/v1/session/complete", json!({})),
    ];
    let random_token = server::domain::SessionToken::generate();
    let credentials: [Option<(&str, String)>; 4] = [
        None,
        Some(("authorization", format!("Bearer {}", random_token.expose()))),
        Some(("authorization", "Bearer not-a-token".into())),
        Some((
            "cookie",
            format!("proglab_session={}", random_token.expose()),
        )),
    ];
    for (method, path, body) in &requests {
        for credential in &credentials {
            let mut request = match *method {
                "GET" => app.client.get(app.url(path)),
                _ => app.client.post(app.url(path)).json(body),
            };
            if let Some((name, value)) = credential {
                request = request.header(*name, value);
            }
            let (status, reply) = crate::support::into_parts(request.send().await.unwrap()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {credential:?}: {reply}"
            );
            assert_eq!(reply["error"]["code"], "unauthorized");
        }
    }

    assert_eq!(app.store.session_record(&session_id).await.unwrap(), before);
    assert_eq!(app.store.table_counts().await.unwrap(), counts_before);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_over_the_limit_gets_413(#[case] backend: Backend) {
    let Some(app) = spawn_app_with(backend, server::experiment::bundled().unwrap(), |config| {
        config.body_limit = 64 * 1024
    })
    .await
    else {
        return;
    };
    let participant = app.enter("correa2025", &[("PROLIFIC_PID", "big")]).await;
    let big = "x".repeat(100 * 1024);
    let body = json!({ "events": [{ "seq": 1, "type": "edit", "data": big }] }).to_string();
    let counts_before = app.store.table_counts().await.unwrap();

    // With a Content-Length header.
    let (status, reply) = send_refused(|| {
        app.client
            .post(app.url("/api/v1/session/events"))
            .bearer_auth(&participant.token)
            .body(body.clone())
    })
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{reply}");
    assert_eq!(reply["error"]["code"], "payload_too_large");
    // Streamed in chunks, without a declared length: the limit applies while reading.
    let status_line = post_chunked(
        &app.base,
        "/api/v1/session/events",
        &participant.token,
        body.as_bytes(),
    )
    .await;
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
    let (status, reply) = send_refused(|| {
        app.client
            .post(app.url("/api/v1/experiments/correa2025/sessions"))
            .body(format!("{{\"params\":{{\"x\":\"{big}\"}}}}"))
    })
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{reply}");
    assert_eq!(app.store.table_counts().await.unwrap(), counts_before);
}

/// Sends an oversized request until a response comes back. The server refuses a declared
/// over-limit body without reading it and closes the connection with the body still unread, so
/// the kernel may answer with a reset that discards the 413 before the client reads it (a TCP
/// race that shows on a loaded machine). A reset is sent again, at most five times; every
/// response that does arrive is returned to the caller's assertions.
async fn send_refused(request: impl Fn() -> reqwest::RequestBuilder) -> (StatusCode, Value) {
    let mut last = None;
    for _ in 0..5 {
        match request().send().await {
            Ok(response) => return crate::support::into_parts(response).await,
            Err(e) if e.is_request() || e.is_body() => last = Some(e),
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no response in five attempts: {last:?}");
}

/// Sends a POST with `Transfer-Encoding: chunked` over a raw connection and returns the
/// response's status line.
async fn post_chunked(base: &str, path: &str, token: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(8192) {
        // The server may answer and close before the whole body is sent.
        if stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .is_err()
            || stream.write_all(chunk).await.is_err()
            || stream.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declining_consent_ends_the_session(#[case] backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut participant = app.enter("correa2025", &[("PROLIFIC_PID", "no")]).await;
    let (status, declined) = participant.consent(false).await;
    assert_eq!(
        (
            status,
            declined["status"].as_str(),
            declined["current"]["kind"].as_str()
        ),
        (StatusCode::OK, Some("declined"), Some("declined"))
    );
    let (status, refused) = participant.continue_step(0).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    let (status, _) = participant.complete(None).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_waits_until_every_event_is_stored(#[case] backend: Backend) {
    let experiment = bundled_with(&[]);
    let mut short = experiment.clone();
    short.tutorial.clear();
    short.practice.clear();
    short.instructions.clear();
    short.tasks.truncate(1);
    short.questionnaire.clear();
    let Some(app) = spawn_app_with(backend, vec![short], |_| {}).await else {
        return;
    };
    let mut participant = app.enter("correa2025", &[("PROLIFIC_PID", "short")]).await;
    participant.consent(true).await;
    let solution = solutions().tasks[0].clone();
    let (status, body) = participant.submit(1, &solution).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(participant.kind(), "complete");
    participant
        .events(json!([{ "seq": 1, "type": "a" }, { "seq": 3, "type": "c" }]))
        .await;

    let (status, missing) = participant.complete(Some(3)).await;
    assert_eq!(
        (status, missing["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("events_missing"))
    );
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with(": 2"),
        "{missing}"
    );
    participant.events(json!([{ "seq": 2, "type": "b" }])).await;
    let (status, done) = participant.complete(Some(3)).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(
        done["redirect_url"],
        "https://app.prolific.com/submissions/complete?cc=CORREA2025"
    );
    let (status, again) = participant.complete(None).await;
    assert_eq!(
        (status, &again["code"]),
        (StatusCode::OK, &done["code"]),
        "completing again returns the same code"
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_of_a_changed_experiment_is_refused_after_a_restart(#[case] backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut participant = app.enter("correa2025", &[("PROLIFIC_PID", "before")]).await;
    let db = app.stop().await;
    let changed = bundled_with(&[(
        "title = \"Robot programming puzzles\"",
        "title = \"Changed\"",
    )]);
    let app = crate::support::start_app(db, vec![changed], |_| {}).await;
    participant.base = app.base.clone();
    let (status, refused) = participant.get_session().await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("experiment_changed")),
        "{refused}"
    );
    let (status, refused) = participant.consent(true).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shuffled_and_balanced_orders_are_recorded_and_served(#[case] backend: Backend) {
    let shuffled = bundled_with(&[
        ("mode = \"fixed\"", "mode = \"shuffle\""),
        ("slug = \"correa2025\"", "slug = \"shuffled\""),
    ]);
    let balanced = bundled_with(&[
        ("mode = \"fixed\"", "mode = \"balanced\""),
        ("slug = \"correa2025\"", "slug = \"balanced\""),
    ]);
    let Some(app) = spawn_app_with(backend, vec![shuffled, balanced], |_| {}).await else {
        return;
    };
    let mut orders = Vec::new();
    for i in 0..4 {
        let mut participant = app
            .enter("shuffled", &[("PROLIFIC_PID", &format!("s{i}"))])
            .await;
        walk_to_first_task(&mut participant).await;
        let session = app
            .store
            .session(participant.last["session_id"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(
            session.task_order,
            server::experiment::order::shuffled(10, session.seed as u64),
            "the order follows from the seed"
        );
        assert_eq!(
            participant.last["current"]["trial"]["task_index"].as_u64(),
            Some(session.task_order[0] as u64)
        );
        orders.push(session.task_order);
    }
    assert!(
        orders.iter().any(|o| *o != orders[0]),
        "four sessions got the same shuffle"
    );

    let mut conditions = Vec::new();
    for i in 0..3 {
        let participant = app
            .enter("balanced", &[("PROLIFIC_PID", &format!("b{i}"))])
            .await;
        let session = app
            .store
            .session(participant.last["session_id"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(
            session.task_order,
            server::experiment::order::balanced_latin_square(10)
                [session.condition.unwrap() as usize]
        );
        conditions.push(session.condition.unwrap());
    }
    assert_eq!(conditions, [0, 1, 2]);
}
