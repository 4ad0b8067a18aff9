//! [`EventId`]: the identity of a stored event.
//!
//! Ids are made here, from the system's random source, so that no caller can pick one and every
//! id in the database has the same shape: 32 lowercase hexadecimal characters (16 random bytes,
//! as in the Go mecha). Parsing is the only other way to get one, and it checks that shape. Task
//! ids share the shape and the two helpers below that make and check it.

use serde::{Deserialize, Serialize};

use super::Error;
use super::stored_text::hex_id;

/// 16 bytes: 128 random bits, so that ids never collide in practice.
const ID_BYTES: usize = 16;

/// Two hexadecimal characters per byte.
const ID_LEN: usize = ID_BYTES * 2;

/// The id of a stored event: 32 lowercase hexadecimal characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

impl EventId {
    /// A new id from 16 random bytes.
    pub fn generate() -> Result<EventId, Error> {
        random_hex().map(EventId)
    }

    /// The id as text, as stored and as shown in the API.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 32 lowercase hexadecimal characters from 16 random bytes: the shape of every id the store
/// makes (events here, tasks in `task_id.rs`).
pub(super) fn random_hex() -> Result<String, Error> {
    let mut bytes = [0u8; ID_BYTES];
    getrandom::fill(&mut bytes).map_err(|error| Error::Random {
        reason: error.to_string(),
    })?;
    let mut id = String::with_capacity(ID_LEN);
    for byte in bytes {
        id.push(hex_digit(byte >> 4));
        id.push(hex_digit(byte & 0x0f));
    }
    Ok(id)
}

/// `value` in the stored form of an id (lowercase), if it is 32 hexadecimal characters in either
/// case.
pub(super) fn parse_hex(value: &str) -> Option<String> {
    (value.len() == ID_LEN && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| value.to_ascii_lowercase())
}

/// The lowercase hexadecimal digit for a value below 16.
fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble & 0x0f)])
}

hex_id!(EventId, InvalidEventId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_32_lowercase_hex_and_differ() {
        let first = EventId::generate().unwrap();
        let second = EventId::generate().unwrap();
        assert_eq!(first.as_str().len(), 32);
        assert!(
            first
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_ne!(first, second);
        assert_eq!(first.to_string().parse::<EventId>().unwrap(), first);
    }

    #[test]
    fn parsing_checks_length_and_digits() {
        let upper = "0123456789ABCDEF0123456789ABCDEF";
        assert_eq!(
            upper.parse::<EventId>().unwrap().as_str(),
            "0123456789abcdef0123456789abcdef"
        );
        for bad in [
            "",
            "abc",
            "0123456789abcdef0123456789abcdeg",
            &"a".repeat(33),
        ] {
            assert!(matches!(
                bad.parse::<EventId>(),
                Err(Error::InvalidEventId { .. })
            ));
        }
    }

    #[test]
    fn serde_uses_the_plain_string() {
        let id: EventId = "00112233445566778899aabbccddeeff".parse().unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"00112233445566778899aabbccddeeff\"");
        assert_eq!(serde_json::from_str::<EventId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<EventId>("\"nope\"").is_err());
    }
}
