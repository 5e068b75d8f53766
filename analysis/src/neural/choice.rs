//! Choice sets with program identities, for models whose score is not a function of the
//! sufficient-statistic key.
//!
//! Two modes, both streamed from the analysis crate's candidate iterator
//! ([`crate::enumerate::candidates`]), one task at a time:
//! - **full**: U_t = every enumerated program plus the participants' programs the enumeration
//!   lacks (docs/modelling.md §4.4); only each program's key is kept (about 30 bytes a program),
//and a neural !   model re-enumerates the stream where it scores it;
//! - **reduced** (the CPU approximation): U'_t = the top N enumerated programs of a ranking model
//!   (a symbolic model with given parameters; ties in score go to the earlier program of the
//!   stream) plus every participant program of the task. The symbolic choice sets
//!   ([`ChoiceSets`]) are built from the very same programs, so symbolic and neural models are
//!   compared on identical sets.
//!
//! Program order within U_t: the full stream (full mode) or the top N by decreasing ranking score
//! (reduced mode), then the added participant programs in order of first appearance.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use serde::Serialize;

use dsl::{Program, Task};

use crate::choice::{ChoiceSets, ObservedProgram, TaskCandidates};
use crate::enumerate::{SLOTS, candidates, normal_form};
use crate::error::AnalysisError;
use crate::key::StatKey;
use crate::models::likelihood::log_mean_exp;
use crate::models::{Model, P_END_GRID};

/// How U_t is formed.
#[derive(Debug, Clone, PartialEq)]
pub enum ChoiceMode {
    /// Every enumerated program plus the participants' programs.
    Full,
    /// The top `top_n` enumerated programs of a ranking model plus the participants' programs.
    Reduced { top_n: usize, rank: RankBy },
}

/// The ranking model of the reduced sets: a symbolic model and its parameters (in
/// `model.params` order). For models with the grammar-induction prior the ranking score is the
/// log of the score's exponential averaged over the p_end grid.
#[derive(Debug, Clone, PartialEq)]
pub struct RankBy {
    pub model: Model,
    pub params: Vec<f64>,
}

impl RankBy {
    /// The ranking score of a key.
    pub fn score(&self, key: &StatKey) -> f64 {
        let theta = self.model.theta(&self.params);
        if self.model.uses_gi() {
            let scores: Vec<f64> = P_END_GRID
                .iter()
                .map(|&p_end| theta.score(key, p_end))
                .collect();
            log_mean_exp(&scores)
        } else {
            theta.score(key, 0.5)
        }
    }
}

/// What the reduced sets leave out, for the output to state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approximation {
    pub top_n: usize,
    pub rank_model: String,
    pub rank_params: BTreeMap<String, f64>,
    /// Per task: enumerated programs in the full set.
    pub enumerated: Vec<u64>,
    /// Per task: programs in the reduced set U'_t.
    pub reduced: Vec<u64>,
    /// One sentence for reports.
    pub note: String,
}

/// The programs of one task's choice set.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPrograms {
    pub label: String,
    /// Whether U_t starts with the task's whole candidate stream (full mode).
    pub streamed: bool,
    /// The programs listed after the stream (full mode: the added participant programs; reduced
    /// mode: the top N, then the added participant programs).
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
    /// Set in reduced mode.
    pub approximation: Option<Approximation>,
}

/// A program's position in the ranking: higher score first, then earlier in the stream.
struct Ranked {
    score: f64,
    index: u64,
    program: Program,
    key: StatKey,
}

impl Ranked {
    fn better_than(&self, score: f64, index: u64) -> bool {
        self.score > score || (self.score == score && self.index < index)
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Ranked) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Ranked) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    /// Greater = better.
    fn cmp(&self, other: &Ranked) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.index.cmp(&self.index))
    }
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
    mode: &ChoiceMode,
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
            listed: Vec::new(),
            keys: Vec::new(),
            observations: Vec::new(),
        })
        .collect();
    // Per task: compact text of each query → index into U_t.
    let mut positions: Vec<HashMap<String, usize>> = vec![HashMap::new(); labels.len()];
    let mut enumerated = vec![0u64; labels.len()];
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
            match mode {
                ChoiceMode::Full => {
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
                }
                ChoiceMode::Reduced { top_n, rank } => {
                    let mut cache: HashMap<StatKey, f64> = HashMap::new();
                    // Min-heap of the best `top_n` so far.
                    let mut heap: BinaryHeap<Reverse<Ranked>> =
                        BinaryHeap::with_capacity(top_n + 1);
                    for (program, key) in candidates(task)? {
                        let score = *cache.entry(key).or_insert_with(|| rank.score(&key));
                        let enters = heap.len() < *top_n
                            || heap
                                .peek()
                                .is_some_and(|Reverse(worst)| !worst.better_than(score, streamed));
                        if enters && *top_n > 0 {
                            heap.push(Reverse(Ranked {
                                score,
                                index: streamed,
                                program,
                                key,
                            }));
                            if heap.len() > *top_n {
                                heap.pop();
                            }
                        }
                        streamed += 1;
                        if streamed.is_multiple_of(100_000) {
                            progress(index, streamed);
                        }
                    }
                    let mut top: Vec<Ranked> = heap.into_iter().map(|Reverse(r)| r).collect();
                    top.sort_by(|a, b| b.cmp(a));
                    for ranked in top {
                        if let Some(&q) = normal.get(&ranked.program) {
                            found_at[q] = Some(entry.keys.len());
                        }
                        *histogram.entry(ranked.key).or_default() += 1;
                        entry.keys.push(ranked.key);
                        entry.listed.push(ranked.program);
                    }
                }
            }
            progress(index, streamed);
            enumerated[index] = streamed;
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
    let approximation = match mode {
        ChoiceMode::Full => None,
        ChoiceMode::Reduced { top_n, rank } => {
            let reduced: Vec<u64> = programs.iter().map(|p| p.len() as u64).collect();
            Some(Approximation {
                top_n: *top_n,
                rank_model: rank.model.name.to_owned(),
                rank_params: rank
                    .model
                    .params
                    .iter()
                    .map(|p| p.name().to_owned())
                    .zip(rank.params.iter().copied())
                    .collect(),
                note: format!(
                    "approximation: each choice set is the top {top_n} enumerated programs of model {} plus every \
                     participant program of the task ({} programs in all, from {} enumerated ones); symbolic and \
                     neural models are scored on these same reduced sets",
                    rank.model.name,
                    reduced.iter().sum::<u64>(),
                    enumerated.iter().sum::<u64>()
                ),
                enumerated: enumerated.clone(),
                reduced,
            })
        }
    };
    Ok(ProgramChoiceSets {
        choice_sets,
        tasks: programs,
        approximation,
    })
}
