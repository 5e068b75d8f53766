//! One position's multi-head attention over its context rows, written so that the compiler
//! vectorises it.
//!
//! Queries, keys, values and the mixed output are stored *interleaved*: element `e` of head `h`
//! is at `e * heads + h` rather than candle's `h * dh + e`. The engine gets this layout for free
//! by permuting the columns of the `qkv` weights and the rows of the `proj` weights
//! ([`interleave`]). Then the scores of all heads for one context row are one lane-wise product
//! summed in 16 lanes (lane `i` belongs to head `i % heads`), and mixing the values is a
//! lane-wise multiply-add with the weights repeated across the lanes. The softmax uses a
//! vectorisable `exp`. Everything is `#[inline(always)]` so that the callers'
//! `pulp` dispatch compiles it for AVX2 and FMA where the CPU has them.

/// Lanes of the vectorised kernels.
const LANES: usize = 16;

/// Where the context rows of one position are: the `P` prefix rows (`prefix`, `(P, d)`), then
/// one row per ancestor (itself last) of `keys` / `values` at `offsets`.
pub(crate) struct Context<'a> {
    pub prefix_keys: &'a [f32],
    pub prefix_values: &'a [f32],
    pub keys: &'a [f32],
    pub values: &'a [f32],
    pub offsets: &'a [usize],
}

impl Context<'_> {
    #[inline(always)]
    fn key(&self, j: usize, p: usize, d: usize) -> &[f32] {
        if j < p {
            &self.prefix_keys[j * d..(j + 1) * d]
        } else {
            let at = self.offsets[j - p];
            &self.keys[at..at + d]
        }
    }

    #[inline(always)]
    fn value(&self, j: usize, p: usize, d: usize) -> &[f32] {
        if j < p {
            &self.prefix_values[j * d..(j + 1) * d]
        } else {
            let at = self.offsets[j - p];
            &self.values[at..at + d]
        }
    }
}

/// Multi-head attention of one query `q` (d, interleaved) over `context`: scores scaled by
/// 1/√dh, a softmax per head, the values mixed into `out` (d, interleaved). `scores` is scratch
/// of at least `(P + ancestors) * max(heads, 16)` values.
#[inline(always)]
pub(crate) fn attend(
    q: &[f32],
    heads: usize,
    context: &Context<'_>,
    scores: &mut [f32],
    out: &mut [f32],
) {
    macro_rules! fixed {
        ($($h:literal, $d:literal;)*) => {
            match (heads, q.len()) {
                $(($h, $d) => attend_lanes::<$h, $d>(q, context, scores, out),)*
                _ => attend_plain(q, heads, context, scores, out),
            }
        };
    }
    fixed! {
        2, 32; 4, 32; 8, 32;
        2, 64; 4, 64; 8, 64; 16, 64;
        4, 128; 8, 128; 16, 128;
    }
}

/// [`attend`] for H heads dividing 16 and a width D that is a multiple of 16, both known to the
/// compiler (so the loops unroll and the query and the mixed values stay in registers). Per-head
/// quantities are kept in 16 lanes with head `i % H` in lane `i` (each head repeated 16 / H
/// times), the same pattern as the interleaved values, so that every step is lane-wise.
#[inline(always)]
fn attend_lanes<const H: usize, const D: usize>(
    q: &[f32],
    context: &Context<'_>,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let q = &q[..D];
    let p = context.prefix_keys.len() / D;
    let l = p + context.offsets.len();
    let scale = (1.0 / ((D / H) as f64).sqrt()) as f32;
    let scores = &mut scores[..l * LANES];
    // Local arrays throughout, so that the compiler sees no aliasing and keeps them in registers.
    let mut max = [f32::NEG_INFINITY; LANES];
    for (j, row) in scores.chunks_exact_mut(LANES).enumerate() {
        let k = &context.key(j, p, D)[..D];
        let mut acc = [0f32; LANES];
        for (qb, kb) in q.chunks_exact(LANES).zip(k.chunks_exact(LANES)) {
            for i in 0..LANES {
                acc[i] += qb[i] * kb[i];
            }
        }
        // Lane i gets the sum of the lanes of head i % H.
        let mut heads = [0f32; H];
        for chunk in acc.chunks_exact(H) {
            for h in 0..H {
                heads[h] += chunk[h];
            }
        }
        let mut value = [0f32; LANES];
        for i in 0..LANES {
            value[i] = heads[i % H] * scale;
            max[i] = max[i].max(value[i]);
        }
        row.copy_from_slice(&value);
    }
    let mut sum = [0f32; LANES];
    for row in scores.chunks_exact_mut(LANES) {
        let mut value = [0f32; LANES];
        value.copy_from_slice(row);
        for i in 0..LANES {
            value[i] = exp(value[i] - max[i]);
            sum[i] += value[i];
        }
        row.copy_from_slice(&value);
    }
    let mut mixed = [0f32; D];
    for (j, weights) in scores.chunks_exact(LANES).enumerate() {
        let v = &context.value(j, p, D)[..D];
        let weights = &weights[..LANES];
        for (mb, vb) in mixed.chunks_exact_mut(LANES).zip(v.chunks_exact(LANES)) {
            for i in 0..LANES {
                mb[i] += weights[i] * vb[i];
            }
        }
    }
    for (ob, mb) in out[..D]
        .chunks_exact_mut(LANES)
        .zip(mixed.chunks_exact(LANES))
    {
        for i in 0..LANES {
            ob[i] = mb[i] / sum[i];
        }
    }
}

/// [`attend`] for any shape (interleaved layout, plain loops).
#[inline(always)]
fn attend_plain(
    q: &[f32],
    heads: usize,
    context: &Context<'_>,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let d = q.len();
    let dh = d / heads;
    let p = context.prefix_keys.len() / d;
    let l = p + context.offsets.len();
    let scale = (1.0 / (dh as f64).sqrt()) as f32;
    let scores = &mut scores[..l * heads];
    for (j, row) in scores.chunks_exact_mut(heads).enumerate() {
        let k = context.key(j, p, d);
        for (h, s) in row.iter_mut().enumerate() {
            let dot: f32 = (0..dh).map(|e| q[e * heads + h] * k[e * heads + h]).sum();
            *s = dot * scale;
        }
    }
    for h in 0..heads {
        let max = (0..l)
            .map(|j| scores[j * heads + h])
            .fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f32;
        for j in 0..l {
            let e = (scores[j * heads + h] - max).exp();
            scores[j * heads + h] = e;
            sum += e;
        }
        for j in 0..l {
            scores[j * heads + h] /= sum;
        }
    }
    out.iter_mut().for_each(|o| *o = 0.0);
    for j in 0..l {
        let v = context.value(j, p, d);
        for (i, o) in out.iter_mut().enumerate() {
            *o += scores[j * heads + i % heads] * v[i];
        }
    }
}

/// `exp(x)`, branch-free so that it vectorises (Cephes' `expf` polynomial, within about 2 ulp of
/// the exact value for arguments above −87; below that it returns about 1e-38 instead of a
/// smaller number or zero).
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding it rounds to an integer, which is then the low bits of the sum (no
    // float-to-int conversion, which would not vectorise).
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut y = 1.987_569_1e-4_f32;
    y = y * r + 1.398_2e-3;
    y = y * r + 8.333_452e-3;
    y = y * r + 4.166_579_6e-2;
    y = y * r + 1.666_666_5e-1;
    y = y * r + 5e-1;
    let y = y * r * r + r + 1.0;
    let exponent = t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23;
    y * f32::from_bits(exponent)
}

/// Permutes the `d` values of a row from candle's head-major layout (`h * dh + e`) to the
/// interleaved one (`e * heads + h`).
pub(crate) fn interleave(row: &[f32], heads: usize) -> Vec<f32> {
    let dh = row.len() / heads;
    let mut out = vec![0f32; row.len()];
    for h in 0..heads {
        for e in 0..dh {
            out[e * heads + h] = row[h * dh + e];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_a_few_ulp() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let exact = f64::from(x).exp();
            worst = worst.max(((f64::from(exp(x)) - exact) / exact).abs());
            x += 0.001_7;
        }
        assert!(
            worst < 3.0 * f64::from(f32::EPSILON),
            "relative error {worst}"
        );
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1000.0) < 1e-37);
    }

    /// The lane kernels and the plain loops agree with a direct head-major reference.
    #[test]
    fn the_kernels_agree_with_a_reference() {
        let mut seed = 1u64;
        let mut draw = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            ((seed >> 33) as f32 / (1u64 << 31) as f32) * 4.0 - 2.0
        };
        for (d, heads) in [
            (64, 4),
            (32, 2),
            (48, 3),
            (16, 16),
            (24, 4),
            (64, 1),
            (128, 8),
        ] {
            let (p, rows) = (2, 7);
            let q: Vec<f32> = (0..d).map(|_| draw()).collect();
            let prefix_keys: Vec<f32> = (0..p * d).map(|_| draw()).collect();
            let prefix_values: Vec<f32> = (0..p * d).map(|_| draw()).collect();
            let keys: Vec<f32> = (0..rows * d).map(|_| draw()).collect();
            let values: Vec<f32> = (0..rows * d).map(|_| draw()).collect();
            let offsets: Vec<usize> = [5, 0, 3, 6].iter().map(|&r| r * d).collect();
            // Reference in the head-major layout.
            let dh = d / heads;
            let head_major = |row: &[f32]| {
                let mut out = vec![0f32; d];
                for h in 0..heads {
                    for e in 0..dh {
                        out[h * dh + e] = row[e * heads + h];
                    }
                }
                out
            };
            let all_keys: Vec<Vec<f32>> = (0..p)
                .map(|j| head_major(&prefix_keys[j * d..(j + 1) * d]))
                .chain(offsets.iter().map(|&o| head_major(&keys[o..o + d])))
                .collect();
            let all_values: Vec<Vec<f32>> = (0..p)
                .map(|j| head_major(&prefix_values[j * d..(j + 1) * d]))
                .chain(offsets.iter().map(|&o| head_major(&values[o..o + d])))
                .collect();
            let qh = head_major(&q);
            let mut expected = vec![0f64; d];
            for h in 0..heads {
                let s: Vec<f64> = all_keys
                    .iter()
                    .map(|k| {
                        (0..dh)
                            .map(|e| f64::from(qh[h * dh + e]) * f64::from(k[h * dh + e]))
                            .sum::<f64>()
                            / (dh as f64).sqrt()
                    })
                    .collect();
                let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let total: f64 = s.iter().map(|x| (x - max).exp()).sum();
                for (j, v) in all_values.iter().enumerate() {
                    let w = (s[j] - max).exp() / total;
                    for e in 0..dh {
                        expected[h * dh + e] += w * f64::from(v[h * dh + e]);
                    }
                }
            }
            let context = Context {
                prefix_keys: &prefix_keys,
                prefix_values: &prefix_values,
                keys: &keys,
                values: &values,
                offsets: &offsets,
            };
            let mut scores = vec![0f32; (p + offsets.len()) * heads.max(16)];
            for plain in [false, true] {
                let mut out = vec![0f32; d];
                if plain {
                    attend_plain(&q, heads, &context, &mut scores, &mut out);
                } else {
                    attend(&q, heads, &context, &mut scores, &mut out);
                }
                let out = head_major(&out);
                for (a, b) in out.iter().zip(&expected) {
                    assert!(
                        (f64::from(*a) - b).abs() < 1e-5,
                        "d {d} heads {heads}: {a} vs {b}"
                    );
                }
            }
        }
    }
}
