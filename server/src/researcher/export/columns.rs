//! The export tables' columns, each with the description the Psych-DS metadata lists.

use serde::Serialize;

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

/// Columns more than one table has, with one description.
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
        "Status of the session: active, declined or completed",
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
