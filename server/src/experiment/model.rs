//! The validated experiment: its settings, texts, tasks, questionnaire, completion and bonus rule.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use dsl::{LightMode, Limits, Program, Task};

use crate::domain::ExperimentSlug;
use crate::experiment::order::Order;

/// A validated experiment, ready to serve.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub slug: ExperimentSlug,
    pub title: String,
    pub description: Option<Text>,
    /// Where the definition came from (a path, or `bundled:correa2025.toml`).
    pub source: String,
    /// Hash of the definition and every file it refers to; recorded with each session.
    pub version: String,
    pub light: LightMode,
    pub skip_delay: Duration,
    pub limits: Limits,
    pub allow_repeats: bool,
    pub recruiter_id_params: Vec<String>,
    /// How the level is drawn for participants and in the replay.
    pub board: BoardKind,
    /// Who may enter, and when an arrival continues an earlier session.
    pub entry: EntryRules,
    /// What the participant's device must offer.
    pub device: DeviceRules,
    /// When a session counts as idle, and when it is abandoned.
    pub timing: Timing,
    pub consent: Consent,
    pub tutorial: Vec<Screen>,
    pub practice: Vec<TaskEntry>,
    pub instructions: Vec<Screen>,
    pub tasks: Vec<TaskEntry>,
    pub order: Order,
    pub questionnaire: Vec<Item>,
    pub completion: Completion,
    pub bonus: Bonus,
    /// The between-subject condition whose settings these are: `None` for the experiment as
    /// loaded, the condition's name for [`Condition::experiment`] ([`Experiment::for_arm`]).
    pub arm: Option<String>,
    /// Between-subject conditions, in file order; empty when the file defines none (and in a
    /// condition's own experiment).
    pub conditions: Vec<Condition>,
}

/// A between-subject condition (docs/study.md §10).
#[derive(Debug, Clone)]
pub struct Condition {
    pub name: String,
    /// The experiment as the condition's sessions run it: the top level with the condition's
    /// `light`, `tasks`, `instructions` and `order` in place; the same slug and version, `arm` set
    /// to the name and no `conditions` of its own.
    pub experiment: Arc<Experiment>,
}

impl Experiment {
    /// The experiment as a session of condition `arm` runs it: the condition's own experiment, or
    /// this one when `arm` is this experiment's own (`None` for an experiment without
    /// conditions). An arm the experiment does not define gives this experiment too: such a
    /// session started under another version of the definition, which `study::check_version`
    /// refuses. Call it on the experiment as loaded.
    pub fn for_arm(&self, arm: Option<&str>) -> &Experiment {
        match arm {
            Some(name) if self.arm.as_deref() != Some(name) => self
                .conditions
                .iter()
                .find(|c| c.name == name)
                .map_or(self, |c| &c.experiment),
            _ => self,
        }
    }

    /// [`Experiment::for_arm`], shared.
    pub fn for_arm_shared(self: &Arc<Experiment>, arm: Option<&str>) -> Arc<Experiment> {
        match arm {
            Some(name) if self.arm.as_deref() != Some(name) => self
                .conditions
                .iter()
                .find(|c| c.name == name)
                .map_or_else(|| self.clone(), |c| c.experiment.clone()),
            _ => self.clone(),
        }
    }
}

/// How the level is drawn. Both views show the server's trace only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BoardKind {
    /// Stacked blocks seen from above at an angle, with camera rotation (the reference study).
    #[default]
    Isometric,
    /// A top-down grid with the height written on each block (accessibility, small screens).
    Flat,
}

/// The entry rules (docs/api.md, "Entry").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRules {
    /// Arrivals without a recruiter ID are refused (outside preview sessions).
    pub require_recruiter_id: bool,
    /// An arrival may continue an active, unfinished session of the same recruiter ID.
    pub resume: bool,
    /// Parameters that must match the session's for such a resume.
    pub resume_params: Vec<String>,
}

/// The front door's device check; `None` means no requirement.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct DeviceRules {
    pub min_width: Option<u32>,
    pub min_height: Option<u32>,
    /// Whether touch-only devices may take part.
    pub touch: bool,
}

/// The time-dependent session states' thresholds (see `crate::domain::progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Timing {
    /// Nothing recorded for this long: idle.
    pub idle_after: Duration,
    /// This long after the start (or the last reset): abandoned. `None`: never.
    pub time_limit: Option<Duration>,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            idle_after: Duration::from_secs(600),
            time_limit: None,
        }
    }
}

/// Markdown text with its HTML rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub markdown: String,
    pub html: String,
}

impl Text {
    pub fn from_markdown(markdown: &str) -> Text {
        use pulldown_cmark::{Options, Parser, html};
        let mut rendered = String::new();
        html::push_html(
            &mut rendered,
            Parser::new_ext(
                markdown,
                Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
            ),
        );
        Text {
            markdown: markdown.to_owned(),
            html: rendered,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Consent {
    pub text: Text,
    pub agree_label: String,
    pub decline_label: String,
}

/// A task with its label (unique within its list) and where it came from.
#[derive(Debug, Clone)]
pub struct TaskEntry {
    pub label: String,
    /// `correa2025/c` or `levels.json[3]`.
    pub source: String,
    pub task: Task,
    pub text: Option<Text>,
}

/// A tutorial or instruction screen.
#[derive(Debug, Clone)]
pub struct Screen {
    pub text: Text,
    pub level: Option<TaskEntry>,
    /// Shown animated on the level.
    pub demo: Option<Program>,
    /// The participant must solve the level before going on.
    pub solve: bool,
    /// The instructions the screen's editor offers, as compact-form letters (`W J L R S`, then
    /// process digits `1`, `2`, ...): the screen's `palette`, or for a tutorial screen without one
    /// every primitive and P1. `None` for an instruction screen without a palette.
    pub palette: Option<Vec<char>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKind {
    Choice { options: Vec<String> },
    Text,
}

/// One questionnaire item.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub prompt: String,
    pub kind: ItemKind,
    pub required: bool,
}

#[derive(Debug, Clone)]
pub struct Completion {
    pub code: String,
    /// May contain `[NAME]` placeholders (see [`Completion::redirect_for`]).
    pub redirect_url: Option<String>,
    pub text: Option<Text>,
}

impl Completion {
    /// The redirect URL with each `[NAME]` replaced by the entry URL parameter `NAME`
    /// (percent-encoded) and `[COMPLETION_CODE]` by the completion code, as JATOS does. A
    /// placeholder whose parameter the participant did not bring becomes empty.
    pub fn redirect_for(&self, params: &BTreeMap<String, String>) -> Option<String> {
        let template = self.redirect_url.as_ref()?;
        let mut out = String::with_capacity(template.len());
        for segment in redirect_segments(template) {
            match segment {
                RedirectSegment::Literal(text) => out.push_str(text),
                RedirectSegment::Placeholder(name) => {
                    let value = if name == "COMPLETION_CODE" {
                        Some(self.code.as_str())
                    } else {
                        params.get(name).map(String::as_str)
                    };
                    out.push_str(&percent_encode(value.unwrap_or("")));
                }
                RedirectSegment::StrayBracket => out.push('['),
            }
        }
        Some(out)
    }
}

/// A piece of a redirect URL template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RedirectSegment<'a> {
    /// Text copied as it is.
    Literal(&'a str),
    /// `[NAME]`, by its name.
    Placeholder(&'a str),
    /// A `[` that starts no placeholder; validation rejects it, substitution keeps it.
    StrayBracket,
}

/// Splits a redirect URL template into its pieces. Substitution and validation both read the
/// template through this, so they agree on what a placeholder is.
pub(super) fn redirect_segments(template: &str) -> impl Iterator<Item = RedirectSegment<'_>> {
    let mut rest = Some(template);
    std::iter::from_fn(move || {
        let text = rest?;
        let Some(open) = text.find('[') else {
            rest = None;
            return Some(RedirectSegment::Literal(text));
        };
        if open > 0 {
            rest = Some(&text[open..]);
            return Some(RedirectSegment::Literal(&text[..open]));
        }
        let after = &text[1..];
        match after.find(']') {
            Some(close) if is_placeholder_name(&after[..close]) => {
                rest = Some(&after[close + 1..]);
                Some(RedirectSegment::Placeholder(&after[..close]))
            }
            _ => {
                rest = Some(after);
                Some(RedirectSegment::StrayBracket)
            }
        }
    })
}

fn is_placeholder_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// How bonuses are computed after data collection (`proglab export --format bonus-csv`).
#[derive(Debug, Clone, PartialEq)]
pub struct Bonus {
    pub rule: BonusRule,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BonusRule {
    None,
    /// docs/study.md §5.1: per task,
    /// `clip(per_task - c * (length - shortest length), 0, per_task)`, with `c` chosen so that the
    /// mean total bonus is `target_mean_total`.
    LengthRelativeToShortest {
        per_task: f64,
        target_mean_total: Option<f64>,
    },
}

impl BonusRule {
    pub fn name(&self) -> &'static str {
        match self {
            BonusRule::None => "none",
            BonusRule::LengthRelativeToShortest { .. } => "length_relative_to_shortest",
        }
    }
}
