//! Participant-level K-fold cross-validation of the program-choice models.
//!
//! Participants are shuffled with a seeded generator and dealt into K folds, and every model uses
//! the same folds. Each model is fitted on the other folds' choices and scored on the held-out
//! fold's choices at those parameters; for models with the grammar-induction prior, p_end is
//! averaged over the held-out fold's likelihood (as the full fit averages over the whole data).
//!
//! The choice sets are those of the full fit: U_t contains every participant's program, held-out
//! participants' included, so a held-out program is always choosable. This matches how the
//! reference analysis builds one choice set per task; it leaks only which programs exist, never
//! how often they were chosen.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::choice::ChoiceSets;
use crate::error::AnalysisError;
use crate::fit::{FitOptions, fit, log_likelihood};
use crate::models::Model;
use crate::models::likelihood::{Features, Weights};

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

/// Cross-validates every model; `progress(model, fold)` is called after each fit.
pub fn cross_validate(
    choice_sets: &ChoiceSets,
    features: &Features,
    models: &[Model],
    options: &CvOptions,
    progress: &(dyn Fn(&str, usize) + Sync),
) -> Result<CvResult, AnalysisError> {
    let folds = folds(&choice_sets.participants(), options.folds, options.seed)?;
    let splits: Vec<(Weights, Weights)> = folds
        .iter()
        .map(|fold| {
            let train = Weights::from_observations(choice_sets, |o| {
                fold.binary_search(&o.participant).is_err()
            });
            let test = Weights::from_observations(choice_sets, |o| {
                fold.binary_search(&o.participant).is_ok()
            });
            (train, test)
        })
        .collect();
    let mut results = Vec::with_capacity(models.len());
    for model in models {
        let mut per_fold = Vec::with_capacity(folds.len());
        for (index, (train, test)) in splits.iter().enumerate() {
            let fitted = fit(features, train, model, &options.fit, &|| {})?;
            per_fold.push(log_likelihood(features, test, model, &fitted.params));
            progress(model.name, index);
        }
        let total: f64 = per_fold.iter().sum();
        let n = choice_sets.n_observations().max(1);
        results.push(CvModel {
            name: model.name.to_owned(),
            held_out_log_likelihood: total,
            per_observation: total / n as f64,
            per_fold,
        });
    }
    Ok(CvResult {
        folds: folds.len(),
        seed: options.seed,
        fold_participants: folds.iter().map(Vec::len).collect(),
        fold_observations: splits
            .iter()
            .map(|(_, test)| test.total() as usize)
            .collect(),
        models: results,
    })
}
