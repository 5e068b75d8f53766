//! The store test suite: every `Store` method, run against SQLite and Postgres.

use std::collections::BTreeMap;
use std::sync::Arc;

use rstest::rstest;
use serde_json::json;
use server::domain::{SessionStatus, SessionToken, TrialOutcome};
use server::store::group_commit::{EventWriter, GroupCommitConfig};
use server::store::{
    Assignment, EventBatch, FinishTrial, NewEvent, NewSession, NewTrial, RefusedArrival,
    RefusedEvent, Run, RunRecorded, Store, StoreError,
};
use time::OffsetDateTime;

use crate::support::{Backend, TestDb};

async fn open(backend: Backend) -> Option<(TestDb, Arc<dyn Store>)> {
    let db = TestDb::new(backend).await?;
    let store = server::store::connect(&db.url)
        .await
        .expect("the store opens")
        .store;
    Some((db, store))
}

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds).unwrap()
}

fn new_session(recruiter: Option<&str>, assignment: Assignment) -> NewSession {
    NewSession {
        id: uuid::Uuid::new_v4().to_string(),
        experiment: "exp".into(),
        experiment_version: "v1".into(),
        token_hash: SessionToken::generate().hash(),
        recruiter_id: recruiter.map(str::to_owned),
        unique_recruiter: true,
        params: BTreeMap::from([
            (
                "PROLIFIC_PID".to_owned(),
                recruiter.unwrap_or("").to_owned(),
            ),
            ("x".to_owned(), "1".to_owned()),
        ]),
        seed: 42,
        assignment,
        at: at(0),
        preview: false,
        device: None,
    }
}

fn trial(session_id: &str, step: i64, at_seconds: i64) -> NewTrial {
    NewTrial {
        session_id: session_id.to_owned(),
        step,
        phase: server::domain::Phase::Tasks,
        position: 0,
        task_index: 3,
        label: "d".into(),
        at: at(at_seconds),
        ms: at_seconds * 1000,
    }
}

fn run(session_id: &str, seq: i64, step: i64, program: &str) -> Run {
    Run {
        session_id: session_id.to_owned(),
        seq,
        step,
        program: program.to_owned(),
        mode: "run".into(),
        solved: false,
        steps: 3,
        created_at: at(5),
        session_ms: 5000,
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn sessions_are_created_found_by_token_and_refused_for_a_repeat_recruiter(
    #[case] backend: Backend,
) {
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let new = new_session(
        Some("p1"),
        Assignment::Given {
            task_order: vec![2, 0, 1],
        },
    );
    let hash = new.token_hash.clone();
    let session = store.create_session(new.clone()).await.unwrap();
    assert_eq!(session.task_order, vec![2, 0, 1]);
    assert_eq!(
        (
            session.status,
            session.step,
            session.seed,
            session.condition
        ),
        (SessionStatus::Active, 0, 42, None)
    );
    assert_eq!(session.created_at, at(0));
    assert_eq!(store.session_by_token(&hash).await.unwrap(), session);
    assert!(matches!(
        store
            .session_by_token(&SessionToken::generate().hash())
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.params(&session.id).await.unwrap(), new.params);

    let repeat = store
        .create_session(new_session(
            Some("p1"),
            Assignment::Given { task_order: vec![] },
        ))
        .await;
    assert!(matches!(repeat, Err(StoreError::Conflict(_))), "{repeat:?}");
    let mut allowed = new_session(Some("p1"), Assignment::Given { task_order: vec![] });
    allowed.unique_recruiter = false;
    store.create_session(allowed).await.unwrap();
    let counts = store.table_counts().await.unwrap();
    assert_eq!(
        (
            counts.sessions,
            counts.participations,
            counts.session_params
        ),
        (2, 1, 4),
        "the refused session left nothing"
    );
}

/// SQLite keeps times as text whose fraction has only the digits it needs (`:00Z`, `:00.1Z`,
/// `:00.105Z`): sorted as text they come out of order, so every query orders by the time itself.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn sessions_come_in_the_order_they_started_whatever_their_milliseconds(
    #[case] backend: Backend,
) {
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let offsets_ms = [105, 1000, 100, 0, 1500, 10];
    for (i, ms) in offsets_ms.iter().enumerate() {
        let mut new = new_session(
            Some(&format!("p{i}")),
            Assignment::Given { task_order: vec![] },
        );
        new.at = at(0) + time::Duration::milliseconds(*ms);
        store.create_session(new).await.unwrap();
    }
    let started: Vec<i128> = store
        .sessions_of("exp")
        .await
        .unwrap()
        .iter()
        .map(|s| (s.created_at - at(0)).whole_milliseconds())
        .collect();
    assert_eq!(started, [0, 10, 100, 105, 1000, 1500]);
    let mut later = new_session(Some("p3"), Assignment::Given { task_order: vec![] });
    later.unique_recruiter = false;
    later.at = at(0) + time::Duration::milliseconds(5);
    let later = store.create_session(later).await.unwrap();
    // p3 started at 0 ms and again at 5 ms: the later one is the latest.
    assert_eq!(
        store
            .latest_session_of("exp", "p3")
            .await
            .unwrap()
            .map(|s| s.id),
        Some(later.id)
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_resume_replaces_the_token_and_refused_arrivals_are_kept(#[case] backend: Backend) {
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let mut new = new_session(Some("p9"), Assignment::Given { task_order: vec![] });
    new.preview = true;
    new.device = Some(json!({ "width": 1280, "height": 800, "touch": false }));
    let old = new.token_hash.clone();
    let session = store.create_session(new).await.unwrap();
    assert!(session.preview);
    let later = new_session(Some("p9"), Assignment::Given { task_order: vec![] });
    let mut later = NewSession {
        unique_recruiter: false,
        at: at(5),
        ..later
    };
    later.preview = false;
    let newer = store.create_session(later).await.unwrap();
    assert_eq!(
        store.latest_session_of("exp", "p9").await.unwrap(),
        Some(newer)
    );
    assert_eq!(
        store.latest_session_of("exp", "nobody").await.unwrap(),
        None
    );

    let fresh = SessionToken::generate().hash();
    let moved = store
        .replace_token(&session.id, &fresh, at(9))
        .await
        .unwrap();
    assert_eq!(moved.id, session.id);
    assert_eq!(store.session_by_token(&fresh).await.unwrap().id, session.id);
    assert!(matches!(
        store.session_by_token(&old).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.is_superseded(&old).await.unwrap());
    assert!(!store.is_superseded(&fresh).await.unwrap());
    assert!(matches!(
        store
            .replace_token("no-such-session", &SessionToken::generate().hash(), at(9))
            .await,
        Err(StoreError::NotFound)
    ));

    let refused = RefusedArrival {
        experiment: "exp".into(),
        reason: "device_not_supported".into(),
        recruiter_id: Some("p10".into()),
        params: BTreeMap::from([("PROLIFIC_PID".to_owned(), "p10".to_owned())]),
        device: Some(json!({ "width": 390, "height": 844, "touch": true })),
        at: at(10),
    };
    store.refuse_arrival(refused.clone()).await.unwrap();
    assert_eq!(store.refused_arrivals("exp").await.unwrap(), vec![refused]);
    assert!(store.refused_arrivals("other").await.unwrap().is_empty());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn balanced_assignment_stays_balanced_under_concurrent_arrivals(#[case] backend: Backend) {
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let orders = vec![vec![0, 1, 2], vec![1, 2, 0], vec![2, 0, 1]];
    let mut handles = Vec::new();
    for _ in 0..12 {
        let store = store.clone();
        let orders = orders.clone();
        handles.push(tokio::spawn(async move {
            let mut new = new_session(None, Assignment::Balanced { orders });
            new.unique_recruiter = false;
            store.create_session(new).await.unwrap()
        }));
    }
    let mut per_condition = [0; 3];
    for handle in handles {
        let session = handle.await.unwrap();
        let condition = session.condition.unwrap() as usize;
        assert_eq!(session.task_order, orders[condition]);
        per_condition[condition] += 1;
    }
    assert_eq!(per_condition, [4, 4, 4]);
    assert_eq!(store.table_counts().await.unwrap().assignment_counters, 3);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn consent_and_steps_only_move_forward_from_where_the_session_is(#[case] backend: Backend) {
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let session = store
        .create_session(new_session(
            Some("p"),
            Assignment::Given {
                task_order: vec![0],
            },
        ))
        .await
        .unwrap();
    assert!(matches!(
        store.advance(&session.id, 1, at(1)).await,
        Err(StoreError::Conflict(_))
    ));
    let consented = store
        .record_consent(&session.id, true, at(1))
        .await
        .unwrap();
    assert_eq!(
        (consented.step, consented.consent, consented.consent_at),
        (1, Some(true), Some(at(1)))
    );
    assert!(matches!(
        store.record_consent(&session.id, false, at(2)).await,
        Err(StoreError::Conflict(_))
    ));
    let advanced = store.advance(&session.id, 1, at(2)).await.unwrap();
    assert_eq!((advanced.step, advanced.updated_at), (2, at(2)));
    assert!(matches!(
        store.advance(&session.id, 1, at(3)).await,
        Err(StoreError::Conflict(_))
    ));

    let declined = store
        .create_session(new_session(
            Some("q"),
            Assignment::Given { task_order: vec![] },
        ))
        .await
        .unwrap();
    let declined = store
        .record_consent(&declined.id, false, at(1))
        .await
        .unwrap();
    assert_eq!(
        (declined.status, declined.step),
        (SessionStatus::Declined, 0)
    );
    assert!(matches!(
        store.advance(&declined.id, 0, at(2)).await,
        Err(StoreError::Conflict(_))
    ));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn trials_runs_and_outcomes_are_stored_once(#[case] backend: Backend) {
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let session = store
        .create_session(new_session(
            Some("p"),
            Assignment::Given {
                task_order: vec![0],
            },
        ))
        .await
        .unwrap();
    store
        .record_consent(&session.id, true, at(1))
        .await
        .unwrap();
    assert!(matches!(
        store.trial(&session.id, 1).await,
        Err(StoreError::NotFound)
    ));
    let served = store.serve_trial(trial(&session.id, 1, 2)).await.unwrap();
    assert_eq!(
        (
            served.started_at,
            served.started_ms,
            served.outcome,
            served.runs
        ),
        (at(2), 2000, None, 0)
    );
    let again = store.serve_trial(trial(&session.id, 1, 9)).await.unwrap();
    assert_eq!(again, served, "serving again keeps the first start");

    assert!(matches!(
        store
            .record_run(run(&session.id, 1, 1, "W||||"))
            .await
            .unwrap(),
        RunRecorded::New(_)
    ));
    assert!(matches!(
        store
            .record_run(run(&session.id, 1, 1, "W||||"))
            .await
            .unwrap(),
        RunRecorded::Existing(_)
    ));
    assert!(matches!(
        store.record_run(run(&session.id, 1, 1, "J||||")).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .record_run(run(&session.id, 2, 1, "J||||"))
            .await
            .unwrap(),
        RunRecorded::New(_)
    ));
    assert_eq!(
        store.run(&session.id, 2).await.unwrap().unwrap().program,
        "J||||"
    );
    assert_eq!(store.run(&session.id, 3).await.unwrap(), None);
    assert_eq!(store.trial(&session.id, 1).await.unwrap().runs, 2);

    let finish = FinishTrial {
        session_id: session.id.clone(),
        step: 1,
        outcome: TrialOutcome::Submitted,
        program: Some("WS||||".into()),
        at: at(7),
        ms: 7000,
    };
    let moved = store.finish_trial(finish.clone()).await.unwrap();
    assert_eq!(moved.step, 2);
    assert!(matches!(
        store.finish_trial(finish).await,
        Err(StoreError::Conflict(_))
    ));
    let ended = store.trial(&session.id, 1).await.unwrap();
    assert_eq!(
        (
            ended.outcome,
            ended.program.as_deref(),
            ended.ended_at,
            ended.ended_ms
        ),
        (
            Some(TrialOutcome::Submitted),
            Some("WS||||"),
            Some(at(7)),
            Some(7000)
        )
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn events_answers_and_completion_round_trip(#[case] backend: Backend) {
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let session = store
        .create_session(new_session(
            Some("p"),
            Assignment::Given { task_order: vec![] },
        ))
        .await
        .unwrap();
    let event = |seq: i64, data: serde_json::Value| NewEvent {
        seq,
        kind: "edit".into(),
        step: Some(1),
        client_ms: Some(seq * 10),
        data,
    };
    let stored = store
        .store_events(
            &session.id,
            &[event(1, json!({"a": [1, 2]})), event(3, json!("x"))],
            at(1),
            1000,
        )
        .await
        .unwrap();
    assert_eq!((stored.stored, stored.duplicates), (vec![1, 3], vec![]));
    let stored = store
        .store_events(
            &session.id,
            &[event(3, json!("changed")), event(2, json!(null))],
            at(2),
            2000,
        )
        .await
        .unwrap();
    assert_eq!((stored.stored, stored.duplicates), (vec![3, 2], vec![3]));
    assert_eq!(
        store.missing_events(&session.id, 5).await.unwrap(),
        vec![4, 5]
    );

    store
        .record_consent(&session.id, true, at(3))
        .await
        .unwrap();
    let answers = vec![
        ("q1".to_owned(), "None".to_owned()),
        ("q2".to_owned(), "free text, with \"quotes\"".to_owned()),
    ];
    let after = store
        .save_answers(&session.id, 1, &answers, at(4))
        .await
        .unwrap();
    assert_eq!(after.step, 2);
    assert!(matches!(
        store.save_answers(&session.id, 1, &answers, at(5)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.complete_session(&session.id, 1, "CODE", at(5)).await,
        Err(StoreError::Conflict(_))
    ));
    let completed = store
        .complete_session(&session.id, 2, "CODE", at(6))
        .await
        .unwrap();
    assert_eq!(
        (
            completed.status,
            completed.completion_code.as_deref(),
            completed.completed_at
        ),
        (SessionStatus::Completed, Some("CODE"), Some(at(6)))
    );
    assert!(matches!(
        store.complete_session(&session.id, 2, "CODE", at(7)).await,
        Err(StoreError::Conflict(_))
    ));

    let record = store.session_record(&session.id).await.unwrap();
    assert_eq!(record.session, completed);
    let events: Vec<(i64, serde_json::Value, i64)> = record
        .events
        .iter()
        .map(|e| (e.seq, e.data.clone(), e.session_ms))
        .collect();
    assert_eq!(
        events,
        vec![
            (1, json!({"a": [1, 2]}), 1000),
            (2, json!(null), 2000),
            (3, json!("x"), 1000)
        ]
    );
    assert_eq!(record.events[0].received_at, at(1));
    let stored_answers: Vec<(String, String)> = record
        .answers
        .iter()
        .map(|a| (a.item.clone(), a.answer.clone()))
        .collect();
    assert_eq!(stored_answers, answers);
    assert_eq!(store.sessions_of("exp").await.unwrap(), vec![completed]);
    assert_eq!(store.sessions_of("other").await.unwrap(), vec![]);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn migrations_run_once_and_reopening_keeps_the_data(#[case] backend: Backend) {
    let Some((db, store)) = open(backend).await else {
        return;
    };
    let session = store
        .create_session(new_session(
            Some("p"),
            Assignment::Given {
                task_order: vec![1],
            },
        ))
        .await
        .unwrap();
    store.close().await;
    let reopened = server::store::connect(&db.url).await.unwrap().store;
    assert_eq!(reopened.session(&session.id).await.unwrap(), session);
    assert_eq!(
        reopened.backend(),
        if backend == Backend::Sqlite {
            "sqlite"
        } else {
            "postgres"
        }
    );
    reopened.ping().await.unwrap();
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn refused_events_count_for_completion_and_max_seqs_reads_the_highest_numbers(
    #[case] backend: Backend,
) {
    // Arrange
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let session = store
        .create_session(new_session(
            Some("m"),
            Assignment::Given { task_order: vec![] },
        ))
        .await
        .unwrap();
    assert_eq!(store.max_seqs(&session.id).await.unwrap(), (0, 0));
    let event = |seq: i64| NewEvent {
        seq,
        kind: "edit".into(),
        step: None,
        client_ms: None,
        data: json!(null),
    };

    // Act
    let stored = store
        .store_events(&session.id, &[event(1), event(1), event(2)], at(1), 10)
        .await
        .unwrap();
    let refused = |seq: i64| RefusedEvent {
        seq,
        reason: "contains U+0000".into(),
    };
    store
        .refuse_events(&session.id, &[refused(4), refused(3)], at(2))
        .await
        .unwrap();
    store
        .refuse_events(&session.id, &[refused(4)], at(3))
        .await
        .unwrap();

    // Assert
    assert_eq!((stored.stored, stored.duplicates), (vec![1, 2], vec![1]));
    assert_eq!(
        store.missing_events(&session.id, 6).await.unwrap(),
        vec![5, 6]
    );
    assert_eq!(store.max_seqs(&session.id).await.unwrap(), (4, 0));
}

fn edit(seq: i64) -> NewEvent {
    NewEvent {
        seq,
        kind: "edit".into(),
        step: Some(1),
        client_ms: Some(seq * 10),
        data: json!({"seq": seq}),
    }
}

fn batch(session_id: &str, seqs: &[i64]) -> EventBatch {
    EventBatch {
        session_id: session_id.to_owned(),
        events: seqs.iter().map(|&seq| edit(seq)).collect(),
        at: at(1),
        session_ms: 1000,
    }
}

/// Two new sessions' IDs; the second already holds event 2.
async fn two_sessions_the_second_holding_event_2(store: &dyn Store) -> Vec<String> {
    let mut ids = Vec::new();
    for recruiter in ["a", "b"] {
        let session = store
            .create_session(new_session(
                Some(recruiter),
                Assignment::Given { task_order: vec![] },
            ))
            .await
            .unwrap();
        ids.push(session.id);
    }
    store
        .store_events(&ids[1], &[edit(2)], at(0), 0)
        .await
        .unwrap();
    ids
}

async fn stored_seqs(store: &dyn Store, session_id: &str) -> Vec<i64> {
    let record = store.session_record(session_id).await.unwrap();
    record.events.iter().map(|event| event.seq).collect()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_failing_batch_does_not_fail_its_group_mates(#[case] backend: Backend) {
    // Arrange: two sessions, one of which already holds event 2.
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let ids = two_sessions_the_second_holding_event_2(store.as_ref()).await;

    // Act: one group whose middle batch names a session that does not exist (a foreign-key
    // violation, as a withdrawn session would give).
    let results = store
        .store_event_batches(&[
            batch(&ids[0], &[1, 2]),
            batch("no-such-session", &[1]),
            batch(&ids[1], &[2, 3, 3]),
        ])
        .await
        .expect("the group commits");

    // Assert
    assert_eq!(results.len(), 3);
    let first = results[0].as_ref().expect("first batch stored");
    assert_eq!((&first.stored, &first.duplicates), (&vec![1, 2], &vec![]));
    assert!(results[1].is_err(), "the bad batch fails alone");
    let third = results[2].as_ref().expect("third batch stored");
    assert_eq!(
        (&third.stored, &third.duplicates),
        (&vec![2, 3], &vec![2, 3])
    );
    assert_eq!(stored_seqs(store.as_ref(), &ids[0]).await, vec![1, 2]);
    assert_eq!(stored_seqs(store.as_ref(), &ids[1]).await, vec![2, 3]);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_group_answers_each_batch_as_if_stored_one_after_another(#[case] backend: Backend) {
    // Arrange: two sessions, the second already holding event 2.
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let ids = two_sessions_the_second_holding_event_2(store.as_ref()).await;

    // Act: a group in which nothing fails, with repeats inside a batch, across batches of one
    // session, and of an event stored before.
    let results = store
        .store_event_batches(&[
            batch(&ids[0], &[1, 2]),
            batch(&ids[1], &[2, 3, 3]),
            batch(&ids[0], &[2, 4]),
        ])
        .await
        .expect("the group commits");

    // Assert
    let answers: Vec<(Vec<i64>, Vec<i64>)> = results
        .into_iter()
        .map(|result| {
            let stored = result.expect("stored");
            (stored.stored, stored.duplicates)
        })
        .collect();
    assert_eq!(
        answers,
        vec![
            (vec![1, 2], vec![]),
            (vec![2, 3], vec![2, 3]),
            (vec![2, 4], vec![2]),
        ]
    );
    assert_eq!(stored_seqs(store.as_ref(), &ids[0]).await, vec![1, 2, 4]);
    assert_eq!(stored_seqs(store.as_ref(), &ids[1]).await, vec![2, 3]);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_through_the_group_commit_are_each_stored_once(
    #[case] backend: Backend,
) {
    // Arrange
    let Some((_db, store)) = open(backend).await else {
        return;
    };
    let writer = EventWriter::spawn(
        store.clone(),
        GroupCommitConfig::for_backend(backend_name(backend)),
    );
    let mut ids = Vec::new();
    for i in 0..8 {
        let session = store
            .create_session(new_session(
                Some(&format!("r{i}")),
                Assignment::Given { task_order: vec![] },
            ))
            .await
            .unwrap();
        ids.push(session.id);
    }

    // Act: 8 sessions x 25 requests, each sent twice at the same time (a retry racing its
    // original), plus one request for a session that does not exist.
    let mut tasks = tokio::task::JoinSet::new();
    for id in &ids {
        for seq in 1..=25 {
            for _copy in 0..2 {
                let (writer, id) = (writer.clone(), id.clone());
                tasks.spawn(async move { (seq, writer.store(batch(&id, &[seq])).await) });
            }
        }
    }
    let orphan = writer.store(batch("no-such-session", &[1])).await;
    let mut duplicates = 0;
    while let Some(joined) = tasks.join_next().await {
        let (seq, result) = joined.unwrap();
        let stored = result.expect("acknowledged");
        assert_eq!(stored.stored, vec![seq]);
        duplicates += stored.duplicates.len();
    }

    // Assert: every acknowledged event is stored exactly once; each pair had one duplicate.
    assert!(orphan.is_err());
    assert_eq!(duplicates, 8 * 25);
    for id in &ids {
        assert_eq!(
            stored_seqs(store.as_ref(), id).await,
            (1..=25).collect::<Vec<_>>()
        );
    }
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}
