//! The real `proglab serve` process: killed with SIGKILL in the middle of a session and restarted
//! on the same database, it has lost nothing it acknowledged; SIGTERM shuts it down cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use rstest::rstest;
use serde_json::json;

use crate::support::{Backend, ServerProcess, TestDb, into_parts};

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_session_loses_nothing_it_acknowledged(#[case] backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let server = ServerProcess::start(&db.url);
    let client = reqwest::Client::new();
    let (status, entered) = into_parts(
        client
            .post(format!(
                "{}/api/v1/experiments/correa2025/sessions",
                server.base
            ))
            .json(&json!({ "params": { "PROLIFIC_PID": "crash" } }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{entered}");
    let token = entered["token"].as_str().unwrap().to_owned();
    let session_id = entered["session"]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let post = {
        let (client, token) = (client.clone(), token.clone());
        move |base: String, path: &'static str, body: serde_json::Value| {
            let client = client.clone();
            let token = token.clone();
            async move {
                client
                    .post(format!("{base}{path}"))
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
            }
        }
    };
    assert!(
        post(
            server.base.clone(),
            "/api/v1/session/consent",
            json!({ "agree": true })
        )
        .await
        .unwrap()
        .status()
        .is_success()
    );
    let (_, at_task) = into_parts(
        post(
            server.base.clone(),
            "/api/v1/session/steps/1/continue",
            json!({}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(at_task["current"]["kind"], "task");
    let started_at = at_task["current"]["trial"]["started_at"].clone();

    // Act: a client writes event batches and runs as fast as it can, remembering what the server
    // acknowledged, while the server is killed.
    let acknowledged_events = Arc::new(Mutex::new(Vec::<i64>::new()));
    let acknowledged_runs = Arc::new(Mutex::new(Vec::<i64>::new()));
    let writer = {
        let (events, runs) = (acknowledged_events.clone(), acknowledged_runs.clone());
        let base = server.base.clone();
        let post = post.clone();
        tokio::spawn(async move {
            for round in 0i64.. {
                let batch: Vec<_> = (0..5).map(|i| json!({ "seq": round * 5 + i + 1, "type": "edit", "data": { "round": round } })).collect();
                match post(
                    base.clone(),
                    "/api/v1/session/events",
                    json!({ "events": batch }),
                )
                .await
                {
                    Ok(response) if response.status().is_success() => {
                        let body: serde_json::Value = response.json().await.unwrap();
                        let stored: Vec<i64> =
                            serde_json::from_value(body["stored"].clone()).unwrap();
                        events.lock().unwrap().extend(stored);
                    }
                    _ => break,
                }
                match post(
                    base.clone(),
                    "/api/v1/session/steps/2/runs",
                    json!({ "run": round + 1, "program": "WW" }),
                )
                .await
                {
                    Ok(response) if response.status().is_success() => {
                        runs.lock().unwrap().push(round + 1)
                    }
                    _ => break,
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.kill();
    writer.await.unwrap();
    let acknowledged_events = acknowledged_events.lock().unwrap().clone();
    let acknowledged_runs = acknowledged_runs.lock().unwrap().clone();
    assert!(
        acknowledged_events.len() >= 10 && !acknowledged_runs.is_empty(),
        "too little was written before the kill"
    );

    // Assert: a new server on the same database has everything that was acknowledged, and the
    // participant carries on from the same step.
    let restarted = ServerProcess::start(&db.url);
    let store = server::store::connect(&db.url).await.unwrap().store;
    let record = store.session_record(&session_id).await.unwrap();
    let stored_events: Vec<i64> = record.events.iter().map(|e| e.seq).collect();
    for seq in &acknowledged_events {
        assert!(
            stored_events.contains(seq),
            "acknowledged event {seq} was lost"
        );
    }
    let stored_runs: Vec<i64> = record.runs.iter().map(|r| r.seq).collect();
    for seq in &acknowledged_runs {
        assert!(stored_runs.contains(seq), "acknowledged run {seq} was lost");
    }
    assert_eq!(
        record.trials[0].runs,
        record.runs.len() as i64,
        "the run counter matches the stored runs"
    );
    store.close().await;

    let (status, view) = into_parts(
        client
            .get(format!("{}/api/v1/session", restarted.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["progress"]["step"], 2);
    assert_eq!(view["current"]["trial"]["started_at"], started_at);
    let (status, submitted) = into_parts(
        post(
            restarted.base.clone(),
            "/api/v1/session/steps/2/submit",
            json!({ "program": "WWWWS" }),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{submitted}");
    assert_eq!(submitted["session"]["progress"]["step"], 3);
    restarted.kill();
}

#[tokio::test]
async fn sigterm_shuts_the_server_down_cleanly() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let mut server = ServerProcess::start(&db.url);
    let (status, _) = into_parts(
        reqwest::get(format!("{}/api/v1/health", server.base))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let signalled = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(signalled.success());
    let mut exit = None;
    for _ in 0..100 {
        if let Some(status) = server.child.try_wait().unwrap() {
            exit = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let exit = exit.expect("the server exits within 10 s of SIGTERM");
    assert!(exit.success(), "exit status {exit}");
}

#[tokio::test]
async fn the_logs_never_contain_recruiter_ids_tokens_or_database_urls() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let log_path =
        std::env::temp_dir().join(format!("proglab-log-{}.txt", uuid::Uuid::new_v4().simple()));
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_proglab-e2e"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("proglab: listening on ")
        .expect("the address line")
        .to_owned();

    let client = reqwest::Client::new();
    let page = client
        .get(format!(
            "{base}/e/correa2025?PROLIFIC_PID=secret-pid-4711&STUDY_ID=st"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let (status, entered) = into_parts(
        client
            .post(format!("{base}/api/v1/experiments/correa2025/sessions"))
            .json(&json!({ "params": { "PROLIFIC_PID": "secret-pid-4711", "SESSION_ID": "a" } }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = entered["token"].as_str().unwrap().to_owned();
    // The same participant from another browser with another submission is refused (and the
    // refusal is logged without the ID).
    let refused = client
        .post(format!("{base}/api/v1/experiments/correa2025/sessions"))
        .json(&json!({ "params": { "PROLIFIC_PID": "secret-pid-4711", "SESSION_ID": "b" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let consent = client
        .post(format!("{base}/api/v1/session/consent"))
        .bearer_auth(&token)
        .json(&json!({ "agree": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), StatusCode::OK);
    child.kill().unwrap();
    child.wait().unwrap();

    let logs = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    assert!(
        logs.contains("session created"),
        "the server logged nothing useful:\n{logs}"
    );
    for secret in ["secret-pid-4711", token.as_str(), db.url.as_str()] {
        assert!(
            !logs.contains(secret),
            "the logs contain {secret:?}:\n{logs}"
        );
    }
}

#[test]
fn a_broken_experiment_file_stops_start_up_with_the_file_key_and_problem() {
    let dir = crate::support::TempDir::new();
    let levels = dir.path().join("levels.json");
    std::fs::write(&levels, r#"[{"direction": 1, "position": {"x": 0, "y": 0}, "map": [[{"h": 1, "t": "b"}, {"h": "1", "t": "l"}]]}]"#).unwrap();
    let good = dir.path().join("good.toml");
    let definition = r#"
slug = "tiny"
title = "Tiny"
light = "idempotent"
skip_delay_seconds = 1
[consent]
text = "Agree?"
[[tasks]]
map = "levels.json"
level = 0
[completion]
code = "OK"
"#;
    std::fs::write(&good, definition).unwrap();
    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        definition
            .replace("level = 0", "level = 3")
            .replace("\"idempotent\"", "\"sometimes\""),
    )
    .unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_proglab-e2e"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url"])
        .arg(format!(
            "sqlite://{}",
            dir.path().join("db.sqlite").display()
        ))
        .arg("--experiment")
        .arg(&good)
        .arg("--experiment")
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = broken.display().to_string();
    assert!(
        stderr.contains(&format!("{file}: light: `sometimes` is not a light mode")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{file}: tasks[0].level: levels.json has 1 levels, so there is no level 3"
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("good.toml"),
        "the valid file is not blamed: {stderr}"
    );
}

#[tokio::test]
async fn an_experiment_file_with_its_own_map_is_served() {
    let dir = crate::support::TempDir::new();
    std::fs::write(
        dir.path().join("levels.json"),
        r#"[{"direction": 1, "position": {"x": 0, "y": 0}, "map": [[{"h": 1, "t": "b"}, {"h": "1", "t": "l"}]]}]"#,
    )
    .unwrap();
    let file = dir.path().join("tiny.toml");
    std::fs::write(
        &file,
        "slug = \"tiny\"\ntitle = \"Tiny\"\nlight = \"idempotent\"\nskip_delay_seconds = 1\n[consent]\ntext = \"Agree?\"\n\
         [[tasks]]\nmap = \"levels.json\"\nlevel = 0\n[completion]\ncode = \"OK\"\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_proglab-e2e"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url"])
        .arg(format!(
            "sqlite://{}",
            dir.path().join("db.sqlite").display()
        ))
        .arg("--experiment")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("proglab: listening on ")
        .expect("the address line")
        .to_owned();
    let (status, experiment) = into_parts(
        reqwest::get(format!("{base}/api/v1/experiments/tiny"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &experiment["tasks"]),
        (StatusCode::OK, &json!(1)),
        "{experiment}"
    );
    let (status, _) = into_parts(
        reqwest::get(format!("{base}/api/v1/experiments/correa2025"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "only the named experiments are served"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
