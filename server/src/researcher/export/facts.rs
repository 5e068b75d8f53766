//! What the exports derive from one stored trial: the program as submitted and canonicalised,
//! whether it solves under the analysis semantics, its length and the time taken. The task is
//! looked up in the session's between-subject condition, whose task list the trial indexes.

use crate::domain::{Phase, TrialOutcome};
use crate::experiment::Experiment;
use crate::researcher::export::Exporter;
use crate::store::{Session, Trial};

/// Whether a trial is one of the main tasks (the ones `programs-csv` and the bonus count).
pub(super) fn is_task_trial(trial: &Trial) -> bool {
    trial.phase == Phase::Tasks
}

pub(super) struct TrialFacts {
    pub(super) skipped: bool,
    pub(super) elapsed_minutes: String,
    pub(super) program: String,
    pub(super) canonical: String,
    pub(super) solved: Option<bool>,
    pub(super) instruction_count: Option<u32>,
}

impl Exporter {
    /// The experiment as `session` ran it: its between-subject condition's tasks and settings.
    pub(super) fn experiment_of(&self, session: &Session) -> &Experiment {
        self.experiment.for_arm(session.arm.as_deref())
    }

    /// What `trial` derives, on the task of `experiment` (the session's, [`Self::experiment_of`]).
    pub(super) fn trial_facts(&self, experiment: &Experiment, trial: &Trial) -> TrialFacts {
        let skipped = trial.outcome == Some(TrialOutcome::Skipped);
        let elapsed_minutes = match trial.ended_ms {
            Some(end) => ((end - trial.started_ms) as f64 / 60_000.0).to_string(),
            None => String::new(),
        };
        let program = if skipped {
            String::new()
        } else {
            trial.program.clone().unwrap_or_default()
        };
        let task = match trial.phase {
            Phase::Tasks => experiment
                .tasks
                .get(trial.task_index.max(0) as usize)
                .map(|e| &e.task),
            Phase::Practice => experiment
                .practice
                .get(trial.task_index.max(0) as usize)
                .map(|e| &e.task),
            _ => experiment
                .tutorial
                .get(trial.task_index.max(0) as usize)
                .and_then(|s| s.level.as_ref())
                .map(|e| &e.task),
        };
        let parsed = (!program.is_empty())
            .then(|| dsl::compact::parse(program.trim(), &experiment.limits).ok())
            .flatten();
        let (canonical, solved, instruction_count) = match (&parsed, task) {
            (Some(parsed), Some(task)) => {
                let solved = dsl::run(task, parsed, &dsl::RunOptions::default()).solved;
                let canonical =
                    dsl::canon::canonicalise(task, parsed, &dsl::canon::CanonOptions::default())
                        .map(|p| p.to_compact())
                        .unwrap_or_default();
                (canonical, Some(solved), Some(parsed.instruction_count()))
            }
            (Some(parsed), None) => (String::new(), None, Some(parsed.instruction_count())),
            _ => (String::new(), None, None),
        };
        TrialFacts {
            skipped,
            elapsed_minutes,
            program,
            canonical,
            solved,
            instruction_count,
        }
    }
}
