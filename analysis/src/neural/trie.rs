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

use std::collections::HashMap;

use candle_core::Tensor;
use dsl::Program;

use crate::neural::NeuralError;
use crate::neural::tokens::{BOS, EOS, MASKED};
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

struct Node {
    parent: u32,
    token: u32,
    depth: u32,
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
    if sequences.is_empty() {
        return Ok((Vec::new(), TrieStats::default()));
    }
    // The trie: node 0 is BOS; children are created after their parents.
    let mut nodes = vec![Node {
        parent: u32::MAX,
        token: BOS,
        depth: 0,
    }];
    let mut children: HashMap<(u32, u32), u32> = HashMap::new();
    let mut ends = Vec::with_capacity(sequences.len());
    let mut naive_positions = 0;
    for sequence in sequences {
        let valid = sequence.len() >= 2
            && sequence[0] == BOS
            && sequence.last() == Some(&EOS)
            && sequence.len() - 1 <= vocab.max_len()
            && !sequence[1..sequence.len() - 1]
                .iter()
                .any(|&t| t == EOS || t == BOS || t as usize >= v);
        if !valid {
            return Err(NeuralError::Invalid(format!(
                "{sequence:?} is not a BOS ... EOS sequence of the model's vocabulary"
            )));
        }
        naive_positions += sequence.len() - 1;
        let mut current = 0u32;
        for &token in &sequence[1..] {
            let next = nodes.len() as u32;
            let depth = nodes[current as usize].depth + 1;
            current = *children.entry((current, token)).or_insert_with(|| {
                nodes.push(Node {
                    parent: current,
                    token,
                    depth,
                });
                next
            });
        }
        ends.push(current);
    }
    drop(children);

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

    // Nodes to evaluate, by depth.
    let max_depth = nodes.iter().map(|n| n.depth).max().unwrap_or(0) as usize;
    let mut by_depth: Vec<Vec<u32>> = vec![Vec::new(); max_depth + 1];
    for (id, node) in nodes.iter().enumerate() {
        if node.token != EOS {
            by_depth[node.depth as usize].push(id as u32);
        }
    }
    let mut row = vec![u32::MAX; nodes.len()];
    let mut log_softmax = vec![0f32; nodes.len() * v];
    let mut allowed = vec![false; v];
    let mut path: Vec<u32> = Vec::new();
    let mut evaluated = 0;
    for (depth, level) in by_depth.iter().enumerate() {
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
                    at = nodes[at as usize].parent;
                }
                ancestors[start..].reverse();
                tokens.push(nodes[id as usize].token);
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
                    path.push(nodes[at as usize].token);
                    at = nodes[at as usize].parent;
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
            evaluated += chunk.len();
        }
    }

    // Path sums; parents come before their children.
    let mut total = vec![0f64; nodes.len()];
    for id in 1..nodes.len() {
        let node = &nodes[id];
        let parent = node.parent as usize;
        total[id] = total[parent] + f64::from(log_softmax[parent * v + node.token as usize]);
    }
    let stats = TrieStats {
        sequences: sequences.len(),
        nodes: nodes.len(),
        evaluated,
        naive_positions,
    };
    Ok((ends.iter().map(|&e| total[e as usize]).collect(), stats))
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
        stats.sequences += s.sequences;
        stats.nodes += s.nodes;
        stats.evaluated += s.evaluated;
        stats.naive_positions += s.naive_positions;
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
