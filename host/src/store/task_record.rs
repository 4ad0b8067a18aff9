//! The task row types: [`NewTask`] going in, [`TaskRecord`] coming out, and how a row becomes
//! a record.
//!
//! The record is also the API's task JSON (reference 9.4, plus `trace_id`): times in RFC 3339,
//! and `context` and `result` as the JSON they hold, so that a client reads a worker's structured
//! answer without parsing a string in a string.

use rusqlite::Row;
use rusqlite::types::Type;
use serde::{Serialize, Serializer};

use super::events::MAX_LIST_LIMIT;
use super::timestamp::{
    serialize_optional_rfc3339, serialize_optional_rfc3339_ms, serialize_rfc3339,
    serialize_rfc3339_ms,
};
use super::{Error, EventId, TaskId, TaskState, WriteBackState};

/// 3 tries before a task is dead-lettered: the Go mecha's default (reference 6.4).
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// 50 tasks per page: what `mecha tasks` shows at once.
pub const DEFAULT_TASK_LIMIT: u32 = 50;

/// A task to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    /// The worker that is to run it. Must not be empty.
    pub worker_name: String,
    /// The rendered prompt.
    pub prompt: String,
    /// What the worker gets beside the prompt (usually an object).
    pub context: serde_json::Value,
    /// The event it was made from; `None` for tasks posted directly (`POST /task`).
    pub event_id: Option<EventId>,
    /// The audit trail it belongs to (the event's id for event tasks).
    pub trace_id: String,
    /// How many tries before it is failed for good.
    pub max_retries: u32,
}

impl Default for NewTask {
    fn default() -> NewTask {
        NewTask {
            worker_name: String::new(),
            prompt: String::new(),
            context: serde_json::Value::Object(serde_json::Map::new()),
            event_id: None,
            trace_id: String::new(),
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }
}

/// A stored task, as read back and as shown by the HTTP API (reference 9.4, plus `trace_id`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskRecord {
    pub id: TaskId,
    pub worker_name: String,
    pub prompt: String,
    /// As stored; a stored text that is not JSON is shown as a string.
    pub context: serde_json::Value,
    /// The event it was made from; `null` in JSON for direct tasks.
    pub event_id: Option<EventId>,
    /// `<event_id>:<worker_name>`; empty for direct tasks.
    pub dedup_key: String,
    pub trace_id: String,
    pub state: TaskState,
    /// The worker's answer as received; in JSON, the parsed value when it is JSON, else a string.
    #[serde(serialize_with = "serialize_json_or_string")]
    pub result: String,
    /// Why the last try failed; empty when none did.
    pub error: String,
    /// Failed tries so far.
    pub attempts: u32,
    pub max_retries: u32,
    /// Unix milliseconds before which a pending task is not sent again (retries of a fast worker
    /// are sub-second); RFC 3339 or `null` in JSON.
    #[serde(serialize_with = "serialize_optional_rfc3339_ms")]
    pub next_retry_at: Option<i64>,
    /// Unix seconds; RFC 3339 in JSON.
    #[serde(serialize_with = "serialize_rfc3339")]
    pub created_at: i64,
    /// Unix seconds; RFC 3339 in JSON.
    #[serde(serialize_with = "serialize_rfc3339")]
    pub updated_at: i64,
    /// Unix seconds of the last dispatch; RFC 3339 or `null` in JSON.
    #[serde(serialize_with = "serialize_optional_rfc3339")]
    pub dispatched_at: Option<i64>,
    /// Unix seconds when it completed or failed; RFC 3339 or `null` in JSON.
    #[serde(serialize_with = "serialize_optional_rfc3339")]
    pub completed_at: Option<i64>,
    /// Where writing the result back stands.
    pub write_back: WriteBackState,
    /// Failed write-back tries so far.
    pub write_back_attempts: u32,
    /// Unix milliseconds before which a pending write-back is not tried again; RFC 3339 or
    /// `null` in JSON.
    #[serde(serialize_with = "serialize_optional_rfc3339_ms")]
    pub write_back_next_at: Option<i64>,
    /// Why the last write-back try failed; empty when none did.
    pub write_back_error: String,
    /// The policies' combined decision (`{"allowed":[…],"denied":[…]}`); `null` until decided.
    #[serde(serialize_with = "serialize_json_or_null")]
    pub decision: String,
    /// Which daemon holds the task while it is `dispatched`, or while it tries the task's
    /// write-back, and until when; `null` otherwise.
    pub lease: Option<Lease>,
}

/// A daemon's hold on a task it is sending: no other daemon sends the task while the lease runs,
/// and the holder renews it while the worker works. A lease that runs out (its daemon died or lost
/// the database) is released by any daemon, and the task is sent again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// The daemon's id (see [`crate::config::home::Home::daemon_id`]).
    pub owner: String,
    /// Unix milliseconds; RFC 3339 in JSON.
    #[serde(serialize_with = "serialize_rfc3339_ms")]
    pub until: i64,
}

/// What became of a task creation.
#[expect(
    clippy::large_enum_variant,
    reason = "returned once per task and unpacked at once; boxing would add an allocation to \
              every created task"
)]
#[derive(Debug, Clone, PartialEq)]
pub enum CreateTaskOutcome {
    /// The task is stored, pending.
    Created(TaskRecord),
    /// Nothing was stored: the worker already has a task for this event, `existing`.
    Duplicate { existing: TaskId },
}

/// What [`super::TaskStore::create_tasks_for_event`] did with an event's tasks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreatedTasks {
    /// The tasks stored, pending, in the order given.
    pub created: Vec<TaskRecord>,
    /// The tasks already there for a worker that was given another one for the event.
    pub duplicates: Vec<TaskId>,
}

/// Which tasks [`super::TaskStore::list_tasks`] returns, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFilter {
    /// Only tasks in this state.
    pub state: Option<TaskState>,
    /// Only tasks for this worker.
    pub worker: Option<String>,
    /// Only tasks made from this event.
    pub event_id: Option<EventId>,
    /// Only tasks whose write-back is in this state (`failed`: those needing attention).
    pub write_back: Option<WriteBackState>,
    /// At most this many; clamped to `1..=`[`MAX_LIST_LIMIT`].
    pub limit: u32,
    /// Only tasks older than this one (keyset pagination: pass the last task of the previous
    /// page). An unknown task gives an empty page.
    pub before: Option<TaskId>,
}

impl Default for TaskFilter {
    fn default() -> TaskFilter {
        TaskFilter {
            state: None,
            worker: None,
            event_id: None,
            write_back: None,
            limit: DEFAULT_TASK_LIMIT,
            before: None,
        }
    }
}

impl TaskFilter {
    /// The limit actually applied.
    pub fn effective_limit(&self) -> u32 {
        self.limit.clamp(1, MAX_LIST_LIMIT)
    }
}

/// Columns in the order [`decode`] reads them.
pub(super) const COLUMNS: &str = "id, worker_name, prompt, context, event_id, dedup_key, \
                                  trace_id, state, result, error, attempts, max_retries, \
                                  next_retry_at, created_at, updated_at, dispatched_at, \
                                  completed_at, write_back, write_back_attempts, \
                                  write_back_next_at, write_back_error, decision, \
                                  lease_owner, lease_until";

/// One row of [`COLUMNS`] as a record.
pub(super) fn decode(row: &Row<'_>) -> rusqlite::Result<TaskRecord> {
    /// Index of `context` in [`COLUMNS`].
    const CONTEXT: usize = 3;
    /// Index of `event_id` in [`COLUMNS`].
    const EVENT_ID: usize = 4;
    let context: String = row.get(CONTEXT)?;
    let context = serde_json::from_str(&context).unwrap_or(serde_json::Value::String(context));
    let event_id: String = row.get(EVENT_ID)?;
    let event_id = if event_id.is_empty() {
        None
    } else {
        Some(event_id.parse().map_err(|error: Error| {
            rusqlite::Error::FromSqlConversionFailure(EVENT_ID, Type::Text, Box::new(error))
        })?)
    };
    Ok(TaskRecord {
        id: row.get(0)?,
        worker_name: row.get(1)?,
        prompt: row.get(2)?,
        context,
        event_id,
        dedup_key: row.get(5)?,
        trace_id: row.get(6)?,
        state: row.get(7)?,
        result: row.get(8)?,
        error: row.get(9)?,
        attempts: row.get(10)?,
        max_retries: row.get(11)?,
        next_retry_at: row.get(12)?,
        created_at: row.get(13)?,
        updated_at: row.get(14)?,
        dispatched_at: row.get(15)?,
        completed_at: row.get(16)?,
        write_back: row.get(17)?,
        write_back_attempts: row.get(18)?,
        write_back_next_at: row.get(19)?,
        write_back_error: row.get(20)?,
        decision: row.get(21)?,
        lease: match (row.get(22)?, row.get(23)?) {
            (Some(owner), Some(until)) => Some(Lease { owner, until }),
            _ => None,
        },
    })
}

impl TaskRecord {
    /// `task` as stored under `id` at `now` (unix seconds): pending, never tried.
    pub(super) fn pending(id: TaskId, task: NewTask, dedup_key: String, now: i64) -> TaskRecord {
        TaskRecord {
            id,
            worker_name: task.worker_name,
            prompt: task.prompt,
            context: task.context,
            event_id: task.event_id,
            dedup_key,
            trace_id: task.trace_id,
            state: TaskState::Pending,
            result: String::new(),
            error: String::new(),
            attempts: 0,
            max_retries: task.max_retries,
            next_retry_at: None,
            created_at: now,
            updated_at: now,
            dispatched_at: None,
            completed_at: None,
            write_back: WriteBackState::None,
            write_back_attempts: 0,
            write_back_next_at: None,
            write_back_error: String::new(),
            decision: String::new(),
            lease: None,
        }
    }
}

/// Serialises `text` as the JSON value it holds, or as a string when it is not JSON.
fn serialize_json_or_string<S: Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value) => value.serialize(serializer),
        Err(_) => serializer.serialize_str(text),
    }
}

/// Stored JSON as its value; the empty text (nothing stored yet) as `null`.
fn serialize_json_or_null<S: Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    if text.is_empty() {
        serializer.serialize_none()
    } else {
        serialize_json_or_string(text, serializer)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::{CreateTaskOutcome, Durability, SqliteStore, TaskStore};

    fn open(dir: &tempfile::TempDir) -> SqliteStore {
        SqliteStore::open(&dir.path().join("mecha.db"), Durability::Full).unwrap()
    }

    #[tokio::test]
    async fn json_has_the_api_shape() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let task = NewTask {
            worker_name: "reviewer".into(),
            context: json!({"repo": "acme/widgets"}),
            ..NewTask::default()
        };
        let record = match store.create_task(task).await.unwrap() {
            CreateTaskOutcome::Created(record) => record,
            CreateTaskOutcome::Duplicate { .. } => panic!("a direct task is no duplicate"),
        };
        let holder = "here/0123456789abcdef";
        let lease = Lease {
            owner: holder.into(),
            until: i64::MAX,
        };
        store.claim_task(&record.id, lease).await.unwrap();
        store
            .complete_task(&record.id, holder, r#"{"verdict":"lgtm"}"#.into())
            .await
            .unwrap();
        let done = store.get_task(&record.id).await.unwrap().unwrap();
        let json = serde_json::to_value(&done).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut expected = [
            "id",
            "worker_name",
            "prompt",
            "context",
            "event_id",
            "dedup_key",
            "trace_id",
            "state",
            "result",
            "error",
            "attempts",
            "max_retries",
            "next_retry_at",
            "created_at",
            "updated_at",
            "dispatched_at",
            "completed_at",
            "write_back",
            "write_back_attempts",
            "write_back_next_at",
            "write_back_error",
            "decision",
            "lease",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(json["context"], json!({"repo": "acme/widgets"}));
        assert_eq!(json["result"], json!({"verdict": "lgtm"}));
        assert_eq!(json["state"], "completed");
        assert_eq!(json["event_id"], serde_json::Value::Null);
        assert_eq!(json["next_retry_at"], serde_json::Value::Null);
        assert!(json["completed_at"].as_str().unwrap().ends_with('Z'));
        // A direct task has nothing to write back, and no decision.
        assert_eq!(json["write_back"], "none");
        assert_eq!(json["decision"], serde_json::Value::Null);
        assert_eq!(
            json["lease"],
            serde_json::Value::Null,
            "a lease ends with its dispatch"
        );

        let plain = TaskRecord {
            result: "looks good".into(),
            created_at: 951_782_400,
            ..done
        };
        let json = serde_json::to_value(&plain).unwrap();
        assert_eq!(json["result"], "looks good");
        assert_eq!(json["created_at"], "2000-02-29T00:00:00Z");
    }
}
