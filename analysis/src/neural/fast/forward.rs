//! The decoder over a prefix trie: the nodes run in blocks of [`Engine::rows`] consecutive nodes
//! of the trie's depth-first preorder, through the layers as real matrix products; each node
//! attends to the task's prefix positions and to its ancestors (itself last). See
//! [`Engine::score_trie`] for why a block may mix depths and hold a node with its ancestors.
//!
//! Keys and values of layer 0 depend only on a position's token and depth (its input is the
//! token embedding plus the position embedding), so they come from a table computed once
//! ([`Engine::first`]) and are not stored per node; the key and value of a node in a later layer
//! are kept side by side in one flat vector per layer, `(nodes, 2d)` row-major, the rows in the
//! trie's depth-first preorder (so that a node's ancestors are mostly one run of rows).

use crate::neural::NeuralError;
use crate::neural::fast::attention::{Context, attend, interleave};
use crate::neural::fast::profile::{Part, Timer};
use crate::neural::fast::weights::{Norm, Weights};
use crate::neural::tokens::{EOS, MASKED};
use crate::neural::train::{Example, NeuralLm, TaskTable};
use crate::neural::transformer::KvCache;
use crate::neural::trie::PrefixTrie;

/// Keys and values of one task's prefix positions, per layer: `(P, d)` row-major, each row
/// interleaved ([`interleave`]).
#[derive(Debug, Clone)]
pub(crate) struct TaskPrefix {
    pub keys: Vec<Vec<f32>>,
    pub values: Vec<Vec<f32>>,
}

impl TaskPrefix {
    /// Encodes task `task`'s map with candle (once per task) and runs its prefix positions.
    pub fn new(lm: &NeuralLm, tasks: &TaskTable, task: usize) -> Result<TaskPrefix, NeuralError> {
        let model = &lm.model;
        let p = model.config.prefix;
        let d = model.config.width;
        let probe = Example {
            task,
            tokens: vec![crate::neural::tokens::BOS, EOS],
        };
        let probe = lm.batch(tasks, &[&probe])?;
        let prefix = model
            .encode_tasks(&probe.cells, &probe.cell_mask)?
            .squeeze(0)?;
        let inputs = model.prefix_inputs(&prefix)?;
        let mut cache = KvCache::new(model.config.layers);
        for j in 0..p {
            let ancestors: Vec<u32> = (0..=j as u32).collect();
            model.cached_step(&inputs.narrow(0, j, 1)?, &ancestors, j + 1, &mut cache)?;
        }
        debug_assert!(cache.keys.iter().all(|k| k.len() == p * d));
        let heads = model.config.heads;
        let interleaved = |rows: Vec<Vec<f32>>| -> Vec<Vec<f32>> {
            rows.iter()
                .map(|layer| {
                    layer
                        .chunks_exact(d)
                        .flat_map(|row| interleave(row, heads))
                        .collect()
                })
                .collect()
        };
        Ok(TaskPrefix {
            keys: interleaved(cache.keys),
            values: interleaved(cache.values),
        })
    }
}

/// The weights with the layer-0 table.
#[derive(Debug, Clone)]
pub(crate) struct Engine {
    pub w: Weights,
    /// Layer 0's q, k, v (3d values) of token `tok` at depth `t`: row `t * V + tok`.
    pub first: Vec<f32>,
    /// Nodes per block of matrix products.
    pub rows: usize,
    /// The CPU's SIMD level, for the attention and the layer norms.
    pub arch: pulp::Arch,
}

/// Buffers of one block of rows.
#[derive(Debug, Default)]
struct Scratch {
    x: Vec<f32>,
    h: Vec<f32>,
    qkv: Vec<f32>,
    mixed: Vec<f32>,
    hidden: Vec<f32>,
    logits: Vec<f32>,
    scores: Vec<f32>,
    offsets: Vec<usize>,
    context_start: Vec<usize>,
    queries: Vec<usize>,
}

/// The buffers of one trie, kept between tries of a thread so that their pages are reused.
#[derive(Debug, Default)]
pub(crate) struct Buffers {
    position: Vec<u32>,
    depth: Vec<u8>,
    order: Vec<u32>,
    stores: Vec<Vec<f32>>,
    ancestor_start: Vec<usize>,
    ancestors: Vec<u32>,
    log_probs: Vec<f64>,
    total: Vec<f64>,
    scratch: Scratch,
}

impl Engine {
    pub fn new(mut w: Weights, rows: usize) -> Engine {
        let d = w.width;
        // The interleaved layout of queries, keys, values and the mixed values: permute the
        // columns of each third of `qkv` and the rows of `proj`.
        let heads = w.heads;
        for layer in &mut w.layers {
            let qkv = &mut layer.qkv;
            for row in qkv.w.chunks_exact_mut(3 * d) {
                let permuted: Vec<f32> = row
                    .chunks_exact(d)
                    .flat_map(|third| interleave(third, heads))
                    .collect();
                row.copy_from_slice(&permuted);
            }
            qkv.b = qkv
                .b
                .chunks_exact(d)
                .flat_map(|third| interleave(third, heads))
                .collect();
            let proj = &mut layer.proj;
            let dh = d / heads;
            let original = proj.w.clone();
            for h in 0..heads {
                for e in 0..dh {
                    proj.w[(e * heads + h) * d..(e * heads + h + 1) * d]
                        .copy_from_slice(&original[(h * dh + e) * d..(h * dh + e + 1) * d]);
                }
            }
        }
        let v = w.vocab.size();
        let max_len = w.vocab.max_len();
        let p = w.prefix;
        let n = max_len * v;
        let mut x = vec![0f32; n * d];
        for t in 0..max_len {
            let position = &w.positions[(p + t) * d..(p + t + 1) * d];
            for tok in 0..v {
                let row = &mut x[(t * v + tok) * d..(t * v + tok + 1) * d];
                let embedding = &w.tokens[tok * d..(tok + 1) * d];
                for ((o, &e), &q) in row.iter_mut().zip(embedding).zip(position) {
                    *o = e + q;
                }
            }
        }
        let mut h = vec![0f32; n * d];
        w.layers[0].ln1.forward(&x, &mut h);
        let mut first = vec![0f32; n * 3 * d];
        w.layers[0].qkv.forward(&h, n, &mut first);
        Engine {
            w,
            first,
            rows: rows.max(1),
            arch: pulp::Arch::new(),
        }
    }

    /// log P(sequence | task) of the trie's sequences, in the order they were given.
    ///
    /// The nodes run in blocks of [`Engine::rows`] consecutive nodes of the trie's depth-first
    /// preorder. A block may hold a node and its ancestors: each layer first computes and stores
    /// the keys and values of the whole block and only then attends, so a node sees its
    /// ancestors' rows of that layer whether they are in its block or an earlier one. In
    /// preorder a node's ancestors were mostly run moments before (a chain of only children is
    /// contiguous), so their keys and values are still in the cache.
    pub fn score_trie(
        &self,
        prefix: &TaskPrefix,
        trie: &PrefixTrie,
        buffers: &mut Buffers,
        timer: &mut Timer<'_>,
    ) -> Vec<f64> {
        let n = trie.len();
        timer.count(n);
        if n == 0 {
            return Vec::new();
        }
        let w = &self.w;
        let d = w.width;
        let v = w.vocab.size();
        let later = w.layers.len() - 1;
        let b = buffers;
        preorder(trie, &mut b.position, &mut b.depth, &mut b.order);
        // Per later layer, each node's key and value side by side, `(nodes, 2d)`, at its
        // position in preorder.
        b.stores.resize_with(later, Vec::new);
        for store in &mut b.stores {
            store.clear();
            store.resize(n * 2 * d, 0.0);
        }
        // Ancestor lists (the node itself last), node by node as they run.
        b.ancestor_start.clear();
        b.ancestor_start.resize(n, 0);
        b.ancestors.clear();
        b.log_probs.clear();
        b.log_probs.resize(n * v, 0.0);
        let mut allowed = vec![false; v];
        timer.lap(Part::Inputs);
        for block in b.order.chunks(self.rows) {
            for &node in block {
                let node = node as usize;
                let start = b.ancestors.len();
                if node > 0 {
                    let parent = trie.parent[node] as usize;
                    let from = b.ancestor_start[parent];
                    let depth = b.depth[node] as usize;
                    b.ancestors.extend_from_within(from..from + depth);
                }
                b.ancestors.push(node as u32);
                b.ancestor_start[node] = start;
            }
            timer.lap(Part::Inputs);
            self.forward(
                prefix,
                trie,
                block,
                &b.depth,
                &b.position,
                &b.ancestors,
                &b.ancestor_start,
                &mut b.stores,
                &mut b.scratch,
                timer,
            );
            for (i, &node) in block.iter().enumerate() {
                let node = node as usize;
                w.vocab.allowed_in_state(
                    usize::from(b.depth[node]),
                    usize::from(trie.separators[node]),
                    trie.token[node],
                    &mut allowed,
                );
                let logits = &b.scratch.logits[i * v..(i + 1) * v];
                let out = &mut b.log_probs[node * v..(node + 1) * v];
                let mut max = f32::NEG_INFINITY;
                for ((o, &z), &ok) in out.iter_mut().zip(logits).zip(&allowed) {
                    let z = if ok { z } else { z + MASKED };
                    *o = f64::from(z);
                    max = max.max(z);
                }
                let max = f64::from(max);
                let sum: f64 = out.iter().map(|&z| (z - max).exp()).sum();
                let log_sum = max + sum.ln();
                for o in out.iter_mut() {
                    *o -= log_sum;
                }
            }
            timer.lap(Part::Softmax);
        }
        // Path sums: node ids are in level order, so parents come first.
        b.total.clear();
        b.total.resize(n, 0.0);
        for node in 1..n {
            let parent = trie.parent[node] as usize;
            b.total[node] = b.total[parent] + b.log_probs[parent * v + trie.token[node] as usize];
        }
        let scores = trie
            .ends
            .iter()
            .map(|&e| b.total[e as usize] + b.log_probs[e as usize * v + EOS as usize])
            .collect();
        timer.lap(Part::Inputs);
        scores
    }

    /// Runs the nodes `block` (with their depths, preorder positions and ancestor lists)
    /// through the decoder: stores their keys and values and leaves their logits in `s.logits`.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        prefix: &TaskPrefix,
        trie: &PrefixTrie,
        block: &[u32],
        depths: &[u8],
        positions: &[u32],
        ancestors: &[u32],
        ancestor_start: &[usize],
        stores: &mut [Vec<f32>],
        s: &mut Scratch,
        timer: &mut Timer<'_>,
    ) {
        let w = &self.w;
        let d = w.width;
        let v = w.vocab.size();
        let p = w.prefix;
        let rows = block.len();
        let hidden = w.layers[0].fc.output;
        s.x.resize(rows * d, 0.0);
        s.h.resize(rows * d, 0.0);
        s.qkv.resize(rows * 3 * d, 0.0);
        s.mixed.resize(rows * d, 0.0);
        s.hidden.resize(rows * hidden, 0.0);
        s.logits.resize(rows * v, 0.0);
        s.queries.resize(rows, 0);
        // Each row's context: its ancestors, itself last.
        s.context_start.clear();
        s.context_start.push(0);
        let mut longest = 0;
        for &node in block {
            let length = usize::from(depths[node as usize]) + 1;
            longest = longest.max(length);
            s.context_start
                .push(s.context_start[s.context_start.len() - 1] + length);
        }
        s.offsets.resize(s.context_start[rows], 0);
        s.scores.resize(w.heads.max(16) * (p + longest), 0.0);
        let path = |i: usize| -> &[u32] {
            let node = block[i] as usize;
            let from = ancestor_start[node];
            &ancestors[from..from + usize::from(depths[node]) + 1]
        };

        // Inputs: token plus position embedding.
        for (row, &node) in s.x.chunks_exact_mut(d).zip(block) {
            let node = node as usize;
            let tok = trie.token[node] as usize;
            let at = p + usize::from(depths[node]);
            let position = &w.positions[at * d..(at + 1) * d];
            for ((o, &e), &q) in row.iter_mut().zip(&w.tokens[tok * d..]).zip(position) {
                *o = e + q;
            }
        }
        timer.lap(Part::Inputs);
        for (layer_index, layer) in w.layers.iter().enumerate() {
            if layer_index == 0 {
                // q, k, v of the nodes and their ancestors from the table.
                for (i, &node) in block.iter().enumerate() {
                    let offsets = &mut s.offsets[s.context_start[i]..s.context_start[i + 1]];
                    for (j, (offset, &a)) in offsets.iter_mut().zip(path(i)).enumerate() {
                        *offset = (j * v + trie.token[a as usize] as usize) * 3 * d;
                    }
                    let depth = usize::from(depths[node as usize]);
                    s.queries[i] = (depth * v + trie.token[node as usize] as usize) * 3 * d;
                }
                self.arch.dispatch(AttendRows {
                    heads: w.heads,
                    queries: &self.first,
                    query_offsets: &s.queries,
                    prefix_keys: &prefix.keys[0],
                    prefix_values: &prefix.values[0],
                    keys: &self.first[d..],
                    values: &self.first[2 * d..],
                    offsets: &s.offsets,
                    context_start: &s.context_start,
                    scores: &mut s.scores,
                    mixed: &mut s.mixed,
                });
                timer.lap(Part::Attention);
            } else {
                self.arch.dispatch(NormRows {
                    norm: &layer.ln1,
                    x: &s.x,
                    out: &mut s.h,
                });
                timer.lap(Part::Elementwise);
                layer.qkv.forward(&s.h, rows, &mut s.qkv);
                timer.lap(Part::Matmul);
                let store = &mut stores[layer_index - 1];
                for (i, (row, &node)) in s.qkv.chunks_exact(3 * d).zip(block).enumerate() {
                    let at = positions[node as usize] as usize * 2 * d;
                    store[at..at + 2 * d].copy_from_slice(&row[d..]);
                    let offsets = &mut s.offsets[s.context_start[i]..s.context_start[i + 1]];
                    for (offset, &a) in offsets.iter_mut().zip(path(i)) {
                        *offset = positions[a as usize] as usize * 2 * d;
                    }
                    s.queries[i] = i * 3 * d;
                }
                self.arch.dispatch(AttendRows {
                    heads: w.heads,
                    queries: &s.qkv,
                    query_offsets: &s.queries,
                    prefix_keys: &prefix.keys[layer_index],
                    prefix_values: &prefix.values[layer_index],
                    keys: store,
                    values: &store[d..],
                    offsets: &s.offsets,
                    context_start: &s.context_start,
                    scores: &mut s.scores,
                    mixed: &mut s.mixed,
                });
                timer.lap(Part::Attention);
            }
            layer.proj.forward_add(&s.mixed, rows, &mut s.x);
            timer.lap(Part::Matmul);
            self.arch.dispatch(NormRows {
                norm: &layer.ln2,
                x: &s.x,
                out: &mut s.h,
            });
            timer.lap(Part::Elementwise);
            layer.fc.forward(&s.h, rows, &mut s.hidden);
            timer.lap(Part::Matmul);
            self.arch.dispatch(Relu(&mut s.hidden));
            timer.lap(Part::Elementwise);
            layer.out.forward_add(&s.hidden, rows, &mut s.x);
            timer.lap(Part::Matmul);
        }
        self.arch.dispatch(NormRows {
            norm: &w.ln_f,
            x: &s.x,
            out: &mut s.h,
        });
        timer.lap(Part::Elementwise);
        w.head.forward(&s.h, rows, &mut s.logits);
        timer.lap(Part::Matmul);
    }
}

// The vectorised steps, each a `pulp::WithSimd` so that `Arch::dispatch` compiles its body (all
// `#[inline(always)]`) for AVX2 and FMA where the CPU has them; closures were not inlined into
// the dispatch and stayed SSE2.

/// Attention of a block of rows: row `i` has its query at `queries[query_offsets[i]..]` and its
/// context rows at `offsets[context_start[i]..context_start[i + 1]]`; the mixed values go to
/// `mixed`.
struct AttendRows<'a> {
    heads: usize,
    queries: &'a [f32],
    query_offsets: &'a [usize],
    prefix_keys: &'a [f32],
    prefix_values: &'a [f32],
    keys: &'a [f32],
    values: &'a [f32],
    offsets: &'a [usize],
    context_start: &'a [usize],
    scores: &'a mut [f32],
    mixed: &'a mut [f32],
}

impl pulp::WithSimd for AttendRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let rows = self.query_offsets.len();
        let d = self.mixed.len() / rows.max(1);
        for (i, &at) in self.query_offsets.iter().enumerate() {
            let context = Context {
                prefix_keys: self.prefix_keys,
                prefix_values: self.prefix_values,
                keys: self.keys,
                values: self.values,
                offsets: &self.offsets[self.context_start[i]..self.context_start[i + 1]],
            };
            attend(
                &self.queries[at..at + d],
                self.heads,
                &context,
                self.scores,
                &mut self.mixed[i * d..(i + 1) * d],
            );
        }
    }
}

struct NormRows<'a> {
    norm: &'a Norm,
    x: &'a [f32],
    out: &'a mut [f32],
}

impl pulp::WithSimd for NormRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        self.norm.forward(self.x, self.out);
    }
}

struct Relu<'a>(&'a mut [f32]);

impl pulp::WithSimd for Relu<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        for value in self.0.iter_mut() {
            *value = value.max(0.0);
        }
    }
}

/// Each node's position in the trie's depth-first preorder, its depth, and the nodes in preorder.
fn preorder(trie: &PrefixTrie, position: &mut Vec<u32>, depth: &mut Vec<u8>, order: &mut Vec<u32>) {
    let n = trie.len();
    depth.clear();
    depth.resize(n, 0);
    for t in 0..trie.depths() {
        for node in trie.level(t) {
            depth[node] = t as u8;
        }
    }
    // Subtree sizes, children (higher ids) first.
    let mut size = vec![1u32; n];
    for node in (1..n).rev() {
        size[trie.parent[node] as usize] += size[node];
    }
    // A level's children are in their parents' order, so each parent hands out consecutive
    // positions after its own.
    position.clear();
    position.resize(n, 0);
    let mut next = vec![1u32; n];
    for node in 1..n {
        let parent = trie.parent[node] as usize;
        position[node] = position[parent] + next[parent];
        next[parent] += size[node];
    }
    order.clear();
    order.resize(n, 0);
    for (node, &at) in position.iter().enumerate() {
        order[at as usize] = node as u32;
    }
}

/// Checks the configuration the engine supports.
pub(crate) fn check(w: &Weights) -> Result<(), NeuralError> {
    if w.layers.is_empty() || w.heads == 0 || !w.width.is_multiple_of(w.heads) {
        return Err(NeuralError::Invalid(
            "the fast scorer needs at least one layer and a width divisible by the heads".into(),
        ));
    }
    Ok(())
}
