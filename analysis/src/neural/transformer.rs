//! A small causal transformer over program tokens, conditioned on the task through a map encoder.
//!
//! Shapes (B programs, T input positions, N distinct tasks in the batch, C cells, F =
//! [`CELL_FEATURES`], d = width, P = prefix vectors, V = vocabulary):
//! - the map encoder turns cell features `(N, C, F)` with a cell mask `(N, C)` into per-cell
//!   vectors `(N, C, d)` (two linear layers with ReLU), pools them (masked mean and max, `(N,
//!   2d)`) and projects to P prefix vectors `(N, P, d)`; maps never seen in training are encoded
//!   the same way;
//! - each program picks its task's prefix `(B, P, d)`, followed by its token embeddings plus
//!   learned position embeddings `(B, T, d)`;
//! - pre-norm blocks with causal self-attention over the P + T positions and a ReLU MLP (ReLU
//!   rather than GELU: on the CPU the tanh of candle's GELU cost a quarter of the run time), then
//!   a final layer norm and a linear head give logits `(B, T, V)` at the token positions.
//!
//! In training mode the layer norm and softmax are written out of differentiable tensor ops (the
//! fused candle kernels have no backward pass) and dropout draws from a seeded generator, so a run
//! is reproducible; in inference mode the fused kernels are used.

use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder, embedding, linear};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::neural::NeuralError;
use crate::neural::tokens::{CELL_FEATURES, MASKED, Vocab};

/// Sizes of the transformer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TransformerConfig {
    pub vocab: Vocab,
    /// Model width d.
    pub width: usize,
    pub layers: usize,
    pub heads: usize,
    /// Hidden width of each block's MLP, as a multiple of `width`.
    pub mlp_ratio: usize,
    /// Prefix vectors P the map encoder produces.
    pub prefix: usize,
    /// Dropout probability in training.
    pub dropout: f32,
}

impl TransformerConfig {
    /// The default small CPU model: width 64, 2 layers, 4 heads.
    pub fn small(vocab: Vocab) -> TransformerConfig {
        TransformerConfig {
            vocab,
            width: 64,
            layers: 2,
            heads: 4,
            mlp_ratio: 4,
            prefix: 2,
            dropout: 0.1,
        }
    }

    pub fn check(&self) -> Result<(), NeuralError> {
        if self.width == 0 || self.heads == 0 || !self.width.is_multiple_of(self.heads) {
            return Err(NeuralError::Invalid(format!(
                "width {} must be a positive multiple of the {} heads",
                self.width, self.heads
            )));
        }
        if self.layers == 0 || self.mlp_ratio == 0 || self.prefix == 0 {
            return Err(NeuralError::Invalid(
                "layers, mlp_ratio and prefix must be positive".into(),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(NeuralError::Invalid(format!(
                "dropout {} is not in [0, 1)",
                self.dropout
            )));
        }
        Ok(())
    }
}

/// Dropout with a seeded generator (candle's CPU generator cannot be seeded).
pub struct Dropout {
    pub p: f32,
    pub rng: ChaCha8Rng,
}

impl Dropout {
    fn apply(&mut self, xs: &Tensor) -> Result<Tensor, NeuralError> {
        if self.p <= 0.0 {
            return Ok(xs.clone());
        }
        let keep = 1.0 / (1.0 - self.p);
        let mask: Vec<f32> = (0..xs.elem_count())
            .map(|_| {
                if self.rng.random::<f32>() < self.p {
                    0.0
                } else {
                    keep
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, xs.shape(), xs.device())?;
        Ok(xs.mul(&mask)?)
    }
}

/// Layer norm weights; see the module docs for why training has its own formulation.
struct Norm {
    weight: Tensor,
    bias: Tensor,
}

impl Norm {
    fn new(width: usize, vb: VarBuilder<'_>) -> Result<Norm, NeuralError> {
        Ok(Norm {
            weight: vb.get_with_hints(width, "weight", candle_nn::Init::Const(1.0))?,
            bias: vb.get_with_hints(width, "bias", candle_nn::Init::Const(0.0))?,
        })
    }

    fn forward(&self, xs: &Tensor, train: bool) -> Result<Tensor, NeuralError> {
        const EPS: f64 = 1e-5;
        if !train {
            let xs = xs.contiguous()?;
            return Ok(candle_nn::ops::layer_norm(
                &xs,
                &self.weight,
                &self.bias,
                EPS as f32,
            )?);
        }
        let mean = xs.mean_keepdim(D::Minus1)?;
        let centred = xs.broadcast_sub(&mean)?;
        let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(variance + EPS)?.sqrt()?)?;
        Ok(normed
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)?)
    }
}

fn softmax(xs: &Tensor, train: bool) -> Result<Tensor, NeuralError> {
    Ok(if train {
        candle_nn::ops::softmax(xs, D::Minus1)?
    } else {
        candle_nn::ops::softmax_last_dim(xs)?
    })
}

struct Block {
    ln1: Norm,
    qkv: Linear,
    proj: Linear,
    ln2: Norm,
    fc: Linear,
    out: Linear,
    heads: usize,
}

impl Block {
    fn new(cfg: &TransformerConfig, vb: VarBuilder<'_>) -> Result<Block, NeuralError> {
        let d = cfg.width;
        Ok(Block {
            ln1: Norm::new(d, vb.pp("ln1"))?,
            qkv: linear(d, 3 * d, vb.pp("qkv"))?,
            proj: linear(d, d, vb.pp("proj"))?,
            ln2: Norm::new(d, vb.pp("ln2"))?,
            fc: linear(d, cfg.mlp_ratio * d, vb.pp("fc"))?,
            out: linear(cfg.mlp_ratio * d, d, vb.pp("out"))?,
            heads: cfg.heads,
        })
    }

    /// `xs`: `(B, L, d)`; `causal`: `(L, L)` additive mask.
    fn forward(
        &self,
        xs: &Tensor,
        causal: &Tensor,
        dropout: &mut Option<&mut Dropout>,
    ) -> Result<Tensor, NeuralError> {
        let train = dropout.is_some();
        let (b, l, d) = xs.dims3()?;
        let h = self.heads;
        let dh = d / h;
        let normed = self.ln1.forward(xs, train)?;
        let qkv = self
            .qkv
            .forward(&normed)?
            .reshape((b, l, 3, h, dh))?
            .permute((2, 0, 3, 1, 4))?;
        let q = qkv.get(0)?.contiguous()?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let scores = (q.matmul(&k.t()?.contiguous()?)? * (1.0 / (dh as f64).sqrt()))?
            .broadcast_add(causal)?;
        let attention = softmax(&scores, train)?;
        let mixed = attention.matmul(&v)?.transpose(1, 2)?.reshape((b, l, d))?;
        let mut attended = self.proj.forward(&mixed)?;
        if let Some(dropout) = dropout.as_deref_mut() {
            attended = dropout.apply(&attended)?;
        }
        let xs = (xs + attended)?;
        let hidden = self.fc.forward(&self.ln2.forward(&xs, train)?)?.relu()?;
        let mut hidden = self.out.forward(&hidden)?;
        if let Some(dropout) = dropout.as_deref_mut() {
            hidden = dropout.apply(&hidden)?;
        }
        Ok((xs + hidden)?)
    }
}

/// The task-conditioned program transformer.
pub struct ProgramTransformer {
    pub config: TransformerConfig,
    cell_in: Linear,
    cell_hidden: Linear,
    pool_out: Linear,
    tokens: Embedding,
    positions: Embedding,
    blocks: Vec<Block>,
    ln_f: Norm,
    head: Linear,
}

/// One batch of inputs, already on the model's device.
pub struct Batch {
    /// `(B, T)` u32 input tokens (BOS first, PAD after the end).
    pub inputs: Tensor,
    /// `(B, T)` u32 targets (the inputs shifted by one, EOS last, PAD after).
    pub targets: Tensor,
    /// `(B, T)` f32: 1 at real target positions.
    pub target_mask: Tensor,
    /// `(B, T, V)` f32 additive grammar mask.
    pub grammar: Tensor,
    /// `(N, C, F)` f32 cell features of the batch's distinct tasks.
    pub cells: Tensor,
    /// `(N, C)` f32: 1 for real cells.
    pub cell_mask: Tensor,
    /// `(B,)` u32: each program's task, indexing `cells`.
    pub task_index: Tensor,
}

impl ProgramTransformer {
    pub fn new(
        config: TransformerConfig,
        vb: VarBuilder<'_>,
    ) -> Result<ProgramTransformer, NeuralError> {
        config.check()?;
        let d = config.width;
        let encoder = vb.pp("map");
        let blocks = (0..config.layers)
            .map(|i| Block::new(&config, vb.pp("blocks").pp(i.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ProgramTransformer {
            cell_in: linear(CELL_FEATURES, d, encoder.pp("cell_in"))?,
            cell_hidden: linear(d, d, encoder.pp("cell_hidden"))?,
            pool_out: linear(2 * d, config.prefix * d, encoder.pp("pool_out"))?,
            tokens: embedding(config.vocab.size(), d, vb.pp("tokens"))?,
            positions: embedding(
                config.prefix + config.vocab.max_len(),
                d,
                vb.pp("positions"),
            )?,
            blocks,
            ln_f: Norm::new(d, vb.pp("ln_f"))?,
            head: linear(d, config.vocab.size(), vb.pp("head"))?,
            config,
        })
    }

    /// The prefix vectors `(N, P, d)` of the tasks in `cells` `(N, C, F)` with `cell_mask` `(N, C)`.
    pub fn encode_tasks(&self, cells: &Tensor, cell_mask: &Tensor) -> Result<Tensor, NeuralError> {
        let (n, _, _) = cells.dims3()?;
        let d = self.config.width;
        let hidden = self
            .cell_hidden
            .forward(&self.cell_in.forward(cells)?.relu()?)?
            .relu()?;
        let mask = cell_mask.unsqueeze(2)?;
        let count = mask.sum(1)?.clamp(1.0, f64::MAX)?;
        let mean = hidden.broadcast_mul(&mask)?.sum(1)?.broadcast_div(&count)?;
        // Padded cells get a large negative value so that they never win the max.
        let max = hidden.broadcast_add(&((mask - 1.0)? * 1e4)?)?.max(1)?;
        let pooled = Tensor::cat(&[mean, max], 1)?;
        Ok(self
            .pool_out
            .forward(&pooled)?
            .reshape((n, self.config.prefix, d))?)
    }

    /// Logits `(B, T, V)` for inputs `(B, T)` given each program's prefix `(B, P, d)`, with the
    /// grammar mask added. `dropout` set means training mode.
    pub fn logits_with_prefix(
        &self,
        inputs: &Tensor,
        prefix: &Tensor,
        grammar: &Tensor,
        mut dropout: Option<&mut Dropout>,
    ) -> Result<Tensor, NeuralError> {
        let (b, t) = inputs.dims2()?;
        let p = self.config.prefix;
        if t > self.config.vocab.max_len() {
            return Err(NeuralError::Invalid(format!(
                "{t} input positions; the model has {}",
                self.config.vocab.max_len()
            )));
        }
        let device = inputs.device();
        let embedded = Tensor::cat(&[prefix.clone(), self.tokens.forward(inputs)?], 1)?;
        let positions = Tensor::arange(0u32, (p + t) as u32, device)?;
        let mut xs = embedded.broadcast_add(&self.positions.forward(&positions)?)?;
        if let Some(dropout) = dropout.as_deref_mut() {
            xs = dropout.apply(&xs)?;
        }
        let causal = causal_mask(p + t, device)?;
        for block in &self.blocks {
            xs = block.forward(&xs, &causal, &mut dropout)?;
        }
        let xs = self.ln_f.forward(&xs.narrow(1, p, t)?, dropout.is_some())?;
        let logits = self.head.forward(&xs)?;
        debug_assert_eq!(logits.dims3()?, (b, t, self.config.vocab.size()));
        Ok(logits.broadcast_add(grammar)?)
    }

    /// Log-probabilities `(B, T)` of each target token (0 at padding), and their sum per program
    /// `(B,)`: log P(program | task).
    pub fn log_probs(
        &self,
        batch: &Batch,
        dropout: Option<&mut Dropout>,
    ) -> Result<(Tensor, Tensor), NeuralError> {
        let prefix = self
            .encode_tasks(&batch.cells, &batch.cell_mask)?
            .index_select(&batch.task_index, 0)?;
        let logits = self.logits_with_prefix(&batch.inputs, &prefix, &batch.grammar, dropout)?;
        let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let picked = log_probs
            .gather(&batch.targets.unsqueeze(2)?, 2)?
            .squeeze(2)?;
        let picked = picked.mul(&batch.target_mask)?;
        let total = picked.sum(1)?;
        Ok((picked, total))
    }
}

/// The `(L, L)` additive causal mask: position i sees positions up to i.
fn causal_mask(len: usize, device: &Device) -> Result<Tensor, NeuralError> {
    let values: Vec<f32> = (0..len)
        .flat_map(|i| (0..len).map(move |j| if j <= i { 0.0 } else { MASKED }))
        .collect();
    Ok(Tensor::from_vec(values, (len, len), device)?.to_dtype(DType::F32)?)
}

/// Keys and values of already evaluated positions, per layer, on the host, for incremental
/// (prefix-trie) scoring in inference mode (`crate::neural::trie`): row `r` of layer `l` is
/// `keys[l][r * d..(r + 1) * d]` (heads side by side, like the fused `qkv` output).
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    pub keys: Vec<Vec<f32>>,
    pub values: Vec<Vec<f32>>,
    /// Rows stored per layer.
    pub rows: usize,
}

impl KvCache {
    pub fn new(layers: usize) -> KvCache {
        KvCache {
            keys: vec![Vec::new(); layers],
            values: vec![Vec::new(); layers],
            rows: 0,
        }
    }
}

/// The rows `ancestors` (B · L row indices) of one layer's host store, split into h heads of
/// width dh: `(B, h, L, dh)`, or `(B, h, dh, L)` when `transposed` (keys, ready for q · kᵀ).
fn gather_heads(
    store: &[f32],
    ancestors: &[u32],
    (b, l, h, dh): (usize, usize, usize, usize),
    transposed: bool,
    device: &Device,
) -> Result<Tensor, NeuralError> {
    let d = h * dh;
    let mut out = vec![0f32; b * l * d];
    for batch in 0..b {
        let rows = &ancestors[batch * l..(batch + 1) * l];
        for head in 0..h {
            let block = &mut out[(batch * h + head) * l * dh..(batch * h + head + 1) * l * dh];
            for (j, &row) in rows.iter().enumerate() {
                let src = &store[row as usize * d + head * dh..row as usize * d + (head + 1) * dh];
                if transposed {
                    for (e, &value) in src.iter().enumerate() {
                        block[e * l + j] = value;
                    }
                } else {
                    block[j * dh..(j + 1) * dh].copy_from_slice(src);
                }
            }
        }
    }
    let shape = if transposed {
        (b, h, dh, l)
    } else {
        (b, h, l, dh)
    };
    Ok(Tensor::from_vec(out, shape, device)?)
}

impl Block {
    /// Inference-mode forward of B new positions `xs` `(B, d)`, each attending to the `l` cached
    /// rows `ancestors[b * l..(b + 1) * l]` (the last being its own row, appended here as rows
    /// `first_row..first_row + B`).
    fn forward_cached(
        &self,
        xs: &Tensor,
        ancestors: &[u32],
        l: usize,
        keys: &mut Vec<f32>,
        values: &mut Vec<f32>,
    ) -> Result<Tensor, NeuralError> {
        let (b, d) = xs.dims2()?;
        let h = self.heads;
        let dh = d / h;
        let normed = self.ln1.forward(xs, false)?;
        let qkv = self.qkv.forward(&normed)?;
        let q = qkv.narrow(1, 0, d)?;
        keys.extend(qkv.narrow(1, d, d)?.flatten_all()?.to_vec1::<f32>()?);
        values.extend(qkv.narrow(1, 2 * d, d)?.flatten_all()?.to_vec1::<f32>()?);
        let device = xs.device();
        let k_t = gather_heads(keys, ancestors, (b, l, h, dh), true, device)?;
        let v = gather_heads(values, ancestors, (b, l, h, dh), false, device)?;
        let q = q.reshape((b, 1, h, dh))?.transpose(1, 2)?.contiguous()?;
        let scores = (q.matmul(&k_t)? * (1.0 / (dh as f64).sqrt()))?;
        let attention = softmax(&scores, false)?;
        let mixed = attention.matmul(&v)?.transpose(1, 2)?.reshape((b, d))?;
        let xs = (xs + self.proj.forward(&mixed)?)?;
        let hidden = self.fc.forward(&self.ln2.forward(&xs, false)?)?.relu()?;
        Ok((&xs + self.out.forward(&hidden)?)?)
    }
}

impl ProgramTransformer {
    /// Input vectors `(P, d)` of the prefix positions, for one task's prefix `(P, d)`.
    pub fn prefix_inputs(&self, prefix: &Tensor) -> Result<Tensor, NeuralError> {
        let p = self.config.prefix;
        let positions = Tensor::arange(0u32, p as u32, prefix.device())?;
        Ok(prefix.broadcast_add(&self.positions.forward(&positions)?)?)
    }

    /// Input vectors `(B, d)` of `tokens` `(B,)` u32 at token position `position` (0 is BOS).
    pub fn token_inputs(&self, tokens: &Tensor, position: usize) -> Result<Tensor, NeuralError> {
        let at = (self.config.prefix + position) as u32;
        let positions = Tensor::new(&[at], tokens.device())?;
        Ok(self
            .tokens
            .forward(tokens)?
            .broadcast_add(&self.positions.forward(&positions)?)?)
    }

    /// One incremental inference step: B new positions with inputs `xs` `(B, d)` are appended to
    /// `cache` as rows `cache.rows..cache.rows + B`; position `b` attends to the `l` rows
    /// `ancestors[b * l..(b + 1) * l]`, in position order, ending with its own new row. Returns
    /// the head's logits `(B, V)` without the grammar mask.
    pub fn cached_step(
        &self,
        xs: &Tensor,
        ancestors: &[u32],
        l: usize,
        cache: &mut KvCache,
    ) -> Result<Tensor, NeuralError> {
        let (b, _) = xs.dims2()?;
        if ancestors.len() != b * l || cache.keys.len() != self.blocks.len() {
            return Err(NeuralError::Invalid(
                "cached step: ancestors or cache do not match the batch".into(),
            ));
        }
        let mut xs = xs.clone();
        for (i, block) in self.blocks.iter().enumerate() {
            xs = block.forward_cached(
                &xs,
                ancestors,
                l,
                &mut cache.keys[i],
                &mut cache.values[i],
            )?;
        }
        cache.rows += b;
        let xs = self.ln_f.forward(&xs, false)?;
        Ok(self.head.forward(&xs)?)
    }
}
