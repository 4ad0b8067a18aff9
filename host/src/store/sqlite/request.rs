//! The writes the writer thread carries out, and how each one is applied.
//!
//! Every write to the database, whatever its table, is a [`Request`] queued to the one writer
//! thread (`writer.rs`), so that it shares a transaction, and its fsync, with whatever else is
//! queued: an audit record rides along with the event insert it describes. Each request runs in
//! its own savepoint, so a request that fails (a guard, a constraint) leaves no trace and does not
//! harm its batch-mates; a request that spans several rows (adding workers, creating an event's
//! tasks) is therefore all-or-nothing.
//!
//! Results have different types per request. The writer holds them type-erased ([`Answer`],
//! [`Reply`]) until its batch has committed, then answers each waiter on its own channel.

use std::path::Path;

use rusqlite::{Connection, Transaction};
use tokio::sync::oneshot;

use super::plugin_installs;
use super::writer::in_savepoint;
use crate::store::audit;
use crate::store::audit_entry::AuditEntry;
use crate::store::error::query_error;
use crate::store::events::{self, EncodedEvent, InsertOutcome};
use crate::store::plugin_installs::PluginPublication;
use crate::store::signed_deliveries::{self, SignedDigest, SignedInsert};
use crate::store::task_lifecycle::{self, TaskChange};
use crate::store::task_record::{CreateTaskOutcome, CreatedTasks, Lease, NewTask, TaskRecord};
use crate::store::tasks;
use crate::store::{Error, EventId, EventState, TaskId, WorkerState, retention, workers};

/// The channel on which a write's result goes back to its caller.
pub(in crate::store) type ResultSender<T> = oneshot::Sender<Result<T, Error>>;

/// A write for the writer thread, with the channel its result goes back on.
pub(in crate::store) enum Request {
    /// Store an event unless it is a duplicate.
    Insert {
        event: EncodedEvent,
        reply: ResultSender<InsertOutcome>,
    },
    /// Store the events of a signed request unless its signed body was received before.
    InsertSigned {
        source: String,
        digest: SignedDigest,
        events: Vec<EncodedEvent>,
        reply: ResultSender<SignedInsert>,
    },
    /// Move an event from one state to another, guarded by its current state.
    Transition {
        id: EventId,
        from: EventState,
        to: EventState,
        reply: ResultSender<()>,
    },
    /// Replace the attrs of a `received` event.
    SetAttrs {
        id: EventId,
        attrs: serde_json::Map<String, serde_json::Value>,
        reply: ResultSender<bool>,
    },
    /// Add workers, all or none.
    AddWorkers {
        workers: Vec<(String, serde_json::Value)>,
        reply: ResultSender<()>,
    },
    /// Replace a worker's definition.
    ReplaceDefinition {
        name: String,
        definition: serde_json::Value,
        reply: ResultSender<()>,
    },
    /// Remove an offline worker.
    RemoveWorker {
        name: String,
        reply: ResultSender<()>,
    },
    /// Move a worker to `to` if it is in one of `from`, setting its error message.
    SetWorkerState {
        name: String,
        from: Vec<WorkerState>,
        to: WorkerState,
        error: String,
        /// Written in the same savepoint as the move, so one never lands without the other.
        audit: Option<AuditEntry>,
        reply: ResultSender<()>,
    },
    /// Record where a worker's container runs, and its state.
    SetWorkerRestarts {
        name: String,
        restarts: u32,
        reply: ResultSender<()>,
    },
    SetWorkerLocation {
        name: String,
        /// Container id, endpoint and owner.
        runtime: [String; 3],
        state: WorkerState,
        audit: Option<AuditEntry>,
        reply: ResultSender<()>,
    },
    /// Create a task unless its (event, worker) already has one.
    CreateTask {
        task: NewTask,
        reply: ResultSender<CreateTaskOutcome>,
    },
    /// Create an event's tasks and move the event, together or not at all.
    CreateTasksForEvent {
        event_id: EventId,
        from: EventState,
        to: EventState,
        tasks: Vec<NewTask>,
        reply: ResultSender<CreatedTasks>,
    },
    /// Claim a pending task for its sender.
    ClaimTask {
        id: TaskId,
        lease: Lease,
        reply: ResultSender<TaskRecord>,
    },
    /// Take the due write-backs for one try each.
    ClaimWriteBacks {
        lease: Lease,
        now: i64,
        limit: u32,
        reply: ResultSender<Vec<TaskRecord>>,
    },
    /// Release the leases that ended (and `reclaim`'s).
    ReleaseLeases {
        now_ms: i64,
        reclaim: Option<String>,
        reply: ResultSender<Vec<TaskRecord>>,
    },
    /// Move a task along its life, guarded by its current state.
    ChangeTask {
        id: TaskId,
        change: TaskChange,
        reply: ResultSender<()>,
    },
    /// Share a change of a plugin's install under the next revision.
    PublishPlugin {
        publication: PluginPublication,
        reply: ResultSender<i64>,
    },
    /// Append an entry to the audit log, stamped `ts` (unix milliseconds).
    Record {
        entry: AuditEntry,
        ts: i64,
        reply: ResultSender<()>,
    },
    /// Delete up to `limit` of the audit entries older than `before_ms`.
    PruneLogs {
        before_ms: i64,
        limit: u32,
        reply: ResultSender<u64>,
    },
    /// Delete up to `limit` of the finished events older than `before_s`.
    PruneEvents {
        before_s: i64,
        limit: u32,
        reply: ResultSender<u64>,
    },
    /// Delete up to `limit` of the signed requests' digests older than `before_s`.
    PruneSignedDeliveries {
        before_s: i64,
        limit: u32,
        reply: ResultSender<u64>,
    },
}

impl Request {
    /// Whether the write may commit without waiting for the disk. Such a write, if a power loss
    /// takes it (with whatever was committed after it), leaves a state the daemon already knows
    /// how to go on from: a claim or a lease renewal lost puts the task back to `pending`, and
    /// it is sent again, as after a crash during its send; tasks lost with their event's move
    /// leave the event `received`, matched again at the next start; a lost audit entry is the
    /// end of a trace. A crash of mecha itself loses none of them: they are in the operating
    /// system's hands once committed. What a sender, a worker or a forge was told is stored is
    /// always synced: events, results, write-backs, workers.
    pub(in crate::store) fn may_skip_sync(&self) -> bool {
        matches!(
            self,
            Request::ClaimTask { .. }
                | Request::ClaimWriteBacks { .. }
                | Request::ChangeTask {
                    change: TaskChange::Renew { .. },
                    ..
                }
                | Request::CreateTasksForEvent { .. }
                | Request::ReleaseLeases { .. }
                | Request::Record { .. }
        )
    }

    /// Runs the write in its own savepoint of `transaction`, at time `now` (unix seconds). The
    /// error side means the savepoint itself broke and the whole transaction must be abandoned.
    pub(in crate::store) fn apply(
        self,
        transaction: &mut Transaction<'_>,
        path: &Path,
        now: i64,
    ) -> Result<Answer, (Reply, rusqlite::Error)> {
        match self {
            Request::Insert { event, reply } => hold(transaction, path, reply, |connection| {
                events::insert(connection, path, event, now)
            }),
            Request::InsertSigned {
                source,
                digest,
                events,
                reply,
            } => hold(transaction, path, reply, |connection| {
                signed_deliveries::insert_events(connection, path, &source, digest, events, now)
            }),
            Request::Transition {
                id,
                from,
                to,
                reply,
            } => hold(transaction, path, reply, |connection| {
                move_event(connection, path, id, from, to, now)
            }),
            Request::SetAttrs { id, attrs, reply } => {
                hold(transaction, path, reply, |connection| {
                    events::set_attrs(connection, path, &id, &attrs, now)
                })
            }
            Request::AddWorkers { workers, reply } => {
                hold(transaction, path, reply, |connection| {
                    workers::add(connection, path, workers, now)
                })
            }
            Request::ReplaceDefinition {
                name,
                definition,
                reply,
            } => hold(transaction, path, reply, |connection| {
                workers::replace_definition(connection, path, &name, &definition, now)
            }),
            Request::RemoveWorker { name, reply } => hold(transaction, path, reply, |connection| {
                workers::remove(connection, path, &name)
            }),
            Request::SetWorkerState {
                name,
                from,
                to,
                error,
                audit,
                reply,
            } => hold(transaction, path, reply, |connection| {
                workers::set_state(connection, path, &name, &from, to, &error, now)?;
                record(connection, path, audit)
            }),
            Request::SetWorkerRestarts {
                name,
                restarts,
                reply,
            } => hold(transaction, path, reply, |connection| {
                workers::set_restarts(connection, path, &name, restarts, now)
            }),
            Request::SetWorkerLocation {
                name,
                runtime,
                state,
                audit,
                reply,
            } => hold(transaction, path, reply, |connection| {
                workers::set_runtime(connection, path, &name, &runtime, state, now)?;
                record(connection, path, audit)
            }),
            Request::CreateTask { task, reply } => hold(transaction, path, reply, |connection| {
                tasks::create(connection, path, task, now)
            }),
            Request::CreateTasksForEvent {
                event_id,
                from,
                to,
                tasks,
                reply,
            } => hold(transaction, path, reply, |connection| {
                move_event(connection, path, event_id.clone(), from, to, now)?;
                tasks::create_for_event(connection, path, &event_id, tasks, now)
            }),
            Request::ClaimTask { id, lease, reply } => {
                hold(transaction, path, reply, |connection| {
                    task_lifecycle::claim(connection, path, id, &lease, now)
                })
            }
            Request::ClaimWriteBacks {
                lease,
                now,
                limit,
                reply,
            } => hold(transaction, path, reply, |connection| {
                task_lifecycle::claim_write_backs(connection, path, &lease, now, limit)
            }),
            Request::ReleaseLeases {
                now_ms,
                reclaim,
                reply,
            } => hold(transaction, path, reply, |connection| {
                task_lifecycle::release(connection, path, now_ms, reclaim.as_deref(), now)
            }),
            Request::ChangeTask { id, change, reply } => {
                hold(transaction, path, reply, |connection| {
                    task_lifecycle::apply(connection, path, id, change, now)
                })
            }
            Request::PublishPlugin { publication, reply } => {
                hold(transaction, path, reply, |connection| {
                    plugin_installs::publish(connection, path, &publication, now)
                })
            }
            Request::Record { entry, ts, reply } => hold(transaction, path, reply, |connection| {
                audit::insert(connection, path, &entry, ts)
            }),
            Request::PruneLogs {
                before_ms,
                limit,
                reply,
            } => hold(transaction, path, reply, |connection| {
                retention::prune_logs(connection, path, before_ms, limit)
            }),
            Request::PruneEvents {
                before_s,
                limit,
                reply,
            } => hold(transaction, path, reply, |connection| {
                retention::prune_events(connection, path, before_s, limit, now)
            }),
            Request::PruneSignedDeliveries {
                before_s,
                limit,
                reply,
            } => hold(transaction, path, reply, |connection| {
                retention::prune_signed_deliveries(connection, path, before_s, limit, now)
            }),
        }
    }

    /// The waiter of a request that will not run (its batch could not begin, or broke before it).
    pub(in crate::store) fn into_reply(self) -> Reply {
        match self {
            Request::Insert { reply, .. } => Reply::to(reply),
            Request::InsertSigned { reply, .. } => Reply::to(reply),
            Request::CreateTask { reply, .. } => Reply::to(reply),
            Request::CreateTasksForEvent { reply, .. } => Reply::to(reply),
            Request::SetAttrs { reply, .. } => Reply::to(reply),
            Request::ClaimTask { reply, .. } => Reply::to(reply),
            Request::ClaimWriteBacks { reply, .. } => Reply::to(reply),
            Request::ReleaseLeases { reply, .. } => Reply::to(reply),
            Request::PruneLogs { reply, .. }
            | Request::PruneEvents { reply, .. }
            | Request::PruneSignedDeliveries { reply, .. } => Reply::to(reply),
            Request::Transition { reply, .. }
            | Request::AddWorkers { reply, .. }
            | Request::ReplaceDefinition { reply, .. }
            | Request::RemoveWorker { reply, .. }
            | Request::SetWorkerState { reply, .. }
            | Request::SetWorkerRestarts { reply, .. }
            | Request::SetWorkerLocation { reply, .. }
            | Request::ChangeTask { reply, .. }
            | Request::Record { reply, .. } => Reply::to(reply),
            Request::PublishPlugin { reply, .. } => Reply::to(reply),
        }
    }
}

/// Writes the audit record of a change, stamped now, if it has one.
fn record(connection: &Connection, path: &Path, audit: Option<AuditEntry>) -> Result<(), Error> {
    match audit {
        Some(entry) => audit::insert(connection, path, &entry, crate::store::timestamp::now_ms()),
        None => Ok(()),
    }
}

/// Moves an event from `from` to `to` if it is in `from` now.
fn move_event(
    connection: &Connection,
    path: &Path,
    id: EventId,
    from: EventState,
    to: EventState,
    now: i64,
) -> Result<(), Error> {
    match events::transition(connection, &id, from, to, now) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::InvalidTransition { id, from, to }),
        Err(source) => Err(query_error(path, "changing an event's state")(source)),
    }
}

/// Runs `write` in a savepoint and holds its result for `reply` until the batch is settled.
fn hold<T: Send + 'static>(
    transaction: &mut Transaction<'_>,
    path: &Path,
    reply: ResultSender<T>,
    write: impl FnOnce(&Connection) -> Result<T, Error>,
) -> Result<Answer, (Reply, rusqlite::Error)> {
    match in_savepoint(transaction, path, write) {
        Ok(result) => Ok(Answer(Box::new(Held { reply, result }))),
        Err(error) => Err((Reply::to(reply), error)),
    }
}

/// Where a request's result goes, whatever its type.
pub(in crate::store) struct Reply(Box<dyn Waiter>);

impl Reply {
    fn to<T: Send + 'static>(reply: ResultSender<T>) -> Reply {
        Reply(Box::new(reply))
    }

    /// Sends `error`. A waiter that has gone away (its request was cancelled) is ignored here and
    /// in [`Answer::send`]: the outcome stands either way.
    pub(in crate::store) fn fail(self, error: Error) {
        self.0.fail(error);
    }
}

/// A waiter for a result of some type.
trait Waiter: Send {
    fn fail(self: Box<Self>, error: Error);
}

impl<T: Send + 'static> Waiter for ResultSender<T> {
    fn fail(self: Box<Self>, error: Error) {
        drop(self.send(Err(error)));
    }
}

/// A result held back until its batch has committed.
pub(in crate::store) struct Answer(Box<dyn Settle>);

impl Answer {
    /// Sends the result: its batch has committed.
    pub(in crate::store) fn send(self) {
        self.0.send();
    }

    /// The reply channel, for when the batch failed and the result no longer holds.
    pub(in crate::store) fn into_reply(self) -> Reply {
        self.0.into_reply()
    }
}

/// A held result of some type, with its waiter.
trait Settle: Send {
    fn send(self: Box<Self>);
    fn into_reply(self: Box<Self>) -> Reply;
}

struct Held<T> {
    reply: ResultSender<T>,
    result: Result<T, Error>,
}

impl<T: Send + 'static> Settle for Held<T> {
    fn send(self: Box<Self>) {
        drop(self.reply.send(self.result));
    }

    fn into_reply(self: Box<Self>) -> Reply {
        Reply::to(self.reply)
    }
}
