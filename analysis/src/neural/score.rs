//! Batched scoring: log P(program | task) for lists of programs and for streams of candidates.
//!
//! Programs are scored in batches of similar length (a stream is buffered a few batches at a
//! time and sorted by length within the buffer) so that little work is spent on padding. The
//! task's map is encoded once per batch; a batch holds programs of one task.

use dsl::Program;

use crate::neural::NeuralError;
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
