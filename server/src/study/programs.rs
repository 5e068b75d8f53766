//! Programs on a task step: runs (recorded, answered with the trace) and submits.

use super::error::StudyError;
use super::session::{check_version, serve, view, wrong_step};
use super::{limits, views};
use crate::api::{RunRequest, RunResponse, SubmitResponse};
use crate::clock::now;
use crate::domain::{Phase, SessionStatus, TrialOutcome};
use crate::experiment::{Experiment, Step};
use crate::store::{FinishTrial, Run, RunRecorded, Session, Store, StoreError};

fn parse_program(experiment: &Experiment, text: &str) -> Result<dsl::Program, StudyError> {
    if text.chars().count() > limits::MAX_PROGRAM_CHARS {
        return Err(StudyError::invalid(format!(
            "a program may have at most {} characters",
            limits::MAX_PROGRAM_CHARS
        )));
    }
    let program = dsl::parse_program(text, None, &experiment.limits)?;
    Ok(program.with_slots(experiment.limits.subroutines))
}

/// The task of a step, if the step is a task.
pub(super) fn task_step(
    experiment: &Experiment,
    session: &Session,
    step: i64,
) -> Result<(Phase, usize, usize), StudyError> {
    let timeline = experiment.timeline(&session.task_order);
    match usize::try_from(step).ok().and_then(|i| timeline.get(i)) {
        Some(&Step::Task { phase, index, task }) => Ok((phase, index, task)),
        Some(_) => Err(StudyError::wrong_state(
            "not_a_task",
            format!("step {step} is not a task"),
        )),
        None => Err(StudyError::NotFound(format!(
            "the session has no step {step}"
        ))),
    }
}

/// Executes a program on the task of `step`, records the run and returns its trace.
pub async fn run(
    store: &dyn Store,
    experiment: &Experiment,
    session: Session,
    step: i64,
    request: RunRequest,
) -> Result<RunResponse, StudyError> {
    check_version(experiment, &session)?;
    if !(1..=limits::MAX_SEQ).contains(&request.run) {
        return Err(StudyError::invalid(format!(
            "`run` must be a number from 1 to {}",
            limits::MAX_SEQ
        )));
    }
    let mode = request.mode.unwrap_or_else(|| "run".to_owned());
    if mode.is_empty() || mode.chars().count() > limits::MAX_MODE_CHARS {
        return Err(StudyError::invalid(format!(
            "`mode` must be 1-{} characters",
            limits::MAX_MODE_CHARS
        )));
    }
    let (phase, index, task) = task_step(experiment, &session, step)?;
    let program = parse_program(experiment, &request.program)?;
    let compact = program.to_compact();
    let entry = experiment
        .task_entry(phase, task)
        .ok_or_else(|| StudyError::Internal(anyhow::anyhow!("no task {phase:?}[{task}]")))?;
    let outcome = views::execute(experiment, &entry.task, &program);
    let response = |duplicate: bool| RunResponse {
        run: request.run,
        duplicate,
        program: compact.clone(),
        solved: outcome.solved,
        steps: outcome.steps,
        instruction_count: program.instruction_count(),
        budget_exhausted: outcome.budget_exhausted,
        final_state: views::state(&outcome.final_state),
        trace: views::trace(&outcome),
    };
    if step != session.step || session.status != SessionStatus::Active {
        // Only a retry of a run recorded while this step was current is still answered.
        return match store.run(&session.id, request.run).await? {
            Some(stored) if stored.step == step && stored.program == compact => Ok(response(true)),
            _ => Err(wrong_step(&session, step)),
        };
    }
    serve(store, experiment, &session, phase, index, task).await?;
    let at = now();
    let recorded = store
        .record_run(Run {
            session_id: session.id.clone(),
            seq: request.run,
            step,
            program: compact.clone(),
            mode,
            solved: outcome.solved,
            steps: i64::from(outcome.steps),
            created_at: at,
            session_ms: session.ms_since_start(at),
        })
        .await;
    match recorded {
        Ok(RunRecorded::New(_)) => Ok(response(false)),
        Ok(RunRecorded::Existing(_)) => Ok(response(true)),
        Err(StoreError::Conflict(message)) => {
            Err(StudyError::wrong_state("run_number_reused", message))
        }
        Err(e) => Err(e.into()),
    }
}

/// Accepts a program that solves the current task (under the experiment's light mode) and moves
/// on.
pub async fn submit(
    store: &dyn Store,
    experiment: &Experiment,
    session: Session,
    step: i64,
    program_text: &str,
) -> Result<SubmitResponse, StudyError> {
    check_version(experiment, &session)?;
    let (phase, index, task) = task_step(experiment, &session, step)?;
    let program = parse_program(experiment, program_text)?;
    let compact = program.to_compact();
    let entry = experiment
        .task_entry(phase, task)
        .ok_or_else(|| StudyError::Internal(anyhow::anyhow!("no task {phase:?}[{task}]")))?;
    let outcome = views::execute(experiment, &entry.task, &program);
    if step != session.step || session.status != SessionStatus::Active {
        let retry = match store.trial(&session.id, step).await {
            Ok(trial) => {
                trial.outcome == Some(TrialOutcome::Submitted)
                    && trial.program.as_deref() == Some(compact.as_str())
            }
            Err(StoreError::NotFound) => false,
            Err(e) => return Err(e.into()),
        };
        if !retry {
            return Err(wrong_step(&session, step));
        }
        return Ok(SubmitResponse {
            program: compact,
            steps: outcome.steps,
            instruction_count: program.instruction_count(),
            duplicate: true,
            session: view(store, experiment, &session).await?,
        });
    }
    if !outcome.solved {
        return Err(StudyError::Refused {
            code: "not_solved",
            message: "the program does not solve the task, so it cannot be submitted".into(),
        });
    }
    serve(store, experiment, &session, phase, index, task).await?;
    let at = now();
    let session = store
        .finish_trial(FinishTrial {
            session_id: session.id.clone(),
            step,
            outcome: TrialOutcome::Submitted,
            program: Some(compact.clone()),
            at,
            ms: session.ms_since_start(at),
        })
        .await?;
    tracing::info!(session = %session.id, step, "solution submitted");
    Ok(SubmitResponse {
        program: compact,
        steps: outcome.steps,
        instruction_count: program.instruction_count(),
        duplicate: false,
        session: view(store, experiment, &session).await?,
    })
}
