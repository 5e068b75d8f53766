//! The held-out table of symbolic and neural models on some tasks of the development data: 5
//! participant folds and leave-one-task-out, full fold choice sets (docs/modelling.md §4.9),
//! several network seeds. The neural rows score every candidate of every task once per split and
//! seed, so on a CPU the whole table is a long job; this example runs it on a subset of tasks.
//!
//! ```text
//! cargo run --release -p analysis --features neural --example held_out_table -- 0,2,4,8,9 3
//! ```
//! (task indices, network seeds, and which splits the neural models are evaluated on:
//! `participants`, `tasks` or `both`; defaults: the five smallest tasks, 3 seeds, both). With
//! `PROGLAB_SPLITS_DIR=DIR`, finished splits are kept in DIR and a rerun resumes from them.

use std::path::Path;
use std::time::Instant;

use analysis::choice::ObserveOptions;
use analysis::compare::PairedDifference;
use analysis::models::Model;
use analysis::neural::{Device, NeuralModel};
use analysis::pipeline::load_observations;
use analysis::pipeline::neural::NeuralConfig;
use analysis::pipeline::neural::held_out::{
    FIXED_IN_ADVANCE, NeuralHeldOutConfig, add_to_participant_cv, add_to_task_cv, neural_held_out,
};
use analysis::pipeline::symbolic::{FitConfig, HeldOut, fit_and_hold_out};

const PROGRAMS_DEV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/programs-dev.csv");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let only: Vec<usize> = match args.next() {
        Some(list) => list
            .split(',')
            .map(|t| t.trim().parse())
            .collect::<Result<_, _>>()?,
        None => vec![0, 2, 4, 8, 9],
    };
    let seeds: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);
    // Which splits the neural models are evaluated on (the symbolic ones: always both).
    let (neural_folds, neural_tasks) = match args.next().as_deref() {
        None | Some("both") => (Some(5), true),
        Some("participants") => (Some(5), false),
        Some("tasks") => (None, true),
        Some(other) => return Err(format!("`{other}`: participants, tasks or both").into()),
    };
    let tasks = dsl::tasks::correa2025().tasks.clone();
    let loaded = load_observations(Path::new(PROGRAMS_DEV), &tasks, &ObserveOptions::default())?;
    let observed: Vec<_> = loaded
        .observed
        .into_iter()
        .filter(|o| only.contains(&o.task))
        .collect();
    let began = Instant::now();
    let config = FitConfig {
        models: Model::parse_list("null,mdl,step,mdl+step,gi,gi+step,gi-py+step")?,
        restarts: 10,
        seed: 0,
        intervals: false,
        folds: Some(5),
    };
    let mut symbolic =
        fit_and_hold_out(&tasks, &observed, &config, HeldOut { tasks: true }, &|_| {})?;
    let symbolic_seconds = began.elapsed().as_secs_f64();
    let neural_config = NeuralHeldOutConfig {
        folds: neural_folds,
        fold_seed: 0,
        tasks: neural_tasks,
        seeds,
        network: NeuralConfig::default(),
        hyperparameters: FIXED_IN_ADVANCE.into(),
        splits_dir: std::env::var_os("PROGLAB_SPLITS_DIR").map(Into::into),
    };
    let models: Vec<NeuralModel> = ["neural-tf", "neural-tf+step"]
        .iter()
        .filter_map(|name| NeuralModel::by_name(name))
        .collect();
    let neural = neural_held_out(
        &tasks,
        &observed,
        &models,
        &neural_config,
        &Device::Cpu,
        &|_| {},
    )?;
    let (Some(cv), Some(cv_tasks)) = (symbolic.cv.as_mut(), symbolic.cv_tasks.as_mut()) else {
        return Err("no held-out tables".into());
    };
    if let Some(rows) = &neural.participants {
        add_to_participant_cv(cv, rows)?;
    }
    if let Some(rows) = &neural.tasks {
        add_to_task_cv(cv_tasks, rows)?;
    }
    let labels: Vec<&str> = only
        .iter()
        .filter_map(|&t| tasks.get(t).map(|t| t.label.as_str()))
        .collect();
    println!(
        "tasks {} of the development data, {} observations; full fold choice sets ({}); network seeds {:?}; hyperparameters {}",
        labels.join(","),
        observed.len(),
        cv.choice_sets,
        neural.seeds,
        neural.config.hyperparameters
    );
    println!(
        "{:<15} {:>10} {:>24} {:>10} {:>24}",
        "model",
        "5-fold/obs",
        "vs best (± SE ± clustered)",
        "tasks/obs",
        "vs best (± SE ± clustered)"
    );
    let n_tasks: usize = cv_tasks.task_observations.iter().sum();
    for model in &cv.models {
        let by_task = match cv_tasks.models.iter().find(|m| m.name == model.name) {
            Some(m) => format!(
                "{:>10.4} {:>24}",
                m.held_out_log_likelihood / n_tasks.max(1) as f64,
                against_best(&cv_tasks.versus_best, &m.name)
            ),
            None => format!("{:>10} {:>24}", "-", "not evaluated"),
        };
        println!(
            "{:<15} {:>10.4} {:>24} {by_task}",
            model.name,
            model.per_observation,
            against_best(&cv.versus_best, &model.name),
        );
    }
    println!("leave-one-task-out, held-out log-likelihood per choice by task");
    for (t, task) in cv_tasks.tasks.iter().enumerate() {
        let row: Vec<String> = cv_tasks
            .models
            .iter()
            .map(|m| {
                format!(
                    "{} {:.3}",
                    m.name,
                    m.per_task[t] / cv_tasks.task_observations[t] as f64
                )
            })
            .collect();
        println!("  {task}: {}", row.join(", "));
    }
    for (what, evaluation) in [
        ("participants", &neural.participants),
        ("tasks", &neural.tasks),
    ] {
        if let Some(evaluation) = evaluation {
            for model in &evaluation.models {
                println!(
                    "{what}: {} per seed {:?}, mean {:.2} ± {:.2} (sd)",
                    model.name, model.per_seed, model.held_out_log_likelihood, model.seed_sd
                );
            }
        }
    }
    println!(
        "time: symbolic {symbolic_seconds:.0} s; neural {:.0} s, of which scoring {:.0} s ({} programs, {:.0} programs/s); training {:.0} programs/s",
        began.elapsed().as_secs_f64() - symbolic_seconds,
        neural.score_seconds,
        neural.scored_programs,
        neural.candidates_per_second,
        neural.train_programs_per_second
    );
    Ok(())
}

/// `+0.123 ± 0.005 ± 0.011 vs NAME` (paired and participant-clustered standard errors), or
/// `best`.
fn against_best(differences: &[PairedDifference], model: &str) -> String {
    match differences.iter().find(|d| d.model == model) {
        Some(d) if d.model == d.baseline => "best".to_owned(),
        Some(d) => format!(
            "{:+.3} ± {:.3} ± {:.3} vs {}",
            d.mean_difference, d.standard_error, d.clustered_standard_error, d.baseline
        ),
        None => String::new(),
    }
}
