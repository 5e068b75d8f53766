//! What a researcher can do about one participant: exclude or include them, reset their session's
//! time limit, unlock their recruiter ID for a new entry, and write a note. Each action is
//! checked against the experiment, done, and written to the audit log; none deletes data
//! (withdrawal, which does, is `withdraw`).

use time::OffsetDateTime;

use crate::domain::SessionStatus;
use crate::experiment::Experiment;
use crate::researcher::{ResearcherError, audit};
use crate::store::research::ResearchStore;
use crate::store::{Session, Store, StoreError};

/// The longest note accepted, in characters.
pub const MAX_NOTE_CHARS: usize = 5_000;

/// What an action did, in words for the page's notice.
pub type Done = String;

/// The experiment's session `session_id`, or NotFound (also for another experiment's session).
pub async fn session_of(
    store: &dyn Store,
    experiment: &Experiment,
    session_id: &str,
) -> Result<Session, ResearcherError> {
    let not_found = || ResearcherError::NotFound(format!("no participant `{session_id}` here"));
    match store.session(session_id).await {
        Ok(session) if session.experiment == experiment.slug.as_str() => Ok(session),
        Ok(_) | Err(StoreError::NotFound) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

/// Excludes (or includes again) a participant: kept, shown and paid, but left out of the data
/// exports unless they are asked for.
pub async fn set_excluded(
    store: &dyn Store,
    research: &dyn ResearchStore,
    experiment: &Experiment,
    session_id: &str,
    excluded: bool,
    actor: &str,
    at: OffsetDateTime,
) -> Result<Done, ResearcherError> {
    let session = session_of(store, experiment, session_id).await?;
    research.set_excluded(&session.id, excluded).await?;
    let action = if excluded {
        "participant_exclude"
    } else {
        "participant_include"
    };
    audit(
        research,
        actor,
        action,
        Some(experiment.slug.as_str()),
        format!("session {}", session.id),
        at,
    )
    .await?;
    Ok(if excluded {
        "Excluded: left out of data exports unless asked for (still in bonus-csv).".into()
    } else {
        "Included again.".into()
    })
}

/// Restarts an unfinished session's time limit, so that an abandoned participant can go on where
/// they were. Nothing recorded is changed.
pub async fn reset(
    store: &dyn Store,
    research: &dyn ResearchStore,
    experiment: &Experiment,
    session_id: &str,
    actor: &str,
    at: OffsetDateTime,
) -> Result<Done, ResearcherError> {
    let session = session_of(store, experiment, session_id).await?;
    if session.status != SessionStatus::Active {
        return Err(ResearcherError::Invalid(format!(
            "this session is {}: only an unfinished session can be reset",
            session.status.as_str()
        )));
    }
    research.reset_session(&session.id, at).await?;
    audit(
        research,
        actor,
        "participant_reset",
        Some(experiment.slug.as_str()),
        format!("session {} at step {}", session.id, session.step),
        at,
    )
    .await?;
    Ok(
        "Reset: the time limit counts from now, and the participant can go on where they were."
            .into(),
    )
}

/// Lets a recruiter ID that already took part enter again (for example one refused as a repeat
/// in error). The earlier session and its data stay as they are.
pub async fn unlock(
    research: &dyn ResearchStore,
    experiment: &Experiment,
    recruiter_id: &str,
    actor: &str,
    at: OffsetDateTime,
) -> Result<Done, ResearcherError> {
    let recruiter_id = recruiter_id.trim();
    if recruiter_id.is_empty() {
        return Err(ResearcherError::Invalid(
            "name the recruiter ID to unlock".into(),
        ));
    }
    let held = research
        .unlock_recruiter_id(experiment.slug.as_str(), recruiter_id)
        .await?;
    let Some(session_id) = held else {
        return Err(ResearcherError::NotFound(format!(
            "recruiter ID `{recruiter_id}` is not locked in this experiment: it can already enter"
        )));
    };
    audit(
        research,
        actor,
        "recruiter_unlock",
        Some(experiment.slug.as_str()),
        format!("a recruiter ID of session {session_id}"),
        at,
    )
    .await?;
    Ok(format!(
        "Unlocked: this recruiter ID can enter again as a new session; session {session_id} is kept."
    ))
}

/// Adds a note to a participant.
pub async fn note(
    store: &dyn Store,
    research: &dyn ResearchStore,
    experiment: &Experiment,
    session_id: &str,
    text: &str,
    actor: &str,
    at: OffsetDateTime,
) -> Result<Done, ResearcherError> {
    let session = session_of(store, experiment, session_id).await?;
    let text = text.trim();
    if text.is_empty() {
        return Err(ResearcherError::Invalid("the note is empty".into()));
    }
    if text.chars().count() > MAX_NOTE_CHARS || text.contains('\0') {
        return Err(ResearcherError::Invalid(format!(
            "a note is at most {MAX_NOTE_CHARS} characters of text"
        )));
    }
    research.add_note(&session.id, actor, text, at).await?;
    audit(
        research,
        actor,
        "participant_note",
        Some(experiment.slug.as_str()),
        format!("session {}", session.id),
        at,
    )
    .await?;
    Ok("Note added.".into())
}
