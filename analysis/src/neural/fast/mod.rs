//! A fast CPU scorer for the trained transformer: plain f32 inference over prefix tries, in
//! parallel over chunks of a task's candidate stream.
//!
//! candle's per-op overhead dominates at width 64 (the candle trie scorer,
//! [`crate::neural::trie`], runs about 7,000 programs/s), so this module copies the weights out
//! once (`weights`) and runs the decoder itself (`forward`): the task's map is encoded once
//! per task (with candle), the programs' token sequences are sorted and cut into
//! [`PrefixTrie`]s of a few thousand neighbours, and each trie's nodes run in blocks of 128 (in
//! depth-first order, so that a node's ancestors are still in the cache) through real matrix
//! products (faer, whose kernels use AVX-512 where the CPU has it), each node attending to the
//! task prefix and its ancestors through flat key/value caches. The layer-0 keys and values
//! come from a table by depth and token; attention (with its softmax) and the layer norms are
//! written to vectorise and are dispatched to AVX2/FMA at run time (`pulp`). The grammar mask is applied as in
//! the other scorers, and the log-probabilities equal the naive scorer's
//! ([`crate::neural::score`]) within 1e-4 (tests/neural.rs).
//!
//! Streams ([`FastScorer::score_stream`], [`FastScorer::score_candidates`]) are tokenised on a
//! producer thread in windows of a million programs (compact bytes); each window is sorted, cut
//! into tries of a few thousand neighbouring sequences, scored in parallel on the current rayon
//! pool and visited in stream order, so memory stays bounded (some 50 bytes per program of the
//! window and a few tens of megabytes of keys and values per thread).
//!
//! Throughput (`FAST_ONLY=1 FAST_TASK=all cargo bench -p analysis --features neural --bench
//! neural`, release, the small model, on the 2-core AMD EPYC development VM with AVX-512, nothing
//! else running): all 14,758,615 candidates of the ten tasks (210 million trie nodes, 14.26 per
//! program), one fold's scoring, in 4.29 minutes on two threads (57,400 programs/s, 504 CPU
//! seconds); with `matrixmultiply`'s AVX2 kernels in place of faer's the same run took 4.83
//! minutes. Tasks run at 53,000 (task g, the longest programs) to 75,000 programs/s. On one
//! thread, task 3's first 300,000 candidates (matrixmultiply) split as matrix products 50%,
//! attention 33%, layer norms and ReLU 6%, the head's softmax 5%, inputs 3% and building tries
//! 2%; the candidate stream with tokenising (about 580,000 programs/s) runs beside them on the
//! producer thread. A busy machine stretches all of this: in the held-out evaluation a split's
//! scoring took 315 s while a build ran beside it, and 600 to 1,200 s beside a CI run.

pub(crate) mod attention;
pub(crate) mod forward;
pub(crate) mod profile;
pub(crate) mod weights;

use std::sync::mpsc::sync_channel;

use dsl::{Program, Task};
use rayon::prelude::*;

use crate::enumerate::candidates;
use crate::neural::NeuralError;
use crate::neural::tokens::Vocab;
use crate::neural::train::{NeuralLm, TaskTable};
use crate::neural::trie::{PrefixTrie, TrieStats};

use forward::{Buffers, Engine, TaskPrefix};
pub use profile::Profile;
use profile::{Part, Timer};
use weights::Weights;

/// Sequences per trie. The sequences are sorted before they are cut into tries, so a trie holds
/// neighbours in lexicographic order and the tries of a window share only the paths to their
/// boundaries: the nodes run are about those of one trie of the whole window, while a trie's
/// keys and values (about half a kilobyte per node and later layer, some 14 nodes per program)
/// stay small.
pub const DEFAULT_CHUNK: usize = 4_096;

/// Programs per window of a stream: a window is tokenised on a producer thread, sorted, scored
/// in parallel and visited in stream order. Larger windows share more prefixes (on task 3,
/// 14.9 nodes per program in windows of 16,384, 14.2 in 262,144, 14.0 in 1,048,576) and hold
/// about 50 bytes per program.
pub const DEFAULT_WINDOW: usize = 1 << 20;

/// Trie nodes per block of matrix products.
pub const DEFAULT_ROWS: usize = 128;

/// The trained transformer's inference on the CPU without candle (see the module docs).
#[derive(Debug, Clone)]
pub struct FastScorer {
    engine: Engine,
    prefixes: Vec<TaskPrefix>,
    chunk: usize,
    window: usize,
}

/// A window of a stream: the programs' token sequences, one after another, as bytes.
struct Window {
    tokens: Vec<u8>,
    /// Start of each sequence, and the end last.
    starts: Vec<usize>,
}

impl Window {
    fn with_capacity(programs: usize) -> Window {
        let mut starts = Vec::with_capacity(programs + 1);
        starts.push(0);
        Window {
            tokens: Vec::with_capacity(programs * 32),
            starts,
        }
    }

    fn len(&self) -> usize {
        self.starts.len() - 1
    }

    fn push(&mut self, sequence: &[u32]) {
        // The vocabulary has at most 4 + 5 + 9 tokens.
        self.tokens.extend(sequence.iter().map(|&t| t as u8));
        self.starts.push(self.tokens.len());
    }

    fn get(&self, i: usize) -> &[u8] {
        &self.tokens[self.starts[i]..self.starts[i + 1]]
    }
}

impl FastScorer {
    /// Copies `lm`'s weights and runs the prefix of every task of `tasks`.
    pub fn new(lm: &NeuralLm, tasks: &TaskTable) -> Result<FastScorer, NeuralError> {
        let weights = Weights::from_lm(lm)?;
        forward::check(&weights)?;
        let prefixes = (0..tasks.len())
            .map(|task| TaskPrefix::new(lm, tasks, task))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FastScorer {
            engine: Engine::new(weights, DEFAULT_ROWS),
            prefixes,
            chunk: DEFAULT_CHUNK,
            window: DEFAULT_WINDOW,
        })
    }

    /// The same scorer with `chunk` sequences per trie (at least 1).
    pub fn with_chunk(mut self, chunk: usize) -> FastScorer {
        self.chunk = chunk.max(1);
        self
    }

    /// The same scorer with `window` programs per window of a stream (at least 1).
    pub fn with_window(mut self, window: usize) -> FastScorer {
        self.window = window.max(1);
        self
    }

    /// The same scorer with `rows` trie nodes per block of matrix products (at least 1).
    pub fn with_rows(mut self, rows: usize) -> FastScorer {
        self.engine.rows = rows.max(1);
        self
    }

    pub fn vocab(&self) -> Vocab {
        self.engine.w.vocab
    }

    /// Number of tasks the scorer knows.
    pub fn tasks(&self) -> usize {
        self.prefixes.len()
    }

    fn prefix(&self, task: usize) -> Result<&TaskPrefix, NeuralError> {
        self.prefixes.get(task).ok_or_else(|| {
            NeuralError::Invalid(format!(
                "task {task} is not in the scorer's table of {} tasks",
                self.prefixes.len()
            ))
        })
    }

    /// log P(sequence | task) of each sequence as one trie (one thread, in the given order),
    /// with the trie's sizes.
    pub fn score_trie<T, S>(
        &self,
        task: usize,
        sequences: &[S],
    ) -> Result<(Vec<f64>, TrieStats), NeuralError>
    where
        T: Copy + Ord + Into<u32> + std::fmt::Debug,
        S: AsRef<[T]>,
    {
        self.score_trie_with(task, sequences, &mut Buffers::default())
    }

    fn score_trie_with<T, S>(
        &self,
        task: usize,
        sequences: &[S],
        buffers: &mut Buffers,
    ) -> Result<(Vec<f64>, TrieStats), NeuralError>
    where
        T: Copy + Ord + Into<u32> + std::fmt::Debug,
        S: AsRef<[T]>,
    {
        let prefix = self.prefix(task)?;
        let trie = PrefixTrie::build(&self.vocab(), sequences)?;
        let scores = self
            .engine
            .score_trie(prefix, &trie, buffers, &mut Timer::off());
        Ok((scores, trie.stats()))
    }

    /// Scores the `n` sequences `sequence(i)`: sorts them, cuts them into tries of
    /// [`FastScorer::with_chunk`] sequences, scores the tries in parallel on the current rayon
    /// pool and returns the scores in the original order.
    fn score_sorted<'a, T>(
        &self,
        task: usize,
        n: usize,
        sequence: impl Fn(usize) -> &'a [T] + Sync,
    ) -> Result<(Vec<f64>, TrieStats), NeuralError>
    where
        T: Copy + Ord + Into<u32> + std::fmt::Debug + Sync + 'a,
    {
        self.prefix(task)?;
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.par_sort_unstable_by(|&a, &b| sequence(a as usize).cmp(sequence(b as usize)));
        let scored = order
            .par_chunks(self.chunk)
            .with_max_len(1)
            .map_init(Buffers::default, |buffers, chunk| {
                let sequences: Vec<&[T]> = chunk.iter().map(|&i| sequence(i as usize)).collect();
                self.score_trie_with(task, &sequences, buffers)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut scores = vec![0f64; n];
        let mut stats = TrieStats::default();
        for (chunk, (chunk_scores, trie)) in order.chunks(self.chunk).zip(scored) {
            stats.add(&trie);
            for (&i, score) in chunk.iter().zip(chunk_scores) {
                scores[i as usize] = score;
            }
        }
        Ok((scores, stats))
    }

    /// log P(sequence | task) of every sequence (each `BOS ... EOS`), in order; tries of sorted
    /// sequences are scored in parallel on the current rayon pool.
    pub fn score_sequences(
        &self,
        task: usize,
        sequences: &[Vec<u32>],
    ) -> Result<Vec<f64>, NeuralError> {
        let (scores, _) = self.score_sorted(task, sequences.len(), |i| sequences[i].as_slice())?;
        Ok(scores)
    }

    /// log P(program | task) of every program, in order.
    pub fn score_programs(
        &self,
        task: usize,
        programs: &[Program],
    ) -> Result<Vec<f64>, NeuralError> {
        let vocab = self.vocab();
        let sequences = programs
            .iter()
            .map(|p| vocab.encode(p))
            .collect::<Result<Vec<_>, _>>()?;
        self.score_sequences(task, &sequences)
    }

    /// [`FastScorer::score_sequences`] on one thread, timing the parts of the work (sorting and
    /// building the tries counts as trie building) into `profile`.
    pub fn profile(
        &self,
        task: usize,
        sequences: &[Vec<u32>],
        profile: &mut Profile,
    ) -> Result<Vec<f64>, NeuralError> {
        let prefix = self.prefix(task)?;
        let mut timer = Timer::new(Some(&mut *profile));
        let mut order: Vec<usize> = (0..sequences.len()).collect();
        order.sort_unstable_by(|&a, &b| sequences[a].cmp(&sequences[b]));
        let mut scores = vec![0f64; sequences.len()];
        let mut buffers = Buffers::default();
        for chunk in order.chunks(self.chunk) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| sequences[i].as_slice()).collect();
            let trie = PrefixTrie::build(&self.vocab(), &batch)?;
            timer.lap(Part::Trie);
            let chunk_scores = self
                .engine
                .score_trie(prefix, &trie, &mut buffers, &mut timer);
            for (&i, score) in chunk.iter().zip(chunk_scores) {
                scores[i] = score;
            }
        }
        Ok(scores)
    }

    /// Scores a stream of programs of task `task`, calling `visit(index, log P)` in stream order
    /// (`index` counts from 0). A producer thread tokenises windows of programs (the first a
    /// quarter of [`FastScorer::with_window`], each next one twice as large up to it); each
    /// window is scored as in [`FastScorer::score_sequences`] on the current rayon pool while the
    /// next is read. Returns the summed trie sizes.
    pub fn score_stream(
        &self,
        task: usize,
        programs: impl Iterator<Item = Program> + Send,
        mut visit: impl FnMut(u64, f64),
    ) -> Result<TrieStats, NeuralError> {
        self.prefix(task)?;
        let vocab = self.vocab();
        let window = self.window;
        let mut stats = TrieStats::default();
        let mut index = 0u64;
        std::thread::scope(|scope| {
            let (sender, receiver) = sync_channel::<Result<Window, NeuralError>>(1);
            scope.spawn(move || {
                // The first windows are small, so that the threads start soon; later ones share
                // more prefixes.
                let mut size = (window / 4).max(1);
                let mut current = Window::with_capacity(size);
                for program in programs {
                    match vocab.encode(&program) {
                        Ok(sequence) => current.push(&sequence),
                        Err(error) => {
                            let _ = sender.send(Err(error));
                            return;
                        }
                    }
                    if current.len() == size {
                        size = (size * 2).min(window);
                        let full = std::mem::replace(&mut current, Window::with_capacity(size));
                        if sender.send(Ok(full)).is_err() {
                            return;
                        }
                    }
                }
                if current.len() > 0 {
                    let _ = sender.send(Ok(current));
                }
            });
            for received in receiver {
                let current = received?;
                let (scores, trie) = self.score_sorted(task, current.len(), |i| current.get(i))?;
                stats.add(&trie);
                for score in scores {
                    visit(index, score);
                    index += 1;
                }
            }
            Ok(stats)
        })
    }

    /// Scores every candidate program of `task` (task `task_index` of the scorer's table), as
    /// streamed by [`crate::enumerate::candidates`], calling `visit(stream index, log P)` in
    /// stream order.
    pub fn score_candidates(
        &self,
        task_index: usize,
        task: &Task,
        visit: impl FnMut(u64, f64),
    ) -> Result<TrieStats, NeuralError> {
        let stream = candidates(task)?.map(|(program, _)| program);
        self.score_stream(task_index, stream, visit)
    }
}
