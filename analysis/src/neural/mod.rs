//! Neural baselines (feature `neural`): a task-conditioned program language model, scored inside
//! the same softmax over the same choice sets U_t as the symbolic models (docs/modelling.md §4.4),
//! with the same participant folds.
//!
//! - [`tokens`]: programs as token sequences, the grammar mask, tasks as cell features;
//! - [`transformer`]: the model (candle, parameters named with `VarBuilder::pp`);
//! - [`train`]: seeded initialisation, training, safetensors save and load;
//! - [`score`]: batched log P(program | task), streamed from the candidate iterator;
//! - [`bigram`]: a bigram model of program tokens, the floor a neural model must beat;
//! - [`choice`]: choice sets with program identities (every enumerated program plus the
//!   participants' programs the enumeration lacks);
//! - `choice_fit`: the choice rule on a split's sets, fitted and scored on flat arrays;
//! - [`cv`]: the program-level likelihood and the neural models' held-out evaluation on the
//!   symbolic models' splits (participant folds, held-out tasks);
//! - [`trie`]: prefix-trie scoring of a task's candidates with a key/value cache (candle);
//! - [`fast`]: the trie scorer as plain f32 code with real matrix products, in parallel: the
//!   scorer for whole candidate streams on the CPU.
//!
//! A neural model's score is s(p) = β · log P_model(p | task), or with `+step`
//! s(p) = β · log P_model(p | task) − β_step · S; β (and β_step) are fitted on the training folds
//! like the symbolic models' parameters, the network itself is trained on the training folds'
//! participants only.

pub mod bigram;
pub mod choice;
mod choice_fit;
pub mod cv;
pub mod fast;
pub mod score;
pub mod tokens;
pub mod train;
pub mod transformer;
pub mod trie;

pub use candle_core::Device;
use thiserror::Error;

use crate::error::AnalysisError;

/// Errors of the neural baselines.
#[derive(Debug, Error)]
pub enum NeuralError {
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    #[error("device: {0}")]
    Device(String),
    #[error("{0}")]
    Invalid(String),
    /// A file of a saved model could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A saved model's configuration file is not valid JSON of the expected shape.
    #[error("{}: {source}", path.display())]
    Config {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Saving or loading the weights failed.
    #[error("{}: {source}", path.display())]
    Weights {
        path: std::path::PathBuf,
        #[source]
        source: candle_core::Error,
    },
}

impl From<NeuralError> for AnalysisError {
    fn from(error: NeuralError) -> AnalysisError {
        match error {
            NeuralError::Analysis(inner) => inner,
            other => AnalysisError::Neural(Box::new(other)),
        }
    }
}

/// The neural models `proglab fit` knows.
pub const NEURAL_MODELS: [NeuralModel; 2] = [
    NeuralModel {
        name: "neural-tf",
        step: false,
    },
    NeuralModel {
        name: "neural-tf+step",
        step: true,
    },
];

/// A neural choice model: the transformer's log-probability times β, optionally minus β_step · S.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NeuralModel {
    pub name: &'static str,
    /// Whether the step cost is added to the score.
    pub step: bool,
}

impl NeuralModel {
    /// The model of that name, if it is a neural one.
    pub fn by_name(name: &str) -> Option<NeuralModel> {
        NEURAL_MODELS
            .iter()
            .copied()
            .find(|m| m.name == name.trim())
    }

    /// Names of the free parameters.
    pub fn param_names(&self) -> &'static [&'static str] {
        if self.step {
            &["beta_neural", "beta_step"]
        } else {
            &["beta_neural"]
        }
    }

    /// Free parameters of the choice rule (the network's weights are not counted).
    pub fn k(&self) -> usize {
        self.param_names().len()
    }
}

/// Splits a comma-separated model list into the symbolic names (in order, re-joined with commas)
/// and the neural models.
pub fn split_models(list: &str) -> (String, Vec<NeuralModel>) {
    let mut symbolic = Vec::new();
    let mut neural = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match NeuralModel::by_name(name) {
            Some(model) if !neural.contains(&model) => neural.push(model),
            Some(_) => {}
            None => symbolic.push(name),
        }
    }
    (symbolic.join(","), neural)
}

/// Where the network runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    Cpu,
    Cuda,
}

impl std::str::FromStr for DeviceChoice {
    type Err = NeuralError;
    fn from_str(text: &str) -> Result<DeviceChoice, NeuralError> {
        match text.trim() {
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda),
            other => Err(NeuralError::Device(format!(
                "unknown device `{other}` (cpu or cuda)"
            ))),
        }
    }
}

/// The candle device for `choice`, with a clear error when CUDA was not compiled in or no GPU
/// can be opened.
pub fn device(choice: DeviceChoice) -> Result<Device, NeuralError> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda => cuda_device(),
    }
}

#[cfg(feature = "cuda")]
fn cuda_device() -> Result<Device, NeuralError> {
    Device::new_cuda(0).map_err(|e| {
        NeuralError::Device(format!(
            "no usable CUDA GPU (is the driver's libcuda installed and a GPU visible?): {e}"
        ))
    })
}

#[cfg(not(feature = "cuda"))]
fn cuda_device() -> Result<Device, NeuralError> {
    Err(NeuralError::Device(
        "this build has no CUDA support: rebuild with `--features cuda` (see docs/modelling.md §4.8.5), or use --device cpu"
            .into(),
    ))
}

/// Runs `work` on a rayon pool of `threads` threads (candle's CPU kernels use the current rayon
/// pool). For the small models here one thread was faster than two on the CPU: candle's per-op
/// threading costs more than it gains at these sizes (see `benches/neural.rs`).
pub fn with_threads<T: Send>(
    threads: usize,
    work: impl FnOnce() -> T + Send,
) -> Result<T, NeuralError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| NeuralError::Invalid(format!("cannot start {threads} threads: {e}")))?;
    Ok(pool.install(work))
}

/// Whether this build includes candle's CUDA backend.
pub const CUDA_COMPILED: bool = cfg!(feature = "cuda");
