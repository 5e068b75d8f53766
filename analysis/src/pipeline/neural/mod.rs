//! The neural baselines' analyses: training the task-conditioned program transformer on every
//! participant, measuring its scoring throughput, and the held-out table that cross-validates the
//! symbolic and neural models on the same choice sets and participant folds.
//!
//! The config structs are plain data and exist without the `neural` feature, so that a command
//! line built without it still shows the same defaults; the functions need the feature.
//!
//! On the CPU the table's choice sets default to the approximation of `crate::neural::choice`
//! (the observed programs of all participants plus the top [`CPU_TOP_N`] enumerated programs of
//! a ranking model fitted on the full sets); the table says so, and the symbolic models are
//! scored on the same reduced sets.

use std::path::PathBuf;

#[cfg(feature = "neural")]
use crate::neural::NeuralError;
#[cfg(feature = "neural")]
use crate::neural::tokens::Vocab;
#[cfg(feature = "neural")]
use crate::neural::train::TrainConfig;
#[cfg(feature = "neural")]
use crate::neural::transformer::TransformerConfig;

#[cfg(feature = "neural")]
mod table;
#[cfg(feature = "neural")]
mod training;

#[cfg(feature = "neural")]
pub use table::{NeuralTable, neural_table};
#[cfg(feature = "neural")]
pub use training::{TaskThroughput, scoring_throughput, train_network};

/// Reduced choice sets hold this many top programs per task on the CPU unless
/// [`NeuralTableConfig::top_n`] says otherwise.
pub const CPU_TOP_N: usize = 1000;

/// The network and its training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeuralConfig {
    /// Model width.
    pub width: usize,
    pub layers: usize,
    pub heads: usize,
    pub dropout: f32,
    /// Most tokens of a program sequence.
    pub max_tokens: usize,
    pub epochs: usize,
    /// Programs per training batch.
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Programs per scoring batch.
    pub score_batch: usize,
    /// Seed of the folds, the initialisation, the shuffling and the dropout.
    pub seed: u64,
    /// Threads of the rayon pool the network runs in (one was fastest for these small models on
    /// two cores; see `analysis/benches/neural.rs`).
    pub threads: usize,
}

impl Default for NeuralConfig {
    fn default() -> NeuralConfig {
        NeuralConfig {
            width: 64,
            layers: 2,
            heads: 4,
            dropout: 0.1,
            max_tokens: 64,
            epochs: 20,
            batch_size: 32,
            learning_rate: 3e-3,
            weight_decay: 0.05,
            score_batch: 128,
            seed: 0,
            threads: 1,
        }
    }
}

/// Settings of the held-out table beyond the network's.
#[derive(Debug, Clone, PartialEq)]
pub struct NeuralTableConfig {
    /// Comma-separated symbolic and neural model names.
    pub models: String,
    /// Choice sets: the observed programs plus the top N enumerated programs of
    /// [`NeuralTableConfig::rank_model`]; `Some(0)` means the full sets, `None` [`CPU_TOP_N`] on
    /// the CPU and the full sets elsewhere.
    pub top_n: Option<usize>,
    /// The symbolic model whose top N programs form the reduced sets.
    pub rank_model: String,
    /// Random starts of each symbolic fit.
    pub random_starts: usize,
    pub network: NeuralConfig,
    /// Write the comparison figures into this folder.
    pub plots: Option<PathBuf>,
}

impl Default for NeuralTableConfig {
    fn default() -> NeuralTableConfig {
        NeuralTableConfig {
            models: "null,mdl,step,gi,gi+step,neural-tf,neural-tf+step".into(),
            top_n: None,
            rank_model: "gi+step".into(),
            random_starts: 10,
            network: NeuralConfig::default(),
            plots: None,
        }
    }
}

#[cfg(feature = "neural")]
impl NeuralConfig {
    /// The transformer these settings describe, checked.
    pub fn model_config(&self) -> Result<TransformerConfig, NeuralError> {
        let vocab = Vocab::new(dsl::Limits::default().subroutines, self.max_tokens)?;
        let config = TransformerConfig {
            width: self.width,
            layers: self.layers,
            heads: self.heads,
            dropout: self.dropout,
            ..TransformerConfig::small(vocab)
        };
        config.check()?;
        Ok(config)
    }

    /// The training settings.
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            weight_decay: self.weight_decay,
            seed: self.seed,
        }
    }
}
