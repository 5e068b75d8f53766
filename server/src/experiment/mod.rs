//! Experiment definitions (DESIGN §4): a TOML file read and validated at start-up into an
//! [`Experiment`], and the bundled `correa2025` study.
//!
//! Validation collects every problem it finds, each naming the file, the key and what is wrong,
//! so a researcher fixes a broken file in one pass.

pub mod definition;
pub mod order;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dsl::{LightMode, Limits, Program, Task};
use sha2::{Digest, Sha256};

use crate::domain::{ExperimentSlug, Phase};
use crate::experiment::definition::{Definition, ItemDef, ScreenDef, TaskDef, TextSource};
pub use crate::experiment::order::Order;

/// The bundled experiments: (file name, TOML text).
pub const BUNDLED: &[(&str, &str)] = &[(
    "correa2025.toml",
    include_str!("../../experiments/correa2025.toml"),
)];

/// Files the bundled experiments refer to, embedded in the binary.
const BUNDLED_FILES: &[(&str, &str)] = &[(
    "tutorial-levels.json",
    include_str!("../../experiments/tutorial-levels.json"),
)];

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
    pub consent: Consent,
    pub tutorial: Vec<Screen>,
    pub practice: Vec<TaskEntry>,
    pub instructions: Vec<Screen>,
    pub tasks: Vec<TaskEntry>,
    pub order: Order,
    pub questionnaire: Vec<Item>,
    pub completion: Completion,
    pub bonus: Bonus,
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
        let mut rest = template.as_str();
        while let Some(open) = rest.find('[') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find(']') {
                Some(close) if is_placeholder_name(&after[..close]) => {
                    let name = &after[..close];
                    let value = if name == "COMPLETION_CODE" {
                        Some(self.code.as_str())
                    } else {
                        params.get(name).map(String::as_str)
                    };
                    out.push_str(&percent_encode(value.unwrap_or("")));
                    rest = &after[close + 1..];
                }
                _ => {
                    out.push('[');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        Some(out)
    }
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
    /// SPEC §5.1: per task, `clip(per_task - c * (length - shortest length), 0, per_task)`, with
    /// `c` chosen so that the mean total bonus is `target_mean_total`.
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

/// One step of a session's timeline: what the participant is asked to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Consent,
    /// `index` into `tutorial` or `instructions`.
    Screen {
        phase: Phase,
        index: usize,
    },
    /// A level to solve. `index` is the position within the phase; `task` indexes the phase's
    /// list (`tutorial`, `practice` or `tasks`); for main tasks it is the `mdp_idx`.
    Task {
        phase: Phase,
        index: usize,
        task: usize,
    },
    Questionnaire,
    Complete,
}

impl Step {
    pub fn phase(&self) -> Phase {
        match *self {
            Step::Consent => Phase::Consent,
            Step::Screen { phase, .. } | Step::Task { phase, .. } => phase,
            Step::Questionnaire => Phase::Questionnaire,
            Step::Complete => Phase::Complete,
        }
    }
}

impl Experiment {
    /// Every step of a session whose main tasks come in `task_order`, in order. A session's
    /// progress is an index into this list.
    pub fn timeline(&self, task_order: &[usize]) -> Vec<Step> {
        let mut steps = vec![Step::Consent];
        // Tutorial screens and levels share one list, so a level's position within the phase is
        // its index in that list.
        for (index, screen) in self.tutorial.iter().enumerate() {
            steps.push(if screen.solve {
                Step::Task {
                    phase: Phase::Tutorial,
                    index,
                    task: index,
                }
            } else {
                Step::Screen {
                    phase: Phase::Tutorial,
                    index,
                }
            });
        }
        steps.extend((0..self.practice.len()).map(|i| Step::Task {
            phase: Phase::Practice,
            index: i,
            task: i,
        }));
        steps.extend((0..self.instructions.len()).map(|index| Step::Screen {
            phase: Phase::Instructions,
            index,
        }));
        steps.extend(
            task_order
                .iter()
                .enumerate()
                .map(|(index, &task)| Step::Task {
                    phase: Phase::Tasks,
                    index,
                    task,
                }),
        );
        if !self.questionnaire.is_empty() {
            steps.push(Step::Questionnaire);
        }
        steps.push(Step::Complete);
        steps
    }

    /// The task a `Step::Task` names.
    pub fn task_entry(&self, phase: Phase, task: usize) -> Option<&TaskEntry> {
        match phase {
            Phase::Tutorial => self.tutorial.get(task)?.level.as_ref(),
            Phase::Practice => self.practice.get(task),
            Phase::Tasks => self.tasks.get(task),
            _ => None,
        }
    }

    /// The screen a `Step::Screen` names.
    pub fn screen(&self, phase: Phase, index: usize) -> Option<&Screen> {
        match phase {
            Phase::Tutorial => self.tutorial.get(index),
            Phase::Instructions => self.instructions.get(index),
            _ => None,
        }
    }

    /// The recruiter's participant ID among the entry parameters: the first of
    /// `recruiter_id_params` that is present and not empty.
    pub fn recruiter_id<'a>(&self, params: &'a BTreeMap<String, String>) -> Option<&'a str> {
        self.recruiter_id_params
            .iter()
            .filter_map(|name| params.get(name))
            .map(|value| value.trim())
            .find(|value| !value.is_empty())
    }
}

/// An experiment file that cannot be used, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ExperimentError {
    pub file: String,
    pub problems: Vec<Problem>,
}

/// One problem: the key (`tasks[2].level`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ExperimentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if problem.key.is_empty() {
                write!(f, "{}: {}", self.file, problem.message)?;
            } else {
                write!(f, "{}: {}: {}", self.file, problem.key, problem.message)?;
            }
        }
        Ok(())
    }
}

/// Where an experiment's referenced files (map files, Markdown) are read from.
pub trait Files {
    /// The file's text, or a message saying why it cannot be read.
    fn read(&self, name: &str) -> Result<String, String>;
}

/// Files next to the experiment file on disk.
pub struct DiskFiles {
    pub dir: PathBuf,
}

impl Files for DiskFiles {
    fn read(&self, name: &str) -> Result<String, String> {
        let path = self.dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    }
}

/// Files embedded in the binary.
pub struct EmbeddedFiles(pub &'static [(&'static str, &'static str)]);

impl Files for EmbeddedFiles {
    fn read(&self, name: &str) -> Result<String, String> {
        self.0
            .iter()
            .find(|(file, _)| *file == name)
            .map(|(_, text)| (*text).to_owned())
            .ok_or_else(|| format!("no bundled file named `{name}`"))
    }
}

/// The bundled experiments.
pub fn bundled() -> Result<Vec<Experiment>, ExperimentError> {
    BUNDLED
        .iter()
        .map(|(name, text)| {
            parse(
                text,
                &format!("bundled:{name}"),
                &EmbeddedFiles(BUNDLED_FILES),
            )
        })
        .collect()
}

/// Reads and validates an experiment file; referenced files are read relative to its folder.
pub fn load_file(path: &Path) -> Result<Experiment, ExperimentError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ExperimentError {
        file: file.clone(),
        problems: vec![Problem {
            key: String::new(),
            message: format!("cannot read the file: {e}"),
        }],
    })?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&text, &file, &DiskFiles { dir })
}

/// Parses and validates an experiment definition.
pub fn parse(text: &str, file: &str, files: &dyn Files) -> Result<Experiment, ExperimentError> {
    let definition: Definition = toml::from_str(text).map_err(|e| ExperimentError {
        file: file.to_owned(),
        problems: vec![Problem {
            key: String::new(),
            message: e.to_string().trim_end().replace('\n', "\n    "),
        }],
    })?;
    let mut resolver = Resolver {
        files,
        problems: Vec::new(),
        used_files: BTreeMap::new(),
    };
    let experiment = resolver.resolve(definition, text, file);
    match experiment {
        Some(experiment) if resolver.problems.is_empty() => Ok(experiment),
        _ => Err(ExperimentError {
            file: file.to_owned(),
            problems: resolver.problems,
        }),
    }
}

struct Resolver<'a> {
    files: &'a dyn Files,
    problems: Vec<Problem>,
    /// Every referenced file's text, by name; part of the version hash.
    used_files: BTreeMap<String, String>,
}

impl Resolver<'_> {
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    fn resolve(&mut self, def: Definition, source_text: &str, file: &str) -> Option<Experiment> {
        let slug = ExperimentSlug::parse(&def.slug)
            .map_err(|e| self.problem("slug", e))
            .ok();
        if def.title.trim().is_empty() {
            self.problem("title", "must not be empty");
        }
        let light = match def.light.as_str() {
            "toggle" => Some(LightMode::Toggle),
            "idempotent" => Some(LightMode::Idempotent),
            other => {
                self.problem(
                    "light",
                    format!("`{other}` is not a light mode: use `toggle` or `idempotent`"),
                );
                None
            }
        };
        if def.skip_delay_seconds > 86_400 {
            self.problem(
                "skip_delay_seconds",
                format!("{} s is more than a day", def.skip_delay_seconds),
            );
        }
        if def.subroutines > 9 {
            self.problem(
                "subroutines",
                format!("{} subroutines; at most 9 are possible", def.subroutines),
            );
        }
        if !(1..=1000).contains(&def.max_routine_length) {
            self.problem(
                "max_routine_length",
                format!("{} is not between 1 and 1000", def.max_routine_length),
            );
        }
        let limits = Limits {
            subroutines: def.subroutines.min(9),
            max_routine_len: def.max_routine_length,
        };
        for (i, name) in def.recruiter_id_params.iter().enumerate() {
            if name.trim().is_empty() {
                self.problem(format!("recruiter_id_params[{i}]"), "must not be empty");
            }
        }

        let description = def
            .description
            .as_ref()
            .and_then(|t| self.text("description", t));
        let consent_text = self.text("consent.text", &def.consent.text);
        let tutorial = self.screens(
            "tutorial",
            &def.tutorial,
            &limits,
            light.unwrap_or_default(),
        );
        let practice = self.task_list("practice", &def.practice);
        let instructions = self.screens(
            "instructions",
            &def.instructions,
            &limits,
            light.unwrap_or_default(),
        );
        if def.tasks.is_empty() {
            self.problem("tasks", "an experiment needs at least one task");
        }
        let tasks = self.task_list("tasks", &def.tasks);
        let order = self.order(&def.order, &tasks);
        let questionnaire = self.questionnaire(&def.questionnaire);
        let completion = self.completion(&def.completion);
        let bonus = self.bonus(&def.bonus);

        let mut hasher = Sha256::new();
        hasher.update(source_text.as_bytes());
        for (name, text) in &self.used_files {
            hasher.update([0]);
            hasher.update(name.as_bytes());
            hasher.update([0]);
            hasher.update(text.as_bytes());
        }
        let version = hex::encode(&hasher.finalize()[..8]);

        Some(Experiment {
            slug: slug?,
            title: def.title.trim().to_owned(),
            description,
            source: file.to_owned(),
            version,
            light: light?,
            skip_delay: Duration::from_secs(def.skip_delay_seconds),
            limits,
            allow_repeats: def.allow_repeats,
            recruiter_id_params: def.recruiter_id_params,
            consent: Consent {
                text: consent_text?,
                agree_label: def.consent.agree_label,
                decline_label: def.consent.decline_label,
            },
            tutorial,
            practice,
            instructions,
            tasks,
            order: order?,
            questionnaire,
            completion: completion?,
            bonus: bonus?,
        })
    }

    fn text(&mut self, key: &str, source: &TextSource) -> Option<Text> {
        let markdown = match source {
            TextSource::Inline(text) => text.clone(),
            TextSource::File { file } => match self.read_file(file) {
                Ok(text) => text,
                Err(message) => {
                    self.problem(format!("{key}.file"), message);
                    return None;
                }
            },
        };
        if markdown.trim().is_empty() {
            self.problem(key, "the text is empty");
            return None;
        }
        Some(Text::from_markdown(&markdown))
    }

    fn read_file(&mut self, name: &str) -> Result<String, String> {
        if let Some(text) = self.used_files.get(name) {
            return Ok(text.clone());
        }
        let text = self.files.read(name)?;
        self.used_files.insert(name.to_owned(), text.clone());
        Ok(text)
    }

    /// Resolves `task = "set/label"` or `map = FILE` plus `level = N` into a task, its default
    /// label and its source.
    fn level(
        &mut self,
        key: &str,
        task: Option<&str>,
        map: Option<&str>,
        level: Option<usize>,
    ) -> Option<(String, String, Task)> {
        match (task, map, level) {
            (Some(address), None, None) => match dsl::tasks::lookup(address) {
                Some(named) => Some((named.label.clone(), address.to_owned(), named.task.clone())),
                None => {
                    let sets: Vec<String> = dsl::tasks::bundled_sets()
                        .iter()
                        .map(|set| {
                            format!(
                                "{}/{{{}}}",
                                set.name,
                                set.tasks
                                    .iter()
                                    .chain(&set.practice)
                                    .map(|t| t.label.as_str())
                                    .collect::<Vec<_>>()
                                    .join(",")
                            )
                        })
                        .collect();
                    self.problem(
                        format!("{key}.task"),
                        format!("no bundled task `{address}` (bundled: {})", sets.join("; ")),
                    );
                    None
                }
            },
            (None, Some(file), Some(index)) => {
                let json = match self.read_file(file) {
                    Ok(json) => json,
                    Err(message) => {
                        self.problem(format!("{key}.map"), message);
                        return None;
                    }
                };
                match Task::from_level_file(&json, file, index) {
                    Ok(task) => {
                        let stem = Path::new(file)
                            .file_stem()
                            .and_then(|s| s.to_str())
                            .unwrap_or(file);
                        Some((format!("{stem}-{index}"), format!("{file}[{index}]"), task))
                    }
                    Err(e) => {
                        self.problem(format!("{key}.level"), e.to_string());
                        None
                    }
                }
            }
            (None, Some(_), None) => {
                self.problem(
                    format!("{key}.level"),
                    "`map` needs `level`, the index of the level in the file",
                );
                None
            }
            (None, None, Some(_)) => {
                self.problem(format!("{key}.map"), "`level` needs `map`, the level file");
                None
            }
            (None, None, None) => {
                self.problem(key, "needs `task = \"set/label\"` or `map` and `level`");
                None
            }
            (Some(_), _, _) => {
                self.problem(key, "give either `task` or `map` and `level`, not both");
                None
            }
        }
    }

    fn task_list(&mut self, key: &str, defs: &[TaskDef]) -> Vec<TaskEntry> {
        let mut entries = Vec::new();
        let mut labels = HashSet::new();
        for (i, def) in defs.iter().enumerate() {
            let item_key = format!("{key}[{i}]");
            let text = def
                .text
                .as_ref()
                .and_then(|t| self.text(&format!("{item_key}.text"), t));
            let Some((default_label, source, task)) = self.level(
                &item_key,
                def.task.as_deref(),
                def.map.as_deref(),
                def.level,
            ) else {
                continue;
            };
            let label = def.label.clone().unwrap_or(default_label);
            if !valid_label(&label) {
                self.problem(
                    format!("{item_key}.label"),
                    format!("`{label}` must be 1-64 letters, digits, `-` or `_`"),
                );
            }
            if !labels.insert(label.clone()) {
                self.problem(
                    format!("{item_key}.label"),
                    format!("the label `{label}` is used twice in `{key}`"),
                );
            }
            entries.push(TaskEntry {
                label,
                source,
                task,
                text,
            });
        }
        entries
    }

    fn screens(
        &mut self,
        key: &str,
        defs: &[ScreenDef],
        limits: &Limits,
        light: LightMode,
    ) -> Vec<Screen> {
        let mut screens = Vec::new();
        for (i, def) in defs.iter().enumerate() {
            let item_key = format!("{key}[{i}]");
            let text = self.text(&format!("{item_key}.text"), &def.text);
            let has_level = def.task.is_some() || def.map.is_some() || def.level.is_some();
            let level = if has_level {
                self.level(
                    &item_key,
                    def.task.as_deref(),
                    def.map.as_deref(),
                    def.level,
                )
                .map(|(default_label, source, task)| TaskEntry {
                    label: def.label.clone().unwrap_or(default_label),
                    source,
                    task,
                    text: None,
                })
            } else {
                if def.solve {
                    self.problem(
                        format!("{item_key}.solve"),
                        "a screen to solve needs a level (`task`, or `map` and `level`)",
                    );
                }
                if def.demo.is_some() {
                    self.problem(
                        format!("{item_key}.demo"),
                        "a demonstration needs a level (`task`, or `map` and `level`)",
                    );
                }
                None
            };
            let demo = match (&def.demo, &level) {
                (Some(program), Some(level)) => match dsl::parse_program(program, None, limits) {
                    Ok(program) => {
                        let outcome = dsl::run(
                            &level.task,
                            &program,
                            &dsl::RunOptions {
                                light,
                                ..Default::default()
                            },
                        );
                        if !outcome.solved && def.solve {
                            self.problem(format!("{item_key}.demo"), "the demonstration does not solve the level the participant must solve");
                        }
                        Some(program)
                    }
                    Err(e) => {
                        self.problem(
                            format!("{item_key}.demo"),
                            format!("the program does not parse: {e}"),
                        );
                        None
                    }
                },
                _ => None,
            };
            if let (Some(text), true) = (text, !has_level || level.is_some()) {
                screens.push(Screen {
                    text,
                    level,
                    demo,
                    solve: def.solve,
                });
            }
        }
        screens
    }

    fn order(&mut self, def: &definition::OrderDef, tasks: &[TaskEntry]) -> Option<Order> {
        let mode = def.mode.as_deref().unwrap_or("fixed");
        if def.seed.is_some() && mode != "shuffle" {
            self.problem(
                "order.seed",
                format!("a seed only applies to `mode = \"shuffle\"`, not `{mode}`"),
            );
        }
        if def.orders.is_some() && mode != "balanced" {
            self.problem(
                "order.orders",
                format!("orders only apply to `mode = \"balanced\"`, not `{mode}`"),
            );
        }
        match mode {
            "fixed" => Some(Order::Fixed),
            "shuffle" => Some(Order::Shuffle { seed: def.seed }),
            "balanced" => {
                let Some(orders) = &def.orders else {
                    return Some(Order::Balanced {
                        orders: order::balanced_latin_square(tasks.len()),
                    });
                };
                if orders.is_empty() {
                    self.problem("order.orders", "needs at least one order");
                    return None;
                }
                let mut resolved = Vec::new();
                for (i, labels) in orders.iter().enumerate() {
                    let mut indices = Vec::new();
                    for label in labels {
                        match tasks.iter().position(|t| &t.label == label) {
                            Some(index) => indices.push(index),
                            None => self.problem(
                                format!("order.orders[{i}]"),
                                format!("no task labelled `{label}`"),
                            ),
                        }
                    }
                    let mut sorted = indices.clone();
                    sorted.sort_unstable();
                    if sorted != (0..tasks.len()).collect::<Vec<_>>() {
                        self.problem(
                            format!("order.orders[{i}]"),
                            format!(
                                "must list each of the {} task labels exactly once",
                                tasks.len()
                            ),
                        );
                    }
                    resolved.push(indices);
                }
                Some(Order::Balanced { orders: resolved })
            }
            other => {
                self.problem(
                    "order.mode",
                    format!("`{other}` is not an order mode: use `fixed`, `shuffle` or `balanced`"),
                );
                None
            }
        }
    }

    fn questionnaire(&mut self, defs: &[ItemDef]) -> Vec<Item> {
        let mut items = Vec::new();
        let mut ids = HashSet::new();
        for (i, def) in defs.iter().enumerate() {
            let key = format!("questionnaire[{i}]");
            if !valid_label(&def.id) {
                self.problem(
                    format!("{key}.id"),
                    format!("`{}` must be 1-64 letters, digits, `-` or `_`", def.id),
                );
            }
            if !ids.insert(def.id.clone()) {
                self.problem(
                    format!("{key}.id"),
                    format!("the id `{}` is used twice", def.id),
                );
            }
            if def.prompt.trim().is_empty() {
                self.problem(format!("{key}.prompt"), "must not be empty");
            }
            let kind = match def.kind.as_str() {
                "choice" => {
                    if def.options.len() < 2 {
                        self.problem(
                            format!("{key}.options"),
                            "a choice needs at least two options",
                        );
                    }
                    let unique: HashSet<&String> = def.options.iter().collect();
                    if unique.len() != def.options.len() {
                        self.problem(format!("{key}.options"), "options must differ");
                    }
                    ItemKind::Choice {
                        options: def.options.clone(),
                    }
                }
                "text" => {
                    if !def.options.is_empty() {
                        self.problem(format!("{key}.options"), "a text item has no options");
                    }
                    ItemKind::Text
                }
                other => {
                    self.problem(
                        format!("{key}.kind"),
                        format!("`{other}` is not an item kind: use `choice` or `text`"),
                    );
                    continue;
                }
            };
            items.push(Item {
                id: def.id.clone(),
                prompt: def.prompt.trim().to_owned(),
                kind,
                required: def.required,
            });
        }
        items
    }

    fn completion(&mut self, def: &definition::CompletionDef) -> Option<Completion> {
        let code_ok = !def.code.is_empty()
            && def.code.len() <= 64
            && def
                .code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !code_ok {
            self.problem(
                "completion.code",
                "must be 1-64 letters, digits, `-` or `_`",
            );
        }
        if let Some(url) = &def.redirect_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                self.problem(
                    "completion.redirect_url",
                    format!("`{url}` must start with https:// or http://"),
                );
            }
            let mut rest = url.as_str();
            while let Some(open) = rest.find('[') {
                let after = &rest[open + 1..];
                match after.find(']') {
                    Some(close) if is_placeholder_name(&after[..close]) => {
                        rest = &after[close + 1..]
                    }
                    _ => {
                        self.problem(
                            "completion.redirect_url",
                            "a `[` must start a placeholder such as `[PROLIFIC_PID]`",
                        );
                        break;
                    }
                }
            }
        }
        let text = def
            .text
            .as_ref()
            .and_then(|t| self.text("completion.text", t));
        code_ok.then(|| Completion {
            code: def.code.clone(),
            redirect_url: def.redirect_url.clone(),
            text,
        })
    }

    fn bonus(&mut self, def: &definition::BonusDef) -> Option<Bonus> {
        let currency = def.currency.clone().unwrap_or_else(|| "USD".into());
        let rule = match def.rule.as_deref().unwrap_or("none") {
            "none" => BonusRule::None,
            "length_relative_to_shortest" => {
                let Some(per_task) = def.per_task else {
                    self.problem(
                        "bonus.per_task",
                        "the rule `length_relative_to_shortest` needs `per_task`",
                    );
                    return None;
                };
                if !(per_task.is_finite() && per_task >= 0.0) {
                    self.problem("bonus.per_task", "must be a non-negative amount");
                }
                if let Some(target) = def.target_mean_total
                    && !(target.is_finite() && target >= 0.0)
                {
                    self.problem("bonus.target_mean_total", "must be a non-negative amount");
                }
                BonusRule::LengthRelativeToShortest {
                    per_task,
                    target_mean_total: def.target_mean_total,
                }
            }
            other => {
                self.problem(
                    "bonus.rule",
                    format!(
                        "`{other}` is not a bonus rule: use `none` or `length_relative_to_shortest`"
                    ),
                );
                return None;
            }
        };
        Some(Bonus { rule, currency })
    }
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 64
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests;
