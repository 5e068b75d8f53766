//! The trained transformer's inference weights as plain f32 vectors, read once from the model's
//! variable map by the names [`crate::neural::transformer`] gives them, and the dense kernels
//! (matrix products through faer; layer norm) the engine is made of.

use candle_core::{DType, Tensor};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use crate::neural::NeuralError;
use crate::neural::tokens::Vocab;
use crate::neural::train::NeuralLm;

/// Layer-norm epsilon of the model (`transformer::Norm`).
const EPS: f32 = 1e-5;

/// `out += a · b`, all row-major and contiguous, `(rows, k, n)` the shape of the product.
///
/// faer's product runs on one thread here (the scorer is parallel over tries) and picks its
/// kernel at run time: AVX-512 where the CPU has it, which on the development machine makes
/// these small products (k and n of 18 to 256, 128 rows) about 1.4 times as fast as the AVX2
/// kernels of `matrixmultiply` (docs/modelling.md §4.8.4).
pub(crate) fn matmul_add(
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    (rows, k, n): (usize, usize, usize),
) {
    if rows == 0 || n == 0 {
        return;
    }
    let a = MatRef::from_row_major_slice(&a[..rows * k], rows, k);
    let b = MatRef::from_row_major_slice(&b[..k * n], k, n);
    let out = MatMut::from_row_major_slice_mut(&mut out[..rows * n], rows, n);
    matmul(out, Accum::Add, a, b, 1.0f32, Par::Seq);
}

/// A linear layer `y = x · w + b` with `w` stored `(input, output)` row-major (candle's weight
/// transposed).
#[derive(Debug, Clone)]
pub(crate) struct Dense {
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub input: usize,
    pub output: usize,
}

impl Dense {
    /// `out (rows × output) = x (rows × input) · w + b`.
    pub fn forward(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        let out = &mut out[..rows * self.output];
        for row in out.chunks_exact_mut(self.output) {
            row.copy_from_slice(&self.b);
        }
        matmul_add(x, &self.w, out, (rows, self.input, self.output));
    }

    /// `out += x · w + b` (the residual connections).
    pub fn forward_add(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        let out = &mut out[..rows * self.output];
        for row in out.chunks_exact_mut(self.output) {
            for (o, &b) in row.iter_mut().zip(&self.b) {
                *o += b;
            }
        }
        matmul_add(x, &self.w, out, (rows, self.input, self.output));
    }
}

/// Layer-norm weights.
#[derive(Debug, Clone)]
pub(crate) struct Norm {
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

impl Norm {
    /// Normalises each row of `x` into `out` with candle's formula (sums in f32, variance as
    /// `E[x²] − E[x]²`). Inlined into the caller's `pulp` dispatch.
    #[inline(always)]
    pub fn forward(&self, x: &[f32], out: &mut [f32]) {
        let d = self.w.len();
        for (src, dst) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            let mut sum = 0f32;
            let mut sum2 = 0f32;
            for &v in src {
                sum += v;
                sum2 += v * v;
            }
            let mean = sum / d as f32;
            let var = sum2 / d as f32 - mean * mean;
            let inv_std = (var + EPS).sqrt().recip();
            for (((o, &s), &w), &b) in dst.iter_mut().zip(src).zip(&self.w).zip(&self.b) {
                *o = (s - mean) * inv_std * w + b;
            }
        }
    }
}

/// One pre-norm block.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    pub ln1: Norm,
    pub qkv: Dense,
    pub proj: Dense,
    pub ln2: Norm,
    pub fc: Dense,
    pub out: Dense,
}

/// Every weight the decoder needs in inference mode.
#[derive(Debug, Clone)]
pub(crate) struct Weights {
    pub vocab: Vocab,
    pub width: usize,
    pub heads: usize,
    /// Prefix positions P.
    pub prefix: usize,
    /// Token embeddings `(V, d)`.
    pub tokens: Vec<f32>,
    /// Position embeddings `(P + max_len, d)`.
    pub positions: Vec<f32>,
    pub layers: Vec<Layer>,
    pub ln_f: Norm,
    pub head: Dense,
}

impl Weights {
    /// Copies the weights out of `lm`'s variable map.
    pub fn from_lm(lm: &NeuralLm) -> Result<Weights, NeuralError> {
        let config = *lm.config();
        let d = config.width;
        let v = config.vocab.size();
        let data = lm
            .varmap
            .data()
            .lock()
            .map_err(|_| NeuralError::Invalid("variable map lock poisoned".into()))?;
        let get = |name: &str, dims: &[usize]| -> Result<Vec<f32>, NeuralError> {
            let var = data.get(name).ok_or_else(|| {
                NeuralError::Invalid(format!("the model has no variable `{name}`"))
            })?;
            let tensor: &Tensor = var.as_tensor();
            if tensor.dims() != dims {
                return Err(NeuralError::Invalid(format!(
                    "variable `{name}` has shape {:?}, expected {dims:?}",
                    tensor.dims()
                )));
            }
            Ok(tensor
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?)
        };
        let dense = |name: &str, input: usize, output: usize| -> Result<Dense, NeuralError> {
            let weight = get(&format!("{name}.weight"), &[output, input])?;
            let mut w = vec![0f32; input * output];
            for o in 0..output {
                for i in 0..input {
                    w[i * output + o] = weight[o * input + i];
                }
            }
            Ok(Dense {
                w,
                b: get(&format!("{name}.bias"), &[output])?,
                input,
                output,
            })
        };
        let norm = |name: &str| -> Result<Norm, NeuralError> {
            Ok(Norm {
                w: get(&format!("{name}.weight"), &[d])?,
                b: get(&format!("{name}.bias"), &[d])?,
            })
        };
        let hidden = config.mlp_ratio * d;
        let layers = (0..config.layers)
            .map(|i| {
                let at = |part: &str| format!("blocks.{i}.{part}");
                Ok(Layer {
                    ln1: norm(&at("ln1"))?,
                    qkv: dense(&at("qkv"), d, 3 * d)?,
                    proj: dense(&at("proj"), d, d)?,
                    ln2: norm(&at("ln2"))?,
                    fc: dense(&at("fc"), d, hidden)?,
                    out: dense(&at("out"), hidden, d)?,
                })
            })
            .collect::<Result<Vec<_>, NeuralError>>()?;
        Ok(Weights {
            vocab: config.vocab,
            width: d,
            heads: config.heads,
            prefix: config.prefix,
            tokens: get("tokens.weight", &[v, d])?,
            positions: get(
                "positions.weight",
                &[config.prefix + config.vocab.max_len(), d],
            )?,
            layers,
            ln_f: norm("ln_f")?,
            head: dense("head", d, v)?,
        })
    }
}
