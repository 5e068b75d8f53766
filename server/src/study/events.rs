//! Client events: stored once per sequence number.

use super::error::StudyError;
use super::limits;
use crate::api::{EventIn, EventsResponse};
use crate::clock::now;
use crate::store::{NewEvent, Session, Store};

/// Stores a batch of client events, each once per sequence number.
pub async fn events(
    store: &dyn Store,
    session: &Session,
    events: Vec<EventIn>,
) -> Result<EventsResponse, StudyError> {
    if events.is_empty() || events.len() > limits::MAX_EVENTS_PER_BATCH {
        return Err(StudyError::invalid(format!(
            "a batch has 1 to {} events",
            limits::MAX_EVENTS_PER_BATCH
        )));
    }
    let mut new_events = Vec::with_capacity(events.len());
    for event in events {
        if !(1..=limits::MAX_SEQ).contains(&event.seq) {
            return Err(StudyError::invalid(format!(
                "event `seq` must be from 1 to {}",
                limits::MAX_SEQ
            )));
        }
        if event.kind.is_empty() || event.kind.chars().count() > limits::MAX_EVENT_TYPE_CHARS {
            return Err(StudyError::invalid(format!(
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
