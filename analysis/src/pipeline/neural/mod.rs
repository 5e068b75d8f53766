//! The neural baselines' analyses: training the task-conditioned program transformer on every
//! participant, measuring its scoring throughput, and its held-out rows beside the symbolic
//! models' (`held_out`: the same participant folds and held-out tasks, the same full choice
//! sets, several network seeds).
//!
//! The config structs are plain data and exist without the `neural` feature, so that a command
//! line built without it still shows the same defaults; the functions need the feature.

#[cfg(feature = "neural")]
use crate::neural::NeuralError;
#[cfg(feature = "neural")]
use crate::neural::tokens::Vocab;
#[cfg(feature = "neural")]
use crate::neural::train::TrainConfig;
#[cfg(feature = "neural")]
use crate::neural::transformer::TransformerConfig;

#[cfg(feature = "neural")]
pub mod held_out;
#[cfg(feature = "neural")]
pub mod split_dir;
#[cfg(feature = "neural")]
mod training;

#[cfg(feature = "neural")]
pub use training::{TaskThroughput, scoring_throughput, train_network};

/// The network and its training.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
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
