//! The participant API's wire types (`/api/v1/...`): typed serde requests and responses, shared by
//! the handlers, the study logic and the tests. docs/api.md and the OpenAPI document describe them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /api/v1/experiments/{slug}/sessions`: entry into a study.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryRequest {
    /// Every URL parameter the participant arrived with (`PROLIFIC_PID`, `STUDY_ID`, ...), stored
    /// verbatim.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// What the browser measured for the experiment's device check; an arrival that reports
    /// nothing is not checked (the front door always reports).
    #[serde(default)]
    pub device: Option<DeviceReport>,
}

/// The device check's measurements, as the browser reports them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeviceReport {
    /// The browser window's inner size, in CSS pixels.
    pub width: u32,
    pub height: u32,
    /// The device has a touch screen and no fine pointer (a phone or a tablet).
    pub touch: bool,
}

impl DeviceReport {
    /// Why the device falls short of `rules`, in words for the participant; None if it does not.
    pub fn shortfall(&self, rules: &crate::experiment::DeviceRules) -> Option<String> {
        if self.touch && !rules.touch {
            return Some(
                "this study needs a computer with a mouse or a trackpad; it cannot be done on a \
                 phone or a tablet"
                    .into(),
            );
        }
        let too_narrow = rules.min_width.is_some_and(|w| self.width < w);
        let too_low = rules.min_height.is_some_and(|h| self.height < h);
        if too_narrow || too_low {
            return Some(format!(
                "this study needs a browser window of at least {} by {} pixels, and yours is {} by \
                 {}; please use a computer with a larger screen, or make the window larger and \
                 reload the page",
                rules.min_width.unwrap_or(0),
                rules.min_height.unwrap_or(0),
                self.width,
                self.height
            ));
        }
        None
    }

    /// As stored with the session or the refused arrival: the same fields as the request's.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryResponse {
    /// A new session token: for a new session, and for a session resumed by recruiter ID (the
    /// old token then stops working); send it back as `Authorization: Bearer <token>` (browsers
    /// get it as a cookie too). Absent when the request's own token resumed the session.
    pub token: Option<String>,
    /// The request resumed an existing session (found by its token, or by recruiter ID and the
    /// experiment's resume parameters).
    pub resumed: bool,
    pub session: SessionView,
}

/// `POST /api/v1/session/consent`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    pub agree: bool,
}

/// `POST /api/v1/session/steps/{step}/runs`: execute a program on the current task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// The client's number for this run, unique within the session (1, 2, ...). Sending the same
    /// number again returns the stored run instead of recording a second one.
    pub run: i64,
    /// Compact (`1LJL1RJR1|WWWS|||`) or readable form.
    pub program: String,
    /// How the run was started, for the record: `run`, `quick_run` or `step`; default `run`.
    #[serde(default)]
    pub mode: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResponse {
    pub run: i64,
    /// This run number was recorded before; nothing new was stored.
    pub duplicate: bool,
    /// The program as the server read it, in compact form.
    pub program: String,
    pub solved: bool,
    /// Primitives executed, no-ops included (the game's step count).
    pub steps: u32,
    /// Tokens over all routines (the Instruction Count).
    pub instruction_count: u32,
    pub budget_exhausted: bool,
    pub final_state: StateView,
    pub trace: Vec<TraceStepView>,
}

/// `POST /api/v1/session/steps/{step}/submit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    pub program: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmitResponse {
    /// The submitted program in compact form.
    pub program: String,
    pub steps: u32,
    pub instruction_count: u32,
    /// A retry of a submit that was already recorded.
    pub duplicate: bool,
    pub session: SessionView,
}

/// `POST /api/v1/session/events`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsRequest {
    pub events: Vec<EventIn>,
}

/// One client event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    /// Numbered by the client from 1, once per session; stored once per number.
    pub seq: i64,
    /// What happened (`edit`, `click`, `run_start`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The step the participant was on.
    #[serde(default)]
    pub step: Option<i64>,
    /// Client clock: milliseconds since the session started.
    #[serde(default)]
    pub t: Option<i64>,
    #[serde(default)]
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventsResponse {
    /// Every sequence number of the batch that is stored now, once each.
    pub stored: Vec<i64>,
    /// Those that had been stored by an earlier request, or by an earlier copy in this batch.
    pub duplicates: Vec<i64>,
    /// Events refused on their own (they can never be stored); completion does not wait for them.
    pub refused: Vec<RefusedEventView>,
}

/// An event the server refused on its own, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefusedEventView {
    pub seq: i64,
    pub reason: String,
}

/// `POST /api/v1/session/questionnaire`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuestionnaireRequest {
    /// Item id to answer: one of the options for a choice item, free text for a text item.
    pub answers: BTreeMap<String, String>,
}

/// `POST /api/v1/session/complete`; the body is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    /// The client's last event number: completion is refused while any of 1..=n is missing.
    #[serde(default)]
    pub events_through: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompleteResponse {
    pub code: String,
    /// Where to send the participant (for example back to Prolific), if the experiment has one.
    pub redirect_url: Option<String>,
    pub session: SessionView,
}

/// `GET /api/v1/experiments/{slug}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExperimentView {
    pub slug: String,
    pub title: String,
    pub description: Option<TextView>,
    pub version: String,
    pub light: String,
    pub skip_delay_seconds: u64,
    pub limits: LimitsView,
    pub tutorial_steps: usize,
    pub practice_tasks: usize,
    pub tasks: usize,
    pub order: String,
    pub questionnaire_items: usize,
}

/// Where a participant is and what to show next: the answer of `GET /api/v1/session` and of every
/// request that moves the session on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionView {
    pub session_id: String,
    pub experiment: String,
    pub status: String,
    pub progress: Progress,
    pub current: Current,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress {
    /// Index of the current step (0 = consent).
    pub step: i64,
    pub steps: i64,
    pub phase: String,
    /// Index of the current step within its phase.
    pub phase_step: i64,
    pub phase_steps: i64,
}

/// What the current step asks for, tagged by `kind`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Current {
    /// Answer with `POST /api/v1/session/consent`.
    Consent {
        text: TextView,
        agree_label: String,
        decline_label: String,
    },
    /// Read, then `POST /api/v1/session/steps/{step}/continue`.
    Screen {
        phase: String,
        text: TextView,
        level: Option<MapView>,
        demo: Option<DemoView>,
        /// The instructions taught so far, as compact-form letters in palette order (`W J L R S`,
        /// then process digits): the screen shows them beside its level. Absent on screens
        /// without one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        palette: Option<Vec<String>>,
    },
    /// Run programs, then submit a solution (or skip, where allowed).
    Task { phase: String, trial: TrialView },
    /// Answer with `POST /api/v1/session/questionnaire`.
    Questionnaire { items: Vec<ItemView> },
    /// Everything is done: `POST /api/v1/session/complete` for the completion code.
    Complete { text: Option<TextView> },
    /// The session is completed.
    Done {
        code: String,
        redirect_url: Option<String>,
        text: Option<TextView>,
    },
    /// The participant declined consent.
    Declined { message: String },
}

/// Markdown text with its HTML rendering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextView {
    pub markdown: String,
    pub html: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrialView {
    pub step: i64,
    pub phase: String,
    /// Position within the phase (for main tasks: this participant's order position).
    pub position: i64,
    /// Index in the phase's task list (for main tasks: the `mdp_idx`).
    pub task_index: i64,
    pub label: String,
    pub text: Option<TextView>,
    pub map: MapView,
    /// `toggle` or `idempotent`.
    pub light: String,
    pub limits: LimitsView,
    /// The instructions the editor offers, as compact-form letters in palette order (`W J L R S`,
    /// then process digits `1` to `limits.subroutines`); a tutorial level offers only those taught
    /// so far, and shows one list per process offered.
    pub palette: Vec<String>,
    /// When the server first served this task (RFC 3339, UTC).
    pub started_at: String,
    pub runs: i64,
    /// Present where skipping is allowed (main tasks).
    pub skip: Option<SkipView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SkipView {
    pub delay_seconds: u64,
    /// RFC 3339, UTC.
    pub available_at: String,
    pub available: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LimitsView {
    pub subroutines: usize,
    pub max_routine_length: usize,
}

/// A level in game coordinates: `heights[y][x]`, y = 0 is the bottom row of the ASCII maps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapView {
    pub width: usize,
    pub height: usize,
    pub heights: Vec<Vec<u8>>,
    /// Light tiles in light-number order: `lit` lists in states refer to these indices.
    pub lights: Vec<Position>,
    pub start: StateView,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub x: u8,
    pub y: u8,
}

/// The robot's state: position, heading (0 = SE, 1 = NE, 2 = NW, 3 = SW) and the lit lights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateView {
    pub x: u8,
    pub y: u8,
    pub direction: u8,
    pub lit: Vec<u8>,
}

/// One executed token and the state after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceStepView {
    /// 0 = main, k = subroutine k.
    pub routine: u8,
    pub position: u16,
    pub depth: u16,
    /// Compact-form letter: S J W R L or a subroutine digit.
    pub instr: String,
    /// `changed`, `no_op` or `call`.
    pub effect: String,
    pub state: StateView,
}

/// A demonstration program with its execution, for a tutorial or instruction screen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoView {
    pub program: String,
    pub instruction_count: u32,
    pub solved: bool,
    pub trace: Vec<TraceStepView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemView {
    pub id: String,
    pub prompt: String,
    /// `choice` or `text`.
    pub kind: String,
    pub options: Vec<String>,
    pub required: bool,
}

/// Every error body: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`invalid_program`, `not_solved`, ...).
    pub code: String,
    pub message: String,
    /// For `invalid_program`: where the parse error is (1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}
