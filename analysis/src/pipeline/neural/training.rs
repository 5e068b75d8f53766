//! Training the transformer on every participant's programs, and measuring how fast it scores
//! the candidate stream.

use std::time::Instant;

use serde::Serialize;

use dsl::Task;
use dsl::tasks::NamedTask;

use crate::choice::ObservedProgram;
use crate::enumerate::candidates;
use crate::neural::cv::{NeuralCvProgress, TrainingProgram};
use crate::neural::score::score_stream;
use crate::neural::train::{Example, NeuralLm, TaskTable, TrainReport, train};
use crate::neural::{Device, NeuralError, with_threads};
use crate::pipeline::Progress;
use crate::pipeline::neural::NeuralConfig;

/// How fast one task's candidates were scored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TaskThroughput {
    /// Task index.
    pub task: usize,
    pub candidates: usize,
    pub seconds: f64,
}

/// Trains a fresh transformer on every observation in `observed`, on `config.threads` threads.
/// Training is reported as fold 0 of [`Progress::Neural`].
pub fn train_network(
    tasks: &[NamedTask],
    observed: &[ObservedProgram],
    config: &NeuralConfig,
    device: &Device,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<(NeuralLm, TrainReport), NeuralError> {
    let model = config.model_config()?;
    let programs: Vec<TrainingProgram> = observed
        .iter()
        .map(|o| TrainingProgram {
            participant: o.participant,
            task: o.task,
            program: o.text.clone(),
        })
        .collect();
    let examples: Vec<Example> = observed
        .iter()
        .map(|o| Example::new(&model.vocab, o.task, &o.program))
        .collect::<Result<_, _>>()?;
    let refs: Vec<&Task> = tasks.iter().map(|t| &t.task).collect();
    let table = TaskTable::new(&refs);
    with_threads(config.threads, || {
        let mut lm = NeuralLm::new(model, device, config.seed)?;
        progress(Progress::Neural(NeuralCvProgress::Training {
            fold: 0,
            programs: &programs,
        }));
        let report = train(
            &mut lm,
            &table,
            &examples,
            &config.train_config(),
            &|event| progress(Progress::Neural(NeuralCvProgress::Train(event))),
        )?;
        progress(Progress::StageDone);
        Ok((lm, report))
    })?
}

/// Streams up to `limit` candidates of every task (0 = all of them) through `lm` in batches of
/// `config.score_batch` on `config.threads` threads, and times each task.
pub fn scoring_throughput(
    lm: &NeuralLm,
    tasks: &[NamedTask],
    limit: u64,
    config: &NeuralConfig,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<Vec<TaskThroughput>, NeuralError> {
    let refs: Vec<&Task> = tasks.iter().map(|t| &t.task).collect();
    let table = TaskTable::new(&refs);
    let take = if limit == 0 {
        usize::MAX
    } else {
        usize::try_from(limit).unwrap_or(usize::MAX)
    };
    with_threads(config.threads, || {
        let mut out = Vec::with_capacity(refs.len());
        for (index, task) in refs.iter().enumerate() {
            let began = Instant::now();
            let stream = candidates(task)?.take(take).map(|(p, _)| (p, ()));
            let mut done = 0;
            progress(Progress::ScoringCandidates { task: index, done });
            let n = score_stream(
                lm,
                &table,
                index,
                stream,
                config.score_batch,
                &mut |_, (), _| {
                    done += 1;
                    progress(Progress::ScoringCandidates { task: index, done });
                },
            )?;
            progress(Progress::StageDone);
            out.push(TaskThroughput {
                task: index,
                candidates: n,
                seconds: began.elapsed().as_secs_f64(),
            });
        }
        Ok(out)
    })?
}
