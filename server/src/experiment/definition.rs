//! The experiment file as written (TOML), before validation. Every table rejects unknown keys so
//! that a typo is reported instead of silently ignored.

use serde::Deserialize;

/// The top level of an experiment file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub slug: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<TextSource>,
    /// `toggle` or `idempotent`: what Light does on a lit light (docs/design.md §4).
    pub light: String,
    /// Seconds from when a task is served until it may be skipped.
    pub skip_delay_seconds: u64,
    #[serde(default = "default_subroutines")]
    pub subroutines: usize,
    #[serde(default = "default_max_routine_length")]
    pub max_routine_length: usize,
    #[serde(default)]
    pub allow_repeats: bool,
    /// Entry URL parameters that identify a recruiter's participant, first present wins. Naming
    /// them makes the recruiter ID required (see [`EntryDef::require_recruiter_id`]).
    #[serde(default)]
    pub recruiter_id_params: Option<Vec<String>>,
    /// How the level is drawn: `isometric` (stacked blocks, as the reference study) or `flat`.
    #[serde(default)]
    pub board: Option<String>,
    /// Rules for arrivals: whether a recruiter ID is required, and when an arrival resumes.
    #[serde(default)]
    pub entry: EntryDef,
    /// What the participant's device must offer, checked on the front door.
    #[serde(default)]
    pub device: DeviceDef,
    /// When a session counts as idle, and when it is abandoned.
    #[serde(default)]
    pub timing: TimingDef,
    pub consent: ConsentDef,
    #[serde(default)]
    pub tutorial: Vec<ScreenDef>,
    #[serde(default)]
    pub practice: Vec<TaskDef>,
    #[serde(default)]
    pub instructions: Vec<ScreenDef>,
    pub tasks: Vec<TaskDef>,
    #[serde(default)]
    pub order: OrderDef,
    #[serde(default)]
    pub questionnaire: Vec<ItemDef>,
    pub completion: CompletionDef,
    #[serde(default)]
    pub bonus: BonusDef,
    /// Between-subject conditions (docs/study.md §10); none by default.
    #[serde(default)]
    pub conditions: Vec<ConditionDef>,
}

fn default_subroutines() -> usize {
    4
}

fn default_max_routine_length() -> usize {
    dsl::Limits::default().max_routine_len
}

pub fn default_recruiter_id_params() -> Vec<String> {
    ["PROLIFIC_PID", "workerId", "participant_id"]
        .map(String::from)
        .to_vec()
}

/// `[entry]`: who may enter and when an arrival continues an earlier session (docs/api.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryDef {
    /// Refuse arrivals without a recruiter ID; defaults to true when `recruiter_id_params` is
    /// named in the file, false otherwise.
    #[serde(default)]
    pub require_recruiter_id: Option<bool>,
    /// Let an arrival with the recruiter ID of an active, unfinished session continue it
    /// (default true).
    #[serde(default)]
    pub resume: Option<bool>,
    /// The recruiter's per-submission parameters that must also match for a resume (default
    /// `["SESSION_ID"]`, Prolific's). An arrival whose parameters all equal the session's
    /// resumes as well (a retried entry).
    #[serde(default)]
    pub resume_params: Option<Vec<String>>,
}

/// `[device]`: the front door's device check (docs/api.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceDef {
    /// Smallest browser window, in CSS pixels.
    #[serde(default)]
    pub min_width: Option<u32>,
    #[serde(default)]
    pub min_height: Option<u32>,
    /// Whether touch-only devices (phones, tablets) may take part (default true).
    #[serde(default)]
    pub touch: Option<bool>,
}

/// `[timing]`: the session states that depend on time (docs/researcher.md, "Session states").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimingDef {
    /// An active session with nothing recorded for this long is shown as idle (default 600).
    #[serde(default)]
    pub idle_after_seconds: Option<u64>,
    /// An active session this long after its start (or its last reset) is abandoned: it no
    /// longer accepts writes until a researcher resets it. No limit when absent.
    #[serde(default)]
    pub time_limit_seconds: Option<u64>,
}

/// Markdown, either inline or read from a file next to the experiment file.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TextSource {
    Inline(String),
    File { file: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentDef {
    pub text: TextSource,
    #[serde(default = "default_agree")]
    pub agree_label: String,
    #[serde(default = "default_decline")]
    pub decline_label: String,
}

fn default_agree() -> String {
    "I agree".into()
}

fn default_decline() -> String {
    "No thanks".into()
}

/// A tutorial or instruction screen: text, optionally a level shown with a demonstration
/// program, or a level the participant must solve (`solve = true`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScreenDef {
    pub text: TextSource,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub task: Option<String>,
    #[serde(default)]
    pub map: Option<String>,
    #[serde(default)]
    pub level: Option<usize>,
    /// A program (compact or readable form) animated on the level.
    #[serde(default)]
    pub demo: Option<String>,
    #[serde(default)]
    pub solve: bool,
    /// The instructions the screen's editor offers, in palette order: `walk`, `jump`, `left`,
    /// `right`, `light` and processes `P1` to `P9` (a tutorial introduces them one at a time).
    #[serde(default)]
    pub palette: Option<Vec<String>>,
}

/// A practice or main task.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDef {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub task: Option<String>,
    #[serde(default)]
    pub map: Option<String>,
    #[serde(default)]
    pub level: Option<usize>,
    /// Text shown with the task.
    #[serde(default)]
    pub text: Option<TextSource>,
}

/// `[[conditions]]`: one between-subject condition. Each new session is assigned one (the least
/// assigned so far); what a condition leaves out is the top level's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionDef {
    /// Recorded per session (`sessions.arm`) and exported as `condition`: `[a-z0-9_-]`, 1-64.
    pub name: String,
    /// `toggle` or `idempotent`, in place of the top-level `light`.
    #[serde(default)]
    pub light: Option<String>,
    /// The main tasks, written as the top-level `[[tasks]]` entries, in place of those.
    #[serde(default)]
    pub tasks: Option<Vec<TaskDef>>,
    /// The instruction screens, written as the top-level `[[instructions]]`, in place of those.
    #[serde(default)]
    pub instructions: Option<Vec<ScreenDef>>,
    /// The task order, written as the top-level `[order]`; without it the top-level order
    /// applies to the condition's tasks.
    #[serde(default)]
    pub order: Option<OrderDef>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderDef {
    /// `fixed` (default), `shuffle` or `balanced`.
    #[serde(default)]
    pub mode: Option<String>,
    /// shuffle: one seed for every session (the same shuffled order for all); without it each
    /// session draws its own seed, which is recorded.
    #[serde(default)]
    pub seed: Option<u64>,
    /// balanced: the orders to counterbalance, as task labels; without it a balanced Latin square.
    #[serde(default)]
    pub orders: Option<Vec<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemDef {
    pub id: String,
    pub prompt: String,
    /// `choice` or `text`.
    pub kind: String,
    #[serde(default)]
    pub options: Vec<String>,
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletionDef {
    pub code: String,
    #[serde(default)]
    pub redirect_url: Option<String>,
    #[serde(default)]
    pub text: Option<TextSource>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BonusDef {
    /// `none` (default) or `length_relative_to_shortest` (docs/study.md §5.1).
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub per_task: Option<f64>,
    #[serde(default)]
    pub target_mean_total: Option<f64>,
    #[serde(default)]
    pub currency: Option<String>,
}
