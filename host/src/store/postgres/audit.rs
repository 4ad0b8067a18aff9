//! The `logs` table on PostgreSQL, [`AuditLog`] on it, and retention.
//!
//! Audit entries are many (several per event) and must keep the order of the stages they
//! describe, yet a stage must not wait for its entry. So [`AuditLog::record`] queues the entry
//! at once, in call order, to one [`AuditWriter`] task per store, which writes whatever has
//! queued in one multi-row insert: under load, hundreds of entries share a statement and a
//! commit. Entries of a worker's state change are written in that change's own transaction
//! instead (`workers.rs`).

use std::sync::{Arc, LazyLock};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_postgres::{GenericClient, Row};

use super::batch::gather;
use super::pool::{Params, Pool, Session};
use super::{PostgresStore, lock};
use crate::store::audit::{COLUMNS, LogFilter};
use crate::store::audit_entry::{AuditEntry, AuditRecord};
use crate::store::error::{Cause, encode_json};
use crate::store::retention::PRUNE_CHUNK;
use crate::store::{AuditLog, DEDUP_RETENTION_SECONDS, Error, EventState, StoreFuture, timestamp};

/// The conditions of a log query, each applying when its parameter is not null. The `<> ''`
/// terms repeat the partial indexes' condition, so that the planner uses them.
const FILTER: &str = "WHERE ($1::text IS NULL OR (trace_id = $1 AND trace_id <> '')) \
                        AND ($2::text IS NULL OR (event_id = $2 AND event_id <> '')) \
                        AND ($3::text IS NULL OR (task_id = $3 AND task_id <> '')) \
                        AND ($4::text IS NULL OR worker = $4) \
                        AND ($5::text IS NULL OR starts_with(action, $5)) \
                        AND ($6::bigint IS NULL OR ts >= $6) \
                        AND ($7::bigint IS NULL OR ts < $7) \
                        AND ($8::bigint IS NULL OR id > $8)";

static NEWEST_FIRST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {COLUMNS} FROM logs {FILTER} ORDER BY id DESC LIMIT $9"));
static OLDEST_FIRST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {COLUMNS} FROM logs {FILTER} ORDER BY id ASC LIMIT $9"));

/// At most this many entries in one insert: a few hundred kilobytes of parameters.
const BATCH: usize = 500;

/// An entry waiting for the writer, stamped when its stage happened, with its waiter.
pub(super) struct Queued {
    entry: AuditEntry,
    ts: i64,
    reply: oneshot::Sender<Result<(), Error>>,
}

/// Where [`AuditLog::record`] queues entries.
pub(super) type Queue = std::sync::Mutex<Option<mpsc::UnboundedSender<Queued>>>;

/// The task writing queued entries.
pub(super) struct AuditWriter {
    task: JoinHandle<()>,
}

impl AuditWriter {
    /// Starts the writer; entries go in through the returned queue.
    pub(super) fn spawn(pool: Arc<Pool>) -> (Queue, AuditWriter) {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Queued>();
        let task = tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                let batch = gather(first, &mut receiver, BATCH);
                let (entries, replies): (Vec<_>, Vec<_>) = batch
                    .into_iter()
                    .map(|queued| ((queued.entry, queued.ts), queued.reply))
                    .unzip();
                let written = write(&pool, &entries).await;
                if let Err(error) = &written {
                    tracing::warn!(%error, entries = entries.len(), "could not write audit entries");
                }
                let reason = written.as_ref().err().map(ToString::to_string);
                for reply in replies {
                    let result = match &reason {
                        None => Ok(()),
                        Some(reason) => Err(Error::Commit {
                            database: pool.database().to_owned(),
                            reason: reason.clone(),
                        }),
                    };
                    drop(reply.send(result));
                }
            }
        });
        (std::sync::Mutex::new(Some(sender)), AuditWriter { task })
    }

    /// Waits until every entry queued before the queue was closed is written.
    pub(super) async fn finish(self) {
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "the audit writer stopped");
        }
    }
}

async fn write(pool: &Pool, entries: &[(AuditEntry, i64)]) -> Result<(), Error> {
    let mut connection = pool.get().await?;
    insert(&mut connection.session(), entries).await
}

/// Appends `entries`, each with its time (unix milliseconds), in one statement.
pub(super) async fn insert<C: GenericClient + Sync>(
    session: &mut Session<'_, C>,
    entries: &[(AuditEntry, i64)],
) -> Result<(), Error> {
    let mut columns = Columns::default();
    for (entry, ts) in entries {
        columns.push(entry, *ts)?;
    }
    session
        .execute(
            "recording audit entries",
            "INSERT INTO logs (trace_id, ts, action, outcome, event_id, task_id, worker, \
                               attempt, error, detail) \
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
                                  $6::text[], $7::text[], $8::bigint[], $9::text[], $10::text[])",
            &[
                &columns.trace_id,
                &columns.ts,
                &columns.action,
                &columns.outcome,
                &columns.event_id,
                &columns.task_id,
                &columns.worker,
                &columns.attempt,
                &columns.error,
                &columns.detail,
            ],
        )
        .await?;
    Ok(())
}

/// Entries as one array per column, for `unnest`.
#[derive(Default)]
struct Columns<'a> {
    trace_id: Vec<&'a str>,
    ts: Vec<i64>,
    action: Vec<&'a str>,
    outcome: Vec<&'static str>,
    event_id: Vec<&'a str>,
    task_id: Vec<&'a str>,
    worker: Vec<&'a str>,
    attempt: Vec<i64>,
    error: Vec<&'a str>,
    detail: Vec<String>,
}

impl<'a> Columns<'a> {
    fn push(&mut self, entry: &'a AuditEntry, ts: i64) -> Result<(), Error> {
        self.detail.push(encode_json(&entry.detail, || {
            format!("the detail of audit entry {}", entry.action)
        })?);
        self.trace_id.push(&entry.trace_id);
        self.ts.push(ts);
        self.action.push(&entry.action);
        self.outcome.push(entry.outcome.as_str());
        self.event_id
            .push(entry.event_id.as_deref().unwrap_or_default());
        self.task_id
            .push(entry.task_id.as_deref().unwrap_or_default());
        self.worker
            .push(entry.worker.as_deref().unwrap_or_default());
        self.attempt.push(i64::from(entry.attempt));
        self.error.push(entry.error.as_deref().unwrap_or_default());
        Ok(())
    }
}

impl AuditLog for PostgresStore {
    fn record(&self, entry: AuditEntry) -> StoreFuture<'_, ()> {
        // Stamped and queued now, when the stage happened, not when the future is polled.
        let (reply, answer) = oneshot::channel();
        let queued = Queued {
            entry,
            ts: timestamp::now_ms(),
            reply,
        };
        let sent = self
            .audit_queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(|queue| queue.send(queued).is_ok());
        let database = self.database().to_owned();
        Box::pin(async move {
            if !sent {
                return Err(Error::Closed { database });
            }
            answer.await.map_err(|_| Error::Closed { database })?
        })
    }

    fn query_logs(&self, filter: LogFilter) -> StoreFuture<'_, Vec<AuditRecord>> {
        Box::pin(async move {
            const ACTION: &str = "reading the audit log";
            let sql: &'static str = if filter.after_id.is_some() {
                &OLDEST_FIRST
            } else {
                &NEWEST_FIRST
            };
            let limit = i64::from(filter.effective_limit());
            let mut connection = self.pool.get().await?;
            let mut session = connection.session();
            let rows = session
                .query(
                    ACTION,
                    sql,
                    &[
                        &filter.trace,
                        &filter.event,
                        &filter.task,
                        &filter.worker,
                        &filter.action_prefix,
                        &filter.since,
                        &filter.until,
                        &filter.after_id,
                        &limit,
                    ],
                )
                .await?;
            rows.iter()
                .map(decode)
                .collect::<Result<_, _>>()
                .map_err(session.failed(ACTION))
        })
    }

    fn prune_logs(&self, before_ms: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            self.prune(
                "pruning the audit log",
                "DELETE FROM logs WHERE id IN ( \
                     SELECT id FROM logs WHERE ts < $1 ORDER BY id LIMIT $2)",
                &[&before_ms, &i64::from(PRUNE_CHUNK)],
            )
            .await
        })
    }

    fn prune_events(&self, before_s: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let terminal = EventState::TERMINAL.map(EventState::as_str);
            let received_before = timestamp::now().saturating_sub(DEDUP_RETENTION_SECONDS);
            self.prune(
                "pruning finished events",
                "DELETE FROM events WHERE id IN ( \
                     SELECT id FROM events \
                     WHERE state = ANY($1::text[]) AND updated_at < $2 \
                       AND (delivery_id = '' OR created_at < $3) \
                     LIMIT $4)",
                &[
                    &terminal.as_slice(),
                    &before_s,
                    &received_before,
                    &i64::from(PRUNE_CHUNK),
                ],
            )
            .await
        })
    }

    fn prune_signed_deliveries(&self, before_s: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let floor = timestamp::now().saturating_sub(DEDUP_RETENTION_SECONDS);
            self.prune(
                "pruning the digests of signed requests",
                "DELETE FROM signed_deliveries WHERE (source, digest) IN ( \
                     SELECT source, digest FROM signed_deliveries WHERE created_at < $1 LIMIT $2)",
                &[&before_s.min(floor), &i64::from(PRUNE_CHUNK)],
            )
            .await
        })
    }
}

impl PostgresStore {
    /// Runs the chunked delete `sql` (its last parameter the chunk's size) until a chunk comes
    /// back short, each chunk its own transaction, and adds up the rows.
    ///
    /// Retention runs on one daemon at a time: each chunk takes the retention lock, and a
    /// daemon that finds it held stops, leaving the work to the daemon holding it.
    async fn prune(
        &self,
        action: &'static str,
        sql: &'static str,
        params: &Params<'_>,
    ) -> Result<u64, Error> {
        let mut total = 0;
        loop {
            let mut connection = self.writing().await?;
            let mut transaction = connection.transaction().await?;
            let mut session = transaction.session();
            let locked = session
                .query_opt(
                    action,
                    "SELECT pg_try_advisory_xact_lock($1, 0)",
                    &[&lock::RETENTION],
                )
                .await?
                .map(|row| row.try_get::<_, bool>(0))
                .transpose()
                .map_err(session.failed(action))?;
            if locked != Some(true) {
                return Ok(total);
            }
            let deleted = session.execute(action, sql, params).await?;
            transaction.commit().await?;
            total += deleted;
            if deleted < u64::from(PRUNE_CHUNK) {
                return Ok(total);
            }
        }
    }
}

/// One row of [`COLUMNS`] as a record.
fn decode(row: &Row) -> Result<AuditRecord, Cause> {
    let detail: String = row.try_get(10)?;
    Ok(AuditRecord {
        id: row.try_get(0)?,
        trace_id: row.try_get(1)?,
        ts: row.try_get(2)?,
        action: row.try_get(3)?,
        outcome: row.try_get(4)?,
        event_id: row.try_get(5)?,
        task_id: row.try_get(6)?,
        worker: row.try_get(7)?,
        attempt: u32::try_from(row.try_get::<_, i64>(8)?)?,
        error: row.try_get(9)?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// While another daemon holds the retention lock, pruning leaves the rows to it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retention_runs_on_one_daemon_at_a_time() {
        let Some(url) = crate::store::conformance::postgres_database().await else {
            return;
        };
        let store = PostgresStore::open(&url).await.unwrap();
        store
            .record(AuditEntry::new("t", "event.received"))
            .await
            .unwrap();
        let (mut other, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let holding = other.transaction().await.unwrap();
        holding
            .query_one("SELECT pg_advisory_xact_lock($1, 0)", &[&lock::RETENTION])
            .await
            .unwrap();
        let later = timestamp::now_ms() + 10_000;
        assert_eq!(store.prune_logs(later).await.unwrap(), 0);
        assert_eq!(
            store.query_logs(LogFilter::default()).await.unwrap().len(),
            1
        );
        holding.rollback().await.unwrap();
        assert_eq!(store.prune_logs(later).await.unwrap(), 1);
    }
}
