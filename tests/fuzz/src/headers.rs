//! Request headers: the one a parser reads with the provider's value most of the time, and
//! otherwise another real value, random case, empty, unknown, very long or non-ASCII; sometimes
//! missing or sent twice; among unrelated headers.

use mecha_plugin_sdk::source::Header;

use crate::hostile;
use crate::rng::Rng;

/// Adds the header `name`: usually once with `real`, sometimes missing, sometimes twice.
/// `known` lists the other values the provider sends, which steer the parser elsewhere.
pub fn add(rng: &mut Rng, headers: &mut Vec<Header>, name: &str, real: &str, known: &[&str]) {
    let times = match rng.below(100) {
        0..5 => 0,
        5..10 => 2,
        _ => 1,
    };
    for _ in 0..times {
        let name = if rng.chance(20) {
            hostile::random_case(rng, name)
        } else {
            name.to_owned()
        };
        let value = value(rng, real, known);
        headers.push(Header { name, value });
    }
}

/// A value for a header whose real value is `real`.
pub fn value(rng: &mut Rng, real: &str, known: &[&str]) -> String {
    match rng.below(100) {
        0..60 => real.to_owned(),
        60..72 if !known.is_empty() => rng.pick(known).to_string(),
        72..77 => hostile::random_case(rng, real),
        77..80 => String::new(),
        80..84 => format!(" {real}\t"),
        84..88 => hostile::word(rng),
        88..91 => hostile::long_text(rng, 16 * 1024),
        91..95 => format!("{real}{}", hostile::unicode(rng)),
        _ => hostile::text(rng),
    }
}

/// Headers no parser reads, so that lookups have something to skip; some with odd names.
pub fn add_noise(rng: &mut Rng, headers: &mut Vec<Header>) {
    const NAMES: &[&str] = &[
        "User-Agent",
        "Accept",
        "X-Forwarded-For",
        "",
        "X-😀",
        "content-length",
    ];
    for _ in 0..rng.below(3) {
        let name = rng.pick(NAMES).to_string();
        let value = hostile::text(rng);
        headers.insert(rng.below(headers.len() + 1), Header { name, value });
    }
}
