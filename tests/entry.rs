//! Entry over HTTP on both backends (docs/api.md, "Entry"): a retried entry whose answer was lost
//! gets its session back, a second browser with the same submission continues the session and
//! the first is told so, arrivals without the recruiter ID or below the device requirements are
//! refused and counted, and a finished participant is still refused.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rstest::rstest;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::support::{Backend, TestApp, into_parts, spawn_app};

const SLUG: &str = "correa2025";

async fn enter(app: &TestApp, body: Value, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(app.url(&format!("/api/v1/experiments/{SLUG}/sessions")))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    into_parts(request.send().await.expect("request")).await
}

async fn session_with(app: &TestApp, token: &str) -> (StatusCode, Value) {
    into_parts(
        app.client
            .get(app.url("/api/v1/session"))
            .bearer_auth(token)
            .send()
            .await
            .expect("request"),
    )
    .await
}

async fn sessions_of(app: &TestApp, recruiter_id: &str) -> Vec<server::store::Session> {
    app.store
        .sessions_of(SLUG)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.recruiter_id.as_deref() == Some(recruiter_id))
        .collect()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_retried_after_its_answer_was_lost_gets_the_same_session(
    #[case] backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let body =
        json!({ "params": { "PROLIFIC_PID": "lost-1", "STUDY_ID": "st", "SESSION_ID": "sub-1" } })
            .to_string();
    // The entry is sent on a raw connection that is dropped unread once the server has
    // committed: the client never sees its token.
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!(
        "POST /api/v1/experiments/{SLUG}/sessions HTTP/1.1\r\nHost: {address}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sessions_of(&app, "lost-1").await.is_empty() {
        assert!(Instant::now() < deadline, "the entry was never committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(stream);
    let committed = sessions_of(&app, "lost-1").await;
    assert_eq!(committed.len(), 1);

    let body: Value = serde_json::from_str(&body).unwrap();
    let (status, retried) = enter(&app, body.clone(), None).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(retried["resumed"], json!(true));
    assert_eq!(retried["session"]["session_id"], json!(committed[0].id));
    let token = retried["token"]
        .as_str()
        .expect("a resume hands out a token");
    let (status, view) = session_with(&app, token).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["session_id"], json!(committed[0].id));
    // Still one session and one participation, however often the entry is retried.
    let (status, again) = enter(&app, body, None).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["session"]["session_id"], json!(committed[0].id));
    let counts = app.store.table_counts().await.unwrap();
    assert_eq!((counts.sessions, counts.participations), (1, 1));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_browser_with_the_same_submission_continues_and_the_first_is_told(
    #[case] backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let first_params =
        json!({ "PROLIFIC_PID": "switcher", "SESSION_ID": "sub-7", "STUDY_ID": "st" });
    let (status, first) = enter(&app, json!({ "params": first_params }), None).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let first_token = first["token"].as_str().unwrap().to_owned();
    let session_id = first["session"]["session_id"].clone();

    // Another browser: the same participant and submission, no token.
    let (status, second) = enter(&app, json!({ "params": first_params }), None).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["resumed"], json!(true));
    assert_eq!(second["session"]["session_id"], session_id);
    let second_token = second["token"].as_str().unwrap().to_owned();
    assert_ne!(second_token, first_token);

    // The first browser's next request is told where the session went.
    let (status, moved) = session_with(&app, &first_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{moved}");
    assert_eq!(moved["error"]["code"], "session_continued_elsewhere");
    let page = app
        .client
        .get(app.url(&format!("/e/{SLUG}/study")))
        .header("cookie", format!("proglab_session={first_token}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("data-no-session=\"moved\""), "{page}");
    let (status, _) = session_with(&app, &second_token).await;
    assert_eq!(status, StatusCode::OK);

    // A different submission of the same participant while the session is active: refused with
    // what to do, and counted.
    let (status, refused) = enter(
        &app,
        json!({ "params": { "PROLIFIC_PID": "switcher", "SESSION_ID": "sub-8" } }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "session_active_elsewhere");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("continue there")
    );

    // A token whose session belongs to another recruiter ID (a shared computer) starts a session
    // for the new ID.
    let (status, other) = enter(
        &app,
        json!({ "params": { "PROLIFIC_PID": "someone-else", "SESSION_ID": "sub-9" } }),
        Some(&second_token),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    assert_ne!(other["session"]["session_id"], session_id);

    let counts = app.store.table_counts().await.unwrap();
    assert_eq!((counts.sessions, counts.participations), (2, 2));
    let refusals = app.store.refused_arrivals(SLUG).await.unwrap();
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0].reason, "session_active_elsewhere");
    assert_eq!(refusals[0].recruiter_id.as_deref(), Some("switcher"));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrivals_without_the_recruiter_id_or_below_the_device_check_get_no_session(
    #[case] backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (status, missing) = enter(&app, json!({ "params": { "STUDY_ID": "st" } }), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{missing}");
    assert_eq!(missing["error"]["code"], "recruiter_id_missing");
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PROLIFIC_PID")
    );

    let phone = json!({ "width": 390, "height": 844, "touch": true });
    let (status, small) = enter(
        &app,
        json!({ "params": { "PROLIFIC_PID": "phone" }, "device": phone }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{small}");
    assert_eq!(small["error"]["code"], "device_not_supported");
    assert!(small["error"]["message"].as_str().unwrap().contains("800"));
    let counts = app.store.table_counts().await.unwrap();
    assert_eq!((counts.sessions, counts.participations), (0, 0));

    // A large enough window is admitted, and what was measured is kept with the session.
    let laptop = json!({ "width": 1280, "height": 800, "touch": false });
    let (status, admitted) = enter(
        &app,
        json!({ "params": { "PROLIFIC_PID": "laptop" }, "device": laptop }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{admitted}");

    let refusals = app.store.refused_arrivals(SLUG).await.unwrap();
    let reasons: Vec<&str> = refusals.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["recruiter_id_missing", "device_not_supported"],
        "{refusals:?}"
    );
    assert_eq!(
        refusals[0].params.get("STUDY_ID").map(String::as_str),
        Some("st")
    );
    assert_eq!(refusals[1].device, Some(phone));
    assert!(refusals.iter().all(|r| r.at <= server::clock::now()));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_who_declined_is_refused_even_with_the_same_submission(
    #[case] backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let params = json!({ "PROLIFIC_PID": "decliner", "SESSION_ID": "sub-1" });
    let (status, entered) = enter(&app, json!({ "params": params }), None).await;
    assert_eq!(status, StatusCode::CREATED, "{entered}");
    let token = entered["token"].as_str().unwrap();
    let (status, _) = into_parts(
        app.client
            .post(app.url("/api/v1/session/consent"))
            .bearer_auth(token)
            .json(&json!({ "agree": false }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, refused) = enter(&app, json!({ "params": params }), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "already_participated");
    let reasons: Vec<String> = app
        .store
        .refused_arrivals(SLUG)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.reason)
        .collect();
    assert_eq!(reasons, ["already_participated"]);
}
