//! Moving through the timeline: consent, text screens, skips, the questionnaire and completion.

use std::collections::BTreeMap;

use super::error::StudyError;
use super::limits;
use super::programs::task_step;
use super::session::{check_version, current_step, require_active, serve, view, wrong_step};
use crate::api::{CompleteResponse, SessionView};
use crate::clock::now;
use crate::domain::{Phase, SessionStatus, TrialOutcome};
use crate::experiment::{Experiment, ItemKind, Step};
use crate::store::{FinishTrial, Session, Store, StoreError};

/// Consent: agreeing moves on to the tutorial, declining ends the session.
pub async fn consent(
    store: &dyn Store,
    experiment: &Experiment,
    session: Session,
    agree: bool,
) -> Result<SessionView, StudyError> {
    check_version(experiment, &session)?;
    if session.consent == Some(agree) {
        return view(store, experiment, &session).await;
    }
    require_active(&session)?;
    if session.step != 0 || session.consent.is_some() {
        return Err(StudyError::wrong_state(
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
) -> Result<SessionView, StudyError> {
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
        return Err(StudyError::wrong_state(
            "not_a_screen",
            format!("step {step} is not a text screen; it needs its own answer"),
        ));
    }
    let session = store.advance(&session.id, step, now()).await?;
    view(store, experiment, &session).await
}

/// Skips the current main task, once the skip delay has passed since the server served it.
pub async fn skip(
    store: &dyn Store,
    experiment: &Experiment,
    session: Session,
    step: i64,
) -> Result<SessionView, StudyError> {
    check_version(experiment, &session)?;
    let (phase, index, task) = task_step(experiment, &session, step)?;
    if phase != Phase::Tasks {
        return Err(StudyError::wrong_state(
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
        return Err(StudyError::wrong_state(
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

/// Stores the questionnaire answers, checked against the items, and moves on.
pub async fn questionnaire(
    store: &dyn Store,
    experiment: &Experiment,
    session: Session,
    answers: BTreeMap<String, String>,
) -> Result<SessionView, StudyError> {
    check_version(experiment, &session)?;
    for (id, answer) in &answers {
        let Some(item) = experiment.questionnaire.iter().find(|item| &item.id == id) else {
            return Err(StudyError::invalid(format!(
                "there is no questionnaire item `{id}`"
            )));
        };
        if answer.chars().count() > limits::MAX_ANSWER_CHARS {
            return Err(StudyError::invalid(format!(
                "the answer to `{id}` is longer than {} characters",
                limits::MAX_ANSWER_CHARS
            )));
        }
        if let ItemKind::Choice { options } = &item.kind
            && !answer.is_empty()
            && !options.contains(answer)
        {
            return Err(StudyError::invalid(format!(
                "`{answer}` is not one of the options of `{id}`"
            )));
        }
    }
    for item in &experiment.questionnaire {
        if item.required && answers.get(&item.id).is_none_or(|a| a.trim().is_empty()) {
            return Err(StudyError::invalid(format!(
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
        return Err(StudyError::wrong_state(
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
) -> Result<CompleteResponse, StudyError> {
    check_version(experiment, &session)?;
    if let Some(through) = events_through {
        if !(0..=limits::MAX_SEQ).contains(&through) {
            return Err(StudyError::invalid(format!(
                "`events_through` must be from 0 to {}",
                limits::MAX_SEQ
            )));
        }
        let missing = store.missing_events(&session.id, through).await?;
        if !missing.is_empty() {
            let list: Vec<String> = missing.iter().map(i64::to_string).collect();
            return Err(StudyError::wrong_state(
                "events_missing",
                format!("events not stored yet: {}", list.join(", ")),
            ));
        }
    }
    let session = match session.status {
        SessionStatus::Completed => session,
        SessionStatus::Declined => {
            return Err(StudyError::wrong_state(
                "session_closed",
                "the session is declined",
            ));
        }
        SessionStatus::Active => {
            let (_, current) = current_step(experiment, &session)?;
            if current != Step::Complete {
                return Err(StudyError::wrong_state(
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
