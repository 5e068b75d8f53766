//! Every kind of entry the replay shows, with its label: the client events the participant app
//! sends (`static/js/*.js`), the run modes, and the entries that come from the server's own rows.
//! This is the one list; a kind missing here is still shown, under its own name.

use serde_json::Value;

/// The client events the participant app records (`log.record(kind, data)` in `static/js/`),
/// with their labels on the replay.
pub const EVENT_KINDS: &[(&str, &str)] = &[
    // task.js, pages.js: a page was shown; a task page shown again on the same step is a reload.
    ("page", "Page shown"),
    ("edit", "Edit"),
    // A run the participant started; its mode (below) names it.
    ("run", "Run"),
    // Each press of Step after the first (the first is a run in mode `step`).
    ("step", "Step"),
    ("stop", "Stop"),
    ("reset", "Reset"),
    ("success", "Solved: dialog shown"),
    ("success_back", "Go back"),
    ("submit", "Submit pressed"),
    ("skip_open", "Skip: dialog opened"),
    ("skip_cancel", "Skip: cancelled"),
    ("skip", "Skip confirmed"),
    ("help", "Help opened"),
    // view.js: the isometric camera turned.
    ("camera", "Camera rotation"),
    // display.js: entered, left, refused or unavailable.
    ("fullscreen", "Full screen"),
    ("consent", "Consent"),
    ("demo_play", "Demonstration played"),
    ("demo_stop", "Demonstration stopped"),
    ("continue", "Continue"),
    ("questionnaire", "Questionnaire sent"),
];

/// The modes of a run (`runs.mode`, and `mode` of a `run` event), with their labels.
pub const RUN_MODES: &[(&str, &str)] = &[
    ("run", "Run"),
    ("quick_run", "Quick run"),
    ("step", "Step (run)"),
];

/// Entries made from the server's rows rather than from client events.
pub const RECORD_KINDS: &[(&str, &str)] = &[
    ("start", "Task shown"),
    ("submit", "Submitted"),
    ("skip", "Skipped"),
];

/// A task page shown again on the same step.
pub const RELOAD: &str = "Reload";

/// The longest detail shown for one entry, in characters.
const MAX_DETAIL: usize = 200;

fn lookup(table: &[(&str, &'static str)], kind: &str) -> Option<&'static str> {
    table
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, label)| *label)
}

/// The label of a client event; an unknown kind is shown under its own name.
pub fn event_label(kind: &str) -> String {
    lookup(EVENT_KINDS, kind).map_or_else(|| format!("Other event: {kind}"), str::to_owned)
}

/// The label of a run in `mode`; an unknown mode is shown under its own name.
pub fn run_label(mode: &str) -> String {
    lookup(RUN_MODES, mode).map_or_else(|| format!("Run ({mode})"), str::to_owned)
}

/// The label of an entry made from the server's rows.
pub fn record_label(kind: &str) -> String {
    lookup(RECORD_KINDS, kind).unwrap_or(kind).to_owned()
}

/// A CSS class suffix for `kind`: the kind itself when it is a plain word, else `other`.
pub fn css_class(kind: &str) -> String {
    let plain = !kind.is_empty()
        && kind.len() <= 40
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if plain {
        kind.to_owned()
    } else {
        "other".into()
    }
}

/// The program an event's data carries (`edit`, `run`, `page`, `skip`, `success`, `submit`).
pub fn program_of(data: &Value) -> Option<&str> {
    data.get("program").and_then(Value::as_str)
}

/// An event's data in words: `key: value` for every field but the program (shown on its own),
/// cut to a readable length.
pub fn detail(data: &Value) -> String {
    let text = match data {
        Value::Null => String::new(),
        Value::Object(fields) => {
            let mut fields: Vec<(&String, &Value)> = fields
                .iter()
                .filter(|(key, value)| key.as_str() != "program" && !value.is_null())
                .collect();
            fields.sort_by_key(|(key, _)| *key);
            fields
                .iter()
                .map(|(key, value)| format!("{key}: {}", plain(value)))
                .collect::<Vec<_>>()
                .join(", ")
        }
        other => plain(other),
    };
    shorten(&text)
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_DETAIL) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// `m:ss.t` (tenths), with a sign before the trial's start (clocks differ a little).
pub fn at(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let tenths = ms.unsigned_abs() / 100;
    let (minutes, seconds, tenth) = (tenths / 600, tenths / 10 % 60, tenths % 10);
    format!("{sign}{minutes}:{seconds:02}.{tenth}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_has_one_label_and_unknown_kinds_keep_their_name() {
        for table in [EVENT_KINDS, RUN_MODES, RECORD_KINDS] {
            for (i, (kind, _)) in table.iter().enumerate() {
                assert!(
                    table[i + 1..].iter().all(|(k, _)| k != kind),
                    "{kind} twice"
                );
                assert_eq!(css_class(kind), *kind);
            }
        }
        assert_eq!(event_label("camera"), "Camera rotation");
        assert_eq!(event_label("mystery"), "Other event: mystery");
        assert_eq!(run_label("quick_run"), "Quick run");
        assert_eq!(run_label("turbo"), "Run (turbo)");
        assert_eq!(css_class("a b\"<"), "other");
    }

    #[test]
    fn details_name_every_field_but_the_program() {
        let data = json!({ "rotation": 1, "delta": -1, "via": "key", "program": "W||||" });
        assert_eq!(detail(&data), "delta: -1, rotation: 1, via: key");
        assert_eq!(detail(&json!(null)), "");
        assert_eq!(detail(&json!([1, "a"])), "1 a");
        let long = "é".repeat(300);
        assert_eq!(
            detail(&json!({ "x": long })).chars().count(),
            MAX_DETAIL + 1
        );
    }

    #[test]
    fn times_have_tenths_and_a_sign() {
        assert_eq!(at(0), "0:00.0");
        assert_eq!(at(65_340), "1:05.3");
        assert_eq!(at(-1_200), "-0:01.2");
        assert_eq!(at(i64::MIN).chars().next(), Some('-'));
    }
}
