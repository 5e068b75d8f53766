//! Bundled task sets, built into the binary from the level files in `dsl/data/`.
//!
//! `correa2025` is the reference study's task set (docs/semantics.md §2): tasks `a`..`j` in study
//! order and the practice level. The level files are from Correa et al. (2025), MIT licence
//! (`dsl/data/`).

use std::sync::OnceLock;

use serde::Serialize;

use crate::map::{Task, parse_level_file};

pub const MAPS_JSON: &str = include_str!("../data/maps.json");
pub const CGC_MAPS_JSON: &str = include_str!("../data/cgc-maps.json");

/// A task with its label within a set.
#[derive(Debug, Clone, Serialize)]
pub struct NamedTask {
    pub label: String,
    pub task: Task,
}

/// A named list of tasks plus practice levels.
#[derive(Debug, Clone, Serialize)]
pub struct TaskSet {
    pub name: String,
    /// In study order: index = `mdp_idx`.
    pub tasks: Vec<NamedTask>,
    pub practice: Vec<NamedTask>,
}

impl TaskSet {
    /// A task or practice level by label.
    pub fn get(&self, label: &str) -> Option<&NamedTask> {
        self.tasks
            .iter()
            .chain(&self.practice)
            .find(|t| t.label == label)
    }
}

/// Which level file and index each `correa2025` task comes from (docs/semantics.md §2.3).
pub const CORREA2025_SOURCES: [(&str, &str, usize); 11] = [
    ("a", "cgc-maps.json", 14),
    ("b", "cgc-maps.json", 3),
    ("c", "maps.json", 8),
    ("d", "cgc-maps.json", 15),
    ("e", "maps.json", 7),
    ("f", "cgc-maps.json", 8),
    ("g", "cgc-maps.json", 9),
    ("h", "cgc-maps.json", 12),
    ("i", "cgc-maps.json", 11),
    ("j", "maps.json", 6),
    ("practice", "maps.json", 1),
];

/// The embedded level file of that name.
pub fn bundled_level_file(name: &str) -> Option<&'static str> {
    match name {
        "maps.json" => Some(MAPS_JSON),
        "cgc-maps.json" => Some(CGC_MAPS_JSON),
        _ => None,
    }
}

/// The reference study's task set.
pub fn correa2025() -> &'static TaskSet {
    static SET: OnceLock<TaskSet> = OnceLock::new();
    SET.get_or_init(|| {
        // The embedded files are fixed at build time and a test parses every level, so failing
        // here is a build defect, not bad input.
        let maps = parse_level_file(MAPS_JSON, "maps.json").expect("bundled maps.json parses");
        let cgc =
            parse_level_file(CGC_MAPS_JSON, "cgc-maps.json").expect("bundled cgc-maps.json parses");
        let mut set = TaskSet {
            name: "correa2025".into(),
            tasks: Vec::new(),
            practice: Vec::new(),
        };
        for (label, file, index) in CORREA2025_SOURCES {
            let levels = if file == "maps.json" { &maps } else { &cgc };
            let named = NamedTask {
                label: label.to_owned(),
                task: levels[index].clone(),
            };
            if label == "practice" {
                set.practice.push(named)
            } else {
                set.tasks.push(named)
            }
        }
        set
    })
}

/// Every bundled task set.
pub fn bundled_sets() -> Vec<&'static TaskSet> {
    vec![correa2025()]
}

/// Looks up `set/label`, for example `correa2025/c` or `correa2025/practice`.
pub fn lookup(address: &str) -> Option<&'static NamedTask> {
    let (set, label) = address.split_once('/')?;
    bundled_sets()
        .into_iter()
        .find(|s| s.name == set)?
        .get(label)
}
