//! The `tasks` table on PostgreSQL, and [`TaskStore`] on it.
//!
//! The statements are the SQLite backend's (`store/sqlite/tasks.rs` and `task_lifecycle.rs`
//! say why each is shaped so). Every move is one guarded `UPDATE`: when two daemons move one
//! task at once, PostgreSQL makes the second wait for the first and re-checks its `WHERE`
//! against the row the first left, so a task is claimed once and ended once by its lease's
//! holder, whichever daemons race for it.

use std::sync::LazyLock;

use tokio_postgres::{GenericClient, Row};

use super::pool::Session;
use super::{PostgresStore, notices};
use crate::store::error::{Cause, encode_json};
use crate::store::events::MAX_LIST_LIMIT;
use crate::store::task_lifecycle::{RELEASED, TaskChange, WriteBackChange};
use crate::store::task_record::{
    COLUMNS, CreateTaskOutcome, CreatedTasks, Lease, NewTask, TaskFilter, TaskRecord,
};
use crate::store::tasks::dedup_key;
use crate::store::{
    Error, EventId, EventState, StoreFuture, TaskId, TaskState, TaskStore, WriteBackState,
    timestamp,
};

static GET: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {COLUMNS} FROM tasks WHERE id = $1"));

/// Each condition applies when its parameter is not null; `before` (`$4`) is a task id whose
/// place in the order the page starts after (an unknown one gives an empty page).
static LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM tasks \
         WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR worker_name = $2) \
           AND ($3::text IS NULL OR event_id = $3) \
           AND ($4::text IS NULL OR \
                (created_at, seq) < (SELECT created_at, seq FROM tasks WHERE id = $4)) \
           AND ($6::text IS NULL OR write_back = $6) \
         ORDER BY created_at DESC, seq DESC LIMIT $5"
    )
});

/// A pending, due task taken under a lease. `FOR UPDATE SKIP LOCKED`: when another daemon is
/// claiming (or otherwise changing) the row at this moment, this claim gives way at once
/// instead of waiting for that transaction. The task is then the other's; should that
/// transaction leave it pending after all, the due scan (a retry) or the sweep of unclaimed
/// tasks (a new one) finds it.
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE tasks SET state = $2, dispatched_at = $3, updated_at = $3, \
                          lease_owner = $4, lease_until = $5 \
         WHERE id = ( \
             SELECT id FROM tasks \
             WHERE id = $1 AND state = $6 AND coalesce(next_retry_at, 0) <= $7 \
             FOR UPDATE SKIP LOCKED) \
         RETURNING {COLUMNS}"
    )
});

/// A released task counts an attempt and is due again at once, or fails when that was its
/// last; see `store/sqlite/task_lifecycle.rs`.
static RELEASE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE tasks SET \
             state = CASE WHEN attempts + 1 >= greatest(max_retries, 1) THEN $1 ELSE $2 END, \
             error = CASE WHEN attempts + 1 >= greatest(max_retries, 1) \
                          THEN 'retries exhausted after ' || (attempts + 1) || ' attempts: ' \
                               || $3::text \
                          ELSE $3::text END, \
             next_retry_at = CASE WHEN attempts + 1 >= greatest(max_retries, 1) \
                                  THEN NULL ELSE $4::bigint END, \
             completed_at = CASE WHEN attempts + 1 >= greatest(max_retries, 1) \
                                 THEN $5::bigint ELSE NULL END, \
             attempts = attempts + 1, lease_owner = NULL, lease_until = NULL, updated_at = $5 \
         WHERE state = $6 \
           AND (lease_until IS NULL OR lease_until < $4 OR lease_owner = $7) \
         RETURNING {COLUMNS}"
    )
});

/// The due write-backs, earliest first, each taken under the lease. `SKIP LOCKED`: a daemon
/// scanning at the same moment takes the others instead of waiting for these.
static CLAIM_WRITE_BACKS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE tasks SET write_back_next_at = $1, lease_owner = $2, lease_until = $1 \
         WHERE id IN ( \
             SELECT id FROM tasks \
             WHERE write_back = $3 AND state = $4 AND coalesce(write_back_next_at, 0) <= $5 \
             ORDER BY write_back_next_at, seq LIMIT $6 \
             FOR UPDATE SKIP LOCKED) \
         RETURNING {COLUMNS}"
    )
});

static DUE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM tasks \
         WHERE state = $1 AND next_retry_at IS NOT NULL AND next_retry_at <= $2 \
         ORDER BY next_retry_at, seq LIMIT $3"
    )
});

static UNCLAIMED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM tasks \
         WHERE state = $1 AND next_retry_at IS NULL AND created_at < $2 \
         ORDER BY created_at, seq LIMIT $3"
    )
});

static PENDING: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {COLUMNS} FROM tasks WHERE state = $1 ORDER BY created_at, seq")
});

impl TaskStore for PostgresStore {
    fn create_task(&self, task: NewTask) -> StoreFuture<'_, CreateTaskOutcome> {
        Box::pin(async move {
            let mut connection = self.writing().await?;
            create(&mut connection.session(), task, timestamp::now()).await
        })
    }

    fn create_tasks_for_event(
        &self,
        event_id: &EventId,
        from: EventState,
        to: EventState,
        tasks: Vec<NewTask>,
    ) -> StoreFuture<'_, CreatedTasks> {
        let event_id = event_id.clone();
        Box::pin(async move {
            let now = timestamp::now();
            let mut connection = self.writing_relaxed().await?;
            let mut transaction = connection.transaction().await?;
            let mut session = transaction.session();
            super::events::transition(&mut session, event_id.clone(), from, to, now).await?;
            let mut outcome = CreatedTasks::default();
            for task in tasks {
                let task = NewTask {
                    event_id: Some(event_id.clone()),
                    ..task
                };
                match create(&mut session, task, now).await? {
                    CreateTaskOutcome::Created(record) => outcome.created.push(record),
                    CreateTaskOutcome::Duplicate { existing } => outcome.duplicates.push(existing),
                }
            }
            transaction.commit().await?;
            Ok(outcome)
        })
    }

    fn get_task(&self, id: &TaskId) -> StoreFuture<'_, Option<TaskRecord>> {
        let id = id.clone();
        Box::pin(async move {
            const ACTION: &str = "reading a task";
            let mut connection = self.pool.get().await?;
            let mut session = connection.session();
            let row = session.query_opt(ACTION, &GET, &[&id]).await?;
            row.map(|row| decode(&row))
                .transpose()
                .map_err(session.failed(ACTION))
        })
    }

    fn list_tasks(&self, filter: TaskFilter) -> StoreFuture<'_, Vec<TaskRecord>> {
        Box::pin(async move {
            let state = filter.state.map(TaskState::as_str);
            let event_id = filter.event_id.as_ref().map(EventId::as_str);
            let before = filter.before.as_ref().map(TaskId::as_str);
            let write_back = filter.write_back.map(WriteBackState::as_str);
            let limit = i64::from(filter.effective_limit());
            let mut connection = self.pool.get().await?;
            records(
                &mut connection.session(),
                "listing tasks",
                &LIST,
                &[
                    &state,
                    &filter.worker,
                    &event_id,
                    &before,
                    &limit,
                    &write_back,
                ],
            )
            .await
        })
    }

    fn count_tasks(&self) -> StoreFuture<'_, Vec<(TaskState, u64)>> {
        Box::pin(async move {
            const ACTION: &str = "counting tasks";
            let mut connection = self.pool.get().await?;
            let mut session = connection.session();
            let rows = session
                .query(
                    ACTION,
                    "SELECT state, COUNT(*) FROM tasks GROUP BY state",
                    &[],
                )
                .await?;
            rows.iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get::<_, i64>(1)?.unsigned_abs())))
                .collect::<Result<_, tokio_postgres::Error>>()
                .map_err(session.failed(ACTION))
        })
    }

    fn task_states(&self, event_id: &EventId) -> StoreFuture<'_, Vec<(TaskState, WriteBackState)>> {
        let event_id = event_id.clone();
        Box::pin(async move {
            const ACTION: &str = "reading the states of an event's tasks";
            let mut connection = self.pool.get().await?;
            let mut session = connection.session();
            let rows = session
                .query(
                    ACTION,
                    "SELECT state, write_back FROM tasks WHERE event_id = $1",
                    &[&event_id],
                )
                .await?;
            rows.iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect::<Result<_, tokio_postgres::Error>>()
                .map_err(session.failed(ACTION))
        })
    }

    fn change_task(&self, id: &TaskId, change: TaskChange) -> StoreFuture<'_, ()> {
        let id = id.clone();
        Box::pin(async move {
            // A lost renewal is redone by the next; other moves are durable when they return.
            let mut connection = if matches!(change, TaskChange::Renew { .. }) {
                self.writing_relaxed().await?
            } else {
                self.writing().await?
            };
            let to = change.to();
            let mut session = connection.session();
            let changed = apply(&mut session, &id, &change).await?;
            if changed != 1 {
                return Err(Error::InvalidTaskTransition { id, to });
            }
            // Due at once for whichever daemon looks first.
            if matches!(
                change,
                TaskChange::Requeue | TaskChange::WriteBack(WriteBackChange::Requeue)
            ) {
                notices::notify(&mut session).await;
            }
            Ok(())
        })
    }

    fn claim_task(&self, id: &TaskId, lease: Lease) -> StoreFuture<'_, TaskRecord> {
        let id = id.clone();
        Box::pin(async move {
            let mut connection = self.writing_relaxed().await?;
            let claimed = records(
                &mut connection.session(),
                "claiming a task",
                &CLAIM,
                &[
                    &id,
                    &TaskState::Dispatched,
                    &timestamp::now(),
                    &lease.owner,
                    &lease.until,
                    &TaskState::Pending,
                    &timestamp::now_ms(),
                ],
            )
            .await?;
            claimed
                .into_iter()
                .next()
                .ok_or(Error::InvalidTaskTransition {
                    id,
                    to: TaskState::Dispatched,
                })
        })
    }

    fn release_leases(
        &self,
        now_ms: i64,
        reclaim: Option<String>,
    ) -> StoreFuture<'_, Vec<TaskRecord>> {
        Box::pin(async move {
            let mut connection = self.writing_relaxed().await?;
            let mut session = connection.session();
            let released = records(
                &mut session,
                "releasing ended leases",
                &RELEASE,
                &[
                    &TaskState::Failed,
                    &TaskState::Pending,
                    &RELEASED,
                    &now_ms,
                    &timestamp::now(),
                    &TaskState::Dispatched,
                    &reclaim,
                ],
            )
            .await?;
            if let Some(owner) = &reclaim {
                session
                    .execute(
                        "releasing claimed write-backs",
                        "UPDATE tasks SET write_back_next_at = $1, lease_owner = NULL, \
                                          lease_until = NULL \
                         WHERE state = $2 AND write_back = $3 AND lease_owner = $4",
                        &[
                            &now_ms,
                            &TaskState::Completed,
                            &WriteBackState::Pending,
                            owner,
                        ],
                    )
                    .await?;
            }
            if !released.is_empty() {
                notices::notify(&mut session).await;
            }
            Ok(released)
        })
    }

    fn due_tasks(&self, now: i64, limit: u32) -> StoreFuture<'_, Vec<TaskRecord>> {
        let limit = i64::from(limit.clamp(1, MAX_LIST_LIMIT));
        Box::pin(async move {
            let mut connection = self.pool.get().await?;
            records(
                &mut connection.session(),
                "finding due tasks",
                &DUE,
                &[&TaskState::Pending, &now, &limit],
            )
            .await
        })
    }

    fn pending_tasks(&self) -> StoreFuture<'_, Vec<TaskRecord>> {
        Box::pin(async move {
            let mut connection = self.pool.get().await?;
            records(
                &mut connection.session(),
                "finding pending tasks",
                &PENDING,
                &[&TaskState::Pending],
            )
            .await
        })
    }

    fn unclaimed_tasks(&self, created_before: i64, limit: u32) -> StoreFuture<'_, Vec<TaskRecord>> {
        let limit = i64::from(limit.clamp(1, MAX_LIST_LIMIT));
        Box::pin(async move {
            let mut connection = self.pool.get().await?;
            records(
                &mut connection.session(),
                "finding unclaimed tasks",
                &UNCLAIMED,
                &[&TaskState::Pending, &created_before, &limit],
            )
            .await
        })
    }

    fn task_notices(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.notices.receiver())
    }

    fn completed_task_exists(
        &self,
        event_id: &EventId,
        worker_name: &str,
    ) -> StoreFuture<'_, bool> {
        let key = dedup_key(Some(event_id), worker_name);
        Box::pin(async move {
            const ACTION: &str = "looking for a completed task";
            let mut connection = self.pool.get().await?;
            let mut session = connection.session();
            let row = session
                .query_opt(
                    ACTION,
                    "SELECT EXISTS (SELECT 1 FROM tasks \
                                    WHERE dedup_key = $1 AND dedup_key <> '' AND state = $2)",
                    &[&key, &TaskState::Completed],
                )
                .await?;
            match row {
                Some(row) => row.try_get(0).map_err(session.failed(ACTION)),
                None => Ok(false),
            }
        })
    }

    fn claim_write_backs(
        &self,
        lease: Lease,
        now: i64,
        limit: u32,
    ) -> StoreFuture<'_, Vec<TaskRecord>> {
        let limit = i64::from(limit.clamp(1, MAX_LIST_LIMIT));
        Box::pin(async move {
            let mut connection = self.writing_relaxed().await?;
            records(
                &mut connection.session(),
                "claiming due write-backs",
                &CLAIM_WRITE_BACKS,
                &[
                    &lease.until,
                    &lease.owner,
                    &WriteBackState::Pending,
                    &TaskState::Completed,
                    &now,
                    &limit,
                ],
            )
            .await
        })
    }
}

/// Stores `task`, pending, unless its worker already has a task for its event.
async fn create<C: GenericClient + Sync>(
    session: &mut Session<'_, C>,
    task: NewTask,
    now: i64,
) -> Result<CreateTaskOutcome, Error> {
    const ACTION: &str = "creating a task";
    let id = TaskId::generate()?;
    let context = encode_json(&task.context, || {
        format!("the context of a task for worker {}", task.worker_name)
    })?;
    let dedup_key = dedup_key(task.event_id.as_ref(), &task.worker_name);
    let event_id = task.event_id.as_ref().map_or("", EventId::as_str);
    let max_retries = i64::from(task.max_retries);
    let created = session
        .execute(
            ACTION,
            "INSERT INTO tasks (id, worker_name, prompt, context, event_id, dedup_key, trace_id, \
                                state, max_retries, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
             ON CONFLICT DO NOTHING",
            &[
                &id,
                &task.worker_name,
                &task.prompt,
                &context,
                &event_id,
                &dedup_key,
                &task.trace_id,
                &TaskState::Pending,
                &max_retries,
                &now,
            ],
        )
        .await?;
    if created == 1 {
        return Ok(CreateTaskOutcome::Created(TaskRecord::pending(
            id, task, dedup_key, now,
        )));
    }
    let existing = if dedup_key.is_empty() {
        None
    } else {
        session
            .query_opt(
                ACTION,
                "SELECT id FROM tasks WHERE dedup_key = $1 AND dedup_key <> ''",
                &[&dedup_key],
            )
            .await?
    };
    match existing {
        Some(row) => Ok(CreateTaskOutcome::Duplicate {
            existing: row.try_get(0).map_err(session.failed(ACTION))?,
        }),
        None => Err(Error::TaskNotInserted {
            database: session.database().to_owned(),
            id,
        }),
    }
}

/// Runs the guarded update of `change` on task `id`; the rows changed (0 or 1).
async fn apply<C: GenericClient + Sync>(
    session: &mut Session<'_, C>,
    id: &TaskId,
    change: &TaskChange,
) -> Result<u64, Error> {
    const ACTION: &str = "changing a task's state";
    let to = change.to();
    let now = timestamp::now();
    match change {
        TaskChange::Renew { lease } => {
            session
                .execute(
                    ACTION,
                    "UPDATE tasks SET lease_until = $3 \
                     WHERE id = $1 AND state = $2 AND lease_owner = $4",
                    &[id, &to, &lease.until, &lease.owner],
                )
                .await
        }
        TaskChange::Complete { result, holder } => {
            session
                .execute(
                    ACTION,
                    "UPDATE tasks SET state = $2, result = $4, error = '', next_retry_at = NULL, \
                                      completed_at = $3, updated_at = $3, \
                                      lease_owner = NULL, lease_until = NULL, \
                                      write_back = CASE WHEN event_id <> '' THEN $6::text \
                                                        ELSE '' END, \
                                      write_back_next_at = $7 \
                     WHERE id = $1 AND state = $5 AND lease_owner = $8",
                    &[
                        id,
                        &to,
                        &now,
                        result,
                        &TaskState::Dispatched,
                        &WriteBackState::Pending,
                        &timestamp::now_ms(),
                        holder,
                    ],
                )
                .await
        }
        TaskChange::WriteBack(change) => write_back(session, id, change, now).await,
        TaskChange::Fail { error, holder } => {
            let from = match holder {
                Some(_) => TaskState::Dispatched,
                None => TaskState::Pending,
            };
            session
                .execute(
                    ACTION,
                    "UPDATE tasks SET state = $2, error = $4, next_retry_at = NULL, \
                                      completed_at = $3, updated_at = $3, \
                                      lease_owner = NULL, lease_until = NULL \
                     WHERE id = $1 AND state = $5 AND lease_owner IS NOT DISTINCT FROM $6",
                    &[id, &to, &now, error, &from, holder],
                )
                .await
        }
        TaskChange::Retry {
            next_retry_at,
            error,
            counted,
            holder,
        } => {
            session
                .execute(
                    ACTION,
                    "UPDATE tasks SET state = $2, error = $4, next_retry_at = $5, \
                                      attempts = attempts + $7, updated_at = $3, \
                                      lease_owner = NULL, lease_until = NULL \
                     WHERE id = $1 AND state = $6 AND lease_owner = $8",
                    &[
                        id,
                        &to,
                        &now,
                        error,
                        next_retry_at,
                        &TaskState::Dispatched,
                        &i64::from(*counted),
                        holder,
                    ],
                )
                .await
        }
        TaskChange::Requeue => {
            session
                .execute(
                    ACTION,
                    "UPDATE tasks SET state = $2, attempts = 0, next_retry_at = $5, error = '', \
                                      completed_at = NULL, updated_at = $3 \
                     WHERE id = $1 AND state = $4",
                    &[id, &to, &now, &TaskState::Failed, &timestamp::now_ms()],
                )
                .await
        }
    }
}

/// Applies a write-back change to completed task `id`; the rows changed.
async fn write_back<C: GenericClient + Sync>(
    session: &mut Session<'_, C>,
    id: &TaskId,
    change: &WriteBackChange,
    now: i64,
) -> Result<u64, Error> {
    let (to, from, next_at, error, decision, attempt) = change.columns();
    let reset = matches!(change, WriteBackChange::Requeue);
    session
        .execute(
            "recording a write-back",
            "UPDATE tasks SET write_back = $2, write_back_next_at = $3, write_back_error = $4, \
                              decision = coalesce($5, decision), updated_at = $6, \
                              lease_owner = NULL, lease_until = NULL, \
                              write_back_attempts = CASE WHEN $9 THEN 0 \
                                                         ELSE write_back_attempts + $7 END \
             WHERE id = $1 AND state = $10 AND write_back = $8",
            &[
                id,
                &to,
                &next_at,
                &error,
                &decision,
                &now,
                &i64::from(attempt),
                &from,
                &reset,
                &TaskState::Completed,
            ],
        )
        .await
}

/// The rows of `sql` as task records.
async fn records<C: GenericClient + Sync>(
    session: &mut Session<'_, C>,
    action: &'static str,
    sql: &'static str,
    params: &super::pool::Params<'_>,
) -> Result<Vec<TaskRecord>, Error> {
    let rows = session.query(action, sql, params).await?;
    rows.iter()
        .map(decode)
        .collect::<Result<_, _>>()
        .map_err(session.failed(action))
}

/// One row of [`COLUMNS`] as a record.
fn decode(row: &Row) -> Result<TaskRecord, Cause> {
    let context: String = row.try_get(3)?;
    let context = serde_json::from_str(&context).unwrap_or(serde_json::Value::String(context));
    let event_id: &str = row.try_get(4)?;
    let event_id = if event_id.is_empty() {
        None
    } else {
        Some(event_id.parse()?)
    };
    let count =
        |index: usize| -> Result<u32, Cause> { Ok(u32::try_from(row.try_get::<_, i64>(index)?)?) };
    Ok(TaskRecord {
        id: row.try_get(0)?,
        worker_name: row.try_get(1)?,
        prompt: row.try_get(2)?,
        context,
        event_id,
        dedup_key: row.try_get(5)?,
        trace_id: row.try_get(6)?,
        state: row.try_get(7)?,
        result: row.try_get(8)?,
        error: row.try_get(9)?,
        attempts: count(10)?,
        max_retries: count(11)?,
        next_retry_at: row.try_get(12)?,
        created_at: row.try_get(13)?,
        updated_at: row.try_get(14)?,
        dispatched_at: row.try_get(15)?,
        completed_at: row.try_get(16)?,
        write_back: row.try_get(17)?,
        write_back_attempts: count(18)?,
        write_back_next_at: row.try_get(19)?,
        write_back_error: row.try_get(20)?,
        decision: row.try_get(21)?,
        lease: match (row.try_get(22)?, row.try_get(23)?) {
            (Some(owner), Some(until)) => Some(Lease { owner, until }),
            _ => None,
        },
    })
}
