//! Building, seeding, training, saving and loading the program language model.
//!
//! Initialisation is seeded: candle's CPU generator cannot be seeded, so after the layers are
//! created every variable is overwritten, in name order, from a ChaCha generator. Training is
//! AdamW on the mean per-token negative log-likelihood, with seeded shuffling and dropout, so the
//! same data, configuration and seed give the same weights on the CPU. Weights are saved as
//! safetensors; the configuration goes to a JSON file beside them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, VarBuilder, VarMap};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use dsl::{Program, Task};

use crate::neural::NeuralError;
use crate::neural::tokens::{CELL_FEATURES, EOS, PAD, Vocab, task_features};
use crate::neural::transformer::{Batch, Dropout, ProgramTransformer, TransformerConfig};

/// The tasks a model is trained or scored on, as cell features, indexed like the experiment's
/// task list.
#[derive(Debug, Clone)]
pub struct TaskTable {
    /// Per task: `cells * CELL_FEATURES` features.
    features: Vec<Vec<f32>>,
}

impl TaskTable {
    pub fn new(tasks: &[&Task]) -> TaskTable {
        TaskTable {
            features: tasks.iter().map(|t| task_features(t)).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.features.len()
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    fn cells(&self, task: usize) -> usize {
        self.features[task].len() / CELL_FEATURES
    }
}

/// One program of one task, as tokens `BOS ... EOS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub task: usize,
    pub tokens: Vec<u32>,
}

impl Example {
    pub fn new(vocab: &Vocab, task: usize, program: &Program) -> Result<Example, NeuralError> {
        Ok(Example {
            task,
            tokens: vocab.encode(program)?,
        })
    }
}

/// The trained network with its variables and device.
pub struct NeuralLm {
    pub model: ProgramTransformer,
    pub varmap: VarMap,
    pub device: Device,
}

/// Format tag written beside the weights.
const FORMAT: &str = "proglab-neural-tf/1";

#[derive(Serialize, Deserialize)]
struct Sidecar {
    format: String,
    config: TransformerConfig,
}

impl NeuralLm {
    /// A new model with seeded initial weights.
    pub fn new(
        config: TransformerConfig,
        device: &Device,
        seed: u64,
    ) -> Result<NeuralLm, NeuralError> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let model = ProgramTransformer::new(config, vb)?;
        seeded_init(&varmap, config.layers, seed)?;
        Ok(NeuralLm {
            model,
            varmap,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &TransformerConfig {
        &self.model.config
    }

    /// Number of trainable values.
    pub fn n_parameters(&self) -> usize {
        self.varmap.all_vars().iter().map(|v| v.elem_count()).sum()
    }

    /// Saves the weights to `path` (safetensors) and the configuration to `path` with extension
    /// `json`.
    pub fn save(&self, path: &Path) -> Result<(), NeuralError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| NeuralError::Io {
                path: parent.to_owned(),
                source,
            })?;
        }
        self.varmap
            .save(path)
            .map_err(|source| NeuralError::Weights {
                path: path.to_owned(),
                source,
            })?;
        let sidecar = Sidecar {
            format: FORMAT.into(),
            config: self.model.config,
        };
        let json = serde_json::to_string_pretty(&sidecar).map_err(|e| {
            NeuralError::Invalid(format!("cannot write the model configuration: {e}"))
        })?;
        let config_path = sidecar_path(path);
        std::fs::write(&config_path, json).map_err(|source| NeuralError::Io {
            path: config_path,
            source,
        })
    }

    /// Loads a model saved by [`NeuralLm::save`].
    pub fn load(path: &Path, device: &Device) -> Result<NeuralLm, NeuralError> {
        let config_path = sidecar_path(path);
        let text = std::fs::read_to_string(&config_path).map_err(|source| NeuralError::Io {
            path: config_path.clone(),
            source,
        })?;
        let sidecar: Sidecar =
            serde_json::from_str(&text).map_err(|source| NeuralError::Config {
                path: config_path.clone(),
                source,
            })?;
        if sidecar.format != FORMAT {
            return Err(NeuralError::Invalid(format!(
                "{}: format `{}`, expected `{FORMAT}`",
                config_path.display(),
                sidecar.format
            )));
        }
        let mut lm = NeuralLm::new(sidecar.config, device, 0)?;
        lm.varmap
            .load(path)
            .map_err(|source| NeuralError::Weights {
                path: path.to_owned(),
                source,
            })?;
        Ok(lm)
    }

    /// Builds the batch of `examples` on this model's device.
    pub fn batch(&self, tasks: &TaskTable, examples: &[&Example]) -> Result<Batch, NeuralError> {
        make_batch(&self.model.config.vocab, tasks, examples, &self.device)
    }
}

fn sidecar_path(path: &Path) -> PathBuf {
    path.with_extension("json")
}

/// Overwrites every variable, in name order, with seeded values: layer-norm weights 1 and biases
/// 0, other biases 0, embeddings N(0, 0.1²), linear weights N(0, 1/fan_in) with the residual
/// projections scaled down by √(2 · layers) (GPT-2's scheme, so the residual stream keeps its
/// scale at initialisation).
fn seeded_init(varmap: &VarMap, layers: usize, seed: u64) -> Result<(), NeuralError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data = varmap
        .data()
        .lock()
        .map_err(|_| NeuralError::Invalid("variable map lock poisoned".into()))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let shape = var.shape().clone();
        let n = shape.elem_count();
        let is_norm = name.split('.').any(|part| part.starts_with("ln"));
        let values: Vec<f32> = if is_norm {
            let one = if name.ends_with("weight") { 1.0 } else { 0.0 };
            vec![one; n]
        } else if name.ends_with("bias") {
            vec![0.0; n]
        } else if name.starts_with("tokens") || name.starts_with("positions") {
            (0..n).map(|_| 0.1 * normal(&mut rng)).collect()
        } else {
            let fan_in = shape.dims().last().copied().unwrap_or(1).max(1) as f32;
            let residual = name.ends_with("proj.weight") || name.ends_with("out.weight");
            let scale = if residual {
                (2.0 * layers as f32).sqrt()
            } else {
                1.0
            };
            let std = 1.0 / fan_in.sqrt() / scale;
            (0..n).map(|_| std * normal(&mut rng)).collect()
        };
        var.set(&Tensor::from_vec(values, shape, var.device())?)?;
    }
    Ok(())
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// Pads `examples` into a [`Batch`].
pub fn make_batch(
    vocab: &Vocab,
    tasks: &TaskTable,
    examples: &[&Example],
    device: &Device,
) -> Result<Batch, NeuralError> {
    if examples.is_empty() {
        return Err(NeuralError::Invalid("an empty batch".into()));
    }
    let len = examples
        .iter()
        .map(|e| e.tokens.len() - 1)
        .max()
        .unwrap_or(1);
    let b = examples.len();
    let mut inputs = Vec::with_capacity(b);
    let mut targets = vec![PAD; b * len];
    let mut target_mask = vec![0f32; b * len];
    let mut distinct: Vec<usize> = Vec::new();
    let mut task_index = Vec::with_capacity(b);
    for (row, example) in examples.iter().enumerate() {
        if example.task >= tasks.len() {
            return Err(NeuralError::Invalid(format!(
                "task {} is not in the task table",
                example.task
            )));
        }
        if example.tokens.len() < 2 || example.tokens.last() != Some(&EOS) {
            return Err(NeuralError::Invalid(
                "an example is not a BOS ... EOS sequence".into(),
            ));
        }
        let n = example.tokens.len() - 1;
        let mut input = example.tokens[..n].to_vec();
        input.resize(len, PAD);
        inputs.push(input);
        targets[row * len..row * len + n].copy_from_slice(&example.tokens[1..]);
        target_mask[row * len..row * len + n]
            .iter_mut()
            .for_each(|m| *m = 1.0);
        let index = match distinct.iter().position(|&t| t == example.task) {
            Some(index) => index,
            None => {
                distinct.push(example.task);
                distinct.len() - 1
            }
        };
        task_index.push(index as u32);
    }
    let grammar = vocab.mask(&inputs, len);
    let cells = distinct.iter().map(|&t| tasks.cells(t)).max().unwrap_or(1);
    let mut cell_values = vec![0f32; distinct.len() * cells * CELL_FEATURES];
    let mut cell_mask = vec![0f32; distinct.len() * cells];
    for (i, &task) in distinct.iter().enumerate() {
        let features = &tasks.features[task];
        cell_values[i * cells * CELL_FEATURES..i * cells * CELL_FEATURES + features.len()]
            .copy_from_slice(features);
        cell_mask[i * cells..i * cells + tasks.cells(task)]
            .iter_mut()
            .for_each(|m| *m = 1.0);
    }
    let flat: Vec<u32> = inputs.into_iter().flatten().collect();
    Ok(Batch {
        inputs: Tensor::from_vec(flat, (b, len), device)?,
        targets: Tensor::from_vec(targets, (b, len), device)?,
        target_mask: Tensor::from_vec(target_mask, (b, len), device)?,
        grammar: Tensor::from_vec(grammar, (b, len, vocab.size()), device)?,
        cells: Tensor::from_vec(cell_values, (distinct.len(), cells, CELL_FEATURES), device)?,
        cell_mask: Tensor::from_vec(cell_mask, (distinct.len(), cells), device)?,
        task_index: Tensor::from_vec(task_index, b, device)?,
    })
}

/// Settings of a training run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Seed of the initialisation, shuffling and dropout.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> TrainConfig {
        TrainConfig {
            epochs: 40,
            batch_size: 32,
            learning_rate: 3e-3,
            weight_decay: 0.05,
            seed: 0,
        }
    }
}

/// Progress of a training run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrainProgress {
    /// Training starts: this many steps in all.
    Started { steps: usize },
    /// One optimiser step finished, with its per-token loss.
    Step { loss: f64 },
    /// An epoch finished, with its mean per-token loss.
    Epoch { epoch: usize, loss: f64 },
}

/// What a training run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainReport {
    pub examples: usize,
    pub steps: usize,
    /// Mean per-token loss of each epoch (nats).
    pub epoch_loss: Vec<f64>,
    pub seconds: f64,
    /// Programs processed per second (forward and backward).
    pub programs_per_second: f64,
}

/// Batches per length bucket: the examples are shuffled, sorted by length within windows of this
/// many batches, cut into batches, and the batches shuffled, so that a batch pads little.
const BUCKET_BATCHES: usize = 8;

/// One epoch's batches (indices into `examples`), drawn from `rng`.
fn bucketed_batches(
    examples: &[Example],
    batch_size: usize,
    order: &mut [usize],
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<usize>> {
    order.shuffle(rng);
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for window in order.chunks_mut(batch_size * BUCKET_BATCHES) {
        window.sort_by_key(|&i| examples[i].tokens.len());
        batches.extend(window.chunks(batch_size).map(<[usize]>::to_vec));
    }
    batches.shuffle(rng);
    batches
}

/// Trains `lm` on `examples`.
pub fn train(
    lm: &mut NeuralLm,
    tasks: &TaskTable,
    examples: &[Example],
    config: &TrainConfig,
    progress: &dyn Fn(TrainProgress),
) -> Result<TrainReport, NeuralError> {
    if examples.is_empty() {
        return Err(NeuralError::Invalid("no training programs".into()));
    }
    if config.batch_size == 0 {
        return Err(NeuralError::Invalid("batch size 0".into()));
    }
    let began = Instant::now();
    let params = candle_nn::ParamsAdamW {
        lr: config.learning_rate,
        weight_decay: config.weight_decay,
        ..candle_nn::ParamsAdamW::default()
    };
    let mut optimiser = candle_nn::AdamW::new(lm.varmap.all_vars(), params)?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut dropout = Dropout {
        p: lm.model.config.dropout,
        rng: ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(1)),
    };
    let steps_per_epoch = examples.len().div_ceil(config.batch_size);
    progress(TrainProgress::Started {
        steps: steps_per_epoch * config.epochs,
    });
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut epoch_loss = Vec::with_capacity(config.epochs);
    let mut steps = 0;
    for epoch in 0..config.epochs {
        let batches = bucketed_batches(examples, config.batch_size, &mut order, &mut rng);
        let (mut total, mut tokens) = (0.0, 0.0);
        for chunk in batches {
            let batch_examples: Vec<&Example> = chunk.iter().map(|&i| &examples[i]).collect();
            let batch = lm.batch(tasks, &batch_examples)?;
            let (picked, _) = lm.model.log_probs(&batch, Some(&mut dropout))?;
            let n_tokens: f64 = batch_examples
                .iter()
                .map(|e| (e.tokens.len() - 1) as f64)
                .sum();
            let loss = (picked.sum_all()? * (-1.0 / n_tokens))?;
            optimiser.backward_step(&loss)?;
            let value = f64::from(loss.to_scalar::<f32>()?);
            total += value * n_tokens;
            tokens += n_tokens;
            steps += 1;
            progress(TrainProgress::Step { loss: value });
        }
        let mean = total / tokens;
        if !mean.is_finite() {
            return Err(NeuralError::Invalid(format!(
                "training diverged in epoch {}",
                epoch + 1
            )));
        }
        epoch_loss.push(mean);
        progress(TrainProgress::Epoch {
            epoch: epoch + 1,
            loss: mean,
        });
    }
    let seconds = began.elapsed().as_secs_f64();
    Ok(TrainReport {
        examples: examples.len(),
        steps,
        epoch_loss,
        seconds,
        programs_per_second: (examples.len() * config.epochs) as f64 / seconds.max(1e-9),
    })
}
