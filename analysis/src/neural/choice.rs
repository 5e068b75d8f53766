//! Choice sets with program identities, for models whose score is not a function of the
//! sufficient-statistic key.
//!
//! U_t = every enumerated program of the task, streamed from the analysis crate's candidate
//! iterator ([`crate::enumerate::candidates`]), plus the participants' programs the enumeration
//! lacks (docs/modelling.md §4.4). Only each program's key is kept (about 30 bytes a program); a
//! neural model re-enumerates the stream where it scores it. Program order within U_t: the
//! stream, then the added participant programs in order of first appearance.
//!
//! [`choice_log_likelihood`] is the likelihood of docs/modelling.md §4.4 with one score per
//! program instead of one per key: Σ_t Σ_chosen n · [s(p) − log Σ_{q ∈ U_t} exp s(q)]. With
//! symbolic scores it gives the keyed likelihood of [`crate::models::likelihood`] (a test checks
//! this), so neural and symbolic log-likelihoods compare directly.
//!
//! Held-out evaluations take a subset of these sets per fold (see `crate::neural::cv`): the
//! stream plus the added programs that a training observation chose, so the full U_t is only
//! an index and nothing about held-out participants shapes a fold's set.

use std::collections::{BTreeMap, HashMap};

use dsl::{Program, Task};

use crate::choice::{ChoiceSets, ObservedProgram, TaskCandidates};
use crate::enumerate::{SLOTS, candidates, normal_form};
use crate::error::AnalysisError;
use crate::key::StatKey;
use crate::models::likelihood::log_sum_exp;

/// The programs of one task's choice set.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPrograms {
    pub label: String,
    /// Whether U_t starts with the task's whole candidate stream (tasks without observations
    /// are not enumerated).
    pub streamed: bool,
    /// Programs of the stream (the first `enumerated` entries of `keys`).
    pub enumerated: usize,
    /// The participant programs the enumeration lacks, listed after the stream.
    pub listed: Vec<Program>,
    /// Key of every program of U_t, in order.
    pub keys: Vec<StatKey>,
    /// Observations: (participant, index into U_t).
    pub observations: Vec<(u32, usize)>,
}

impl TaskPrograms {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Choice sets with program identities, and the same sets as keyed [`ChoiceSets`].
#[derive(Debug, Clone)]
pub struct ProgramChoiceSets {
    pub choice_sets: ChoiceSets,
    pub tasks: Vec<TaskPrograms>,
}

/// A query program in the enumeration's normal form (renamed by first use, `SLOTS` slots), for
/// comparison with the candidate stream.
fn normalised(program: &Program) -> Option<Program> {
    let text = normal_form(program)?;
    let limits = dsl::Limits {
        subroutines: SLOTS as usize,
        ..dsl::Limits::default()
    };
    dsl::compact::parse(&text, &limits)
        .ok()
        .map(|p| p.with_slots(SLOTS as usize))
}

/// Builds the choice sets of every task with observations. `progress(task, streamed)` is called
/// from time to time with the number of candidates streamed so far in the task.
pub fn build(
    tasks: &[&Task],
    labels: &[String],
    observed: &[ObservedProgram],
    progress: &dyn Fn(usize, u64),
) -> Result<ProgramChoiceSets, AnalysisError> {
    if tasks.len() != labels.len() {
        return Err(AnalysisError::LabelCount {
            tasks: tasks.len(),
            labels: labels.len(),
        });
    }
    let observed_keys: HashMap<(usize, &str), StatKey> = observed
        .iter()
        .map(|o| ((o.task, o.text.as_str()), o.key))
        .collect();
    let mut programs: Vec<TaskPrograms> = labels
        .iter()
        .map(|label| TaskPrograms {
            label: label.clone(),
            streamed: false,
            enumerated: 0,
            listed: Vec::new(),
            keys: Vec::new(),
            observations: Vec::new(),
        })
        .collect();
    // Per task: compact text of each query → index into U_t.
    let mut positions: Vec<HashMap<String, usize>> = vec![HashMap::new(); labels.len()];
    let choice_sets = ChoiceSets::build(
        labels,
        observed,
        |index, queries| {
            let task = tasks[index];
            let normal: HashMap<Program, usize> = queries
                .iter()
                .enumerate()
                .filter_map(|(i, q)| normalised(q).map(|p| (p, i)))
                .collect();
            let mut found_at: Vec<Option<usize>> = vec![None; queries.len()];
            let mut histogram: BTreeMap<StatKey, u64> = BTreeMap::new();
            let entry = &mut programs[index];
            let mut streamed = 0u64;
            entry.streamed = true;
            for (program, key) in candidates(task)? {
                if let Some(&q) = normal.get(&program) {
                    found_at[q] = Some(entry.keys.len());
                }
                *histogram.entry(key).or_default() += 1;
                entry.keys.push(key);
                streamed += 1;
                if streamed.is_multiple_of(100_000) {
                    progress(index, streamed);
                }
            }
            entry.enumerated = entry.keys.len();
            progress(index, streamed);
            let label = &labels[index];
            for (q, query) in queries.iter().enumerate() {
                let text = query.to_compact();
                let position = match found_at[q] {
                    Some(position) => position,
                    None => {
                        let key = observed_keys
                            .get(&(index, text.as_str()))
                            .copied()
                            .ok_or_else(|| AnalysisError::NotAnObservation {
                                task: label.clone(),
                                program: text.clone(),
                            })?;
                        entry.keys.push(key);
                        entry.listed.push(query.clone());
                        entry.keys.len() - 1
                    }
                };
                positions[index].insert(text, position);
            }
            Ok(TaskCandidates {
                programs: histogram.values().sum(),
                histogram: histogram.into_iter().collect(),
                found: found_at.iter().map(Option::is_some).collect(),
            })
        },
        &|_| {},
    )?;
    for (index, (task, entry)) in choice_sets.tasks.iter().zip(&mut programs).enumerate() {
        let size: u64 = task.multiplicity.iter().sum();
        if size != entry.len() as u64 {
            return Err(AnalysisError::ChoiceSetSize {
                task: task.label.clone(),
                keyed: size,
                listed: entry.len(),
            });
        }
        for obs in &task.observations {
            let position = positions[index].get(&obs.program).copied().ok_or_else(|| {
                AnalysisError::NotInChoiceSet {
                    task: task.label.clone(),
                    program: obs.program.clone(),
                }
            })?;
            entry.observations.push((obs.participant, position));
        }
    }
    Ok(ProgramChoiceSets {
        choice_sets,
        tasks: programs,
    })
}

/// `Σ_t Σ_(k, n) n · [scores_t[k] − log Σ_j exp scores_t[j]]`: the log-likelihood of the choices
/// `chosen[t]` = (program index, count) under per-program scores.
pub fn choice_log_likelihood(scores: &[Vec<f64>], chosen: &[Vec<(usize, f64)>]) -> f64 {
    scores
        .iter()
        .zip(chosen)
        .filter(|(s, c)| !s.is_empty() && !c.is_empty())
        .map(|(s, c)| {
            let log_z = log_sum_exp(s);
            c.iter().map(|&(k, n)| n * (s[k] - log_z)).sum::<f64>()
        })
        .sum()
}

/// The choices of the participants accepted by `keep`, per task, counted by program index.
pub fn chosen(tasks: &[TaskPrograms], keep: impl Fn(u32) -> bool) -> Vec<Vec<(usize, f64)>> {
    tasks
        .iter()
        .map(|task| {
            count_choices(
                task.observations
                    .iter()
                    .filter(|(p, _)| keep(*p))
                    .map(|&(_, index)| index),
            )
        })
        .collect()
}

/// How often each program index occurs among `indices`, in order of first occurrence.
pub(crate) fn count_choices(indices: impl IntoIterator<Item = usize>) -> Vec<(usize, f64)> {
    let mut counts: Vec<(usize, f64)> = Vec::new();
    for index in indices {
        match counts.iter_mut().find(|(k, _)| *k == index) {
            Some((_, n)) => *n += 1.0,
            None => counts.push((index, 1.0)),
        }
    }
    counts
}
