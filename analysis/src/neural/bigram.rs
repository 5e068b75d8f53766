//! A bigram model of program tokens: P(token | previous token), add-α smoothed and renormalised
//! over the tokens the grammar allows, so it is a distribution over the same sequences as the
//! transformer. With `by_task`, counts of the program's own task are interpolated with the global
//! counts (a Dirichlet prior centred on the global bigram, strength κ).

use crate::neural::NeuralError;
use crate::neural::tokens::Vocab;
use crate::neural::train::Example;

/// A fitted bigram model.
#[derive(Debug, Clone)]
pub struct Bigram {
    vocab: Vocab,
    alpha: f64,
    /// κ for task-specific counts; `None` for the global model.
    kappa: Option<f64>,
    global: Vec<Vec<f64>>,
    by_task: Vec<Vec<Vec<f64>>>,
}

impl Bigram {
    /// Counts the bigrams of `examples`. `alpha` > 0 is the additive smoothing; `kappa` (> 0)
    /// makes the model task-specific.
    pub fn fit(
        vocab: Vocab,
        examples: &[Example],
        alpha: f64,
        kappa: Option<f64>,
    ) -> Result<Bigram, NeuralError> {
        if alpha <= 0.0 || kappa.is_some_and(|k| k <= 0.0) {
            return Err(NeuralError::Invalid(
                "bigram smoothing must be positive".into(),
            ));
        }
        let v = vocab.size();
        let tasks = examples.iter().map(|e| e.task + 1).max().unwrap_or(0);
        let mut global = vec![vec![0.0; v]; v];
        let mut by_task = vec![vec![vec![0.0; v]; v]; if kappa.is_some() { tasks } else { 0 }];
        for example in examples {
            for pair in example.tokens.windows(2) {
                let (a, b) = (pair[0] as usize, pair[1] as usize);
                if a >= v || b >= v {
                    return Err(NeuralError::Invalid(format!(
                        "token out of the vocabulary in {:?}",
                        example.tokens
                    )));
                }
                global[a][b] += 1.0;
                if let Some(counts) = by_task.get_mut(example.task) {
                    counts[a][b] += 1.0;
                }
            }
        }
        Ok(Bigram {
            vocab,
            alpha,
            kappa,
            global,
            by_task,
        })
    }

    /// log P(example) under the model.
    pub fn log_prob(&self, example: &Example) -> f64 {
        let v = self.vocab.size();
        let mut allowed = vec![false; v];
        let mut weights = vec![0.0; v];
        let mut total = 0.0;
        for end in 1..example.tokens.len() {
            let prefix = &example.tokens[..end];
            self.vocab.allowed_after(prefix, &mut allowed);
            let previous = prefix[end - 1] as usize;
            let global = &self.global[previous];
            let global_sum: f64 = global
                .iter()
                .zip(&allowed)
                .filter(|(_, ok)| **ok)
                .map(|(c, _)| c + self.alpha)
                .sum();
            for (token, weight) in weights.iter_mut().enumerate() {
                *weight = if allowed[token] {
                    let base = global[token] + self.alpha;
                    match (self.kappa, self.by_task.get(example.task)) {
                        (Some(kappa), Some(counts)) => {
                            counts[previous][token] + kappa * base / global_sum
                        }
                        _ => base,
                    }
                } else {
                    0.0
                };
            }
            let z: f64 = weights.iter().sum();
            let next = example.tokens[end] as usize;
            total += (weights.get(next).copied().unwrap_or(0.0) / z).ln();
        }
        total
    }
}
