//! Recovery: whatever a crash or a failed step interrupted is picked up again.
//!
//! At start: tasks `dispatched` when the daemon died may or may not have reached their worker:
//! the attempt is counted and they are retried through the retry scan (or dead-lettered when
//! that was their last attempt). New pending tasks are queued; pending retries wait for their
//! time. Events still `received` were acknowledged but never matched: they are matched now
//! (task creation is idempotent per (event, worker), so each missing task is made once).
//! Events `dispatched` whose tasks all ended are moved to their final state.
//!
//! While running, [`process_stale`] catches events whose processing failed after the
//! acknowledgement, so they do not wait for the next start.

use std::sync::Arc;
use std::time::Duration;

use super::dispatch::Dispatcher;
use super::finish::finish_event;
use super::process::Processor;
use crate::metrics::Counter;
use crate::store::{self, EventFilter, EventState, TaskState, timestamp};

/// What recovery found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    pub events: usize,
    pub tasks: usize,
}

pub async fn recover(
    processor: &Arc<Processor>,
    dispatcher: &Dispatcher,
) -> Result<Recovered, store::Error> {
    let store = &processor.store;
    let mut recovered = Recovered::default();
    for task in store.unfinished_tasks().await? {
        recovered.tasks += 1;
        match task.state {
            TaskState::Dispatched if task.attempts + 1 >= task.max_retries.max(1) => {
                let error = format!(
                    "retries exhausted after {} attempts: the daemon stopped while this task was in flight",
                    task.attempts + 1
                );
                store.fail_task(&task.id, error).await?;
                processor.metrics.increment(Counter::TasksDeadLettered);
                if let Some(event) = &task.event_id {
                    finish_event(store.as_ref(), event).await?;
                }
            }
            TaskState::Dispatched => {
                let reason = "the daemon stopped while this task was in flight".to_owned();
                store
                    .schedule_retry(&task.id, timestamp::now_ms(), reason)
                    .await?;
            }
            _ if task.next_retry_at.is_none() => {
                dispatcher.enqueue_for(task.id, &task.worker_name);
            }
            // A pending retry: the retry scan sends it when its time comes.
            _ => {}
        }
    }
    processor
        .metrics
        .add(Counter::TasksRecovered, recovered.tasks as u64);
    recovered.events = process_stale(processor, Duration::ZERO).await?;
    for event in list(processor, EventState::Dispatched).await? {
        finish_event(store.as_ref(), &event.id).await?;
    }
    Ok(recovered)
}

/// Matches events that have been `received` for longer than `age`; returns how many.
pub async fn process_stale(
    processor: &Arc<Processor>,
    age: Duration,
) -> Result<usize, store::Error> {
    let cutoff = timestamp::now() - i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
    let mut processed = 0;
    for event in list(processor, EventState::Received).await? {
        if event.created_at <= cutoff {
            processor.process(&event).await?;
            processed += 1;
        }
    }
    Ok(processed)
}

async fn list(
    processor: &Processor,
    state: EventState,
) -> Result<Vec<store::EventRecord>, store::Error> {
    processor
        .store
        .list(EventFilter {
            state: Some(state),
            source: None,
            limit: store::MAX_LIST_LIMIT,
        })
        .await
}
