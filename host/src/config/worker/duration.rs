//! Go-style durations (`30m`, `90s`, `1h30m`, `1.5h`, `250ms`), as the Go mecha's YAML has them,
//! for a worker's `timeout`.
//!
//! Parsing follows Go's `time.ParseDuration`: an optional sign, then one or more decimal numbers
//! (with an optional fraction), each followed by a unit among `ns`, `us` (`µs`), `ms`, `s`, `m`,
//! `h`; a bare `0` is zero. Negative durations are refused, and the total must fit Go's range
//! (about 292 years) so that a value written here means the same to both. Durations are written
//! back in the same text form (the largest units first, zero parts left out: `1h30m`, `1m30s`),
//! never as nanoseconds, so the stored JSON stays readable and parses back to the same value.

use std::fmt;
use std::time::Duration;

use serde::Serializer;
use serde::de::{self, Deserializer, Visitor};

use super::DEFAULT_TIMEOUT;

/// Nanoseconds per unit, largest first (the order [`format`] writes them in).
const UNITS: [(&str, u128); 6] = [
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// Go's largest duration, `i64::MAX` nanoseconds.
const MAX_NANOS: u128 = i64::MAX as u128;

/// 18 fraction digits are more than any unit needs (an hour is 3.6e12 ns); later digits are
/// dropped, which keeps the arithmetic well inside `u128`.
const MAX_FRACTION_DIGITS: usize = 18;

/// Parses a Go duration; see the module docs for the grammar.
pub fn parse(text: &str) -> Result<Duration, String> {
    let invalid = || format!("`{text}` is not a duration; write it like 30m, 90s or 1h30m");
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let whole_len = digits(rest);
        let whole = &rest[..whole_len];
        rest = &rest[whole_len..];
        let mut fraction = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let fraction_len = digits(after_dot);
            fraction = &after_dot[..fraction_len];
            rest = &after_dot[fraction_len..];
        }
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "" => {
                return Err(format!(
                    "`{text}` lacks a unit; write it like 30m, 90s or 1h30m"
                ));
            }
            "µs" | "μs" => 1_000,
            _ => UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, scale)| *scale)
                .ok_or_else(|| {
                    format!("`{text}` has the unknown unit `{unit}`; use h, m, s, ms, us or ns")
                })?,
        };
        let too_long = || format!("`{text}` is longer than a duration can be (about 292 years)");
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_long())?
        };
        let fraction = &fraction[..fraction.len().min(MAX_FRACTION_DIGITS)];
        let fraction_nanos = if fraction.is_empty() {
            0
        } else {
            let numerator: u128 = fraction.parse().map_err(|_| invalid())?;
            numerator * scale / 10u128.pow(fraction.len() as u32)
        };
        total = whole
            .checked_mul(scale)
            .and_then(|nanos| nanos.checked_add(fraction_nanos))
            .and_then(|nanos| nanos.checked_add(total))
            .filter(|nanos| *nanos <= MAX_NANOS)
            .ok_or_else(too_long)?;
    }
    if negative && total > 0 {
        return Err(format!("`{text}` is negative; a timeout must be positive"));
    }
    u64::try_from(total)
        .map(Duration::from_nanos)
        .map_err(|_| invalid())
}

/// Writes a duration the way [`parse`] reads it: `1h30m`, `1m30s`, `250ms`, `0s`.
pub fn format(duration: Duration) -> String {
    let mut rest = duration.as_nanos();
    if rest == 0 {
        return "0s".to_owned();
    }
    let mut text = String::new();
    for (name, scale) in UNITS {
        let count = rest / scale;
        if count > 0 {
            text.push_str(&count.to_string());
            text.push_str(name);
            rest %= scale;
        }
    }
    text
}

/// How many ASCII digits `text` starts with.
fn digits(text: &str) -> usize {
    text.bytes().take_while(u8::is_ascii_digit).count()
}

/// Serde for `timeout`: Go text in both directions; absent (see the field's default), `0` or
/// `0s` mean [`DEFAULT_TIMEOUT`].
pub(super) mod timeout {
    use super::*;

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(*duration))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_any(TimeoutVisitor)
    }

    /// Parses inside the visitor, so that an error points at the value's line and column.
    struct TimeoutVisitor;

    impl Visitor<'_> for TimeoutVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration like 30m, 90s or 1h30m")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            let duration = parse(text).map_err(E::custom)?;
            Ok(if duration.is_zero() {
                DEFAULT_TIMEOUT
            } else {
                duration
            })
        }

        fn visit_u64<E: de::Error>(self, number: u64) -> Result<Duration, E> {
            if number == 0 {
                Ok(DEFAULT_TIMEOUT)
            } else {
                Err(E::custom(format!(
                    "`{number}` lacks a unit; write it like 30m, 90s or 1h30m"
                )))
            }
        }

        fn visit_i64<E: de::Error>(self, number: i64) -> Result<Duration, E> {
            match u64::try_from(number) {
                Ok(number) => self.visit_u64(number),
                Err(_) => Err(E::custom(format!(
                    "`{number}` is negative; a timeout must be positive"
                ))),
            }
        }
    }
}

/// How far back `mecha logs --since 1h` or `GET /logs?since=15m` reaches: this module's syntax
/// (`90s`, `15m`, `1h30m`) plus whole days (`7d`), the unit people think in for logs.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    if let Some(days) = text.strip_suffix('d')
        && let Ok(days) = days.parse::<u64>()
    {
        return Ok(Duration::from_secs(days.saturating_mul(86_400)));
    }
    parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_forms() {
        let secs = Duration::from_secs;
        assert_eq!(parse("30m"), Ok(secs(30 * 60)));
        assert_eq!(parse("90s"), Ok(secs(90)));
        assert_eq!(parse("1h30m"), Ok(secs(5400)));
        assert_eq!(parse("1.5h"), Ok(secs(5400)));
        assert_eq!(parse(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1s500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("2us"), Ok(Duration::from_micros(2)));
        assert_eq!(parse("2µs"), Ok(Duration::from_micros(2)));
        assert_eq!(parse("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse("+5m"), Ok(secs(300)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse("-0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_bad_forms_and_negatives() {
        for (text, expected) in [
            ("", "is not a duration"),
            ("m", "is not a duration"),
            ("10", "lacks a unit"),
            ("10 m", "unknown unit ` m`"),
            ("10d", "unknown unit `d`"),
            ("1h30", "lacks a unit"),
            ("-5m", "is negative"),
            ("3000000h", "longer than a duration can be"),
            (
                "99999999999999999999999999999999999999999h",
                "longer than a duration can be",
            ),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn formats_back_to_text_that_parses_to_the_same_value() {
        for (text, written) in [
            ("30m", "30m"),
            ("90s", "1m30s"),
            ("1h30m", "1h30m"),
            ("2h", "2h"),
            ("1.5s", "1s500ms"),
            ("1h0m1ns", "1h1ns"),
        ] {
            let duration = parse(text).expect(text);
            assert_eq!(format(duration), written);
            assert_eq!(parse(written), Ok(duration));
        }
        assert_eq!(format(Duration::ZERO), "0s");
    }

    #[test]
    fn timeout_zero_means_the_default() {
        #[derive(serde::Deserialize)]
        struct Holder {
            #[serde(with = "timeout")]
            timeout: Duration,
        }
        for yaml in ["timeout: 0", "timeout: 0s", "timeout: '0'"] {
            let holder: Holder = serde_yaml::from_str(yaml).expect(yaml);
            assert_eq!(holder.timeout, DEFAULT_TIMEOUT, "{yaml}");
        }
        let err = serde_yaml::from_str::<Holder>("timeout: -1")
            .err()
            .expect("negative")
            .to_string();
        assert!(err.contains("is negative"), "{err}");
        let err = serde_yaml::from_str::<Holder>("timeout: 45")
            .err()
            .expect("no unit")
            .to_string();
        assert!(err.contains("lacks a unit"), "{err}");
    }

    #[test]
    fn ages_accept_days_too() {
        assert_eq!(super::parse_age("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(super::parse_age("90s"), Ok(Duration::from_secs(90)));
        assert!(super::parse_age("soon").is_err());
    }
}
