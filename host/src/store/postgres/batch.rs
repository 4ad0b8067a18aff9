//! Writes that arrive together share a transaction.
//!
//! Under load, many webhooks are acknowledged at once, and each acknowledgement waits for its
//! event's commit, which waits for the disk. Events without a dedup key (the common case: a
//! delivery id is enough) are therefore queued to an [`InsertBatcher`], which takes what has
//! queued, up to [`BATCH`], and stores it in one transaction: one commit, and one wait for the
//! disk, for the whole batch. Up to [`IN_FLIGHT`] batches commit at once; what arrives
//! meanwhile makes the next batch larger, so batches grow with the load and a lone event is
//! stored at once by itself, as one statement. Each caller still learns its own event's
//! outcome (stored, or the duplicate of which event) only once the batch has committed.
//!
//! Should a batch fail before its commit (one event the server refuses), each of its events is
//! stored again on its own, so one bad event fails alone. A failed commit fails the batch: what
//! it held may or may not be stored, as for a single commit that fails.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use super::events;
use super::pool::Pool;
use crate::store::events::{EncodedEvent, InsertOutcome};
use crate::store::{Error, timestamp};

/// At most this many events in one transaction: a few megabytes of bodies at most.
const BATCH: usize = 64;

/// Batches committing at once: enough to keep the server's disk and the pool busy while the
/// next batch gathers.
const IN_FLIGHT: usize = 4;

/// Takes what has queued after `first`, without waiting, up to `max` in all.
pub(super) fn gather<T>(first: T, receiver: &mut mpsc::UnboundedReceiver<T>, max: usize) -> Vec<T> {
    let mut batch = vec![first];
    while batch.len() < max {
        match receiver.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
    batch
}

/// An event waiting for its batch, with its waiter.
struct Queued {
    event: EncodedEvent,
    reply: oneshot::Sender<Result<InsertOutcome, Error>>,
}

/// Stores events without a dedup key in batches.
pub(super) struct InsertBatcher {
    queue: mpsc::UnboundedSender<Queued>,
    database: Arc<str>,
}

impl InsertBatcher {
    /// Starts the batcher on `pool`; it stops when the batcher is dropped.
    pub(super) fn spawn(pool: Arc<Pool>) -> InsertBatcher {
        let (queue, mut receiver) = mpsc::unbounded_channel::<Queued>();
        let database: Arc<str> = pool.database().into();
        tokio::spawn(async move {
            let turns = Arc::new(Semaphore::new(IN_FLIGHT));
            loop {
                let Ok(turn) = Arc::clone(&turns).acquire_owned().await else {
                    return;
                };
                let Some(first) = receiver.recv().await else {
                    return;
                };
                let batch = gather(first, &mut receiver, BATCH);
                let pool = Arc::clone(&pool);
                tokio::spawn(async move {
                    store(&pool, batch).await;
                    drop(turn);
                });
            }
        });
        InsertBatcher { queue, database }
    }

    /// Stores `event` unless it is a duplicate; returns once its batch has committed.
    pub(super) async fn insert(&self, event: EncodedEvent) -> Result<InsertOutcome, Error> {
        let (reply, answer) = oneshot::channel();
        let gone = || Error::Closed {
            database: self.database.to_string(),
        };
        self.queue
            .send(Queued { event, reply })
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// Stores `batch` and answers each waiter.
async fn store(pool: &Pool, mut batch: Vec<Queued>) {
    // Every batch takes the unique index's entries in one order: two batches holding the same
    // two redeliveries cannot each wait for the other.
    batch.sort_by(|a, b| {
        let (a, b) = (&a.event.event, &b.event.event);
        (&a.source, &a.delivery_id).cmp(&(&b.source, &b.delivery_id))
    });
    let (events, replies): (Vec<EncodedEvent>, Vec<_>) = batch
        .into_iter()
        .map(|queued| (queued.event, queued.reply))
        .unzip();
    let outcomes = match <[EncodedEvent; 1]>::try_from(events) {
        Ok([event]) => vec![alone(pool, event).await],
        Err(events) => match together(pool, &events).await {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(Failure::BeforeCommit) => {
                let mut outcomes = Vec::with_capacity(events.len());
                for event in events {
                    outcomes.push(alone(pool, event).await);
                }
                outcomes
            }
            Err(Failure::Commit(error)) => {
                let reason = error.to_string();
                (0..events.len())
                    .map(|_| {
                        Err(Error::Commit {
                            database: pool.database().to_owned(),
                            reason: reason.clone(),
                        })
                    })
                    .collect()
            }
        },
    };
    for (reply, outcome) in replies.into_iter().zip(outcomes) {
        // A waiter that went away (its request was cancelled) changes nothing: the outcome
        // stands either way.
        drop(reply.send(outcome));
    }
}

/// Why a batch was not stored.
enum Failure {
    /// Nothing was committed: its events may be stored one by one.
    BeforeCommit,
    /// The commit itself failed.
    Commit(Error),
}

/// One event, in one statement of its own.
async fn alone(pool: &Pool, event: EncodedEvent) -> Result<InsertOutcome, Error> {
    let mut connection = pool.get().await?;
    events::insert(&mut connection.session(), event, timestamp::now()).await
}

/// Every event of a batch in one transaction.
async fn together(pool: &Pool, events: &[EncodedEvent]) -> Result<Vec<InsertOutcome>, Failure> {
    let failed = |error: Error| {
        tracing::debug!(%error, events = events.len(), "a batch of events failed; storing them one by one");
        Failure::BeforeCommit
    };
    let mut connection = pool.get().await.map_err(failed)?;
    let mut transaction = connection.transaction().await.map_err(failed)?;
    let now = timestamp::now();
    let mut outcomes = Vec::with_capacity(events.len());
    for event in events {
        let outcome = events::insert(&mut transaction.session(), event.clone(), now)
            .await
            .map_err(failed)?;
        outcomes.push(outcome);
    }
    transaction.commit().await.map_err(Failure::Commit)?;
    Ok(outcomes)
}
