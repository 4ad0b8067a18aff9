//! [`TaskId`]: the identity of a stored task.
//!
//! Same shape and rules as [`super::EventId`] (32 lowercase hexadecimal characters from 16 random
//! bytes, made only by the store or parsed and checked), but a type of its own so that an event
//! id can never be passed where a task id is meant.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

use super::Error;
use super::error::quote;
use super::event_id::{parse_hex, random_hex};

/// The id of a stored task: 32 lowercase hexadecimal characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TaskId(String);

impl TaskId {
    /// A new id from 16 random bytes.
    pub fn generate() -> Result<TaskId, Error> {
        random_hex().map(TaskId)
    }

    /// The id as text, as stored and as shown in the API.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TaskId {
    type Err = Error;

    /// Accepts 32 hexadecimal characters in either case and keeps them in lowercase.
    fn from_str(value: &str) -> Result<TaskId, Error> {
        parse_hex(value)
            .map(TaskId)
            .ok_or_else(|| Error::InvalidTaskId {
                value: quote(value),
            })
    }
}

impl TryFrom<String> for TaskId {
    type Error = Error;

    fn try_from(value: String) -> Result<TaskId, Error> {
        value.parse()
    }
}

impl From<TaskId> for String {
    fn from(id: TaskId) -> String {
        id.0
    }
}

impl ToSql for TaskId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.0.as_bytes())))
    }
}

impl FromSql for TaskId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<TaskId> {
        value
            .as_str()?
            .parse()
            .map_err(|error: Error| FromSqlError::Other(Box::new(error)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip_through_text_and_serde() {
        let id = TaskId::generate().unwrap();
        assert_eq!(id.as_str().len(), 32);
        assert_ne!(id, TaskId::generate().unwrap());
        assert_eq!(id.to_string().parse::<TaskId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<TaskId>(&json).unwrap(), id);
    }

    #[test]
    fn parsing_checks_the_shape() {
        let upper = "0123456789ABCDEF0123456789ABCDEF";
        assert_eq!(
            upper.parse::<TaskId>().unwrap().as_str(),
            "0123456789abcdef0123456789abcdef"
        );
        for bad in ["", "abc", "0123456789abcdef0123456789abcdeg"] {
            assert!(matches!(
                bad.parse::<TaskId>(),
                Err(Error::InvalidTaskId { .. })
            ));
        }
        assert!(serde_json::from_str::<TaskId>("\"nope\"").is_err());
    }
}
