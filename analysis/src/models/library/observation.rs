//! One observation's part of the library model's likelihood (docs/modelling.md §4.5, "The
//! library model"): the chosen program's score, the normaliser by inclusion-exclusion over the
//! occurring subsets of D_i, and their gradients (the normaliser's adjoint goes back to the
//! shared Ω_A).

use super::features::{ObservationBody, ObservationModel};
use super::likelihood::{
    ALPHA, BETA_GI, BETA_STEP, Globals, Gradients, Grid, LIB_OWN, LIB_POP, N_GRID, P_CALL, Variants,
};

/// One observation's per-body quantities at every p_end.
pub(super) struct BodyTerms {
    g: Grid,
    y: Grid,
}

/// An observation's forward pass: (log-likelihood, chosen score, per-body terms, shifted
/// normaliser z) per p_end.
pub(super) type ObservationForward = (Grid, Grid, Vec<BodyTerms>, Grid);

impl Globals {
    /// f_pop^(−i)(b) for library variant `k`: the summed shares over |J| − k contributors, the
    /// participant's own share taken out when they are one (k = 1).
    fn population_share(&self, body: &ObservationBody, k: usize) -> f64 {
        let own = if k == 1 { body.own_library } else { 0.0 };
        (self.shares[body.body as usize] - own) * self.scale[k]
    }

    /// The library share of body `b` in g = 1 + a + e for variant `variant`, before 1 / P_tok:
    /// c_pop f_pop^(−i)(b) + c_own f_own(b).
    pub(super) fn share_term(&self, body: &ObservationBody, variant: usize) -> f64 {
        let (k, v) = (variant / 2, variant % 2);
        self.c_pop * self.population_share(body, k) + self.c_own[v] * body.own_share
    }

    /// ∂(share term)/∂w_p.
    fn d_share_term_pop(&self, body: &ObservationBody, variant: usize) -> f64 {
        let (k, v) = (variant / 2, variant % 2);
        self.population_share(body, k) * self.d_c_pop + body.own_share * self.d_c_own_pop[v]
    }
}

/// The smallest ratio of the normaliser to the sum of its inclusion-exclusion terms' magnitudes
/// that is taken as resolved. Each Ω_A is a sum of positive terms, in practice within a few
/// 1e-16 of itself, so at this ratio ln Z is good to about 1e-3 (the tests find 1e-6 where they
/// check it against scoring every candidate); at 1e-16 Z is rounding noise (0 or below on the
/// development data), and a noise-small Z would be a spuriously high likelihood that the optimiser
/// could chase.
const MIN_RESOLVED: f64 = 1e-12;

pub(super) fn observation(
    obs: &ObservationModel,
    g: &Globals,
    omega: &[Variants],
    shift: &Grid,
    length_term: &[Grid],
) -> ObservationForward {
    let c = obs.variant;
    let (k, v) = (c / 2, c % 2);
    let beta = g.beta;
    let terms: Vec<BodyTerms> = obs
        .bodies
        .iter()
        .map(|body| {
            let b = body.body as usize;
            let share = g.share_term(body, c);
            let mut t = BodyTerms {
                g: [0.0; N_GRID],
                y: [0.0; N_GRID],
            };
            for e in 0..N_GRID {
                t.g[e] = 1.0 + share * g.inv_p[b][e];
                t.y[e] = (beta * (t.g[e].ln() - g.ln1p_a[k][b][e])).exp_m1();
            }
            t
        })
        .collect();
    let key = &obs.key;
    let base = g.gi(key) + obs.leaves * g.ln_r[v];
    let mut ll = [0.0; N_GRID];
    let mut score = [0.0; N_GRID];
    let mut z = [0.0; N_GRID];
    for e in 0..N_GRID {
        let chosen: f64 = obs.chosen.iter().map(|&j| terms[j].g[e].ln()).sum();
        score[e] = beta * (base + length_term[key.length][e] + chosen) - g.beta_step * key.s;
        let mut magnitude = 0.0;
        z[e] = obs
            .terms
            .iter()
            .map(|(a, positions)| {
                let term =
                    omega[*a][e][c] * positions.iter().map(|&j| terms[j].y[e]).product::<f64>();
                magnitude += term.abs();
                term
            })
            .sum();
        // Inclusion-exclusion subtracts where a contributor's own share is taken out of the
        // library (y < 0). In extreme corners (a large β_GI with a body that only this
        // participant wrote) the terms cancel to below what double precision resolves: Z is
        // then not computable here, and the optimiser treats the point as a wall
        // (docs/modelling.md §4.5). At the fitted optima of the development data the ratio is
        // above 1e-2.
        let log_z = if z[e] > MIN_RESOLVED * magnitude {
            z[e].ln() + shift[e]
        } else {
            f64::NAN
        };
        ll[e] = score[e] - log_z;
    }
    (ll, score, terms, z)
}

/// Adds one observation's part of the gradient at the p_end values `active` to `grad` and its
/// normaliser's adjoint to `omega_bar`.
pub(super) fn observation_gradient(
    obs: &ObservationModel,
    g: &Globals,
    (omega, omega_bar): (&[Variants], &mut [Variants]),
    (terms, z): (&[BodyTerms], &Grid),
    length_term: &[Grid],
    active: &[usize],
    grad: &mut Gradients,
) {
    let c = obs.variant;
    let (k, v) = (c / 2, c % 2);
    let beta = g.beta;
    let key = &obs.key;
    let (d_alpha, d_call) = g.d_gi(key);
    let base = g.gi(key) + obs.leaves * g.ln_r[v];
    // ∂(share term)/∂w_o and ∂w_p of each body (p_end-independent).
    let d_share: Vec<(f64, f64)> = obs
        .bodies
        .iter()
        .map(|body| {
            (
                body.own_share * g.d_c_own_own[v],
                g.d_share_term_pop(body, c),
            )
        })
        .collect();
    let mut y_bar = vec![0.0; obs.bodies.len()];
    for &e in active {
        // d ll = ds − d ln Z.
        let s_coef = 1.0;
        // ∂ln g/∂θ of each body at this p_end: (p_call, w_o, w_p).
        let d_ln_g: Vec<(f64, f64, f64)> = obs
            .bodies
            .iter()
            .zip(terms)
            .zip(&d_share)
            .map(|((body, t), &(d_own, d_pop))| {
                let b = body.body as usize;
                let inv_p = g.inv_p[b][e];
                let gv = t.g[e];
                let d_call = (gv - 1.0) * g.lengths[b] * g.d_inv_p_call;
                (d_call / gv, d_own * inv_p / gv, d_pop * inv_p / gv)
            })
            .collect();
        let mut chosen_ln_g = 0.0;
        let mut chosen_d = (0.0, 0.0, 0.0);
        for &j in &obs.chosen {
            chosen_ln_g += terms[j].g[e].ln();
            chosen_d.0 += d_ln_g[j].0;
            chosen_d.1 += d_ln_g[j].1;
            chosen_d.2 += d_ln_g[j].2;
        }
        let ge = &mut grad[e];
        ge[BETA_GI] += s_coef * (base + length_term[key.length][e] + chosen_ln_g);
        ge[BETA_STEP] -= s_coef * key.s;
        ge[ALPHA] += s_coef * beta * d_alpha;
        ge[P_CALL] += s_coef * beta * (d_call + chosen_d.0);
        ge[LIB_OWN] += s_coef * beta * (obs.leaves * g.d_ln_r_own[v] + chosen_d.1);
        ge[LIB_POP] += s_coef * beta * (obs.leaves * g.d_ln_r_pop[v] + chosen_d.2);
        // The normaliser: Z̄ = −1 / z.
        let z_bar = -s_coef / z[e];
        y_bar.iter_mut().for_each(|y| *y = 0.0);
        for (a, positions) in &obs.terms {
            let product: f64 = positions.iter().map(|&j| terms[j].y[e]).product();
            omega_bar[*a][e][c] += z_bar * product;
            for (i, &j) in positions.iter().enumerate() {
                let others: f64 = positions
                    .iter()
                    .enumerate()
                    .filter(|&(p, _)| p != i)
                    .map(|(_, &p)| terms[p].y[e])
                    .product();
                y_bar[j] += z_bar * omega[*a][e][c] * others;
            }
        }
        for (j, (body, t)) in obs.bodies.iter().zip(terms).enumerate() {
            if y_bar[j] == 0.0 {
                continue;
            }
            let b = body.body as usize;
            let ln_x_bar = y_bar[j] * (1.0 + t.y[e]);
            ge[BETA_GI] += ln_x_bar * (t.g[e].ln() - g.ln1p_a[k][b][e]);
            ge[P_CALL] += ln_x_bar * beta * (d_ln_g[j].0 - g.q_call[k][b][e]);
            ge[LIB_OWN] += ln_x_bar * beta * d_ln_g[j].1;
            ge[LIB_POP] += ln_x_bar * beta * (d_ln_g[j].2 - g.q_pop[k][b][e]);
        }
    }
}
