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
    use std::collections::{BTreeSet, HashSet};
    use std::fs;
    use std::sync::{Mutex, OnceLock};

    use analysis::choice::ObservedProgram;
    use analysis::neural::cv::{NeuralCvProgress, TrainingProgram};
    use analysis::neural::{Device, NEURAL_MODELS, NeuralModel};
    use analysis::pipeline::Progress;
    use analysis::pipeline::neural::NeuralConfig;
    use analysis::pipeline::neural::held_out::{
        FIXED_IN_ADVANCE, NeuralHeldOut, NeuralHeldOutConfig, add_to_participant_cv,
        add_to_task_cv, neural_held_out,
    };
    use analysis::pipeline::symbolic::{FitConfig, HeldOut, SymbolicAnalysis, fit_and_hold_out};

    use super::{Model, observations, tasks};

    const FOLDS: usize = 2;
    const SEED: u64 = 5;
    const MODELS: [NeuralModel; 2] = NEURAL_MODELS;

    /// What one split's network and choice sets were handed.
    struct SplitData {
        training: Vec<TrainingProgram>,
        set_programs: Vec<(usize, String)>,
    }

    /// One small evaluation (tasks a and c, a tiny network, one epoch, full choice sets):
    /// participant folds and held-out tasks, with what each split used, computed once for the
    /// tests below.
    struct Run {
        observed: Vec<ObservedProgram>,
        symbolic: SymbolicAnalysis,
        config: NeuralHeldOutConfig,
        neural: NeuralHeldOut,
        /// In order: the participant folds, then the held-out tasks.
        splits: Vec<SplitData>,
    }

    fn run() -> &'static Run {
        static RUN: OnceLock<Run> = OnceLock::new();
        RUN.get_or_init(|| {
            let observed = observations(&[0, 2]);
            let config = FitConfig {
                models: Model::parse_list("null,step").unwrap(),
                restarts: 1,
                seed: SEED,
                intervals: false,
                folds: Some(FOLDS),
            };
            let symbolic = fit_and_hold_out(
                &tasks(),
                &observed,
                &config,
                HeldOut { tasks: true },
                &|_| {},
            )
            .unwrap();
            let network = NeuralConfig {
                width: 16,
                layers: 1,
                heads: 2,
                dropout: 0.0,
                epochs: 1,
                seed: 11,
                ..NeuralConfig::default()
            };
            let kept_dir =
                std::env::temp_dir().join(format!("proglab-kept-splits-{}", std::process::id()));
            let _ = fs::remove_dir_all(&kept_dir);
            let neural_config = NeuralHeldOutConfig {
                folds: Some(FOLDS),
                fold_seed: SEED,
                tasks: true,
                seeds: 1,
                network,
                hyperparameters: FIXED_IN_ADVANCE.into(),
                splits_dir: Some(kept_dir.clone()),
            };
            let splits: Mutex<Vec<SplitData>> = Mutex::new(Vec::new());
            let neural = neural_held_out(
                &tasks(),
                &observed,
                &MODELS,
                &neural_config,
                &Device::Cpu,
                &|event| match event {
                    Progress::Neural(NeuralCvProgress::Training { programs, .. }) => {
                        splits.lock().unwrap().push(SplitData {
                            training: programs.to_vec(),
                            set_programs: Vec::new(),
                        });
                    }
                    Progress::Neural(NeuralCvProgress::SetPrograms { programs, .. }) => {
                        if let Some(split) = splits.lock().unwrap().last_mut() {
                            split.set_programs = programs.to_vec();
                        }
                    }
                    _ => {}
                },
            )
            .unwrap();
            Run {
                observed,
                symbolic,
                config: neural_config,
                neural,
                splits: splits.into_inner().unwrap(),
            }
        })
    }

    /// Whether the observation of `participant` on `task` trains split `index` (participant
    /// folds first, then one held-out task per split).
    fn training(run: &Run, index: usize, participant: u32, task: usize) -> bool {
        let participants: Vec<u32> = run.observed.iter().map(|o| o.participant).collect();
        let folds = analysis::cv::folds(&participants, FOLDS, SEED).unwrap();
        match index.checked_sub(FOLDS) {
            None => !folds[index].contains(&participant),
            Some(held_task) => task != [0, 2][held_task],
        }
    }

    #[test]
    fn no_held_out_program_reaches_a_network_or_a_choice_set() {
        let run = run();
        assert_eq!(
            run.splits.len(),
            FOLDS + 2,
            "two folds and two held-out tasks"
        );
        for (index, split) in run.splits.iter().enumerate() {
            // The network is trained on exactly the training observations.
            let mut expected: Vec<TrainingProgram> = run
                .observed
                .iter()
                .filter(|o| training(run, index, o.participant, o.task))
                .map(|o| TrainingProgram {
                    participant: o.participant,
                    task: o.task,
                    program: o.text.clone(),
                })
                .collect();
            let mut seen = split.training.clone();
            expected.sort();
            seen.sort();
            assert!(!seen.is_empty());
            assert_eq!(seen, expected, "split {index}");
            // The sets hold, beyond the enumeration, only programs that training observations
            // chose, and every training program the enumeration lacks.
            let trained: HashSet<(usize, &str)> = expected
                .iter()
                .map(|p| (p.task, p.program.as_str()))
                .collect();
            for (task, program) in &split.set_programs {
                assert!(
                    trained.contains(&(*task, program.as_str())),
                    "split {index}: task {task}'s set holds `{program}`, which no training observation chose"
                );
            }
            let outside: BTreeSet<(usize, &str)> = run
                .symbolic
                .choice_sets
                .tasks
                .iter()
                .enumerate()
                .flat_map(|(t, set)| set.observations.iter().map(move |o| (t, o)))
                .filter(|(t, o)| !o.in_enumeration && training(run, index, o.participant, *t))
                .map(|(t, o)| (t, o.program.as_str()))
                .collect();
            let listed: BTreeSet<(usize, &str)> = split
                .set_programs
                .iter()
                .map(|(t, p)| (*t, p.as_str()))
                .collect();
            assert_eq!(listed, outside, "split {index}");
        }
    }

    #[test]
    fn neural_rows_join_the_symbolic_tables_without_changing_them() {
        let run = run();
        let mut symbolic = run.symbolic.clone();
        let before = symbolic.cv.clone().unwrap();
        let participants = run.neural.participants.as_ref().unwrap();
        add_to_participant_cv(symbolic.cv.as_mut().unwrap(), participants).unwrap();
        let cv = symbolic.cv.as_ref().unwrap();
        let names: Vec<&str> = cv.models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["null", "step", "neural-tf", "neural-tf+step"]);
        // The symbolic rows are untouched.
        assert_eq!(cv.models[..2], before.models[..]);
        assert_eq!(
            cv.observation_log_likelihoods[..2],
            before.observation_log_likelihoods[..]
        );
        for (model, values) in cv.models.iter().zip(&cv.observation_log_likelihoods) {
            assert_eq!(model.per_fold.len(), FOLDS);
            assert_eq!(values.len(), run.observed.len());
            assert!(values.iter().all(|v| v.is_finite() && *v < 0.0));
            let total: f64 = values.iter().sum();
            assert!((total - model.held_out_log_likelihood).abs() < 1e-6 * total.abs());
        }
        assert_eq!(cv.versus_best.len(), 4);
        assert_eq!(cv.paired.len(), 6);

        let mut tasks = symbolic.cv_tasks.clone().unwrap();
        add_to_task_cv(&mut tasks, run.neural.tasks.as_ref().unwrap()).unwrap();
        assert_eq!(tasks.models.len(), 4);
        for model in &tasks.models {
            assert_eq!(model.per_task.len(), 2);
        }
        // The fitted β of neural-tf+step can only match or beat neural-tf on its training data.
        for fold in 0..FOLDS {
            let fit = |name: &str| {
                participants
                    .fits
                    .iter()
                    .find(|f| f.fit.model == name && f.fit.fold == fold)
                    .unwrap()
                    .fit
                    .clone()
            };
            assert!(
                fit("neural-tf+step").train_log_likelihood
                    >= fit("neural-tf").train_log_likelihood - 0.1
            );
        }
        assert_eq!(run.neural.seeds, [11]);
        assert_eq!(run.neural.config.hyperparameters, FIXED_IN_ADVANCE);
        // Every program of both tasks' sets was scored in each of the four splits.
        let per_split = 39_650 + 50_140;
        assert!(run.neural.scored_programs >= 4 * per_split);
    }

    /// Runs `config` again on the run's observations: the evaluation, the splits trained and
    /// the splits loaded.
    fn again(
        run: &Run,
        config: &NeuralHeldOutConfig,
    ) -> (Result<NeuralHeldOut, String>, usize, usize) {
        let (trained, loaded) = (Mutex::new(0), Mutex::new(0));
        let result = neural_held_out(
            &tasks(),
            &run.observed,
            &MODELS,
            config,
            &Device::Cpu,
            &|event| match event {
                Progress::Neural(NeuralCvProgress::Training { .. }) => {
                    *trained.lock().unwrap() += 1;
                }
                Progress::Neural(NeuralCvProgress::Loaded { .. }) => *loaded.lock().unwrap() += 1,
                _ => {}
            },
        )
        .map_err(|e| e.to_string());
        (
            result,
            trained.into_inner().unwrap(),
            loaded.into_inner().unwrap(),
        )
    }

    #[test]
    fn a_stopped_evaluation_resumes_from_its_kept_splits_and_refuses_another_evaluations() {
        let run = run();
        let dir = run.config.splits_dir.clone().unwrap();
        let kept: BTreeSet<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let expected: BTreeSet<String> = [
            "participants-seed11-split0.json",
            "participants-seed11-split1.json",
            "tasks-seed11-split0.json",
            "tasks-seed11-split1.json",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            kept, expected,
            "one file per split and seed, nothing partial"
        );

        // A rerun loads every split: nothing is trained again and every number is the same.
        let (rerun, trained, loaded) = again(run, &run.config);
        assert_eq!((trained, loaded), (0, FOLDS + 2));
        assert_eq!(rerun.unwrap(), run.neural);

        // A missing split (a run stopped before it finished) is evaluated; the others load.
        let missing = dir.join("tasks-seed11-split1.json");
        fs::remove_file(&missing).unwrap();
        let (rerun, trained, loaded) = again(run, &run.config);
        assert_eq!((trained, loaded), (1, FOLDS + 1));
        let rerun = rerun.unwrap();
        assert_eq!(rerun.participants, run.neural.participants);
        let tasks = rerun.tasks.unwrap();
        let first = run.neural.tasks.as_ref().unwrap();
        assert_eq!(tasks.observations, first.observations);
        assert_eq!(
            tasks.fits[..2],
            first.fits[..2],
            "the first held-out task was loaded"
        );
        assert!(missing.exists());

        // Other settings: refused, naming what differs, and the kept files stay as they were.
        let kept_file = dir.join("participants-seed11-split0.json");
        let before = fs::read(&kept_file).unwrap();
        let mut other = run.config.clone();
        other.network.epochs = 2;
        let (refused, trained, _) = again(run, &other);
        let message = refused.unwrap_err();
        assert!(message.contains("network.epochs"), "{message}");
        assert_eq!(trained, 0);
        assert_eq!(fs::read(&kept_file).unwrap(), before);

        // A damaged file is an error that says which file, not a crash or a silent rerun.
        fs::write(&kept_file, "{ not a kept split").unwrap();
        let (refused, trained, _) = again(run, &run.config);
        let message = refused.unwrap_err();
        assert!(
            message.contains("participants-seed11-split0.json")
                && message.contains("not a kept split"),
            "{message}"
        );
        assert_eq!(trained, 0);
        fs::remove_dir_all(&dir).unwrap();
    }
}
