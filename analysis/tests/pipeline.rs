//! Tests of the analysis pipelines behind `proglab fit` and `proglab train-neural`, on a couple of
//! tasks of the development data: the symbolic fit and cross-validation, typed errors for bad
//! input, and (feature `neural`) the held-out table, including what each fold's network is
//! trained on.

use std::path::Path;
use std::sync::Mutex;

use analysis::AnalysisError;
use analysis::choice::{ObserveOptions, ObservedProgram};
use analysis::fit::FitOptions;
use analysis::models::Model;
use analysis::pipeline::symbolic::{FitConfig, fit_and_cross_validate};
use analysis::pipeline::{Progress, load_observations};
use dsl::tasks::NamedTask;

const PROGRAMS_DEV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/programs-dev.csv");

fn tasks() -> Vec<NamedTask> {
    dsl::tasks::correa2025().tasks.clone()
}

/// The development data's observations of the tasks `only`.
fn observations(only: &[usize]) -> Vec<ObservedProgram> {
    let loaded = load_observations(
        Path::new(PROGRAMS_DEV),
        &tasks(),
        &ObserveOptions::default(),
    )
    .unwrap();
    assert!(loaded.excluded.is_empty(), "{:?}", loaded.excluded);
    loaded
        .observed
        .into_iter()
        .filter(|o| only.contains(&o.task))
        .collect()
}

#[test]
fn a_missing_programs_file_is_an_io_error_that_names_it() {
    let path = Path::new("/nonexistent/programs.csv");
    let error = load_observations(path, &tasks(), &ObserveOptions::default()).unwrap_err();
    assert!(
        matches!(&error, AnalysisError::Io { path: p, .. } if p == path),
        "{error:?}"
    );
    assert!(error.to_string().contains("/nonexistent/programs.csv"));
}

#[test]
fn unknown_models_and_too_few_folds_are_typed_errors() {
    let error = Model::parse_list("gi,nonsense").unwrap_err();
    assert!(
        matches!(&error, AnalysisError::UnknownModel { name, .. } if name == "nonsense"),
        "{error:?}"
    );
    let error = analysis::cv::folds(&[1, 2], 3, 0).unwrap_err();
    assert!(
        matches!(
            error,
            AnalysisError::TooFewParticipants {
                folds: 3,
                participants: 2
            }
        ),
        "{error:?}"
    );
}

#[test]
fn fit_config_defaults_are_the_fit_options_defaults() {
    let config = FitConfig::default();
    assert_eq!(config.fit_options(), FitOptions::default());
    assert_eq!(config.models, Model::reference());
    assert!(config.intervals && config.folds.is_none());
}

#[test]
fn the_symbolic_pipeline_fits_compares_and_cross_validates_one_task() {
    let observed = observations(&[0]);
    let config = FitConfig {
        models: Model::parse_list("null,step").unwrap(),
        restarts: 1,
        seed: 3,
        intervals: false,
        folds: Some(2),
    };
    let enumerated = Mutex::new(Vec::new());
    let cross_validated = Mutex::new(0);
    let analysis = fit_and_cross_validate(&tasks(), &observed, &config, &|event| match event {
        Progress::Enumerating { task, .. } => enumerated.lock().unwrap().push(task.to_owned()),
        Progress::CrossValidated { .. } => *cross_validated.lock().unwrap() += 1,
        _ => {}
    })
    .unwrap();

    let label = &tasks()[0].label;
    let enumerated = enumerated.into_inner().unwrap();
    assert!(!enumerated.is_empty() && enumerated.iter().all(|t| t == label));
    assert_eq!(analysis.choice_sets.n_observations(), observed.len());
    let names: Vec<&str> = analysis
        .comparison
        .models
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names, ["null", "step"]);
    assert!(
        analysis.comparison.models[1].log_likelihood > analysis.comparison.models[0].log_likelihood
    );
    let cv = analysis.cv.unwrap();
    assert_eq!(cv.folds, 2);
    assert_eq!(cross_validated.into_inner().unwrap(), 2 * 2);
    assert_eq!(cv.fold_observations.iter().sum::<usize>(), observed.len());
}

#[cfg(feature = "neural")]
mod neural {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::{Mutex, OnceLock};

    use analysis::choice::ObservedProgram;
    use analysis::neural::Device;
    use analysis::neural::cv::{NeuralCvProgress, TrainingProgram};
    use analysis::pipeline::Progress;
    use analysis::pipeline::neural::{NeuralConfig, NeuralTable, NeuralTableConfig, neural_table};

    use super::{observations, tasks};

    const FOLDS: usize = 3;
    const SEED: u64 = 5;

    /// One small held-out table (two tasks, a tiny network, one epoch) with the programs each
    /// fold's network was handed, computed once for the tests below.
    struct Run {
        observed: Vec<ObservedProgram>,
        table: NeuralTable,
        training: Vec<(usize, Vec<TrainingProgram>)>,
    }

    fn run() -> &'static Run {
        static RUN: OnceLock<Run> = OnceLock::new();
        RUN.get_or_init(|| {
            let observed = observations(&[0, 2]);
            let config = NeuralTableConfig {
                models: "null,step,neural-tf".into(),
                top_n: Some(100),
                rank_model: "step".into(),
                random_starts: 1,
                network: NeuralConfig {
                    width: 16,
                    layers: 1,
                    heads: 2,
                    dropout: 0.0,
                    epochs: 1,
                    seed: SEED,
                    ..NeuralConfig::default()
                },
                plots: None,
            };
            let training = Mutex::new(Vec::new());
            let table = neural_table(
                &tasks(),
                &observed,
                FOLDS,
                &config,
                &Device::Cpu,
                &|event| {
                    if let Progress::Neural(NeuralCvProgress::Training { fold, programs }) = event {
                        training.lock().unwrap().push((fold, programs.to_vec()));
                    }
                },
            )
            .unwrap();
            Run {
                observed,
                table,
                training: training.into_inner().unwrap(),
            }
        })
    }

    #[test]
    fn each_folds_network_is_trained_on_exactly_the_other_participants_programs() {
        let run = run();
        let participants: Vec<u32> = run.observed.iter().map(|o| o.participant).collect();
        let folds = analysis::cv::folds(&participants, FOLDS, SEED).unwrap();
        assert_eq!(
            run.training
                .iter()
                .map(|(fold, _)| *fold)
                .collect::<Vec<_>>(),
            [0, 1, 2]
        );
        for (fold, programs) in &run.training {
            let held_out = &folds[*fold];
            assert!(!programs.is_empty());
            let leaked: BTreeSet<u32> = programs
                .iter()
                .map(|p| p.participant)
                .filter(|p| held_out.contains(p))
                .collect();
            assert!(
                leaked.is_empty(),
                "fold {fold} trains on held-out {leaked:?}"
            );
            let mut expected: Vec<TrainingProgram> = run
                .observed
                .iter()
                .filter(|o| !held_out.contains(&o.participant))
                .map(|o| TrainingProgram {
                    participant: o.participant,
                    task: o.task,
                    program: o.text.clone(),
                })
                .collect();
            let mut seen = programs.clone();
            expected.sort();
            seen.sort();
            assert_eq!(seen, expected, "fold {fold}");
        }
    }

    #[test]
    fn the_neural_table_runs_end_to_end_on_two_tasks() {
        let run = run();
        let table = &run.table;
        let names: Vec<&str> = table.cv.models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["null", "step", "neural-tf"]);
        for model in &table.cv.models {
            assert_eq!(model.per_fold.len(), FOLDS);
            assert!(model.per_fold.iter().all(|ll| ll.is_finite() && *ll < 0.0));
        }
        let k: BTreeMap<&str, usize> = table.k.iter().map(|(n, k)| (n.as_str(), *k)).collect();
        assert_eq!(
            k,
            BTreeMap::from([("neural-tf", 1), ("null", 0), ("step", 1)])
        );
        assert_eq!(table.n_observations, run.observed.len());
        let approximation = table.approximation.as_ref().unwrap();
        assert_eq!(approximation.top_n, 100);
        assert_eq!(approximation.rank_model, "step");
        let comparison = table.comparison.as_ref().unwrap();
        assert_eq!(comparison.models.len(), 2);
        assert_eq!(table.neural_fits.len(), FOLDS);
        assert!(table.scored_programs > 0 && table.network_parameters > 0);
        let text = table.render();
        assert!(text.contains("held-out log-likelihood, 3 participant folds (seed 5)"));
        assert!(text.contains("neural-tf"));
    }
}
