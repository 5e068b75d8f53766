//! The choice rule of the neural models on a split's choice sets: s(p) = β · log P_net(p) (and
//! − β_step · S(p) for `+step`), a softmax over the split's set of each task, fitted on the
//! training observations and scored on the held-out ones (docs/modelling.md §4.8-4.9).
//!
//! A split's set of task t is a subset of the program-level U_t of
//! [`crate::neural::choice::ProgramChoiceSets`]: the whole stream plus the listed (added)
//! programs that a training observation chose. A held-out observation is scored in that set plus
//! its own program where the set lacks it, exactly as the symbolic models are
//! ([`crate::cv::held_out_log_likelihoods`]).
//!
//! The score is linear in θ, so the log-likelihood is concave and a projected Newton iteration
//! fits it exactly. The arrays are flat (one log-probability per program), because a task's set
//! holds up to millions of programs.

use rayon::prelude::*;

use crate::models::LOWER_BOUND;
use crate::neural::choice::{TaskPrograms, count_choices};

/// Most parameters of a neural choice rule (β and β_step).
const MAX_K: usize = 2;

/// One task's programs as the choice rule of a split sees them.
pub(crate) struct SplitTask<'a> {
    programs: &'a TaskPrograms,
    /// log P_net of every program of U_t.
    log_p: &'a [f64],
    /// Per listed program: whether the split's set holds it.
    listed_member: Vec<bool>,
    /// Training choices: (program index, count).
    pub(crate) chosen: Vec<(usize, f64)>,
    /// Held-out observations: (participant, program index), in observation order.
    pub(crate) held_out: Vec<(u32, usize)>,
}

impl<'a> SplitTask<'a> {
    /// The task's part of a split whose training observations are those `training` accepts.
    pub(crate) fn new(
        programs: &'a TaskPrograms,
        log_p: &'a [f64],
        training: impl Fn(u32) -> bool,
    ) -> SplitTask<'a> {
        let mut listed_member = vec![false; programs.listed.len()];
        // (participant, program index) pairs.
        let (trains, held_out): (Vec<_>, Vec<_>) = programs
            .observations
            .iter()
            .partition(|&&(participant, _)| training(participant));
        for &(_, index) in &trains {
            if let Some(member) = index
                .checked_sub(programs.enumerated)
                .and_then(|i| listed_member.get_mut(i))
            {
                *member = true;
            }
        }
        SplitTask {
            programs,
            log_p,
            listed_member,
            chosen: count_choices(trains.iter().map(|&(_, index)| index)),
            held_out,
        }
    }

    /// Whether program `index` of U_t is in the split's set.
    fn member(&self, index: usize) -> bool {
        index < self.programs.enumerated
            || self
                .listed_member
                .get(index - self.programs.enumerated)
                .copied()
                .unwrap_or(false)
    }

    /// The programs the network's training saw in this task (the chosen ones), for checks.
    pub(crate) fn chosen_indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.chosen.iter().map(|&(k, _)| k)
    }

    fn features(&self, index: usize) -> [f64; MAX_K] {
        [self.log_p[index], -f64::from(self.programs.keys[index].s)]
    }

    fn score(&self, index: usize, theta: &[f64]) -> f64 {
        let x = self.features(index);
        theta.iter().zip(x).map(|(t, x)| t * x).sum()
    }

    /// log Σ exp s over the split's set, with the first `k` parameters of `theta`.
    fn log_z(&self, theta: &[f64]) -> f64 {
        let max = (0..self.log_p.len())
            .filter(|&j| self.member(j))
            .map(|j| self.score(j, theta))
            .fold(f64::NEG_INFINITY, f64::max);
        if !max.is_finite() {
            return max;
        }
        let sum: f64 = (0..self.log_p.len())
            .filter(|&j| self.member(j))
            .map(|j| (self.score(j, theta) - max).exp())
            .sum();
        max + sum.ln()
    }

    /// Log-likelihood, gradient and Hessian of the training choices.
    fn evaluate(&self, theta: &[f64]) -> Evaluation {
        let k = theta.len();
        let mut out = Evaluation::default();
        let n: f64 = self.chosen.iter().map(|&(_, c)| c).sum();
        if n == 0.0 {
            return out;
        }
        let log_z = self.log_z(theta);
        let mut mean = [0.0; MAX_K];
        let mut second = [[0.0; MAX_K]; MAX_K];
        for j in (0..self.log_p.len()).filter(|&j| self.member(j)) {
            let x = self.features(j);
            let p = (self.score(j, theta) - log_z).exp();
            for a in 0..k {
                mean[a] += p * x[a];
                for b in 0..k {
                    second[a][b] += p * x[a] * x[b];
                }
            }
        }
        for &(index, count) in &self.chosen {
            out.ll += count * (self.score(index, theta) - log_z);
            let x = self.features(index);
            for (g, x) in out.gradient.iter_mut().zip(x).take(k) {
                *g += count * x;
            }
        }
        for a in 0..k {
            out.gradient[a] -= n * mean[a];
            for b in 0..k {
                out.hessian[a][b] -= n * (second[a][b] - mean[a] * mean[b]);
            }
        }
        out
    }

    /// Each held-out observation's log-probability at `theta`, in observation order: its score
    /// minus the log normaliser of the split's set, with its own program added when the set
    /// lacks it.
    pub(crate) fn held_out_log_likelihoods(&self, theta: &[f64]) -> Vec<f64> {
        if self.held_out.is_empty() {
            return Vec::new();
        }
        let log_z = self.log_z(theta);
        self.held_out
            .iter()
            .map(|&(_, index)| {
                let own = self.score(index, theta);
                let log_z = if self.member(index) {
                    log_z
                } else {
                    crate::cv::log_add_exp(log_z, own)
                };
                own - log_z
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Evaluation {
    ll: f64,
    gradient: [f64; MAX_K],
    hessian: [[f64; MAX_K]; MAX_K],
}

impl Evaluation {
    fn add(mut self, other: Evaluation) -> Evaluation {
        self.ll += other.ll;
        for a in 0..MAX_K {
            self.gradient[a] += other.gradient[a];
            for b in 0..MAX_K {
                self.hessian[a][b] += other.hessian[a][b];
            }
        }
        self
    }
}

fn evaluate(tasks: &[SplitTask<'_>], theta: &[f64]) -> Evaluation {
    tasks
        .par_iter()
        .map(|task| task.evaluate(theta))
        .reduce(Evaluation::default, Evaluation::add)
}

/// Maximises the training log-likelihood over θ ≥ `LOWER_BOUND` (k = 1 or 2 parameters) from
/// θ = 1: Newton steps over the coordinates not held at their bound (a coordinate at the bound
/// whose gradient points outward stays there), with step halving, and a gradient step where
/// Newton makes no progress. Returns θ and the training log-likelihood.
pub(crate) fn fit(tasks: &[SplitTask<'_>], k: usize) -> (Vec<f64>, f64) {
    let k = k.clamp(1, MAX_K);
    let mut theta = vec![1.0; k];
    let mut current = evaluate(tasks, &theta);
    for _ in 0..500 {
        let free: Vec<usize> = (0..k)
            .filter(|&i| !(theta[i] <= LOWER_BOUND * (1.0 + 1e-9) && current.gradient[i] < 0.0))
            .collect();
        if free.is_empty() {
            break;
        }
        let g: Vec<f64> = free.iter().map(|&i| current.gradient[i]).collect();
        let h: Vec<Vec<f64>> = free
            .iter()
            .map(|&i| free.iter().map(|&j| current.hessian[i][j]).collect())
            .collect();
        let mut improved = None;
        for reduced in [newton_direction(&g, &h), g.clone()] {
            let mut direction = vec![0.0; k];
            for (&i, &d) in free.iter().zip(&reduced) {
                direction[i] = d;
            }
            let mut step = 1.0;
            for _ in 0..60 {
                let candidate: Vec<f64> = theta
                    .iter()
                    .zip(&direction)
                    .map(|(t, d)| (t + step * d).max(LOWER_BOUND))
                    .collect();
                let evaluation = evaluate(tasks, &candidate);
                if evaluation.ll > current.ll {
                    improved = Some((candidate, evaluation));
                    break;
                }
                step *= 0.5;
            }
            if improved.is_some() {
                break;
            }
        }
        let Some((candidate, evaluation)) = improved else {
            break;
        };
        let gain = evaluation.ll - current.ll;
        theta = candidate;
        current = evaluation;
        if gain < 1e-11 {
            break;
        }
    }
    (theta, current.ll)
}

/// −H⁻¹ g for the 1- or 2-dimensional problems here, or the gradient itself where the Hessian is
/// not negative definite.
fn newton_direction(gradient: &[f64], hessian: &[Vec<f64>]) -> Vec<f64> {
    match gradient.len() {
        1 if hessian[0][0] < -1e-12 => vec![-gradient[0] / hessian[0][0]],
        2 => {
            let (a, b, c, d) = (hessian[0][0], hessian[0][1], hessian[1][0], hessian[1][1]);
            let det = a * d - b * c;
            if a < -1e-12 && det > 1e-12 {
                vec![
                    -(d * gradient[0] - b * gradient[1]) / det,
                    -(-c * gradient[0] + a * gradient[1]) / det,
                ]
            } else {
                gradient.to_vec()
            }
        }
        _ => gradient.to_vec(),
    }
}
