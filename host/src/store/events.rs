//! The `events` table: its row types, both backends' record types, and the SQLite statements.
//!
//! The functions here are plain, synchronous queries on a connection handed to them. Which
//! connection, on which thread, inside which transaction, is decided by the writer
//! ([`super::sqlite::writer`]) and the read pool ([`super::sqlite`]); that keeps the SQL in one place
//! and testable on a bare connection.
//!
//! Deduplication (reference 4.4) happens inside the insert statement itself, so that it holds
//! even if another process writes the same file: a delivery id already stored for the same source
//! and a dedup key held by an unfinished event both turn the insert into a no-op, and the caller
//! learns which event it duplicates.

use std::path::Path;

use rusqlite::types::{Type, Value};
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde::{Serialize, Serializer};
use serde_json::Map;

use super::body::StoredBody;
use super::error::query_error;
use super::timestamp::serialize_rfc3339;
use super::{Error, EventId, EventState};

/// An event as a source plugin reports it, before it is stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewEvent {
    /// The source that received it (the plugin's name, e.g. `github`). Must not be empty.
    pub source: String,
    /// The source's event type, e.g. `pull_request.opened`.
    pub event_type: String,
    /// The provider's delivery id; a second delivery with the same id from the same source is a
    /// duplicate.
    pub delivery_id: Option<String>,
    /// A key that only one unfinished event may hold at a time.
    pub dedup_key: Option<String>,
    /// Who caused the event.
    pub actor: String,
    /// What the event is about (a repository, an issue, ...).
    pub subject: String,
    /// Source-specific attributes that rules match on.
    pub attrs: Map<String, serde_json::Value>,
    /// The request body exactly as received.
    pub raw: Vec<u8>,
}

/// A stored event, as read back and as shown by the HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRecord {
    pub id: EventId,
    /// Empty when the source gave none.
    pub delivery_id: String,
    /// Empty when the source gave none.
    pub dedup_key: String,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub actor: String,
    pub subject: String,
    pub attrs: Map<String, serde_json::Value>,
    /// The body as received; shown in JSON as text, with invalid UTF-8 replaced.
    #[serde(serialize_with = "serialize_lossy_utf8")]
    pub raw: Vec<u8>,
    pub state: EventState,
    /// The worker whose rule matched; empty before `matched`.
    pub worker_name: String,
    /// The task made for the worker; empty before `dispatched`.
    pub task_id: String,
    /// Unix seconds; RFC 3339 in JSON.
    #[serde(serialize_with = "serialize_rfc3339")]
    pub created_at: i64,
    /// Unix seconds; RFC 3339 in JSON.
    #[serde(serialize_with = "serialize_rfc3339")]
    pub updated_at: i64,
}

/// A stored event without its body, as event lists show it: a page of large events costs their
/// metadata, not their bodies (up to `max_body_bytes` each). The body is shown on its own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventSummary {
    pub id: EventId,
    pub delivery_id: String,
    pub dedup_key: String,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub actor: String,
    pub subject: String,
    pub attrs: Map<String, serde_json::Value>,
    /// The size of the body as received, in bytes.
    pub raw_bytes: u64,
    pub state: EventState,
    pub worker_name: String,
    pub task_id: String,
    #[serde(serialize_with = "serialize_rfc3339")]
    pub created_at: i64,
    #[serde(serialize_with = "serialize_rfc3339")]
    pub updated_at: i64,
}

/// A new event with its body encoded for `event_bodies` (see [`StoredBody`]). Made where the
/// event is handed to the store, so that compression runs on the caller's thread, not the
/// writer's.
#[derive(Debug, Clone)]
pub(super) struct EncodedEvent {
    pub(super) event: NewEvent,
    pub(super) body: StoredBody,
}

impl From<NewEvent> for EncodedEvent {
    fn from(event: NewEvent) -> EncodedEvent {
        let body = StoredBody::encode(&event.raw);
        EncodedEvent { event, body }
    }
}

/// What became of an insert.
#[expect(
    clippy::large_enum_variant,
    reason = "returned once per insert and unpacked at once; boxing would add an allocation to \
              every stored event"
)]
#[derive(Debug, Clone, PartialEq)]
pub enum InsertOutcome {
    /// The event is stored (and, once this is returned, on disk).
    Inserted(EventRecord),
    /// Nothing was stored: the event repeats a delivery, or its dedup key is held by an unfinished
    /// event. `existing` is that earlier event.
    Duplicate { existing: EventId },
}

/// Which events [`super::EventStore::list`] returns, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFilter {
    /// Only events in this state.
    pub state: Option<EventState>,
    /// Only events from this source.
    pub source: Option<String>,
    /// Only events of this type (`pull_request.opened`).
    pub event_type: Option<String>,
    /// Only events of this actor.
    pub actor: Option<String>,
    /// Only events about this subject (`owner/repo`).
    pub subject: Option<String>,
    /// Only events whose type, actor, subject or delivery id contains this, ASCII letters in
    /// either case (SQLite's `LIKE` folds only those; PostgreSQL's `ILIKE` folds all).
    pub text: Option<String>,
    /// Only events received at or after this (unix seconds).
    pub since: Option<i64>,
    /// Only events received before this (unix seconds).
    pub until: Option<i64>,
    /// At most this many; clamped to `1..=`[`MAX_LIST_LIMIT`].
    pub limit: u32,
}

/// 100: a page that an operator can read and that costs little to build.
pub const DEFAULT_LIST_LIMIT: u32 = 100;

/// 1,000: bounds the memory and time one API call can take.
pub const MAX_LIST_LIMIT: u32 = 1_000;

impl Default for EventFilter {
    fn default() -> EventFilter {
        EventFilter {
            state: None,
            source: None,
            event_type: None,
            actor: None,
            subject: None,
            text: None,
            since: None,
            until: None,
            limit: DEFAULT_LIST_LIMIT,
        }
    }
}

impl EventFilter {
    /// The limit actually applied.
    pub fn effective_limit(&self) -> u32 {
        self.limit.clamp(1, MAX_LIST_LIMIT)
    }

    /// [`EventFilter::text`] as a `LIKE` pattern with `\` as its escape: the text's own `%`, `_`
    /// and `\` match only themselves.
    pub(super) fn text_pattern(&self) -> Option<String> {
        let text = self.text.as_deref()?;
        let mut pattern = String::with_capacity(text.len() + 2);
        pattern.push('%');
        for char in text.chars() {
            if matches!(char, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(char);
        }
        pattern.push('%');
        Some(pattern)
    }
}

impl EventRecord {
    /// `event` as stored under `id` at `now` (unix seconds): `received`, no worker yet.
    pub(super) fn received(id: EventId, event: NewEvent, now: i64) -> EventRecord {
        EventRecord {
            id,
            delivery_id: event.delivery_id.unwrap_or_default(),
            dedup_key: event.dedup_key.unwrap_or_default(),
            source: event.source,
            event_type: event.event_type,
            actor: event.actor,
            subject: event.subject,
            attrs: event.attrs,
            raw: event.raw,
            state: EventState::Received,
            worker_name: String::new(),
            task_id: String::new(),
            created_at: now,
            updated_at: now,
        }
    }
}

impl EventSummary {
    /// `record` without its body, which is `raw_bytes` long.
    pub(super) fn of(record: EventRecord, raw_bytes: u64) -> EventSummary {
        EventSummary {
            id: record.id,
            delivery_id: record.delivery_id,
            dedup_key: record.dedup_key,
            source: record.source,
            event_type: record.event_type,
            actor: record.actor,
            subject: record.subject,
            attrs: record.attrs,
            raw_bytes,
            state: record.state,
            worker_name: record.worker_name,
            task_id: record.task_id,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

fn serialize_lossy_utf8<S: Serializer>(raw: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&String::from_utf8_lossy(raw))
}

/// The event's own columns, then its body's (`event_bodies`, absent for an empty body), in the
/// order [`decode`] reads them (and the PostgreSQL backend's decoder). Every read joins the two
/// with [`FROM`].
pub(super) const COLUMNS: &str = "events.id, delivery_id, dedup_key, source, type, actor, subject, attrs, \
                       state, worker_name, task_id, created_at, updated_at, \
                       body.size, body.codec, body.data";

/// [`COLUMNS`] without the body's bytes, for [`decode_summary`].
pub(super) const SUMMARY_COLUMNS: &str = "events.id, delivery_id, dedup_key, source, type, actor, subject, \
                               attrs, state, worker_name, task_id, created_at, updated_at, \
                               body.size";

/// Events with their bodies.
pub(super) const FROM: &str = "events LEFT JOIN event_bodies AS body ON body.event_id = events.id";

/// Index of the body's size in [`COLUMNS`] and [`SUMMARY_COLUMNS`]; its codec and data follow.
pub(super) const BODY: usize = 13;

/// Stores `event` unless it is a duplicate. Runs inside the caller's transaction.
pub(super) fn insert(
    connection: &Connection,
    path: &Path,
    encoded: EncodedEvent,
    now: i64,
) -> Result<InsertOutcome, Error> {
    let EncodedEvent { event, body } = encoded;
    let query_error = query_error(path, "storing an event");
    let event = EventRecord::received(EventId::generate()?, event, now);
    let attrs = serde_json::to_string(&event.attrs).map_err(|error| Error::Encode {
        source_name: event.source.clone(),
        reason: error.to_string(),
    })?;
    let [done_a, done_b, done_c] = EventState::TERMINAL;
    // The SELECT's WHERE refuses a dedup key held by an unfinished event; ON CONFLICT turns a
    // repeated (source, delivery_id) into a no-op. Either way nothing changes and no error is
    // raised.
    let changed = connection
        .prepare_cached(
            "INSERT INTO events (id, delivery_id, dedup_key, source, type, actor, subject, attrs, \
                                 state, created_at, updated_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10 \
             WHERE ?3 = '' OR NOT EXISTS ( \
                 SELECT 1 FROM events \
                 WHERE dedup_key = ?3 AND dedup_key != '' AND state NOT IN (?11, ?12, ?13)) \
             ON CONFLICT DO NOTHING",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                event.id,
                event.delivery_id,
                event.dedup_key,
                event.source,
                event.event_type,
                event.actor,
                event.subject,
                attrs,
                EventState::Received,
                now,
                done_a,
                done_b,
                done_c,
            ])
        })
        .map_err(&query_error)?;
    if changed == 1 {
        if body.size > 0 {
            connection
                .prepare_cached(
                    "INSERT INTO event_bodies (event_id, size, codec, data) VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut statement| {
                    statement.execute(params![event.id, body.size, body.codec, body.data])
                })
                .map_err(&query_error)?;
        }
        return Ok(InsertOutcome::Inserted(event));
    }
    match find_duplicate(
        connection,
        &event.source,
        &event.delivery_id,
        &event.dedup_key,
    )
    .map_err(&query_error)?
    {
        Some(existing) => Ok(InsertOutcome::Duplicate { existing }),
        None => Err(Error::NotInserted {
            database: path.display().to_string(),
            id: event.id,
        }),
    }
}

/// The event that an insert with these keys duplicates, if any.
fn find_duplicate(
    connection: &Connection,
    source: &str,
    delivery_id: &str,
    dedup_key: &str,
) -> rusqlite::Result<Option<EventId>> {
    if !delivery_id.is_empty() {
        let existing = connection
            .prepare_cached(
                "SELECT id FROM events \
                 WHERE source = ?1 AND delivery_id = ?2 AND delivery_id != ''",
            )?
            .query_row(params![source, delivery_id], |row| row.get(0))
            .optional()?;
        if existing.is_some() {
            return Ok(existing);
        }
    }
    if !dedup_key.is_empty() {
        let [done_a, done_b, done_c] = EventState::TERMINAL;
        return connection
            .prepare_cached(
                "SELECT id FROM events \
                 WHERE dedup_key = ?1 AND dedup_key != '' AND state NOT IN (?2, ?3, ?4) \
                 ORDER BY created_at DESC, rowid DESC LIMIT 1",
            )?
            .query_row(params![dedup_key, done_a, done_b, done_c], |row| row.get(0))
            .optional();
    }
    Ok(None)
}

/// The event with this id, if stored.
pub(super) fn get(connection: &Connection, id: &EventId) -> rusqlite::Result<Option<EventRecord>> {
    connection
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM {FROM} WHERE events.id = ?1"
        ))?
        .query_row(params![id], decode)
        .optional()
}

/// Events matching `filter`, newest first (insertion order breaks ties within a second).
pub(super) fn list(
    connection: &Connection,
    filter: &EventFilter,
) -> rusqlite::Result<Vec<EventRecord>> {
    select(connection, COLUMNS, filter, decode)
}

/// [`list`] without the bodies: SQLite reads a blob's length without reading the blob.
pub(super) fn list_summaries(
    connection: &Connection,
    filter: &EventFilter,
) -> rusqlite::Result<Vec<EventSummary>> {
    select(connection, SUMMARY_COLUMNS, filter, decode_summary)
}

fn select<T>(
    connection: &Connection,
    columns: &str,
    filter: &EventFilter,
    decode: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    if let Some(state) = filter.state {
        conditions.push("state = ?");
        values.push(Value::Text(state.as_str().to_owned()));
    }
    for (column, value) in [
        ("source = ?", &filter.source),
        ("type = ?", &filter.event_type),
        ("actor = ?", &filter.actor),
        ("subject = ?", &filter.subject),
    ] {
        if let Some(value) = value {
            conditions.push(column);
            values.push(Value::Text(value.clone()));
        }
    }
    // SQLite's LIKE ignores the case of ASCII letters.
    if let Some(pattern) = filter.text_pattern() {
        conditions.push(
            "(type LIKE ? ESCAPE '\\' OR actor LIKE ? ESCAPE '\\' OR subject LIKE ? ESCAPE '\\' \
             OR delivery_id LIKE ? ESCAPE '\\')",
        );
        values.extend(std::iter::repeat_n(Value::Text(pattern), 4));
    }
    if let Some(since) = filter.since {
        conditions.push("created_at >= ?");
        values.push(Value::Integer(since));
    }
    if let Some(until) = filter.until {
        conditions.push("created_at < ?");
        values.push(Value::Integer(until));
    }
    let mut sql = format!("SELECT {columns} FROM {FROM}");
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(" ORDER BY created_at DESC, events.rowid DESC LIMIT ?");
    values.push(Value::Integer(i64::from(filter.effective_limit())));
    let mut statement = connection.prepare_cached(&sql)?;
    let rows = statement.query_map(params_from_iter(values), decode)?;
    rows.collect()
}

/// Moves the event from `from` to `to`; false when it does not exist or is not in `from`.
pub(super) fn transition(
    connection: &Connection,
    id: &EventId,
    from: EventState,
    to: EventState,
    now: i64,
) -> rusqlite::Result<bool> {
    let changed = connection
        .prepare_cached(
            "UPDATE events SET state = ?3, updated_at = ?4 WHERE id = ?1 AND state = ?2",
        )?
        .execute(params![id, from, to, now])?;
    Ok(changed == 1)
}

/// Replaces the attrs of the event if it is still `received`; false otherwise.
pub(super) fn set_attrs(
    connection: &Connection,
    path: &Path,
    id: &EventId,
    attrs: &serde_json::Map<String, serde_json::Value>,
    now: i64,
) -> Result<bool, Error> {
    let encoded = serde_json::to_string(attrs).map_err(|error| Error::Encode {
        source_name: id.to_string(),
        reason: error.to_string(),
    })?;
    let changed = connection
        .prepare_cached(
            "UPDATE events SET attrs = ?2, updated_at = ?3 WHERE id = ?1 AND state = ?4",
        )
        .and_then(|mut statement| {
            statement.execute(params![id, encoded, now, EventState::Received])
        })
        .map_err(query_error(path, "updating an event's attrs"))?;
    Ok(changed == 1)
}

/// One row of [`SUMMARY_COLUMNS`] as a summary.
fn decode_summary(row: &Row<'_>) -> rusqlite::Result<EventSummary> {
    let record = decode_with(row, |_| Ok(Vec::new()))?;
    let raw_bytes: Option<u64> = row.get(BODY)?;
    Ok(EventSummary::of(record, raw_bytes.unwrap_or_default()))
}

/// One row of [`COLUMNS`] as a record, its body decoded.
fn decode(row: &Row<'_>) -> rusqlite::Result<EventRecord> {
    decode_with(row, |row| {
        let Some(size) = row.get::<_, Option<usize>>(BODY)? else {
            return Ok(Vec::new());
        };
        StoredBody::decode(size, row.get(BODY + 1)?, row.get(BODY + 2)?).map_err(|reason| {
            rusqlite::Error::FromSqlConversionFailure(BODY + 2, Type::Blob, reason.into())
        })
    })
}

/// One row of [`COLUMNS`], its body read by `raw`.
fn decode_with(
    row: &Row<'_>,
    raw: fn(&Row<'_>) -> rusqlite::Result<Vec<u8>>,
) -> rusqlite::Result<EventRecord> {
    /// Index of `attrs` in [`COLUMNS`].
    const ATTRS: usize = 7;
    let attrs: String = row.get(ATTRS)?;
    let attrs = serde_json::from_str(&attrs).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(ATTRS, Type::Text, Box::new(error))
    })?;
    Ok(EventRecord {
        id: row.get(0)?,
        delivery_id: row.get(1)?,
        dedup_key: row.get(2)?,
        source: row.get(3)?,
        event_type: row.get(4)?,
        actor: row.get(5)?,
        subject: row.get(6)?,
        attrs,
        raw: raw(row)?,
        state: row.get(8)?,
        worker_name: row.get(9)?,
        task_id: row.get(10)?,
        created_at: row.get(11)?,
        updated_at: row.get(12)?,
    })
}

#[cfg(test)]
mod tests {

    use serde_json::json;

    use super::*;
    use crate::store::sqlite::migrations::migrated_database as database;

    fn event(source: &str, delivery: &str) -> NewEvent {
        let mut attrs = Map::new();
        attrs.insert("action".into(), json!("opened"));
        NewEvent {
            source: source.into(),
            event_type: "pull_request".into(),
            delivery_id: (!delivery.is_empty()).then(|| delivery.into()),
            dedup_key: None,
            actor: "octocat".into(),
            subject: "acme/widgets#1".into(),
            attrs,
            raw: b"{\"action\":\"opened\"}".to_vec(),
        }
    }

    fn inserted(outcome: InsertOutcome) -> EventRecord {
        match outcome {
            InsertOutcome::Inserted(record) => record,
            InsertOutcome::Duplicate { existing } => panic!("unexpected duplicate of {existing}"),
        }
    }

    #[test]
    fn insert_then_get_returns_the_same_record() {
        let (_dir, path, connection) = database();
        let record =
            inserted(insert(&connection, &path, event("github", "d-1").into(), 1_000).unwrap());
        assert_eq!(record.state, EventState::Received);
        assert_eq!(record.created_at, 1_000);
        let read = get(&connection, &record.id).unwrap().unwrap();
        assert_eq!(read, record);
        assert_eq!(
            get(&connection, &EventId::generate().unwrap()).unwrap(),
            None
        );
    }

    #[test]
    fn summaries_are_the_list_without_bodies_but_with_their_sizes() {
        let (_dir, path, connection) = database();
        let mut large = event("github", "d-large");
        large.raw = vec![b'x'; 300_000];
        let large = inserted(insert(&connection, &path, large.into(), 100).unwrap());
        let small =
            inserted(insert(&connection, &path, event("github", "d-small").into(), 200).unwrap());
        let summaries = list_summaries(&connection, &EventFilter::default()).unwrap();
        let sizes: Vec<(EventId, u64)> = summaries
            .iter()
            .map(|summary| (summary.id.clone(), summary.raw_bytes))
            .collect();
        assert_eq!(
            sizes,
            [
                (small.id.clone(), small.raw.len() as u64),
                (large.id.clone(), 300_000)
            ]
        );
        assert_eq!(summaries[0].attrs, small.attrs);
        let json = serde_json::to_value(&summaries[1]).unwrap();
        assert!(json.get("raw").is_none(), "{json}");
        assert_eq!(json["type"], "pull_request");
    }

    /// A body is kept compressed in a table of its own, read back whole, and deleted with its
    /// event; an empty body takes no row.
    #[test]
    fn bodies_are_stored_compressed_beside_their_events_and_go_with_them() {
        let (_dir, path, connection) = database();
        let mut large = event("github", "d-large");
        large.raw = serde_json::to_vec(&json!({
            "commits": (0..300).map(|n| json!({"id": format!("{n:040x}"), "message": "Fix it"}))
                .collect::<Vec<_>>()
        }))
        .unwrap();
        let raw = large.raw.clone();
        let stored = inserted(insert(&connection, &path, large.into(), 1).unwrap());
        let mut empty = event("github", "d-empty");
        empty.raw.clear();
        let empty = inserted(insert(&connection, &path, empty.into(), 2).unwrap());

        let (codec, kept): (String, usize) = connection
            .query_row(
                "SELECT codec, length(data) FROM event_bodies WHERE event_id = ?1",
                params![stored.id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(codec, "zstd");
        assert!(kept * 3 < raw.len(), "{kept} bytes kept of {}", raw.len());
        assert_eq!(get(&connection, &stored.id).unwrap().unwrap().raw, raw);
        assert_eq!(get(&connection, &empty.id).unwrap().unwrap().raw, b"");
        let rows = |connection: &Connection| -> i64 {
            connection
                .query_row("SELECT count(*) FROM event_bodies", [], |row| row.get(0))
                .unwrap()
        };
        assert_eq!(rows(&connection), 1);

        connection
            .execute("DELETE FROM events WHERE id = ?1", params![stored.id])
            .unwrap();
        assert_eq!(rows(&connection), 0);
    }

    #[test]
    fn list_filters_and_orders_newest_first() {
        let (_dir, path, connection) = database();
        let a = inserted(insert(&connection, &path, event("github", "").into(), 100).unwrap());
        let b = inserted(insert(&connection, &path, event("gitlab", "").into(), 200).unwrap());
        let c = inserted(insert(&connection, &path, event("github", "").into(), 200).unwrap());
        let d = inserted(insert(&connection, &path, event("github", "").into(), 300).unwrap());
        assert!(
            transition(
                &connection,
                &d.id,
                EventState::Received,
                EventState::Skipped,
                400
            )
            .unwrap()
        );

        let ids = |filter: EventFilter| -> Vec<EventId> {
            list(&connection, &filter)
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect()
        };
        assert_eq!(
            ids(EventFilter::default()),
            [d.id.clone(), c.id.clone(), b.id.clone(), a.id.clone()]
        );
        let github = EventFilter {
            source: Some("github".into()),
            ..EventFilter::default()
        };
        assert_eq!(
            ids(github.clone()),
            [d.id.clone(), c.id.clone(), a.id.clone()]
        );
        let received_github = EventFilter {
            state: Some(EventState::Received),
            ..github
        };
        assert_eq!(ids(received_github), [c.id.clone(), a.id.clone()]);
        let one = EventFilter {
            limit: 1,
            ..EventFilter::default()
        };
        assert_eq!(ids(one), std::slice::from_ref(&d.id));
        let zero = EventFilter {
            limit: 0,
            ..EventFilter::default()
        };
        assert_eq!(ids(zero), [d.id]);
    }

    #[test]
    fn limit_is_clamped() {
        let limit = |limit| {
            EventFilter {
                limit,
                ..EventFilter::default()
            }
            .effective_limit()
        };
        assert_eq!(limit(0), 1);
        assert_eq!(limit(50), 50);
        assert_eq!(limit(5_000), MAX_LIST_LIMIT);
        assert_eq!(EventFilter::default().limit, DEFAULT_LIST_LIMIT);
    }

    #[test]
    fn duplicates_are_reported_not_raised() {
        let (_dir, path, connection) = database();
        let first = inserted(insert(&connection, &path, event("github", "d-1").into(), 1).unwrap());
        assert_eq!(
            insert(&connection, &path, event("github", "d-1").into(), 2).unwrap(),
            InsertOutcome::Duplicate {
                existing: first.id.clone()
            }
        );
        inserted(insert(&connection, &path, event("gitlab", "d-1").into(), 3).unwrap());

        let keyed = |delivery: &str| NewEvent {
            dedup_key: Some("acme/widgets#1".into()),
            ..event("github", delivery)
        };
        let held = inserted(insert(&connection, &path, keyed("k-1").into(), 4).unwrap());
        assert_eq!(
            insert(&connection, &path, keyed("k-2").into(), 5).unwrap(),
            InsertOutcome::Duplicate {
                existing: held.id.clone()
            }
        );
        assert!(
            transition(
                &connection,
                &held.id,
                EventState::Received,
                EventState::Failed,
                6
            )
            .unwrap()
        );
        inserted(insert(&connection, &path, keyed("k-3").into(), 7).unwrap());
    }

    #[test]
    fn attrs_change_only_while_the_event_is_received() {
        let (_dir, path, connection) = database();
        let stored =
            inserted(insert(&connection, &path, event("github", "d-1").into(), 1).unwrap());
        let mut attrs = serde_json::Map::new();
        attrs.insert("diff".into(), "+added".into());
        assert!(set_attrs(&connection, &path, &stored.id, &attrs, 2).unwrap());
        let read = get(&connection, &stored.id).unwrap().expect("stored");
        assert_eq!(read.attrs["diff"], "+added");
        assert_eq!(read.updated_at, 2);

        transition(
            &connection,
            &stored.id,
            EventState::Received,
            EventState::Skipped,
            3,
        )
        .unwrap();
        attrs.insert("diff".into(), "+later".into());
        assert!(!set_attrs(&connection, &path, &stored.id, &attrs, 4).unwrap());
        let read = get(&connection, &stored.id).unwrap().expect("stored");
        assert_eq!(read.attrs["diff"], "+added");
    }

    #[test]
    fn transition_is_guarded_by_the_current_state() {
        let (_dir, path, connection) = database();
        let record = inserted(insert(&connection, &path, event("github", "").into(), 1).unwrap());
        assert!(
            !transition(
                &connection,
                &record.id,
                EventState::Matched,
                EventState::Dispatched,
                2
            )
            .unwrap()
        );
        assert!(
            transition(
                &connection,
                &record.id,
                EventState::Received,
                EventState::Matched,
                3
            )
            .unwrap()
        );
        let read = get(&connection, &record.id).unwrap().unwrap();
        assert_eq!((read.state, read.updated_at), (EventState::Matched, 3));
    }

    #[test]
    fn json_has_the_api_shape() {
        let (_dir, path, connection) = database();
        let mut new = event("github", "d-1");
        new.raw = b"caf\xc3\xa9 \xff".to_vec();
        let record = inserted(insert(&connection, &path, new.into(), 951_782_400).unwrap());
        let json = serde_json::to_value(&record).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = [
            "id",
            "delivery_id",
            "dedup_key",
            "source",
            "type",
            "actor",
            "subject",
            "attrs",
            "raw",
            "state",
            "worker_name",
            "task_id",
            "created_at",
            "updated_at",
        ];
        let mut keys_sorted = keys.clone();
        keys_sorted.sort_unstable();
        expected.sort_unstable();
        assert_eq!(keys_sorted, expected);
        assert_eq!(json["type"], "pull_request");
        assert_eq!(json["attrs"], json!({"action": "opened"}));
        assert_eq!(json["raw"], "café \u{fffd}");
        assert_eq!(json["state"], "received");
        assert_eq!(json["created_at"], "2000-02-29T00:00:00Z");
        assert_eq!(json["id"], record.id.as_str());
    }

    #[test]
    fn an_empty_source_is_refused_by_the_schema() {
        let (_dir, path, connection) = database();
        let error = insert(&connection, &path, event("", "").into(), 1).unwrap_err();
        assert!(matches!(error, Error::Query { .. }), "{error}");
    }
}
