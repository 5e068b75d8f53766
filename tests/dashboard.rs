//! The researcher side at real sizes, over HTTP on both databases: session states that follow the
//! clock (idle, abandoned) and the researcher (reset, exclude, unlock, notes, withdrawal), each
//! action in the audit log; exports that carry the state and leave excluded and preview sessions
//! out unless asked; the table's filters, sort, search and pages; live updates pushed from the
//! database across two instances; errors as pages with a way back.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};
use rstest::rstest;
use serde_json::{Value, json};
use server::experiment::Experiment;
use server::store::research::ResearchStore;

use crate::support::signed_in::{Researcher, client};
use crate::support::simulate::{Simulated, simulate_participant};
use crate::support::{Backend, TestApp, bundled_with, spawn_app_with, start_app};

/// The bundled study with short limits: idle after 2 s, abandoned 6 s after the start.
fn short_limits() -> Experiment {
    bundled_with(&[
        ("idle_after_seconds = 600", "idle_after_seconds = 2"),
        ("time_limit_seconds = 10800", "time_limit_seconds = 6"),
    ])
}

fn desktop(pid: &str, submission: &str) -> Vec<(String, String)> {
    vec![
        ("PROLIFIC_PID".into(), pid.into()),
        ("SESSION_ID".into(), submission.into()),
    ]
}

async fn enter(app: &TestApp, pid: &str, submission: &str) -> (StatusCode, Value) {
    let params = desktop(pid, submission);
    let params: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    app.enter_raw("correa2025", &params, None).await
}

async fn research(app: &TestApp) -> std::sync::Arc<dyn ResearchStore> {
    server::store::connect(&app.db.url).await.unwrap().research
}

/// The table's row of a session, found through the JSON with a search.
async fn row_of(researcher: &Researcher, session_id: &str) -> Value {
    let (status, page) = researcher
        .json(&format!(
            "/researcher/experiments/correa2025/participants.json?q={session_id}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["matching"], 1, "{page}");
    page["rows"][0].clone()
}

async fn counts(researcher: &Researcher) -> Value {
    let (_, page) = researcher
        .json("/researcher/experiments/correa2025/participants.json")
        .await;
    let states: serde_json::Map<String, Value> = page["counts"]["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| (pair[0].as_str().unwrap().to_owned(), pair[1].clone()))
        .collect();
    json!({
        "states": states,
        "excluded": page["counts"]["excluded"],
        "preview": page["counts"]["preview"],
        "refused": page["counts"]["refused"],
    })
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    research(app)
        .await
        .audit_log(100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

async fn export(researcher: &Researcher, fields: &[(&str, &str)]) -> (StatusCode, String) {
    let response = researcher
        .post("/researcher/experiments/correa2025/export", fields)
        .await;
    (response.status(), response.text().await.unwrap())
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn states_follow_the_clock_and_the_researcher_and_exports_carry_them(
    #[case] backend: Backend,
) {
    let Some(app) = spawn_app_with(backend, vec![short_limits()], |_| {}).await else {
        return;
    };
    let researcher = Researcher::sign_in(&app, "ada").await;
    let experiment = short_limits();

    // A participant who consents and then stops: active, idle after 2 s, abandoned after 6 s.
    let entered = std::time::Instant::now();
    let (status, body) = enter(&app, "PID-IDLE", "SUB-1").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let session_id = body["session"]["session_id"].as_str().unwrap().to_owned();
    let consent = app
        .client
        .post(app.url("/api/v1/session/consent"))
        .bearer_auth(&token)
        .json(&json!({ "agree": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), StatusCode::OK);
    assert_eq!(row_of(&researcher, &session_id).await["state"], "active");
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(row_of(&researcher, &session_id).await["state"], "idle");
    let (status, _) = researcher
        .json("/researcher/experiments/correa2025/participants.json?state=idle")
        .await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(6500).saturating_sub(entered.elapsed())).await;
    assert_eq!(row_of(&researcher, &session_id).await["state"], "abandoned");

    // Abandoned: the session refuses everything, and the participant cannot resume it.
    let refused = app
        .client
        .get(app.url("/api/v1/session"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"]["code"], "session_abandoned");
    let (status, body) = enter(&app, "PID-IDLE", "SUB-1").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "session_abandoned");

    // A reset lets them go on where they were; nothing was deleted.
    let response = researcher
        .post(
            &format!("/researcher/experiments/correa2025/participants/{session_id}/reset"),
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        response.headers()[LOCATION]
            .to_str()
            .unwrap()
            .ends_with("done=reset")
    );
    let back = app
        .client
        .get(app.url("/api/v1/session"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), StatusCode::OK);
    assert_eq!(row_of(&researcher, &session_id).await["state"], "active");

    // One who declines, two who complete (simulated at the store), one of them excluded.
    let (_, declined) = enter(&app, "PID-NO", "SUB-2").await;
    let declined_token = declined["token"].as_str().unwrap();
    app.client
        .post(app.url("/api/v1/session/consent"))
        .bearer_auth(declined_token)
        .json(&json!({ "agree": false }))
        .send()
        .await
        .unwrap();
    let answers = [("programming_exp".to_owned(), "None".to_owned())];
    let mut completed = Vec::new();
    for (index, pid) in ["PID-DONE-1", "PID-DONE-2"].into_iter().enumerate() {
        let (session, _) = simulate_participant(
            app.store.as_ref(),
            &experiment,
            Simulated {
                index,
                recruiter_id: pid,
                answers: &answers,
            },
        )
        .await;
        completed.push(session.id);
    }
    let excluded = &completed[1];
    let response = researcher
        .post(
            &format!("/researcher/experiments/correa2025/participants/{excluded}/exclude"),
            &[("excluded", "true")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = researcher
        .post(
            &format!("/researcher/experiments/correa2025/participants/{excluded}/note"),
            &[("note", "Fast clicker <b>not</b> reading; see audit.")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, page) = researcher
        .page(&format!(
            "/researcher/experiments/correa2025/participants/{excluded}?done=note"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Fast clicker &#60;b&#62;not&#60;/b&#62; reading"),
        "{page}"
    );
    assert!(!page.contains("<b>not</b>"), "notes are escaped");
    assert!(
        page.contains("id=\"include-button\""),
        "the page offers to include again"
    );

    let counted = counts(&researcher).await;
    // The reset participant is active, idle or (6 s on) abandoned again, whatever the clock says.
    let unfinished: i64 = ["active", "idle", "abandoned"]
        .iter()
        .map(|s| counted["states"][s].as_i64().unwrap())
        .sum();
    assert_eq!(unfinished, 1, "{counted}");
    assert_eq!(counted["states"]["completed"], 2, "{counted}");
    assert_eq!(counted["states"]["declined"], 1, "{counted}");
    assert_eq!(counted["excluded"], 1, "{counted}");

    // Exports: excluded participants are left out unless asked; bonus-csv pays them.
    let (status, programs) = export(&researcher, &[("format", "programs-csv")]).await;
    assert_eq!(status, StatusCode::OK);
    let participants_in = |csv: &str| {
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let headers = reader.headers().unwrap().clone();
        let at = headers.iter().position(|h| h == "participant").unwrap();
        let mut seen: Vec<String> = reader
            .records()
            .map(|r| r.unwrap()[at].to_owned())
            .collect();
        seen.dedup();
        (headers, seen)
    };
    let (_, only_included) = participants_in(&programs);
    assert_eq!(only_included.len(), 1, "{programs}");
    let (status, with_excluded) = export(
        &researcher,
        &[("format", "programs-csv"), ("include_excluded", "1")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (headers, everyone) = participants_in(&with_excluded);
    assert_eq!(everyone.len(), 2);
    assert!(headers.iter().any(|h| h == "excluded"));
    assert!(
        with_excluded.contains(",True"),
        "the excluded flag: {with_excluded}"
    );
    let (status, bonus) = export(&researcher, &[("format", "bonus-csv"), ("raw_ids", "1")]).await;
    assert_eq!(status, StatusCode::OK, "{bonus}");
    for pid in ["PID-DONE-1", "PID-DONE-2"] {
        assert!(bonus.contains(pid), "bonus-csv pays {pid}: {bonus}");
    }
    let (_, trials) = export(&researcher, &[("format", "trials-csv")]).await;
    let mut reader = csv::Reader::from_reader(trials.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let state_at = headers.iter().position(|h| h == "session_status").unwrap();
    let states: std::collections::BTreeSet<String> = reader
        .records()
        .map(|r| r.unwrap()[state_at].to_owned())
        .collect();
    assert_eq!(
        states,
        ["completed".to_owned()].into(),
        "only completed sessions have trials here"
    );
    assert!(headers.iter().any(|h| h == "preview"));

    // Withdrawal leaves a count, not data.
    let response = researcher
        .post(
            "/researcher/experiments/correa2025/withdraw",
            &[("participant", "PID-DONE-1")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let counted = counts(&researcher).await;
    assert_eq!(counted["states"]["withdrawn"], 1, "{counted}");
    assert_eq!(counted["states"]["completed"], 1, "{counted}");

    let actions = audit_actions(&app).await;
    for action in [
        "participant_reset",
        "participant_exclude",
        "participant_note",
        "withdraw",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_unlocked_recruiter_id_enters_again_and_the_earlier_session_is_kept(
    #[case] backend: Backend,
) {
    let experiment = server::experiment::bundled().unwrap().remove(0);
    let Some(app) = spawn_app_with(backend, vec![experiment.clone()], |_| {}).await else {
        return;
    };
    let researcher = Researcher::sign_in(&app, "ada").await;
    let answers = [("programming_exp".to_owned(), "Some".to_owned())];
    let (earlier, _) = simulate_participant(
        app.store.as_ref(),
        &experiment,
        Simulated {
            index: 0,
            recruiter_id: "PID-AGAIN",
            answers: &answers,
        },
    )
    .await;
    let (status, body) = enter(&app, "PID-AGAIN", "SUB-NEW").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "already_participated");
    let (_, dashboard) = researcher.page("/researcher/experiments/correa2025").await;
    assert!(dashboard.contains("id=\"refused-repeats\""), "{dashboard}");
    assert!(dashboard.contains("PID-AGAIN"));

    let response = researcher
        .post(
            "/researcher/experiments/correa2025/unlock",
            &[("recruiter_id", "PID-AGAIN")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, body) = enter(&app, "PID-AGAIN", "SUB-NEW").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_ne!(body["session"]["session_id"], earlier.id.as_str());
    // The earlier session and its trials are still there.
    let kept = research(&app)
        .await
        .session_trials(&earlier.id)
        .await
        .unwrap();
    assert!(!kept.is_empty());
    assert!(
        audit_actions(&app)
            .await
            .iter()
            .any(|a| a == "recruiter_unlock")
    );
    // Unlocking an ID that is not locked says so, on a page.
    let response = researcher
        .post(
            "/researcher/experiments/correa2025/unlock",
            &[("recruiter_id", "PID-NEVER")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let page = response.text().await.unwrap();
    assert!(page.contains("id=\"researcher-error\"") && page.contains("id=\"error-back\""));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_table_filters_sorts_searches_and_pages_on_the_server(#[case] backend: Backend) {
    let experiment = server::experiment::bundled().unwrap().remove(0);
    let Some(app) = spawn_app_with(backend, vec![experiment.clone()], |_| {}).await else {
        return;
    };
    let researcher = Researcher::sign_in(&app, "ada").await;
    let answers = [("programming_exp".to_owned(), "None".to_owned())];
    for index in 0..12 {
        simulate_participant(
            app.store.as_ref(),
            &experiment,
            Simulated {
                index,
                recruiter_id: &format!("PID-{index:02}"),
                answers: &answers,
            },
        )
        .await;
    }
    for index in 0..5 {
        let (status, _) = enter(&app, &format!("LIVE-{index}"), "S").await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let get = |query: &'static str| {
        let researcher = &researcher;
        async move {
            let (status, page) = researcher
                .json(&format!(
                    "/researcher/experiments/correa2025/participants.json?{query}"
                ))
                .await;
            assert_eq!(status, StatusCode::OK, "{query}: {page}");
            page
        }
    };
    let all = get("per=5").await;
    assert_eq!(all["matching"], 17);
    assert_eq!(all["pages"], 4);
    assert_eq!(all["rows"].as_array().unwrap().len(), 5);
    let last = get("per=5&page=4").await;
    assert_eq!(last["rows"].as_array().unwrap().len(), 2);
    assert_eq!(get("state=completed").await["matching"], 12);
    assert_eq!(get("state=active").await["matching"], 5);
    assert_eq!(get("phase=consent").await["matching"], 5);
    let found = get("q=pid-07").await;
    assert_eq!(found["matching"], 1, "search is by recruiter ID, any case");
    let by_elapsed = get("sort=elapsed&dir=desc").await;
    let elapsed: Vec<i64> = by_elapsed["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["elapsed_seconds"].as_i64().unwrap())
        .collect();
    assert!(elapsed.windows(2).all(|w| w[0] >= w[1]), "{elapsed:?}");
    let ascending = get("sort=pseudonym&dir=asc").await;
    let names: Vec<&str> = ascending["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pseudonym"].as_str().unwrap())
        .collect();
    assert!(names.windows(2).all(|w| w[0] <= w[1]), "{names:?}");

    // The page itself: counts at the top, sort links, the filter form; bad queries are pages.
    let (status, html) = researcher
        .page("/researcher/experiments/correa2025?state=completed&per=5")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"state-counts\"") && html.contains("id=\"page-next\""));
    assert_eq!(html.matches("participant-link").count(), 5);
    let (status, html) = researcher
        .page("/researcher/experiments/correa2025?sort=shoe_size")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("id=\"error-back\"") && html.contains("shoe_size"),
        "{html}"
    );
    // A script asking for JSON keeps a plain body.
    let response = client()
        .get(app.url("/researcher/experiments/correa2025/participants.json?state=bored"))
        .header(COOKIE, &researcher.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(!response.text().await.unwrap().contains("<html"));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn exports_that_cannot_be_made_say_why_on_the_dashboard(#[case] backend: Backend) {
    let experiment = server::experiment::bundled().unwrap().remove(0);
    let Some(app) = spawn_app_with(backend, vec![experiment], |_| {}).await else {
        return;
    };
    let researcher = Researcher::sign_in(&app, "ada").await;
    let (status, html) = export(&researcher, &[("format", "bonus-csv")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("id=\"notice\"") && html.contains("include recruiter IDs"),
        "{html}"
    );
    assert!(
        html.contains("id=\"export-form\""),
        "the form is right there"
    );
    let (status, html) = export(&researcher, &[("format", "bonus-csv"), ("raw_ids", "1")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Nothing to download"), "{html}");
    assert!(html.contains("completed the study yet"), "{html}");
    let (status, html) = export(&researcher, &[("format", "events-jsonl")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Nothing to download"), "{html}");
    let (status, html) = researcher
        .page("/researcher/experiments/correa2025/participants/no-such-session")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("id=\"error-back\""), "{html}");
}

/// Reads server-sent events until one named `name` arrives (or the time is up).
async fn next_event(
    response: &mut reqwest::Response,
    buffer: &mut String,
    name: &str,
) -> Option<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if event.lines().any(|l| l == format!("event: {name}")) {
                return event
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .map(str::to_owned);
            }
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .ok()?
            .ok()??;
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn live_updates_reach_a_researcher_on_another_instance() {
    let experiment = server::experiment::bundled().unwrap().remove(0);
    let Some(first) = spawn_app_with(Backend::Postgres, vec![experiment.clone()], |_| {}).await
    else {
        return;
    };
    // A second instance on the same database; the first one's database outlives it.
    let second = start_app(first.db.shared(), vec![experiment], |_| {}).await;
    let researcher = Researcher::sign_in(&second, "ada").await;
    let mut response = client()
        .get(second.url("/researcher/experiments/correa2025/live"))
        .header(COOKIE, &researcher.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut buffer = String::new();
    let initial = next_event(&mut response, &mut buffer, "change")
        .await
        .expect("the current state first");
    // A participant served by the first instance.
    let (status, _) = enter(&first, "PID-LIVE", "S").await;
    assert_eq!(status, StatusCode::CREATED);
    let changed = next_event(&mut response, &mut buffer, "change")
        .await
        .expect("a change pushed within 10 s");
    assert_ne!(initial, changed);
    let (_, page) = researcher
        .json("/researcher/experiments/correa2025/participants.json")
        .await;
    assert_eq!(page["matching"], 1);
}
