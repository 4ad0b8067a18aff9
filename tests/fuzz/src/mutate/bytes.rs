//! Mutations that know nothing of the format: flips, interesting bytes, inserted tokens, range
//! deletion and duplication, truncation and splicing.

use crate::rng::Rng;

/// Bytes that mean something to JSON, forms or UTF-8: structure, escapes, and lead bytes left
/// without their continuation.
const INTERESTING_BYTES: &[u8] = &[
    0x00, 0xff, b'"', b'\\', b'{', b'}', b'[', b']', b':', b',', b'%', b'+', b'=', b'&', b'/',
    b'@', b' ', b'\n', b'0', b'-', 0x80, 0xbf, 0xc0, 0xc3, 0xe2, 0xed, 0xf0, 0xf4, 0xf8, 0xfe,
];

/// Short texts that start or break a token.
const TOKENS: &[&[u8]] = &[
    b"\\ud800",
    b"\\u",
    b"\\",
    b"\"",
    b"1e999",
    b"-0",
    b"null",
    b"{}",
    b"[]",
    b"{\"\":",
    b"[[[[[[[[",
    b"]]]]",
    b"%",
    b"%4",
    b"%zz",
    b"%C3%28",
    b"&=",
    b"+",
    b"\xf0\x9f",
    b"\xe2\x80",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xef\xbb\xbf",
];

/// Bodies stop growing here: large enough to pass any size check a parser has, small enough
/// that stacked duplications do not eat the machine.
const MAX_LEN: usize = 1 << 20;

/// Applies one random byte-level mutation to `data`; `other` is a second seed to splice from.
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    match rng.below(10) {
        0 => flip_bit(rng, data),
        1 => set_interesting(rng, data),
        2 | 3 => insert_token(rng, data),
        4 => delete_range(rng, data),
        5 => duplicate_range(rng, data),
        6 | 7 => truncate(rng, data),
        8 => splice(rng, data, other),
        _ => overwrite_random(rng, data),
    }
}

fn flip_bit(rng: &mut Rng, data: &mut [u8]) {
    if !data.is_empty() {
        let at = rng.below(data.len());
        data[at] ^= 1 << rng.below(8);
    }
}

fn set_interesting(rng: &mut Rng, data: &mut [u8]) {
    if !data.is_empty() {
        let at = rng.below(data.len());
        data[at] = *rng.pick(INTERESTING_BYTES);
    }
}

fn insert_token(rng: &mut Rng, data: &mut Vec<u8>) {
    let at = rng.below(data.len() + 1);
    let token: &[u8] = if rng.chance(50) {
        rng.pick::<&[u8]>(TOKENS)
    } else {
        std::slice::from_ref(rng.pick(INTERESTING_BYTES))
    };
    data.splice(at..at, token.iter().copied());
}

fn delete_range(rng: &mut Rng, data: &mut Vec<u8>) {
    let start = rng.below(data.len() + 1);
    let end = start + rng.size(data.len() - start);
    data.drain(start..end);
}

fn duplicate_range(rng: &mut Rng, data: &mut Vec<u8>) {
    let start = rng.below(data.len() + 1);
    let end = start + rng.size(data.len() - start);
    let copies = rng.between(1, 8);
    if data.len() + (end - start) * copies > MAX_LEN {
        return;
    }
    let chunk = data[start..end].repeat(copies);
    let at = rng.below(data.len() + 1);
    data.splice(at..at, chunk);
}

/// Cuts the data short: anywhere, just before or after a structural byte, inside a multi-byte
/// character, one byte short, or to nothing.
fn truncate(rng: &mut Rng, data: &mut Vec<u8>) {
    let len = match rng.below(5) {
        0 => rng.below(data.len() + 1),
        1 => {
            let structural = positions(data, |byte| b"{}[]\":,&=%\\".contains(&byte));
            match structural.get(rng.below(structural.len())) {
                Some(&at) => at + rng.below(2),
                None => rng.below(data.len() + 1),
            }
        }
        2 => {
            let continuation = positions(data, |byte| byte & 0xc0 == 0x80);
            continuation
                .get(rng.below(continuation.len()))
                .copied()
                .unwrap_or(data.len())
        }
        3 => data.len().saturating_sub(1),
        _ => 0,
    };
    data.truncate(len);
}

fn positions(data: &[u8], wanted: impl Fn(u8) -> bool) -> Vec<usize> {
    data.iter()
        .enumerate()
        .filter(|(_, byte)| wanted(**byte))
        .map(|(at, _)| at)
        .collect()
}

/// The start of `data` followed by the end of `other`.
fn splice(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    data.truncate(rng.below(data.len() + 1));
    let from = rng.below(other.len() + 1);
    data.extend_from_slice(&other[from..]);
}

fn overwrite_random(rng: &mut Rng, data: &mut [u8]) {
    let start = rng.below(data.len() + 1);
    let end = start + rng.size((data.len() - start).min(64));
    for byte in &mut data[start..end] {
        *byte = rng.byte();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_stay_bounded_on_any_input() {
        let mut rng = Rng::new(9);
        let mut data = br#"{"a":"\u00e9","b":[1,2]}"#.to_vec();
        for _ in 0..100_000 {
            mutate(&mut rng, &mut data, b"other=1&x=%20");
            assert!(data.len() <= MAX_LEN + 64);
            if data.is_empty() {
                data.extend_from_slice(b"{}");
            }
        }
    }
}
