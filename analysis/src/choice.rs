//! Choice sets and observations (docs/modelling.md §4.4).
//!
//! For each task the choice set U_t is the enumerated candidate programs (kept only as a
//! histogram over [`StatKey`], since every score depends on a program through its key) plus every
//! distinct participant program the enumeration lacks, added once each with its own key. The
//! observations are the participants' programs of non-skipped trials, each pointing at its key in
//! U_t and remembering its participant for cross-validation. [`ChoiceSets::split`] builds the
//! sets of a held-out evaluation, which leave out the programs only held-out observations chose
//! (docs/modelling.md §4.9).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use dsl::{Limits, Program, Task};

use crate::data::{ProgramRow, RowError};
use crate::error::AnalysisError;
use crate::key::StatKey;

/// How participants' programs are read from a `programs.csv`-format file.
#[derive(Debug, Clone, Copy)]
pub struct ObserveOptions {
    /// Use canonical programs: the `preprocessed_program` column, or `program` canonicalised
    /// with `dsl::canon` when that column is empty. When false, the raw `program` column is used.
    pub canonicalise: bool,
    /// Program shape limits used to parse programs.
    pub limits: Limits,
}

impl Default for ObserveOptions {
    fn default() -> ObserveOptions {
        ObserveOptions {
            canonicalise: true,
            limits: Limits::default(),
        }
    }
}

/// One usable trial: a participant's program for a task.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedProgram {
    /// Line in the source file.
    pub line: u64,
    pub participant: u32,
    /// Task index (`mdp_idx`).
    pub task: usize,
    /// Where the participant saw the task ([`ProgramRow::position`]).
    pub order_position: usize,
    pub program: Program,
    /// The compact form of `program`; programs are identified by it.
    pub text: String,
    /// Sufficient statistics, with S from `dsl::metrics::step_cost`.
    pub key: StatKey,
}

/// Reads the observations of non-skipped rows. Rows that name no task, do not parse, cannot be
/// canonicalised or do not solve their task are returned as errors, not observations.
pub fn observed_programs(
    rows: &[(u64, ProgramRow)],
    tasks: &[&Task],
    options: &ObserveOptions,
) -> (Vec<ObservedProgram>, Vec<RowError>) {
    let mut observed = Vec::new();
    let mut errors = Vec::new();
    for (line, row) in rows {
        if row.skipped {
            continue;
        }
        match observe_row(row, tasks, options) {
            Ok((program, key)) => observed.push(ObservedProgram {
                line: *line,
                participant: row.participant_idx,
                task: row.mdp_idx,
                order_position: row.position(),
                text: program.to_compact(),
                program,
                key,
            }),
            Err(message) => errors.push(RowError {
                line: *line,
                message,
            }),
        }
    }
    (observed, errors)
}

fn observe_row(
    row: &ProgramRow,
    tasks: &[&Task],
    options: &ObserveOptions,
) -> Result<(Program, StatKey), String> {
    let task = tasks.get(row.mdp_idx).ok_or_else(|| {
        format!(
            "mdp_idx {} names no task (the experiment has {})",
            row.mdp_idx,
            tasks.len()
        )
    })?;
    let parse = |text: &str, column: &str| {
        dsl::compact::parse(text.trim(), &options.limits)
            .map(|p| p.with_slots(options.limits.subroutines))
            .map_err(|e| format!("`{column}` does not parse: {e}"))
    };
    let program = if !options.canonicalise {
        parse(&row.program, "program")?
    } else if !row.preprocessed_program.trim().is_empty() {
        parse(&row.preprocessed_program, "preprocessed_program")?
    } else {
        let raw = parse(&row.program, "program")?;
        dsl::canon::canonicalise(task, &raw, &dsl::canon::CanonOptions::default())
            .map_err(|e| format!("cannot canonicalise `{}`: {e}", row.program.trim()))?
            .with_slots(options.limits.subroutines)
    };
    if program.routines.iter().all(Vec::is_empty) {
        return Err("the program is empty".into());
    }
    let s = dsl::metrics::step_cost(task, &program)
        .map_err(|e| format!("`{}` has no step cost: {e}", program.to_compact()))?;
    Ok((program.clone(), StatKey::new(&program, s)))
}

/// What the enumeration of one task contributes to its choice set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskCandidates {
    /// Number of enumerated programs.
    pub programs: u64,
    /// Enumerated programs counted by key.
    pub histogram: Vec<(StatKey, u64)>,
    /// For each query program, whether it is among the enumerated programs.
    pub found: Vec<bool>,
}

impl From<crate::enumerate::Enumeration> for TaskCandidates {
    fn from(enumeration: crate::enumerate::Enumeration) -> TaskCandidates {
        TaskCandidates {
            programs: enumeration.programs,
            histogram: enumeration.histogram,
            found: enumeration.found,
        }
    }
}

/// The enumerated candidates of `task` (docs/modelling.md §4.1-4.3), asking about `queries`.
pub fn enumerated_candidates(
    task: &Task,
    queries: &[Program],
) -> Result<TaskCandidates, AnalysisError> {
    crate::enumerate::enumerate_task(task, queries).map(TaskCandidates::from)
}

/// One participant choice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    pub participant: u32,
    /// Compact form of the chosen program.
    pub program: String,
    /// Index of the program's key in its task's choice set.
    pub key: usize,
    /// Whether the program is among the enumerated candidates.
    pub in_enumeration: bool,
}

/// The choice set and observations of one task.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskChoiceSet {
    pub label: String,
    /// Distinct keys of U_t.
    pub keys: Vec<StatKey>,
    /// Programs of U_t with each key.
    pub multiplicity: Vec<u64>,
    /// Enumerated programs.
    pub enumerated: u64,
    /// Participant programs added because the enumeration lacks them.
    pub added: u64,
    pub observations: Vec<Observation>,
    /// Every participant program counted in U_t beyond the enumeration's histogram (those it
    /// lacks, and found ones whose key the histogram lacks), with the index of its key: what a
    /// held-out evaluation may leave out (docs/modelling.md §4.9).
    pub added_programs: Vec<(String, usize)>,
}

/// Coverage of one task's observations by its enumeration (docs/modelling.md §4.3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coverage {
    pub task: String,
    pub observations: usize,
    pub observations_in_enumeration: usize,
    pub unique_programs: usize,
    pub unique_in_enumeration: usize,
    pub enumerated_programs: u64,
    /// |U_t| = enumerated programs + added participant programs.
    pub choice_set_size: u64,
    pub distinct_keys: usize,
}

impl TaskChoiceSet {
    /// Builds a choice set from an enumeration and the distinct participant programs `unique`
    /// (with `candidates.found` answering for them, in order) and the observations, each given
    /// by its index into `unique` and its participant.
    pub fn new(
        label: &str,
        candidates: &TaskCandidates,
        unique: &[(String, StatKey)],
        choices: &[(u32, usize)],
    ) -> Result<TaskChoiceSet, AnalysisError> {
        if candidates.found.len() != unique.len() {
            return Err(AnalysisError::QueryCount {
                task: label.to_owned(),
                answered: candidates.found.len(),
                asked: unique.len(),
            });
        }
        let mut counts: BTreeMap<StatKey, u64> = BTreeMap::new();
        for &(key, count) in &candidates.histogram {
            *counts.entry(key).or_default() += count;
        }
        counts.retain(|_, &mut c| c > 0);
        let mut added = 0;
        let mut added_keys: Vec<(&str, StatKey)> = Vec::new();
        for ((text, key), &found) in unique.iter().zip(&candidates.found) {
            // A found program is already counted in the histogram; its key is there too unless
            // the two disagree about its statistics, in which case it still must be choosable.
            // Membership is judged against the enumeration's histogram alone, so every program
            // outside it is counted once, whichever order the programs come in.
            if !found || !counts.contains_key(key) {
                added_keys.push((text.as_str(), *key));
                added += u64::from(!found);
            }
        }
        for (_, key) in &added_keys {
            *counts.entry(*key).or_default() += 1;
        }
        let counts: Vec<(StatKey, u64)> = counts.into_iter().collect();
        let index: HashMap<StatKey, usize> = counts
            .iter()
            .enumerate()
            .map(|(i, &(key, _))| (key, i))
            .collect();
        let mut observations = Vec::with_capacity(choices.len());
        for &(participant, program) in choices {
            let (text, key) = unique
                .get(program)
                .ok_or_else(|| AnalysisError::UnknownProgram {
                    task: label.to_owned(),
                    program,
                })?;
            observations.push(Observation {
                participant,
                program: text.clone(),
                key: index[key],
                in_enumeration: candidates.found[program],
            });
        }
        Ok(TaskChoiceSet {
            label: label.to_owned(),
            keys: counts.iter().map(|&(key, _)| key).collect(),
            multiplicity: counts.iter().map(|&(_, c)| c).collect(),
            enumerated: candidates.programs,
            added,
            observations,
            added_programs: added_keys
                .into_iter()
                .map(|(text, key)| (text.to_owned(), index[&key]))
                .collect(),
        })
    }

    pub fn coverage(&self) -> Coverage {
        let mut unique: HashMap<&str, bool> = HashMap::new();
        for obs in &self.observations {
            unique.insert(&obs.program, obs.in_enumeration);
        }
        Coverage {
            task: self.label.clone(),
            observations: self.observations.len(),
            observations_in_enumeration: self
                .observations
                .iter()
                .filter(|o| o.in_enumeration)
                .count(),
            unique_programs: unique.len(),
            unique_in_enumeration: unique.values().filter(|&&found| found).count(),
            enumerated_programs: self.enumerated,
            choice_set_size: self.multiplicity.iter().sum(),
            distinct_keys: self.keys.len(),
        }
    }
}

/// The choice sets of all tasks of an experiment, in task order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChoiceSets {
    pub tasks: Vec<TaskChoiceSet>,
}

impl ChoiceSets {
    /// Builds every task's choice set. `candidates(task_index, queries)` enumerates one task
    /// and says which of the distinct participant programs `queries` it contains; it is not
    /// called for tasks without observations (their choice sets stay empty and add nothing to
    /// any likelihood). `progress` is told each task index when its choice set is done.
    pub fn build(
        labels: &[String],
        observed: &[ObservedProgram],
        mut candidates: impl FnMut(usize, &[Program]) -> Result<TaskCandidates, AnalysisError>,
        progress: &dyn Fn(usize),
    ) -> Result<ChoiceSets, AnalysisError> {
        let mut tasks = Vec::with_capacity(labels.len());
        for (index, label) in labels.iter().enumerate() {
            let mut unique: Vec<(String, StatKey)> = Vec::new();
            let mut programs: Vec<Program> = Vec::new();
            let mut position: HashMap<&str, usize> = HashMap::new();
            let mut choices = Vec::new();
            for obs in observed.iter().filter(|o| o.task == index) {
                let next = unique.len();
                let program = *position.entry(&obs.text).or_insert_with(|| {
                    unique.push((obs.text.clone(), obs.key));
                    programs.push(obs.program.clone());
                    next
                });
                choices.push((obs.participant, program));
            }
            let task = if choices.is_empty() {
                TaskChoiceSet {
                    label: label.clone(),
                    ..TaskChoiceSet::default()
                }
            } else {
                let found = candidates(index, &programs)?;
                TaskChoiceSet::new(label, &found, &unique, &choices)?
            };
            tasks.push(task);
            progress(index);
        }
        if let Some(beyond) = observed.iter().find(|o| o.task >= labels.len()) {
            return Err(AnalysisError::UnknownTask {
                task: beyond.task,
                tasks: labels.len(),
            });
        }
        Ok(ChoiceSets { tasks })
    }

    /// Number of observations over all tasks.
    pub fn n_observations(&self) -> usize {
        self.tasks.iter().map(|t| t.observations.len()).sum()
    }

    /// The distinct participants, sorted.
    pub fn participants(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .tasks
            .iter()
            .flat_map(|t| t.observations.iter().map(|o| o.participant))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    pub fn coverage(&self) -> Vec<Coverage> {
        self.tasks.iter().map(TaskChoiceSet::coverage).collect()
    }
}

/// Which programs the choice sets of a held-out evaluation contain (docs/modelling.md §4.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetRule {
    /// U_t of the full fit: every participant's program, held-out participants' included.
    Full,
    /// The enumeration plus the programs of the training observations; each held-out
    /// observation is scored in that set with its own program added when it is not there.
    Training,
}

impl SetRule {
    /// The rule in words, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            SetRule::Full => {
                "full-fit sets: enumeration + every participant's program, held-out ones included"
            }
            SetRule::Training => {
                "enumeration + training participants' programs; each held-out program added to its own set"
            }
        }
    }
}

/// A held-out observation with what scoring it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldOutObservation {
    /// Task index.
    pub task: usize,
    pub participant: u32,
    /// Compact form of the chosen program.
    pub program: String,
    /// The program's key.
    pub key: StatKey,
    /// Whether the program is already in its task's training set; otherwise its normaliser
    /// gets the program once more.
    pub in_set: bool,
}

/// The observations split into training and held-out ones, with the choice sets of both.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The choice sets the models are fitted in, holding only the training observations (keys
    /// without programs are dropped and the observations' key indices renumbered).
    pub train: ChoiceSets,
    /// The held-out observations, task by task, in observation order within a task; each is
    /// scored in `train`'s set of its task (plus its own program where `in_set` is false).
    pub held_out: Vec<HeldOutObservation>,
}

impl ChoiceSets {
    /// Splits the observations into training ones (`training(task, observation)`) and held-out
    /// ones, building the sets under `rule`: for [`SetRule::Training`] every added program
    /// (see [`TaskChoiceSet::added_programs`]) that no training observation chose is taken out of
    /// its task's set, so nothing about held-out observations shapes the sets.
    pub fn split(
        &self,
        rule: SetRule,
        training: impl Fn(usize, &Observation) -> bool,
    ) -> Result<Split, AnalysisError> {
        let mut tasks = Vec::with_capacity(self.tasks.len());
        let mut held_out = Vec::new();
        for (t, task) in self.tasks.iter().enumerate() {
            let chosen: HashSet<&str> = task
                .observations
                .iter()
                .filter(|o| training(t, o))
                .map(|o| o.program.as_str())
                .collect();
            let added: HashMap<&str, usize> = task
                .added_programs
                .iter()
                .map(|(text, key)| (text.as_str(), *key))
                .collect();
            let mut multiplicity = task.multiplicity.clone();
            let mut kept_added = Vec::new();
            for (text, key) in &task.added_programs {
                if rule == SetRule::Full || chosen.contains(text.as_str()) {
                    kept_added.push((text.as_str(), *key));
                } else if let Some(m) = multiplicity.get_mut(*key) {
                    *m = m.saturating_sub(1);
                }
            }
            let mut renumber = vec![None; multiplicity.len()];
            let mut keys = Vec::new();
            let mut kept = Vec::new();
            for (i, (&key, &m)) in task.keys.iter().zip(&multiplicity).enumerate() {
                if m > 0 {
                    renumber[i] = Some(keys.len());
                    keys.push(key);
                    kept.push(m);
                }
            }
            let not_in_set = |obs: &Observation| AnalysisError::NotInChoiceSet {
                task: task.label.clone(),
                program: obs.program.clone(),
            };
            let mut observations = Vec::new();
            for obs in &task.observations {
                let index = renumber.get(obs.key).copied().flatten();
                if training(t, obs) {
                    let key = index.ok_or_else(|| not_in_set(obs))?;
                    observations.push(Observation { key, ..obs.clone() });
                } else {
                    let key = *task.keys.get(obs.key).ok_or_else(|| not_in_set(obs))?;
                    let in_set = index.is_some()
                        && (!added.contains_key(obs.program.as_str())
                            || chosen.contains(obs.program.as_str())
                            || rule == SetRule::Full);
                    held_out.push(HeldOutObservation {
                        task: t,
                        participant: obs.participant,
                        program: obs.program.clone(),
                        key,
                        in_set,
                    });
                }
            }
            let added_programs = kept_added
                .into_iter()
                .filter_map(|(text, key)| Some((text.to_owned(), renumber.get(key).copied()??)))
                .collect::<Vec<_>>();
            tasks.push(TaskChoiceSet {
                label: task.label.clone(),
                keys,
                multiplicity: kept,
                enumerated: task.enumerated,
                // The added programs this set keeps (found ones with a foreign key included).
                added: added_programs.len() as u64,
                observations,
                added_programs,
            });
        }
        Ok(Split {
            train: ChoiceSets { tasks },
            held_out,
        })
    }
}
