//! Group commit for client events, the most frequent write by far (every edit and run of every
//! participant sends some).
//!
//! One transaction per request bounds the event endpoint by the database's commit rate (each
//! commit waits for the disk), not by the CPU. Here requests hand their events to a bounded
//! queue; a writer task takes everything waiting in it (up to [`GroupCommitConfig::max_batches`]
//! requests) and stores it in one transaction: all its rows in a few multi-row inserts, which
//! report the rows they inserted, so each request is answered as if the group's requests had been
//! stored one after another.
//! Nothing waits on a timer: while one commit is in flight the next group gathers by itself, so
//! a lone request pays one commit, as before, and a busy server pays one commit per group.
//!
//! Durability is unchanged: a request is answered only after the transaction holding its events
//! has committed (SQLite in WAL with `synchronous = FULL`, Postgres with its default
//! `synchronous_commit = on`). If an insert fails (a session withdrawn a moment before, say), the
//! group is stored again request by request, each inside a savepoint, so only the failing request
//! is answered with its error; if even that transaction fails, each request is retried alone. One
//! bad request never fails its neighbours.
//! On shutdown the HTTP server stops accepting requests and waits for those in flight, which wait
//! for their group's commit, so the queue is drained before the database closes.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::store::{EventBatch, EventsStored, Store, StoreError, StoreResult};

/// How the event writer gathers and commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitConfig {
    /// Requests that may wait in the queue; further requests wait to enter it (backpressure).
    pub queue: usize,
    /// The most requests one transaction holds.
    pub max_batches: usize,
    /// Writer tasks, each committing its own groups. SQLite has one writer at a time anyway, so
    /// one is right there; Postgres commits several groups in parallel.
    pub writers: usize,
}

impl GroupCommitConfig {
    /// The defaults for a backend (`"sqlite"` or `"postgres"`, as [`Store::backend`] names it).
    pub fn for_backend(backend: &str) -> GroupCommitConfig {
        GroupCommitConfig {
            queue: 4096,
            max_batches: 256,
            writers: if backend == "postgres" { 4 } else { 1 },
        }
    }
}

/// A request waiting for its group's commit.
struct Pending {
    batch: EventBatch,
    reply: oneshot::Sender<StoreResult<EventsStored>>,
}

/// The handle requests store their events through; cheap to clone.
#[derive(Clone)]
pub struct EventWriter {
    /// The group commit's queue; `None` when each request commits its own transaction.
    queue: Option<mpsc::Sender<Pending>>,
    store: Arc<dyn Store>,
}

impl EventWriter {
    /// Starts the writer tasks on the current Tokio runtime. They stop when every handle is
    /// dropped and the queue is empty.
    pub fn spawn(store: Arc<dyn Store>, config: GroupCommitConfig) -> EventWriter {
        let (queue, receiver) = mpsc::channel(config.queue.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..config.writers.max(1) {
            tokio::spawn(write_groups(
                Arc::clone(&store),
                receiver.clone(),
                config.max_batches.max(1),
            ));
        }
        EventWriter {
            queue: Some(queue),
            store,
        }
    }

    /// A writer without group commit: each request stores its events in a transaction of its
    /// own, as [`Store::store_events`] does (for measuring the group commit against).
    pub fn direct(store: Arc<dyn Store>) -> EventWriter {
        EventWriter { queue: None, store }
    }

    /// Stores one request's events and answers once they are committed, with the same answer
    /// [`Store::store_events`] would give.
    pub async fn store(&self, batch: EventBatch) -> StoreResult<EventsStored> {
        let Some(queue) = &self.queue else {
            return self
                .store
                .store_events(&batch.session_id, &batch.events, batch.at, batch.session_ms)
                .await;
        };
        let (reply, answer) = oneshot::channel();
        queue
            .send(Pending { batch, reply })
            .await
            .map_err(|_| StoreError::Other(anyhow::anyhow!("the event writer has stopped")))?;
        answer.await.map_err(|_| {
            StoreError::Other(anyhow::anyhow!(
                "the event writer stopped before committing"
            ))
        })?
    }
}

/// One writer: takes whatever is queued, commits it as one group, answers, repeats.
async fn write_groups(
    store: Arc<dyn Store>,
    receiver: Arc<Mutex<mpsc::Receiver<Pending>>>,
    max_batches: usize,
) {
    loop {
        let group = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            let mut group = vec![first];
            while group.len() < max_batches {
                match receiver.try_recv() {
                    Ok(pending) => group.push(pending),
                    Err(_) => break,
                }
            }
            group
        };
        commit_group(store.as_ref(), group).await;
    }
}

/// Commits one group and answers each of its requests.
///
/// Several writers (on Postgres) commit groups at the same time, and a retry racing its original
/// can put the same `(session, seq)` in two of them; each insert then waits for the other
/// transaction, and two such waits in opposite orders are a deadlock that the database breaks by
/// failing one side. Ordering every group by session makes that rare; a request that still fails
/// inside the group is retried alone once the group has committed, as is every request of a group
/// whose commit fails, so the answer a request gets is the one a transaction of its own would give.
async fn commit_group(store: &dyn Store, mut group: Vec<Pending>) {
    // A stable sort keeps a session's requests in the order they arrived.
    group.sort_by(|a, b| a.batch.session_id.cmp(&b.batch.session_id));
    let (batches, replies): (Vec<EventBatch>, Vec<_>) = group
        .into_iter()
        .map(|pending| (pending.batch, pending.reply))
        .unzip();
    let results = match store.store_event_batches(&batches).await {
        Ok(results) => results,
        Err(error) => {
            tracing::warn!(%error, requests = batches.len(), "group commit failed; retrying each request alone");
            batches
                .iter()
                .map(|_| Err(StoreError::Conflict("not committed".into())))
                .collect()
        }
    };
    for ((reply, batch), result) in replies.into_iter().zip(&batches).zip(results) {
        let result = match result {
            Ok(stored) => Ok(stored),
            Err(_) => {
                store
                    .store_events(&batch.session_id, &batch.events, batch.at, batch.session_ms)
                    .await
            }
        };
        // A requester that went away (a closed connection) needs no answer: its events are
        // stored, and its retry will be told they are duplicates.
        let _ = reply.send(result);
    }
}

/// Each batch's answer, given the `(session, seq)` keys that a group's inserts reported
/// inserted: an event is new if its key was inserted and no earlier event of the group (in this
/// batch or a batch before it) has claimed it; otherwise it is a duplicate, exactly as if the
/// batches had been stored one after another in this order.
pub(crate) fn answers_from_inserted(
    batches: &[EventBatch],
    mut inserted: HashSet<(String, i64)>,
) -> Vec<EventsStored> {
    batches
        .iter()
        .map(|batch| {
            let (mut stored, mut duplicates) = (Vec::new(), Vec::new());
            for event in &batch.events {
                if !stored.contains(&event.seq) {
                    stored.push(event.seq);
                }
                if !inserted.remove(&(batch.session_id.clone(), event.seq)) {
                    duplicates.push(event.seq);
                }
            }
            EventsStored { stored, duplicates }
        })
        .collect()
}
