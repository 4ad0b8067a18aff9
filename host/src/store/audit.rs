//! The `logs` table: the audit trail, and [`AuditLog`] on SQLite.
//!
//! Entries are written through the group-commit writer like every other write, so recording a
//! stage costs no fsync of its own: it shares the transaction of the event or task change it
//! describes, or of whatever else is queued. Reads filter on the indexed ids, an action prefix
//! (`task.` for every task stage) and a time window, newest first; `after_id` turns a query into a
//! tail that returns only entries newer than the last one seen, oldest first (`mecha logs
//! --follow`). Pruning, of logs and of finished events, is in `retention.rs`.

use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, Row, params, params_from_iter};

use super::audit_entry::{AuditEntry, AuditRecord};
use super::error::{encode_json, query_error};
use super::events::MAX_LIST_LIMIT;
use super::retention::PRUNE_CHUNK;
use super::sqlite::request::{Request, ResultSender};
use super::{AuditLog, Error, SqliteStore, StoreFuture, timestamp};

/// 100 entries: the Go mecha's default page of `mecha logs`.
pub const DEFAULT_LOG_LIMIT: u32 = 100;

/// Which entries [`AuditLog::query_logs`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct LogFilter {
    /// Only entries of this trace.
    pub trace: Option<String>,
    /// Only entries about this event.
    pub event: Option<String>,
    /// Only entries about this task.
    pub task: Option<String>,
    /// Only entries about this worker.
    pub worker: Option<String>,
    /// Only entries whose action starts with this (case-sensitive): `task.` for every task stage.
    pub action_prefix: Option<String>,
    /// Only entries at or after this time (unix milliseconds).
    pub since: Option<i64>,
    /// Only entries before this time (unix milliseconds).
    pub until: Option<i64>,
    /// At most this many; clamped to `1..=`[`MAX_LIST_LIMIT`].
    pub limit: u32,
    /// Only entries newer than this id, oldest first (to follow the log); without it, newest first.
    pub after_id: Option<i64>,
}

impl Default for LogFilter {
    fn default() -> LogFilter {
        LogFilter {
            trace: None,
            event: None,
            task: None,
            worker: None,
            action_prefix: None,
            since: None,
            until: None,
            limit: DEFAULT_LOG_LIMIT,
            after_id: None,
        }
    }
}

impl LogFilter {
    /// The limit actually applied.
    pub fn effective_limit(&self) -> u32 {
        self.limit.clamp(1, MAX_LIST_LIMIT)
    }
}

impl AuditLog for SqliteStore {
    fn record(&self, entry: AuditEntry) -> StoreFuture<'_, ()> {
        // Stamped now, when the stage happened, not when its batch commits.
        let ts = timestamp::now_ms();
        self.write(|reply| Request::Record { entry, ts, reply })
    }

    fn query_logs(&self, filter: LogFilter) -> StoreFuture<'_, Vec<AuditRecord>> {
        self.read("reading the audit log", move |connection| {
            query(connection, &filter)
        })
    }

    fn prune_logs(&self, before_ms: i64) -> StoreFuture<'_, u64> {
        self.prune(move |reply| Request::PruneLogs {
            before_ms,
            limit: PRUNE_CHUNK,
            reply,
        })
    }

    fn prune_events(&self, before_s: i64) -> StoreFuture<'_, u64> {
        self.prune(move |reply| Request::PruneEvents {
            before_s,
            limit: PRUNE_CHUNK,
            reply,
        })
    }

    fn prune_signed_deliveries(&self, before_s: i64) -> StoreFuture<'_, u64> {
        self.prune(move |reply| Request::PruneSignedDeliveries {
            before_s,
            limit: PRUNE_CHUNK,
            reply,
        })
    }
}

impl SqliteStore {
    /// Sends the chunked delete `request` until a chunk comes back short, and adds up the rows.
    fn prune(
        &self,
        request: impl Fn(ResultSender<u64>) -> Request + Send + 'static,
    ) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let mut total = 0;
            loop {
                let deleted = self.write(&request).await?;
                total += deleted;
                if deleted < u64::from(PRUNE_CHUNK) {
                    return Ok(total);
                }
            }
        })
    }
}

/// Columns in the order [`decode`] reads them (and the PostgreSQL backend's decoder).
pub(super) const COLUMNS: &str =
    "id, trace_id, ts, action, outcome, event_id, task_id, worker, attempt, error, detail";

/// Appends `entry`, stamped `ts` (unix milliseconds).
pub(super) fn insert(
    connection: &Connection,
    path: &Path,
    entry: &AuditEntry,
    ts: i64,
) -> Result<(), Error> {
    let detail = encode_json(&entry.detail, || {
        format!("the detail of audit entry {}", entry.action)
    })?;
    connection
        .prepare_cached(
            "INSERT INTO logs (trace_id, ts, action, outcome, event_id, task_id, worker, \
                               attempt, error, detail) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                entry.trace_id,
                ts,
                entry.action,
                entry.outcome,
                entry.event_id.as_deref().unwrap_or_default(),
                entry.task_id.as_deref().unwrap_or_default(),
                entry.worker.as_deref().unwrap_or_default(),
                entry.attempt,
                entry.error.as_deref().unwrap_or_default(),
                detail,
            ])
        })
        .map_err(query_error(path, "recording an audit entry"))?;
    Ok(())
}

/// Entries matching `filter`: newest first, or oldest first after `after_id`.
pub(super) fn query(
    connection: &Connection,
    filter: &LogFilter,
) -> rusqlite::Result<Vec<AuditRecord>> {
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    let text = |value: &str| Value::Text(value.to_owned());
    // The `!= ''` terms repeat the partial indexes' condition, so that SQLite uses them.
    for (value, condition) in [
        (&filter.trace, "trace_id = ? AND trace_id != ''"),
        (&filter.event, "event_id = ? AND event_id != ''"),
        (&filter.task, "task_id = ? AND task_id != ''"),
        (&filter.worker, "worker = ?"),
    ] {
        if let Some(value) = value {
            conditions.push(condition);
            values.push(text(value));
        }
    }
    if let Some(prefix) = &filter.action_prefix {
        // Not LIKE, which ignores ASCII case and treats `_` as a wildcard.
        conditions.push("substr(action, 1, length(?)) = ?");
        values.push(text(prefix));
        values.push(text(prefix));
    }
    for (bound, condition) in [
        (filter.since, "ts >= ?"),
        (filter.until, "ts < ?"),
        (filter.after_id, "id > ?"),
    ] {
        if let Some(bound) = bound {
            conditions.push(condition);
            values.push(Value::Integer(bound));
        }
    }
    let mut sql = format!("SELECT {COLUMNS} FROM logs");
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(if filter.after_id.is_some() {
        " ORDER BY id ASC LIMIT ?"
    } else {
        " ORDER BY id DESC LIMIT ?"
    });
    values.push(Value::Integer(i64::from(filter.effective_limit())));
    let mut statement = connection.prepare_cached(&sql)?;
    let rows = statement.query_map(params_from_iter(values), decode)?;
    rows.collect()
}

/// One row of [`COLUMNS`] as a record.
fn decode(row: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    let detail: String = row.get(10)?;
    Ok(AuditRecord {
        id: row.get(0)?,
        trace_id: row.get(1)?,
        ts: row.get(2)?,
        action: row.get(3)?,
        outcome: row.get(4)?,
        event_id: row.get(5)?,
        task_id: row.get(6)?,
        worker: row.get(7)?,
        attempt: row.get(8)?,
        error: row.get(9)?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
    })
}

#[cfg(test)]
mod tests {

    use serde_json::json;

    use super::*;
    use crate::store::sqlite::migrations::migrated_database as database;
    use crate::store::{AuditOutcome, Durability};

    fn actions(connection: &Connection, filter: LogFilter) -> Vec<String> {
        let records = query(connection, &filter).unwrap();
        records.into_iter().map(|record| record.action).collect()
    }

    /// Two traces' worth of entries, one millisecond apart from `ts` 1,000 on.
    fn populate(connection: &Connection, path: &Path) {
        let entries = [
            AuditEntry::new("t1", "event.received").event("e1"),
            AuditEntry::new("t1", "event.matched")
                .event("e1")
                .worker("reviewer"),
            AuditEntry::new("t1", "task.created")
                .task("k1")
                .worker("reviewer"),
            AuditEntry::new("t2", "event.received").event("e2"),
            AuditEntry::new("t1", "task.sent")
                .task("k1")
                .worker("reviewer")
                .attempt(1),
            AuditEntry::new("t2", "event_skipped").outcome(AuditOutcome::Skip),
            AuditEntry::new("t1", "TASK.odd").task("k1"),
        ];
        for (n, entry) in (0..).zip(&entries) {
            insert(connection, path, entry, 1_000 + n).unwrap();
        }
    }

    #[tokio::test]
    async fn recorded_entries_read_back_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("mecha.db"), Durability::Full).unwrap();
        let before = timestamp::now_ms();
        store
            .record(AuditEntry::new("t1", "event.received").event("e1"))
            .await
            .unwrap();
        store
            .record(
                AuditEntry::new("t1", "task.retry")
                    .outcome(AuditOutcome::Retry)
                    .task("k1")
                    .worker("reviewer")
                    .attempt(2)
                    .error("worker returned 503")
                    .detail(json!({"delay_s": 60})),
            )
            .await
            .unwrap();
        let records = store.query_logs(LogFilter::default()).await.unwrap();
        assert_eq!(records.len(), 2);
        let (retry, received) = (&records[0], &records[1]);
        assert!(retry.id > received.id);
        assert!(received.ts >= before && retry.ts >= received.ts);
        assert_eq!(
            (received.event_id.as_str(), received.task_id.as_str()),
            ("e1", "")
        );
        assert_eq!(
            (
                retry.outcome,
                retry.task_id.as_str(),
                retry.worker.as_str(),
                retry.attempt,
                retry.error.as_str()
            ),
            (
                AuditOutcome::Retry,
                "k1",
                "reviewer",
                2,
                "worker returned 503"
            )
        );

        let json = serde_json::to_value(retry).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "action", "attempt", "detail", "error", "event_id", "id", "outcome", "task_id",
                "trace_id", "ts", "worker"
            ]
        );
        assert_eq!(json["detail"], json!({"delay_s": 60}));
        assert_eq!(json["outcome"], "retry");
        let ts = json["ts"].as_str().unwrap();
        assert_eq!(ts, timestamp::rfc3339_ms(retry.ts));
        assert_eq!(ts.len(), "2026-11-24T06:42:45.123Z".len());
    }

    #[test]
    fn each_filter_narrows_the_query() {
        let (_dir, path, connection) = database();
        populate(&connection, &path);
        let all = actions(&connection, LogFilter::default());
        assert_eq!(all.len(), 7);
        assert_eq!(all[0], "TASK.odd");

        let trace = LogFilter {
            trace: Some("t2".into()),
            ..LogFilter::default()
        };
        assert_eq!(
            actions(&connection, trace),
            ["event_skipped", "event.received"]
        );
        let event = LogFilter {
            event: Some("e1".into()),
            ..LogFilter::default()
        };
        assert_eq!(
            actions(&connection, event),
            ["event.matched", "event.received"]
        );
        let task = LogFilter {
            task: Some("k1".into()),
            ..LogFilter::default()
        };
        assert_eq!(
            actions(&connection, task),
            ["TASK.odd", "task.sent", "task.created"]
        );
        let worker = LogFilter {
            worker: Some("reviewer".into()),
            trace: Some("t1".into()),
            ..LogFilter::default()
        };
        assert_eq!(
            actions(&connection, worker),
            ["task.sent", "task.created", "event.matched"]
        );
        let no_match = LogFilter {
            worker: Some("nobody".into()),
            ..LogFilter::default()
        };
        assert!(actions(&connection, no_match).is_empty());
    }

    #[test]
    fn an_action_prefix_matches_exactly() {
        let (_dir, path, connection) = database();
        populate(&connection, &path);
        let prefix = |prefix: &str| {
            actions(
                &connection,
                LogFilter {
                    action_prefix: Some(prefix.into()),
                    ..LogFilter::default()
                },
            )
        };
        assert_eq!(prefix("task."), ["task.sent", "task.created"]);
        // `_` is no wildcard and case counts, unlike in LIKE.
        assert_eq!(
            prefix("event."),
            ["event.received", "event.matched", "event.received"]
        );
        assert_eq!(prefix("event_"), ["event_skipped"]);
        assert_eq!(prefix("TASK"), ["TASK.odd"]);
        assert_eq!(prefix("").len(), 7);
    }

    #[test]
    fn since_until_and_after_id_bound_the_query() {
        let (_dir, path, connection) = database();
        populate(&connection, &path);
        let window = LogFilter {
            since: Some(1_001),
            until: Some(1_003),
            ..LogFilter::default()
        };
        assert_eq!(
            actions(&connection, window),
            ["task.created", "event.matched"]
        );

        let ids: Vec<i64> = query(&connection, &LogFilter::default())
            .unwrap()
            .into_iter()
            .map(|record| record.id)
            .collect();
        let fourth_oldest = ids[3];
        let follow = LogFilter {
            after_id: Some(fourth_oldest),
            limit: 2,
            ..LogFilter::default()
        };
        let newer = query(&connection, &follow).unwrap();
        assert_eq!(
            newer
                .iter()
                .map(|record| record.action.as_str())
                .collect::<Vec<_>>(),
            ["task.sent", "event_skipped"],
            "oldest first after the cursor"
        );
        let last = newer.last().map(|record| record.id);
        let rest = LogFilter {
            after_id: last,
            ..LogFilter::default()
        };
        assert_eq!(actions(&connection, rest), ["TASK.odd"]);
        let none = LogFilter {
            after_id: ids.first().copied(),
            ..LogFilter::default()
        };
        assert!(actions(&connection, none).is_empty());

        let one = LogFilter {
            limit: 0,
            ..LogFilter::default()
        };
        assert_eq!(actions(&connection, one), ["TASK.odd"]);
        assert_eq!(LogFilter::default().limit, DEFAULT_LOG_LIMIT);
    }
}
