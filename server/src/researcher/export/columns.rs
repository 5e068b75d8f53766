//! The export tables' columns, each with the description the Psych-DS metadata lists.

use serde::Serialize;

use crate::experiment::{Item, ItemKind};

/// A column of an export and what it means (the Psych-DS description lists every one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Column {
    pub name: &'static str,
    pub description: &'static str,
}

const fn column(name: &'static str, description: &'static str) -> Column {
    Column { name, description }
}

/// The recruiter's participant ID, only with `--raw-ids`.
pub const RECRUITER_ID: Column = column(
    "recruiter_id",
    "The recruiter's participant ID (for example PROLIFIC_PID); present only in exports made with the raw-IDs option",
);

/// The session's between-subject condition, only where the experiment defines conditions. It is
/// the name of the `[[conditions]]` entry (stored as `sessions.arm`); the counterbalanced task
/// order is a separate matter, exported per row as `order_position`.
pub const CONDITION: Column = column(
    "condition",
    "The participant's between-subject condition: the name of its [[conditions]] entry in the experiment definition; mdp_idx indexes that condition's task list",
);

/// Columns more than one table has, with one description.
/// Added to every table when excluded participants are exported.
pub const EXCLUDED: Column = column(
    "excluded",
    "True if a researcher excluded the participant (kept and paid, left out of exports unless asked for)",
);

const PREVIEW: Column = column(
    "preview",
    "True for a researcher's preview session (exported only when asked for)",
);

const PARTICIPANT: Column = column(
    "participant",
    "Pseudonym of the participant: a keyed hash of the recruiter ID, stable within the experiment",
);
const PARTICIPANT_IDX: Column = column(
    "participant_idx",
    "Index of the participant among the experiment's completed sessions, from 0, in the order they started",
);
const ELAPSED_MINUTES: Column = column(
    "elapsed_minutes",
    "Minutes from when the server served the task to submit or skip",
);
const PROGRAM_EVALUATIONS: Column = column(
    "program_evaluations",
    "Number of times the participant ran a program on this task",
);

pub const PROGRAMS_COLUMNS: &[Column] = &[
    PARTICIPANT_IDX,
    column(
        "mdp_idx",
        "Index of the task in the experiment's task list (for correa2025 the study order, docs/semantics.md §2.3)",
    ),
    column(
        "skipped",
        "True if the participant skipped the task, else False",
    ),
    ELAPSED_MINUTES,
    PROGRAM_EVALUATIONS,
    column(
        "program",
        "The submitted program in compact form (main|p1|p2|p3|p4); empty if skipped",
    ),
    column(
        "preprocessed_program",
        "The submitted program canonicalised (docs/semantics.md §3.3, analysis semantics); empty if skipped",
    ),
    column(
        "programming_exp",
        "Answer to: How much experience do you have with computer programming?",
    ),
    column(
        "programming_game_exp",
        "Answer to: Have you played Lightbot or another similar programming game before?",
    ),
    column(
        "order_position",
        "Position (from 0) at which this participant saw the task",
    ),
    PARTICIPANT,
];

pub const TRIALS_COLUMNS: &[Column] = &[
    PARTICIPANT,
    PARTICIPANT_IDX,
    column(
        "session_status",
        "State of the session when the export was written: active, idle (nothing recorded for the experiment's idle_after_seconds), abandoned (past its time_limit_seconds), completed or declined",
    ),
    column("phase", "Part of the study: tutorial, practice or tasks"),
    column(
        "position",
        "Position (from 0) of the trial within its phase, in the order this participant saw it",
    ),
    column(
        "task_index",
        "Index of the task in its phase's list; for the phase tasks it is the mdp_idx",
    ),
    column("label", "The task's label in the experiment definition"),
    column(
        "started_at",
        "When the server first served the task (UTC, RFC 3339)",
    ),
    column(
        "ended_at",
        "When the trial ended by submit or skip (UTC, RFC 3339); empty if it did not end",
    ),
    column(
        "started_ms",
        "Milliseconds from the session's start to started_at",
    ),
    column(
        "ended_ms",
        "Milliseconds from the session's start to ended_at",
    ),
    ELAPSED_MINUTES,
    column(
        "outcome",
        "submitted, skipped, or empty if the trial did not end",
    ),
    column(
        "program",
        "The submitted program in compact form; empty if skipped",
    ),
    column(
        "preprocessed_program",
        "The submitted program canonicalised (docs/semantics.md §3.3); empty if skipped or not solving under the analysis semantics",
    ),
    column(
        "instruction_count",
        "Number of instructions in the submitted program over all routines",
    ),
    column(
        "solved",
        "Whether the submitted program solves the task under the analysis semantics (idempotent light)",
    ),
    PROGRAM_EVALUATIONS,
    PREVIEW,
];

pub const QUESTIONNAIRE_COLUMNS: &[Column] = &[
    PARTICIPANT,
    PARTICIPANT_IDX,
    column(
        "item",
        "The questionnaire item's id in the experiment definition",
    ),
    column("answer", "The answer, verbatim"),
    column("answered_at", "When the answer was stored (UTC, RFC 3339)"),
];

/// Strings that pandas (`keep_default_na=True`, its default) or R (`na.strings = "NA"`) read as
/// missing. A level spelled like one of them is lost by a default read, so the metadata says so.
const READ_AS_MISSING: &[&str] = &[
    "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
    "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
];

/// A column as a Psych-DS `variableMeasured` entry (schema.org `PropertyValue`). Every table
/// writes a missing value as an empty cell, so `naValue` is `""` throughout. A column named after
/// a choice item of the questionnaire lists the item's options as `levels`, taken from the
/// experiment definition, and its description says which levels a default read takes for missing
/// (the `None` of `programming_exp`).
pub fn variable_measured(column: &Column, questionnaire: &[Item]) -> serde_json::Value {
    let mut entry = serde_json::json!({
        "@type": "PropertyValue",
        "name": column.name,
        "description": column.description,
        "naValue": "",
    });
    if let Some(levels) = choice_levels(column.name, questionnaire) {
        entry["description"] = serde_json::Value::String(describe_levels(column, levels));
        entry["levels"] = serde_json::json!(levels);
    }
    entry
}

/// The options of the choice item `name`, if the questionnaire has one.
fn choice_levels<'a>(name: &str, questionnaire: &'a [Item]) -> Option<&'a [String]> {
    questionnaire
        .iter()
        .find(|item| item.id == name)
        .and_then(|item| match &item.kind {
            ItemKind::Choice { options } => Some(options.as_slice()),
            ItemKind::Text => None,
        })
}

fn describe_levels(column: &Column, levels: &[String]) -> String {
    let quoted = |level: &String| format!("\"{level}\"");
    let listed: Vec<String> = levels.iter().map(quoted).collect();
    let mut text = format!("{} Levels: {}.", column.description, listed.join("; "));
    let traps: Vec<String> = levels
        .iter()
        .filter(|level| READ_AS_MISSING.contains(&level.as_str()))
        .map(quoted)
        .collect();
    if !traps.is_empty() {
        text.push_str(&format!(
            " {} is a level (an answer), not a missing value: pandas and R read it as missing unless told otherwise (docs/researcher.md, \"Load it in pandas / R\").",
            traps.join(" and ")
        ));
    }
    text.push_str(" An empty cell is missing.");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(id: &str, options: &[&str]) -> Item {
        Item {
            id: id.into(),
            prompt: "?".into(),
            kind: ItemKind::Choice {
                options: options.iter().map(|o| o.to_string()).collect(),
            },
            required: true,
        }
    }

    fn described(name: &str, questionnaire: &[Item]) -> serde_json::Value {
        let column = PROGRAMS_COLUMNS
            .iter()
            .find(|c| c.name == name)
            .expect("a programs column");
        variable_measured(column, questionnaire)
    }

    #[test]
    fn a_choice_column_lists_its_options_and_says_none_is_a_level() {
        let questionnaire = [choice("programming_exp", &["None", "Some", "A lot"])];

        let entry = described("programming_exp", &questionnaire);

        assert_eq!(
            entry["levels"],
            serde_json::json!(["None", "Some", "A lot"])
        );
        assert_eq!(entry["naValue"], "");
        let description = entry["description"].as_str().unwrap_or_default();
        assert!(description.contains("\"None\" is a level"), "{description}");
    }

    #[test]
    fn levels_that_no_reader_mistakes_get_no_warning_and_other_columns_no_levels() {
        let questionnaire = [choice("programming_game_exp", &["Yes", "No"])];

        let game = described("programming_game_exp", &questionnaire);
        let program = described("program", &questionnaire);

        assert_eq!(game["levels"], serde_json::json!(["Yes", "No"]));
        let description = game["description"].as_str().unwrap_or_default();
        assert!(
            !description.contains("not a missing value"),
            "{description}"
        );
        assert!(program.get("levels").is_none());
        assert_eq!(program["naValue"], "");
    }
}
