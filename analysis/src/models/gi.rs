//! The grammar-induction prior (docs/modelling.md §4.5): a Pitman-Yor adaptor grammar over
//! routines.
//!
//! The generative story writes each routine token by token. A token is a primitive with probability
//! `1 - p_call` (uniform over the 5 primitives) or a call with probability `p_call`; calls pick a
//! subroutine through a Pitman-Yor restaurant over all call tokens of the program (discount `a`,
//! concentration `alpha` = b); after every token the routine ends with probability `p_end`.
//! The closed form below is exchangeable in the order of calls, so it depends on a program only
//! through its [`StatKey`].

use statrs::function::gamma::{digamma, ln_gamma};

use crate::key::StatKey;

/// Number of primitive actions a token chooses among.
pub const N_PRIMITIVES: f64 = 5.0;

/// The parameters of the grammar-induction prior.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GiParams {
    /// Concentration b of the restaurant (`alpha` in reports).
    pub alpha: f64,
    /// Discount a of the restaurant; 0 is a Dirichlet process.
    pub discount: f64,
    /// Probability that a token is a call (1 - p_normal).
    pub p_call: f64,
    /// Probability that a routine ends after each token.
    pub p_end: f64,
}

impl Default for GiParams {
    /// The worked reference of docs/modelling.md §4.5: a = 0, b = 1, p_normal = 0.5, p_end = 0.1.
    fn default() -> GiParams {
        GiParams {
            alpha: 1.0,
            discount: 0.0,
            p_call: 0.5,
            p_end: 0.1,
        }
    }
}

/// log P_GI of a program with sufficient statistics `key` (closed form, docs/modelling.md §4.5).
pub fn log_prior(key: &StatKey, params: &GiParams) -> f64 {
    let GiParams {
        alpha: b,
        discount: a,
        p_call,
        p_end,
    } = *params;
    let p = f64::from(key.p);
    let n = f64::from(key.n);
    let r = f64::from(key.r);
    let t = p + n;
    let mut total = p * ((1.0 - p_call).ln() - N_PRIMITIVES.ln()) + n * p_call.ln();
    total += crp_log_probability(key.call_counts(), a, b);
    total += (t - r) * (1.0 - p_end).ln() + r * p_end.ln();
    total
}

/// Log-probability of one seating of call tokens with table sizes `counts` in a Pitman-Yor
/// restaurant with discount `a` and concentration `b`, in any order of arrival.
pub fn crp_log_probability(counts: impl IntoIterator<Item = u32>, a: f64, b: f64) -> f64 {
    let mut total = 0.0;
    let mut n = 0u32;
    for (k, c) in counts.into_iter().filter(|&c| c > 0).enumerate() {
        total += (a * k as f64 + b).ln() + ln_gamma(f64::from(c) - a) - ln_gamma(1.0 - a);
        n += c;
    }
    total - (ln_gamma(b + f64::from(n)) - ln_gamma(b))
}

/// Per-evaluation lookup tables for the parts of log P_GI that need special functions, so that
/// scoring thousands of keys costs a few multiply-adds each. Derivatives are with respect to b
/// (`alpha`) and a (`discount`).
#[derive(Debug, Clone)]
pub(crate) struct GiTables {
    /// ln((1 - p_call) / 5) and ln p_call, with their derivatives in p_call.
    pub primitive: f64,
    pub call: f64,
    pub d_primitive: f64,
    pub d_call: f64,
    /// [ln Γ(b + n) - ln Γ(b)] and its b-derivative, by n.
    pub rising: Vec<f64>,
    pub d_rising_b: Vec<f64>,
    /// Σ_{k=1..K} ln(a(k-1) + b) and its derivatives in b and a, by K.
    pub tables: Vec<f64>,
    pub d_tables_b: Vec<f64>,
    pub d_tables_a: Vec<f64>,
    /// ln Γ(c - a) - ln Γ(1 - a) and its a-derivative, by c (index 0 unused).
    pub sizes: Vec<f64>,
    pub d_sizes_a: Vec<f64>,
}

impl GiTables {
    /// Tables for call totals up to `max_n`, up to `max_k` subroutines and table sizes up to
    /// `max_c`; the a-dependent size tables are filled only when `with_discount`.
    pub(crate) fn new(
        alpha: f64,
        discount: f64,
        p_call: f64,
        max_n: usize,
        max_k: usize,
        max_c: usize,
        with_discount: bool,
    ) -> GiTables {
        let (a, b) = (discount, alpha);
        let ln_gamma_b = ln_gamma(b);
        let digamma_b = digamma(b);
        let rising = (0..=max_n)
            .map(|n| ln_gamma(b + n as f64) - ln_gamma_b)
            .collect();
        let d_rising_b = (0..=max_n)
            .map(|n| digamma(b + n as f64) - digamma_b)
            .collect();
        let mut tables = vec![0.0; max_k + 1];
        let mut d_tables_b = vec![0.0; max_k + 1];
        let mut d_tables_a = vec![0.0; max_k + 1];
        for k in 1..=max_k {
            let x = a * (k - 1) as f64 + b;
            tables[k] = tables[k - 1] + x.ln();
            d_tables_b[k] = d_tables_b[k - 1] + 1.0 / x;
            d_tables_a[k] = d_tables_a[k - 1] + (k - 1) as f64 / x;
        }
        let (sizes, d_sizes_a) = if with_discount {
            let base = ln_gamma(1.0 - a);
            let d_base = digamma(1.0 - a);
            let sizes = (0..=max_c)
                .map(|c| {
                    if c == 0 {
                        0.0
                    } else {
                        ln_gamma(c as f64 - a) - base
                    }
                })
                .collect();
            let d_sizes = (0..=max_c)
                .map(|c| {
                    if c == 0 {
                        0.0
                    } else {
                        d_base - digamma(c as f64 - a)
                    }
                })
                .collect();
            (sizes, d_sizes)
        } else {
            (Vec::new(), Vec::new())
        };
        GiTables {
            primitive: (1.0 - p_call).ln() - N_PRIMITIVES.ln(),
            call: p_call.ln(),
            d_primitive: -1.0 / (1.0 - p_call),
            d_call: 1.0 / p_call,
            rising,
            d_rising_b,
            tables,
            d_tables_b,
            d_tables_a,
            sizes,
            d_sizes_a,
        }
    }
}

/// ln Γ(c) summed over a key's call counts: the a = 0 table-size term, fixed per key.
pub(crate) fn ln_factorial_sizes(key: &StatKey) -> f64 {
    key.call_counts().map(|c| ln_gamma(f64::from(c))).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The restaurant's limit as the discount a → 1 (docs/modelling.md §4.5, "Pitman-Yor
    /// discount"): every subroutine called at least twice costs ln(1 − a), which falls without
    /// bound, and the rest tends to Σ_k ln(b + k − 1) + Σ_{c_k ≥ 2} ln Γ(c_k − 1) − ln (b)_n,
    /// whatever b.
    #[test]
    fn each_reused_subroutine_costs_ln_one_minus_discount_as_the_discount_tends_to_one() {
        for b in [1e-4, 0.3, 1.7, 40.0] {
            for counts in [
                vec![2],
                vec![3, 2],
                vec![4, 1],
                vec![1, 1],
                vec![5, 3, 2, 2],
            ] {
                let reused = counts.iter().filter(|&&c| c >= 2).count() as f64;
                let n: u32 = counts.iter().sum();
                let limit = counts
                    .iter()
                    .enumerate()
                    .map(|(k, &c)| {
                        let size = if c >= 2 {
                            ln_gamma(f64::from(c) - 1.0)
                        } else {
                            0.0
                        };
                        (b + k as f64).ln() + size
                    })
                    .sum::<f64>()
                    - (ln_gamma(b + f64::from(n)) - ln_gamma(b));
                let mut previous = f64::INFINITY;
                for epsilon in [1e-2, 1e-4, 1e-6, 1e-8] {
                    let value = crp_log_probability(counts.iter().copied(), 1.0 - epsilon, b);
                    let rest = value - reused * epsilon.ln();
                    assert!(
                        (rest - limit).abs() < 20.0 * epsilon,
                        "b {b} counts {counts:?} 1 - a = {epsilon}: {rest} vs {limit}"
                    );
                    if reused > 0.0 {
                        assert!(value < previous, "falls as a → 1");
                    }
                    previous = value;
                }
            }
        }
    }

    /// The ridge the dev data climb (docs/modelling.md §4.5, "Pitman-Yor discount"): with
    /// 1 − a = e^(−κ/β_GI), b = e^(ν/β_GI) and 1 − p_call = 5 e^(−μ/β_GI), β_GI log P_GI tends
    /// to the linear score −μ P − κ K₂ − ν (n − K) as β_GI → 0 (K₂ the subroutines called at
    /// least twice), p_end dropping out; the error shrinks in proportion to β_GI.
    fn key(p: u16, n: u16, counts: &[u16], r: u8) -> StatKey {
        let mut calls = [0; crate::key::MAX_SLOTS];
        calls[..counts.len()].copy_from_slice(counts);
        StatKey {
            p,
            n,
            calls,
            r,
            s: p,
        }
    }

    #[test]
    fn the_discount_ridge_tends_to_a_linear_cost_model() {
        let (mu, kappa, nu) = (0.3, 0.2, 0.1);
        let keys = [
            key(12, 0, &[0], 1),
            key(8, 3, &[3], 2),
            key(9, 6, &[4, 2], 3),
            key(10, 4, &[2, 1, 1], 4),
        ];
        for key in &keys {
            let calls: Vec<u32> = key.call_counts().collect();
            let reused = calls.iter().filter(|&&c| c >= 2).count() as f64;
            let k = calls.iter().filter(|&&c| c > 0).count() as f64;
            let linear = -mu * f64::from(key.p) - kappa * reused - nu * (f64::from(key.n) - k);
            let mut previous = f64::INFINITY;
            for beta in [0.05, 0.02, 0.01] {
                for p_end in [0.1, 0.5, 0.9] {
                    let params = GiParams {
                        alpha: (nu / beta).exp(),
                        discount: 1.0 - (-kappa / beta).exp(),
                        p_call: 1.0 - N_PRIMITIVES * (-mu / beta).exp(),
                        p_end,
                    };
                    let error = (beta * log_prior(key, &params) - linear).abs();
                    assert!(error < 30.0 * beta, "{key:?} β {beta}: off by {error}");
                    if p_end == 0.1 {
                        assert!(error < previous, "{key:?}: closer as β shrinks");
                        previous = error;
                    }
                }
            }
        }
    }
}
