//! One trial's history: every client event of its step, every run, and its outcome, each with
//! the time since the task appeared and the program the participant had then.

use std::collections::HashSet;

use serde_json::Value;

use super::TimelineEntry;
use super::kinds::{
    RELOAD, at, css_class, detail, event_label, program_of, record_label, run_label,
};
use crate::domain::TrialOutcome;
use crate::store::{Run, StoredEvent, Trial};

/// A trial's entries in time order, and the program it ended with.
pub(super) struct History {
    pub entries: Vec<TimelineEntry>,
    /// The program the participant had when they skipped (skipped trials only): the last
    /// program an event (or, without events, a run) carried up to the skip. `None` when nothing
    /// recorded a program.
    pub at_skip: Option<String>,
    /// The last program the events or runs carried (for an unfinished trial).
    pub last: Option<String>,
}

fn entry(t_ms: i64, kind: &str, label: String, program: String) -> TimelineEntry {
    TimelineEntry {
        t_ms,
        time: at(t_ms),
        kind: kind.to_owned(),
        css: css_class(kind),
        label,
        program,
        shows_program: false,
        solved: None,
        mark: String::new(),
        detail: String::new(),
        seq: None,
    }
}

fn run_detail(run: &Run) -> String {
    format!(
        "run {}, {} steps, {}",
        run.seq,
        run.steps,
        if run.solved { "solved" } else { "not solved" }
    )
}

fn with_run(mut e: TimelineEntry, run: &Run) -> TimelineEntry {
    e.label = run_label(&run.mode);
    e.program = run.program.clone();
    e.shows_program = true;
    e.solved = Some(run.solved);
    e.mark = if run.solved { " ✓" } else { " ✗" }.to_owned();
    e.detail = run_detail(run);
    e
}

/// The history of `trial` from the events and runs of its step (`events` in the client's
/// order, by sequence number).
pub(super) fn history(trial: &Trial, events: &[&StoredEvent], runs: &[&Run]) -> History {
    let since = |ms: i64| ms.saturating_sub(trial.started_ms);
    let mut start = entry(0, "start", record_label("start"), String::new());
    start.detail = "the task was served".into();
    let mut entries = vec![start];
    // The outcome row stands for the client's last `submit` or `skip` event of the step.
    let outcome_kind = trial.outcome.map(|o| match o {
        TrialOutcome::Submitted => "submit",
        TrialOutcome::Skipped => "skip",
    });
    let absorbed = outcome_kind.and_then(|kind| events.iter().rposition(|e| e.kind == kind));
    let mut program = String::new();
    // (time, program) of the last program recorded up to the outcome.
    let mut last: Option<(i64, String)> = None;
    let mut matched = HashSet::new();
    let mut pages = 0;
    let mut outcome_detail = String::new();
    for (i, event) in events.iter().enumerate() {
        let t = since(event.client_ms.unwrap_or(event.session_ms));
        let carried = program_of(&event.data);
        if let Some(carried) = carried {
            program = carried.to_owned();
            if absorbed.is_none_or(|a| i <= a) {
                last = Some((t, program.clone()));
            }
        }
        if Some(i) == absorbed {
            outcome_detail = detail(&event.data);
            continue;
        }
        let mut e = entry(t, &event.kind, event_label(&event.kind), program.clone());
        e.shows_program = carried.is_some();
        e.detail = detail(&event.data);
        e.seq = Some(event.seq);
        match event.kind.as_str() {
            "run" => {
                let number = event.data.get("run").and_then(Value::as_i64);
                match number.and_then(|n| runs.iter().find(|r| r.seq == n)) {
                    Some(run) => {
                        matched.insert(run.seq);
                        e = with_run(e, run);
                    }
                    None => {
                        let mode = event.data.get("mode").and_then(Value::as_str);
                        e.label = run_label(mode.unwrap_or("run"));
                        e.detail = format!(
                            "{}; no run stored (it did not reach the server, or did not parse)",
                            e.detail
                        );
                    }
                }
            }
            "page" => {
                pages += 1;
                if pages > 1 {
                    e.label = RELOAD.into();
                }
            }
            _ => {}
        }
        entries.push(e);
    }
    for run in runs.iter().filter(|r| !matched.contains(&r.seq)) {
        let t = since(run.session_ms);
        let before_end = trial.ended_ms.is_none_or(|end| run.session_ms <= end);
        if before_end && last.as_ref().is_none_or(|(lt, _)| t > *lt) {
            last = Some((t, run.program.clone()));
        }
        entries.push(with_run(entry(t, "run", String::new(), String::new()), run));
    }
    let last = last.map(|(_, p)| p);
    let mut at_skip = None;
    if let (Some(outcome), Some(ended)) = (trial.outcome, trial.ended_ms) {
        let kind = outcome_kind.unwrap_or("submit");
        let mut e = entry(since(ended), kind, record_label(kind), String::new());
        e.shows_program = true;
        let what = match outcome {
            TrialOutcome::Submitted => {
                e.program = trial.program.clone().unwrap_or_default();
                format!("submitted after {} runs", trial.runs)
            }
            TrialOutcome::Skipped => {
                at_skip = last.clone();
                e.program = at_skip.clone().unwrap_or_default();
                match &at_skip {
                    Some(_) => format!("program at skip time, after {} runs", trial.runs),
                    None => format!(
                        "no program recorded before the skip, after {} runs",
                        trial.runs
                    ),
                }
            }
        };
        e.detail = if outcome_detail.is_empty() {
            what
        } else {
            format!("{what}; {outcome_detail}")
        };
        entries.push(e);
    }
    entries.sort_by_key(|e| e.t_ms);
    History {
        entries,
        at_skip,
        last,
    }
}
