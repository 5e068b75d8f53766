//! Withdrawal: deletes everything stored about one participant of an experiment, found by
//! recruiter ID or by pseudonym, and records it in the audit log (by pseudonym only, so the log
//! does not keep the ID of someone who asked to be forgotten).

use std::sync::Arc;

use time::OffsetDateTime;

use crate::experiment::Experiment;
use crate::researcher::export::{ExportOptions, Exporter};
use crate::researcher::{ResearcherError, audit};
use crate::store::Store;
use crate::store::research::ResearchStore;

/// What a withdrawal deleted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Withdrawn {
    pub pseudonyms: Vec<String>,
    pub sessions: usize,
    pub rows: u64,
}

/// Deletes the sessions whose recruiter ID or pseudonym is `who`. NotFound if there are none.
pub async fn withdraw(
    store: Arc<dyn Store>,
    research: Arc<dyn ResearchStore>,
    experiment: Arc<Experiment>,
    who: &str,
    actor: &str,
    now: OffsetDateTime,
) -> Result<Withdrawn, ResearcherError> {
    let who = who.trim();
    if who.is_empty() {
        return Err(ResearcherError::Invalid(
            "name a recruiter ID or a pseudonym".into(),
        ));
    }
    let slug = experiment.slug.to_string();
    let exporter = Exporter::new(
        store,
        research.clone(),
        experiment,
        ExportOptions::default(),
    )
    .await?;
    let mut targets: Vec<(String, String)> = Vec::new();
    for participant in exporter.participants().await? {
        let by_id = participant.session.recruiter_id.as_deref() == Some(who);
        if by_id || participant.pseudonym == who {
            targets.push((
                participant.session.id.clone(),
                participant.pseudonym.clone(),
            ));
        }
    }
    if targets.is_empty() {
        return Err(ResearcherError::NotFound(format!(
            "no participant of `{slug}` has the recruiter ID or pseudonym `{who}`"
        )));
    }
    let mut withdrawn = Withdrawn {
        pseudonyms: Vec::new(),
        sessions: 0,
        rows: 0,
    };
    for (session_id, pseudonym) in targets {
        withdrawn.rows += research.withdraw_session(&session_id).await?;
        withdrawn.sessions += 1;
        if !withdrawn.pseudonyms.contains(&pseudonym) {
            withdrawn.pseudonyms.push(pseudonym);
        }
    }
    audit(
        research.as_ref(),
        actor,
        "withdraw",
        Some(&slug),
        format!(
            "{}: {} session(s), {} rows deleted",
            withdrawn.pseudonyms.join(", "),
            withdrawn.sessions,
            withdrawn.rows
        ),
        now,
    )
    .await?;
    Ok(withdrawn)
}
