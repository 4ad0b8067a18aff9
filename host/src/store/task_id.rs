//! [`TaskId`]: the identity of a stored task.
//!
//! Same shape and rules as [`super::EventId`] (32 lowercase hexadecimal characters from 16 random
//! bytes, made only by the store or parsed and checked), but a type of its own so that an event
//! id can never be passed where a task id is meant.

use serde::{Deserialize, Serialize};

use super::Error;
use super::event_id::random_hex;
use super::stored_text::hex_id;

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

hex_id!(TaskId, InvalidTaskId);

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
