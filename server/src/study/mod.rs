//! What a participant can do, step by step: the use cases behind the participant API.
//!
//! Every function takes the store and the session's experiment, checks that the request fits the
//! session's current step, writes through the store (one transaction per state change), and
//! answers with where the participant is now. Nothing is kept in memory between requests: the
//! session's step index in the database is the whole of "where the participant is".
//!
//! Retries are safe: repeating a request that already took effect (same run number, same submit,
//! a continue for a step already passed) answers as before and stores nothing new.

pub mod views;

use std::collections::BTreeMap;

use rand::Rng;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::api::{
    CompleteResponse, Current, EventIn, EventsResponse, Progress, RunRequest, RunResponse,
    SessionView, SkipView, SubmitResponse, TrialView,
};
use crate::domain::{Phase, SessionStatus, SessionToken, TrialOutcome};
use crate::experiment::{Experiment, ItemKind, Order, Step};
use crate::http::error::AppError;
use crate::store::{
    Assignment, FinishTrial, NewEvent, NewSession, NewTrial, Run, RunRecorded, Session, Store,
    StoreError, Trial,
};

/// Limits on what a client may send, beyond the request body limit.
pub mod limits {
    pub const MAX_PARAMS: usize = 64;
    pub const MAX_PARAM_NAME: usize = 128;
    pub const MAX_PARAM_VALUE: usize = 2048;
    pub const MAX_PROGRAM_CHARS: usize = 20_000;
    pub const MAX_MODE_CHARS: usize = 32;
    pub const MAX_EVENTS_PER_BATCH: usize = 1000;
    pub const MAX_EVENT_TYPE_CHARS: usize = 64;
    pub const MAX_ANSWER_CHARS: usize = 10_000;
    /// Largest `seq` or `run` number accepted.
    pub const MAX_SEQ: i64 = 10_000_000;
}

/// The current time, truncated to whole milliseconds so that it survives a round trip through
/// either database unchanged.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now)
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// A new or resumed session.
pub struct Entered {
    /// Only for a new session: the token is never stored, so it cannot be shown again.
    pub token: Option<SessionToken>,
    pub session: Session,
}

/// Entry: resumes `existing` if it belongs to this experiment and participant, otherwise creates
/// a session (refusing a recruiter ID that already took part, unless repeats are allowed).
pub async fn enter(
    store: &dyn Store,
    experiment: &Experiment,
    params: BTreeMap<String, String>,
    existing: Option<Session>,
) -> Result<Entered, AppError> {
    if params.len() > limits::MAX_PARAMS {
        return Err(AppError::bad_request(format!(
            "at most {} entry parameters",
            limits::MAX_PARAMS
        )));
    }
    for (name, value) in &params {
        if name.is_empty()
            || name.len() > limits::MAX_PARAM_NAME
            || value.len() > limits::MAX_PARAM_VALUE
        {
            return Err(AppError::bad_request(format!(
                "entry parameter names must be 1-{} bytes and values at most {} bytes",
                limits::MAX_PARAM_NAME,
                limits::MAX_PARAM_VALUE
            )));
        }
    }
    let recruiter_id = experiment.recruiter_id(&params).map(str::to_owned);
    if let Some(session) = existing {
        let same_participant = recruiter_id.is_none() || recruiter_id == session.recruiter_id;
        if session.experiment == experiment.slug.as_str() && same_participant {
            return Ok(Entered {
                token: None,
                session,
            });
        }
    }
    let token = SessionToken::generate();
    let drawn: u64 = rand::rng().random();
    let seed = experiment.order.session_seed(drawn);
    let assignment = match &experiment.order {
        Order::Balanced { orders } => Assignment::Balanced {
            orders: orders.clone(),
        },
        order => Assignment::Given {
            task_order: order.task_order(experiment.tasks.len(), None, seed),
        },
    };
    let new = NewSession {
        id: uuid::Uuid::new_v4().to_string(),
        experiment: experiment.slug.to_string(),
        experiment_version: experiment.version.clone(),
        token_hash: token.hash(),
        recruiter_id,
        unique_recruiter: !experiment.allow_repeats,
        params,
        seed: seed as i64,
        assignment,
        at: now(),
    };
    match store.create_session(new).await {
        Ok(session) => {
            tracing::info!(session = %session.id, experiment = %session.experiment, condition = ?session.condition, "session created");
            Ok(Entered {
                token: Some(token),
                session,
            })
        }
        Err(StoreError::Conflict(_)) => Err(AppError::conflict(
            "already_participated",
            "this participant ID has already taken part in this study, and each person may take part only once",
        )),
        Err(e) => Err(e.into()),
    }
}

/// The experiment a session belongs to, refusing sessions of a definition that changed.
pub fn check_version(experiment: &Experiment, session: &Session) -> Result<(), AppError> {
    if experiment.version != session.experiment_version {
        return Err(AppError::conflict(
            "experiment_changed",
            format!(
                "this session started under version {} of the experiment, which the server no longer runs (now {})",
                session.experiment_version, experiment.version
            ),
        ));
    }
    Ok(())
}

fn current_step(experiment: &Experiment, session: &Session) -> Result<(Vec<Step>, Step), AppError> {
    let timeline = experiment.timeline(&session.task_order);
    let step = usize::try_from(session.step)
        .ok()
        .and_then(|i| timeline.get(i).copied())
        .ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "session {} is at step {} of {}",
                session.id,
                session.step,
                timeline.len()
            ))
        })?;
    Ok((timeline, step))
}

/// Where the participant is and what the current step shows. Serving a task step starts its
/// trial (once): the skip delay runs from then.
pub async fn view(
    store: &dyn Store,
    experiment: &Experiment,
    session: &Session,
) -> Result<SessionView, AppError> {
    check_version(experiment, session)?;
    let (timeline, step) = current_step(experiment, session)?;
    let current = match session.status {
        SessionStatus::Declined => Current::Declined {
            message: "You declined to take part. Please close this window and return the study on the recruiting site.".into(),
        },
        SessionStatus::Completed => {
            let params = store.params(&session.id).await?;
            Current::Done {
                code: session.completion_code.clone().unwrap_or_else(|| experiment.completion.code.clone()),
                redirect_url: experiment.completion.redirect_for(&params),
                text: experiment.completion.text.as_ref().map(views::text),
            }
        }
        SessionStatus::Active => match step {
            Step::Consent => Current::Consent {
                text: views::text(&experiment.consent.text),
                agree_label: experiment.consent.agree_label.clone(),
                decline_label: experiment.consent.decline_label.clone(),
            },
            Step::Screen { phase, index } => {
                let screen = experiment
                    .screen(phase, index)
                    .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no screen {phase:?}[{index}]")))?;
                Current::Screen {
                    phase: phase.as_str().to_owned(),
                    text: views::text(&screen.text),
                    level: screen.level.as_ref().map(|level| views::map(&level.task)),
                    demo: match (&screen.level, &screen.demo) {
                        (Some(level), Some(program)) => Some(views::demo(experiment, &level.task, program)),
                        _ => None,
                    },
                }
            }
            Step::Task { phase, index, task } => {
                let trial = serve(store, experiment, session, phase, index, task).await?;
                Current::Task { phase: phase.as_str().to_owned(), trial: trial_view(experiment, &trial, phase, task)? }
            }
            Step::Questionnaire => Current::Questionnaire { items: experiment.questionnaire.iter().map(views::item).collect() },
            Step::Complete => Current::Complete { text: None },
        },
    };
    let phase = match session.status {
        SessionStatus::Completed => Phase::Complete,
        _ => step.phase(),
    };
    let position = session.step as usize;
    let progress = Progress {
        step: session.step,
        steps: timeline.len() as i64,
        phase: phase.as_str().to_owned(),
        phase_step: timeline[..position.min(timeline.len())]
            .iter()
            .filter(|s| s.phase() == phase)
            .count() as i64,
        phase_steps: timeline.iter().filter(|s| s.phase() == phase).count() as i64,
    };
    Ok(SessionView {
        session_id: session.id.clone(),
        experiment: session.experiment.clone(),
        status: session.status.as_str().to_owned(),
        progress,
        current,
    })
}

async fn serve(
    store: &dyn Store,
    experiment: &Experiment,
    session: &Session,
    phase: Phase,
    index: usize,
    task: usize,
) -> Result<Trial, AppError> {
    let entry = experiment
        .task_entry(phase, task)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no task {phase:?}[{task}]")))?;
    let at = now();
    Ok(store
        .serve_trial(NewTrial {
            session_id: session.id.clone(),
            step: session.step,
            phase: phase.as_str().to_owned(),
            position: index as i64,
            task_index: task as i64,
            label: entry.label.clone(),
            at,
            ms: session.ms_since_start(at),
        })
        .await?)
}

fn trial_view(
    experiment: &Experiment,
    trial: &Trial,
    phase: Phase,
    task: usize,
) -> Result<TrialView, AppError> {
    let entry = experiment
        .task_entry(phase, task)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no task {phase:?}[{task}]")))?;
    let text = match phase {
        Phase::Tutorial => experiment
            .tutorial
            .get(task)
            .map(|screen| views::text(&screen.text)),
        _ => entry.text.as_ref().map(views::text),
    };
    let skip = (phase == Phase::Tasks).then(|| {
        let available_at = trial.started_at + experiment.skip_delay;
        SkipView {
            delay_seconds: experiment.skip_delay.as_secs(),
            available_at: rfc3339(available_at),
            available: now() >= available_at,
        }
    });
    Ok(TrialView {
        step: trial.step,
        phase: phase.as_str().to_owned(),
        position: trial.position,
        task_index: trial.task_index,
        label: trial.label.clone(),
        text,
        map: views::map(&entry.task),
        light: views::light_name(experiment.light).to_owned(),
        limits: views::limits(experiment),
        started_at: rfc3339(trial.started_at),
        runs: trial.runs,
        skip,
    })
}

fn wrong_step(session: &Session, step: i64) -> AppError {
    AppError::conflict(
        "wrong_step",
        format!(
            "the session is at step {}, not step {step}; GET /api/v1/session shows the current step",
            session.step
        ),
    )
}

fn require_active(session: &Session) -> Result<(), AppError> {
    match session.status {
        SessionStatus::Active => Ok(()),
        status => Err(AppError::conflict(
            "session_closed",
            format!("the session is {}", status.as_str()),
        )),
    }
}

/// Consent: agreeing moves on to the tutorial, declining ends the session.
pub async fn consent(
    store: &dyn Store,
    experiment: &Experiment,
    session: Session,
    agree: bool,
) -> Result<SessionView, AppError> {
    check_version(experiment, &session)?;
    if session.consent == Some(agree) {
        return view(store, experiment, &session).await;
    }
    require_active(&session)?;
    if session.step != 0 || session.consent.is_some() {
        return Err(AppError::conflict(
            "consent_answered",
            "consent was already answered",
        ));
    }
    let session = store.record_consent(&session.id, agree, now()).await?;
    tracing::info!(session = %session.id, agree, "consent recorded");
    view(store, experiment, &session).await
}

/// Leaves a text screen. A retry for a step already passed answers with the current step.
pub async fn continue_step(
    store: &dyn Store,
    experiment: &Experiment,
    session: Session,
    step: i64,
) -> Result<SessionView, AppError> {
    check_version(experiment, &session)?;
    if step < session.step && step > 0 {
        return view(store, experiment, &session).await;
    }
    require_active(&session)?;
    if step != session.step {
        return Err(wrong_step(&session, step));
    }
    let (_, current) = current_step(experiment, &session)?;
    if !matches!(current, Step::Screen { .. }) {
        return Err(AppError::conflict(
            "not_a_screen",
            format!("step {step} is not a text screen; it needs its own answer"),
        ));
    }
    let session = store.advance(&session.id, step, now()).await?;
    view(store, experiment, &session).await
}

fn parse_program(experiment: &Experiment, text: &str) -> Result<dsl::Program, AppError> {
    if text.chars().count() > limits::MAX_PROGRAM_CHARS {
        return Err(AppError::bad_request(format!(
            "a program may have at most {} characters",
            limits::MAX_PROGRAM_CHARS
        )));
    }
    let program = dsl::parse_program(text, None, &experiment.limits)?;
    Ok(program.with_slots(experiment.limits.subroutines))
}

/// The task of a step, if the step is a task.
fn task_step(
    experiment: &Experiment,
    session: &Session,
    step: i64,
) -> Result<(Phase, usize, usize), AppError> {
    let timeline = experiment.timeline(&session.task_order);
    match usize::try_from(step).ok().and_then(|i| timeline.get(i)) {
        Some(&Step::Task { phase, index, task }) => Ok((phase, index, task)),
        Some(_) => Err(AppError::conflict(
            "not_a_task",
            format!("step {step} is not a task"),
        )),
        None => Err(AppError::NotFound(format!(
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
) -> Result<RunResponse, AppError> {
    check_version(experiment, &session)?;
    if !(1..=limits::MAX_SEQ).contains(&request.run) {
        return Err(AppError::bad_request(format!(
            "`run` must be a number from 1 to {}",
            limits::MAX_SEQ
        )));
    }
    let mode = request.mode.unwrap_or_else(|| "run".to_owned());
    if mode.is_empty() || mode.chars().count() > limits::MAX_MODE_CHARS {
        return Err(AppError::bad_request(format!(
            "`mode` must be 1-{} characters",
            limits::MAX_MODE_CHARS
        )));
    }
    let (phase, index, task) = task_step(experiment, &session, step)?;
    let program = parse_program(experiment, &request.program)?;
    let compact = program.to_compact();
    let entry = experiment
        .task_entry(phase, task)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no task {phase:?}[{task}]")))?;
    let outcome = views::execute(experiment, &entry.task, &program);
    let response = |duplicate: bool| RunResponse {
        run: request.run,
        duplicate,
        program: compact.clone(),
        solved: outcome.solved,
        steps: outcome.steps,
        instruction_count: views::instruction_count(&program),
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
        Err(StoreError::Conflict(message)) => Err(AppError::conflict("run_number_reused", message)),
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
) -> Result<SubmitResponse, AppError> {
    check_version(experiment, &session)?;
    let (phase, index, task) = task_step(experiment, &session, step)?;
    let program = parse_program(experiment, program_text)?;
    let compact = program.to_compact();
    let entry = experiment
        .task_entry(phase, task)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no task {phase:?}[{task}]")))?;
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
            instruction_count: views::instruction_count(&program),
            duplicate: true,
            session: view(store, experiment, &session).await?,
        });
    }
    if !outcome.solved {
        return Err(AppError::Unprocessable {
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
        instruction_count: views::instruction_count(&program),
        duplicate: false,
        session: view(store, experiment, &session).await?,
    })
}

/// Skips the current main task, once the skip delay has passed since the server served it.
pub async fn skip(
    store: &dyn Store,
    experiment: &Experiment,
    session: Session,
    step: i64,
) -> Result<SessionView, AppError> {
    check_version(experiment, &session)?;
    let (phase, index, task) = task_step(experiment, &session, step)?;
    if phase != Phase::Tasks {
        return Err(AppError::conflict(
            "skip_not_allowed",
            format!("{} tasks cannot be skipped", phase.as_str()),
        ));
    }
    if step != session.step || session.status != SessionStatus::Active {
        return match store.trial(&session.id, step).await {
            Ok(trial) if trial.outcome == Some(TrialOutcome::Skipped) => {
                view(store, experiment, &session).await
            }
            Ok(_) | Err(StoreError::NotFound) => Err(wrong_step(&session, step)),
            Err(e) => Err(e.into()),
        };
    }
    let trial = serve(store, experiment, &session, phase, index, task).await?;
    let at = now();
    let available_at = trial.started_at + experiment.skip_delay;
    if at < available_at {
        let left = (available_at - at).as_seconds_f64().ceil() as u64;
        return Err(AppError::conflict(
            "skip_not_available",
            format!(
                "a task can be skipped {} s after it was served; {left} s to go",
                experiment.skip_delay.as_secs()
            ),
        ));
    }
    let session = store
        .finish_trial(FinishTrial {
            session_id: session.id.clone(),
            step,
            outcome: TrialOutcome::Skipped,
            program: None,
            at,
            ms: session.ms_since_start(at),
        })
        .await?;
    tracing::info!(session = %session.id, step, "task skipped");
    view(store, experiment, &session).await
}

/// Stores a batch of client events, each once per sequence number.
pub async fn events(
    store: &dyn Store,
    session: &Session,
    events: Vec<EventIn>,
) -> Result<EventsResponse, AppError> {
    if events.is_empty() || events.len() > limits::MAX_EVENTS_PER_BATCH {
        return Err(AppError::bad_request(format!(
            "a batch has 1 to {} events",
            limits::MAX_EVENTS_PER_BATCH
        )));
    }
    let mut new_events = Vec::with_capacity(events.len());
    for event in events {
        if !(1..=limits::MAX_SEQ).contains(&event.seq) {
            return Err(AppError::bad_request(format!(
                "event `seq` must be from 1 to {}",
                limits::MAX_SEQ
            )));
        }
        if event.kind.is_empty() || event.kind.chars().count() > limits::MAX_EVENT_TYPE_CHARS {
            return Err(AppError::bad_request(format!(
                "event `type` must be 1-{} characters",
                limits::MAX_EVENT_TYPE_CHARS
            )));
        }
        new_events.push(NewEvent {
            seq: event.seq,
            kind: event.kind,
            step: event.step,
            client_ms: event.t,
            data: event.data,
        });
    }
    let at = now();
    let stored = store
        .store_events(&session.id, &new_events, at, session.ms_since_start(at))
        .await?;
    Ok(EventsResponse {
        stored: stored.stored,
        duplicates: stored.duplicates,
    })
}

/// Stores the questionnaire answers, checked against the items, and moves on.
pub async fn questionnaire(
    store: &dyn Store,
    experiment: &Experiment,
    session: Session,
    answers: BTreeMap<String, String>,
) -> Result<SessionView, AppError> {
    check_version(experiment, &session)?;
    for (id, answer) in &answers {
        let Some(item) = experiment.questionnaire.iter().find(|item| &item.id == id) else {
            return Err(AppError::bad_request(format!(
                "there is no questionnaire item `{id}`"
            )));
        };
        if answer.chars().count() > limits::MAX_ANSWER_CHARS {
            return Err(AppError::bad_request(format!(
                "the answer to `{id}` is longer than {} characters",
                limits::MAX_ANSWER_CHARS
            )));
        }
        if let ItemKind::Choice { options } = &item.kind
            && !answer.is_empty()
            && !options.contains(answer)
        {
            return Err(AppError::bad_request(format!(
                "`{answer}` is not one of the options of `{id}`"
            )));
        }
    }
    for item in &experiment.questionnaire {
        if item.required && answers.get(&item.id).is_none_or(|a| a.trim().is_empty()) {
            return Err(AppError::bad_request(format!(
                "`{}` must be answered",
                item.id
            )));
        }
    }
    let (timeline, current) = current_step(experiment, &session)?;
    if current != Step::Questionnaire {
        let questionnaire_step = timeline.iter().position(|s| *s == Step::Questionnaire);
        let already = questionnaire_step.is_some_and(|q| (q as i64) < session.step);
        if already {
            let stored: BTreeMap<String, String> = store
                .answers(&session.id)
                .await?
                .into_iter()
                .map(|a| (a.item, a.answer))
                .collect();
            if stored == answers {
                return view(store, experiment, &session).await;
            }
        }
        return Err(AppError::conflict(
            "not_questionnaire",
            "the session is not at the questionnaire",
        ));
    }
    require_active(&session)?;
    let answers: Vec<(String, String)> = answers.into_iter().collect();
    let session = store
        .save_answers(&session.id, session.step, &answers, now())
        .await?;
    view(store, experiment, &session).await
}

/// Completes the session once everything is stored, and returns the completion code and the
/// redirect URL. Completing again returns the same.
pub async fn complete(
    store: &dyn Store,
    experiment: &Experiment,
    session: Session,
    events_through: Option<i64>,
) -> Result<CompleteResponse, AppError> {
    check_version(experiment, &session)?;
    if let Some(through) = events_through {
        if !(0..=limits::MAX_SEQ).contains(&through) {
            return Err(AppError::bad_request(format!(
                "`events_through` must be from 0 to {}",
                limits::MAX_SEQ
            )));
        }
        let missing = store.missing_events(&session.id, through).await?;
        if !missing.is_empty() {
            let list: Vec<String> = missing.iter().map(i64::to_string).collect();
            return Err(AppError::conflict(
                "events_missing",
                format!("events not stored yet: {}", list.join(", ")),
            ));
        }
    }
    let session = match session.status {
        SessionStatus::Completed => session,
        SessionStatus::Declined => {
            return Err(AppError::conflict(
                "session_closed",
                "the session is declined",
            ));
        }
        SessionStatus::Active => {
            let (_, current) = current_step(experiment, &session)?;
            if current != Step::Complete {
                return Err(AppError::conflict(
                    "not_finished",
                    "the study is not finished yet; GET /api/v1/session shows what is left",
                ));
            }
            let session = store
                .complete_session(
                    &session.id,
                    session.step,
                    &experiment.completion.code,
                    now(),
                )
                .await?;
            tracing::info!(session = %session.id, "session completed");
            session
        }
    };
    let params = store.params(&session.id).await?;
    Ok(CompleteResponse {
        code: session
            .completion_code
            .clone()
            .unwrap_or_else(|| experiment.completion.code.clone()),
        redirect_url: experiment.completion.redirect_for(&params),
        session: view(store, experiment, &session).await?,
    })
}
