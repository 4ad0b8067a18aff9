//! Event bodies as the store keeps them: written once, beside the event rather than in its row,
//! and compressed when that saves space.
//!
//! A forge's webhook body is tens of kilobytes of JSON that nothing changes after receipt, while
//! the event's own row changes state several times. Kept in the row, every state change rewrote
//! the whole body into the WAL; kept in `event_bodies`, a state change writes a small row, and
//! the body is written once, at about a sixth of its size (zstd on GitHub's payloads).
//!
//! Compression runs on the caller's thread before the write is queued, so the single writer
//! thread only copies bytes.

use std::cell::RefCell;

use super::stored_text::stored_as_text;

/// zstd's level 3, its default: on a 28 KB pull-request payload it takes tens of microseconds
/// and keeps about a sixth of the bytes; higher levels cost several times the CPU for a few
/// percent more.
const LEVEL: i32 = 3;

/// Bodies shorter than this are kept as they are: compressing them saves a few bytes at most.
const COMPRESS_FROM: usize = 256;

/// How a body's bytes are encoded in `event_bodies.data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Codec {
    /// The bytes as received.
    Identity,
    /// One zstd frame.
    Zstd,
}

impl Codec {
    /// Every codec, in the order of the type's definition.
    pub const ALL: [Codec; 2] = [Codec::Identity, Codec::Zstd];

    /// The name stored in `event_bodies.codec`.
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Identity => "identity",
            Codec::Zstd => "zstd",
        }
    }
}

stored_as_text!(Codec, UnknownBodyCodec);

/// A body ready for `event_bodies`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StoredBody {
    /// The length of the body as received.
    pub size: usize,
    pub codec: Codec,
    pub data: Vec<u8>,
}

thread_local! {
    /// One compression context per thread, reused: making one allocates its tables anew.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
}

impl StoredBody {
    /// `raw` as it will be stored: compressed if it is long enough and compressing makes it
    /// shorter, as it is otherwise (and if compression fails, which only a lack of memory
    /// causes: the body is then kept whole rather than lost).
    pub fn encode(raw: &[u8]) -> StoredBody {
        let identity = || StoredBody {
            size: raw.len(),
            codec: Codec::Identity,
            data: raw.to_vec(),
        };
        if raw.len() < COMPRESS_FROM {
            return identity();
        }
        let compressed = COMPRESSOR.with_borrow_mut(|compressor| {
            let compressor = match compressor {
                Some(compressor) => compressor,
                None => compressor.insert(zstd::bulk::Compressor::new(LEVEL).ok()?),
            };
            compressor.compress(raw).ok()
        });
        match compressed {
            Some(data) if data.len() < raw.len() => StoredBody {
                size: raw.len(),
                codec: Codec::Zstd,
                data,
            },
            _ => identity(),
        }
    }

    /// The body as received, from a row of `event_bodies`.
    pub fn decode(size: usize, codec: Codec, data: Vec<u8>) -> Result<Vec<u8>, String> {
        match codec {
            Codec::Identity => Ok(data),
            Codec::Zstd => {
                let raw = zstd::bulk::decompress(&data, size)
                    .map_err(|error| format!("the stored body does not decompress: {error}"))?;
                if raw.len() == size {
                    Ok(raw)
                } else {
                    Err(format!(
                        "the stored body decompresses to {} bytes, not the {size} recorded",
                        raw.len()
                    ))
                }
            }
        }
    }
}

/// `len` bytes with no repetition (xorshift from `seed`), which zstd cannot shrink: for tests
/// that need bodies stored whole.
#[cfg(test)]
pub(super) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Vec<u8> {
        let mut json = String::from("{\"commits\":[");
        for n in 0..400 {
            json.push_str(&format!(
                "{{\"id\":\"{n:040x}\",\"message\":\"Fix the widget number {n}\",\"author\":\"octocat\"}},"
            ));
        }
        json.push_str("{}]}");
        json.into_bytes()
    }

    #[test]
    fn every_codec_round_trips_through_text() {
        for codec in Codec::ALL {
            assert_eq!(codec.as_str().parse::<Codec>().unwrap(), codec);
        }
        assert!("gzip".parse::<Codec>().is_err());
    }

    #[test]
    fn a_json_payload_is_compressed_and_decodes_to_the_same_bytes() {
        let raw = payload();
        let stored = StoredBody::encode(&raw);
        assert_eq!(stored.codec, Codec::Zstd);
        assert_eq!(stored.size, raw.len());
        assert!(
            stored.data.len() * 3 < raw.len(),
            "{} of {}",
            stored.data.len(),
            raw.len()
        );
        assert_eq!(
            StoredBody::decode(stored.size, stored.codec, stored.data),
            Ok(raw)
        );
    }

    #[test]
    fn short_or_incompressible_bodies_are_kept_as_they_are() {
        let short = b"{\"zen\":\"Keep it logically awesome.\"}".to_vec();
        assert_eq!(StoredBody::encode(&short).codec, Codec::Identity);
        assert_eq!(StoredBody::encode(&short).data, short);

        // zstd's frame would only add to these.
        let noise = noise(4096, 0);
        let stored = StoredBody::encode(&noise);
        assert_eq!((stored.codec, &stored.data), (Codec::Identity, &noise));
    }

    #[test]
    fn a_damaged_body_is_an_error_not_a_panic() {
        let stored = StoredBody::encode(&payload());
        let mut damaged = stored.data.clone();
        damaged.truncate(damaged.len() / 2);
        assert!(StoredBody::decode(stored.size, Codec::Zstd, damaged).is_err());
        let wrong_size = StoredBody::decode(stored.size + 1, Codec::Zstd, stored.data);
        assert!(wrong_size.is_err(), "{wrong_size:?}");
    }
}
