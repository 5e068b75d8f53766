//! Prefix-trie scoring: log P(program | task) of many programs of one task, evaluating each
//! distinct token prefix once.
//!
//! The candidate programs of a task share long prefixes, so the sequences `BOS ... EOS` are put
//! into a trie and the transformer is run once per trie node (every node but the EOS leaves),
//! depth by depth, in batches of nodes of one depth. Each node's keys and values are kept in a
//! host cache ([`KvCache`]); a node attends to the task's prefix positions and its ancestors'
//! cached rows. A node's log-softmax (with the grammar mask) gives the log-probabilities of its
//! children's tokens, and a sequence's log-probability is the sum along its path: the same number
//! as [`crate::neural::score::log_probs`] up to floating-point rounding.
//!
//! Streams are scored in chunks of sequences, one trie per chunk, so memory stays bounded.

use candle_core::Tensor;
use dsl::Program;

use crate::neural::NeuralError;
use crate::neural::tokens::{BOS, EOS, MASKED, SEP, Vocab};
use crate::neural::train::{Example, NeuralLm, TaskTable};
use crate::neural::transformer::KvCache;

/// Sizes of one scored trie.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrieStats {
    pub sequences: usize,
    /// Trie nodes, EOS leaves included.
    pub nodes: usize,
    /// Nodes run through the transformer.
    pub evaluated: usize,
    /// Input positions the naive scorer would run (sum of sequence lengths minus one).
    pub naive_positions: usize,
}

impl TrieStats {
    /// Adds another trie's sizes.
    pub fn add(&mut self, other: &TrieStats) {
        self.sequences += other.sequences;
        self.nodes += other.nodes;
        self.evaluated += other.evaluated;
        self.naive_positions += other.naive_positions;
    }
}

/// The prefix trie of a list of `BOS ... EOS` sequences, level by level, shared by the trie
/// scorers ([`score_sequences`] and [`crate::neural::fast`]).
///
/// Nodes are the distinct proper prefixes (everything before the final EOS): node 0 is the bare
/// BOS, and the nodes of depth t (t tokens after BOS) are `levels[t]..levels[t + 1]`. The
/// sequences are sorted before the trie is built, so the children of a node are contiguous in the
/// next level and in their parents' order. Every node is run through the transformer; the EOS
/// that ends sequence `i` is the child of node `ends[i]` and needs no run of its own.
#[derive(Debug, Clone, Default)]
pub struct PrefixTrie {
    /// Parent of each node (`u32::MAX` for the root).
    pub parent: Vec<u32>,
    /// Last token of each node's prefix (BOS for the root).
    pub token: Vec<u32>,
    /// Separators in each node's prefix (for the grammar mask).
    pub separators: Vec<u8>,
    /// Start of each depth's nodes, and the node count last.
    pub levels: Vec<usize>,
    /// The node each sequence's EOS follows.
    pub ends: Vec<u32>,
    /// Distinct sequences (EOS leaves).
    pub leaves: usize,
    /// Input positions the naive scorer would run (sum of sequence lengths minus one).
    pub naive_positions: usize,
}

impl PrefixTrie {
    /// The trie of `sequences`; each must be `BOS ... EOS` over the vocabulary, at most
    /// `vocab.max_len()` input positions long. Tokens may be stored as `u32` or, compactly, as
    /// `u8`.
    pub fn build<T, S>(vocab: &Vocab, sequences: &[S]) -> Result<PrefixTrie, NeuralError>
    where
        T: Copy + Ord + Into<u32> + std::fmt::Debug,
        S: AsRef<[T]>,
    {
        let v = vocab.size();
        let mut naive_positions = 0;
        for sequence in sequences {
            let sequence = sequence.as_ref();
            let token = |i: usize| -> u32 { sequence[i].into() };
            let n = sequence.len();
            let valid = n >= 2
                && token(0) == BOS
                && token(n - 1) == EOS
                && n - 1 <= vocab.max_len()
                && !(1..n - 1).any(|i| {
                    let t = token(i);
                    t == EOS || t == BOS || t as usize >= v
                });
            if !valid {
                return Err(NeuralError::Invalid(format!(
                    "{sequence:?} is not a BOS ... EOS sequence of the model's vocabulary"
                )));
            }
            naive_positions += n - 1;
        }
        let mut trie = PrefixTrie {
            ends: vec![0; sequences.len()],
            naive_positions,
            ..PrefixTrie::default()
        };
        if sequences.is_empty() {
            return Ok(trie);
        }
        trie.parent.push(u32::MAX);
        trie.token.push(BOS);
        trie.separators.push(0);
        trie.levels.push(0);
        // Sorted sequences with the node of their prefix at the current depth: sequences that
        // share a prefix are neighbours, so a new node starts wherever (parent, token) changes.
        let mut active: Vec<(u32, u32)> = (0..sequences.len() as u32).map(|i| (i, 0)).collect();
        active.sort_unstable_by(|&(a, _), &(b, _)| {
            sequences[a as usize]
                .as_ref()
                .cmp(sequences[b as usize].as_ref())
        });
        let mut depth = 0;
        while !active.is_empty() {
            depth += 1;
            trie.levels.push(trie.parent.len());
            let mut last_leaf = u32::MAX;
            let mut last = (u32::MAX, u32::MAX);
            let mut kept = 0;
            for at in 0..active.len() {
                let (index, node) = active[at];
                let token: u32 = sequences[index as usize].as_ref()[depth].into();
                if token == EOS {
                    trie.ends[index as usize] = node;
                    if node != last_leaf {
                        trie.leaves += 1;
                        last_leaf = node;
                    }
                    continue;
                }
                if (node, token) != last {
                    last = (node, token);
                    trie.parent.push(node);
                    trie.token.push(token);
                    trie.separators
                        .push(trie.separators[node as usize] + u8::from(token == SEP));
                }
                active[kept] = (index, trie.parent.len() as u32 - 1);
                kept += 1;
            }
            active.truncate(kept);
        }
        // The last level pushed is empty: its start is the node count.
        Ok(trie)
    }

    /// Nodes (each run through the transformer once).
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// Depths with nodes.
    pub fn depths(&self) -> usize {
        self.levels.len().saturating_sub(1)
    }

    /// The nodes of depth `depth`.
    pub fn level(&self, depth: usize) -> std::ops::Range<usize> {
        self.levels[depth]..self.levels[depth + 1]
    }

    /// Sizes for [`TrieStats`].
    pub fn stats(&self) -> TrieStats {
        TrieStats {
            sequences: self.ends.len(),
            nodes: self.len() + self.leaves,
            evaluated: self.len(),
            naive_positions: self.naive_positions,
        }
    }
}

/// log P(sequence | task) of every sequence (each `BOS ... EOS`), in order, with `batch` trie
/// nodes per transformer call.
pub fn score_sequences(
    lm: &NeuralLm,
    tasks: &TaskTable,
    task: usize,
    sequences: &[Vec<u32>],
    batch: usize,
) -> Result<(Vec<f64>, TrieStats), NeuralError> {
    let vocab = lm.config().vocab;
    let v = vocab.size();
    let p = lm.config().prefix;
    let batch = batch.max(1);
    let trie = PrefixTrie::build(&vocab, sequences)?;
    if sequences.is_empty() {
        return Ok((Vec::new(), TrieStats::default()));
    }

    // The task's prefix positions are cache rows 0..P.
    let probe = Example {
        task,
        tokens: vec![BOS, EOS],
    };
    let probe = lm.batch(tasks, &[&probe])?;
    let model = &lm.model;
    let prefix = model
        .encode_tasks(&probe.cells, &probe.cell_mask)?
        .squeeze(0)?;
    let prefix_inputs = model.prefix_inputs(&prefix)?;
    let mut cache = KvCache::new(model.config.layers);
    for j in 0..p {
        let ancestors: Vec<u32> = (0..=j as u32).collect();
        model.cached_step(
            &prefix_inputs.narrow(0, j, 1)?,
            &ancestors,
            j + 1,
            &mut cache,
        )?;
    }

    let mut row = vec![u32::MAX; trie.len()];
    let mut log_softmax = vec![0f32; trie.len() * v];
    let mut allowed = vec![false; v];
    let mut path: Vec<u32> = Vec::new();
    for depth in 0..trie.depths() {
        let level: Vec<u32> = trie.level(depth).map(|id| id as u32).collect();
        for chunk in level.chunks(batch) {
            let l = p + depth + 1;
            let first = cache.rows as u32;
            let mut ancestors = Vec::with_capacity(chunk.len() * l);
            let mut tokens = Vec::with_capacity(chunk.len());
            for (i, &id) in chunk.iter().enumerate() {
                row[id as usize] = first + i as u32;
                ancestors.extend(0..p as u32);
                let start = ancestors.len();
                let mut at = id;
                while at != u32::MAX {
                    ancestors.push(row[at as usize]);
                    at = trie.parent[at as usize];
                }
                ancestors[start..].reverse();
                tokens.push(trie.token[id as usize]);
            }
            let tokens = Tensor::from_vec(tokens, chunk.len(), &lm.device)?;
            let xs = model.token_inputs(&tokens, depth)?;
            let logits = model
                .cached_step(&xs, &ancestors, l, &mut cache)?
                .to_vec2::<f32>()?;
            for (&id, logits) in chunk.iter().zip(logits) {
                path.clear();
                let mut at = id;
                while at != u32::MAX {
                    path.push(trie.token[at as usize]);
                    at = trie.parent[at as usize];
                }
                path.reverse();
                vocab.allowed_after(&path, &mut allowed);
                let masked: Vec<f32> = logits
                    .iter()
                    .zip(&allowed)
                    .map(|(&z, &ok)| if ok { z } else { z + MASKED })
                    .collect();
                let max = masked.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f64 = masked.iter().map(|&z| f64::from(z - max).exp()).sum();
                let log_sum = max as f64 + sum.ln();
                let out = &mut log_softmax[id as usize * v..(id as usize + 1) * v];
                for (o, &z) in out.iter_mut().zip(&masked) {
                    *o = (f64::from(z) - log_sum) as f32;
                }
            }
        }
    }

    // Path sums; parents come before their children.
    let mut total = vec![0f64; trie.len()];
    for id in 1..trie.len() {
        let parent = trie.parent[id] as usize;
        total[id] = total[parent] + f64::from(log_softmax[parent * v + trie.token[id] as usize]);
    }
    let scores = trie
        .ends
        .iter()
        .map(|&e| total[e as usize] + f64::from(log_softmax[e as usize * v + EOS as usize]))
        .collect();
    Ok((scores, trie.stats()))
}

/// Scores a stream of programs of task `task` like [`crate::neural::score::score_stream`],
/// calling `visit(index, item, log P)` in stream order, with one trie per `chunk` programs.
/// Returns the number of programs and the summed trie sizes.
pub fn score_stream<T>(
    lm: &NeuralLm,
    tasks: &TaskTable,
    task: usize,
    programs: impl Iterator<Item = (Program, T)>,
    chunk: usize,
    batch: usize,
    visit: &mut dyn FnMut(usize, T, f64),
) -> Result<(usize, TrieStats), NeuralError> {
    let vocab = lm.config().vocab;
    let chunk = chunk.max(1);
    let mut count = 0;
    let mut stats = TrieStats::default();
    let mut sequences = Vec::with_capacity(chunk);
    let mut items = Vec::with_capacity(chunk);
    let mut flush = |sequences: &mut Vec<Vec<u32>>,
                     items: &mut Vec<T>,
                     count: &mut usize|
     -> Result<(), NeuralError> {
        let (scores, s) = score_sequences(lm, tasks, task, sequences, batch)?;
        stats.add(&s);
        for (item, score) in items.drain(..).zip(scores) {
            visit(*count, item, score);
            *count += 1;
        }
        sequences.clear();
        Ok(())
    };
    for (program, item) in programs {
        sequences.push(vocab.encode(&program)?);
        items.push(item);
        if sequences.len() == chunk {
            flush(&mut sequences, &mut items, &mut count)?;
        }
    }
    if !sequences.is_empty() {
        flush(&mut sequences, &mut items, &mut count)?;
    }
    Ok((count, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neural::score;
    use crate::neural::tokens::Vocab;
    use crate::neural::transformer::TransformerConfig;
    use candle_core::Device;
    use dsl::Task;

    fn config(vocab: Vocab, width: usize, layers: usize, heads: usize) -> TransformerConfig {
        TransformerConfig {
            vocab,
            width,
            layers,
            heads,
            mlp_ratio: 2,
            prefix: 2,
            dropout: 0.0,
        }
    }

    /// The bundled task with the fewest candidate traces, and its index.
    fn smallest_task() -> (usize, &'static Task) {
        let tasks = &dsl::tasks::correa2025().tasks;
        let index = (0..tasks.len())
            .min_by_key(|&i| {
                crate::enumerate::candidate_traces(&tasks[i].task).map_or(usize::MAX, |t| t.len())
            })
            .unwrap();
        (index, &tasks[index].task)
    }

    fn table() -> TaskTable {
        let tasks: Vec<&Task> = dsl::tasks::correa2025()
            .tasks
            .iter()
            .map(|t| &t.task)
            .collect();
        TaskTable::new(&tasks)
    }

    #[test]
    fn trie_scores_equal_naive_scores() {
        let vocab = Vocab::new(4, 64).unwrap();
        let lm = NeuralLm::new(config(vocab, 32, 2, 4), &Device::Cpu, 7).unwrap();
        let tasks = table();
        let (task, t) = smallest_task();
        let programs: Vec<Program> = crate::enumerate::candidates(t)
            .unwrap()
            .take(1500)
            .map(|(p, _)| p)
            .collect();
        let examples: Vec<Example> = programs
            .iter()
            .map(|p| Example::new(&vocab, task, p).unwrap())
            .collect();
        let naive = score::log_probs(&lm, &tasks, &examples, 64).unwrap();
        let sequences: Vec<Vec<u32>> = examples.iter().map(|e| e.tokens.clone()).collect();
        let (trie, stats) = score_sequences(&lm, &tasks, task, &sequences, 97).unwrap();
        assert_eq!(trie.len(), naive.len());
        for (i, (a, b)) in trie.iter().zip(&naive).enumerate() {
            assert!((a - b).abs() < 1e-4, "program {i}: trie {a} naive {b}");
        }
        assert!(stats.evaluated < stats.naive_positions);
        // The stream version, in small chunks, agrees and keeps the order.
        let mut streamed = Vec::new();
        let (count, _) = score_stream(
            &lm,
            &tasks,
            task,
            programs.into_iter().map(|p| (p, ())),
            400,
            50,
            &mut |index, (), score| streamed.push((index, score)),
        )
        .unwrap();
        assert_eq!(count, naive.len());
        for (i, (index, score)) in streamed.into_iter().enumerate() {
            assert_eq!(index, i);
            assert!((score - naive[i]).abs() < 1e-4);
        }
    }

    #[test]
    fn bad_sequences_are_refused() {
        let vocab = Vocab::new(1, 4).unwrap();
        let lm = NeuralLm::new(config(vocab, 8, 1, 2), &Device::Cpu, 1).unwrap();
        let tasks = table();
        for bad in [vec![BOS], vec![BOS, 4], vec![4, EOS], vec![BOS, EOS, EOS]] {
            assert!(score_sequences(&lm, &tasks, 0, &[bad], 8).is_err());
        }
        let (empty, _) = score_sequences(&lm, &tasks, 0, &[], 8).unwrap();
        assert!(empty.is_empty());
    }

    /// Throughput of the trie and the naive scorer on one bundled task (release build):
    /// `cargo test -p analysis --features neural --release trie -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn throughput() {
        let vocab = Vocab::new(4, 64).unwrap();
        let lm = NeuralLm::new(TransformerConfig::small(vocab), &Device::Cpu, 7).unwrap();
        let tasks = table();
        let (task, t) = match std::env::var("TRIE_TASK")
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        {
            Some(index) => (index, &dsl::tasks::correa2025().tasks[index].task),
            None => smallest_task(),
        };
        let limit: usize = std::env::var("TRIE_LIMIT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(200_000);
        let batch: usize = std::env::var("TRIE_BATCH")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(512);
        let naive_limit = 20_000.min(limit);
        let programs: Vec<Program> = crate::enumerate::candidates(t)
            .unwrap()
            .take(limit)
            .map(|(p, _)| p)
            .collect();
        let n = programs.len();
        let one = crate::neural::with_threads(1, || {
            let start = std::time::Instant::now();
            let (count, stats) = score_stream(
                &lm,
                &tasks,
                task,
                programs.iter().cloned().map(|p| (p, ())),
                100_000,
                batch,
                &mut |_, (), _| {},
            )
            .unwrap();
            let trie_rate = count as f64 / start.elapsed().as_secs_f64();
            let examples: Vec<Example> = programs[..naive_limit]
                .iter()
                .map(|p| Example::new(&vocab, task, p).unwrap())
                .collect();
            let start = std::time::Instant::now();
            score::log_probs(&lm, &tasks, &examples, 256).unwrap();
            let naive_rate = naive_limit as f64 / start.elapsed().as_secs_f64();
            (stats, trie_rate, naive_rate)
        })
        .unwrap();
        let (stats, trie_rate, naive_rate) = one;
        const ALL: f64 = 14_758_615.0;
        println!(
            "task {task}: {n} programs, {} trie nodes, {} evaluated, {} naive positions",
            stats.nodes, stats.evaluated, stats.naive_positions
        );
        println!(
            "trie: {trie_rate:.0} programs/s ({:.1} min for {ALL}); naive ({naive_limit}): {naive_rate:.0} programs/s ({:.1} min)",
            ALL / trie_rate / 60.0,
            ALL / naive_rate / 60.0
        );
    }
}
