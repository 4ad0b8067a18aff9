//! Durable storage: events, workers, tasks and the audit log, on SQLite or PostgreSQL.
//!
//! This module owns every byte mecha keeps: the schemas and their migrations, the SQL, and the
//! promise behind a webhook's 202, namely that once [`EventStore::insert`] returns, the event is
//! committed. It knows nothing of plugins, rules or HTTP: the pipeline, the worker registry, the
//! API and the CLI call the traits below ([`EventStore`], [`WorkerStore`], [`TaskStore`],
//! [`AuditLog`], [`Describe`], together [`Store`]) and never hold SQL themselves. Which database
//! a daemon uses is [`Database`], from `database_url`.
//!
//! The traits are the seam between two backends:
//! - [`SqliteStore`], the embedded default, on one file, with a single group-commit writer
//!   thread (`sqlite/writer.rs`) through which every write of every table goes, and pooled read
//!   connections. Its SQL is in the file of each table (`events.rs`, `workers.rs`, `tasks.rs`,
//!   `task_lifecycle.rs`, `audit.rs`, `retention.rs`, `signed_deliveries.rs`), beside the row
//!   types both backends share;
//! - [`PostgresStore`] (`postgres/`), for several daemons sharing one database: a transaction
//!   per write on a small pool, with advisory locks where SQLite's single writer was the guard.
//!
//! Errors name what failed and on which database, never which client reported it. The
//! conformance suite (`conformance.rs`) runs every check of the contract on both backends.
//! Methods return boxed futures ([`StoreFuture`]) so that a store is shared as `Arc<dyn Store>`.
//!
//! ```no_run
//! # async fn example() -> Result<(), mecha::store::Error> {
//! use std::sync::Arc;
//! use mecha::store::{Durability, EventStore, InsertOutcome, NewEvent, SqliteStore};
//!
//! let store: Arc<dyn EventStore> = Arc::new(SqliteStore::open(
//!     std::path::Path::new("/var/lib/mecha/mecha.db"),
//!     Durability::Full,
//! )?);
//! let event = NewEvent {
//!     source: "github".into(),
//!     event_type: "pull_request".into(),
//!     delivery_id: Some("72d3162e-cc78-11e3-81ab-4c9367dc0958".into()),
//!     ..NewEvent::default()
//! };
//! match store.insert(event).await? {
//!     InsertOutcome::Inserted(record) => println!("stored {}", record.id),
//!     InsertOutcome::Duplicate { existing } => println!("already have it as {existing}"),
//! }
//! store.close().await?;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;

mod audit;
mod audit_entry;
mod body;
#[cfg(test)]
mod conformance;
mod error;
mod event_id;
mod event_state;
mod events;
mod location;
mod plugin_installs;
mod postgres;
mod retention;
mod signed_deliveries;
mod sqlite;
mod stored_text;
mod task_id;
mod task_lifecycle;
mod task_record;
mod task_state;
mod tasks;
pub mod timestamp;
mod worker_state;
mod workers;
mod write_back_state;

pub use audit::{DEFAULT_LOG_LIMIT, LogFilter};
pub use audit_entry::{AuditEntry, AuditOutcome, AuditRecord};
pub use error::{Cause, Error};
pub use event_id::EventId;
pub use event_state::EventState;
pub use events::{
    DEFAULT_LIST_LIMIT, EventFilter, EventRecord, EventSummary, InsertOutcome, MAX_LIST_LIMIT,
    NewEvent,
};
pub use location::Database;
pub use plugin_installs::{PluginInstall, PluginInstallStore, PluginPublication};
pub use postgres::PostgresStore;
pub use retention::DEDUP_RETENTION_SECONDS;
pub use signed_deliveries::{SignedDigest, SignedInsert};
pub use sqlite::writer::WriterStats;
pub use sqlite::{Durability, SqliteStore};
pub use task_id::TaskId;
pub use task_lifecycle::{TaskChange, WriteBackChange};
pub use task_record::{
    CreateTaskOutcome, CreatedTasks, DEFAULT_MAX_RETRIES, DEFAULT_TASK_LIMIT, Lease, NewTask,
    TaskFilter, TaskRecord,
};
pub use task_state::TaskState;
pub use worker_state::WorkerState;
pub use workers::{WorkerLocation, WorkerRow};
pub use write_back_state::WriteBackState;

/// The future every store method returns: boxed and `Send`, so that the trait stays
/// object-safe and usable across tokio tasks.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// Storage of events, whatever the database behind it.
pub trait EventStore: Send + Sync + 'static {
    /// Stores a new event in state `received`, or reports the earlier event it duplicates (same
    /// source and delivery id, or a dedup key held by an unfinished event). When this returns
    /// `Ok`, the outcome is durable.
    fn insert(&self, event: NewEvent) -> StoreFuture<'_, InsertOutcome>;

    /// Stores the events of one request whose signed message (`digest`) the source instance
    /// `source` verified, each as [`EventStore::insert`] would, unless that instance received
    /// the same signed message before: then nothing is stored and the answer names the first
    /// event of the earlier request. A signature covers the body, not the delivery id, so this
    /// is what stops a captured request from being replayed under new delivery ids. The check,
    /// the events and the digest are committed together.
    fn insert_signed(
        &self,
        source: &str,
        digest: SignedDigest,
        events: Vec<NewEvent>,
    ) -> StoreFuture<'_, SignedInsert>;

    /// The event with this id, if it is stored.
    fn get(&self, id: &EventId) -> StoreFuture<'_, Option<EventRecord>>;

    /// Events matching `filter`, newest first.
    fn list(&self, filter: EventFilter) -> StoreFuture<'_, Vec<EventRecord>>;

    /// [`EventStore::list`] without the bodies, which are never read: what a page of events
    /// costs does not grow with the size of the events.
    fn list_summaries(&self, filter: EventFilter) -> StoreFuture<'_, Vec<EventSummary>>;

    /// Moves an event from `from` to `to`, only if it is in `from` now; otherwise fails with
    /// [`Error::InvalidTransition`]. Guards against two tasks moving the same event at once.
    fn transition(&self, id: &EventId, from: EventState, to: EventState) -> StoreFuture<'_, ()>;

    /// Replaces the attrs of an event that is still `received` (hydration adds to them before
    /// its tasks are created); false when the event is in another state or gone.
    fn set_attrs(
        &self,
        id: &EventId,
        attrs: serde_json::Map<String, serde_json::Value>,
    ) -> StoreFuture<'_, bool>;

    /// Stops accepting writes, finishes the writes already queued, and releases the writer.
    /// Reads keep working. Called once on graceful shutdown; calling it again does nothing.
    fn close(&self) -> StoreFuture<'_, ()>;
}

/// Storage of the worker registry: definitions and runtime state.
pub trait WorkerStore: Send + Sync + 'static {
    /// Adds `workers` (name, definition), all offline, all or none: if any name is taken (by a
    /// stored worker or twice in `workers`), fails with [`Error::WorkerExists`] and adds nothing.
    fn add_workers(&self, workers: Vec<(String, serde_json::Value)>) -> StoreFuture<'_, ()>;

    /// Replaces the definition of worker `name`, leaving its state alone; fails with
    /// [`Error::WorkerNotFound`] if there is none.
    fn replace_definition(&self, name: &str, definition: serde_json::Value) -> StoreFuture<'_, ()>;

    /// The worker named `name`, if stored.
    fn get_worker(&self, name: &str) -> StoreFuture<'_, Option<WorkerRow>>;

    /// Every worker, by name.
    fn list_workers(&self) -> StoreFuture<'_, Vec<WorkerRow>>;

    /// Removes worker `name` if it is offline; otherwise fails with [`Error::WorkerNotOffline`]
    /// (or [`Error::WorkerNotFound`]).
    fn remove_worker(&self, name: &str) -> StoreFuture<'_, ()>;

    /// Moves worker `name` to `to` if it is in one of `from` (pass [`WorkerState::ALL`] for any),
    /// and sets its error message to `error` (`None` clears it), writing `audit` in the same
    /// transaction. Fails with [`Error::InvalidWorkerTransition`] when the worker is in another
    /// state, or [`Error::WorkerNotFound`]. Moves are made by `worker::state`, which builds the
    /// audit record.
    fn set_worker_state(
        &self,
        name: &str,
        from: &[WorkerState],
        to: WorkerState,
        error: Option<String>,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, ()>;

    /// Records that worker `name`'s container was restarted `restarts` times in a row (0: it was
    /// seen healthy, or an operator started it). Kept across daemon restarts, so that a
    /// crash-looping container's restart budget is not renewed by restarting mecha.
    fn set_worker_restarts(&self, name: &str, restarts: u32) -> StoreFuture<'_, ()>;

    /// Records the container and endpoint of worker `name`, and the daemon that runs them
    /// (`owner`, empty for none), and moves it to `state`, whatever its state, writing `audit`
    /// in the same transaction.
    fn set_worker_runtime(
        &self,
        name: &str,
        runtime: WorkerLocation<'_>,
        state: WorkerState,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, ()>;
}

/// Storage of tasks. Every move of a task is guarded by its current state and fails with
/// [`Error::InvalidTaskTransition`] when the task is missing or elsewhere.
pub trait TaskStore: Send + Sync + 'static {
    /// Creates a pending task, or reports the task its worker already has for its event.
    fn create_task(&self, task: NewTask) -> StoreFuture<'_, CreateTaskOutcome>;

    /// In one transaction, moves event `event_id` from `from` to `to` and creates `tasks` for it
    /// (their `event_id` is set to it), reporting the tasks created and, for a worker that already
    /// has a task for the event, that task (nothing new is made for it). If the event is not in `from` ([`Error::InvalidTransition`]) or any
    /// task cannot be stored, nothing is written: an event is never moved without its tasks, nor
    /// tasks made without the event moving.
    fn create_tasks_for_event(
        &self,
        event_id: &EventId,
        from: EventState,
        to: EventState,
        tasks: Vec<NewTask>,
    ) -> StoreFuture<'_, CreatedTasks>;

    /// The task with this id, if stored.
    fn get_task(&self, id: &TaskId) -> StoreFuture<'_, Option<TaskRecord>>;

    /// Tasks matching `filter`, newest first.
    fn list_tasks(&self, filter: TaskFilter) -> StoreFuture<'_, Vec<TaskRecord>>;

    /// How many tasks are in each state (states with none are absent), counted in the state
    /// index: what the dashboard's overview shows without reading the tasks.
    fn count_tasks(&self) -> StoreFuture<'_, Vec<(TaskState, u64)>>;

    /// The state and write-back state of every task of event `event_id`: what deciding whether
    /// the event is finished takes, read after each of its tasks ends, without the tasks'
    /// prompts and results (an event fanned out to fifty workers has fifty of each).
    fn task_states(&self, event_id: &EventId) -> StoreFuture<'_, Vec<(TaskState, WriteBackState)>>;

    /// `pending` → `dispatched` under `lease`, if the task is pending and due: the task as
    /// claimed. No two claims of one task both succeed; the loser gets
    /// [`Error::InvalidTaskTransition`]. Claim before sending, so no other dispatcher sends it.
    fn claim_task(&self, id: &TaskId, lease: Lease) -> StoreFuture<'_, TaskRecord>;

    /// Applies `change` to task `id` with one guarded update, if the task is in a state the
    /// change starts from; otherwise fails with [`Error::InvalidTaskTransition`]. The moves
    /// below are made of it; a backend implements this one.
    fn change_task(&self, id: &TaskId, change: TaskChange) -> StoreFuture<'_, ()>;

    /// Pushes the lease of a dispatched task to `lease.until`; refused unless `lease.owner`
    /// holds it (it ran out and was released, or another daemon took the task since).
    fn renew_lease(&self, id: &TaskId, lease: Lease) -> StoreFuture<'_, ()> {
        self.change_task(id, TaskChange::Renew { lease })
    }

    /// Releases every dispatched task whose lease ended before `now_ms`, or that `reclaim`
    /// holds (a daemon's own leases from before its restart), or that has no lease: each counts
    /// an attempt and is due again at once, or is failed when that was its last attempt. The
    /// tasks as released. The write-backs `reclaim` had claimed are due again at once too.
    fn release_leases(
        &self,
        now_ms: i64,
        reclaim: Option<String>,
    ) -> StoreFuture<'_, Vec<TaskRecord>>;

    /// `dispatched` → `completed` with the worker's answer, stamping `completed_at`; only by
    /// the lease's `holder`.
    fn complete_task(&self, id: &TaskId, holder: &str, result: String) -> StoreFuture<'_, ()> {
        let holder = holder.to_owned();
        self.change_task(id, TaskChange::Complete { result, holder })
    }

    /// `dispatched` → `failed` by the lease's `holder`, or `pending` → `failed` when `holder` is
    /// `None` (the task could not be sent at all), with the reason (redacted by the caller).
    fn fail_task(&self, id: &TaskId, holder: Option<&str>, error: String) -> StoreFuture<'_, ()> {
        let holder = holder.map(str::to_owned);
        self.change_task(id, TaskChange::Fail { error, holder })
    }

    /// `dispatched` → `pending` by the lease's `holder` after a failed try: one more attempt
    /// counted, the error kept, and not sent again before `next_retry_at` (unix milliseconds).
    fn schedule_retry(
        &self,
        id: &TaskId,
        holder: &str,
        next_retry_at: i64,
        error: String,
    ) -> StoreFuture<'_, ()> {
        let holder = holder.to_owned();
        self.change_task(
            id,
            TaskChange::Retry {
                next_retry_at,
                error,
                counted: true,
                holder,
            },
        )
    }

    /// `dispatched` → `pending` by the lease's `holder`, not before `next_retry_at`, without
    /// using up an attempt: the worker was alive but busy and said when to come back
    /// (back-pressure, not failure).
    fn defer_task(
        &self,
        id: &TaskId,
        holder: &str,
        next_retry_at: i64,
        reason: String,
    ) -> StoreFuture<'_, ()> {
        let holder = holder.to_owned();
        self.change_task(
            id,
            TaskChange::Retry {
                next_retry_at,
                error: reason,
                counted: false,
                holder,
            },
        )
    }

    /// `failed` → `pending` with a fresh budget (attempts 0, no error), due at once: an
    /// operator's retry, which the retry scan of a running daemon picks up.
    fn requeue_failed(&self, id: &TaskId) -> StoreFuture<'_, ()> {
        self.change_task(id, TaskChange::Requeue)
    }

    /// Up to `limit` (clamped to `1..=`[`MAX_LIST_LIMIT`]) pending tasks with a retry time at or
    /// before `now` (unix milliseconds), earliest first. New tasks (no retry time) are not
    /// included: they are queued when created.
    fn due_tasks(&self, now: i64, limit: u32) -> StoreFuture<'_, Vec<TaskRecord>>;

    /// Every pending task, oldest first, for the queues of a starting daemon.
    fn pending_tasks(&self) -> StoreFuture<'_, Vec<TaskRecord>>;

    /// Up to `limit` (clamped to `1..=`[`MAX_LIST_LIMIT`]) pending tasks that were never tried
    /// (no retry time) and were created before `created_before` (unix seconds), oldest first.
    /// A daemon queues the tasks it makes at once, so these are mostly tasks whose daemon died
    /// before sending them: any daemon sharing the database takes them over (its claim decides
    /// which, if several do).
    fn unclaimed_tasks(&self, created_before: i64, limit: u32) -> StoreFuture<'_, Vec<TaskRecord>>;

    /// A value that changes when another daemon's write made tasks or write-backs due at once
    /// (an operator's requeue, leases released), so that the due scans look then instead of
    /// at their next tick; `None` where the database has no such signal (SQLite, whose one
    /// daemon queues what it makes due itself, and whose scans find what the CLI does).
    fn task_notices(&self) -> Option<tokio::sync::watch::Receiver<u64>>;

    /// Whether `worker_name` has completed a task for event `event_id`.
    fn completed_task_exists(&self, event_id: &EventId, worker_name: &str)
    -> StoreFuture<'_, bool>;

    /// Takes up to `limit` (clamped to `1..=`[`MAX_LIST_LIMIT`]) pending write-backs due at
    /// `now` (unix milliseconds), earliest first, for one try each under `lease`: their due
    /// time moves to `lease.until`, so no other daemon's scan takes them meanwhile, and a try
    /// cut short by a crash is due again then (or at once when its daemon restarts:
    /// [`TaskStore::release_leases`] with `reclaim`). The responder's marker keeps a repeated
    /// try from posting twice. Recording the outcome ends the lease. The tasks as claimed: new
    /// ones, retries whose time has come, and those a crash interrupted.
    fn claim_write_backs(
        &self,
        lease: Lease,
        now: i64,
        limit: u32,
    ) -> StoreFuture<'_, Vec<TaskRecord>>;

    /// Records how the pending write-back of completed task `id` went; see [`WriteBack`].
    fn record_write_back(&self, id: &TaskId, outcome: WriteBack) -> StoreFuture<'_, ()> {
        self.change_task(id, TaskChange::WriteBack(WriteBackChange::Outcome(outcome)))
    }

    /// `failed` → `pending` for the write-back of task `id`, with a fresh budget, due at once:
    /// an operator's retry.
    fn requeue_write_back(&self, id: &TaskId) -> StoreFuture<'_, ()> {
        self.change_task(id, TaskChange::WriteBack(WriteBackChange::Requeue))
    }
}

/// What became of one try at writing a task's result back. Each carries the policies'
/// decision (JSON), stored with the task.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteBack {
    /// Written (or there was nothing to write): `pending` → `done`.
    Done { decision: String },
    /// Failed in a way a later try may fix: stays `pending`, one more attempt counted, not
    /// tried again before `next_at` (unix milliseconds).
    Retry {
        decision: String,
        next_at: i64,
        error: String,
    },
    /// Failed for good (or out of retries): `pending` → `failed`.
    Failed { decision: String, error: String },
}

/// The audit trail, and the retention of old rows.
pub trait AuditLog: Send + Sync + 'static {
    /// Appends `entry`, stamped now, in the next group commit. The entry is queued when this
    /// is called, so entries keep the order of the stages they describe; the future says when
    /// it is on disk. A lost audit entry must not fail the stage it describes.
    fn record(&self, entry: AuditEntry) -> StoreFuture<'_, ()>;

    /// Queues `entry` without waiting for its commit: the pipeline's stages do not pay an
    /// fsync per audit record, and the record still commits with the stage's next write (or
    /// is dropped, with a warning, if the write queue is full or the store is closed).
    fn record_detached(&self, entry: AuditEntry) {
        drop(self.record(entry));
    }

    /// Entries matching `filter`: newest first, or oldest first after `filter.after_id`.
    fn query_logs(&self, filter: LogFilter) -> StoreFuture<'_, Vec<AuditRecord>>;

    /// Deletes the entries stamped before `before_ms` (unix milliseconds); returns how many.
    fn prune_logs(&self, before_ms: i64) -> StoreFuture<'_, u64>;

    /// Deletes the finished (completed, failed, skipped) events last changed before `before_s`
    /// (unix seconds), except those whose delivery id was received less than
    /// [`DEDUP_RETENTION_SECONDS`] ago: a provider's redelivery must still be recognised as a
    /// duplicate. Returns how many went.
    fn prune_events(&self, before_s: i64) -> StoreFuture<'_, u64>;

    /// Deletes the digests of signed requests recorded before `before_s` (unix seconds), except
    /// those younger than [`DEDUP_RETENTION_SECONDS`]; returns how many went. Until then, the
    /// same signed body is refused as a replay.
    fn prune_signed_deliveries(&self, before_s: i64) -> StoreFuture<'_, u64>;
}

/// What a database is, and how far its schema is migrated: what `mecha doctor` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct About {
    /// The database as messages show it: a path, or a URL without its password.
    pub database: String,
    /// The database software and its version, e.g. `SQLite 3.50.2` or `PostgreSQL 15.18`.
    pub server: String,
    /// The schema version the database is at.
    pub schema: u32,
    /// The schema version this build brings a database to.
    pub known: u32,
}

/// The database behind a store.
pub trait Describe: Send + Sync + 'static {
    /// Asks the database what it is.
    fn about(&self) -> StoreFuture<'_, About>;
}

/// Everything the daemon stores, as one object: `Arc<dyn Store>`.
pub trait Store:
    EventStore + WorkerStore + TaskStore + AuditLog + PluginInstallStore + Describe
{
}

impl<T> Store for T where
    T: EventStore + WorkerStore + TaskStore + AuditLog + PluginInstallStore + Describe + ?Sized
{
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn events_tasks_and_audit_entries_share_the_group_commit() {
        /// Rounds of one event insert, one task creation and one audit entry each.
        const ROUNDS: usize = 300;
        let dir = tempfile::tempdir().unwrap();
        let sqlite =
            Arc::new(SqliteStore::open(&dir.path().join("mecha.db"), Durability::Full).unwrap());
        let store: Arc<dyn Store> = Arc::clone(&sqlite) as Arc<dyn Store>;
        store
            .add_workers(vec![("reviewer".into(), json!({}))])
            .await
            .unwrap();
        let mut rounds = Vec::with_capacity(ROUNDS);
        for n in 0..ROUNDS {
            let store = Arc::clone(&store);
            rounds.push(tokio::spawn(async move {
                let event = NewEvent {
                    source: "github".into(),
                    event_type: "push".into(),
                    delivery_id: Some(format!("d-{n}")),
                    ..NewEvent::default()
                };
                let insert = store.insert(event);
                let task = NewTask {
                    worker_name: "reviewer".into(),
                    trace_id: format!("t-{n}"),
                    ..NewTask::default()
                };
                let create = store.create_task(task);
                let record = store.record(AuditEntry::new(format!("t-{n}"), "event.received"));
                let (inserted, created, recorded) = tokio::join!(insert, create, record);
                assert!(matches!(inserted.unwrap(), InsertOutcome::Inserted(_)));
                assert!(matches!(created.unwrap(), CreateTaskOutcome::Created(_)));
                recorded.unwrap();
            }));
        }
        for round in rounds {
            round.await.unwrap();
        }

        let all_events = EventFilter {
            limit: MAX_LIST_LIMIT,
            ..EventFilter::default()
        };
        assert_eq!(store.list(all_events).await.unwrap().len(), ROUNDS);
        let all_tasks = TaskFilter {
            limit: MAX_LIST_LIMIT,
            ..TaskFilter::default()
        };
        assert_eq!(store.list_tasks(all_tasks).await.unwrap().len(), ROUNDS);
        let all_logs = LogFilter {
            limit: MAX_LIST_LIMIT,
            ..LogFilter::default()
        };
        assert_eq!(store.query_logs(all_logs).await.unwrap().len(), ROUNDS);
        let stats = sqlite.writer_stats();
        assert_eq!(stats.rows_committed, 3 * ROUNDS as u64 + 1);
        assert_eq!(stats.batches_failed, 0);
        assert!(
            stats.batches_committed < stats.rows_committed,
            "no group commit happened: {stats:?}"
        );
        store.close().await.unwrap();
    }
}
