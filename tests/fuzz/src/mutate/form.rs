//! Form-aware mutations for `application/x-www-form-urlencoded` bodies (Slack's slash commands
//! and interactive payloads): broken `%` escapes, `+`, pairs without `=`, repeated and missing
//! fields, and a `payload` field holding mutated JSON.

use crate::hostile;
use crate::rng::Rng;

/// Escapes that are not two hex digits, or decode to bytes that are not UTF-8.
const BAD_ESCAPES: &[&str] = &[
    "%",
    "%4",
    "%G1",
    "%zz",
    "%%",
    "%%41",
    "%-1",
    "%+1",
    "%C3",
    "%C3%28",
    "%FF",
    "%ED%A0%80",
    "%F0%9F",
    "%00",
    "%2",
    "%٣٣",
];

/// Field names Slack sends, so repeated and removed fields hit the ones parsers read.
const FIELDS: &[&str] = &[
    "command",
    "payload",
    "text",
    "user_id",
    "user_name",
    "channel_id",
    "trigger_id",
    "response_url",
    "team_id",
];

/// One `name=value` pair, still encoded; `value` is `None` for a pair without `=`.
struct Pair {
    name: Vec<u8>,
    value: Option<Vec<u8>>,
}

/// A form body as its pairs, in order.
pub struct FormBody {
    pairs: Vec<Pair>,
}

impl FormBody {
    pub fn empty() -> FormBody {
        FormBody { pairs: Vec::new() }
    }

    /// Splits an encoded body at `&` and each pair at its first `=`, keeping empty pairs.
    pub fn parse(body: &[u8]) -> FormBody {
        let pairs = body
            .split(|&byte| byte == b'&')
            .map(|pair| match pair.iter().position(|&byte| byte == b'=') {
                Some(at) => Pair {
                    name: pair[..at].to_vec(),
                    value: Some(pair[at + 1..].to_vec()),
                },
                None => Pair {
                    name: pair.to_vec(),
                    value: None,
                },
            })
            .collect();
        FormBody { pairs }
    }

    /// Sets the field `name`, replacing its first occurrence or adding it.
    pub fn set(&mut self, name: &str, value: Vec<u8>) {
        match self
            .pairs
            .iter_mut()
            .find(|pair| pair.name == name.as_bytes())
        {
            Some(pair) => pair.value = Some(value),
            None => self.pairs.push(Pair {
                name: name.as_bytes().to_vec(),
                value: Some(value),
            }),
        }
    }

    /// Applies one random form-aware mutation.
    pub fn mutate(&mut self, rng: &mut Rng) {
        let at = rng.below(self.pairs.len());
        match rng.below(9) {
            0 | 1 => {
                let escape = rng.pick(BAD_ESCAPES).as_bytes();
                if let Some(target) = self.part(rng, at) {
                    let offset = rng.below(target.len() + 1);
                    target.splice(offset..offset, escape.iter().copied());
                }
            }
            2 => {
                if let Some(target) = self.part(rng, at) {
                    let offset = rng.below(target.len() + 1);
                    target.splice(offset..offset, b"+".repeat(rng.between(1, 3)));
                }
            }
            3 => {
                if let Some(pair) = self.pairs.get_mut(at) {
                    pair.value = None;
                }
            }
            4 => {
                if let Some(pair) = self.pairs.get(at) {
                    let mut copy = Pair {
                        name: pair.name.clone(),
                        value: pair.value.clone(),
                    };
                    if rng.chance(50) {
                        copy.value = Some(hostile_encoded(rng));
                    }
                    self.pairs.insert(rng.below(self.pairs.len() + 1), copy);
                }
            }
            5 => {
                if at < self.pairs.len() {
                    self.pairs.remove(at);
                }
            }
            6 => self.pairs.insert(
                rng.below(self.pairs.len() + 1),
                Pair {
                    name: Vec::new(),
                    value: None,
                },
            ),
            7 => {
                let value = hostile::text(rng).into_bytes();
                let value = if rng.chance(70) {
                    encode(rng, &value)
                } else {
                    value
                };
                self.set(rng.pick::<&str>(FIELDS), value);
            }
            _ => {
                let index = rng.below(self.pairs.len() + 1);
                self.pairs.insert(
                    index,
                    Pair {
                        name: hostile_encoded(rng),
                        value: Some(hostile_encoded(rng)),
                    },
                );
            }
        }
    }

    /// The encoded body.
    pub fn into_bytes(self) -> Vec<u8> {
        let mut body = Vec::new();
        for (index, pair) in self.pairs.into_iter().enumerate() {
            if index > 0 {
                body.push(b'&');
            }
            body.extend_from_slice(&pair.name);
            if let Some(value) = pair.value {
                body.push(b'=');
                body.extend_from_slice(&value);
            }
        }
        body
    }

    /// The name or the value of the pair at `at`, whichever the dice pick.
    fn part(&mut self, rng: &mut Rng, at: usize) -> Option<&mut Vec<u8>> {
        let pair = self.pairs.get_mut(at)?;
        match (&mut pair.value, rng.chance(70)) {
            (Some(value), true) => Some(value),
            _ => Some(&mut pair.name),
        }
    }
}

/// Hostile text, form-encoded.
fn hostile_encoded(rng: &mut Rng) -> Vec<u8> {
    let text = hostile::text(rng);
    encode(rng, text.as_bytes())
}

/// `bytes` form-encoded: unreserved bytes kept, a space as `+` or `%20`, the rest as `%XX` in
/// upper or lower case.
pub fn encode(rng: &mut Rng, bytes: &[u8]) -> Vec<u8> {
    let plus = rng.chance(50);
    let digits: &[u8; 16] = if rng.chance(80) {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut encoded = Vec::with_capacity(bytes.len() * 3);
    for &byte in bytes {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                encoded.push(byte)
            }
            b' ' if plus => encoded.push(b'+'),
            _ => encoded.extend_from_slice(&[
                b'%',
                digits[usize::from(byte >> 4)],
                digits[usize::from(byte & 15)],
            ]),
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unmutated_form_round_trips() {
        let body = b"a=1&&b&c=%20+x";
        assert_eq!(FormBody::parse(body).into_bytes(), body);
    }

    #[test]
    fn encoding_escapes_everything_reserved() {
        let encoded = encode(&mut Rng::new(0), "a b/é&=".as_bytes());
        let encoded = String::from_utf8(encoded).expect("ASCII");
        assert!(encoded.starts_with('a'));
        assert!(!encoded.contains(['/', '&', '=', ' ']), "{encoded}");
        assert!(
            encoded.contains("%C3%A9") || encoded.contains("%c3%a9"),
            "{encoded}"
        );
    }
}
