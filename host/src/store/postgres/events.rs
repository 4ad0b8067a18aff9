//! The `events` and `event_bodies` tables on PostgreSQL.
//!
//! The same statements as the SQLite backend's (`store/sqlite/events.rs`, whose comments say
//! why each is shaped so), with what several writers add: a dedup key is checked under an
//! advisory lock on its value, held to the end of the transaction, and so is a signed request's
//! digest; a repeated delivery id waits, in the unique index, for the transaction that stored it.

use std::sync::LazyLock;

use serde_json::Map;
use tokio_postgres::{GenericClient, Row};

use super::lock;
use super::pool::Session;
use crate::store::body::{Codec, StoredBody};
use crate::store::error::{Cause, encode_json};
use crate::store::events::{
    BODY, COLUMNS, EncodedEvent, EventFilter, EventRecord, EventSummary, FROM, InsertOutcome,
    SUMMARY_COLUMNS,
};
use crate::store::signed_deliveries::{SignedDigest, SignedInsert};
use crate::store::{Error, EventId, EventState};

/// The filter of event lists: each condition applies when its parameter is not null.
/// `$7` is [`EventFilter::text`] as a pattern; `ILIKE` ignores case as SQLite's `LIKE` does.
const FILTER: &str = "WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR source = $2) \
                      AND ($4::text IS NULL OR type = $4) AND ($5::text IS NULL OR actor = $5) \
                      AND ($6::text IS NULL OR subject = $6) \
                      AND ($7::text IS NULL OR type ILIKE $7 ESCAPE '\\' OR actor ILIKE $7 ESCAPE '\\' \
                           OR subject ILIKE $7 ESCAPE '\\' OR delivery_id ILIKE $7 ESCAPE '\\') \
                      AND ($8::bigint IS NULL OR created_at >= $8) \
                      AND ($9::bigint IS NULL OR created_at < $9) \
                      ORDER BY created_at DESC, events.seq DESC LIMIT $3";

static GET: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {COLUMNS} FROM {FROM} WHERE events.id = $1"));
static LIST: LazyLock<String> = LazyLock::new(|| format!("SELECT {COLUMNS} FROM {FROM} {FILTER}"));
static LIST_SUMMARIES: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {SUMMARY_COLUMNS} FROM {FROM} {FILTER}"));

/// Stores `event` unless it is a duplicate. An event with a dedup key must be stored in a
/// transaction, which holds the key's lock until it ends.
pub(super) async fn insert<C: GenericClient + Sync>(
    session: &mut Session<'_, C>,
    encoded: EncodedEvent,
    now: i64,
) -> Result<InsertOutcome, Error> {
    const ACTION: &str = "storing an event";
    let EncodedEvent { event, body } = encoded;
    let event = EventRecord::received(EventId::generate()?, event, now);
    let attrs = serde_json::to_string(&event.attrs).map_err(|error| Error::Encode {
        source_name: event.source.clone(),
        reason: error.to_string(),
    })?;
    if !event.dedup_key.is_empty() {
        // Held until the transaction ends: another daemon inserting the same key waits, then
        // finds this event holding it.
        session
            .query(
                ACTION,
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[&lock::DEDUP_KEY, &event.dedup_key],
            )
            .await?;
    }
    let terminal = EventState::TERMINAL.map(EventState::as_str);
    let size = i64::try_from(body.size).map_err(session.failed(ACTION))?;
    // The event and its body in one statement: without a dedup key, the insert is one round
    // trip and one commit, outside any explicit transaction.
    let stored = session
        .query_opt(
            ACTION,
            "WITH stored AS ( \
                 INSERT INTO events (id, delivery_id, dedup_key, source, type, actor, subject, \
                                     attrs, state, created_at, updated_at) \
                 SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, \
                        $8::text, $9::text, $10::bigint, $10::bigint \
                 WHERE $3::text = '' OR NOT EXISTS ( \
                     SELECT 1 FROM events \
                     WHERE dedup_key = $3::text AND dedup_key <> '' \
                       AND state <> ALL($11::text[])) \
                 ON CONFLICT DO NOTHING \
                 RETURNING id), \
             body AS ( \
                 INSERT INTO event_bodies (event_id, size, codec, data) \
                 SELECT id, $12::bigint, $13::text, $14::bytea FROM stored WHERE $12::bigint > 0) \
             SELECT count(*) FROM stored",
            &[
                &event.id,
                &event.delivery_id,
                &event.dedup_key,
                &event.source,
                &event.event_type,
                &event.actor,
                &event.subject,
                &attrs,
                &EventState::Received,
                &now,
                &terminal.as_slice(),
                &size,
                &body.codec,
                &body.data,
            ],
        )
        .await?;
    let changed: i64 = match stored {
        Some(row) => row.try_get(0).map_err(session.failed(ACTION))?,
        None => 0,
    };
    if changed == 1 {
        return Ok(InsertOutcome::Inserted(event));
    }
    match find_duplicate(session, &event.source, &event.delivery_id, &event.dedup_key).await? {
        Some(existing) => Ok(InsertOutcome::Duplicate { existing }),
        None => Err(Error::NotInserted {
            database: session.database().to_owned(),
            id: event.id,
        }),
    }
}

/// The event that an insert with these keys duplicates, if any.
async fn find_duplicate<C: GenericClient + Sync>(
    session: &mut Session<'_, C>,
    source: &str,
    delivery_id: &str,
    dedup_key: &str,
) -> Result<Option<EventId>, Error> {
    const ACTION: &str = "looking for the event a new one duplicates";
    if !delivery_id.is_empty() {
        let existing = session
            .query_opt(
                ACTION,
                "SELECT id FROM events WHERE source = $1 AND delivery_id = $2 AND delivery_id <> ''",
                &[&source, &delivery_id],
            )
            .await?;
        if let Some(row) = existing {
            return row.try_get(0).map(Some).map_err(session.failed(ACTION));
        }
    }
    if !dedup_key.is_empty() {
        let terminal = EventState::TERMINAL.map(EventState::as_str);
        let existing = session
            .query_opt(
                ACTION,
                "SELECT id FROM events \
                 WHERE dedup_key = $1 AND dedup_key <> '' AND state <> ALL($2::text[]) \
                 ORDER BY created_at DESC, seq DESC LIMIT 1",
                &[&dedup_key, &terminal.as_slice()],
            )
            .await?;
        return existing
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(session.failed(ACTION));
    }
    Ok(None)
}

/// Stores the events of a request whose signed message has digest `digest`, unless the source
/// instance `source` received that signed message before. Runs inside the caller's
/// transaction, under an advisory lock on the digest, so that the same signed body reaching two
/// daemons at once is stored by one and a replay for the other.
pub(super) async fn insert_signed<C: GenericClient + Sync>(
    session: &mut Session<'_, C>,
    source: &str,
    digest: SignedDigest,
    events: Vec<EncodedEvent>,
    now: i64,
) -> Result<SignedInsert, Error> {
    const ACTION: &str = "checking a signed request for a replay";
    let digest = digest.as_bytes().as_slice();
    // The digest is a SHA-256: its first four bytes are as good a lock key as any hash of it.
    let key = i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    session
        .query(
            ACTION,
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[&lock::SIGNED, &key],
        )
        .await?;
    let seen = session
        .query_opt(
            ACTION,
            "SELECT event_id FROM signed_deliveries WHERE source = $1 AND digest = $2",
            &[&source, &digest],
        )
        .await?;
    if let Some(row) = seen {
        let existing = row.try_get(0).map_err(session.failed(ACTION))?;
        return Ok(SignedInsert::Replayed { existing });
    }
    let mut outcomes = Vec::with_capacity(events.len());
    for event in events {
        outcomes.push(insert(session, event, now).await?);
    }
    if let Some(first) = outcomes.first() {
        let first = match first {
            InsertOutcome::Inserted(record) => &record.id,
            InsertOutcome::Duplicate { existing } => existing,
        };
        session
            .execute(
                "recording a signed request",
                "INSERT INTO signed_deliveries (source, digest, event_id, created_at) \
                 VALUES ($1, $2, $3, $4)",
                &[&source, &digest, first, &now],
            )
            .await?;
    }
    Ok(SignedInsert::Stored(outcomes))
}

/// The event with this id, if stored.
pub(super) async fn get<C: GenericClient + Sync>(
    session: &mut Session<'_, C>,
    id: &EventId,
) -> Result<Option<EventRecord>, Error> {
    const ACTION: &str = "reading an event";
    let row = session.query_opt(ACTION, &GET, &[id]).await?;
    row.map(|row| decode(&row))
        .transpose()
        .map_err(session.failed(ACTION))
}

/// Events matching `filter`, newest first.
pub(super) async fn list<C: GenericClient + Sync>(
    session: &mut Session<'_, C>,
    filter: &EventFilter,
) -> Result<Vec<EventRecord>, Error> {
    select(session, &LIST, filter, decode).await
}

/// [`list`] without the bodies.
pub(super) async fn list_summaries<C: GenericClient + Sync>(
    session: &mut Session<'_, C>,
    filter: &EventFilter,
) -> Result<Vec<EventSummary>, Error> {
    select(session, &LIST_SUMMARIES, filter, decode_summary).await
}

async fn select<C: GenericClient + Sync, T>(
    session: &mut Session<'_, C>,
    sql: &'static str,
    filter: &EventFilter,
    decode: fn(&Row) -> Result<T, Cause>,
) -> Result<Vec<T>, Error> {
    const ACTION: &str = "listing events";
    let state = filter.state.map(EventState::as_str);
    let limit = i64::from(filter.effective_limit());
    let rows = session
        .query(
            ACTION,
            sql,
            &[
                &state,
                &filter.source,
                &limit,
                &filter.event_type,
                &filter.actor,
                &filter.subject,
                &filter.text_pattern(),
                &filter.since,
                &filter.until,
            ],
        )
        .await?;
    rows.iter()
        .map(decode)
        .collect::<Result<_, _>>()
        .map_err(session.failed(ACTION))
}

/// Moves the event from `from` to `to`, if it is in `from` now.
pub(super) async fn transition<C: GenericClient + Sync>(
    session: &mut Session<'_, C>,
    id: EventId,
    from: EventState,
    to: EventState,
    now: i64,
) -> Result<(), Error> {
    let changed = session
        .execute(
            "changing an event's state",
            "UPDATE events SET state = $3, updated_at = $4 WHERE id = $1 AND state = $2",
            &[&id, &from, &to, &now],
        )
        .await?;
    if changed == 1 {
        Ok(())
    } else {
        Err(Error::InvalidTransition { id, from, to })
    }
}

/// Replaces the attrs of the event if it is still `received`; false otherwise.
pub(super) async fn set_attrs<C: GenericClient + Sync>(
    session: &mut Session<'_, C>,
    id: &EventId,
    attrs: &Map<String, serde_json::Value>,
    now: i64,
) -> Result<bool, Error> {
    let encoded = encode_json(&serde_json::Value::Object(attrs.clone()), || {
        format!("the attrs of event {id}")
    })?;
    let changed = session
        .execute(
            "updating an event's attrs",
            "UPDATE events SET attrs = $2, updated_at = $3 WHERE id = $1 AND state = $4",
            &[id, &encoded, &now, &EventState::Received],
        )
        .await?;
    Ok(changed == 1)
}

/// One row of [`SUMMARY_COLUMNS`] as a summary.
fn decode_summary(row: &Row) -> Result<EventSummary, Cause> {
    let record = decode_with(row, Vec::new())?;
    let raw_bytes: Option<i64> = row.try_get(BODY)?;
    Ok(EventSummary::of(
        record,
        u64::try_from(raw_bytes.unwrap_or_default())?,
    ))
}

/// One row of [`COLUMNS`] as a record, its body decoded.
fn decode(row: &Row) -> Result<EventRecord, Cause> {
    let raw = match row.try_get::<_, Option<i64>>(BODY)? {
        Some(size) => {
            let codec: Codec = row.try_get(BODY + 1)?;
            StoredBody::decode(usize::try_from(size)?, codec, row.try_get(BODY + 2)?)?
        }
        None => Vec::new(),
    };
    decode_with(row, raw)
}

/// One row of [`COLUMNS`], with its body `raw`.
fn decode_with(row: &Row, raw: Vec<u8>) -> Result<EventRecord, Cause> {
    let attrs: &str = row.try_get(7)?;
    Ok(EventRecord {
        id: row.try_get(0)?,
        delivery_id: row.try_get(1)?,
        dedup_key: row.try_get(2)?,
        source: row.try_get(3)?,
        event_type: row.try_get(4)?,
        actor: row.try_get(5)?,
        subject: row.try_get(6)?,
        attrs: serde_json::from_str(attrs)?,
        raw,
        state: row.try_get(8)?,
        worker_name: row.try_get(9)?,
        task_id: row.try_get(10)?,
        created_at: row.try_get(11)?,
        updated_at: row.try_get(12)?,
    })
}
