//! The `signed_deliveries` table: the signed request bodies each source instance has received,
//! so that a signed body sent again is a replay, not a new event.
//!
//! A provider such as GitHub signs the body only; the delivery id that deduplicates redeliveries
//! (`events.rs`) travels unsigned beside it. Whoever captures one signed request could send its
//! body again under fresh delivery ids, or none, and every copy would pass the signature check
//! and run again. So a request whose signature its source verified is stored with a digest of
//! what was signed, in the same savepoint as its events: one indexed lookup and one insert on the
//! path of the acknowledgement. The same signed body again, while its digest is kept, stores
//! nothing, and the caller learns which event it repeats. Digests are kept as long as finished
//! events, and at least [`super::DEDUP_RETENTION_SECONDS`] (`retention.rs` prunes them).
//!
//! Requests authenticated by a token (GitLab, Telegram) carry nothing that ties their body to the
//! sender, so they have no digest and are deduplicated by delivery id alone.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::error::query_error;
use super::events::{self, EncodedEvent, InsertOutcome};
use super::{Error, EventId};

/// The SHA-256 of a message whose signature a source verified (for GitHub, the body itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedDigest([u8; 32]);

impl SignedDigest {
    /// The digest's bytes, as stored.
    pub(super) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<[u8; 32]> for SignedDigest {
    fn from(digest: [u8; 32]) -> SignedDigest {
        SignedDigest(digest)
    }
}

/// What became of the events of one signed request.
#[derive(Debug, Clone, PartialEq)]
pub enum SignedInsert {
    /// The signed body was new: each event's own outcome, in order.
    Stored(Vec<InsertOutcome>),
    /// The same signed body was received before: nothing was stored; `existing` is the first
    /// event of that earlier request.
    Replayed { existing: EventId },
}

/// Stores the events of a request whose signed message has digest `digest`, unless the source
/// instance `source` received that signed message before. Runs inside the caller's savepoint, so
/// the events and the digest are stored together or not at all.
pub(super) fn insert_events(
    connection: &Connection,
    path: &Path,
    source: &str,
    digest: SignedDigest,
    new_events: Vec<EncodedEvent>,
    now: i64,
) -> Result<SignedInsert, Error> {
    let error = query_error(path, "checking a signed request for a replay");
    let seen: Option<EventId> = connection
        .prepare_cached("SELECT event_id FROM signed_deliveries WHERE source = ?1 AND digest = ?2")
        .and_then(|mut statement| {
            statement
                .query_row(params![source, digest.0.as_slice()], |row| row.get(0))
                .optional()
        })
        .map_err(&error)?;
    if let Some(existing) = seen {
        return Ok(SignedInsert::Replayed { existing });
    }
    let mut outcomes = Vec::with_capacity(new_events.len());
    for event in new_events {
        outcomes.push(events::insert(connection, path, event, now)?);
    }
    // A request that produced no event has nothing to repeat; one whose events were all
    // duplicates of earlier ones is recorded too, so its replays name the same event.
    if let Some(first) = outcomes.first() {
        let first = match first {
            InsertOutcome::Inserted(record) => &record.id,
            InsertOutcome::Duplicate { existing } => existing,
        };
        connection
            .prepare_cached(
                "INSERT INTO signed_deliveries (source, digest, event_id, created_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut statement| {
                statement.execute(params![source, digest.0.as_slice(), first, now])
            })
            .map_err(query_error(path, "recording a signed request"))?;
    }
    Ok(SignedInsert::Stored(outcomes))
}

/// Deletes up to `limit` digests recorded before `before_s` (unix seconds) and returns how many
/// went.
pub(super) fn prune(
    connection: &Connection,
    path: &Path,
    before_s: i64,
    limit: u32,
) -> Result<u64, Error> {
    let deleted = connection
        .prepare_cached(
            "DELETE FROM signed_deliveries WHERE (source, digest) IN ( \
                 SELECT source, digest FROM signed_deliveries WHERE created_at < ?1 LIMIT ?2)",
        )
        .and_then(|mut statement| statement.execute(params![before_s, limit]))
        .map_err(query_error(path, "pruning the digests of signed requests"))?;
    Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::store::NewEvent;
    use crate::store::sqlite::migrations::migrated_database as database;

    fn event(source: &str, delivery: Option<&str>) -> EncodedEvent {
        NewEvent {
            source: source.into(),
            event_type: "push".into(),
            delivery_id: delivery.map(Into::into),
            ..NewEvent::default()
        }
        .into()
    }

    fn count(connection: &Connection, table: &str) -> i64 {
        connection
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get(0)
            })
            .unwrap()
    }

    #[test]
    fn a_signed_body_sent_again_is_a_replay_whatever_its_delivery_id() {
        let (_dir, path, connection) = database();
        let body = SignedDigest([7; 32]);
        let first = insert_events(
            &connection,
            &path,
            "github",
            body,
            vec![event("github", Some("a"))],
            10,
        )
        .unwrap();
        let SignedInsert::Stored(outcomes) = first else {
            panic!("a new body is stored: {first:?}");
        };
        let [InsertOutcome::Inserted(record)] = outcomes.as_slice() else {
            panic!("one event inserted: {outcomes:?}");
        };
        for delivery in [Some("b"), Some("a"), None] {
            assert_eq!(
                insert_events(
                    &connection,
                    &path,
                    "github",
                    body,
                    vec![event("github", delivery)],
                    11
                )
                .unwrap(),
                SignedInsert::Replayed {
                    existing: record.id.clone()
                }
            );
        }
        assert_eq!(count(&connection, "events"), 1);

        // Another body, or the same body at another source instance, is new.
        let other = SignedDigest([8; 32]);
        assert!(matches!(
            insert_events(
                &connection,
                &path,
                "github",
                other,
                vec![event("github", None)],
                12
            ),
            Ok(SignedInsert::Stored(_))
        ));
        assert!(matches!(
            insert_events(
                &connection,
                &path,
                "github-2",
                body,
                vec![event("github-2", None)],
                12
            ),
            Ok(SignedInsert::Stored(_))
        ));
        assert_eq!(count(&connection, "events"), 3);
    }

    #[test]
    fn a_request_without_events_records_nothing_and_old_digests_are_pruned() {
        let (_dir, path, connection) = database();
        let body = SignedDigest([1; 32]);
        assert_eq!(
            insert_events(&connection, &path, "github", body, Vec::new(), 10).unwrap(),
            SignedInsert::Stored(Vec::new())
        );
        assert_eq!(count(&connection, "signed_deliveries"), 0);
        for (n, at) in [(2u8, 10), (3, 20), (4, 30)] {
            let digest = SignedDigest([n; 32]);
            insert_events(
                &connection,
                &path,
                "github",
                digest,
                vec![event("github", None)],
                at,
            )
            .unwrap();
        }
        assert_eq!(prune(&connection, &path, 25, 1).unwrap(), 1);
        assert_eq!(prune(&connection, &path, 25, 100).unwrap(), 1);
        assert_eq!(count(&connection, "signed_deliveries"), 1);
        assert!(matches!(
            insert_events(
                &connection,
                &path,
                "github",
                SignedDigest([2; 32]),
                vec![event("github", None)],
                40
            ),
            Ok(SignedInsert::Stored(_))
        ));
    }
}
