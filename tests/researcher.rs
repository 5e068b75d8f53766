//! The researcher side over HTTP: no route of the researcher table answers without a
//! session, sign-in is throttled after repeated failures, forms without the session's CSRF token
//! are refused, sessions expire, and a signed-in researcher sees the dashboard, a replay, runs a
//! program and downloads an export. Every test runs on SQLite and on Postgres.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use rstest::rstest;
use server::researcher::auth;
use server::store::research::{ResearchStore, ResearcherSession};

use crate::support::{Backend, TestApp, spawn_app};

const PASSWORD: &str = "a long enough passphrase";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn research(app: &TestApp) -> std::sync::Arc<dyn ResearchStore> {
    server::store::connect(&app.db.url).await.unwrap().research
}

async fn add_researcher(app: &TestApp, name: &str) {
    auth::add_researcher(
        research(app).await.as_ref(),
        name,
        PASSWORD,
        "test",
        server::clock::now(),
    )
    .await
    .expect("add a researcher");
}

fn cookie_from(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix(&format!("{name}="))
                .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
        })
}

/// Opens the sign-in form: its CSRF cookie and the same token for the form.
async fn sign_in_form(app: &TestApp) -> String {
    let response = client()
        .get(app.url("/researcher/sign-in"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    cookie_from(&response, "proglab_sign_in_csrf").expect("a CSRF cookie")
}

async fn try_sign_in(app: &TestApp, name: &str, password: &str) -> reqwest::Response {
    let csrf = sign_in_form(app).await;
    client()
        .post(app.url("/researcher/sign-in"))
        .header(COOKIE, format!("proglab_sign_in_csrf={csrf}"))
        .form(&[("username", name), ("password", password), ("csrf", &csrf)])
        .send()
        .await
        .unwrap()
}

/// A signed-in researcher: the session cookie and the page's CSRF token.
struct SignedIn {
    cookie: String,
    csrf: String,
}

async fn sign_in(app: &TestApp, name: &str) -> SignedIn {
    let response = try_sign_in(app, name, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let token = cookie_from(&response, "proglab_researcher").expect("a session cookie");
    let cookie = format!("proglab_researcher={token}");
    let page = client()
        .get(app.url("/researcher"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page has a CSRF field")
        .to_owned();
    SignedIn { cookie, csrf }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn no_researcher_route_answers_without_a_session(#[case] backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let table = server::http::researcher::route_table();
    assert!(table.len() >= 8);
    for route in table {
        let path = route
            .path
            .replace("{experiment}", "correa2025")
            .replace("{session}", "00000000-0000-0000-0000-000000000000");
        let response = client()
            .request(route.method.clone(), app.url(&path))
            .header(
                COOKIE,
                "proglab_researcher=0123456789abcdef0123456789abcdef",
            )
            .form(&[
                ("csrf", "x"),
                ("format", "programs-csv"),
                ("participant", "x"),
            ])
            .send()
            .await
            .unwrap();
        let status = response.status();
        if route.method == reqwest::Method::GET {
            assert_eq!(status, StatusCode::SEE_OTHER, "{} {path}", route.method);
            assert_eq!(response.headers()[LOCATION], "/researcher/sign-in");
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{} {path}", route.method);
        }
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn sign_in_is_throttled_after_repeated_failures(#[case] backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    add_researcher(&app, "ada").await;
    add_researcher(&app, "grace").await;
    for attempt in 0..auth::MAX_FAILURES {
        let response = try_sign_in(&app, "ada", "wrong password!").await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }
    // Even the right password is refused now, and the refusal says why.
    let response = try_sign_in(&app, "ada", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("too many failed sign-ins")
    );
    // Throttling is per name: another researcher still signs in.
    assert_eq!(
        try_sign_in(&app, "grace", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    // The failures are in the database and in the audit log.
    let log = research(&app).await.audit_log(50).await.unwrap();
    assert_eq!(
        log.iter()
            .filter(|e| e.action == "sign_in_failed" && e.actor == "ada")
            .count(),
        auth::MAX_FAILURES
    );
    assert!(log.iter().any(|e| e.action == "sign_in_throttled"));
    assert!(
        log.iter()
            .any(|e| e.action == "sign_in" && e.actor == "grace")
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_name_with_nul_is_a_failed_sign_in_on_both_backends(#[case] backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    add_researcher(&app, "ada").await;

    let response = try_sign_in(&app, "ada\u{0}", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn forms_without_the_sessions_csrf_token_are_refused(#[case] backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    add_researcher(&app, "ada").await;
    // The sign-in form itself needs its double-submit token.
    let response = client()
        .post(app.url("/researcher/sign-in"))
        .form(&[
            ("username", "ada"),
            ("password", PASSWORD),
            ("csrf", "0123"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let who = sign_in(&app, "ada").await;
    let withdraw = app.url("/researcher/experiments/correa2025/withdraw");
    for form in [
        vec![("participant", "PID1")],
        vec![("participant", "PID1"), ("csrf", "0000")],
    ] {
        let response = client()
            .post(&withdraw)
            .header(COOKIE, &who.cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{form:?}");
    }
    let run = app.url("/researcher/experiments/correa2025/run");
    let body = serde_json::json!({ "task": 2, "program": "1LJL1RJR1|WWWS|||" });
    let refused = client()
        .post(&run)
        .header(COOKIE, &who.cookie)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // With the token the same requests go through.
    let response = client()
        .post(&withdraw)
        .header(COOKIE, &who.cookie)
        .form(&[("participant", "PID1"), ("csrf", &who.csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "no such participant, but the form was accepted"
    );
    let ran = client()
        .post(&run)
        .header(COOKIE, &who.cookie)
        .header("x-csrf-token", &who.csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(ran.status(), StatusCode::OK);
    let ran: serde_json::Value = ran.json().await.unwrap();
    assert_eq!(ran["solved"], true);
    assert!(ran["trace"].as_array().unwrap().len() > 5);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn expired_sessions_are_refused_and_signing_out_ends_a_session(#[case] backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    add_researcher(&app, "ada").await;
    let store = research(&app).await;
    let now = server::clock::now();
    let expired = server::domain::SessionToken::generate();
    store
        .create_researcher_session(&ResearcherSession {
            token_hash: expired.hash().0,
            username: "ada".into(),
            csrf_token: auth::csrf_token(),
            created_at: now - auth::SESSION_TTL - std::time::Duration::from_secs(60),
            expires_at: now - std::time::Duration::from_secs(60),
        })
        .await
        .unwrap();
    let response = client()
        .get(app.url("/researcher"))
        .header(COOKIE, format!("proglab_researcher={}", expired.expose()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        store
            .researcher_session(&expired.hash().0)
            .await
            .unwrap()
            .is_none(),
        "an expired session is deleted when seen"
    );
    // A fresh session works until signed out.
    let who = sign_in(&app, "ada").await;
    let out = client()
        .post(app.url("/researcher/sign-out"))
        .header(COOKIE, &who.cookie)
        .form(&[("csrf", &who.csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let after = client()
        .get(app.url("/researcher"))
        .header(COOKIE, &who.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_researcher_sees_the_dashboard_and_a_replay_and_downloads_an_export(
    #[case] backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    add_researcher(&app, "ada").await;
    // One participant who went as far as the practice problem, with a run.
    let mut participant = app.enter("correa2025", &[("PROLIFIC_PID", "PIDX")]).await;
    participant.consent(true).await;
    let who = sign_in(&app, "ada").await;
    let page = client()
        .get(app.url("/researcher/experiments/correa2025"))
        .header(COOKIE, &who.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("task-summaries") && html.contains("<svg"),
        "per-task summaries with charts"
    );
    assert!(
        !html.contains("PIDX"),
        "the dashboard shows pseudonyms, not recruiter IDs"
    );
    let live: serde_json::Value = client()
        .get(app.url("/researcher/experiments/correa2025/participants.json"))
        .header(COOKIE, &who.cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(live["matching"], 1, "{live}");
    let row = &live["rows"][0];
    assert_eq!(row["status"], "active");
    assert_eq!(row["state"], "active");
    assert_eq!(row["phase_key"], "tutorial");
    assert_eq!(row["phase"], "Tutorial");
    let session_id = row["session_id"].as_str().unwrap();
    let replay = client()
        .get(app.url(&format!(
            "/researcher/experiments/correa2025/sessions/{session_id}"
        )))
        .header(COOKIE, &who.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::OK);
    assert!(replay.text().await.unwrap().contains("data-replay"));
    let download = client()
        .post(app.url("/researcher/experiments/correa2025/export"))
        .header(COOKIE, &who.cookie)
        .form(&[("format", "trials-csv"), ("csrf", &who.csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert!(
        download.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("correa2025-trials.csv")
    );
    let text = download.text().await.unwrap();
    assert!(text.starts_with("participant,participant_idx,"), "{text}");
    let log = research(&app).await.audit_log(20).await.unwrap();
    assert!(log.iter().any(|e| e.action == "export" && e.actor == "ada"));
}
