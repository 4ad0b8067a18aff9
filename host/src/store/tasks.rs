//! The `tasks` table: creating, reading and listing tasks, and [`TaskStore`] on SQLite.
//!
//! A task is one prompt for one worker. Tasks made from an event carry the dedup key
//! `<event_id>:<worker_name>` under a unique index (reference 4.4, layer 3), so a redelivered or
//! re-matched event can never make a worker do the same job twice; the insert reports the earlier
//! task instead of failing. [`create_for_event`] makes an event's tasks and moves the event in
//! the same savepoint, so a crash cannot leave one without the other. The moves of a task after
//! its creation, and the queries of the retry and recovery loops, are in `task_lifecycle.rs`.

use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::error::{encode_json, query_error};
use super::events::MAX_LIST_LIMIT;
use super::sqlite::request::Request;
use super::task_lifecycle::{self, TaskChange};
use super::task_record::{
    COLUMNS, CreateTaskOutcome, CreatedTasks, Lease, NewTask, TaskFilter, TaskRecord, decode,
};
use super::{
    Error, EventId, EventState, SqliteStore, StoreFuture, TaskId, TaskState, TaskStore,
    WriteBackState,
};

impl TaskStore for SqliteStore {
    fn create_task(&self, task: NewTask) -> StoreFuture<'_, CreateTaskOutcome> {
        self.write(|reply| Request::CreateTask { task, reply })
    }

    fn create_tasks_for_event(
        &self,
        event_id: &EventId,
        from: EventState,
        to: EventState,
        tasks: Vec<NewTask>,
    ) -> StoreFuture<'_, CreatedTasks> {
        let event_id = event_id.clone();
        self.write(|reply| Request::CreateTasksForEvent {
            event_id,
            from,
            to,
            tasks,
            reply,
        })
    }

    fn get_task(&self, id: &TaskId) -> StoreFuture<'_, Option<TaskRecord>> {
        let id = id.clone();
        self.read("reading a task", move |connection| get(connection, &id))
    }

    fn list_tasks(&self, filter: TaskFilter) -> StoreFuture<'_, Vec<TaskRecord>> {
        self.read("listing tasks", move |connection| list(connection, &filter))
    }

    fn count_tasks(&self) -> StoreFuture<'_, Vec<(TaskState, u64)>> {
        self.read("counting tasks", |connection| {
            connection
                .prepare_cached("SELECT state, COUNT(*) FROM tasks GROUP BY state")?
                .query_map([], |row| {
                    Ok((row.get(0)?, row.get::<_, i64>(1)?.unsigned_abs()))
                })?
                .collect()
        })
    }

    fn task_states(&self, event_id: &EventId) -> StoreFuture<'_, Vec<(TaskState, WriteBackState)>> {
        let event_id = event_id.clone();
        self.read(
            "reading the states of an event's tasks",
            move |connection| {
                connection
                    .prepare_cached("SELECT state, write_back FROM tasks WHERE event_id = ?1")?
                    .query_map(params![event_id], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect()
            },
        )
    }

    fn change_task(&self, id: &TaskId, change: TaskChange) -> StoreFuture<'_, ()> {
        let id = id.clone();
        self.write(|reply| Request::ChangeTask { id, change, reply })
    }

    fn claim_task(&self, id: &TaskId, lease: Lease) -> StoreFuture<'_, TaskRecord> {
        let id = id.clone();
        self.write(|reply| Request::ClaimTask { id, lease, reply })
    }

    fn release_leases(
        &self,
        now_ms: i64,
        reclaim: Option<String>,
    ) -> StoreFuture<'_, Vec<TaskRecord>> {
        self.write(|reply| Request::ReleaseLeases {
            now_ms,
            reclaim,
            reply,
        })
    }

    fn due_tasks(&self, now: i64, limit: u32) -> StoreFuture<'_, Vec<TaskRecord>> {
        self.read("finding due tasks", move |connection| {
            task_lifecycle::due(connection, now, limit.clamp(1, MAX_LIST_LIMIT))
        })
    }

    fn pending_tasks(&self) -> StoreFuture<'_, Vec<TaskRecord>> {
        self.read("finding pending tasks", task_lifecycle::pending)
    }

    fn unclaimed_tasks(&self, created_before: i64, limit: u32) -> StoreFuture<'_, Vec<TaskRecord>> {
        self.read("finding unclaimed tasks", move |connection| {
            task_lifecycle::unclaimed(connection, created_before, limit.clamp(1, MAX_LIST_LIMIT))
        })
    }

    fn task_notices(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    fn completed_task_exists(
        &self,
        event_id: &EventId,
        worker_name: &str,
    ) -> StoreFuture<'_, bool> {
        let key = dedup_key(Some(event_id), worker_name);
        self.read("looking for a completed task", move |connection| {
            task_lifecycle::completed_exists(connection, &key)
        })
    }

    fn claim_write_backs(
        &self,
        lease: Lease,
        now: i64,
        limit: u32,
    ) -> StoreFuture<'_, Vec<TaskRecord>> {
        let limit = limit.clamp(1, MAX_LIST_LIMIT);
        self.write(|reply| Request::ClaimWriteBacks {
            lease,
            now,
            limit,
            reply,
        })
    }
}

/// The dedup key of a task: `<event_id>:<worker_name>`, or empty for a task without an event.
pub(super) fn dedup_key(event_id: Option<&EventId>, worker_name: &str) -> String {
    event_id.map_or_else(String::new, |event_id| format!("{event_id}:{worker_name}"))
}

/// Stores `task`, pending, unless its worker already has a task for its event.
pub(super) fn create(
    connection: &Connection,
    path: &Path,
    task: NewTask,
    now: i64,
) -> Result<CreateTaskOutcome, Error> {
    let query_error = query_error(path, "creating a task");
    let id = TaskId::generate()?;
    let context = encode_json(&task.context, || {
        format!("the context of a task for worker {}", task.worker_name)
    })?;
    let dedup_key = dedup_key(task.event_id.as_ref(), &task.worker_name);
    let event_id = task.event_id.as_ref().map_or("", EventId::as_str);
    let created = connection
        .prepare_cached(
            "INSERT INTO tasks (id, worker_name, prompt, context, event_id, dedup_key, trace_id, \
                                state, max_retries, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) \
             ON CONFLICT DO NOTHING",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                id,
                task.worker_name,
                task.prompt,
                context,
                event_id,
                dedup_key,
                task.trace_id,
                TaskState::Pending,
                task.max_retries,
                now,
            ])
        })
        .map_err(&query_error)?;
    if created == 1 {
        return Ok(CreateTaskOutcome::Created(TaskRecord::pending(
            id, task, dedup_key, now,
        )));
    }
    let existing = if dedup_key.is_empty() {
        None
    } else {
        connection
            .prepare_cached("SELECT id FROM tasks WHERE dedup_key = ?1 AND dedup_key != ''")
            .and_then(|mut statement| {
                statement
                    .query_row(params![dedup_key], |row| row.get(0))
                    .optional()
            })
            .map_err(&query_error)?
    };
    match existing {
        Some(existing) => Ok(CreateTaskOutcome::Duplicate { existing }),
        None => Err(Error::TaskNotInserted {
            database: path.display().to_string(),
            id,
        }),
    }
}

/// Creates `tasks` for the event `event_id` (their own `event_id` is set to it), in order, and
/// sorts out the duplicates. Runs in the caller's savepoint, after the event's guarded move: any
/// failure drops both.
pub(super) fn create_for_event(
    connection: &Connection,
    path: &Path,
    event_id: &EventId,
    tasks: Vec<NewTask>,
    now: i64,
) -> Result<CreatedTasks, Error> {
    let mut outcome = CreatedTasks::default();
    for task in tasks {
        let task = NewTask {
            event_id: Some(event_id.clone()),
            ..task
        };
        match create(connection, path, task, now)? {
            CreateTaskOutcome::Created(record) => outcome.created.push(record),
            CreateTaskOutcome::Duplicate { existing } => outcome.duplicates.push(existing),
        }
    }
    Ok(outcome)
}

/// The task with this id, if stored.
pub(super) fn get(connection: &Connection, id: &TaskId) -> rusqlite::Result<Option<TaskRecord>> {
    connection
        .prepare_cached(&format!("SELECT {COLUMNS} FROM tasks WHERE id = ?1"))?
        .query_row(params![id], decode)
        .optional()
}

/// Tasks matching `filter`, newest first (insertion order breaks ties within a second).
pub(super) fn list(
    connection: &Connection,
    filter: &TaskFilter,
) -> rusqlite::Result<Vec<TaskRecord>> {
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    if let Some(state) = filter.state {
        conditions.push("state = ?");
        values.push(Value::Text(state.as_str().to_owned()));
    }
    if let Some(worker) = &filter.worker {
        conditions.push("worker_name = ?");
        values.push(Value::Text(worker.clone()));
    }
    if let Some(event_id) = &filter.event_id {
        conditions.push("event_id = ?");
        values.push(Value::Text(event_id.as_str().to_owned()));
    }
    if let Some(write_back) = filter.write_back {
        conditions.push("write_back = ?");
        values.push(Value::Text(write_back.as_str().to_owned()));
    }
    if let Some(before) = &filter.before {
        // The same order as ORDER BY below, so that pages neither overlap nor skip a task.
        conditions.push("(created_at, rowid) < (SELECT created_at, rowid FROM tasks WHERE id = ?)");
        values.push(Value::Text(before.as_str().to_owned()));
    }
    let mut sql = format!("SELECT {COLUMNS} FROM tasks");
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(" ORDER BY created_at DESC, rowid DESC LIMIT ?");
    values.push(Value::Integer(i64::from(filter.effective_limit())));
    let mut statement = connection.prepare_cached(&sql)?;
    let rows = statement.query_map(params_from_iter(values), decode)?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::{
        DEFAULT_MAX_RETRIES, DEFAULT_TASK_LIMIT, Durability, EventRecord, EventStore,
        InsertOutcome, NewEvent,
    };

    fn open(dir: &tempfile::TempDir) -> SqliteStore {
        SqliteStore::open(&dir.path().join("mecha.db"), Durability::Full).unwrap()
    }

    async fn event(store: &SqliteStore) -> EventRecord {
        let new = NewEvent {
            source: "github".into(),
            event_type: "issues".into(),
            ..NewEvent::default()
        };
        match store.insert(new).await.unwrap() {
            InsertOutcome::Inserted(record) => record,
            InsertOutcome::Duplicate { existing } => panic!("unexpected duplicate of {existing}"),
        }
    }

    fn task(worker: &str, event_id: Option<&EventId>) -> NewTask {
        NewTask {
            worker_name: worker.into(),
            prompt: format!("review for {worker}"),
            context: json!({"repo": "acme/widgets"}),
            event_id: event_id.cloned(),
            trace_id: event_id.map_or_else(|| "direct".into(), ToString::to_string),
            ..NewTask::default()
        }
    }

    fn created(outcome: CreateTaskOutcome) -> TaskRecord {
        match outcome {
            CreateTaskOutcome::Created(record) => record,
            CreateTaskOutcome::Duplicate { existing } => {
                panic!("unexpected duplicate of {existing}")
            }
        }
    }

    async fn ids(store: &SqliteStore, filter: TaskFilter) -> Vec<TaskId> {
        let tasks = store.list_tasks(filter).await.unwrap();
        tasks.into_iter().map(|task| task.id).collect()
    }

    #[tokio::test]
    async fn a_created_task_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let event = event(&store).await;
        let record = created(
            store
                .create_task(task("reviewer", Some(&event.id)))
                .await
                .unwrap(),
        );
        assert_eq!(record.state, TaskState::Pending);
        assert_eq!(record.dedup_key, format!("{}:reviewer", event.id));
        assert_eq!(record.trace_id, event.id.as_str());
        assert_eq!(
            (record.attempts, record.max_retries),
            (0, DEFAULT_MAX_RETRIES)
        );
        assert_eq!(store.get_task(&record.id).await.unwrap(), Some(record));
        let unknown = TaskId::generate().unwrap();
        assert_eq!(store.get_task(&unknown).await.unwrap(), None);
    }

    #[tokio::test]
    async fn one_task_per_event_and_worker() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let event = event(&store).await;
        let first = created(
            store
                .create_task(task("reviewer", Some(&event.id)))
                .await
                .unwrap(),
        );
        assert_eq!(
            store
                .create_task(task("reviewer", Some(&event.id)))
                .await
                .unwrap(),
            CreateTaskOutcome::Duplicate {
                existing: first.id.clone()
            }
        );
        // Still a duplicate once the first one has finished.
        store
            .fail_task(&first.id, None, "gave up".into())
            .await
            .unwrap();
        assert!(matches!(
            store
                .create_task(task("reviewer", Some(&event.id)))
                .await
                .unwrap(),
            CreateTaskOutcome::Duplicate { .. }
        ));
        // Another worker, or another event, is another job.
        created(
            store
                .create_task(task("fixer", Some(&event.id)))
                .await
                .unwrap(),
        );
        let other = self::event(&store).await;
        created(
            store
                .create_task(task("reviewer", Some(&other.id)))
                .await
                .unwrap(),
        );
        // Direct tasks have no dedup key and never collide.
        created(store.create_task(task("reviewer", None)).await.unwrap());
        let direct = created(store.create_task(task("reviewer", None)).await.unwrap());
        assert_eq!((direct.dedup_key.as_str(), direct.event_id), ("", None));
        assert_eq!(ids(&store, TaskFilter::default()).await.len(), 5);
    }

    #[tokio::test]
    async fn an_events_tasks_and_its_move_are_stored_together_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let event = event(&store).await;
        let by_event = TaskFilter {
            event_id: Some(event.id.clone()),
            ..TaskFilter::default()
        };

        // The event is not `matched`: its guard fails and no task is made.
        let error = store
            .create_tasks_for_event(
                &event.id,
                EventState::Matched,
                EventState::Dispatched,
                vec![task("reviewer", None), task("fixer", None)],
            )
            .await
            .unwrap_err();
        assert!(matches!(error, Error::InvalidTransition { .. }), "{error}");
        assert!(ids(&store, by_event.clone()).await.is_empty());

        // A task the schema refuses (no worker) drops the event's move and its batch-mates.
        let error = store
            .create_tasks_for_event(
                &event.id,
                EventState::Received,
                EventState::Dispatched,
                vec![task("reviewer", None), task("", None)],
            )
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Query { .. }), "{error}");
        assert!(ids(&store, by_event.clone()).await.is_empty());
        let unmoved = store.get(&event.id).await.unwrap().unwrap();
        assert_eq!(unmoved.state, EventState::Received);

        let outcome = store
            .create_tasks_for_event(
                &event.id,
                EventState::Received,
                EventState::Dispatched,
                vec![
                    task("reviewer", None),
                    task("fixer", None),
                    task("reviewer", None),
                ],
            )
            .await
            .unwrap();
        let [reviewer, fixer] = <[TaskRecord; 2]>::try_from(outcome.created).unwrap();
        assert_eq!(
            (reviewer.worker_name.as_str(), fixer.worker_name.as_str()),
            ("reviewer", "fixer")
        );
        assert_eq!(outcome.duplicates, std::slice::from_ref(&reviewer.id));
        assert_eq!(reviewer.event_id.as_ref(), Some(&event.id));
        let moved = store.get(&event.id).await.unwrap().unwrap();
        assert_eq!(moved.state, EventState::Dispatched);

        // Matched again later: only the new worker gets a task.
        let again = store
            .create_tasks_for_event(
                &event.id,
                EventState::Dispatched,
                EventState::Dispatched,
                vec![task("reviewer", None), task("tester", None)],
            )
            .await
            .unwrap();
        assert_eq!(again.duplicates, std::slice::from_ref(&reviewer.id));
        let tester = again.created[0].id.clone();
        assert_eq!(again.created.len(), 1);
        assert_eq!(ids(&store, by_event).await, [tester, fixer.id, reviewer.id]);
        let mut states = store.task_states(&event.id).await.unwrap();
        states.dedup();
        assert_eq!(states, [(TaskState::Pending, WriteBackState::None)]);
        assert_eq!(store.task_states(&event.id).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn lists_filter_and_page_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let event = event(&store).await;
        let mut made = Vec::new();
        for n in 0..7 {
            let worker = if n % 2 == 0 { "even" } else { "odd" };
            let event_id = (n == 3).then_some(&event.id);
            made.push(created(store.create_task(task(worker, event_id)).await.unwrap()).id);
        }
        let lease = crate::store::Lease {
            owner: "here/0123456789abcdef".into(),
            until: i64::MAX,
        };
        store.claim_task(&made[4], lease).await.unwrap();
        let newest_first: Vec<TaskId> = made.iter().rev().cloned().collect();

        assert_eq!(ids(&store, TaskFilter::default()).await, newest_first);
        let page = |before: Option<&TaskId>| TaskFilter {
            limit: 3,
            before: before.cloned(),
            ..TaskFilter::default()
        };
        let first = ids(&store, page(None)).await;
        let second = ids(&store, page(first.last())).await;
        let third = ids(&store, page(second.last())).await;
        assert_eq!(first, newest_first[..3]);
        assert_eq!(second, newest_first[3..6]);
        assert_eq!(third, newest_first[6..]);
        assert!(ids(&store, page(third.last())).await.is_empty());
        let unknown = TaskId::generate().unwrap();
        assert!(ids(&store, page(Some(&unknown))).await.is_empty());

        let even = TaskFilter {
            worker: Some("even".into()),
            ..TaskFilter::default()
        };
        assert_eq!(
            ids(&store, even.clone()).await,
            [
                made[6].clone(),
                made[4].clone(),
                made[2].clone(),
                made[0].clone()
            ]
        );
        let even_pending = TaskFilter {
            state: Some(TaskState::Pending),
            ..even
        };
        assert_eq!(
            ids(&store, even_pending).await,
            [made[6].clone(), made[2].clone(), made[0].clone()]
        );
        let of_event = TaskFilter {
            event_id: Some(event.id.clone()),
            ..TaskFilter::default()
        };
        assert_eq!(ids(&store, of_event).await, [made[3].clone()]);
        let clamp = |limit| {
            TaskFilter {
                limit,
                ..TaskFilter::default()
            }
            .effective_limit()
        };
        assert_eq!((clamp(0), clamp(5_000)), (1, MAX_LIST_LIMIT));
        assert_eq!(TaskFilter::default().limit, DEFAULT_TASK_LIMIT);
    }
}
