//! Validation of the levels an experiment shows: practice and main task lists, and the tutorial
//! and instruction screens with their optional level, demonstration and solve requirement.

use std::collections::HashSet;
use std::path::Path;

use dsl::{Action, Instr, LightMode, Limits, Program, Task};

use crate::experiment::definition::{ScreenDef, TaskDef};
use crate::experiment::resolve::{Resolver, valid_label};
use crate::experiment::{Screen, TaskEntry};

impl Resolver<'_> {
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

    pub(super) fn task_list(&mut self, key: &str, defs: &[TaskDef]) -> Vec<TaskEntry> {
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

    pub(super) fn screens(
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
            let palette = match &def.palette {
                Some(names) => self.palette(&format!("{item_key}.palette"), names, limits),
                // A tutorial screen without a palette offers every primitive and one process.
                None if key == "tutorial" => Some(
                    Action::ALL
                        .iter()
                        .map(|a| a.letter())
                        .chain((limits.subroutines >= 1).then_some('1'))
                        .collect(),
                ),
                None => None,
            };
            if def.solve && palette.as_ref().is_some_and(Vec::is_empty) {
                self.problem(
                    format!("{item_key}.palette"),
                    "a screen to solve needs at least one instruction in its palette",
                );
            }
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
                        if let (Some(palette), Some(_)) = (&palette, &def.palette) {
                            let missing = instructions_outside(&program, palette);
                            if !missing.is_empty() {
                                self.problem(
                                    format!("{item_key}.demo"),
                                    format!(
                                        "the demonstration uses {}, which the screen's palette does not offer",
                                        missing.join(", ")
                                    ),
                                );
                            }
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
                    palette,
                });
            }
        }
        screens
    }
}

impl Resolver<'_> {
    /// Reads a screen's `palette`: instruction names in any order, each once, with processes
    /// `P1` to `Pk` without gaps; returns their compact letters in palette order.
    fn palette(&mut self, key: &str, names: &[String], limits: &Limits) -> Option<Vec<char>> {
        let mut letters: Vec<char> = Vec::new();
        let mut ok = true;
        for (i, name) in names.iter().enumerate() {
            let word = name.trim().to_ascii_lowercase();
            let letter = match Action::ALL.iter().find(|a| a.word() == word) {
                Some(action) => Some(action.letter()),
                None => match word.strip_prefix('p').and_then(|k| k.parse::<usize>().ok()) {
                    Some(k) if (1..=limits.subroutines).contains(&k) => {
                        char::from_digit(k as u32, 10)
                    }
                    Some(k) => {
                        self.problem(
                            format!("{key}[{i}]"),
                            format!(
                                "`{name}`: the experiment has {} processes (`subroutines`), so there is no P{k}",
                                limits.subroutines
                            ),
                        );
                        ok = false;
                        continue;
                    }
                    None => None,
                },
            };
            let Some(letter) = letter else {
                self.problem(
                    format!("{key}[{i}]"),
                    format!(
                        "`{name}` is not an instruction: use walk, jump, left, right, light or P1 to P{}",
                        limits.subroutines.max(1)
                    ),
                );
                ok = false;
                continue;
            };
            if letters.contains(&letter) {
                self.problem(format!("{key}[{i}]"), format!("`{name}` is listed twice"));
                ok = false;
                continue;
            }
            letters.push(letter);
        }
        let processes: Vec<u32> = letters.iter().filter_map(|c| c.to_digit(10)).collect();
        if let Some(&highest) = processes.iter().max()
            && processes.len() != highest as usize
        {
            self.problem(
                key,
                format!(
                    "processes must be P1 to Pk without gaps: P{highest} needs P1 to P{}",
                    highest - 1
                ),
            );
            ok = false;
        }
        let order = |c: &char| match Action::from_letter(*c) {
            Some(action) => Action::ALL.iter().position(|a| *a == action).unwrap_or(0),
            None => 5 + c.to_digit(10).unwrap_or(0) as usize,
        };
        letters.sort_by_key(order);
        ok.then_some(letters)
    }
}

/// The instructions of `program` that `palette` does not offer, by name, each once.
fn instructions_outside(program: &Program, palette: &[char]) -> Vec<String> {
    let mut missing: Vec<String> = Vec::new();
    for instr in program.routines.iter().flatten() {
        if palette.contains(&instr.letter()) {
            continue;
        }
        let name = match instr {
            Instr::Act(action) => format!("`{}`", action.word()),
            Instr::Call(k) => format!("`P{k}`"),
        };
        if !missing.contains(&name) {
            missing.push(name);
        }
    }
    missing
}
