//! Retention: the audit trail, finished events and the digests of signed requests are pruned on a
//! schedule, so the database does not grow without bound.

use std::time::Duration;

use crate::store::{Store, timestamp};

/// Deletes audit records older than `keep_logs`, and finished events and the digests of signed
/// requests older than `keep_events` (the store keeps both for its redelivery window at least);
/// returns how many audit records and events went.
pub async fn prune(store: &dyn Store, keep_logs: Duration, keep_events: Duration) -> (u64, u64) {
    let now_ms = timestamp::now_ms();
    let logs_before = now_ms - i64::try_from(keep_logs.as_millis()).unwrap_or(i64::MAX);
    let events_before = now_ms / 1000 - i64::try_from(keep_events.as_secs()).unwrap_or(i64::MAX);
    let logs = store.prune_logs(logs_before).await.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "could not prune the audit log");
        0
    });
    let events = store
        .prune_events(events_before)
        .await
        .unwrap_or_else(|err| {
            tracing::warn!(error = %err, "could not prune finished events");
            0
        });
    let signed = store
        .prune_signed_deliveries(events_before)
        .await
        .unwrap_or_else(|err| {
            tracing::warn!(error = %err, "could not prune the digests of signed requests");
            0
        });
    if logs + events + signed > 0 {
        tracing::info!(logs, events, signed, "pruned old records");
    }
    (logs, events)
}
