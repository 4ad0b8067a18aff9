//! The `workers` table: the worker registry's durable half, and [`WorkerStore`] on SQLite.
//!
//! A row holds a worker's definition (its configuration as JSON, whose shape belongs to the
//! worker module) and its runtime state. The store enforces only what must hold whatever the
//! caller: names are unique, adding several workers is all-or-nothing, only an offline worker is
//! removed, and every state change is a guarded update so that two callers racing to move a
//! worker cannot both win. Which moves make sense (reference 2.4) is the registry's decision.

use std::path::Path;

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::error::{encode_json, query_error, quote};
use super::sqlite::request::Request;
use super::{AuditEntry, Error, SqliteStore, StoreFuture, WorkerState, WorkerStore};

/// A stored worker.
///
/// Not `Serialize` on purpose: the definition may hold secrets (API keys), and the API must show
/// a sanitised copy of it, which is the worker module's job.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRow {
    /// Unique, never empty.
    pub name: String,
    /// The worker's configuration, as the worker module stored it.
    pub definition: serde_json::Value,
    pub state: WorkerState,
    /// Why the worker is in `error`.
    pub error: Option<String>,
    /// The Docker container running the worker, or kept stopped for `mecha worker remove`.
    pub container_id: Option<String>,
    /// Where the running worker listens, when recorded (adapters and containers).
    pub endpoint: Option<String>,
    /// Unix seconds when the worker last came up from offline; `None` while offline.
    pub started_at: Option<i64>,
    /// Unix seconds of the last change.
    pub updated_at: i64,
    /// Restarts in a row of its container since it was last seen healthy.
    pub restarts: u32,
    /// The daemon that runs its container (see [`crate::config::home::Home::daemon_id`]);
    /// `None` when none does.
    pub runtime_owner: Option<String>,
}

/// Where a worker runs: its container, its endpoint and the daemon that runs them, each empty
/// for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerLocation<'a> {
    pub container_id: &'a str,
    pub endpoint: &'a str,
    pub owner: &'a str,
}

impl WorkerStore for SqliteStore {
    fn add_workers(&self, workers: Vec<(String, serde_json::Value)>) -> StoreFuture<'_, ()> {
        self.write(|reply| Request::AddWorkers { workers, reply })
    }

    fn replace_definition(&self, name: &str, definition: serde_json::Value) -> StoreFuture<'_, ()> {
        let name = name.to_owned();
        self.write(|reply| Request::ReplaceDefinition {
            name,
            definition,
            reply,
        })
    }

    fn get_worker(&self, name: &str) -> StoreFuture<'_, Option<WorkerRow>> {
        let name = name.to_owned();
        self.read("reading a worker", move |connection| get(connection, &name))
    }

    fn list_workers(&self) -> StoreFuture<'_, Vec<WorkerRow>> {
        self.read("listing workers", list)
    }

    fn remove_worker(&self, name: &str) -> StoreFuture<'_, ()> {
        let name = name.to_owned();
        self.write(|reply| Request::RemoveWorker { name, reply })
    }

    fn set_worker_state(
        &self,
        name: &str,
        from: &[WorkerState],
        to: WorkerState,
        error: Option<String>,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, ()> {
        let name = name.to_owned();
        let from = from.to_vec();
        self.write(|reply| Request::SetWorkerState {
            name,
            from,
            to,
            error: error.unwrap_or_default(),
            audit,
            reply,
        })
    }

    fn set_worker_restarts(&self, name: &str, restarts: u32) -> StoreFuture<'_, ()> {
        let name = name.to_owned();
        self.write(|reply| Request::SetWorkerRestarts {
            name,
            restarts,
            reply,
        })
    }

    fn set_worker_runtime(
        &self,
        name: &str,
        runtime: WorkerLocation<'_>,
        state: WorkerState,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, ()> {
        let name = name.to_owned();
        let runtime = [runtime.container_id, runtime.endpoint, runtime.owner].map(str::to_owned);
        self.write(|reply| Request::SetWorkerLocation {
            name,
            runtime,
            state,
            audit,
            reply,
        })
    }
}

/// Columns in the order [`decode`] reads them (and the PostgreSQL backend's decoder).
pub(super) const COLUMNS: &str = "name, definition, state, error, container_id, endpoint, started_at, \
                       updated_at, restarts, runtime_owner";

/// Adds `workers`, offline. Fails on the first name already taken (by a stored worker or an
/// earlier one in `workers`); the caller's savepoint then drops the ones added before it.
pub(super) fn add(
    connection: &Connection,
    path: &Path,
    workers: Vec<(String, serde_json::Value)>,
    now: i64,
) -> Result<(), Error> {
    let query_error = query_error(path, "adding a worker");
    let mut statement = connection
        .prepare_cached(
            "INSERT INTO workers (name, definition, state, updated_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT DO NOTHING",
        )
        .map_err(&query_error)?;
    for (name, definition) in workers {
        let definition = encode_json(&definition, || format!("the definition of worker {name}"))?;
        let added = statement
            .execute(params![name, definition, WorkerState::Offline, now])
            .map_err(&query_error)?;
        if added == 0 {
            return Err(Error::WorkerExists { name });
        }
    }
    Ok(())
}

/// Replaces the definition of worker `name`, leaving its state alone.
pub(super) fn replace_definition(
    connection: &Connection,
    path: &Path,
    name: &str,
    definition: &serde_json::Value,
    now: i64,
) -> Result<(), Error> {
    let definition = encode_json(definition, || format!("the definition of worker {name}"))?;
    let changed = connection
        .prepare_cached("UPDATE workers SET definition = ?2, updated_at = ?3 WHERE name = ?1")
        .and_then(|mut statement| statement.execute(params![name, definition, now]))
        .map_err(query_error(path, "replacing a worker's definition"))?;
    if changed == 0 {
        return Err(not_found(name));
    }
    Ok(())
}

/// Removes worker `name` if it is offline.
pub(super) fn remove(connection: &Connection, path: &Path, name: &str) -> Result<(), Error> {
    let query_error = query_error(path, "removing a worker");
    let removed = connection
        .prepare_cached("DELETE FROM workers WHERE name = ?1 AND state = ?2")
        .and_then(|mut statement| statement.execute(params![name, WorkerState::Offline]))
        .map_err(&query_error)?;
    if removed == 1 {
        return Ok(());
    }
    match state_of(connection, name).map_err(&query_error)? {
        Some(state) => Err(Error::WorkerNotOffline {
            name: name.to_owned(),
            state,
        }),
        None => Err(not_found(name)),
    }
}

/// Moves worker `name` to `to` if it is in one of `from`, and sets its error message (empty
/// clears it). Coming up from offline stamps `started_at`; going offline clears it.
pub(super) fn set_state(
    connection: &Connection,
    path: &Path,
    name: &str,
    from: &[WorkerState],
    to: WorkerState,
    error: &str,
    now: i64,
) -> Result<(), Error> {
    let query_error = query_error(path, "changing a worker's state");
    // The allowed states go in as one JSON array, so that the statement's text, and its cached
    // plan, is the same whatever their number.
    let from_states = format!(
        "[{}]",
        from.iter()
            .map(|state| format!("\"{}\"", state.as_str()))
            .collect::<Vec<_>>()
            .join(",")
    );
    let changed = connection
        .prepare_cached(&format!(
            "UPDATE workers SET state = ?3, error = ?4, updated_at = ?5, started_at = {STARTED_AT} \
             WHERE name = ?1 AND state IN (SELECT value FROM json_each(?2))"
        ))
        .and_then(|mut statement| {
            statement.execute(params![
                name,
                from_states,
                to,
                error,
                now,
                to == WorkerState::Offline,
                comes_up(to),
            ])
        })
        .map_err(&query_error)?;
    if changed == 1 {
        return Ok(());
    }
    Err(refusal(connection, name, to).map_err(&query_error)?)
}

/// Records where worker `name` runs (its container and endpoint) and its state, whatever its
/// state was, except that a busy worker is not taken offline under its running task (reference
/// 2.4: stopping refuses `busy`).
/// Records how many times in a row worker `name`'s container was restarted.
pub(super) fn set_restarts(
    connection: &Connection,
    path: &Path,
    name: &str,
    restarts: u32,
    now: i64,
) -> Result<(), Error> {
    connection
        .prepare_cached("UPDATE workers SET restarts = ?2, updated_at = ?3 WHERE name = ?1")
        .and_then(|mut statement| statement.execute(params![name, restarts, now]))
        .map_err(query_error(path, "recording a worker's restarts"))?;
    Ok(())
}

pub(super) fn set_runtime(
    connection: &Connection,
    path: &Path,
    name: &str,
    [container_id, endpoint, owner]: &[String; 3],
    state: WorkerState,
    now: i64,
) -> Result<(), Error> {
    let query_error = query_error(path, "recording a worker's runtime");
    let changed = connection
        .prepare_cached(&format!(
            "UPDATE workers SET container_id = ?2, endpoint = ?3, state = ?4, updated_at = ?5, \
                                started_at = {STARTED_AT}, \
                                error = CASE WHEN ?4 = ?8 THEN error ELSE '' END, \
                                runtime_owner = ?9 \
             WHERE name = ?1"
        ))
        .and_then(|mut statement| {
            statement.execute(params![
                name,
                container_id,
                endpoint,
                state,
                now,
                state == WorkerState::Offline,
                comes_up(state),
                WorkerState::Error,
                owner,
            ])
        })
        .map_err(&query_error)?;
    if changed == 1 {
        return Ok(());
    }
    Err(refusal(connection, name, state).map_err(&query_error)?)
}

/// The new `started_at` of an updated row: cleared when it goes offline (`?6`), stamped with
/// `?5` (now) when it comes up (`?7`) unless already running, kept otherwise.
const STARTED_AT: &str =
    "CASE WHEN ?6 THEN NULL WHEN ?7 THEN coalesce(started_at, ?5) ELSE started_at END";

/// Whether a worker moving to `state` is running from then on.
fn comes_up(state: WorkerState) -> bool {
    state == WorkerState::Online
}

/// The worker with this name, if stored.
pub(super) fn get(connection: &Connection, name: &str) -> rusqlite::Result<Option<WorkerRow>> {
    connection
        .prepare_cached(&format!("SELECT {COLUMNS} FROM workers WHERE name = ?1"))?
        .query_row(params![name], decode)
        .optional()
}

/// Every worker, by name.
pub(super) fn list(connection: &Connection) -> rusqlite::Result<Vec<WorkerRow>> {
    let mut statement =
        connection.prepare_cached(&format!("SELECT {COLUMNS} FROM workers ORDER BY name"))?;
    let rows = statement.query_map([], decode)?;
    rows.collect()
}

/// Why a guarded update of worker `name` to `to` changed nothing: it is elsewhere, or missing.
fn refusal(connection: &Connection, name: &str, to: WorkerState) -> rusqlite::Result<Error> {
    Ok(match state_of(connection, name)? {
        Some(_) => Error::InvalidWorkerTransition {
            name: name.to_owned(),
            to,
        },
        None => not_found(name),
    })
}

/// The state of worker `name`, if it exists.
fn state_of(connection: &Connection, name: &str) -> rusqlite::Result<Option<WorkerState>> {
    connection
        .prepare_cached("SELECT state FROM workers WHERE name = ?1")?
        .query_row(params![name], |row| row.get(0))
        .optional()
}

pub(super) fn not_found(name: &str) -> Error {
    Error::WorkerNotFound { name: quote(name) }
}

/// `text`, unless it is empty: how optional text columns are stored.
pub(super) fn present(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

/// One row of [`COLUMNS`] as a worker.
fn decode(row: &Row<'_>) -> rusqlite::Result<WorkerRow> {
    /// Index of `definition` in [`COLUMNS`].
    const DEFINITION: usize = 1;
    let definition: String = row.get(DEFINITION)?;
    let definition = serde_json::from_str(&definition).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(DEFINITION, Type::Text, Box::new(error))
    })?;
    Ok(WorkerRow {
        name: row.get(0)?,
        definition,
        state: row.get(2)?,
        // Stored as empty text when absent.
        error: present(row.get(3)?),
        container_id: present(row.get(4)?),
        endpoint: present(row.get(5)?),
        started_at: row.get(6)?,
        updated_at: row.get(7)?,
        restarts: row.get(8)?,
        runtime_owner: present(row.get(9)?),
    })
}

#[cfg(test)]
mod tests {
    use crate::store::AuditLog;
    use serde_json::json;

    use super::*;
    use crate::store::{Durability, EventStore};

    fn open(dir: &tempfile::TempDir) -> SqliteStore {
        SqliteStore::open(&dir.path().join("mecha.db"), Durability::Full).unwrap()
    }

    fn worker(name: &str) -> (String, serde_json::Value) {
        (
            name.to_owned(),
            json!({"name": name, "docker": {"image": "agent:1"}}),
        )
    }

    async fn names(store: &SqliteStore) -> Vec<String> {
        let rows = store.list_workers().await.unwrap();
        rows.into_iter().map(|row| row.name).collect()
    }

    async fn state(store: &SqliteStore, name: &str) -> WorkerRow {
        store.get_worker(name).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn added_workers_are_offline_and_listed_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store
            .add_workers(vec![worker("reviewer"), worker("fixer")])
            .await
            .unwrap();
        assert_eq!(names(&store).await, ["fixer", "reviewer"]);
        let row = state(&store, "reviewer").await;
        assert_eq!(row.definition, worker("reviewer").1);
        assert_eq!(row.state, WorkerState::Offline);
        assert_eq!(
            (row.error, row.container_id, row.endpoint),
            (None, None, None)
        );
        assert_eq!(row.started_at, None);
        assert_eq!(store.get_worker("nobody").await.unwrap(), None);
    }

    #[tokio::test]
    async fn adding_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store.add_workers(vec![worker("a")]).await.unwrap();
        let error = store
            .add_workers(vec![worker("b"), worker("a"), worker("c")])
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::WorkerExists { name } if name == "a"),
            "{error}"
        );
        let error = store
            .add_workers(vec![worker("d"), worker("d")])
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::WorkerExists { name } if name == "d"),
            "{error}"
        );
        // An empty name breaks the schema's check: the whole batch goes with it.
        let error = store
            .add_workers(vec![worker("e"), worker("")])
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Query { .. }), "{error}");
        assert_eq!(names(&store).await, ["a"]);
    }

    #[tokio::test]
    async fn restart_counts_survive_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open(&dir);
            store.add_workers(vec![worker("a")]).await.unwrap();
            let row = store.get_worker("a").await.unwrap().unwrap();
            assert_eq!(row.restarts, 0);
            store.set_worker_restarts("a", 3).await.unwrap();
            store.close().await.unwrap();
        }
        // A daemon restart: the budget already used is still used.
        let store = open(&dir);
        assert_eq!(store.get_worker("a").await.unwrap().unwrap().restarts, 3);
        store.set_worker_restarts("a", 0).await.unwrap();
        assert_eq!(store.get_worker("a").await.unwrap().unwrap().restarts, 0);
    }

    #[tokio::test]
    async fn replacing_a_definition_keeps_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store.add_workers(vec![worker("a")]).await.unwrap();
        store
            .set_worker_state(
                "a",
                &[WorkerState::Offline],
                WorkerState::Online,
                None,
                None,
            )
            .await
            .unwrap();
        store
            .replace_definition("a", json!({"name": "a", "timeout": 30}))
            .await
            .unwrap();
        let row = state(&store, "a").await;
        assert_eq!(row.definition, json!({"name": "a", "timeout": 30}));
        assert_eq!(row.state, WorkerState::Online);
        assert!(matches!(
            store.replace_definition("b", json!({})).await,
            Err(Error::WorkerNotFound { name }) if name == "b"
        ));
    }

    #[tokio::test]
    async fn only_an_offline_worker_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store.add_workers(vec![worker("a")]).await.unwrap();
        store
            .set_worker_state(
                "a",
                &WorkerState::ALL,
                WorkerState::Error,
                Some("down".into()),
                None,
            )
            .await
            .unwrap();
        let error = store.remove_worker("a").await.unwrap_err();
        assert!(
            matches!(&error, Error::WorkerNotOffline { name, state: WorkerState::Error } if name == "a"),
            "{error}"
        );
        assert!(error.to_string().contains("stop it"), "{error}");
        store
            .set_worker_state("a", &[WorkerState::Error], WorkerState::Offline, None, None)
            .await
            .unwrap();
        store.remove_worker("a").await.unwrap();
        assert!(names(&store).await.is_empty());
        assert!(matches!(
            store.remove_worker("a").await,
            Err(Error::WorkerNotFound { .. })
        ));
    }

    #[tokio::test]
    async fn state_changes_are_guarded_and_track_the_start_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store.add_workers(vec![worker("a")]).await.unwrap();
        store
            .set_worker_state(
                "a",
                &[WorkerState::Offline],
                WorkerState::Online,
                None,
                None,
            )
            .await
            .unwrap();
        let online = state(&store, "a").await;
        assert_eq!(online.state, WorkerState::Online);
        let started = online.started_at.expect("coming online stamps started_at");

        // Two callers race to move the worker out of `offline`: only one wins, and the loser's
        // audit record is not written either.
        let audit = || Some(AuditEntry::new("worker:a", "worker.state").worker("a"));
        let error = store
            .set_worker_state(
                "a",
                &[WorkerState::Offline],
                WorkerState::Online,
                None,
                audit(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::InvalidWorkerTransition { name, to: WorkerState::Online } if name == "a"),
            "{error}"
        );
        let records = store
            .query_logs(crate::store::LogFilter {
                action_prefix: Some("worker.state".into()),
                ..crate::store::LogFilter::default()
            })
            .await
            .unwrap();
        assert!(records.is_empty());

        store
            .set_worker_state(
                "a",
                &WorkerState::ALL,
                WorkerState::Error,
                Some("gone".into()),
                None,
            )
            .await
            .unwrap();
        let failed = state(&store, "a").await;
        assert_eq!(
            (failed.state, failed.error.as_deref()),
            (WorkerState::Error, Some("gone"))
        );
        assert_eq!(failed.started_at, Some(started));

        store
            .set_worker_state("a", &[WorkerState::Error], WorkerState::Online, None, None)
            .await
            .unwrap();
        let recovered = state(&store, "a").await;
        assert_eq!(
            (recovered.state, recovered.error.as_deref()),
            (WorkerState::Online, None)
        );

        store
            .set_worker_state(
                "a",
                &[WorkerState::Online],
                WorkerState::Offline,
                None,
                None,
            )
            .await
            .unwrap();
        assert_eq!(state(&store, "a").await.started_at, None);

        assert!(matches!(
            store
                .set_worker_state("a", &[], WorkerState::Online, None, None)
                .await,
            Err(Error::InvalidWorkerTransition { .. })
        ));
        assert!(matches!(
            store
                .set_worker_state("b", &WorkerState::ALL, WorkerState::Online, None, None)
                .await,
            Err(Error::WorkerNotFound { .. })
        ));
    }

    #[tokio::test]
    async fn runtime_is_recorded_with_its_audit_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store.add_workers(vec![worker("a")]).await.unwrap();
        store
            .set_worker_runtime(
                "a",
                WorkerLocation {
                    container_id: "c0ffee",
                    endpoint: "http://127.0.0.1:9001",
                    owner: "here/0123",
                },
                WorkerState::Online,
                None,
            )
            .await
            .unwrap();
        let row = state(&store, "a").await;
        assert_eq!(row.container_id.as_deref(), Some("c0ffee"));
        assert_eq!(row.runtime_owner.as_deref(), Some("here/0123"));
        assert_eq!(row.endpoint.as_deref(), Some("http://127.0.0.1:9001"));
        assert_eq!(row.state, WorkerState::Online);
        assert!(row.started_at.is_some());

        // Stopping keeps the container id, as `mecha worker stop` does.
        let stopped = AuditEntry::new("worker:a", "worker.state").worker("a");
        store
            .set_worker_runtime(
                "a",
                WorkerLocation {
                    container_id: "c0ffee",
                    ..WorkerLocation::default()
                },
                WorkerState::Offline,
                Some(stopped),
            )
            .await
            .unwrap();
        let records = store
            .query_logs(crate::store::LogFilter {
                action_prefix: Some("worker.state".into()),
                ..crate::store::LogFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(records.len(), 1, "written with the change");
        let stopped = state(&store, "a").await;
        assert_eq!(
            (
                stopped.state,
                stopped.container_id.as_deref(),
                stopped.endpoint.as_deref()
            ),
            (WorkerState::Offline, Some("c0ffee"), None)
        );
        assert_eq!(stopped.started_at, None);
        assert!(matches!(
            store
                .set_worker_runtime("b", WorkerLocation::default(), WorkerState::Online, None)
                .await,
            Err(Error::WorkerNotFound { .. })
        ));
    }
}
