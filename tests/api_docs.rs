//! The API's documents cannot drift: every curl exchange of docs/api.md runs against a live server
//! and must get the documented answer, and the OpenAPI document lists exactly the served routes.
//! Also the HTML front door.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::StatusCode;
use serde_json::Value;
use server::http::participant_api::ROUTES;

use crate::support::{Backend, TestApp, into_parts, spawn_app};

const API_MD: &str = include_str!("../docs/api.md");

/// A fenced code block: its info string and its text.
struct Block {
    info: String,
    text: String,
    line: usize,
}

fn code_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (number, line) in markdown.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block {
                    info: info.trim().to_owned(),
                    text: String::new(),
                    line: number + 1,
                })
            }
            (Some(_), Some(_)) => blocks.push(open.take().unwrap()),
            (Some(block), None) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

/// Splits a shell command line into words: single quotes are literal, double quotes and bare
/// words expand `$NAME` from `vars`.
fn shell_words(line: &str, vars: &BTreeMap<&str, String>) -> Vec<String> {
    let expand = |text: &str| -> String {
        let mut out = text.to_owned();
        for (name, value) in vars {
            out = out.replace(&format!("${name}"), value);
        }
        out
    };
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    word.push(c);
                }
            }
            '"' => {
                in_word = true;
                let mut quoted = String::new();
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    quoted.push(c);
                }
                word.push_str(&expand(&quoted));
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '#' if !in_word => break,
            c => {
                in_word = true;
                let mut bare = String::from(c);
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || next == '\'' || next == '"' {
                        break;
                    }
                    bare.push(next);
                    chars.next();
                }
                word.push_str(&expand(&bare));
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// A curl command of the document, as a request.
#[derive(Debug)]
struct Curl {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

fn parse_curl(words: &[String], line: usize) -> Curl {
    assert_eq!(words[0], "curl", "docs/api.md:{line}: not a curl command");
    let mut curl = Curl {
        method: String::new(),
        url: String::new(),
        headers: Vec::new(),
        body: None,
    };
    let mut args = words[1..].iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-s" | "--silent" => {}
            "-X" | "--request" => curl.method = args.next().expect("a method").clone(),
            "-H" | "--header" => {
                let header = args.next().expect("a header");
                let (name, value) = header.split_once(':').expect("a header is `name: value`");
                curl.headers
                    .push((name.trim().to_owned(), value.trim().to_owned()));
            }
            "-d" | "--data" | "--data-raw" => {
                curl.body = Some(args.next().expect("a body").clone())
            }
            other if other.starts_with('-') => {
                panic!("docs/api.md:{line}: the doc test does not know the curl option {other}")
            }
            url => curl.url = url.to_owned(),
        }
    }
    if curl.method.is_empty() {
        curl.method = if curl.body.is_some() {
            "POST".into()
        } else {
            "GET".into()
        };
    }
    curl
}

async fn execute(app: &TestApp, curl: &Curl) -> (StatusCode, Value) {
    let method = reqwest::Method::from_bytes(curl.method.as_bytes()).unwrap();
    let mut request = app.client.request(method, &curl.url);
    for (name, value) in &curl.headers {
        request = request.header(name, value);
    }
    if let Some(body) = &curl.body {
        request = request.body(body.clone());
    }
    into_parts(request.send().await.unwrap()).await
}

/// Whether `actual` has the documented shape and values; `"…"` in the document matches anything.
fn check_matches(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::String(s), _) if s == "…" => Ok(()),
        (Value::Object(e), Value::Object(a)) => {
            let (e_keys, a_keys): (BTreeSet<_>, BTreeSet<_>) =
                (e.keys().collect(), a.keys().collect());
            if e_keys != a_keys {
                return Err(format!(
                    "{path}: documented keys {e_keys:?}, served {a_keys:?}"
                ));
            }
            e.iter()
                .try_for_each(|(k, v)| check_matches(v, &a[k], &format!("{path}.{k}")))
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!(
                    "{path}: documented {} elements, served {}",
                    e.len(),
                    a.len()
                ));
            }
            e.iter()
                .zip(a)
                .enumerate()
                .try_for_each(|(i, (e, a))| check_matches(e, a, &format!("{path}[{i}]")))
        }
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{path}: documented {e}, served {a}")),
    }
}

/// A route template (`/api/v1/session/steps/{step}/runs`) matches a concrete path.
fn route_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exchange_in_the_api_document_happens_as_documented() {
    let app = spawn_app(Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    let mut vars: BTreeMap<&str, String> =
        BTreeMap::from([("PROGLAB", app.base.clone()), ("TOKEN", String::new())]);
    let mut pending: Option<(usize, StatusCode, Value)> = None;
    let mut requested: Vec<(String, String)> = Vec::new();
    let mut exchanges = 0;

    let check_ok = |pending: Option<(usize, StatusCode, Value)>| {
        if let Some((line, status, body)) = pending {
            assert!(
                status.is_success(),
                "docs/api.md:{line}: undocumented failure {status}: {body}"
            );
        }
    };
    for block in code_blocks(API_MD) {
        let language = block.info.split_whitespace().next().unwrap_or("");
        match language {
            "sh" => {
                check_ok(pending.take());
                for (offset, line) in block.text.lines().enumerate() {
                    let words = shell_words(line, &vars);
                    if words.first().map(String::as_str) != Some("curl") {
                        continue; // `export`, `cargo run`: setting up, done by this test itself
                    }
                    check_ok(pending.take());
                    let curl = parse_curl(&words, block.line + 1 + offset);
                    let (status, body) = execute(&app, &curl).await;
                    if let Some(token) = body.get("token").and_then(Value::as_str) {
                        vars.insert("TOKEN", token.to_owned());
                    }
                    let path = curl
                        .url
                        .strip_prefix(&app.base)
                        .unwrap_or(&curl.url)
                        .split('?')
                        .next()
                        .unwrap()
                        .to_owned();
                    requested.push((curl.method.clone(), path));
                    pending = Some((block.line + 1 + offset, status, body));
                }
            }
            "json" => {
                let status: u16 = block
                    .info
                    .split_whitespace()
                    .find_map(|word| word.strip_prefix("status="))
                    .unwrap_or_else(|| {
                        panic!(
                            "docs/api.md:{}: a response block needs status=N",
                            block.line
                        )
                    })
                    .parse()
                    .unwrap();
                let (line, served_status, served) = pending.take().unwrap_or_else(|| {
                    panic!("docs/api.md:{}: a response without a request", block.line)
                });
                let documented: Value = serde_json::from_str(&block.text).unwrap_or_else(|e| {
                    panic!("docs/api.md:{}: the response is not JSON: {e}", block.line)
                });
                assert_eq!(
                    served_status.as_u16(),
                    status,
                    "docs/api.md:{line}: status; served {served}"
                );
                if let Err(difference) = check_matches(&documented, &served, "$") {
                    panic!(
                        "docs/api.md:{}: the served response differs: {difference}\nserved: {served:#}",
                        block.line
                    );
                }
                exchanges += 1;
            }
            _ => {}
        }
    }
    check_ok(pending.take());
    assert!(exchanges >= 15, "only {exchanges} documented exchanges");

    for (method, route) in ROUTES {
        let used = requested
            .iter()
            .any(|(m, p)| m.eq_ignore_ascii_case(method) && route_matches(route, p));
        assert!(
            used,
            "docs/api.md has no exchange for {} {route}",
            method.to_uppercase()
        );
    }
    // The documented participant finished the study.
    let counts = app.store.table_counts().await.unwrap();
    assert_eq!((counts.sessions, counts.trials), (1, 15));
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_served_routes() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let (status, document) = app.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().expect("paths");
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, served);
    // Every schema reference resolves.
    let schemas = document["components"]["schemas"].as_object().unwrap();
    let text = document.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling reference to {name}");
    }
}

#[tokio::test]
async fn every_served_route_answers_and_unknown_ones_get_a_json_404() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    for (method, route) in ROUTES {
        let path = route.replace("{slug}", "correa2025").replace("{step}", "1");
        let request = match *method {
            "get" => app.client.get(app.url(&path)),
            _ => app.client.post(app.url(&path)).body("{}"),
        };
        let status = request.send().await.unwrap().status();
        assert!(
            status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {status}"
        );
    }
    let (status, body) = app.get("/api/v1/nothing").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, body) = into_parts(
        app.client
            .delete(app.url("/api/v1/session"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
}

#[tokio::test]
async fn the_front_door_lists_the_studies_and_hosts_each_one() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let index = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    assert!(
        index.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = index.text().await.unwrap();
    assert!(
        html.contains("href=\"/e/correa2025\"") && html.contains("Robot programming puzzles"),
        "{html}"
    );

    let page = app
        .client
        .get(app.url("/e/correa2025?PROLIFIC_PID=abc&STUDY_ID=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("data-experiment=\"correa2025\"")
            && html.contains("<title>Robot programming puzzles</title>"),
        "{html}"
    );

    let missing = app.client.get(app.url("/e/nope")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.text().await.unwrap().contains("Study not found"));
}

#[tokio::test]
async fn every_response_forbids_sniffing_framing_and_referrers() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    for path in [
        "/",
        "/e/correa2025",
        "/api/v1/health",
        "/api/v1/nothing",
        "/researcher",
        "/static/js/board.js",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let headers = response.headers();
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
        ] {
            assert_eq!(
                headers.get(name).and_then(|v| v.to_str().ok()),
                Some(value),
                "{path}: {name}"
            );
        }
    }
}

#[test]
fn the_doc_test_parser_reads_quotes_and_variables() {
    let vars = BTreeMap::from([
        ("PROGLAB", "http://x".to_owned()),
        ("TOKEN", "t0".to_owned()),
    ]);
    let words = shell_words(
        r#"curl -s -X POST "$PROGLAB/a" -H "Authorization: Bearer $TOKEN" -d '{"p": "$TOKEN|1"}' # note"#,
        &vars,
    );
    assert_eq!(
        words,
        [
            "curl",
            "-s",
            "-X",
            "POST",
            "http://x/a",
            "-H",
            "Authorization: Bearer t0",
            "-d",
            r#"{"p": "$TOKEN|1"}"#
        ]
    );
    assert!(
        check_matches(
            &serde_json::json!({"a": "…", "b": [1]}),
            &serde_json::json!({"a": {"x": 1}, "b": [1]}),
            "$"
        )
        .is_ok()
    );
    assert!(
        check_matches(
            &serde_json::json!({"a": 1}),
            &serde_json::json!({"a": 1, "b": 2}),
            "$"
        )
        .is_err()
    );
    assert!(check_matches(&serde_json::json!([1, 2]), &serde_json::json!([1]), "$").is_err());
    assert!(route_matches(
        "/api/v1/session/steps/{step}/runs",
        "/api/v1/session/steps/2/runs"
    ));
    assert!(!route_matches("/api/v1/session", "/api/v1/session/consent"));
}
