//! Moving through the timeline: consent, text screens, skips, the questionnaire and completion.

use std::collections::BTreeMap;

use super::error::StudyError;
use super::limits;
use super::programs::task_step;
use super::session::{
    check_version, closed, current_step, require_active, serve, served_trial, view, wrong_step,
};
use super::storable::require_storable;
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
    let session = match store.advance(&session.id, step, now()).await {
        Ok(session) => session,
        Err(StoreError::Conflict(message)) => {
            // A simultaneous continue moved on first: answer as a sequential retry would.
            let session = store.session(&session.id).await?;
            if session.step > step {
                return view(store, experiment, &session).await;
            }
            return Err(StoreError::Conflict(message).into());
        }
        Err(e) => return Err(e.into()),
    };
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
    if session.status != SessionStatus::Active {
        return answer_repeated_skip(store, experiment, &session, step).await;
    }
    let (phase, index, task) = task_step(experiment, &session, step)?;
    if phase != Phase::Tasks {
        return Err(StudyError::wrong_state(
            "skip_not_allowed",
            format!("{} tasks cannot be skipped", phase.as_str()),
        ));
    }
    if step != session.step {
        return answer_repeated_skip(store, experiment, &session, step).await;
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
    let finished = store
        .finish_trial(FinishTrial {
            session_id: session.id.clone(),
            step,
            outcome: TrialOutcome::Skipped,
            program: None,
            at,
            ms: session.ms_since_start(at),
        })
        .await;
    let session = match finished {
        Ok(session) => session,
        Err(StoreError::Conflict(_)) => {
            let session = store.session(&session.id).await?;
            return answer_repeated_skip(store, experiment, &session, step).await;
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(session = %session.id, step, "task skipped");
    view(store, experiment, &session).await
}

/// Answers a skip that did not end the trial itself (the session was elsewhere, or a
/// simultaneous request got there first): a retry of a skip that took effect gets the current
/// view; anything else is refused by the session's state.
async fn answer_repeated_skip(
    store: &dyn Store,
    experiment: &Experiment,
    session: &Session,
    step: i64,
) -> Result<SessionView, StudyError> {
    let skipped = served_trial(store, session, step)
        .await?
        .is_some_and(|trial| trial.outcome == Some(TrialOutcome::Skipped));
    if skipped {
        return view(store, experiment, session).await;
    }
    require_active(session)?;
    Err(wrong_step(session, step))
}

/// Stores the questionnaire answers, checked against the items, and moves on.
pub async fn questionnaire(
    store: &dyn Store,
    experiment: &Experiment,
    session: Session,
    answers: BTreeMap<String, String>,
) -> Result<SessionView, StudyError> {
    check_version(experiment, &session)?;
    let (timeline, current) = current_step(experiment, &session)?;
    let questionnaire_step = timeline.iter().position(|s| *s == Step::Questionnaire);
    let already = questionnaire_step.is_some_and(|q| (q as i64) < session.step);
    if session.status != SessionStatus::Active {
        if already && answered_before(store, &session, &answers).await? {
            return view(store, experiment, &session).await;
        }
        return Err(closed(&session));
    }
    for (id, answer) in &answers {
        require_storable("a questionnaire item", id)?;
        require_storable(&format!("the answer to `{id}`"), answer)?;
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
    if current != Step::Questionnaire {
        if already && answered_before(store, &session, &answers).await? {
            return view(store, experiment, &session).await;
        }
        return Err(StudyError::wrong_state(
            "not_questionnaire",
            "the session is not at the questionnaire",
        ));
    }
    let list: Vec<(String, String)> = answers.clone().into_iter().collect();
    let saved_at = session.step;
    let saved = store
        .save_answers(&session.id, session.step, &list, now())
        .await;
    let session = match saved {
        Ok(session) => session,
        Err(StoreError::Conflict(message)) => {
            // A simultaneous request saved first: answer as a sequential retry would.
            let session = store.session(&session.id).await?;
            if session.step > saved_at && answered_before(store, &session, &answers).await? {
                return view(store, experiment, &session).await;
            }
            return Err(StoreError::Conflict(message).into());
        }
        Err(e) => return Err(e.into()),
    };
    view(store, experiment, &session).await
}

/// Whether exactly these answers are stored: a retry.
async fn answered_before(
    store: &dyn Store,
    session: &Session,
    answers: &BTreeMap<String, String>,
) -> Result<bool, StudyError> {
    let stored: BTreeMap<String, String> = store
        .answers(&session.id)
        .await?
        .into_iter()
        .map(|a| (a.item, a.answer))
        .collect();
    Ok(&stored == answers)
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
    let session = match session.status {
        // Completing again returns the same; events sent after completion are refused, so the
        // check below would never pass again.
        SessionStatus::Completed => session,
        SessionStatus::Declined => return Err(closed(&session)),
        SessionStatus::Active => {
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
            let (_, current) = current_step(experiment, &session)?;
            if current != Step::Complete {
                return Err(StudyError::wrong_state(
                    "not_finished",
                    "the study is not finished yet; GET /api/v1/session shows what is left",
                ));
            }
            let completed = store
                .complete_session(
                    &session.id,
                    session.step,
                    &experiment.completion.code,
                    now(),
                )
                .await;
            match completed {
                Ok(session) => {
                    tracing::info!(session = %session.id, "session completed");
                    session
                }
                Err(StoreError::Conflict(message)) => {
                    // A simultaneous request completed it first: answer as a retry would.
                    let session = store.session(&session.id).await?;
                    if session.status != SessionStatus::Completed {
                        return Err(StoreError::Conflict(message).into());
                    }
                    session
                }
                Err(e) => return Err(e.into()),
            }
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
