//! Participant-level K-fold cross-validation of the program-choice models, and the held-out
//! scoring it shares with leave-one-task-out ([`crate::cv_tasks`]); docs/modelling.md §4.9.
//!
//! Participants are shuffled with a seeded generator and dealt into K folds, and every model uses
//! the same folds. Each model is fitted on the other folds' choices and scored on the held-out
//! fold's choices at those parameters; for models with the grammar-induction prior, p_end is
//! averaged over the held-out fold's likelihood (as the full fit averages over the whole data).
//!
//! The choice sets follow a [`SetRule`]. [`cross_validate`] uses [`SetRule::Training`]: in each
//! fold U_t is the enumeration plus the training participants' programs, the models are fitted
//! in it, and each held-out choice is scored in it plus its own program, so nothing about the
//! held-out participants shapes any set. [`cross_validate_with`] can also keep the full-fit sets
//! ([`SetRule::Full`]); the tests use it to show what the fold sets change.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::choice::{ChoiceSets, HeldOutObservation, SetRule, Split};
use crate::compare::{PairedDifference, paired_differences, versus_best};
use crate::error::AnalysisError;
use crate::fit::{FitOptions, fit};
use crate::key::StatKey;
use crate::models::library::{HeldOutRule, LibraryData};
pub use crate::models::likelihood::log_add_exp;
use crate::models::likelihood::{Features, Weights, log_mean_exp};
use crate::models::{Model, P_END_GRID, Param, Theta};

/// Settings of a cross-validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CvOptions {
    pub folds: usize,
    pub seed: u64,
    pub fit: FitOptions,
}

/// One model's held-out performance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CvModel {
    pub name: String,
    /// Sum over folds of the held-out log-likelihood.
    pub held_out_log_likelihood: f64,
    /// Held-out log-likelihood per observation.
    pub per_observation: f64,
    pub per_fold: Vec<f64>,
}

/// Which held-out observation a per-observation value belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldOutId {
    /// The fold (or, leaving tasks out, the split) that held it out.
    pub split: usize,
    pub task: String,
    pub participant: u32,
}

/// The outcome of a cross-validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CvResult {
    pub folds: usize,
    pub seed: u64,
    /// Participants in each fold.
    pub fold_participants: Vec<usize>,
    /// Observations in each fold.
    pub fold_observations: Vec<usize>,
    pub models: Vec<CvModel>,
    /// How each fold's choice sets were built ([`SetRule::describe`]).
    pub choice_sets: String,
    /// Each model against the best (highest held-out log-likelihood): the mean per-observation
    /// difference, model minus best, with its paired standard error.
    pub versus_best: Vec<PairedDifference>,
    /// Every pair of models, the earlier in `models` minus the later.
    pub paired: Vec<PairedDifference>,
    /// The held-out observations, in the order of the per-observation values.
    pub observations: Vec<HeldOutId>,
    /// Per model (in `models` order): each held-out observation's share of the held-out
    /// log-likelihood (docs/modelling.md §4.9); they sum to the model's total.
    pub observation_log_likelihoods: Vec<Vec<f64>>,
}

/// Deals `participants` into `k` folds after a seeded shuffle; fold sizes differ by at most one.
pub fn folds(participants: &[u32], k: usize, seed: u64) -> Result<Vec<Vec<u32>>, AnalysisError> {
    if k < 2 {
        return Err(AnalysisError::TooFewFolds { folds: k });
    }
    if participants.len() < k {
        return Err(AnalysisError::TooFewParticipants {
            folds: k,
            participants: participants.len(),
        });
    }
    let mut shuffled = participants.to_vec();
    shuffled.sort_unstable();
    shuffled.dedup();
    shuffled.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut folds = vec![Vec::new(); k];
    for (i, participant) in shuffled.into_iter().enumerate() {
        folds[i % k].push(participant);
    }
    for fold in &mut folds {
        fold.sort_unstable();
    }
    Ok(folds)
}

/// Cross-validates every model with fold choice sets ([`SetRule::Training`]); `progress(model,
/// fold)` is called after each fit. `features` (of the full-fit sets) is not used: every fold
/// builds its own.
pub fn cross_validate(
    choice_sets: &ChoiceSets,
    _features: &Features,
    models: &[Model],
    options: &CvOptions,
    progress: &(dyn Fn(&str, usize) + Sync),
) -> Result<CvResult, AnalysisError> {
    cross_validate_with(
        choice_sets,
        None,
        models,
        options,
        SetRule::Training,
        progress,
    )
}

/// Cross-validates every model with the choice sets of `rule`; `progress(model, fold)` is
/// called after each fit. `library` (built from the same observations) is needed when a model
/// is the library model.
pub fn cross_validate_with(
    choice_sets: &ChoiceSets,
    library: Option<&LibraryData>,
    models: &[Model],
    options: &CvOptions,
    rule: SetRule,
    progress: &(dyn Fn(&str, usize) + Sync),
) -> Result<CvResult, AnalysisError> {
    let folds = folds(&choice_sets.participants(), options.folds, options.seed)?;
    let splits = participant_splits(choice_sets, &folds, rule)?;
    let rules: Vec<HeldOutRule> = folds
        .iter()
        .map(|fold| {
            let mut fold = fold.clone();
            fold.sort_unstable();
            HeldOutRule::Participants(fold)
        })
        .collect();
    let library = library.map(|data| SplitLibrary {
        data,
        rules: &rules,
    });
    let scored = score_splits(&splits, models, &options.fit, library, progress)?;
    let n = choice_sets.n_observations().max(1);
    Ok(CvResult {
        folds: folds.len(),
        seed: options.seed,
        fold_participants: folds.iter().map(Vec::len).collect(),
        fold_observations: splits.iter().map(|s| s.held_out.len()).collect(),
        models: models
            .iter()
            .zip(&scored.per_model)
            .map(|(model, scores)| {
                let total: f64 = scores.per_split.iter().sum();
                CvModel {
                    name: model.name.to_owned(),
                    held_out_log_likelihood: total,
                    per_observation: total / n as f64,
                    per_fold: scores.per_split.clone(),
                }
            })
            .collect(),
        choice_sets: rule.describe().to_owned(),
        versus_best: scored.versus_best,
        paired: scored.paired,
        observations: held_out_ids(choice_sets, &splits),
        observation_log_likelihoods: scored
            .per_model
            .into_iter()
            .map(|s| s.per_observation)
            .collect(),
    })
}

/// The splits of participant folds: fold i holds out the participants of `folds[i]`, and its
/// sets follow `rule`. These are the data [`cross_validate_with`] fits and scores.
pub fn participant_splits(
    choice_sets: &ChoiceSets,
    folds: &[Vec<u32>],
    rule: SetRule,
) -> Result<Vec<Split>, AnalysisError> {
    folds
        .iter()
        .map(|fold| {
            let mut fold = fold.clone();
            fold.sort_unstable();
            choice_sets.split(rule, |_, o| fold.binary_search(&o.participant).is_err())
        })
        .collect()
}

/// One model's held-out scores over a list of splits.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldOutScores {
    /// Per split: the held-out log-likelihood, p_end averaged over the split's held-out data.
    pub per_split: Vec<f64>,
    /// Per held-out observation, split by split: its share of its split's log-likelihood
    /// ([`observation_shares`]).
    pub per_observation: Vec<f64>,
}

/// Every model's held-out scores on the same splits, and their paired comparisons.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredSplits {
    /// In the order of the models.
    pub per_model: Vec<HeldOutScores>,
    pub versus_best: Vec<PairedDifference>,
    pub paired: Vec<PairedDifference>,
}

/// The library model's data and what each split holds out, for [`score_splits`].
#[derive(Debug, Clone, Copy)]
pub struct SplitLibrary<'a> {
    pub data: &'a LibraryData,
    /// One per split.
    pub rules: &'a [HeldOutRule],
}

/// Fits every model on each split's training observations, in the split's training sets, and
/// scores the split's held-out observations (docs/modelling.md §4.9); `progress(model, split)`
/// is called after each fit. The library model needs `library`.
pub fn score_splits(
    splits: &[Split],
    models: &[Model],
    options: &FitOptions,
    library: Option<SplitLibrary<'_>>,
    progress: &(dyn Fn(&str, usize) + Sync),
) -> Result<ScoredSplits, AnalysisError> {
    let library = match models.iter().find(|m| m.uses_library()) {
        Some(model) => Some(library.ok_or_else(|| AnalysisError::NoLibraryData {
            model: model.name.to_owned(),
        })?),
        None => None,
    };
    let prepared: Vec<(Features, Weights)> = splits
        .iter()
        .enumerate()
        .map(|(index, split)| {
            let features = Features::new(&split.train);
            let features = match library {
                Some(library) => {
                    let rule = &library.rules[index];
                    features.with_library(library.data.training(&split.train, rule)?)
                }
                None => features,
            };
            Ok((features, Weights::all(&split.train)))
        })
        .collect::<Result<_, AnalysisError>>()?;
    let mut per_model = Vec::with_capacity(models.len());
    for model in models {
        let mut scores = HeldOutScores {
            per_split: Vec::with_capacity(splits.len()),
            per_observation: Vec::new(),
        };
        for (index, (split, (features, train))) in splits.iter().zip(&prepared).enumerate() {
            let fitted = fit(features, train, model, options, &|| {})?;
            let theta = model.theta(&fitted.params);
            let grid = match library {
                Some(library) if model.uses_library() => library.data.held_out_log_likelihoods(
                    &split.train,
                    &library.rules[index],
                    &split.held_out,
                    &theta,
                )?,
                _ => held_out_log_likelihoods(&split.train, &split.held_out, model, &theta),
            };
            let (total, shares) = observation_shares(&grid);
            scores.per_split.push(total);
            scores.per_observation.extend(shares);
            progress(model.name, index);
        }
        per_model.push(scores);
    }
    let names: Vec<&str> = models.iter().map(|m| m.name).collect();
    let values: Vec<&[f64]> = per_model
        .iter()
        .map(|s| s.per_observation.as_slice())
        .collect();
    let totals: Vec<f64> = per_model.iter().map(|s| s.per_split.iter().sum()).collect();
    let participants: Vec<u32> = splits
        .iter()
        .flat_map(|split| split.held_out.iter().map(|o| o.participant))
        .collect();
    Ok(ScoredSplits {
        versus_best: versus_best(&names, &values, &totals, &participants),
        paired: paired_differences(&names, &values, &participants),
        per_model,
    })
}

/// The held-out log-likelihood of one split from its observations' log-likelihoods at each p_end
/// (`grid[i][e]`), and each observation's share of it.
///
/// The total is log mean_e exp L_e with L_e = Σ_i grid\[i\]\[e\] (p_end averaged over the split's
/// held-out data). It does not separate into observations, so each observation's share is its
/// log-likelihood averaged over the p_end posterior of the split's held-out data, w_e ∝ exp L_e,
/// plus an equal part of the mixture's correction, total − Σ_e w_e L_e: the shares sum to the
/// total. Without p_end (one grid value) a share is the observation's log-likelihood.
pub fn observation_shares(grid: &[Vec<f64>]) -> (f64, Vec<f64>) {
    let n_grid = grid.first().map_or(0, Vec::len);
    if grid.is_empty() || n_grid == 0 {
        return (0.0, Vec::new());
    }
    let totals: Vec<f64> = (0..n_grid)
        .map(|e| {
            grid.iter()
                .map(|row| row.get(e).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let total = log_mean_exp(&totals);
    let weights: Vec<f64> = totals
        .iter()
        .map(|&l| (l - total).exp() / n_grid as f64)
        .collect();
    let expected: f64 = weights.iter().zip(&totals).map(|(w, l)| w * l).sum();
    let correction = if total.is_finite() {
        (total - expected) / grid.len() as f64
    } else {
        0.0
    };
    let shares = grid
        .iter()
        .map(|row| {
            if !total.is_finite() {
                return row.iter().sum::<f64>() / n_grid as f64;
            }
            row.iter().zip(&weights).map(|(l, w)| w * l).sum::<f64>() + correction
        })
        .collect();
    (total, shares)
}

/// The held-out observations of `splits`, in scoring order, with their task labels.
pub fn held_out_ids(choice_sets: &ChoiceSets, splits: &[Split]) -> Vec<HeldOutId> {
    splits
        .iter()
        .enumerate()
        .flat_map(|(index, split)| {
            split.held_out.iter().map(move |obs| HeldOutId {
                split: index,
                task: choice_sets
                    .tasks
                    .get(obs.task)
                    .map_or_else(String::new, |t| t.label.clone()),
                participant: obs.participant,
            })
        })
        .collect()
}

/// Held-out scoring (docs/modelling.md §4.9): for each observation of `held_out`, its log P at
/// every p_end of the grid (9 values for models with the grammar-induction prior, else 1) in its
/// task's set of `sets` plus, where [`HeldOutObservation::in_set`] is false, its own program:
/// s(own) − log Z', with log Z' = log Z, or logaddexp(log Z, s(own)) when the program is added.
/// Scores come from [`Theta::score`] on the keys, independently of [`Features`].
pub fn held_out_log_likelihoods(
    sets: &ChoiceSets,
    held_out: &[HeldOutObservation],
    model: &Model,
    theta: &Theta,
) -> Vec<Vec<f64>> {
    let n_grid = if model.uses_gi() { P_END_GRID.len() } else { 1 };
    let mut theta = *theta;
    for param in Param::ALL {
        if !model.params.contains(&param) {
            theta.values[param.index()] = param.neutral();
        }
    }
    let beta_gi = theta.get(Param::BetaGi);
    // A key's score at grid value e is its score at the first grid value plus β_GI times the
    // change of its routine-length term (docs/modelling.md §4.5).
    let (continue_0, end_0) = ((1.0 - P_END_GRID[0]).ln(), P_END_GRID[0].ln());
    let shifts: Vec<(f64, f64)> = P_END_GRID[..n_grid]
        .iter()
        .map(|&q| ((1.0 - q).ln() - continue_0, q.ln() - end_0))
        .collect();
    let scores = |key: &StatKey, into: &mut Vec<f64>| {
        let base = theta.score(key, P_END_GRID[0]);
        let (ends, continues) = (f64::from(key.r), f64::from(key.t()) - f64::from(key.r));
        into.clear();
        into.extend(
            shifts
                .iter()
                .map(|&(dc, de)| base + beta_gi * (continues * dc + ends * de)),
        );
    };
    // log Z per task and grid value, for the tasks with held-out observations.
    let mut log_z: Vec<Option<Vec<f64>>> = vec![None; sets.tasks.len()];
    let mut own = Vec::with_capacity(n_grid);
    for obs in held_out {
        let Some(task) = sets.tasks.get(obs.task) else {
            continue;
        };
        if log_z[obs.task].is_some() {
            continue;
        }
        let mut max = vec![f64::NEG_INFINITY; n_grid];
        let mut logits: Vec<Vec<f64>> = Vec::with_capacity(task.keys.len());
        for (key, &m) in task.keys.iter().zip(&task.multiplicity) {
            scores(key, &mut own);
            let ln_m = (m as f64).ln();
            let row: Vec<f64> = own.iter().map(|s| s + ln_m).collect();
            for (mx, &l) in max.iter_mut().zip(&row) {
                *mx = mx.max(l);
            }
            logits.push(row);
        }
        let z: Vec<f64> = (0..n_grid)
            .map(|e| {
                if max[e] == f64::NEG_INFINITY {
                    return max[e];
                }
                let sum: f64 = logits.iter().map(|row| (row[e] - max[e]).exp()).sum();
                max[e] + sum.ln()
            })
            .collect();
        log_z[obs.task] = Some(z);
    }
    held_out
        .iter()
        .map(|obs| {
            scores(&obs.key, &mut own);
            let empty = vec![f64::NEG_INFINITY; n_grid];
            let z = log_z
                .get(obs.task)
                .and_then(Option::as_ref)
                .unwrap_or(&empty);
            own.iter()
                .zip(z)
                .map(|(&s, &z)| {
                    let z = if obs.in_set { z } else { log_add_exp(z, s) };
                    s - z
                })
                .collect()
        })
        .collect()
}
