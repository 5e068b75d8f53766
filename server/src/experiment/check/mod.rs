//! `proglab experiment check` as a library: an experiment file validated (by the loader, its
//! problems located by line), and every level it uses reported on: whether it can be solved, the
//! shortest solution (breadth-first search over the robot's states under the experiment's light
//! mode), how many states are reachable, and its candidate programs (`analysis::enumerate`, the
//! analysis the study will need), stopped at a time or candidate limit. The researcher's level
//! editor calls [`check_level`] on the level being edited.

mod lines;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use dsl::{LightMode, State, Task};
use serde::Serialize;

use crate::experiment::definition::{Definition, ScreenDef, TaskDef};
use crate::experiment::{DiskFiles, Files};
use lines::{KeyLines, line_at};

/// How long the enumeration of one level may run by default.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(30);
/// How many candidate programs of one level are counted by default before stopping.
pub const DEFAULT_CANDIDATE_LIMIT: u64 = 2_000_000;
/// The breadth-first search stops after this many states (a level with many lights has up to
/// 2^lights times as many states as cells).
pub const MAX_STATES: usize = 2_000_000;

/// When the enumeration of one level stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckLimits {
    pub time: Duration,
    pub candidates: u64,
}

impl Default for CheckLimits {
    fn default() -> CheckLimits {
        CheckLimits {
            time: DEFAULT_TIME_LIMIT,
            candidates: DEFAULT_CANDIDATE_LIMIT,
        }
    }
}

/// What the check found about one level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelReport {
    pub width: usize,
    pub height: usize,
    pub lights: usize,
    /// `None` when the state search stopped at [`MAX_STATES`] before finding a solution.
    pub solvable: Option<bool>,
    /// The fewest actions that light every light.
    pub optimal_steps: Option<usize>,
    /// One shortest action sequence, in compact letters (`WWJS`).
    pub solution: Option<String>,
    /// States reachable from the start (the search does not go on from a solved state).
    pub reachable_states: usize,
    /// False when the search stopped at [`MAX_STATES`]: `reachable_states` is then a lower bound.
    pub states_complete: bool,
    pub enumeration: EnumerationReport,
}

/// How the enumeration of candidate programs went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnumerationReport {
    pub status: EnumerationStatus,
    /// Candidate programs counted (all of them when `status` is `complete`).
    pub candidates: u64,
    pub seconds: f64,
    /// Why the enumeration stopped or could not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnumerationStatus {
    Complete,
    /// Stopped at the time limit; `candidates` is a lower bound.
    TimeLimit,
    /// Stopped at the candidate limit; `candidates` is a lower bound.
    CandidateLimit,
    /// The enumerator refused the level (see `message`).
    Failed,
    /// Not run: the level cannot be solved, or has more than [`MAX_STATES`] states.
    Skipped,
}

/// Reports on one level: the state search under `light`, then the enumeration (which always uses
/// the analysis semantics, docs/modelling.md §4.1) within `limits`.
pub fn check_level(task: &Task, light: LightMode, limits: &CheckLimits) -> LevelReport {
    let search = search(task, light, MAX_STATES);
    let skipped = |message: String| EnumerationReport {
        status: EnumerationStatus::Skipped,
        candidates: 0,
        seconds: 0.0,
        message: Some(message),
    };
    let enumeration = if search.solvable == Some(false) {
        skipped("the level cannot be solved".into())
    } else if !search.complete {
        // The enumerator's own state graph would be as large, and its search as long.
        skipped(format!(
            "more than {MAX_STATES} reachable states: too many to enumerate"
        ))
    } else {
        enumerate(task, limits)
    };
    LevelReport {
        width: task.width,
        height: task.height,
        lights: task.n_lights,
        solvable: search.solvable,
        optimal_steps: search.solution.as_ref().map(String::len),
        solution: search.solution,
        reachable_states: search.states,
        states_complete: search.complete,
        enumeration,
    }
}

struct Search {
    solvable: Option<bool>,
    solution: Option<String>,
    states: usize,
    complete: bool,
}

/// Breadth-first search over the robot's states under `light`: the shortest solution, and then
/// every reachable state counted.
fn search(task: &Task, light: LightMode, max_states: usize) -> Search {
    let start = task.start_state();
    // Every state found, with the state and action it was first reached from (none for the start).
    let mut came_from: HashMap<State, Option<(State, char)>> = HashMap::from([(start, None)]);
    let mut queue = VecDeque::from([start]);
    let mut goal = None;
    let mut complete = true;
    while let Some(state) = queue.pop_front() {
        if task.is_terminal(&state) {
            continue;
        }
        for action in dsl::Action::ALL {
            let Some(next) = state.apply(task, action, light) else {
                continue;
            };
            if came_from.contains_key(&next) {
                continue;
            }
            if came_from.len() >= max_states {
                complete = false;
                queue.clear();
                break;
            }
            came_from.insert(next, Some((state, action.letter())));
            // Breadth first: the first solved state found is at the fewest actions.
            if goal.is_none() && task.is_terminal(&next) {
                goal = Some(next);
            }
            queue.push_back(next);
        }
    }
    let solution = goal.map(|goal| {
        let mut letters = Vec::new();
        let mut at = goal;
        while let Some(&Some((previous, letter))) = came_from.get(&at) {
            letters.push(letter);
            at = previous;
        }
        letters.iter().rev().collect::<String>()
    });
    Search {
        solvable: match (&solution, complete) {
            (Some(_), _) => Some(true),
            (None, true) => Some(false),
            (None, false) => None,
        },
        solution,
        states: came_from.len(),
        complete,
    }
}

/// Counts the candidate programs through the streaming iterator, so that it can stop at a limit.
fn enumerate(task: &Task, limits: &CheckLimits) -> EnumerationReport {
    let started = Instant::now();
    let report = |status, candidates, message: Option<String>| EnumerationReport {
        status,
        candidates,
        seconds: started.elapsed().as_secs_f64(),
        message,
    };
    let stream = match analysis::enumerate::candidates(task) {
        Ok(stream) => stream,
        Err(e) => return report(EnumerationStatus::Failed, 0, Some(e.to_string())),
    };
    let mut count = 0u64;
    for _ in stream {
        count += 1;
        if count >= limits.candidates {
            let message = format!("stopped at the candidate limit ({})", limits.candidates);
            return report(EnumerationStatus::CandidateLimit, count, Some(message));
        }
        if count & 0x3ff == 0 && started.elapsed() >= limits.time {
            let message = format!(
                "stopped at the time limit ({})",
                format_duration(limits.time)
            );
            return report(EnumerationStatus::TimeLimit, count, Some(message));
        }
    }
    report(EnumerationStatus::Complete, count, None)
}

/// `30s`, `1.5s`, `250ms`.
pub fn format_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

/// A problem of an experiment file, located as precisely as the file allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Located {
    pub file: String,
    /// 1-based line of the key in the TOML file, where it can be found.
    pub line: Option<usize>,
    /// The key (`tasks[2].level`); empty for the file as a whole.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// One level of the experiment, where it is used, and what the check found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelEntry {
    /// Where the experiment uses it: `tutorial[3]`, `tasks[1]`, `conditions[0].tasks[2]`.
    pub key: String,
    pub line: Option<usize>,
    pub label: String,
    /// `correa2025/c` or `levels/x.json[3]`.
    pub source: String,
    /// The light mode the level was searched under (a condition's own, or the experiment's).
    pub light: LightMode,
    #[serde(flatten)]
    pub report: LevelReport,
}

/// The report of `proglab experiment check`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileReport {
    pub file: String,
    pub slug: Option<String>,
    /// The experiment's light mode; `None` when the file's value is not one (the levels are then
    /// searched under `idempotent`).
    pub light: Option<LightMode>,
    pub time_limit_seconds: f64,
    pub candidate_limit: u64,
    pub levels: Vec<LevelEntry>,
    /// Everything that makes the file unusable: the loader's problems and unsolvable levels.
    pub problems: Vec<Located>,
    pub ok: bool,
}

/// Checks an experiment file and every level it uses. `progress` is told about each level before
/// its (possibly long) check.
pub fn check_file(path: &Path, limits: &CheckLimits, progress: &mut dyn FnMut(&str)) -> FileReport {
    let file = path.display().to_string();
    let mut report = FileReport {
        file: file.clone(),
        slug: None,
        light: None,
        time_limit_seconds: limits.time.as_secs_f64(),
        candidate_limit: limits.candidates,
        levels: Vec::new(),
        problems: Vec::new(),
        ok: false,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            report.problems.push(Located {
                file,
                line: None,
                key: String::new(),
                message: format!("cannot read the file: {e}"),
            });
            return report;
        }
    };
    let lines = KeyLines::new(&text);
    let definition = toml::from_str::<Definition>(&text);
    // A file that is not TOML (or not an experiment) has its position in the parser's error.
    let whole_file_line = definition
        .as_ref()
        .err()
        .and_then(|e| e.span())
        .map(|span| line_at(&text, span.start));
    if let Err(e) = crate::experiment::load_file(path) {
        for problem in e.problems {
            let line = if problem.key.is_empty() {
                whole_file_line
            } else {
                lines.line(&problem.key)
            };
            report.problems.push(Located {
                file: file.clone(),
                line,
                key: problem.key,
                message: problem.message,
            });
        }
    }
    let Ok(definition) = definition else {
        return report;
    };
    report.slug = Some(definition.slug.clone());
    report.light = light_mode(&definition.light);
    let files = DiskFiles {
        dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let mut checked: HashMap<(String, bool), LevelReport> = HashMap::new();
    for Use {
        key,
        label,
        address,
        light,
    } in levels_of(&definition)
    {
        // A level that does not load is among the loader's problems already.
        let Some((default_label, source, task)) = load_level(&address, &files) else {
            continue;
        };
        let light = match light {
            Some(name) => light_mode(name).unwrap_or_default(),
            None => report.light.unwrap_or_default(),
        };
        let level = checked
            .entry((source.clone(), light == LightMode::Toggle))
            .or_insert_with(|| {
                progress(&format!("{key}: {source}"));
                check_level(&task, light, limits)
            })
            .clone();
        let line = lines.line(&key);
        if level.solvable == Some(false) {
            report.problems.push(Located {
                file: file.clone(),
                line,
                key: key.clone(),
                message: format!(
                    "level `{source}` cannot be solved: no sequence of actions lights every light \
                     ({} states reachable from the start)",
                    level.reachable_states
                ),
            });
        }
        report.levels.push(LevelEntry {
            key,
            line,
            label: label.unwrap_or(default_label),
            source,
            light,
            report: level,
        });
    }
    report.ok = report.problems.is_empty();
    report
}

fn light_mode(name: &str) -> Option<LightMode> {
    match name {
        "toggle" => Some(LightMode::Toggle),
        "idempotent" => Some(LightMode::Idempotent),
        _ => None,
    }
}

/// Where a level comes from: a bundled task's address, or a level file and index.
enum Address {
    Bundled(String),
    File(String, usize),
}

/// A level where the experiment uses it: its key, its label, where it comes from, and the light
/// mode of a condition that sets its own.
struct Use<'a> {
    key: String,
    label: Option<String>,
    address: Address,
    light: Option<&'a str>,
}

/// Every level the experiment uses, in the order a session shows them (tutorial, practice,
/// instructions, tasks), then those each between-subject condition uses instead.
fn levels_of(definition: &Definition) -> Vec<Use<'_>> {
    let d = definition;
    let mut out = Vec::new();
    let screen = |s: &'_ ScreenDef| (s.label.clone(), s.task.clone(), s.map.clone(), s.level);
    let task = |t: &'_ TaskDef| (t.label.clone(), t.task.clone(), t.map.clone(), t.level);
    push(&mut out, "tutorial", None, d.tutorial.iter().map(screen));
    push(&mut out, "practice", None, d.practice.iter().map(task));
    push(
        &mut out,
        "instructions",
        None,
        d.instructions.iter().map(screen),
    );
    push(&mut out, "tasks", None, d.tasks.iter().map(task));
    for (c, condition) in d.conditions.iter().enumerate() {
        let light = condition.light.as_deref();
        if let Some(screens) = &condition.instructions {
            let key = format!("conditions[{c}].instructions");
            push(&mut out, &key, light, screens.iter().map(screen));
        }
        if let Some(tasks) = &condition.tasks {
            let key = format!("conditions[{c}].tasks");
            push(&mut out, &key, light, tasks.iter().map(task));
        }
    }
    out
}

type Entry = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<usize>,
);

/// Adds the entries (label, task, map, level) of `list` that name a level.
fn push<'a>(
    out: &mut Vec<Use<'a>>,
    list: &str,
    light: Option<&'a str>,
    entries: impl Iterator<Item = Entry>,
) {
    for (i, (label, task, map, level)) in entries.enumerate() {
        let address = match (task, map, level) {
            (Some(task), None, None) => Address::Bundled(task),
            (None, Some(map), Some(level)) => Address::File(map, level),
            _ => continue,
        };
        let key = format!("{list}[{i}]");
        out.push(Use {
            key,
            label,
            address,
            light,
        });
    }
}

/// The level's default label, its source and the task, as the loader reads them.
fn load_level(address: &Address, files: &DiskFiles) -> Option<(String, String, Task)> {
    match address {
        Address::Bundled(address) => {
            let named = dsl::tasks::lookup(address)?;
            Some((named.label.clone(), address.clone(), named.task.clone()))
        }
        Address::File(map, index) => {
            let json = files.read(map).ok()?;
            let task = Task::from_level_file(&json, map, *index).ok()?;
            let stem = Path::new(map)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or(map);
            Some((format!("{stem}-{index}"), format!("{map}[{index}]"), task))
        }
    }
}

#[cfg(test)]
mod tests;
