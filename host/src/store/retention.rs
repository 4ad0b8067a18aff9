//! Retention: deleting old audit entries, finished events and the digests of signed requests
//! (DESIGN.md section 6).
//!
//! Both deletes run through the writer in chunks of [`PRUNE_CHUNK`] rows, each its own request,
//! so a first prune of a large backlog never holds the write lock long enough to delay a
//! webhook's acknowledgement noticeably.
//!
//! An event's row is also its delivery id's dedup record (the unique `(source, delivery_id)`
//! index). Providers redeliver a webhook they believe was lost, GitHub for up to 3 days, and a
//! redelivery must still find its delivery id or it would run a second time. So a finished event
//! with a delivery id is kept for at least [`DEDUP_RETENTION_SECONDS`] after it was received,
//! whatever the retention asked for; events without one go as soon as they are old enough. Dedup
//! keys need no such care: only unfinished events hold them, and those are never pruned.
//!
//! The digests of signed requests (`signed_deliveries.rs`) recognise a signed body sent again
//! under another delivery id, which no provider does but an attacker replaying a captured request
//! would. They are kept as long as finished events, and at least as long as delivery ids.

use std::path::Path;

use rusqlite::{Connection, params};

use super::error::query_error;
use super::{Error, EventState, signed_deliveries};

/// 5,000 rows per delete: a few milliseconds of work, so writes queued behind a chunk wait
/// little, while a backlog of millions still goes in a few hundred transactions.
pub(super) const PRUNE_CHUNK: u32 = 5_000;

/// 7 days: how long a finished event with a delivery id outlives its receipt at least, so that
/// redeliveries are still recognised. GitHub redelivers for up to 3 days; 7 leaves room for
/// slower providers and for an operator's manual redelivery.
pub const DEDUP_RETENTION_SECONDS: i64 = 7 * 86_400;

/// Deletes up to `limit` audit entries stamped before `before_ms` (unix milliseconds), oldest
/// first, and returns how many went.
pub(super) fn prune_logs(
    connection: &Connection,
    path: &Path,
    before_ms: i64,
    limit: u32,
) -> Result<u64, Error> {
    let deleted = connection
        .prepare_cached(
            "DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE ts < ?1 ORDER BY id LIMIT ?2)",
        )
        .and_then(|mut statement| statement.execute(params![before_ms, limit]))
        .map_err(query_error(path, "pruning the audit log"))?;
    Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
}

/// Deletes up to `limit` events that finished (completed, failed, skipped) and were last changed
/// before `before_s` (unix seconds), keeping those whose delivery id is younger than
/// [`DEDUP_RETENTION_SECONDS`] at `now`. Returns how many went.
pub(super) fn prune_events(
    connection: &Connection,
    path: &Path,
    before_s: i64,
    limit: u32,
    now: i64,
) -> Result<u64, Error> {
    let [done_a, done_b, done_c] = EventState::TERMINAL;
    let deleted = connection
        .prepare_cached(
            "DELETE FROM events WHERE rowid IN ( \
                 SELECT rowid FROM events \
                 WHERE state IN (?1, ?2, ?3) AND updated_at < ?4 \
                   AND (delivery_id = '' OR created_at < ?5) \
                 LIMIT ?6)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                done_a,
                done_b,
                done_c,
                before_s,
                now.saturating_sub(DEDUP_RETENTION_SECONDS),
                limit,
            ])
        })
        .map_err(query_error(path, "pruning finished events"))?;
    Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
}

/// Deletes up to `limit` digests of signed requests recorded before `before_s` (unix seconds),
/// keeping those younger than [`DEDUP_RETENTION_SECONDS`] at `now`, so that a replay is
/// recognised for at least as long as a redelivery. Returns how many went.
pub(super) fn prune_signed_deliveries(
    connection: &Connection,
    path: &Path,
    before_s: i64,
    limit: u32,
    now: i64,
) -> Result<u64, Error> {
    let floor = now.saturating_sub(DEDUP_RETENTION_SECONDS);
    signed_deliveries::prune(connection, path, before_s.min(floor), limit)
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::store::audit::{self, LogFilter};
    use crate::store::events::{self, InsertOutcome, NewEvent};
    use crate::store::sqlite::migrations::migrated_database as database;
    use crate::store::{AuditEntry, AuditLog, Durability, EventId, SqliteStore};

    /// A day in seconds.
    const DAY: i64 = 86_400;

    fn event(delivery: &str) -> NewEvent {
        NewEvent {
            source: "github".into(),
            event_type: "push".into(),
            delivery_id: (!delivery.is_empty()).then(|| delivery.into()),
            ..NewEvent::default()
        }
    }

    /// Stores an event received at `at` and moves it to `state` at the same time.
    fn stored(
        connection: &Connection,
        path: &Path,
        delivery: &str,
        state: EventState,
        at: i64,
    ) -> EventId {
        let InsertOutcome::Inserted(record) =
            events::insert(connection, path, event(delivery).into(), at).unwrap()
        else {
            panic!("unexpected duplicate");
        };
        if state != EventState::Received {
            assert!(
                events::transition(connection, &record.id, EventState::Received, state, at)
                    .unwrap()
            );
        }
        record.id
    }

    fn exists(connection: &Connection, id: &EventId) -> bool {
        events::get(connection, id).unwrap().is_some()
    }

    #[test]
    fn finished_events_go_but_delivery_ids_stay_for_the_redelivery_window() {
        let (_dir, path, connection) = database();
        let now = 100 * DAY;
        let old = now - 30 * DAY;
        let recent = now - 2 * DAY;
        let old_done = stored(&connection, &path, "", EventState::Completed, old);
        let old_skipped = stored(&connection, &path, "", EventState::Skipped, old);
        let old_failed_delivery = stored(&connection, &path, "d-old", EventState::Failed, old);
        let old_unfinished = stored(&connection, &path, "", EventState::Dispatched, old);
        let recent_done_delivery =
            stored(&connection, &path, "d-new", EventState::Completed, recent);
        let recent_done = stored(&connection, &path, "", EventState::Completed, recent);

        // The operator keeps one day: everything finished before yesterday may go...
        let deleted = prune_events(&connection, &path, now - DAY, 100, now).unwrap();
        assert_eq!(deleted, 4);
        for gone in [&old_done, &old_skipped, &old_failed_delivery, &recent_done] {
            assert!(!exists(&connection, gone));
        }
        // ...except what is unfinished, and a delivery id received less than 7 days ago.
        assert!(exists(&connection, &old_unfinished));
        assert!(exists(&connection, &recent_done_delivery));
        assert!(matches!(
            events::insert(&connection, &path, event("d-new").into(), now).unwrap(),
            InsertOutcome::Duplicate { existing } if existing == recent_done_delivery
        ));

        // Once the window has passed, it goes too.
        let later = now + DEDUP_RETENTION_SECONDS;
        assert_eq!(
            prune_events(&connection, &path, later - DAY, 100, later).unwrap(),
            1
        );
        assert!(!exists(&connection, &recent_done_delivery));
    }

    #[test]
    fn deletes_run_in_chunks() {
        let (_dir, path, connection) = database();
        for n in 0..5 {
            stored(&connection, &path, "", EventState::Completed, n);
            let entry = AuditEntry::new("t", "event.received");
            audit::insert(&connection, &path, &entry, n).unwrap();
        }
        assert_eq!(prune_events(&connection, &path, 10, 2, 10).unwrap(), 2);
        assert_eq!(prune_logs(&connection, &path, 10, 2).unwrap(), 2);
        assert_eq!(prune_logs(&connection, &path, 3, 100).unwrap(), 1);
        let left = audit::query(&connection, &LogFilter::default()).unwrap();
        let stamps: Vec<i64> = left.into_iter().map(|record| record.ts).collect();
        assert_eq!(stamps, [4, 3]);
    }

    #[tokio::test]
    async fn the_store_prunes_a_backlog_larger_than_a_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mecha.db");
        let store = SqliteStore::open(&path, Durability::Full).unwrap();
        let backlog = i64::from(PRUNE_CHUNK) + 7;
        {
            let mut connection = Connection::open(&path).unwrap();
            let transaction = connection.transaction().unwrap();
            for n in 0..backlog {
                audit::insert(&transaction, &path, &AuditEntry::new("t", "task.sent"), n).unwrap();
            }
            transaction.commit().unwrap();
        }
        store
            .record(AuditEntry::new("t", "task.sent"))
            .await
            .unwrap();
        let deleted = store.prune_logs(backlog).await.unwrap();
        assert_eq!(deleted, u64::try_from(backlog).unwrap());
        let left = store.query_logs(LogFilter::default()).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(store.prune_events(i64::MAX).await.unwrap(), 0);
    }
}
