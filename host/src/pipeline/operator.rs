//! What an operator asks for by hand, through the API or the CLI: a task for a named worker (or
//! the next online one), a replay of a stored event, a retry of a failed task.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::process::Processor;
use crate::store::{
    self, AuditEntry, CreateTaskOutcome, EventId, EventRecord, EventState, InsertOutcome, NewEvent,
    NewTask, Store, TaskId, TaskRecord, TaskState, WriteBackState,
};
use crate::trace::Tracer;
use crate::worker::registry::online;

/// Why an operator's request was refused; each says what to do instead.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("prompt is required")]
    EmptyPrompt,
    #[error("unknown worker: {0}; `mecha worker ls` lists them")]
    UnknownWorker(String),
    #[error("no online workers; start one with `mecha worker start NAME`")]
    NoOnlineWorker,
    #[error("event not found")]
    EventNotFound,
    #[error("task not found")]
    TaskNotFound,
    #[error(
        "task {id} is {state}; only failed tasks, and completed tasks whose write-back failed, can be retried"
    )]
    NotFailed { id: TaskId, state: TaskState },
    /// The store reported the new task or event as a duplicate, which a fresh id never is.
    #[error("the new record was reported as a duplicate; try again")]
    NotCreated,
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Picks workers in turn for tasks that name none.
#[derive(Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

/// Creates a task for `worker`, or for the next online worker in name order, and queues it.
pub async fn submit_task(
    processor: &Processor,
    round_robin: &RoundRobin,
    prompt: String,
    worker: Option<String>,
    context: serde_json::Value,
) -> Result<TaskRecord, OperatorError> {
    if prompt.trim().is_empty() {
        return Err(OperatorError::EmptyPrompt);
    }
    let worker = match worker.filter(|name| !name.is_empty()) {
        Some(name) => processor
            .workers
            .get(&name)
            .await?
            .ok_or(OperatorError::UnknownWorker(name))?,
        None => {
            let all = processor.workers.all().await?;
            let candidates = online(&all);
            if candidates.is_empty() {
                return Err(OperatorError::NoOnlineWorker);
            }
            let turn = round_robin.next.fetch_add(1, Ordering::Relaxed);
            candidates[turn % candidates.len()].clone()
        }
    };
    let trace = EventId::generate()?.to_string();
    let outcome = processor
        .store
        .create_task(NewTask {
            worker_name: worker.name().to_owned(),
            prompt,
            context,
            event_id: None,
            trace_id: trace.clone(),
            max_retries: worker.def.max_retries,
        })
        .await?;
    let CreateTaskOutcome::Created(task) = outcome else {
        return Err(OperatorError::NotCreated);
    };
    processor.audit(
        AuditEntry::new(&trace, "task.created")
            .task(task.id.as_str())
            .worker(worker.name())
            .detail(serde_json::json!({ "via": "api" })),
    );
    processor
        .dispatcher
        .enqueue_for(task.id.clone(), worker.name());
    Ok(task)
}

/// Stores a copy of event `id` as a new event and processes it; the audit trail links both.
pub async fn replay_event(
    processor: &Arc<Processor>,
    id: &EventId,
) -> Result<EventRecord, OperatorError> {
    let original = processor
        .store
        .get(id)
        .await?
        .ok_or(OperatorError::EventNotFound)?;
    let copy = NewEvent {
        source: original.source.clone(),
        event_type: original.event_type.clone(),
        delivery_id: None,
        dedup_key: None,
        actor: original.actor.clone(),
        subject: original.subject.clone(),
        attrs: original.attrs.clone(),
        raw: original.raw.clone(),
    };
    let InsertOutcome::Inserted(replayed) = processor.store.insert(copy).await? else {
        return Err(OperatorError::NotCreated);
    };
    let original_trace = original.id.to_string();
    let replay_trace = replayed.id.to_string();
    processor.audit(
        AuditEntry::new(&original_trace, "event.replayed")
            .event(&original_trace)
            .detail(serde_json::json!({ "replayed_as": replay_trace })),
    );
    processor.audit(
        AuditEntry::new(&replay_trace, "event.replayed")
            .event(&replay_trace)
            .detail(serde_json::json!({ "replay_of": original_trace })),
    );
    processor.spawn(vec![replayed.clone()]);
    Ok(replayed)
}

/// Makes a failed task pending again, with a fresh retry budget, and queues it; or, for a
/// completed task whose write-back failed, makes the write-back due again.
pub async fn retry_task(processor: &Processor, id: &TaskId) -> Result<TaskRecord, OperatorError> {
    let task = requeue(processor.store.as_ref(), &processor.tracer, id, "api").await?;
    if task.state == TaskState::Pending {
        processor
            .dispatcher
            .enqueue_for(id.clone(), &task.worker_name);
    }
    Ok(task)
}

/// Makes a failed task pending again (due at once, so a running daemon's retry scan sends it)
/// and reopens its event, which then finishes again with the task. `via` names who asked, for
/// the audit trail, and `tracer` gets the stage. Used directly by `mecha tasks retry`, which
/// needs no running daemon (and exports no span).
pub async fn requeue(
    store: &dyn Store,
    tracer: &Tracer,
    id: &TaskId,
    via: &str,
) -> Result<TaskRecord, OperatorError> {
    let task = store
        .get_task(id)
        .await?
        .ok_or(OperatorError::TaskNotFound)?;
    let not_failed = |state| OperatorError::NotFailed {
        id: id.clone(),
        state,
    };
    if task.state == TaskState::Completed && task.write_back == WriteBackState::Failed {
        return requeue_write_back(store, tracer, &task, via).await;
    }
    if task.state != TaskState::Failed {
        return Err(not_failed(task.state));
    }
    match store.requeue_failed(id).await {
        Ok(()) => {}
        // Another retry won the race.
        Err(store::Error::InvalidTaskTransition { .. }) => {
            return Err(not_failed(TaskState::Pending));
        }
        Err(err) => return Err(err.into()),
    }
    if let Some(event) = &task.event_id {
        for finished in [EventState::Failed, EventState::Completed] {
            match store
                .transition(event, finished, EventState::Dispatched)
                .await
            {
                Ok(()) => break,
                Err(store::Error::InvalidTransition { .. }) => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
    tracer.audit(
        store,
        AuditEntry::new(&task.trace_id, "task.retry")
            .task(id)
            .worker(&task.worker_name)
            .detail(serde_json::json!({ "via": via })),
    );
    store.get_task(id).await?.ok_or(OperatorError::TaskNotFound)
}

/// Makes the failed write-back of completed `task` due again with a fresh budget; the
/// write-back loop of a running daemon picks it up.
async fn requeue_write_back(
    store: &dyn Store,
    tracer: &Tracer,
    task: &TaskRecord,
    via: &str,
) -> Result<TaskRecord, OperatorError> {
    match store.requeue_write_back(&task.id).await {
        Ok(()) => {}
        // Another retry won the race.
        Err(store::Error::InvalidTaskTransition { .. }) => {
            return Err(OperatorError::NotFailed {
                id: task.id.clone(),
                state: task.state,
            });
        }
        Err(err) => return Err(err.into()),
    }
    tracer.audit(
        store,
        AuditEntry::new(&task.trace_id, "writeback.retry")
            .task(&task.id)
            .worker(&task.worker_name)
            .detail(serde_json::json!({ "via": via })),
    );
    store
        .get_task(&task.id)
        .await?
        .ok_or(OperatorError::TaskNotFound)
}
