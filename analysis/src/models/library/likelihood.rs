//! The library model's log-likelihood and its analytic gradient (docs/modelling.md §4.5, "The
//! library model").
//!
//! Per task and p_end, with r = (1 − w_o')(1 − w_p) and ω_c the candidate's grammar-induction
//! and step factor (each in two variants: an empty or a non-empty cache, and a(b) for a
//! participant outside the population library or a contributor, whose own share is left out),
//! every candidate's weight is ω_c B(T_c) Π_{b ∈ T_c ∩ D_i} x_b, where
//! B(T) = Π_{b ∈ T} (1 + a(b))^β_GI is shared by all observations and x_b = 1 + y_b carries the
//! observation's own terms. The normaliser of observation i is Σ_A Ω_A Π_{b ∈ A} y_b over the
//! subsets A of D_i that occur in some T, with Ω_A = Σ_{T ⊇ A} H_T B(T) and H_T the summed ω of
//! the candidates with that T. The weights are summed through cells (T, routine-length group, L)
//! so that p_end and r act on few numbers, as in `likelihood_groups.rs`.
//!
//! The gradient is reverse mode by hand: the adjoint of each normaliser flows back into the Ω_A,
//! the T, the cells and the keys, each visited once more. Shifts that keep the exponentials in
//! range (m0, m_e, m_B) are constants of the evaluation, so they drop out of the derivatives.

use rayon::prelude::*;

use crate::models::gi::GiTables;
use crate::models::likelihood::{Evaluation, GradientRows, Weights};
use crate::models::{N_PARAMS, P_END_GRID, Param, Theta};

use super::LibraryFeatures;
use super::features::{KeyFeatures, TaskModel};
use super::observation::{BodyTerms, observation, observation_gradient};

pub(super) const N_GRID: usize = P_END_GRID.len();
pub(super) const BETA_STEP: usize = Param::BetaStep as usize;
pub(super) const ALPHA: usize = Param::Alpha as usize;
pub(super) const BETA_GI: usize = Param::BetaGi as usize;
pub(super) const P_CALL: usize = Param::PCall as usize;
pub(super) const LIB_OWN: usize = Param::LibOwn as usize;
pub(super) const LIB_POP: usize = Param::LibPop as usize;

pub(super) type Grid = [f64; N_GRID];
pub(super) type Gradients = [[f64; N_PARAMS]; N_GRID];
/// One value per p_end and variant (2k + v) of the shared sums Ω_A and W_T.
pub(super) type Variants = [[f64; 4]; N_GRID];

/// The parameter-dependent quantities shared by every task of one evaluation.
pub(super) struct Globals {
    pub(super) beta: f64,
    pub(super) beta_step: f64,
    pub(super) tables: GiTables,
    /// ln(1 − p_end), ln p_end per grid value.
    pub(super) grid_logs: [(f64, f64); N_GRID],
    /// ln r and its derivatives in w_o and w_p, for an empty (0) and a non-empty (1) cache.
    pub(super) ln_r: [f64; 2],
    pub(super) d_ln_r_own: [f64; 2],
    pub(super) d_ln_r_pop: [f64; 2],
    /// w_p / (1 − w_p) and its w_p-derivative.
    pub(super) c_pop: f64,
    pub(super) d_c_pop: f64,
    /// w_o' / r and its derivatives in w_o and w_p, per variant.
    pub(super) c_own: [f64; 2],
    pub(super) d_c_own_own: [f64; 2],
    pub(super) d_c_own_pop: [f64; 2],
    /// 1 / (1 − p_call): the p_call-derivative of ln(1 / P_tok(b)) per unit length.
    pub(super) d_inv_p_call: f64,
    /// 1 / (|J| − k): the population share's divisor for outsiders (k = 0) and contributors
    /// (k = 1); 0 when nobody is left.
    pub(super) scale: [f64; 2],
    /// Per body and grid value: 1 / P_tok(b); and per k: a(b), ln(1 + a(b)),
    /// ∂a/∂w_p / (1 + a) and ∂a/∂p_call / (1 + a).
    pub(super) inv_p: Vec<Grid>,
    pub(super) a: [Vec<Grid>; 2],
    pub(super) ln1p_a: [Vec<Grid>; 2],
    pub(super) q_pop: [Vec<Grid>; 2],
    pub(super) q_call: [Vec<Grid>; 2],
    /// Σ_j f_j(b) and |b| per body.
    pub(super) shares: Vec<f64>,
    pub(super) lengths: Vec<f64>,
}

impl Globals {
    pub(super) fn new(features: &LibraryFeatures, theta: &Theta) -> Globals {
        let beta = theta.get(Param::BetaGi);
        let p_call = theta.get(Param::PCall);
        let w_own = theta.get(Param::LibOwn);
        let w_pop = theta.get(Param::LibPop);
        let tables = GiTables::new(
            theta.get(Param::Alpha),
            0.0,
            p_call,
            features.max_n,
            features.max_k,
            0,
            false,
        );
        let grid_logs = P_END_GRID.map(|q| ((1.0 - q).ln(), q.ln()));
        let (keep_own, keep_pop) = (1.0 - w_own, 1.0 - w_pop);
        let c_pop = w_pop / keep_pop;
        let d_c_pop = 1.0 / (keep_pop * keep_pop);
        let c_own = w_own / (keep_own * keep_pop);
        let ln_primitive = ((1.0 - p_call) / crate::models::gi::N_PRIMITIVES).ln();
        let d_inv_p_call = 1.0 / (1.0 - p_call);
        let n_bodies = features.body_lengths.len();
        let divisor = |k: usize| {
            let d = features.contributors.saturating_sub(k);
            if d == 0 { 0.0 } else { 1.0 / d as f64 }
        };
        let per_body = || [vec![[0.0; N_GRID]; n_bodies], vec![[0.0; N_GRID]; n_bodies]];
        let mut globals = Globals {
            beta,
            beta_step: theta.get(Param::BetaStep),
            tables,
            grid_logs,
            ln_r: [keep_pop.ln(), keep_own.ln() + keep_pop.ln()],
            d_ln_r_own: [0.0, -1.0 / keep_own],
            d_ln_r_pop: [-1.0 / keep_pop, -1.0 / keep_pop],
            c_pop,
            d_c_pop,
            c_own: [0.0, c_own],
            d_c_own_own: [0.0, 1.0 / (keep_own * keep_own * keep_pop)],
            d_c_own_pop: [0.0, c_own / keep_pop],
            d_inv_p_call,
            scale: [divisor(0), divisor(1)],
            inv_p: vec![[0.0; N_GRID]; n_bodies],
            a: per_body(),
            ln1p_a: per_body(),
            q_pop: per_body(),
            q_call: per_body(),
            shares: features.population_shares.clone(),
            lengths: features.body_lengths.clone(),
        };
        for (b, (&length, &share)) in features
            .body_lengths
            .iter()
            .zip(&features.population_shares)
            .enumerate()
        {
            for (e, &(ln_continue, ln_end)) in grid_logs.iter().enumerate() {
                let ln_p = length * ln_primitive + (length - 1.0) * ln_continue + ln_end;
                let inv_p = (-ln_p).exp();
                globals.inv_p[b][e] = inv_p;
                for k in 0..2 {
                    let f = share * globals.scale[k];
                    let a = c_pop * f * inv_p;
                    globals.a[k][b][e] = a;
                    globals.ln1p_a[k][b][e] = a.ln_1p();
                    globals.q_pop[k][b][e] = f * inv_p * d_c_pop / (1.0 + a);
                    globals.q_call[k][b][e] = a * length * d_inv_p_call / (1.0 + a);
                }
            }
        }
        globals
    }

    /// log P_GI of a key without its routine-length term.
    pub(super) fn gi(&self, key: &KeyFeatures) -> f64 {
        let t = &self.tables;
        key.p * t.primitive + key.n * t.call + t.tables[key.k] + key.ln_factorial_sizes
            - t.rising[key.n_calls]
    }

    /// ∂gi/∂α and ∂gi/∂p_call.
    pub(super) fn d_gi(&self, key: &KeyFeatures) -> (f64, f64) {
        let t = &self.tables;
        (
            t.d_tables_b[key.k] - t.d_rising_b[key.n_calls],
            key.p * t.d_primitive + key.n * t.d_call,
        )
    }
}

/// One observation's log-likelihood and chosen score at every p_end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct ObservationResult {
    pub(super) log_likelihood: Grid,
    pub(super) score: Grid,
}

/// Evaluates the library model on `features`, whose observations must be those `weights`
/// counts (task by task); otherwise the evaluation is NaN, so that no fit can use it.
///
/// Every task is first evaluated at every p_end; the gradient then follows only for the p_end
/// values `gradient` asks for (with [`GradientRows::Averaged`], those whose posterior weight is not
/// negligible), the other rows staying zero.
pub(super) fn evaluate(
    features: &LibraryFeatures,
    weights: &Weights,
    theta: &Theta,
    gradient: GradientRows,
) -> Evaluation {
    let n_tasks = features.tasks.len().max(weights.tasks.len());
    let mut evaluation = Evaluation {
        n_grid: N_GRID,
        task_grid: vec![[0.0; N_GRID]; n_tasks],
        grid_gradient: [[0.0; N_PARAMS]; N_GRID],
    };
    let consistent = (0..n_tasks).all(|t| {
        let observed = features.tasks.get(t).map_or(0, |m| m.observations.len());
        weights.task_total(t) == observed as f64
    });
    if !consistent {
        evaluation
            .task_grid
            .iter_mut()
            .for_each(|g| *g = [f64::NAN; N_GRID]);
        return evaluation;
    }
    let globals = Globals::new(features, theta);
    let forwards: Vec<TaskForward> = features
        .tasks
        .par_iter()
        .map(|task| forward(task, &globals))
        .collect();
    for (t, fwd) in forwards.iter().enumerate() {
        evaluation.task_grid[t] = fwd.log_likelihood;
    }
    let active = gradient.rows(&evaluation.totals());
    if active.is_empty() {
        return evaluation;
    }
    let gradients: Vec<Gradients> = features
        .tasks
        .par_iter()
        .zip(forwards)
        .map(|(task, fwd)| backward(task, &globals, fwd, &active))
        .collect();
    for task in &gradients {
        for (total, task) in evaluation.grid_gradient.iter_mut().zip(task) {
            for (g, x) in total.iter_mut().zip(task) {
                *g += x;
            }
        }
    }
    evaluation
}

/// Every observation's log-likelihood and chosen score per p_end, task by task.
pub(super) fn observation_results(
    features: &LibraryFeatures,
    theta: &Theta,
) -> Vec<Vec<ObservationResult>> {
    let globals = Globals::new(features, theta);
    features
        .tasks
        .par_iter()
        .map(|task| {
            forward(task, &globals)
                .observations
                .iter()
                .map(|o| ObservationResult {
                    log_likelihood: o.log_likelihood,
                    score: o.score,
                })
                .collect()
        })
        .collect()
}

/// One observation's forward quantities, kept for the gradient.
struct ObservationForward {
    log_likelihood: Grid,
    score: Grid,
    terms: Vec<BodyTerms>,
    z: Grid,
}

/// One task's forward pass at every p_end: its log-likelihood and what the gradient reuses.
#[derive(Default)]
struct TaskForward {
    log_likelihood: Grid,
    observations: Vec<ObservationForward>,
    /// Variants c = 2k + v in use, and the r variants v and library variants k they need.
    combos: Vec<usize>,
    r_used: Vec<usize>,
    k_used: Vec<usize>,
    /// Per key: its grammar-induction term and exp(u − m0).
    gi: Vec<f64>,
    e0: Vec<f64>,
    cell_sum: Vec<f64>,
    length_term: Vec<Grid>,
    lf: Vec<Grid>,
    /// r^(β L) per r variant and L.
    rl: [Vec<f64>; 2],
    /// ln B(T) and exp(β ln B(T) − m_B) per library variant, T and p_end.
    lb0: [Vec<Grid>; 2],
    exp_b: [Vec<Grid>; 2],
    w: Vec<Variants>,
    omega: Vec<Variants>,
}

fn forward(task: &TaskModel, g: &Globals) -> TaskForward {
    if task.observations.is_empty() || task.keys.is_empty() {
        return TaskForward::default();
    }
    let beta = g.beta;
    // Variants c = 2k + v in use, and the r variants v and library variants k they need.
    let combos: Vec<usize> = (0..4).filter(|&c| task.variants[c]).collect();
    let r_used: Vec<usize> = (0..2)
        .filter(|&v| combos.iter().any(|&c| c % 2 == v))
        .collect();
    let k_used: Vec<usize> = (0..2)
        .filter(|&k| combos.iter().any(|&c| c / 2 == k))
        .collect();

    // Keys: ω without its length and r factors, shifted by m0.
    let gi: Vec<f64> = task.keys.iter().map(|k| g.gi(k)).collect();
    let u: Vec<f64> = task
        .keys
        .iter()
        .zip(&gi)
        .map(|(k, &gi)| beta * gi - g.beta_step * k.s)
        .collect();
    let m0 = u.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e0: Vec<f64> = u.iter().map(|&u| (u - m0).exp()).collect();
    let mut cell_sum = vec![0.0; task.cells.len()];
    for &(k, c, count) in &task.entries {
        cell_sum[c] += count * e0[k];
    }
    // Routine-length factors per group and p_end, shifted by m_e.
    let length_term: Vec<Grid> = task
        .lengths
        .iter()
        .map(|&(continues, ends)| g.grid_logs.map(|(lc, le)| continues * lc + ends * le))
        .collect();
    let mut m_e = [f64::NEG_INFINITY; N_GRID];
    for term in &length_term {
        for (m, &x) in m_e.iter_mut().zip(term) {
            *m = m.max(beta * x);
        }
    }
    let lf: Vec<Grid> = length_term
        .iter()
        .map(|term| std::array::from_fn(|e| (beta * term[e] - m_e[e]).exp()))
        .collect();
    let max_leaves = task.cells.iter().map(|c| c.leaves).max().unwrap_or(0) + 1;
    let rl: [Vec<f64>; 2] = std::array::from_fn(|v| {
        (0..max_leaves)
            .map(|l| (beta * l as f64 * g.ln_r[v]).exp())
            .collect()
    });
    // H_T per p_end and r variant.
    let n_sets = task.sets.len();
    let mut h = vec![[[0.0; 2]; N_GRID]; n_sets];
    for (cell, &sum) in task.cells.iter().zip(&cell_sum) {
        let factors = &lf[cell.length];
        for (he, &f) in h[cell.set].iter_mut().zip(factors) {
            for &v in &r_used {
                he[v] += sum * f * rl[v][cell.leaves];
            }
        }
    }
    // B(T) per library variant and p_end, shifted by m_B.
    let mut lb0 = [Vec::new(), Vec::new()];
    let mut m_b = [[f64::NEG_INFINITY; N_GRID]; 2];
    let mut exp_b = [Vec::new(), Vec::new()];
    for &k in &k_used {
        lb0[k] = task
            .sets
            .iter()
            .map(|set| {
                let mut total = [0.0; N_GRID];
                for &el in set {
                    let row = &g.ln1p_a[k][super::groups::body_of(el) as usize];
                    for (t, x) in total.iter_mut().zip(row) {
                        *t += x;
                    }
                }
                total
            })
            .collect::<Vec<Grid>>();
        for x in &lb0[k] {
            for (m, &x) in m_b[k].iter_mut().zip(x) {
                *m = m.max(beta * x);
            }
        }
        exp_b[k] = lb0[k]
            .iter()
            .map(|x| std::array::from_fn(|e| (beta * x[e] - m_b[k][e]).exp()))
            .collect::<Vec<Grid>>();
    }
    let w: Vec<[[f64; 4]; N_GRID]> = (0..n_sets)
        .map(|s| {
            std::array::from_fn(|e| {
                let mut row = [0.0; 4];
                for &c in &combos {
                    row[c] = h[s][e][c % 2] * exp_b[c / 2][s][e];
                }
                row
            })
        })
        .collect();
    // Every variant at once (W is zero for those not in use): four adds in a row vectorise
    // better than picking the variants an Ω_A is needed for.
    let omega: Vec<[[f64; 4]; N_GRID]> = task
        .subsets
        .iter()
        .map(|sets| {
            let mut total = [[0.0; 4]; N_GRID];
            for &s in sets {
                for (t, x) in total.iter_mut().zip(&w[s]) {
                    for (t, x) in t.iter_mut().zip(x) {
                        *t += x;
                    }
                }
            }
            total
        })
        .collect();

    let mut log_likelihood = [0.0; N_GRID];
    let observations = task
        .observations
        .iter()
        .map(|obs| {
            let shift: Grid = std::array::from_fn(|e| m0 + m_e[e] + m_b[obs.variant / 2][e]);
            let (ll, score, terms, z) = observation(obs, g, &omega, &shift, &length_term);
            for (total, x) in log_likelihood.iter_mut().zip(&ll) {
                *total += x;
            }
            ObservationForward {
                log_likelihood: ll,
                score,
                terms,
                z,
            }
        })
        .collect();
    TaskForward {
        log_likelihood,
        observations,
        combos,
        r_used,
        k_used,
        gi,
        e0,
        cell_sum,
        length_term,
        lf,
        rl,
        lb0,
        exp_b,
        w,
        omega,
    }
}

/// The gradient of one task's log-likelihood at the p_end values `active` (grid indices), from
/// its forward pass: the observations' adjoints flow into the Ω_A, the T, the cells and the keys.
fn backward(task: &TaskModel, g: &Globals, fwd: TaskForward, active: &[usize]) -> Gradients {
    let mut gradient = [[0.0; N_PARAMS]; N_GRID];
    if fwd.observations.is_empty() {
        return gradient;
    }
    let TaskForward {
        observations,
        combos,
        r_used,
        k_used,
        gi,
        e0,
        cell_sum,
        length_term,
        lf,
        rl,
        lb0,
        exp_b,
        w,
        omega,
        ..
    } = fwd;
    let beta = g.beta;
    let n_sets = task.sets.len();
    let max_leaves = rl[0].len();
    let mut omega_bar = vec![[[0.0; 4]; N_GRID]; omega.len()];
    for (obs, fwd) in task.observations.iter().zip(&observations) {
        observation_gradient(
            obs,
            g,
            (&omega, &mut omega_bar),
            (&fwd.terms, &fwd.z),
            &length_term,
            active,
            &mut gradient,
        );
    }
    // Ω_A into the T, the T into B and the cells, the cells into lengths, r and keys.
    let mut w_bar = vec![[[0.0; 4]; N_GRID]; n_sets];
    for (sets, bar) in task.subsets.iter().zip(&omega_bar) {
        for &s in sets {
            for &e in active {
                for (wb, ob) in w_bar[s][e].iter_mut().zip(&bar[e]) {
                    *wb += ob;
                }
            }
        }
    }
    let grad = &mut gradient;
    let mut h_bar = vec![[[0.0; 2]; N_GRID]; n_sets];
    for s in 0..n_sets {
        for &e in active {
            for &c in &combos {
                let (k, v) = (c / 2, c % 2);
                h_bar[s][e][v] += w_bar[s][e][c] * exp_b[k][s][e];
            }
            for &k in &k_used {
                let lb_bar: f64 = combos
                    .iter()
                    .filter(|&&c| c / 2 == k)
                    .map(|&c| w_bar[s][e][c] * w[s][e][c])
                    .sum();
                if lb_bar == 0.0 {
                    continue;
                }
                grad[e][BETA_GI] += lb_bar * lb0[k][s][e];
                let (mut pop, mut call) = (0.0, 0.0);
                for &el in &task.sets[s] {
                    let b = super::groups::body_of(el) as usize;
                    pop += g.q_pop[k][b][e];
                    call += g.q_call[k][b][e];
                }
                grad[e][LIB_POP] += lb_bar * beta * pop;
                grad[e][P_CALL] += lb_bar * beta * call;
            }
        }
    }
    let mut cell_bar = vec![[0.0; N_GRID]; task.cells.len()];
    let mut lf_bar = vec![[0.0; N_GRID]; task.lengths.len()];
    // r's factor: per variant and L, Σ over cells of H̄ × (cell sum × length factor).
    let mut r_through = [
        vec![[0.0; N_GRID]; max_leaves],
        vec![[0.0; N_GRID]; max_leaves],
    ];
    for ((cell, &sum), cb) in task.cells.iter().zip(&cell_sum).zip(cell_bar.iter_mut()) {
        for &e in active {
            let f = lf[cell.length][e];
            let mut through = 0.0;
            for &v in &r_used {
                let hb = h_bar[cell.set][e][v];
                through += hb * rl[v][cell.leaves];
                r_through[v][cell.leaves][e] += hb * sum * f;
            }
            cb[e] = through * f;
            lf_bar[cell.length][e] += through * sum;
        }
    }
    for &v in &r_used {
        for (l, through) in r_through[v].iter().enumerate() {
            let leaves = l as f64;
            for &e in active {
                let bar = through[e] * rl[v][l];
                grad[e][BETA_GI] += bar * leaves * g.ln_r[v];
                grad[e][LIB_OWN] += bar * beta * leaves * g.d_ln_r_own[v];
                grad[e][LIB_POP] += bar * beta * leaves * g.d_ln_r_pop[v];
            }
        }
    }
    for (l, (bar, term)) in lf_bar.iter().zip(&length_term).enumerate() {
        for &e in active {
            grad[e][BETA_GI] += bar[e] * lf[l][e] * term[e];
        }
    }
    let mut u_bar = vec![[0.0; N_GRID]; task.keys.len()];
    for &(k, c, count) in &task.entries {
        for &e in active {
            u_bar[k][e] += count * cell_bar[c][e];
        }
    }
    for (k, key) in task.keys.iter().enumerate() {
        let (d_alpha, d_call) = g.d_gi(key);
        for &e in active {
            let bar = u_bar[k][e] * e0[k];
            if bar == 0.0 {
                continue;
            }
            grad[e][BETA_GI] += bar * gi[k];
            grad[e][BETA_STEP] -= bar * key.s;
            grad[e][ALPHA] += bar * beta * d_alpha;
            grad[e][P_CALL] += bar * beta * d_call;
        }
    }
    gradient
}
