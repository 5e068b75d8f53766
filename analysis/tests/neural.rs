//! Tests of the neural baselines (feature `neural`, CPU, small sizes): program sequences and the
//! grammar, proper normalisation over a small enumerable program space, the choice-set likelihood
//! against the symbolic code path, training against a bigram floor, saving and loading, the fast
//! scorer against the naive one, and the cross-validation driver.
#![cfg(feature = "neural")]

use std::collections::HashSet;

use analysis::choice::{ObserveOptions, ObservedProgram, observed_programs};
use analysis::data::read_programs;
use analysis::fit::log_likelihood;
use analysis::models::likelihood::{Features, Weights, log_mean_exp};
use analysis::models::{Model, P_END_GRID};
use analysis::neural::bigram::Bigram;
use analysis::neural::choice::{ProgramChoiceSets, build, choice_log_likelihood, chosen};
use analysis::neural::cv::{NeuralCvOptions, hold_out, participant_splits};
use analysis::neural::fast::FastScorer;
use analysis::neural::score::log_probs;
use analysis::neural::tokens::{BOS, EOS, SEP, Vocab};
use analysis::neural::train::{Example, NeuralLm, TaskTable, TrainConfig, train};
use analysis::neural::transformer::TransformerConfig;
use analysis::neural::{
    DeviceChoice, NEURAL_MODELS, NeuralModel, device, split_models, with_threads,
};
use candle_core::Device;
use dsl::{Action, Instr, Limits, Program, Task};

fn all_tasks() -> Vec<&'static Task> {
    dsl::tasks::correa2025()
        .tasks
        .iter()
        .map(|t| &t.task)
        .collect()
}

fn labels() -> Vec<String> {
    dsl::tasks::correa2025()
        .tasks
        .iter()
        .map(|t| t.label.clone())
        .collect()
}

/// The development data's observations, optionally only of some tasks.
fn observations(only: Option<&[usize]>) -> Vec<ObservedProgram> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/programs-dev.csv"
    ))
    .unwrap();
    let file = read_programs(text.as_bytes()).unwrap();
    let (observed, errors) =
        observed_programs(&file.rows, &all_tasks(), &ObserveOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    observed
        .into_iter()
        .filter(|o| only.is_none_or(|tasks| tasks.contains(&o.task)))
        .collect()
}

fn parse(text: &str) -> Program {
    dsl::compact::parse(text, &Limits::default())
        .unwrap()
        .with_slots(4)
}

fn tiny_config(vocab: Vocab) -> TransformerConfig {
    TransformerConfig {
        vocab,
        width: 32,
        layers: 1,
        heads: 2,
        mlp_ratio: 2,
        prefix: 2,
        dropout: 0.0,
    }
}

/// Every program with `slots` subroutine slots whose sequence has at most `max_tokens` tokens
/// between BOS and EOS.
fn all_programs(slots: usize, max_tokens: usize) -> Vec<Program> {
    let mut instrs: Vec<Instr> = Action::ALL.iter().map(|&a| Instr::Act(a)).collect();
    instrs.extend((1..=slots as u8).map(Instr::Call));
    let mut routines: Vec<Vec<Instr>> = vec![Vec::new()];
    let mut frontier = vec![Vec::new()];
    for _ in 0..max_tokens {
        frontier = frontier
            .iter()
            .flat_map(|r: &Vec<Instr>| {
                instrs.iter().map(move |&i| {
                    let mut next = r.clone();
                    next.push(i);
                    next
                })
            })
            .collect();
        routines.extend(frontier.iter().cloned());
    }
    // Grow programs routine by routine; a sequence has its instructions plus one separator
    // before each subroutine up to the last non-empty one.
    let tokens = |routines: &[Vec<Instr>]| {
        let last = routines.iter().rposition(|r| !r.is_empty()).unwrap_or(0);
        routines.iter().map(Vec::len).sum::<usize>() + last
    };
    let mut programs: Vec<Vec<Vec<Instr>>> = routines.iter().map(|r| vec![r.clone()]).collect();
    for _ in 0..slots {
        programs = programs
            .iter()
            .flat_map(|prefix| {
                routines.iter().filter_map(move |r| {
                    let mut next = prefix.clone();
                    next.push(r.clone());
                    (tokens(&next) <= max_tokens).then_some(next)
                })
            })
            .collect();
    }
    programs
        .into_iter()
        .map(|routines| Program { routines })
        .collect()
}

#[test]
fn every_program_has_one_sequence_and_decodes_back() {
    let vocab = Vocab::new(4, 64).unwrap();
    for text in [
        "1LJL1RJR1|WWWS|||",
        "JRWSLJRWSLLWJS||||",
        "W||J||",
        "12LJL12RJR12|WW|WS||",
    ] {
        let program = parse(text);
        let tokens = vocab.encode(&program).unwrap();
        assert_eq!(tokens[0], BOS);
        assert_eq!(*tokens.last().unwrap(), EOS);
        assert_eq!(vocab.decode(&tokens).unwrap().to_compact(), text);
    }
    // Trailing empty routines are not written; inner empty ones are.
    assert_eq!(
        vocab
            .encode(&parse("W||J||"))
            .unwrap()
            .iter()
            .filter(|&&t| t == SEP)
            .count(),
        2
    );
    assert_eq!(vocab.encode(&parse("W||||")).unwrap().len(), 3);
    // Too long or calling beyond the slots: clear errors, not panics.
    let long = parse(&"W".repeat(70));
    assert!(
        vocab
            .encode(&long)
            .unwrap_err()
            .to_string()
            .contains("at most 64")
    );
    let small = Vocab::new(1, 8).unwrap();
    assert!(small.encode(&parse("12|W|J||")).is_err());
}

#[test]
fn the_grammar_allows_exactly_the_continuations_of_program_sequences() {
    let vocab = Vocab::new(2, 4).unwrap();
    let mut allowed = vec![false; vocab.size()];
    vocab.allowed_after(&[BOS], &mut allowed);
    assert!(allowed[EOS as usize] && allowed[SEP as usize]);
    vocab.allowed_after(&[BOS, SEP], &mut allowed);
    assert!(
        !allowed[EOS as usize],
        "a separator must be followed by a routine"
    );
    vocab.allowed_after(&[BOS, SEP, 4, SEP], &mut allowed);
    assert!(!allowed[SEP as usize], "two slots allow two separators");
    vocab.allowed_after(&[BOS, 4, 4, 4, 4], &mut allowed);
    assert_eq!(
        allowed.iter().filter(|&&a| a).count(),
        1,
        "at the length limit only EOS is left"
    );
    vocab.allowed_after(&[BOS, 4, 4, 4], &mut allowed);
    assert!(
        !allowed[SEP as usize],
        "no room for a routine after this separator"
    );
}

#[test]
fn log_probabilities_sum_to_one_over_every_program_of_a_small_space() {
    // One subroutine slot and at most 4 tokens: 2,281 programs, each with its own sequence.
    let vocab = Vocab::new(1, 4).unwrap();
    let programs = all_programs(1, 4);
    let sequences: HashSet<Vec<u32>> = programs.iter().map(|p| vocab.encode(p).unwrap()).collect();
    assert_eq!(sequences.len(), programs.len());
    assert_eq!(programs.len(), 2281);

    let tasks = all_tasks();
    let table = TaskTable::new(&tasks);
    let mut lm = NeuralLm::new(tiny_config(vocab), &Device::Cpu, 7).unwrap();
    // Train briefly on a few programs so that the distribution is far from uniform.
    let training: Vec<Example> = ["WWS", "1J|W", "LLJ"]
        .iter()
        .map(|t| {
            Example::new(
                &vocab,
                0,
                &dsl::compact::parse(
                    t,
                    &Limits {
                        subroutines: 1,
                        ..Limits::default()
                    },
                )
                .unwrap()
                .with_slots(1),
            )
            .unwrap()
        })
        .collect();
    let config = TrainConfig {
        epochs: 30,
        batch_size: 3,
        learning_rate: 1e-2,
        weight_decay: 0.0,
        seed: 1,
    };
    train(&mut lm, &table, &training, &config, &|_| {}).unwrap();

    for task in [0, 5] {
        let examples: Vec<Example> = programs
            .iter()
            .map(|p| Example::new(&vocab, task, p).unwrap())
            .collect();
        let scores = log_probs(&lm, &table, &examples, 256).unwrap();
        assert!(scores.iter().all(|&s| s < 0.0 && s.is_finite()));
        let total: f64 = scores.iter().map(|s| s.exp()).sum();
        assert!(
            (total - 1.0).abs() < 1e-4,
            "task {task}: probabilities sum to {total}"
        );
        let best = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert!(
            best > (1.0 / 2281f64).ln() + 1.0,
            "training made some program far likelier than uniform"
        );
    }
}

fn full_sets(tasks: &[usize]) -> ProgramChoiceSets {
    let observed = observations(Some(tasks));
    build(&all_tasks(), &labels(), &observed, &|_, _| {}).unwrap()
}

#[test]
fn the_program_level_softmax_gives_the_symbolic_likelihood_on_the_same_sets() {
    let sets = full_sets(&[0, 2]);
    let features = Features::new(&sets.choice_sets);
    let weights = Weights::all(&sets.choice_sets);
    let choices = chosen(&sets.tasks, |_| true);
    for (name, params) in [
        ("mdl+step", vec![0.4, 0.7]),
        ("step", vec![1.3]),
        ("gi+step", vec![0.2, 1.5, 0.8, 0.3]),
    ] {
        let model = Model::by_name(name).unwrap();
        let theta = model.theta(&params);
        // The same scores, one per program instead of one per key.
        let grid: Vec<f64> = if model.uses_gi() {
            P_END_GRID.to_vec()
        } else {
            vec![0.5]
        };
        let totals: Vec<f64> = grid
            .iter()
            .map(|&p_end| {
                let scores: Vec<Vec<f64>> = sets
                    .tasks
                    .iter()
                    .map(|t| t.keys.iter().map(|k| theta.score(k, p_end)).collect())
                    .collect();
                choice_log_likelihood(&scores, &choices)
            })
            .collect();
        let program_level = log_mean_exp(&totals);
        let keyed = log_likelihood(&features, &weights, &model, &params);
        assert!(
            (program_level - keyed).abs() < 1e-6 * keyed.abs(),
            "{name}: {program_level} vs {keyed}"
        );
    }
}

#[test]
fn full_sets_stream_every_candidate_and_add_the_missing_observations() {
    let sets = full_sets(&[0]);
    let (task, set) = (&sets.tasks[0], &sets.choice_sets.tasks[0]);
    assert!(task.streamed);
    assert_eq!(task.enumerated, 39_650);
    assert_eq!(set.enumerated, 39_650);
    assert_eq!(task.len() as u64, 39_650 + set.added);
    assert_eq!(task.listed.len() as u64, set.added);
    // Observations in the enumeration point into the stream, the others at the listed programs.
    let candidates: Vec<Program> = analysis::enumerate::candidates(all_tasks()[0])
        .unwrap()
        .map(|(p, _)| p)
        .collect();
    for (obs, &(_, index)) in set.observations.iter().zip(&task.observations) {
        assert_eq!(obs.in_enumeration, index < 39_650, "{}", obs.program);
        let program = if index < 39_650 {
            &candidates[index]
        } else {
            &task.listed[index - 39_650]
        };
        assert_eq!(
            analysis::enumerate::normal_form(program),
            analysis::enumerate::normal_form(&parse(&obs.program))
        );
    }
}

/// Held-out mean log P per program of fold 0 of the symbolic folds.
fn fold_split(observed: &[ObservedProgram], vocab: &Vocab) -> (Vec<Example>, Vec<Example>) {
    let participants: Vec<u32> = observed.iter().map(|o| o.participant).collect();
    let folds = analysis::cv::folds(&participants, 5, 0).unwrap();
    let held_out: HashSet<u32> = folds[0].iter().copied().collect();
    let (mut train_set, mut test_set) = (Vec::new(), Vec::new());
    for obs in observed {
        let example = Example::new(vocab, obs.task, &obs.program).unwrap();
        if held_out.contains(&obs.participant) {
            test_set.push(example)
        } else {
            train_set.push(example)
        }
    }
    (train_set, test_set)
}

#[test]
fn a_trained_transformer_beats_a_bigram_on_held_out_participants() {
    let observed = observations(None);
    let vocab = Vocab::new(4, 64).unwrap();
    let (train_set, test_set) = fold_split(&observed, &vocab);
    let tasks = all_tasks();
    let table = TaskTable::new(&tasks);
    // Small enough for CI (candle's CPU build is unoptimised in the test profile).
    let config = TransformerConfig {
        width: 32,
        layers: 1,
        heads: 2,
        ..TransformerConfig::small(vocab)
    };
    let mut lm = NeuralLm::new(config, &Device::Cpu, 0).unwrap();
    let train_config = TrainConfig {
        epochs: 8,
        batch_size: 16,
        ..TrainConfig::default()
    };
    let report = train(&mut lm, &table, &train_set, &train_config, &|_| {}).unwrap();
    assert!(
        report.epoch_loss.last().unwrap() < &report.epoch_loss[0],
        "{:?}",
        report.epoch_loss
    );

    let neural: f64 = log_probs(&lm, &table, &test_set, 256)
        .unwrap()
        .iter()
        .sum::<f64>()
        / test_set.len() as f64;
    let bigram = Bigram::fit(vocab, &train_set, 0.5, None).unwrap();
    let flat: f64 =
        test_set.iter().map(|e| bigram.log_prob(e)).sum::<f64>() / test_set.len() as f64;
    let by_task = Bigram::fit(vocab, &train_set, 0.5, Some(20.0)).unwrap();
    let task_bigram: f64 =
        test_set.iter().map(|e| by_task.log_prob(e)).sum::<f64>() / test_set.len() as f64;
    eprintln!(
        "held-out mean log P per program: transformer {neural:.3}, bigram {flat:.3}, task bigram {task_bigram:.3} \
         ({} train, {} test programs, {:.0} programs/s)",
        train_set.len(),
        test_set.len(),
        report.programs_per_second
    );
    assert!(neural > flat, "transformer {neural} vs bigram {flat}");
    assert!(
        neural > task_bigram,
        "transformer {neural} vs task bigram {task_bigram}"
    );
}

#[test]
fn saved_weights_load_to_the_same_scores() {
    let vocab = Vocab::new(4, 64).unwrap();
    let tasks = all_tasks();
    let table = TaskTable::new(&tasks);
    let lm = NeuralLm::new(tiny_config(vocab), &Device::Cpu, 3).unwrap();
    let examples: Vec<Example> = ["1LJL1RJR1|WWWS|||", "WWS||||"]
        .iter()
        .map(|t| Example::new(&vocab, 2, &parse(t)).unwrap())
        .collect();
    let before = log_probs(&lm, &table, &examples, 8).unwrap();
    let dir = std::env::temp_dir().join(format!("proglab-neural-{}", std::process::id()));
    // Missing folders are created.
    let path = dir.join("nested").join("model.safetensors");
    lm.save(&path).unwrap();
    let loaded = NeuralLm::load(&path, &Device::Cpu).unwrap();
    assert_eq!(loaded.config(), lm.config());
    assert_eq!(log_probs(&loaded, &table, &examples, 8).unwrap(), before);
    // The same seed gives the same weights; another seed does not.
    let same = NeuralLm::new(tiny_config(vocab), &Device::Cpu, 3).unwrap();
    assert_eq!(log_probs(&same, &table, &examples, 8).unwrap(), before);
    let other = NeuralLm::new(tiny_config(vocab), &Device::Cpu, 4).unwrap();
    assert_ne!(log_probs(&other, &table, &examples, 8).unwrap(), before);
    std::fs::remove_dir_all(&dir).unwrap();
    let missing = NeuralLm::load(&dir.join("none.safetensors"), &Device::Cpu);
    assert!(missing.is_err());
}

#[test]
fn model_lists_split_into_symbolic_and_neural_names() {
    let (symbolic, neural) = split_models("null, mdl,neural-tf,gi+step,neural-tf+step,neural-tf");
    assert_eq!(symbolic, "null,mdl,gi+step");
    assert_eq!(neural, NEURAL_MODELS.to_vec());
    assert_eq!(NeuralModel::by_name("neural-tf+step").unwrap().k(), 2);
}

#[test]
fn cuda_is_a_clear_error_when_not_compiled_in() {
    assert!(matches!(device(DeviceChoice::Cpu), Ok(Device::Cpu)));
    if !analysis::neural::CUDA_COMPILED {
        let error = device(DeviceChoice::Cuda).unwrap_err().to_string();
        assert!(error.contains("no CUDA support"), "{error}");
    }
    assert!("tpu".parse::<DeviceChoice>().is_err());
}

#[test]
fn neural_held_out_rows_use_the_symbolic_folds_on_full_sets() {
    let sets = full_sets(&[0]);
    let tasks = all_tasks();
    let vocab = Vocab::new(4, 64).unwrap();
    let options = NeuralCvOptions {
        model: tiny_config(vocab),
        train: TrainConfig {
            epochs: 2,
            ..TrainConfig::default()
        },
        batch_size: 128,
    };
    let splits = participant_splits(&sets, 2, 5).unwrap();
    let result = hold_out(
        &sets,
        &tasks,
        &NEURAL_MODELS,
        &splits,
        &options,
        &Device::Cpu,
        None,
        &|_| {},
    )
    .unwrap();
    assert_eq!(result.models.len(), 2);
    let n = sets.choice_sets.n_observations();
    assert_eq!(result.observations.len(), n);
    for (model, values) in result
        .models
        .iter()
        .zip(&result.observation_log_likelihoods)
    {
        assert_eq!(model.per_fold.len(), 2);
        assert!(model.per_fold.iter().all(|ll| ll.is_finite() && *ll < 0.0));
        let total: f64 = model.per_fold.iter().sum();
        assert!((model.held_out_log_likelihood - total).abs() < 1e-9);
        assert!((values.iter().sum::<f64>() - total).abs() < 1e-6 * total.abs());
        assert!((model.per_observation - total / n as f64).abs() < 1e-12);
        // A held-out choice in a set of about 40,000 programs: each one's probability is a
        // proper share of its set plus its own program.
        assert!(values.iter().all(|v| *v < 0.0 && *v > -60.0));
    }
    // The held-out observations come fold by fold, in the symbolic folds' order.
    let folds = analysis::cv::folds(&sets.choice_sets.participants(), 2, 5).unwrap();
    for id in &result.observations {
        assert!(folds[id.split].contains(&id.participant));
    }
    // The step cost can only help on the training folds: neural-tf is neural-tf+step at
    // β_step = 0 (up to its lower bound 1e-4, which costs at most n · 1e-4 · (S range) ≈ 0.1).
    for fold in 0..2 {
        let fit = |name: &str| {
            result
                .fits
                .iter()
                .find(|f| f.model == name && f.fold == fold)
                .unwrap()
        };
        assert!(
            fit("neural-tf+step").train_log_likelihood
                >= fit("neural-tf").train_log_likelihood - 0.1
        );
        assert!(fit("neural-tf").params[0] > 0.0);
    }
    // Fold sizes add up to every observation.
    let held: usize = folds
        .iter()
        .map(|f| {
            chosen(&sets.tasks, |p| f.contains(&p))
                .iter()
                .flatten()
                .map(|&(_, c)| c as usize)
                .sum::<usize>()
        })
        .sum();
    assert_eq!(held, n);
    assert_eq!(result.scored_programs, 2 * sets.tasks[0].len());
    assert!(result.candidates_per_second > 0.0 && result.train_programs_per_second > 0.0);
}

/// A small two-layer model trained briefly on the development programs, so that every weight
/// (layer norms included) is away from its initial value.
fn briefly_trained(vocab: Vocab, table: &TaskTable) -> NeuralLm {
    let config = TransformerConfig {
        vocab,
        width: 32,
        layers: 2,
        heads: 4,
        mlp_ratio: 2,
        prefix: 2,
        dropout: 0.0,
    };
    let mut lm = NeuralLm::new(config, &Device::Cpu, 11).unwrap();
    let training: Vec<Example> = observations(None)
        .iter()
        .take(200)
        .map(|o| Example::new(&vocab, o.task, &o.program).unwrap())
        .collect();
    let train_config = TrainConfig {
        epochs: 2,
        batch_size: 32,
        learning_rate: 1e-2,
        ..TrainConfig::default()
    };
    train(&mut lm, table, &training, &train_config, &|_| {}).unwrap();
    lm
}

fn assert_close(fast: &[f64], naive: &[f64], what: &str) {
    assert_eq!(fast.len(), naive.len());
    let worst = fast
        .iter()
        .zip(naive)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "{what}: largest difference {worst:.2e} over {} programs",
        fast.len()
    );
    for (i, (a, b)) in fast.iter().zip(naive).enumerate() {
        assert!((a - b).abs() < 1e-4, "{what} {i}: fast {a}, naive {b}");
    }
}

#[test]
fn the_fast_scorer_equals_the_naive_scorer_on_every_candidate_of_a_task() {
    let vocab = Vocab::new(4, 64).unwrap();
    let tasks = all_tasks();
    let table = TaskTable::new(&tasks);
    let lm = briefly_trained(vocab, &table);
    // Task 0 has the fewest candidates (39,650).
    let task = 0;
    let programs: Vec<Program> = analysis::enumerate::candidates(tasks[task])
        .unwrap()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(programs.len(), 39_650);
    let examples: Vec<Example> = programs
        .iter()
        .map(|p| Example::new(&vocab, task, p).unwrap())
        .collect();
    let naive = log_probs(&lm, &table, &examples, 512).unwrap();
    // Small windows, tries and blocks, so that the stream takes several windows of several tries
    // on two threads and levels take several blocks.
    let fast = FastScorer::new(&lm, &table)
        .unwrap()
        .with_window(10_000)
        .with_chunk(1_500)
        .with_rows(64);
    let mut streamed = Vec::with_capacity(programs.len());
    let stats = with_threads(2, || {
        fast.score_candidates(task, tasks[task], |index, score| {
            assert_eq!(index, streamed.len() as u64, "stream order");
            streamed.push(score);
        })
    })
    .unwrap()
    .unwrap();
    assert_close(&streamed, &naive, "candidate");
    assert_eq!(stats.sequences, programs.len());
    assert!(stats.evaluated < stats.naive_positions / 2 + stats.naive_positions / 4);
    // One trie of the whole list, and the list in parallel chunks, agree too.
    let sequences: Vec<Vec<u32>> = examples.iter().map(|e| e.tokens.clone()).collect();
    let (whole, _) = fast.score_trie(task, &sequences).unwrap();
    assert_close(&whole, &naive, "candidate (one trie)");
    let listed = fast.score_programs(task, &programs[..5_000]).unwrap();
    assert_close(&listed, &naive[..5_000], "candidate (listed)");
}

#[test]
fn the_fast_scorer_equals_the_naive_scorer_on_participant_programs() {
    let vocab = Vocab::new(4, 64).unwrap();
    let tasks = all_tasks();
    let table = TaskTable::new(&tasks);
    let lm = briefly_trained(vocab, &table);
    let fast = FastScorer::new(&lm, &table).unwrap().with_rows(16);
    let observed = observations(None);
    let examples: Vec<Example> = observed
        .iter()
        .map(|o| Example::new(&vocab, o.task, &o.program).unwrap())
        .collect();
    let naive = log_probs(&lm, &table, &examples, 256).unwrap();
    let mut checked = 0;
    for task in 0..tasks.len() {
        let (sequences, expected): (Vec<Vec<u32>>, Vec<f64>) = examples
            .iter()
            .zip(&naive)
            .filter(|(e, _)| e.task == task)
            .map(|(e, &s)| (e.tokens.clone(), s))
            .unzip();
        // Participants repeat programs: equal sequences share one trie leaf.
        let scores = fast.score_sequences(task, &sequences).unwrap();
        assert_close(
            &scores,
            &expected,
            &format!("task {task} participant program"),
        );
        checked += scores.len();
    }
    assert_eq!(checked, examples.len());
    assert!(checked > 500, "{checked} participant programs");
    // Three layers (a block's nodes read their ancestors' keys and values of every later layer
    // from the same block), two heads, another width: untrained, on the programs of one task.
    let deeper = NeuralLm::new(
        TransformerConfig {
            vocab,
            width: 48,
            layers: 3,
            heads: 2,
            mlp_ratio: 2,
            prefix: 3,
            dropout: 0.0,
        },
        &Device::Cpu,
        5,
    )
    .unwrap();
    let task = 2;
    let programs: Vec<Example> = examples
        .iter()
        .filter(|e| e.task == task)
        .cloned()
        .collect();
    let expected = log_probs(&deeper, &table, &programs, 256).unwrap();
    let sequences: Vec<Vec<u32>> = programs.iter().map(|e| e.tokens.clone()).collect();
    let scores = FastScorer::new(&deeper, &table)
        .unwrap()
        .with_rows(7)
        .score_sequences(task, &sequences)
        .unwrap();
    assert_close(&scores, &expected, "three-layer participant program");
    // Bad input is an error, not a panic.
    assert!(fast.score_sequences(0, &[vec![BOS, 4]]).is_err());
    assert!(
        fast.score_sequences(tasks.len(), &[vec![BOS, EOS]])
            .is_err()
    );
    assert!(fast.score_sequences(0, &[]).unwrap().is_empty());
}
