//! The `workers` table on PostgreSQL, and [`WorkerStore`] on it: the statements of
//! `store/sqlite/workers.rs`, with an audit record written in the same transaction as the
//! change it describes.

use std::sync::LazyLock;

use tokio_postgres::{GenericClient, Row};

use super::PostgresStore;
use super::pool::{Params, Session};
use crate::store::error::{Cause, encode_json};
use crate::store::workers::{COLUMNS, not_found, present};
use crate::store::{
    AuditEntry, Error, StoreFuture, WorkerLocation, WorkerRow, WorkerState, WorkerStore, timestamp,
};

/// The new `started_at` of an updated row: cleared when it goes offline (`$6`), stamped with
/// `$5` (now) when it comes up (`$7`) unless already running, kept otherwise.
const STARTED_AT: &str = "CASE WHEN $6::boolean THEN NULL \
                               WHEN $7::boolean THEN coalesce(started_at, $5::bigint) \
                               ELSE started_at END";

static GET: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {COLUMNS} FROM workers WHERE name = $1"));
static LIST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {COLUMNS} FROM workers ORDER BY name"));
static SET_STATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE workers SET state = $3, error = $4, updated_at = $5, started_at = {STARTED_AT} \
         WHERE name = $1 AND state = ANY($2::text[])"
    )
});
static SET_RUNTIME: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE workers SET container_id = $2, endpoint = $3, state = $4, updated_at = $5, \
                            started_at = {STARTED_AT}, \
                            error = CASE WHEN $4 = $8 THEN error ELSE '' END, \
                            runtime_owner = $9 \
         WHERE name = $1"
    )
});

impl WorkerStore for PostgresStore {
    fn add_workers(&self, workers: Vec<(String, serde_json::Value)>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            const ACTION: &str = "adding a worker";
            let now = timestamp::now();
            let mut connection = self.writing().await?;
            let mut transaction = connection.transaction().await?;
            let mut session = transaction.session();
            for (name, definition) in workers {
                let definition =
                    encode_json(&definition, || format!("the definition of worker {name}"))?;
                let added = session
                    .execute(
                        ACTION,
                        "INSERT INTO workers (name, definition, state, updated_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                        &[&name, &definition, &WorkerState::Offline, &now],
                    )
                    .await?;
                if added == 0 {
                    // Dropping the transaction rolls back the workers added before this one.
                    return Err(Error::WorkerExists { name });
                }
            }
            transaction.commit().await
        })
    }

    fn replace_definition(&self, name: &str, definition: serde_json::Value) -> StoreFuture<'_, ()> {
        let name = name.to_owned();
        Box::pin(async move {
            let definition =
                encode_json(&definition, || format!("the definition of worker {name}"))?;
            let mut connection = self.writing().await?;
            let changed = connection
                .session()
                .execute(
                    "replacing a worker's definition",
                    "UPDATE workers SET definition = $2, updated_at = $3 WHERE name = $1",
                    &[&name, &definition, &timestamp::now()],
                )
                .await?;
            if changed == 0 {
                return Err(not_found(&name));
            }
            Ok(())
        })
    }

    fn get_worker(&self, name: &str) -> StoreFuture<'_, Option<WorkerRow>> {
        let name = name.to_owned();
        Box::pin(async move {
            const ACTION: &str = "reading a worker";
            let mut connection = self.pool.get().await?;
            let mut session = connection.session();
            let row = session.query_opt(ACTION, &GET, &[&name]).await?;
            row.map(|row| decode(&row))
                .transpose()
                .map_err(session.failed(ACTION))
        })
    }

    fn list_workers(&self) -> StoreFuture<'_, Vec<WorkerRow>> {
        Box::pin(async move {
            const ACTION: &str = "listing workers";
            let mut connection = self.pool.get().await?;
            let mut session = connection.session();
            let rows = session.query(ACTION, &LIST, &[]).await?;
            rows.iter()
                .map(decode)
                .collect::<Result<_, _>>()
                .map_err(session.failed(ACTION))
        })
    }

    fn remove_worker(&self, name: &str) -> StoreFuture<'_, ()> {
        let name = name.to_owned();
        Box::pin(async move {
            const ACTION: &str = "removing a worker";
            let mut connection = self.writing().await?;
            let mut session = connection.session();
            let removed = session
                .execute(
                    ACTION,
                    "DELETE FROM workers WHERE name = $1 AND state = $2",
                    &[&name, &WorkerState::Offline],
                )
                .await?;
            if removed == 1 {
                return Ok(());
            }
            match state_of(&mut session, &name).await? {
                Some(state) => Err(Error::WorkerNotOffline { name, state }),
                None => Err(not_found(&name)),
            }
        })
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
        let from: Vec<&'static str> = from.iter().map(|state| state.as_str()).collect();
        Box::pin(async move {
            self.move_worker(
                &name,
                to,
                "changing a worker's state",
                &SET_STATE,
                &[
                    &name,
                    &from,
                    &to,
                    &error.unwrap_or_default(),
                    &timestamp::now(),
                    &(to == WorkerState::Offline),
                    &comes_up(to),
                ],
                audit,
            )
            .await
        })
    }

    fn set_worker_restarts(&self, name: &str, restarts: u32) -> StoreFuture<'_, ()> {
        let name = name.to_owned();
        Box::pin(async move {
            let mut connection = self.writing().await?;
            connection
                .session()
                .execute(
                    "recording a worker's restarts",
                    "UPDATE workers SET restarts = $2, updated_at = $3 WHERE name = $1",
                    &[&name, &i64::from(restarts), &timestamp::now()],
                )
                .await?;
            Ok(())
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
        let [container_id, endpoint, owner] =
            [runtime.container_id, runtime.endpoint, runtime.owner].map(str::to_owned);
        Box::pin(async move {
            self.move_worker(
                &name,
                state,
                "recording a worker's runtime",
                &SET_RUNTIME,
                &[
                    &name,
                    &container_id,
                    &endpoint,
                    &state,
                    &timestamp::now(),
                    &(state == WorkerState::Offline),
                    &comes_up(state),
                    &WorkerState::Error,
                    &owner,
                ],
                audit,
            )
            .await
        })
    }
}

impl PostgresStore {
    /// Runs `sql`, a guarded update moving worker `name` to `to`, and writes `audit` with it,
    /// in one transaction; when nothing changed, says why (the worker is elsewhere, or gone).
    async fn move_worker(
        &self,
        name: &str,
        to: WorkerState,
        action: &'static str,
        sql: &'static str,
        params: &Params<'_>,
        audit: Option<AuditEntry>,
    ) -> Result<(), Error> {
        let mut connection = self.writing().await?;
        let mut transaction = connection.transaction().await?;
        let mut session = transaction.session();
        if session.execute(action, sql, params).await? != 1 {
            return Err(refusal(&mut session, name, to).await?);
        }
        record(&mut session, audit).await?;
        transaction.commit().await
    }
}

/// Writes the audit record of a change, stamped now, in the change's transaction.
async fn record<C: GenericClient + Sync>(
    session: &mut Session<'_, C>,
    audit: Option<AuditEntry>,
) -> Result<(), Error> {
    match audit {
        Some(entry) => super::audit::insert(session, &[(entry, timestamp::now_ms())]).await,
        None => Ok(()),
    }
}

/// Whether a worker moving to `state` is running from then on.
fn comes_up(state: WorkerState) -> bool {
    state == WorkerState::Online
}

/// Why a guarded update of worker `name` to `to` changed nothing: it is elsewhere, or missing.
async fn refusal<C: GenericClient + Sync>(
    session: &mut Session<'_, C>,
    name: &str,
    to: WorkerState,
) -> Result<Error, Error> {
    Ok(match state_of(session, name).await? {
        Some(_) => Error::InvalidWorkerTransition {
            name: name.to_owned(),
            to,
        },
        None => not_found(name),
    })
}

/// The state of worker `name`, if it exists.
async fn state_of<C: GenericClient + Sync>(
    session: &mut Session<'_, C>,
    name: &str,
) -> Result<Option<WorkerState>, Error> {
    const ACTION: &str = "reading a worker's state";
    let row = session
        .query_opt(
            ACTION,
            "SELECT state FROM workers WHERE name = $1",
            &[&name],
        )
        .await?;
    row.map(|row| row.try_get(0))
        .transpose()
        .map_err(session.failed(ACTION))
}

/// One row of [`COLUMNS`] as a worker.
fn decode(row: &Row) -> Result<WorkerRow, Cause> {
    let definition: &str = row.try_get(1)?;
    Ok(WorkerRow {
        name: row.try_get(0)?,
        definition: serde_json::from_str(definition)?,
        state: row.try_get(2)?,
        error: present(row.try_get(3)?),
        container_id: present(row.try_get(4)?),
        endpoint: present(row.try_get(5)?),
        started_at: row.try_get(6)?,
        updated_at: row.try_get(7)?,
        restarts: u32::try_from(row.try_get::<_, i64>(8)?)?,
        runtime_owner: present(row.try_get(9)?),
    })
}
