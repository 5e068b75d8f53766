//! Batched scoring: log P(program | task) for lists of programs and for streams of candidates,
//! and [`score_choice_sets`], which scores every program of every task's choice set.
//!
//! Programs are scored in batches of similar length (a stream is buffered a few batches at a
//! time and sorted by length within the buffer) so that little work is spent on padding. The
//! task's map is encoded once per batch; a batch holds programs of one task.

use candle_core::Device;
use dsl::{Program, Task};

use crate::enumerate::candidates;
use crate::neural::NeuralError;
use crate::neural::choice::ProgramChoiceSets;
use crate::neural::fast::FastScorer;
use crate::neural::train::{Example, NeuralLm, TaskTable};

/// Batches a stream holds and sorts by length before scoring.
const BUFFER_BATCHES: usize = 8;

/// log P(example | task) of every example, in order.
pub fn log_probs(
    lm: &NeuralLm,
    tasks: &TaskTable,
    examples: &[Example],
    batch_size: usize,
) -> Result<Vec<f64>, NeuralError> {
    let batch_size = batch_size.max(1);
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.sort_by_key(|&i| (examples[i].task, examples[i].tokens.len()));
    let mut out = vec![0.0; examples.len()];
    for chunk in order.chunks(batch_size) {
        let batch: Vec<&Example> = chunk.iter().map(|&i| &examples[i]).collect();
        let scores = score_batch(lm, tasks, &batch)?;
        for (&i, score) in chunk.iter().zip(scores) {
            out[i] = score;
        }
    }
    Ok(out)
}

fn score_batch(
    lm: &NeuralLm,
    tasks: &TaskTable,
    batch: &[&Example],
) -> Result<Vec<f64>, NeuralError> {
    let batch = lm.batch(tasks, batch)?;
    let (_, total) = lm.model.log_probs(&batch, None)?;
    Ok(total.to_vec1::<f32>()?.into_iter().map(f64::from).collect())
}

/// Scores a stream of programs of task `task`, calling `visit(index, item, log P)` for each, in
/// stream order (`index` counts from 0). Only `BUFFER_BATCHES` batches are held at a time.
pub fn score_stream<T>(
    lm: &NeuralLm,
    tasks: &TaskTable,
    task: usize,
    programs: impl Iterator<Item = (Program, T)>,
    batch_size: usize,
    visit: &mut dyn FnMut(usize, T, f64),
) -> Result<usize, NeuralError> {
    let vocab = lm.config().vocab;
    let capacity = batch_size.max(1) * BUFFER_BATCHES;
    let mut buffer: Vec<(usize, T, Example)> = Vec::with_capacity(capacity);
    let mut count = 0;
    let mut flush = |buffer: &mut Vec<(usize, T, Example)>| -> Result<(), NeuralError> {
        buffer.sort_by_key(|(_, _, e)| e.tokens.len());
        let examples: Vec<Example> = buffer.iter().map(|(_, _, e)| e.clone()).collect();
        let scores = log_probs(lm, tasks, &examples, batch_size)?;
        let mut items: Vec<(usize, T, f64)> = buffer
            .drain(..)
            .zip(scores)
            .map(|((index, item, _), score)| (index, item, score))
            .collect();
        items.sort_by_key(|&(index, _, _)| index);
        for (index, item, score) in items {
            visit(index, item, score);
        }
        Ok(())
    };
    for (program, item) in programs {
        buffer.push((count, item, Example::new(&vocab, task, &program)?));
        count += 1;
        if buffer.len() == capacity {
            flush(&mut buffer)?;
        }
    }
    if !buffer.is_empty() {
        flush(&mut buffer)?;
    }
    Ok(count)
}

/// Programs per prefix trie when scoring a task's candidate stream.
const TRIE_CHUNK: usize = 16_384;

/// Scores every program of every task's U_t with `lm`: log P(program | task). On the CPU the
/// plain-Rust prefix-trie scorer ([`crate::neural::fast`]) scores the stream and the listed
/// programs on every core; elsewhere (a GPU) candle's prefix-trie scorer
/// ([`crate::neural::trie`]) scores the stream and the batched scorer the listed programs.
pub fn score_choice_sets(
    lm: &NeuralLm,
    table: &TaskTable,
    tasks: &[&Task],
    sets: &ProgramChoiceSets,
    batch_size: usize,
    progress: &dyn Fn(usize),
) -> Result<Vec<Vec<f64>>, NeuralError> {
    let fast = match lm.device {
        Device::Cpu => Some(FastScorer::new(lm, table)?),
        _ => None,
    };
    // The fast scorer runs on a pool of every core, whatever pool the network was trained in.
    let pool = rayon::ThreadPoolBuilder::new()
        .build()
        .map_err(|e| NeuralError::Invalid(format!("thread pool: {e}")))?;
    let vocab = lm.config().vocab;
    let mut done = 0usize;
    let mut out = Vec::with_capacity(sets.tasks.len());
    for (index, programs) in sets.tasks.iter().enumerate() {
        let mut scores = Vec::with_capacity(programs.len());
        if programs.observations.is_empty() {
            out.push(scores);
            continue;
        }
        let mut visit = |score: f64| {
            scores.push(score);
            done += 1;
            if done.is_multiple_of(10_000) {
                progress(done);
            }
        };
        match &fast {
            Some(fast) => {
                // Progress is reported per task here: the scorer's threads cannot call it.
                let (streamed, listed) = pool.install(|| -> Result<_, NeuralError> {
                    let mut streamed = Vec::with_capacity(programs.enumerated);
                    if programs.streamed {
                        fast.score_candidates(index, tasks[index], |_, score| {
                            streamed.push(score)
                        })?;
                    }
                    Ok((streamed, fast.score_programs(index, &programs.listed)?))
                })?;
                streamed.into_iter().chain(listed).for_each(&mut visit);
            }
            None => {
                if programs.streamed {
                    let stream = candidates(tasks[index])?.map(|(program, _)| (program, ()));
                    crate::neural::trie::score_stream(
                        lm,
                        table,
                        index,
                        stream,
                        TRIE_CHUNK,
                        batch_size,
                        &mut |_, (), score| visit(score),
                    )?;
                }
                let listed: Vec<Example> = programs
                    .listed
                    .iter()
                    .map(|p| Example::new(&vocab, index, p))
                    .collect::<Result<_, _>>()?;
                log_probs(lm, table, &listed, batch_size)?
                    .into_iter()
                    .for_each(&mut visit);
            }
        }
        progress(done);
        if scores.len() != programs.len() {
            return Err(NeuralError::Invalid(format!(
                "task {}: scored {} programs of {}",
                programs.label,
                scores.len(),
                programs.len()
            )));
        }
        out.push(scores);
    }
    Ok(out)
}
