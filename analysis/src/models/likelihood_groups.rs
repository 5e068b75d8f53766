//! The inner loops of [`evaluate`](super::evaluate) (docs/modelling.md §4.6, speed).
//!
//! A key's score at p_end is its p_end-independent part plus β_GI times its routine-length term
//! (T − R) ln(1 − p_end) + R ln p_end, which depends on the key only through (T − R, R). So the
//! keys of a task are grouped by (T − R, R); each group's softmax weights (and the weighted
//! statistics the gradient needs) are summed once per evaluation, and the normaliser of every
//! p_end is a log-sum-exp over the few groups, shifted by the group's length term. This replaces
//! one exponential per key and p_end by one per key.

use super::KeyFeatures;
use crate::models::gi::GiTables;
use crate::models::{Model, N_PARAMS, Param};

/// p_end-independent parts of one key's score and their derivatives.
pub(super) struct KeyScore {
    /// The score without the length term: −β_MDL T − β_step S + β_GI log P_GI (without its
    /// length term).
    pub(super) base: f64,
    /// log P_GI without the length term, and its derivatives in α, p_call and the discount.
    pub(super) gi: f64,
    pub(super) d_gi: [f64; N_PARAMS],
}

/// The p_end-independent score of one key.
#[inline]
pub(super) fn key_score(
    key: &KeyFeatures,
    model: &Model,
    tables: Option<&GiTables>,
    (beta_mdl, beta_step, beta_gi): (f64, f64, f64),
    with_gradient: bool,
) -> KeyScore {
    let mut score = KeyScore {
        base: -beta_mdl * key.t - beta_step * key.s,
        gi: 0.0,
        d_gi: [0.0; N_PARAMS],
    };
    if let Some(tables) = tables {
        let calls = &key.calls[..key.k.min(key.calls.len())];
        let sizes = if model.uses_discount() {
            calls.iter().map(|&c| tables.sizes[c as usize]).sum()
        } else {
            key.ln_factorial_sizes
        };
        score.gi = key.p * tables.primitive + key.n * tables.call + tables.tables[key.k] + sizes
            - tables.rising[key.n_calls];
        score.base += beta_gi * score.gi;
        if with_gradient {
            score.d_gi[Param::Alpha.index()] =
                tables.d_tables_b[key.k] - tables.d_rising_b[key.n_calls];
            score.d_gi[Param::PCall.index()] = key.p * tables.d_primitive + key.n * tables.d_call;
            if model.uses_discount() {
                score.d_gi[Param::Discount.index()] = tables.d_tables_a[key.k]
                    + calls
                        .iter()
                        .map(|&c| tables.d_sizes_a[c as usize])
                        .sum::<f64>();
            }
        }
    }
    score
}

/// The keys of one task that share a routine-length term.
#[derive(Debug, Clone, Copy)]
struct LengthGroup {
    /// Whether any key falls in this group.
    used: bool,
    /// T − R and R of the group's keys.
    continues: f64,
    ends: f64,
    /// The largest ln m + base in the group.
    max: f64,
    /// Σ w over the group's keys, w = exp(ln m + base − max).
    z: f64,
    /// Σ w T, Σ w S, Σ w gi, Σ w ∂gi/∂θ.
    tokens: f64,
    step: f64,
    gi: f64,
    d_gi: [f64; N_PARAMS],
}

impl LengthGroup {
    const EMPTY: LengthGroup = LengthGroup {
        used: false,
        continues: 0.0,
        ends: 0.0,
        max: f64::NEG_INFINITY,
        z: 0.0,
        tokens: 0.0,
        step: 0.0,
        gi: 0.0,
        d_gi: [0.0; N_PARAMS],
    };
}

/// One task's keys summed by length group, with buffers reused from task to task.
#[derive(Default)]
pub(super) struct LengthGroups {
    group_of: Vec<usize>,
    groups: Vec<LengthGroup>,
    used: Vec<LengthGroup>,
    /// A key's ln m + base is NaN or +∞, so the normaliser is undefined.
    invalid: bool,
}

/// The normaliser of one task at one p_end.
pub(super) struct Normaliser {
    /// log Z.
    pub(super) log_z: f64,
    /// Σ_q m_q exp(s_q) ∂s_q/∂θ / Z: the expected score gradient (zero when not asked).
    pub(super) expected: [f64; N_PARAMS],
}

impl LengthGroups {
    /// Sums the keys of one task with their scores; with `by_length` false (a score without the
    /// length term) all keys form one group.
    pub(super) fn fill(
        &mut self,
        keys: &[KeyFeatures],
        scores: &[KeyScore],
        by_length: bool,
        with_gradient: bool,
    ) {
        self.group_of.clear();
        self.groups.clear();
        self.invalid = false;
        // (T − R) · stride + R numbers the length groups.
        let stride = if by_length {
            keys.iter().map(|k| k.r as usize).max().unwrap_or(0) + 1
        } else {
            1
        };
        for (key, score) in keys.iter().zip(scores) {
            let g = if by_length {
                (key.t - key.r) as usize * stride + key.r as usize
            } else {
                0
            };
            if g >= self.groups.len() {
                self.groups.resize(g + 1, LengthGroup::EMPTY);
            }
            let group = &mut self.groups[g];
            if !group.used {
                group.used = true;
                group.continues = key.t - key.r;
                group.ends = key.r;
            }
            let logit = key.ln_multiplicity + score.base;
            self.invalid |= logit.is_nan() || logit == f64::INFINITY;
            group.max = group.max.max(logit);
            self.group_of.push(g);
        }
        for ((key, &g), score) in keys.iter().zip(&self.group_of).zip(scores) {
            let group = &mut self.groups[g];
            let w = (key.ln_multiplicity + score.base - group.max).exp();
            group.z += w;
            if with_gradient {
                group.tokens += w * key.t;
                group.step += w * key.s;
                group.gi += w * score.gi;
                for param in [Param::Alpha, Param::PCall, Param::Discount] {
                    group.d_gi[param.index()] += w * score.d_gi[param.index()];
                }
            }
        }
        self.used.clear();
        self.used
            .extend(self.groups.iter().filter(|g| g.used && g.z > 0.0));
    }

    /// The normaliser at the p_end with logs (`ln_continue`, `ln_end`); `beta_gi` weights the
    /// length term (0 without the grammar-induction prior, whose gradient terms are then left
    /// out).
    pub(super) fn normaliser(
        &self,
        (ln_continue, ln_end): (f64, f64),
        beta_gi: Option<f64>,
        with_gradient: bool,
    ) -> Normaliser {
        let length_of = |group: &LengthGroup| match beta_gi {
            Some(_) => group.continues * ln_continue + group.ends * ln_end,
            None => 0.0,
        };
        let beta = beta_gi.unwrap_or(0.0);
        let max = self
            .used
            .iter()
            .map(|g| g.max + beta * length_of(g))
            .fold(f64::NEG_INFINITY, f64::max);
        let mut z = 0.0;
        let mut expected = [0.0; N_PARAMS];
        for group in &self.used {
            let length = length_of(group);
            let shift = (group.max + beta * length - max).exp();
            z += shift * group.z;
            if with_gradient {
                expected[Param::BetaMdl.index()] -= shift * group.tokens;
                expected[Param::BetaStep.index()] -= shift * group.step;
                if beta_gi.is_some() {
                    expected[Param::BetaGi.index()] += shift * (group.gi + group.z * length);
                    for param in [Param::Alpha, Param::PCall, Param::Discount] {
                        expected[param.index()] += beta * shift * group.d_gi[param.index()];
                    }
                }
            }
        }
        expected.iter_mut().for_each(|x| *x /= z);
        Normaliser {
            log_z: if self.invalid { f64::NAN } else { max + z.ln() },
            expected,
        }
    }
}
