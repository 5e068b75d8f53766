//! The profile log-likelihood of one parameter on a grid of values: at each value the parameter
//! is held fixed and the others are maximised from every start of [`super::starts`], so
//! that the curve does not depend on a warm start. Used to inspect a parameter's profile in full
//! (docs/modelling.md §4.5, the Pitman-Yor discount), where [`profile_intervals`](super::profile_intervals)
//! only looks for the ends of the 95% interval.

use rayon::prelude::*;
use serde::Serialize;

use crate::fit::objective::Objective;
use crate::fit::optimiser::maximise;
use crate::fit::{FitOptions, starts};
use crate::models::likelihood::{Features, Weights};
use crate::models::{Model, Param};

/// One point of a profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfilePoint {
    /// The value the parameter is held at.
    pub value: f64,
    /// The log-likelihood maximised over the other parameters.
    pub log_likelihood: f64,
    /// The maximising values of all the model's parameters (in `model.params` order, the held
    /// one included).
    pub params: Vec<f64>,
}

/// The profile log-likelihood of `param` of `model` at each of `values` (clipped into the
/// parameter's bounds), in the order given; empty if the model lacks the parameter. Each point
/// is the best of `options.random_starts + 1` starts; points run in parallel.
pub fn profile_curve(
    features: &Features,
    weights: &Weights,
    model: &Model,
    param: Param,
    values: &[f64],
    options: &FitOptions,
) -> Vec<ProfilePoint> {
    let Some(index) = model.params.iter().position(|&p| p == param) else {
        return Vec::new();
    };
    let starts: Vec<Vec<f64>> = starts(model, options)
        .into_iter()
        .map(|start| {
            model
                .params
                .iter()
                .zip(&start)
                .enumerate()
                .filter(|&(i, _)| i != index)
                .map(|(_, (p, &x))| p.to_unbounded(x))
                .collect()
        })
        .collect();
    let jobs: Vec<(usize, usize)> = (0..values.len())
        .flat_map(|v| (0..starts.len()).map(move |s| (v, s)))
        .collect();
    let results: Vec<(Vec<f64>, f64)> = jobs
        .par_iter()
        .map(|&(v, s)| {
            let fixed = param.to_unbounded(param.clip(values[v]));
            let objective = Objective::new(features, weights, model, Some((index, fixed)));
            let (free, ll) = maximise(&objective, starts[s].clone(), options.max_iters);
            (objective.values(&free), ll)
        })
        .collect();
    values
        .iter()
        .enumerate()
        .map(|(v, &value)| {
            let (params, log_likelihood) = results[v * starts.len()..(v + 1) * starts.len()]
                .iter()
                .filter(|(_, ll)| !ll.is_nan())
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .cloned()
                .unwrap_or((Vec::new(), f64::NEG_INFINITY));
            ProfilePoint {
                value: param.clip(value),
                log_likelihood,
                params,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::choice::{ChoiceSets, ObserveOptions, enumerated_candidates, observed_programs};
    use crate::data::read_programs;
    use crate::fit::fit;

    /// The discount's profile on the development data (docs/modelling.md §4.5, "Pitman-Yor
    /// discount"): `cargo test -p analysis --lib discount_profile -- --ignored --nocapture`.
    #[test]
    #[ignore = "enumerates the ten reference tasks (about a minute); prints the profile"]
    fn discount_profile_on_the_dev_data() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/programs-dev.csv");
        let rows = read_programs(std::fs::File::open(path).unwrap()).unwrap();
        let set = dsl::tasks::correa2025();
        let tasks: Vec<&dsl::Task> = set.tasks.iter().map(|t| &t.task).collect();
        let labels: Vec<String> = set.tasks.iter().map(|t| t.label.clone()).collect();
        let (observed, _) = observed_programs(&rows.rows, &tasks, &ObserveOptions::default());
        let sets = ChoiceSets::build(
            &labels,
            &observed,
            |t, queries| enumerated_candidates(tasks[t], queries),
            &|_| {},
        )
        .unwrap();
        let features = Features::new(&sets);
        let weights = Weights::all(&sets);
        let options = FitOptions {
            random_starts: 5,
            ..FitOptions::default()
        };
        let values = [0.0, 0.5, 0.9, 0.99, 0.999, 0.9999];
        for name in ["gi", "gi-py", "gi+step", "gi-py+step"] {
            let model = Model::by_name(name).unwrap();
            let fitted = fit(&features, &weights, &model, &FitOptions::default(), &|| {}).unwrap();
            println!(
                "{name}: LL {:.4} at {:?} ({}/{} starts at best)",
                fitted.log_likelihood, fitted.params, fitted.restarts_at_best, fitted.restarts
            );
            if !model.uses_discount() {
                continue;
            }
            let curve = profile_curve(
                &features,
                &weights,
                &model,
                Param::Discount,
                &values,
                &options,
            );
            for point in &curve {
                println!(
                    "  a = {:<7} LL {:.4} at {:?}",
                    point.value, point.log_likelihood, point.params
                );
            }
        }
    }
}
