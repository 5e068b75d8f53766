//! Programs on a task step: runs (recorded, answered with the trace) and submits.

use super::error::StudyError;
use super::session::{
    check_version, closed, require_active, serve, served_trial, view, wrong_step,
};
use super::storable::require_storable;
use super::{limits, views};
use crate::api::{RunRequest, RunResponse, SessionView, SubmitResponse};
use crate::clock::now;
use crate::domain::{Phase, SessionStatus, TrialOutcome};
use crate::experiment::{Experiment, Step};
use crate::store::{FinishTrial, Run, RunRecorded, Session, Store, StoreError};

fn parse_program(experiment: &Experiment, text: &str) -> Result<dsl::Program, StudyError> {
    require_storable("the program", text)?;
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

/// A program read and executed on the task of `step`, ready to answer with.
struct Prepared {
    phase: Phase,
    index: usize,
    task: usize,
    program: dsl::Program,
    compact: String,
    outcome: dsl::Outcome,
}

impl Prepared {
    /// Serves the prepared task's trial (once), as every write on a task step does first.
    async fn serve(
        &self,
        store: &dyn Store,
        experiment: &Experiment,
        session: &Session,
    ) -> Result<(), StudyError> {
        serve(
            store, experiment, session, self.phase, self.index, self.task,
        )
        .await?;
        Ok(())
    }
}

fn prepare(
    experiment: &Experiment,
    session: &Session,
    step: i64,
    text: &str,
) -> Result<Prepared, StudyError> {
    let (phase, index, task) = task_step(experiment, session, step)?;
    let program = parse_program(experiment, text)?;
    let compact = program.to_compact();
    let entry = experiment
        .task_entry(phase, task)
        .ok_or_else(|| StudyError::Internal(anyhow::anyhow!("no task {phase:?}[{task}]")))?;
    let outcome = views::execute(experiment, &entry.task, &program);
    Ok(Prepared {
        phase,
        index,
        task,
        program,
        compact,
        outcome,
    })
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
    if session.status != SessionStatus::Active {
        // An ended session answers only a retry of a run it recorded; anything else is closed.
        if let Ok(prepared) = prepare(experiment, &session, step, &request.program)
            && recorded_before(store, &session, request.run, step, &prepared.compact).await?
        {
            return Ok(run_response(request.run, true, &prepared));
        }
        return Err(closed(&session));
    }
    if !(1..=limits::MAX_SEQ).contains(&request.run) {
        return Err(StudyError::invalid(format!(
            "`run` must be a number from 1 to {}",
            limits::MAX_SEQ
        )));
    }
    let mode = request.mode.clone().unwrap_or_else(|| "run".to_owned());
    if !limits::RUN_MODES.contains(&mode.as_str()) {
        return Err(StudyError::invalid(format!(
            "`mode` must be one of {}",
            limits::RUN_MODES.join(", ")
        )));
    }
    let prepared = prepare(experiment, &session, step, &request.program)?;
    if step != session.step {
        // Only a retry of a run recorded while this step was current is still answered.
        if recorded_before(store, &session, request.run, step, &prepared.compact).await? {
            return Ok(run_response(request.run, true, &prepared));
        }
        return Err(wrong_step(&session, step));
    }
    prepared.serve(store, experiment, &session).await?;
    let at = now();
    let recorded = store
        .record_run(Run {
            session_id: session.id.clone(),
            seq: request.run,
            step,
            program: prepared.compact.clone(),
            mode,
            solved: prepared.outcome.solved,
            steps: i64::from(prepared.outcome.steps),
            created_at: at,
            session_ms: session.ms_since_start(at),
        })
        .await;
    match recorded {
        Ok(RunRecorded::New(_)) => Ok(run_response(request.run, false, &prepared)),
        Ok(RunRecorded::Existing(_)) => Ok(run_response(request.run, true, &prepared)),
        Err(StoreError::Conflict(message)) => {
            Err(StudyError::wrong_state("run_number_reused", message))
        }
        Err(e) => Err(e.into()),
    }
}

fn run_response(run: i64, duplicate: bool, prepared: &Prepared) -> RunResponse {
    RunResponse {
        run,
        duplicate,
        program: prepared.compact.clone(),
        solved: prepared.outcome.solved,
        steps: prepared.outcome.steps,
        instruction_count: prepared.program.instruction_count(),
        budget_exhausted: prepared.outcome.budget_exhausted,
        final_state: views::state(&prepared.outcome.final_state),
        trace: views::trace(&prepared.outcome),
    }
}

/// Whether run number `run` was recorded on `step` with this program: a retry.
async fn recorded_before(
    store: &dyn Store,
    session: &Session,
    run: i64,
    step: i64,
    compact: &str,
) -> Result<bool, StudyError> {
    Ok(store
        .run(&session.id, run)
        .await?
        .is_some_and(|stored| stored.step == step && stored.program == compact))
}

/// Whether the trial of `step` was already submitted with this program: a retry.
async fn submitted_before(
    store: &dyn Store,
    session: &Session,
    step: i64,
    compact: &str,
) -> Result<bool, StudyError> {
    Ok(served_trial(store, session, step)
        .await?
        .is_some_and(|trial| {
            trial.outcome == Some(TrialOutcome::Submitted)
                && trial.program.as_deref() == Some(compact)
        }))
}

fn submit_response(prepared: Prepared, duplicate: bool, session: SessionView) -> SubmitResponse {
    SubmitResponse {
        steps: prepared.outcome.steps,
        instruction_count: prepared.program.instruction_count(),
        program: prepared.compact,
        duplicate,
        session,
    }
}

/// Answers a submit that did not end the trial itself (the session was elsewhere, or a
/// simultaneous request got there first): a retry of an accepted submit gets the same answer
/// with `duplicate: true`; anything else is refused by the session's state.
async fn answer_repeated_submit(
    store: &dyn Store,
    experiment: &Experiment,
    session: Session,
    step: i64,
    prepared: Prepared,
) -> Result<SubmitResponse, StudyError> {
    if submitted_before(store, &session, step, &prepared.compact).await? {
        let view = view(store, experiment, &session).await?;
        return Ok(submit_response(prepared, true, view));
    }
    require_active(&session)?;
    Err(wrong_step(&session, step))
}

/// Accepts a program that solves the current task (under the experiment's light mode) and moves
/// on. A retry of an accepted submit, sequential or simultaneous, answers `duplicate: true`.
pub async fn submit(
    store: &dyn Store,
    experiment: &Experiment,
    session: Session,
    step: i64,
    program_text: &str,
) -> Result<SubmitResponse, StudyError> {
    check_version(experiment, &session)?;
    let prepared = match prepare(experiment, &session, step, program_text) {
        Ok(prepared) => prepared,
        Err(_) if session.status != SessionStatus::Active => {
            return Err(closed(&session));
        }
        Err(e) => return Err(e),
    };
    if step != session.step || session.status != SessionStatus::Active {
        return answer_repeated_submit(store, experiment, session, step, prepared).await;
    }
    if !prepared.outcome.solved {
        return Err(StudyError::Refused {
            code: "not_solved",
            message: "the program does not solve the task, so it cannot be submitted".into(),
        });
    }
    prepared.serve(store, experiment, &session).await?;
    let at = now();
    let finished = store
        .finish_trial(FinishTrial {
            session_id: session.id.clone(),
            step,
            outcome: TrialOutcome::Submitted,
            program: Some(prepared.compact.clone()),
            at,
            ms: session.ms_since_start(at),
        })
        .await;
    let session = match finished {
        Ok(session) => session,
        Err(StoreError::Conflict(_)) => {
            let session = store.session(&session.id).await?;
            return answer_repeated_submit(store, experiment, session, step, prepared).await;
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(session = %session.id, step, "solution submitted");
    let view = view(store, experiment, &session).await?;
    Ok(submit_response(prepared, false, view))
}
