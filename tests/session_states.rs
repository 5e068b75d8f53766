//! A session's writes follow its state, on both backends: events only between consent and the
//! end, one answer for writes on an ended session, simultaneous retries answered like sequential
//! ones, expiring tokens, input neither database can store, and the documented limits.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use rstest::rstest;
use serde_json::{Value, json};
use server::researcher::export::{ExportOptions, Exporter, Format, Sink};

use crate::support::{
    Backend, Participant, TestApp, bundled_with, into_parts, solutions, spawn_app, spawn_app_with,
};

/// The bundled study cut down to consent, one main task and completion.
fn short_study() -> server::experiment::Experiment {
    let mut short = bundled_with(&[]);
    short.tutorial.clear();
    short.practice.clear();
    short.instructions.clear();
    short.tasks.truncate(1);
    short.questionnaire.clear();
    short
}

/// The sequence numbers of every event in `export events-jsonl`, by session.
async fn exported_events(app: &TestApp) -> Vec<(String, i64)> {
    let database = server::store::connect(&app.db.url).await.expect("open");
    let experiment = Arc::new(short_study());
    let exporter = Exporter::new(
        database.store,
        database.research,
        experiment,
        ExportOptions::default(),
    )
    .await
    .expect("exporter");
    let buffer = SharedBuffer::default();
    exporter
        .write(
            Format::EventsJsonl,
            &mut Sink::Writer(Box::new(buffer.clone())),
        )
        .await
        .expect("export");
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let row: Value = serde_json::from_str(line).expect("a JSON line");
            (row.to_string(), row["seq"].as_i64().expect("seq"))
        })
        .collect()
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

fn code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_refused_before_consent_after_declining_and_after_completion(
    #[case] backend: Backend,
) {
    // Arrange
    let Some(app) = spawn_app_with(backend, vec![short_study()], |_| {}).await else {
        return;
    };
    let mut early = app.enter("correa2025", &[("PROLIFIC_PID", "early")]).await;
    let mut decliner = app.enter("correa2025", &[("PROLIFIC_PID", "no")]).await;
    let mut finisher = app.enter("correa2025", &[("PROLIFIC_PID", "yes")]).await;
    let event = |seq: i64| json!([{ "seq": seq, "type": "edit", "data": { "x": seq } }]);

    // Act and assert: before consent, after declining, after completing.
    let (status, body) = early.events(event(1)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, Some("consent_required")),
        "{body}"
    );
    decliner.consent(false).await;
    let (status, body) = decliner.events(event(1)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, Some("session_closed")),
        "{body}"
    );
    finisher.consent(true).await;
    assert_eq!(finisher.events(event(1)).await.0, StatusCode::OK);
    let (status, body) = finisher.submit(1, &solutions().tasks[0]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = finisher.complete(Some(1)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = finisher.events(event(2)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, Some("session_closed")),
        "{body}"
    );

    let exported = exported_events(&app).await;
    assert_eq!(
        exported.iter().map(|(_, seq)| *seq).collect::<Vec<_>>(),
        vec![1],
        "only the consenting participant's event before completion: {exported:?}"
    );
    let counts = app.store.table_counts().await.unwrap();
    assert_eq!(counts.events, 1);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_on_an_ended_session_is_session_closed_except_retries(
    #[case] backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut participant = app.enter("correa2025", &[("PROLIFIC_PID", "ended")]).await;
    participant.consent(false).await;

    let writes: Vec<(&str, Option<Value>)> = vec![
        ("/api/v1/session/steps/1/continue", None),
        ("/api/v1/session/steps/0/continue", None),
        (
            "/api/v1/session/steps/2/runs",
            Some(json!({ "run": 1, "program": "WWWWS" })),
        ),
        (
            "/api/v1/session/steps/0/runs",
            Some(json!({ "run": 1, "program": "WWWWS" })),
        ),
        (
            "/api/v1/session/steps/2/submit",
            Some(json!({ "program": "WWWWS" })),
        ),
        ("/api/v1/session/steps/21/skip", None),
        ("/api/v1/session/steps/1/skip", None),
        (
            "/api/v1/session/questionnaire",
            Some(json!({ "answers": { "programming_exp": "None", "programming_game_exp": "No" } })),
        ),
        (
            "/api/v1/session/questionnaire",
            Some(json!({ "answers": { "no_such_item": "x" } })),
        ),
        (
            "/api/v1/session/steps/2/submit",
            Some(json!({ "program": "not a program" })),
        ),
        (
            "/api/v1/session/complete",
            Some(json!({ "events_through": 5 })),
        ),
        ("/api/v1/session/consent", Some(json!({ "agree": true }))),
    ];
    for (path, body) in writes {
        let (status, answer) = participant.post(path, body).await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::CONFLICT, Some("session_closed")),
            "{path}: {answer}"
        );
    }
    // The same consent answer again is a retry.
    let (status, again) = participant.consent(false).await;
    assert_eq!(
        (status, again["status"].as_str()),
        (StatusCode::OK, Some("declined"))
    );
}

/// Sends the same request twenty times at once and returns every answer.
async fn post_20(
    participant: &Participant,
    path: &str,
    body: Option<Value>,
) -> Vec<(StatusCode, Value)> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let mut request = participant
            .client
            .post(format!("{}{path}", participant.base))
            .bearer_auth(&participant.token);
        if let Some(body) = &body {
            request = request.json(body);
        }
        set.spawn(async move { into_parts(request.send().await.expect("request")).await });
    }
    set.join_all().await
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_identical_submits_and_continues_are_answered_like_retries(
    #[case] backend: Backend,
) {
    // Arrange
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut participant = app.enter("correa2025", &[("PROLIFIC_PID", "twenty")]).await;
    participant.consent(true).await;
    // Act: twenty continues of step 1 at once, then twenty submits of step 2.
    let continues = post_20(&participant, "/api/v1/session/steps/1/continue", None).await;
    let submits = post_20(
        &participant,
        "/api/v1/session/steps/2/submit",
        Some(json!({ "program": "WWWWS" })),
    )
    .await;

    // Assert
    for (status, body) in &continues {
        assert_eq!(
            (*status, body["progress"]["step"].as_i64()),
            (StatusCode::OK, Some(2)),
            "{body}"
        );
    }
    for (status, body) in &submits {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body["session"]["progress"]["step"], 3, "{body}");
    }
    let fresh = submits
        .iter()
        .filter(|(_, body)| body["duplicate"] == json!(false))
        .count();
    assert_eq!(fresh, 1, "exactly one submit is new, the rest duplicates");
    let session_id = participant.last["session_id"].as_str().unwrap().to_owned();
    let record = app.store.session_record(&session_id).await.unwrap();
    assert_eq!(record.session.step, 3);
    assert_eq!(record.trials.len(), 1);
    assert_eq!(record.trials[0].program.as_deref(), Some("WWWWS||||"));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_older_than_its_lifetime_is_refused_like_an_unknown_token(
    #[case] backend: Backend,
) {
    let Some(app) = spawn_app_with(backend, server::experiment::bundled().unwrap(), |config| {
        config.session_lifetime = Duration::from_secs(1)
    })
    .await
    else {
        return;
    };
    let mut participant = app.enter("correa2025", &[("PROLIFIC_PID", "old")]).await;
    assert_eq!(participant.get_session().await.0, StatusCode::OK);

    tokio::time::sleep(Duration::from_millis(1500)).await;

    let (status, body) = participant.get_session().await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, Some("unauthorized")),
        "{body}"
    );
    let (status, _) = participant.consent(true).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_is_refused_with_400_and_a_nul_event_alone_is_refused(#[case] backend: Backend) {
    // Arrange
    let mut study = short_study();
    study.questionnaire = bundled_with(&[]).questionnaire;
    let Some(app) = spawn_app_with(backend, vec![study], |_| {}).await else {
        return;
    };

    // Act and assert: entry parameters, names and values.
    for params in [
        json!({ "PROLIFIC_PID": "a\u{0}b" }),
        json!({ "x\u{0}": "1" }),
    ] {
        let response = app
            .client
            .post(app.url("/api/v1/experiments/correa2025/sessions"))
            .json(&json!({ "params": params }))
            .send()
            .await
            .unwrap();
        let (status, body) = into_parts(response).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{body}"
        );
    }
    let mut participant = app.enter("correa2025", &[("PROLIFIC_PID", "nul")]).await;
    participant.consent(true).await;
    for (path, body) in [
        (
            "/api/v1/session/steps/1/runs",
            json!({ "run": 1, "program": "WW\u{0}WS" }),
        ),
        (
            "/api/v1/session/steps/1/submit",
            json!({ "program": "main { walk }\u{0}" }),
        ),
    ] {
        let (status, answer) = participant.post(path, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
    }

    // One event of a batch with U+0000 deep in its data, one in its type: those two are refused.
    let (status, body) = participant
        .events(json!([
            { "seq": 1, "type": "edit", "data": { "program": "W" } },
            { "seq": 2, "type": "edit", "data": { "nested": [{ "k\u{0}": "v" }] } },
            { "seq": 3, "type": "ed\u{0}it" },
            { "seq": 4, "type": "edit", "data": ["ok"] },
        ]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["stored"], &body["duplicates"]),
        (&json!([1, 4]), &json!([]))
    );
    let refused: Vec<i64> = body["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(refused, vec![2, 3], "{body}");
    // Sent again (a browser that restarted): refused again, still accounted for.
    let (_, again) = participant
        .events(json!([{ "seq": 2, "type": "edit", "data": "\u{0}" }]))
        .await;
    assert_eq!(again["refused"][0]["seq"], 2, "{again}");

    let solution = solutions().tasks[0].clone();
    assert_eq!(participant.submit(1, &solution).await.0, StatusCode::OK);
    let (status, body) = participant
        .questionnaire(json!({ "programming_exp": "None", "programming_game_exp": "No", "strategy": "a\u{0}" }))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "{body}"
    );
    let (status, body) = participant
        .questionnaire(json!({ "programming_exp": "None", "programming_game_exp": "No" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = participant.complete(Some(4)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "refused events do not hold back completion: {body}"
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_twice_in_one_batch_is_stored_once_and_reported_once_as_a_duplicate(
    #[case] backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut participant = app.enter("correa2025", &[("PROLIFIC_PID", "twice")]).await;
    participant.consent(true).await;

    let (status, body) = participant
        .events(json!([
            { "seq": 60, "type": "first" },
            { "seq": 60, "type": "second" },
            { "seq": 61, "type": "other" },
        ]))
        .await;

    assert_eq!(
        (status, &body["stored"], &body["duplicates"]),
        (StatusCode::OK, &json!([60, 61]), &json!([60])),
        "{body}"
    );
    let session_id = participant.last["session_id"].as_str().unwrap().to_owned();
    let record = app.store.session_record(&session_id).await.unwrap();
    let kinds: Vec<(i64, &str)> = record
        .events
        .iter()
        .map(|e| (e.seq, e.kind.as_str()))
        .collect();
    assert_eq!(kinds, vec![(60, "first"), (61, "other")]);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_documented_run_modes_are_accepted(#[case] backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut participant = app.enter("correa2025", &[("PROLIFIC_PID", "modes")]).await;
    participant.consent(true).await;
    participant.continue_step(1).await;

    let mut answers = Vec::new();
    for (run, mode) in [
        (1, json!("run")),
        (2, json!("quick_run")),
        (3, json!("step")),
        (4, Value::Null),
    ] {
        let body = json!({ "run": run, "program": "WW", "mode": mode });
        answers.push(
            participant
                .post("/api/v1/session/steps/2/runs", Some(body))
                .await
                .0,
        );
    }
    assert_eq!(answers, vec![StatusCode::OK; 4]);
    for mode in ["bogus", "", "RUN"] {
        let body = json!({ "run": 9, "program": "WW", "mode": mode });
        let (status, answer) = participant
            .post("/api/v1/session/steps/2/runs", Some(body))
            .await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{mode}: {answer}"
        );
    }
    let session_id = participant.last["session_id"].as_str().unwrap().to_owned();
    let record = app.store.session_record(&session_id).await.unwrap();
    let modes: BTreeSet<&str> = record.runs.iter().map(|r| r.mode.as_str()).collect();
    assert_eq!(modes, BTreeSet::from(["quick_run", "run", "step"]));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_seqs_reads_the_highest_event_refused_event_and_run_numbers(#[case] backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut participant = app.enter("correa2025", &[("PROLIFIC_PID", "max")]).await;
    let session_id = participant.last["session_id"].as_str().unwrap().to_owned();
    assert_eq!(app.store.max_seqs(&session_id).await.unwrap(), (0, 0));
    participant.consent(true).await;
    participant.continue_step(1).await;

    participant
        .events(json!([{ "seq": 3, "type": "a" }, { "seq": 7, "type": "b" }]))
        .await;
    participant.run(2, 5, "W").await;
    participant.run(2, 2, "WW").await;
    assert_eq!(app.store.max_seqs(&session_id).await.unwrap(), (7, 5));
    participant
        .events(json!([{ "seq": 9, "type": "\u{0}" }]))
        .await;
    assert_eq!(
        app.store.max_seqs(&session_id).await.unwrap(),
        (9, 5),
        "a refused number is used too"
    );
}
