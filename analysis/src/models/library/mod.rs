//! The library model `lib+step` (docs/modelling.md §4.5, "The library model"): the
//! grammar-induction prior with the base distribution of leaf bodies (called subroutine bodies
//! made of primitives only) replaced by a three-level hierarchy: the participant's own earlier
//! bodies, the population's bodies, and the token-by-token base.
//!
//! [`LibraryData`] holds what does not depend on a fit: the index S of every observed leaf body,
//! each task's candidates grouped by (key, L, T) from one more pass over the enumeration, and
//! every participant's programs in the order they saw the tasks. [`LibraryFeatures`] is one fit's
//! view: which observations are fitted, which programs form the population library, and the
//! subsets the normalisers need. It is attached to the likelihood's features
//! ([`crate::models::likelihood::Features::with_library`]) so that the ordinary fitting,
//! profiling and per-task code run the model unchanged.

mod cache;
mod direct;
mod features;
mod groups;
mod likelihood;
mod observation;
mod simulate;

use std::collections::HashMap;

use statrs::distribution::{ChiSquared, ContinuousCDF};

use dsl::Task;

use crate::choice::{ChoiceSets, HeldOutObservation, ObservedProgram};
use crate::enumerate::normal_bytes;
use crate::error::AnalysisError;
use crate::key::StatKey;
use crate::models::likelihood::{Evaluation, GradientRows, Weights};
use crate::models::{Model, P_END_GRID, Param, Theta};

pub use cache::{Cache, History, Population};
pub use direct::DirectScorer;
pub use groups::leaf_bodies;

use features::{Chosen, TaskModel};
use groups::{BodyIndex, Group, Leaves, TaskGroups, leaf_slices, statistic};
use simulate::Draw;

/// One observed program with its library statistics.
#[derive(Debug, Clone, PartialEq)]
struct ProgramStatistic {
    participant: u32,
    task: usize,
    text: String,
    key: StatKey,
    /// L: called leaf bodies.
    leaves: u8,
    /// Its leaf bodies (all in S), one per occurrence.
    bodies: Vec<u32>,
    set: Leaves,
}

/// What the library model needs from a data set, independent of any fit.
#[derive(Debug, Clone, Default)]
pub struct LibraryData {
    index: BodyIndex,
    /// Per task: the enumeration grouped by (key, L, T) (empty for tasks without observations).
    tasks: Vec<TaskGroups>,
    /// The observed programs, in input order.
    observed: Vec<ProgramStatistic>,
    histories: HashMap<u32, History>,
}

impl LibraryData {
    /// Indexes the leaf bodies of `observed` and groups the enumerated candidates of every task
    /// with observations (`tasks[i]` is task index i); `progress(task)` is called after each.
    pub fn build(
        tasks: &[&Task],
        observed: &[ObservedProgram],
        progress: &dyn Fn(usize),
    ) -> Result<LibraryData, AnalysisError> {
        let mut data = LibraryData::default();
        for obs in observed {
            let bytes = normal_bytes(&obs.program).unwrap_or_default();
            let mut bodies: Vec<u32> = leaf_slices(&bytes)
                .map(|body| data.index.insert(body))
                .collect();
            let (leaves, set) = statistic(&bytes, &data.index);
            bodies.sort_unstable();
            data.histories.entry(obs.participant).or_default().push(
                obs.order_position,
                obs.task,
                bodies.clone(),
            );
            data.observed.push(ProgramStatistic {
                participant: obs.participant,
                task: obs.task,
                text: obs.text.clone(),
                key: obs.key,
                leaves,
                bodies,
                set,
            });
        }
        for (index, task) in tasks.iter().enumerate() {
            let groups = if data.observed.iter().any(|o| o.task == index) {
                TaskGroups::enumerate(task, &data.index)?
            } else {
                TaskGroups::default()
            };
            data.tasks.push(groups);
            progress(index);
        }
        if let Some(beyond) = data.observed.iter().find(|o| o.task >= tasks.len()) {
            return Err(AnalysisError::UnknownTask {
                task: beyond.task,
                tasks: tasks.len(),
            });
        }
        Ok(data)
    }

    /// Number of distinct leaf bodies among the observed programs (|S|).
    pub fn n_bodies(&self) -> usize {
        self.index.len()
    }

    /// Number of (key, L, T) groups of task `task`'s enumeration.
    pub fn n_groups(&self, task: usize) -> usize {
        self.tasks.get(task).map_or(0, |t| t.groups.len())
    }

    /// The in-sample view: every observation of `choice_sets` (the full-fit sets built from the
    /// same observations) is fitted, and the population library holds every program, each
    /// participant's own left out of their own predictions.
    pub fn in_sample(&self, choice_sets: &ChoiceSets) -> Result<LibraryFeatures, AnalysisError> {
        self.features(choice_sets, &|_, _| true)
    }

    /// The view of a fit on the observations `fitted(participant, task)` of `choice_sets` (a
    /// full or a fold's training sets): those observations are fitted, their programs alone
    /// form the population library, and caches hold only programs `fitted` admits.
    pub fn features(
        &self,
        choice_sets: &ChoiceSets,
        fitted: &dyn Fn(u32, usize) -> bool,
    ) -> Result<LibraryFeatures, AnalysisError> {
        self.view(
            choice_sets,
            &View {
                scored: fitted,
                population: fitted,
                cache: fitted,
            },
        )
    }

    /// The training view of a held-out split (`rule`): the training observations are fitted in
    /// `train` (the split's training sets) and form the population library.
    pub fn training(
        &self,
        train: &ChoiceSets,
        rule: &HeldOutRule,
    ) -> Result<LibraryFeatures, AnalysisError> {
        self.view(
            train,
            &View {
                scored: &|p, t| rule.is_training(p, t),
                population: &|p, t| rule.is_training(p, t),
                cache: &|p, t| rule.may_cache(p, t),
            },
        )
    }

    /// The held-out observations of a split (`rule`) scored at `theta`, in the order of
    /// `held_out` (docs/modelling.md §4.9): each in its task's set of `train` (plus its own
    /// program where it is not already there), with the training observations' population
    /// library and a cache of the participant's own earlier programs that `rule` admits.
    /// Returns each observation's log P at every p_end.
    pub fn held_out_log_likelihoods(
        &self,
        train: &ChoiceSets,
        rule: &HeldOutRule,
        held_out: &[HeldOutObservation],
        theta: &Theta,
    ) -> Result<Vec<Vec<f64>>, AnalysisError> {
        let features = self.view(
            train,
            &View {
                scored: &|p, t| !rule.is_training(p, t),
                population: &|p, t| rule.is_training(p, t),
                cache: &|p, t| rule.may_cache(p, t),
            },
        )?;
        let mut scores: HashMap<(usize, u32), [f64; P_END_GRID.len()]> = HashMap::new();
        let mut in_set: HashMap<(usize, u32), bool> = HashMap::new();
        for obs in held_out {
            in_set.insert((obs.task, obs.participant), obs.in_set);
        }
        for (task, observations) in features.observation_scores(theta).into_iter().enumerate() {
            for obs in observations {
                let added = !in_set
                    .get(&(task, obs.participant))
                    .copied()
                    .unwrap_or(true);
                // Adding the program once more to its own set: log Z' = logaddexp(log Z, s).
                let grid = std::array::from_fn(|e| {
                    let (ll, s) = (obs.log_likelihood[e], obs.score[e]);
                    if added {
                        s - crate::models::likelihood::log_add_exp(s - ll, s)
                    } else {
                        ll
                    }
                });
                scores.insert((task, obs.participant), grid);
            }
        }
        held_out
            .iter()
            .map(|obs| {
                scores
                    .get(&(obs.task, obs.participant))
                    .map(|grid| grid.to_vec())
                    .ok_or_else(|| AnalysisError::NotInChoiceSet {
                        task: train
                            .tasks
                            .get(obs.task)
                            .map_or_else(String::new, |t| t.label.clone()),
                        program: obs.program.clone(),
                    })
            })
            .collect()
    }

    /// The features of `view` in `choice_sets`: its scored observations, their caches and the
    /// population library it names.
    fn view(
        &self,
        choice_sets: &ChoiceSets,
        view: &View<'_>,
    ) -> Result<LibraryFeatures, AnalysisError> {
        self.view_with_draws(choice_sets, view, &HashMap::new())
    }

    /// [`LibraryData::view`] with the chosen programs of some observations, keyed by (task,
    /// participant), replaced by simulated ones; caches and the population library stay those
    /// of the observed programs.
    fn view_with_draws(
        &self,
        choice_sets: &ChoiceSets,
        view: &View<'_>,
        draws: &HashMap<(usize, u32), Draw>,
    ) -> Result<LibraryFeatures, AnalysisError> {
        let mut population = Population::default();
        for program in self
            .observed
            .iter()
            .filter(|o| (view.population)(o.participant, o.task))
        {
            population.add(program.participant, &program.bodies);
        }
        let mut tasks = Vec::with_capacity(choice_sets.tasks.len());
        for (t, set) in choice_sets.tasks.iter().enumerate() {
            let chosen: Vec<Chosen<'_>> = self
                .observed
                .iter()
                .filter(|o| o.task == t && (view.scored)(o.participant, o.task))
                .map(|o| {
                    let mut chosen = self.chosen(o, view.cache);
                    if let Some(draw) = draws.get(&(t, o.participant)) {
                        chosen.key = draw.key;
                        chosen.leaves = draw.leaves;
                        chosen.bodies = &draw.bodies;
                    }
                    chosen
                })
                .collect();
            if chosen.is_empty() {
                tasks.push(TaskModel::default());
                continue;
            }
            let base = self.tasks.get(t).map_or(&[][..], |g| g.groups.as_slice());
            let mut groups: Vec<Group> = base.to_vec();
            for (text, _) in &set.added_programs {
                let program = self
                    .observed
                    .iter()
                    .find(|o| o.task == t && &o.text == text)
                    .ok_or_else(|| AnalysisError::NotInChoiceSet {
                        task: set.label.clone(),
                        program: text.clone(),
                    })?;
                groups.push(Group {
                    key: program.key,
                    leaves: program.leaves,
                    set: program.set,
                    count: 1.0,
                });
            }
            let in_groups: f64 = groups.iter().map(|g| g.count).sum();
            let in_set: u64 = set.multiplicity.iter().sum();
            if in_groups != in_set as f64 {
                return Err(AnalysisError::LibraryGroups {
                    task: set.label.clone(),
                    grouped: in_groups as u64,
                    choice_set: in_set,
                });
            }
            tasks.push(TaskModel::new(&groups, &chosen, &population));
        }
        Ok(LibraryFeatures::new(self, tasks, &population))
    }

    /// `program` as a chosen program, with the cache of its participant's programs at earlier
    /// positions that `may_cache(participant, task)` admits.
    fn chosen<'a>(
        &'a self,
        program: &'a ProgramStatistic,
        may_cache: &dyn Fn(u32, usize) -> bool,
    ) -> Chosen<'a> {
        let position = self.position(program);
        Chosen {
            participant: program.participant,
            key: program.key,
            leaves: program.leaves,
            bodies: &program.bodies,
            cache: self
                .histories
                .get(&program.participant)
                .map(|h| h.cache_before(position, &|task| may_cache(program.participant, task)))
                .unwrap_or_default(),
        }
    }

    /// Where the participant saw the program's task.
    fn position(&self, program: &ProgramStatistic) -> usize {
        self.histories
            .get(&program.participant)
            .and_then(|h| h.position_of(program.task))
            .unwrap_or(program.task)
    }
}

/// Which programs one view of the data uses: the observations it scores, those that form the
/// population library, and those a participant's cache may hold (always only their own, at
/// earlier positions).
struct View<'a> {
    scored: &'a dyn Fn(u32, usize) -> bool,
    population: &'a dyn Fn(u32, usize) -> bool,
    cache: &'a dyn Fn(u32, usize) -> bool,
}

/// What a held-out split holds out, which fixes what the library model may use
/// (docs/modelling.md §4.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldOutRule {
    /// Participant folds: these participants (sorted) are held out. Everyone's cache holds
    /// their own earlier programs; the population library is the other participants'.
    Participants(Vec<u32>),
    /// Leave one task out: this task is held out. Its programs enter no cache and no library,
    /// so the training fit never sees them.
    Task(usize),
}

impl HeldOutRule {
    /// Whether the observation of `participant` on `task` is a training observation.
    pub fn is_training(&self, participant: u32, task: usize) -> bool {
        match self {
            HeldOutRule::Participants(held) => held.binary_search(&participant).is_err(),
            HeldOutRule::Task(out) => task != *out,
        }
    }

    /// Whether a cache may hold the program of `participant` on `task` (for that
    /// participant's later tasks).
    pub fn may_cache(&self, _participant: u32, task: usize) -> bool {
        match self {
            HeldOutRule::Participants(_) => true,
            HeldOutRule::Task(out) => task != *out,
        }
    }
}

/// One fit's view of the library model: its observations, choice-set groups and population
/// library, in the form the likelihood evaluates quickly.
#[derive(Debug, Clone, Default)]
pub struct LibraryFeatures {
    tasks: Vec<TaskModel>,
    /// |b| and Σ_j f_j(b) over the library's contributors, per body of S.
    body_lengths: Vec<f64>,
    population_shares: Vec<f64>,
    /// |J|: the library's contributors.
    contributors: usize,
    max_n: usize,
    max_k: usize,
}

impl LibraryFeatures {
    fn new(data: &LibraryData, tasks: Vec<TaskModel>, population: &Population) -> Self {
        let n_bodies = data.index.len() as u32;
        let max_n = tasks
            .iter()
            .flat_map(|t| t.keys.iter().map(|k| k.n_calls))
            .max()
            .unwrap_or(0);
        let max_k = tasks
            .iter()
            .flat_map(|t| t.keys.iter().map(|k| k.k))
            .max()
            .unwrap_or(0);
        LibraryFeatures {
            tasks,
            body_lengths: data.index.lengths.iter().map(|&l| f64::from(l)).collect(),
            population_shares: (0..n_bodies).map(|b| population.summed_share(b)).collect(),
            contributors: population.contributors(),
            max_n,
            max_k,
        }
    }

    /// The size of each task's evaluation: what one likelihood evaluation loops over.
    pub fn sizes(&self) -> Vec<TaskSizes> {
        self.tasks
            .iter()
            .map(|t| TaskSizes {
                keys: t.keys.len(),
                groups: t.entries.len(),
                cells: t.cells.len(),
                sets: t.sets.len(),
                subsets: t.subsets.len(),
                memberships: t.subsets.iter().map(Vec::len).sum(),
                terms: t.observations.iter().map(|o| o.terms.len()).sum(),
            })
            .collect()
    }

    /// Observations per task.
    pub fn n_observations(&self, task: usize) -> usize {
        self.tasks.get(task).map_or(0, |t| t.observations.len())
    }

    /// Every observation's log P(chosen) and chosen score s at each p_end (docs/modelling.md
    /// §4.5), task by task in the order of the fitted observations.
    pub fn observation_scores(&self, theta: &Theta) -> Vec<Vec<ObservationScore>> {
        likelihood::observation_results(self, theta)
            .into_iter()
            .zip(&self.tasks)
            .map(|(results, task)| {
                results
                    .into_iter()
                    .zip(&task.observations)
                    .map(|(r, o)| ObservationScore {
                        participant: o.participant,
                        log_likelihood: r.log_likelihood,
                        score: r.score,
                    })
                    .collect()
            })
            .collect()
    }
}

/// What one evaluation of a task loops over (see [`LibraryFeatures::sizes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSizes {
    /// Distinct keys, (key, L, T) groups, (T, length group, L) cells and distinct T.
    pub keys: usize,
    pub groups: usize,
    pub cells: usize,
    pub sets: usize,
    /// Subsets A needed by some observation, and Σ_A of the T containing A.
    pub subsets: usize,
    pub memberships: usize,
    /// Σ over observations of their occurring subsets.
    pub terms: usize,
}

/// One observation under the library model at each p_end of [`P_END_GRID`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObservationScore {
    pub participant: u32,
    pub log_likelihood: [f64; P_END_GRID.len()],
    /// s = β_GI log P_lib − β_step S of the chosen program.
    pub score: [f64; P_END_GRID.len()],
}

/// `features` with the in-sample library view attached when some model of `models` is the
/// library model (building [`LibraryData`] streams every task's enumeration once more), and that
/// data for the held-out evaluations; otherwise `features` unchanged and no data.
pub fn attach_in_sample(
    features: crate::models::likelihood::Features,
    tasks: &[dsl::tasks::NamedTask],
    observed: &[ObservedProgram],
    choice_sets: &ChoiceSets,
    models: &[Model],
) -> Result<(crate::models::likelihood::Features, Option<LibraryData>), AnalysisError> {
    if !models.iter().any(Model::uses_library) {
        return Ok((features, None));
    }
    let tasks: Vec<&Task> = tasks.iter().map(|t| &t.task).collect();
    let data = LibraryData::build(&tasks, observed, &|_| {})?;
    let features = features.with_library(data.in_sample(choice_sets)?);
    Ok((features, Some(data)))
}

/// The likelihood of `lib+step` for [`crate::models::likelihood::evaluate`]: NaN without
/// library features, or when they hold other observations than `weights`.
pub(crate) fn evaluate(
    features: Option<&LibraryFeatures>,
    weights: &Weights,
    theta: &Theta,
    gradient: GradientRows,
) -> Evaluation {
    match features {
        Some(features) => likelihood::evaluate(features, weights, theta, gradient),
        None => Evaluation {
            n_grid: P_END_GRID.len(),
            task_grid: vec![[f64::NAN; P_END_GRID.len()]; weights.tasks.len()],
            grid_gradient: [[0.0; crate::models::N_PARAMS]; P_END_GRID.len()],
        },
    }
}

/// The library weights, whose value 0 (the nested model) lies on the boundary.
pub const LIBRARY_PARAMS: [Param; 2] = [Param::LibOwn, Param::LibPop];

/// The p-value of a likelihood-ratio statistic `chi2` for `small` nested in `large`.
///
/// When the extra parameters include the library weights, the null value 0 lies on the
/// boundary of [0, 1), and 2ΔLL follows the mixture Σ_j C(m, j)/2^m χ²(d + j) over the m
/// boundary parameters and the d others (Self & Liang 1987; ¼χ²₀ + ½χ²₁ + ¼χ²₂ for lib+step
/// against gi+step, χ²₀ being a point mass at 0). Otherwise χ² with Δk degrees of freedom.
pub fn lrt_p_value(small: &Model, large: &Model, chi2: f64) -> f64 {
    let extra: Vec<Param> = large
        .params
        .iter()
        .copied()
        .filter(|p| !small.params.contains(p))
        .collect();
    let boundary = extra.iter().filter(|p| LIBRARY_PARAMS.contains(p)).count();
    let others = extra.len() - boundary;
    let survival = |df: usize| -> f64 {
        if df == 0 {
            return if chi2 > 0.0 { 0.0 } else { 1.0 };
        }
        ChiSquared::new(df as f64).map_or(f64::NAN, |d| d.sf(chi2))
    };
    let total = f64::from(1u32 << boundary);
    (0..=boundary)
        .map(|j| binomial(boundary, j) / total * survival(others + j))
        .sum()
}

/// The reference distribution of [`lrt_p_value`], in words.
pub fn lrt_reference(small: &Model, large: &Model) -> String {
    let extra = large.params.iter().filter(|p| !small.params.contains(p));
    let (boundary, others) = extra.fold((0, 0), |(b, o), p| {
        if LIBRARY_PARAMS.contains(p) {
            (b + 1, o)
        } else {
            (b, o + 1)
        }
    });
    if boundary == 0 {
        return format!("chi2({others})");
    }
    let total = 1u32 << boundary;
    (0..=boundary)
        .map(|j| format!("{}/{total} chi2({})", binomial(boundary, j), others + j))
        .collect::<Vec<_>>()
        .join(" + ")
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Model;

    #[test]
    fn the_boundary_mixture_of_lib_step_against_gi_step() {
        let small = Model::by_name("gi+step").expect("known");
        let large = Model::by_name("lib+step").expect("known");
        assert_eq!(
            lrt_reference(&small, &large),
            "1/4 chi2(0) + 2/4 chi2(1) + 1/4 chi2(2)"
        );
        // At 2ΔLL = 0 the p-value is 1; above, half of χ²(1)'s plus a quarter of χ²(2)'s.
        assert_eq!(lrt_p_value(&small, &large, 0.0), 1.0);
        let chi2 = 3.0;
        let one = ChiSquared::new(1.0).expect("df").sf(chi2);
        let two = ChiSquared::new(2.0).expect("df").sf(chi2);
        let p = lrt_p_value(&small, &large, chi2);
        assert!((p - (0.5 * one + 0.25 * two)).abs() < 1e-12);
        assert!(p < ChiSquared::new(2.0).expect("df").sf(chi2));
    }
}
