//! Time as the store keeps it: unix seconds in the database, RFC 3339 in JSON.
//!
//! Seconds are what SQLite compares and sorts cheaply; RFC 3339 is what API clients read. The
//! conversion is a few lines of calendar arithmetic, so no date library is pulled in for it. The
//! audit log alone keeps milliseconds, so that the stages of one event within a second can be
//! told apart by time.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serializer;

/// Seconds in a day; unix time has no leap seconds.
const SECONDS_PER_DAY: i64 = 86_400;

/// Now, in unix seconds. A clock set before 1970 reads as 0.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Milliseconds in a second.
const MILLIS_PER_SECOND: i64 = 1_000;

/// Now, in unix milliseconds. A clock set before 1970 reads as 0.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// `unix_millis` as an RFC 3339 UTC timestamp with milliseconds, e.g.
/// `2026-11-24T06:42:45.123Z`.
pub fn rfc3339_ms(unix_millis: i64) -> String {
    let seconds = rfc3339(unix_millis.div_euclid(MILLIS_PER_SECOND));
    let millis = unix_millis.rem_euclid(MILLIS_PER_SECOND);
    // `seconds` ends in `Z`; the fraction goes before it.
    let whole = seconds.trim_end_matches('Z');
    format!("{whole}.{millis:03}Z")
}

/// `unix_seconds` as an RFC 3339 UTC timestamp, e.g. `2026-11-24T06:42:45Z`.
pub fn rfc3339(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(SECONDS_PER_DAY);
    let second_of_day = unix_seconds.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Serialises unix seconds as RFC 3339, for `#[serde(serialize_with)]`.
pub fn serialize_rfc3339<S: Serializer>(
    unix_seconds: &i64,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&rfc3339(*unix_seconds))
}

/// Serialises optional unix seconds as RFC 3339, or `null`, for `#[serde(serialize_with)]`.
pub fn serialize_optional_rfc3339<S: Serializer>(
    unix_seconds: &Option<i64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match unix_seconds {
        Some(seconds) => serializer.serialize_str(&rfc3339(*seconds)),
        None => serializer.serialize_none(),
    }
}

/// Serialises unix milliseconds as RFC 3339 with milliseconds, for `#[serde(serialize_with)]`.
pub fn serialize_rfc3339_ms<S: Serializer>(
    unix_millis: &i64,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&rfc3339_ms(*unix_millis))
}

/// Serialises optional unix milliseconds as RFC 3339 with milliseconds, or `null`.
pub fn serialize_optional_rfc3339_ms<S: Serializer>(
    unix_millis: &Option<i64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match unix_millis {
        Some(millis) => serializer.serialize_str(&rfc3339_ms(*millis)),
        None => serializer.serialize_none(),
    }
}

/// The proleptic Gregorian date `days` after 1970-01-01, as (year, month, day).
///
/// Howard Hinnant's `civil_from_days`: count in 400-year eras (146,097 days each) of years that
/// start on 1 March, so that the leap day falls at the end of the year.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    // 719,468 days from 0000-03-01 to 1970-01-01.
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(1_795_502_565), "2026-11-24T06:42:45Z");
        assert_eq!(rfc3339(951_868_799), "2000-02-29T23:59:59Z");
        assert_eq!(rfc3339(951_868_800), "2000-03-01T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn known_timestamps_with_millis() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_795_502_565_123), "2026-11-24T06:42:45.123Z");
        assert_eq!(rfc3339_ms(951_782_400_007), "2000-02-29T00:00:00.007Z");
        assert_eq!(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn now_is_after_2024() {
        assert!(now() > 1_704_067_200);
        assert!(now_ms() / MILLIS_PER_SECOND >= now() - 1);
    }
}
