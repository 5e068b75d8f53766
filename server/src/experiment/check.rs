//! `proglab experiment check` as a library: an experiment file validated (by the loader, its
//! problems located by line), and every level it uses reported on: whether it can be solved, the
//! shortest solution (breadth-first search over the robot's states under the experiment's light
//! mode), how many states are reachable, and its candidate programs (`analysis::enumerate`, the
//! analysis the study will need), stopped at a time or candidate limit. The researcher's level
//! editor calls [`check_level`] on the level being edited.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use dsl::{LightMode, State, Task};
use serde::Serialize;

use crate::experiment::definition::Definition;
use crate::experiment::{DiskFiles, Files};

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
    /// Not run: the level cannot be solved.
    Skipped,
}

/// Reports on one level: the state search under `light`, then the enumeration (which always uses
/// the analysis semantics, docs/modelling.md §4.1) within `limits`.
pub fn check_level(task: &Task, light: LightMode, limits: &CheckLimits) -> LevelReport {
    let search = search(task, light);
    let enumeration = if search.solvable == Some(false) {
        EnumerationReport {
            status: EnumerationStatus::Skipped,
            candidates: 0,
            seconds: 0.0,
            message: Some("the level cannot be solved".into()),
        }
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
fn search(task: &Task, light: LightMode) -> Search {
    let start = task.start_state();
    let mut came_from: HashMap<State, (State, char)> = HashMap::new();
    let mut seen: HashSet<State> = HashSet::from([start]);
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
            if seen.contains(&next) {
                continue;
            }
            if seen.len() >= MAX_STATES {
                complete = false;
                queue.clear();
                break;
            }
            seen.insert(next);
            came_from.insert(next, (state, action.letter()));
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
        while let Some(&(previous, letter)) = came_from.get(&at) {
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
        states: seen.len(),
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
    /// Where the experiment uses it: `tutorial[3]`, `practice[0]`, `tasks[1]`.
    pub key: String,
    pub line: Option<usize>,
    pub label: String,
    /// `correa2025/c` or `levels/x.json[3]`.
    pub source: String,
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
    report.light = match definition.light.as_str() {
        "toggle" => Some(LightMode::Toggle),
        "idempotent" => Some(LightMode::Idempotent),
        _ => None,
    };
    let files = DiskFiles {
        dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let light = report.light.unwrap_or_default();
    let mut checked: HashMap<String, LevelReport> = HashMap::new();
    for (key, label, address) in levels_of(&definition) {
        // A level that does not load is among the loader's problems already.
        let Some((default_label, source, task)) = load_level(&address, &files) else {
            continue;
        };
        let level = match checked.get(&source) {
            Some(level) => level.clone(),
            None => {
                progress(&format!("{key}: {source}"));
                let level = check_level(&task, light, limits);
                checked.insert(source.clone(), level.clone());
                level
            }
        };
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
            report: level,
        });
    }
    report.ok = report.problems.is_empty();
    report
}

/// Where a level comes from: a bundled task's address, or a level file and index.
enum Address {
    Bundled(String),
    File(String, usize),
}

/// Every level the experiment uses, in the order a session shows them: (key, label, address).
fn levels_of(definition: &Definition) -> Vec<(String, Option<String>, Address)> {
    let address = |task: &Option<String>, map: &Option<String>, level: Option<usize>| match (
        task, map, level,
    ) {
        (Some(task), None, None) => Some(Address::Bundled(task.clone())),
        (None, Some(map), Some(level)) => Some(Address::File(map.clone(), level)),
        _ => None,
    };
    let mut out = Vec::new();
    for (list, screens) in [
        ("tutorial", &definition.tutorial),
        ("instructions", &definition.instructions),
    ] {
        for (i, screen) in screens.iter().enumerate() {
            if let Some(found) = address(&screen.task, &screen.map, screen.level) {
                out.push((format!("{list}[{i}]"), screen.label.clone(), found));
            }
        }
    }
    for (list, tasks) in [
        ("practice", &definition.practice),
        ("tasks", &definition.tasks),
    ] {
        for (i, task) in tasks.iter().enumerate() {
            if let Some(found) = address(&task.task, &task.map, task.level) {
                out.push((format!("{list}[{i}]"), task.label.clone(), found));
            }
        }
    }
    // In the order a session shows them: tutorial, practice, instructions, tasks.
    let rank = |key: &str| {
        ["tutorial", "practice", "instructions", "tasks"]
            .iter()
            .position(|list| key.starts_with(&format!("{list}[")))
            .unwrap_or(4)
    };
    out.sort_by_key(|(key, _, _)| rank(key));
    out
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

/// The 1-based line of byte `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Lines of the keys of a TOML document, from the parser's spans.
struct KeyLines<'a> {
    text: &'a str,
    root: Option<toml::de::DeTable<'a>>,
}

impl<'a> KeyLines<'a> {
    fn new(text: &'a str) -> KeyLines<'a> {
        KeyLines {
            text,
            root: toml::de::DeTable::parse(text)
                .ok()
                .map(toml::Spanned::into_inner),
        }
    }

    /// The line of `key` (`tasks[2].level`, `consent.text.file`), or of the nearest enclosing key
    /// the file has (a missing `level` is reported at its `[[tasks]]` table).
    fn line(&self, key: &str) -> Option<usize> {
        let mut table = self.root.as_ref()?;
        let mut found = None;
        for segment in key.split('.') {
            let (name, indices) = split_indices(segment);
            let Some((k, mut value)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == name)
            else {
                break;
            };
            found = Some(k.span().start);
            for index in indices {
                let toml::de::DeValue::Array(array) = value.get_ref() else {
                    break;
                };
                let Some(element) = array.get(index) else {
                    break;
                };
                value = element;
                found = Some(element.span().start);
            }
            match value.get_ref() {
                toml::de::DeValue::Table(inner) => table = inner,
                _ => break,
            }
        }
        found.map(|offset| line_at(self.text, offset))
    }
}

/// `tasks[2][1]` as (`tasks`, [2, 1]).
fn split_indices(segment: &str) -> (&str, Vec<usize>) {
    let name_end = segment.find('[').unwrap_or(segment.len());
    let indices = segment[name_end..]
        .split(['[', ']'])
        .filter_map(|part| part.parse().ok())
        .collect();
    (&segment[..name_end], indices)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(json: &str) -> Task {
        Task::from_level_file(json, "test.json", 0).unwrap()
    }

    #[test]
    fn a_row_is_solved_by_walking_to_the_light() {
        let task = level(
            r#"[{"direction":1,"position":{"x":0,"y":0},"map":[[{"h":1,"t":"b"},{"h":1,"t":"b"},{"h":1,"t":"l"}]]}]"#,
        );
        let report = check_level(&task, LightMode::Toggle, &CheckLimits::default());
        assert_eq!(report.solvable, Some(true));
        assert_eq!(report.solution.as_deref(), Some("WWS"));
        assert_eq!(report.optimal_steps, Some(3));
        // Three cells and four headings with the light off, and the light on under each heading.
        assert_eq!(report.reachable_states, 16);
        assert!(report.states_complete);
    }

    #[test]
    fn a_light_out_of_reach_is_unsolvable_and_not_enumerated() {
        let task = level(
            r#"[{"direction":1,"position":{"x":0,"y":0},"map":[[{"h":1,"t":"b"},{"h":3,"t":"l"}]]}]"#,
        );
        let report = check_level(&task, LightMode::Idempotent, &CheckLimits::default());
        assert_eq!(report.solvable, Some(false));
        assert_eq!(report.optimal_steps, None);
        assert_eq!(report.enumeration.status, EnumerationStatus::Skipped);
    }

    #[test]
    fn the_enumeration_stops_at_the_candidate_limit() {
        let task = dsl::tasks::lookup("correa2025/a").unwrap().task.clone();
        let limits = CheckLimits {
            time: Duration::from_secs(60),
            candidates: 500,
        };
        let report = check_level(&task, LightMode::Toggle, &limits);
        assert_eq!(report.enumeration.status, EnumerationStatus::CandidateLimit);
        assert_eq!(report.enumeration.candidates, 500);
    }

    #[test]
    fn keys_are_found_on_their_lines() {
        let text = "slug = \"x\"\nlight = \"blink\"\n\n[consent]\ntext = { file = \"c.md\" }\n\n[[tasks]]\nmap = \"l.json\"\n\n[[tasks]]\nmap = \"l.json\"\nlevel = 1\n";
        let lines = KeyLines::new(text);
        assert_eq!(lines.line("light"), Some(2));
        assert_eq!(lines.line("consent.text.file"), Some(5));
        assert_eq!(lines.line("tasks[1].level"), Some(12));
        assert_eq!(lines.line("tasks[0].map"), Some(8));
        // A missing key is placed at what encloses it.
        let missing = lines.line("tasks[0].level").unwrap();
        assert!((7..=8).contains(&missing), "{missing}");
        assert_eq!(lines.line("nothing"), None);
    }
}
