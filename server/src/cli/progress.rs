//! Progress bars on stderr for the analysis subcommands (`fit`, `train-neural`): one bar per
//! stage of a pipeline's [`Progress`] events.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

use analysis::compare;
use analysis::pipeline::Progress;

/// Progress bars on stderr for the pipelines' [`Progress`] events: one bar per stage, replaced
/// when a new stage starts.
#[derive(Default)]
pub struct Bars {
    /// The current stage's name and bar.
    current: Mutex<Option<(String, ProgressBar)>>,
}

const COUNT_BAR: &str = "{msg:28} [{bar:30}] {pos}/{len} {elapsed}";
const STREAM_BAR: &str = "{msg} {pos} candidates ({elapsed}, {per_sec})";
#[cfg(feature = "neural")]
const TRAIN_BAR: &str = "{msg} [{bar:30}] {pos}/{len} steps ({elapsed}, eta {eta})";
#[cfg(feature = "neural")]
const SCORE_BAR: &str = "{msg} [{bar:30}] {pos}/{len} programs ({elapsed})";

impl Bars {
    pub fn show(&self, event: Progress<'_>) {
        let Ok(mut current) = self.current.lock() else {
            return;
        };
        match event {
            Progress::Enumerating { task, done, total } => {
                let bar = stage(&mut current, format!("enumerating task {task}"), COUNT_BAR);
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }
            Progress::Streaming { task, done } => {
                stage(
                    &mut current,
                    format!("choice set of task {task}"),
                    STREAM_BAR,
                )
                .set_position(done);
            }
            Progress::Compare(compare::Progress::FitStarted { model, restarts }) => {
                stage(&mut current, format!("fitting {model}"), COUNT_BAR)
                    .set_length(restarts as u64);
            }
            Progress::Compare(compare::Progress::RestartDone) => {
                if let Some((_, bar)) = current.as_ref() {
                    bar.inc(1);
                }
            }
            Progress::Compare(compare::Progress::ProfileStarted { model }) => {
                if let Some((_, bar)) = current.as_ref() {
                    bar.set_message(format!("profiling {model}"));
                }
            }
            Progress::CrossValidationStarted { folds, fits } => {
                stage(
                    &mut current,
                    format!("{folds}-fold cross-validation"),
                    COUNT_BAR,
                )
                .set_length(fits as u64);
            }
            Progress::CrossValidated { model, .. } => {
                if let Some((_, bar)) = current.as_ref() {
                    bar.set_message(format!("cross-validating {model}"));
                    bar.inc(1);
                }
            }
            #[cfg(feature = "neural")]
            Progress::Neural(event) => neural_event(&mut current, event),
            #[cfg(feature = "neural")]
            Progress::ScoringCandidates { task, done } => {
                stage(&mut current, format!("scoring task {task}"), STREAM_BAR)
                    .set_position(done as u64);
            }
            Progress::Compare(compare::Progress::ModelDone { .. }) | Progress::StageDone => {
                if let Some((_, bar)) = current.take() {
                    bar.finish_and_clear();
                }
            }
        }
    }
}

#[cfg(feature = "neural")]
fn neural_event(
    current: &mut Option<(String, ProgressBar)>,
    event: analysis::neural::cv::NeuralCvProgress<'_>,
) {
    use analysis::neural::cv::NeuralCvProgress;
    use analysis::neural::train::TrainProgress;
    match event {
        NeuralCvProgress::Training { fold, .. } => {
            stage(current, format!("training (fold {fold})"), TRAIN_BAR);
        }
        NeuralCvProgress::Train(TrainProgress::Started { steps }) => {
            if let Some((_, bar)) = current.as_ref() {
                bar.set_length(steps as u64);
                bar.set_position(0);
            }
        }
        NeuralCvProgress::Train(TrainProgress::Step { loss }) => {
            if let Some((name, bar)) = current.as_ref() {
                bar.inc(1);
                if bar.position().is_multiple_of(20) {
                    bar.set_message(format!("{name} loss {loss:.3}"));
                }
            }
        }
        NeuralCvProgress::Train(TrainProgress::Epoch { .. }) => {}
        NeuralCvProgress::Scoring { fold, programs } => {
            stage(current, format!("scoring (fold {fold})"), SCORE_BAR).set_length(programs as u64);
        }
        NeuralCvProgress::SetPrograms { .. } => {}
        NeuralCvProgress::Loaded { fold } => {
            stage(current, format!("split {fold} loaded (kept)"), TRAIN_BAR).finish();
        }
        NeuralCvProgress::Scored { done } => {
            if let Some((_, bar)) = current.as_ref() {
                bar.set_position(done as u64);
            }
        }
    }
}

/// The bar of stage `name`, started (and the previous stage's bar cleared) if it is new.
fn stage<'a>(
    current: &'a mut Option<(String, ProgressBar)>,
    name: String,
    template: &str,
) -> &'a ProgressBar {
    if current
        .as_ref()
        .is_some_and(|(running, _)| *running != name)
        && let Some((_, bar)) = current.take()
    {
        bar.finish_and_clear();
    }
    let (_, bar) = current.get_or_insert_with(|| {
        let bar = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(name.clone());
        (name, bar)
    });
    bar
}
