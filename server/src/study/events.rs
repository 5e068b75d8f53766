//! Client events: stored once per sequence number, and only while the participant takes part.

use super::error::StudyError;
use super::limits;
use super::session::require_active;
use super::storable::{storable, storable_json};
use crate::api::{EventIn, EventsResponse, RefusedEventView};
use crate::clock::now;
use crate::store::group_commit::EventWriter;
use crate::store::{EventBatch, NewEvent, RefusedEvent, Session, Store};

/// Stores a batch of client events, each once per sequence number, through the group commit. Nothing is stored before
/// consent is given or once the session has ended. An event that can never be stored is refused
/// on its own and recorded as refused, so it neither holds back the rest of its batch nor
/// completion (docs/api.md, Events).
pub async fn events(
    store: &dyn Store,
    writer: &EventWriter,
    session: &Session,
    events: Vec<EventIn>,
) -> Result<EventsResponse, StudyError> {
    require_active(session)?;
    if session.consent != Some(true) {
        return Err(StudyError::wrong_state(
            "consent_required",
            "events are stored only once consent is given",
        ));
    }
    if events.is_empty() || events.len() > limits::MAX_EVENTS_PER_BATCH {
        return Err(StudyError::invalid(format!(
            "a batch has 1 to {} events",
            limits::MAX_EVENTS_PER_BATCH
        )));
    }
    let mut new_events = Vec::with_capacity(events.len());
    let mut refused = Vec::new();
    for event in events {
        if !(1..=limits::MAX_SEQ).contains(&event.seq) {
            return Err(StudyError::invalid(format!(
                "event `seq` must be from 1 to {}",
                limits::MAX_SEQ
            )));
        }
        match refusal(&event) {
            Some(reason) => refused.push(RefusedEvent {
                seq: event.seq,
                reason,
            }),
            None => new_events.push(NewEvent {
                seq: event.seq,
                kind: event.kind,
                step: event.step,
                client_ms: event.t,
                data: event.data,
            }),
        }
    }
    let at = now();
    if !refused.is_empty() {
        tracing::warn!(session = %session.id, n = refused.len(), "client events refused");
        store.refuse_events(&session.id, &refused, at).await?;
    }
    if new_events.is_empty() {
        return Ok(EventsResponse {
            stored: Vec::new(),
            duplicates: Vec::new(),
            refused: refused_views(refused),
        });
    }
    let stored = writer
        .store(EventBatch {
            session_id: session.id.clone(),
            events: new_events,
            at,
            session_ms: session.ms_since_start(at),
        })
        .await?;
    Ok(EventsResponse {
        stored: stored.stored,
        duplicates: stored.duplicates,
        refused: refused_views(refused),
    })
}

fn refused_views(refused: Vec<RefusedEvent>) -> Vec<RefusedEventView> {
    refused
        .into_iter()
        .map(|r| RefusedEventView {
            seq: r.seq,
            reason: r.reason,
        })
        .collect()
}

/// Why an event can never be stored, if it cannot.
fn refusal(event: &EventIn) -> Option<String> {
    if event.kind.is_empty() || event.kind.chars().count() > limits::MAX_EVENT_TYPE_CHARS {
        return Some(format!(
            "`type` must be 1-{} characters",
            limits::MAX_EVENT_TYPE_CHARS
        ));
    }
    if !storable(&event.kind) || !storable_json(&event.data) {
        return Some("contains U+0000, which cannot be stored".into());
    }
    let size = serde_json::to_vec(&event.data).map_or(usize::MAX, |bytes| bytes.len());
    if size > limits::MAX_EVENT_DATA_BYTES {
        return Some(format!(
            "`data` is over {} bytes",
            limits::MAX_EVENT_DATA_BYTES
        ));
    }
    None
}
