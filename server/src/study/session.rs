//! Entering a study and seeing where one is: entry, the current step's view, and the checks every
//! other use case starts with.

use std::collections::BTreeMap;

use rand::Rng;

use super::error::StudyError;
use super::storable::require_storable;
use super::{limits, views};
use crate::api::{Current, Progress, SessionView, SkipView, TrialView};
use crate::clock::{now, rfc3339};
use crate::domain::{Phase, SessionStatus, SessionToken};
use crate::experiment::{Experiment, Order, Step};
use crate::store::{Assignment, NewSession, NewTrial, Session, Store, StoreError, Trial};

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
) -> Result<Entered, StudyError> {
    if params.len() > limits::MAX_PARAMS {
        return Err(StudyError::invalid(format!(
            "at most {} entry parameters",
            limits::MAX_PARAMS
        )));
    }
    for (name, value) in &params {
        require_storable("an entry parameter", name)?;
        require_storable("an entry parameter", value)?;
        if name.is_empty()
            || name.len() > limits::MAX_PARAM_NAME
            || value.len() > limits::MAX_PARAM_VALUE
        {
            return Err(StudyError::invalid(format!(
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
        Err(StoreError::Conflict(_)) => Err(StudyError::wrong_state(
            "already_participated",
            "this participant ID has already taken part in this study, and each person may take part only once",
        )),
        Err(e) => Err(e.into()),
    }
}

/// The experiment a session belongs to, refusing sessions of a definition that changed.
pub fn check_version(experiment: &Experiment, session: &Session) -> Result<(), StudyError> {
    if experiment.version != session.experiment_version {
        return Err(StudyError::wrong_state(
            "experiment_changed",
            format!(
                "this session started under version {} of the experiment, which the server no longer runs (now {})",
                session.experiment_version, experiment.version
            ),
        ));
    }
    Ok(())
}

pub(super) fn current_step(
    experiment: &Experiment,
    session: &Session,
) -> Result<(Vec<Step>, Step), StudyError> {
    let timeline = experiment.timeline(&session.task_order);
    let step = usize::try_from(session.step)
        .ok()
        .and_then(|i| timeline.get(i).copied())
        .ok_or_else(|| {
            StudyError::Internal(anyhow::anyhow!(
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
) -> Result<SessionView, StudyError> {
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
                    .ok_or_else(|| StudyError::Internal(anyhow::anyhow!("no screen {phase:?}[{index}]")))?;
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

pub(super) async fn serve(
    store: &dyn Store,
    experiment: &Experiment,
    session: &Session,
    phase: Phase,
    index: usize,
    task: usize,
) -> Result<Trial, StudyError> {
    let entry = experiment
        .task_entry(phase, task)
        .ok_or_else(|| StudyError::Internal(anyhow::anyhow!("no task {phase:?}[{task}]")))?;
    let at = now();
    Ok(store
        .serve_trial(NewTrial {
            session_id: session.id.clone(),
            step: session.step,
            phase,
            position: index as i64,
            task_index: task as i64,
            label: entry.label.clone(),
            at,
            ms: session.ms_since_start(at),
        })
        .await?)
}

pub(super) fn trial_view(
    experiment: &Experiment,
    trial: &Trial,
    phase: Phase,
    task: usize,
) -> Result<TrialView, StudyError> {
    let entry = experiment
        .task_entry(phase, task)
        .ok_or_else(|| StudyError::Internal(anyhow::anyhow!("no task {phase:?}[{task}]")))?;
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

pub(super) fn wrong_step(session: &Session, step: i64) -> StudyError {
    StudyError::wrong_state(
        "wrong_step",
        format!(
            "the session is at step {}, not step {step}; GET /api/v1/session shows the current step",
            session.step
        ),
    )
}

/// The one answer every write gets once a session has ended (declined or completed), unless it
/// is a retry of something that already took effect.
pub(super) fn closed(session: &Session) -> StudyError {
    StudyError::wrong_state(
        "session_closed",
        format!("the session is {}", session.status.as_str()),
    )
}

/// The trial of `step`, if the server has served it.
pub(super) async fn served_trial(
    store: &dyn Store,
    session: &Session,
    step: i64,
) -> Result<Option<Trial>, StudyError> {
    match store.trial(&session.id, step).await {
        Ok(trial) => Ok(Some(trial)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn require_active(session: &Session) -> Result<(), StudyError> {
    match session.status {
        SessionStatus::Active => Ok(()),
        _ => Err(closed(session)),
    }
}
