//! What one tick of a schedule becomes, in plain Rust so that it is unit-tested natively.

use mecha_plugin_sdk::trigger::{self, Error, Event, Value};

/// A schedule's settings, as the operator wrote them under `triggers.<name>.settings`.
#[derive(Debug, Default, Clone)]
pub struct Settings {
    /// The event's subject, e.g. `acme/widgets`.
    pub subject: Option<String>,
    /// The event's type; `tick` when unset.
    pub event_type: Option<String>,
    /// Extra attrs as a JSON object of scalars, e.g. `{"repo_owner": "acme", "number": 7}`, for
    /// workers' filters and prompt templates.
    pub attrs: Option<String>,
}

/// The event of the tick of `schedule` due at `due_at` (Unix seconds).
///
/// Its delivery id is the schedule and due time, so a tick stored twice (a restart within the
/// same second) is one event. Overlapping runs are the host's to prevent, not the plugin's.
pub fn event(schedule: &str, due_at: u64, settings: &Settings) -> Result<Event, Error> {
    let event_type = settings
        .event_type
        .as_deref()
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .unwrap_or("tick");
    let mut tick = trigger::event(event_type)
        .actor(schedule)
        .subject(settings.subject.clone().unwrap_or_default())
        .delivery_id(format!("{schedule}:{due_at}"));
    if let Some(attrs) = &settings.attrs {
        add_attrs(&mut tick, attrs)?;
    }
    tick.set_attr("schedule", schedule);
    tick.set_attr("tick_time", rfc3339(due_at));
    tick.set_attr("due_at", i64::try_from(due_at).unwrap_or(i64::MAX));
    Ok(tick)
}

/// Adds the scalars of the JSON object `attrs`; anything else is a configuration error that
/// says what to write.
fn add_attrs(tick: &mut Event, attrs: &str) -> Result<(), Error> {
    let invalid = |why: String| {
        Error::BadRequest(format!(
            "the attrs setting must be a JSON object of strings, numbers and booleans: {why}"
        ))
    };
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(attrs).map_err(|err| invalid(err.to_string()))?;
    for (name, value) in &object {
        let value =
            Value::from_json(value).ok_or_else(|| invalid(format!("{name} is not a scalar")))?;
        tick.set_attr(name, value);
    }
    Ok(())
}

/// `2026-11-24T13:05:00Z` for a Unix time in seconds (UTC, proleptic Gregorian).
pub fn rfc3339(unix: u64) -> String {
    let days = unix / 86_400;
    let seconds = unix % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

/// The date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_957_500), "2026-11-29T13:05:00Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn a_tick_names_its_schedule_and_time() {
        let settings = Settings {
            subject: Some("acme/widgets".into()),
            ..Settings::default()
        };
        let tick = event("nightly", 1_795_957_500, &settings).expect("valid");
        assert_eq!(tick.event_type, "tick");
        assert_eq!(tick.actor, "nightly");
        assert_eq!(tick.subject, "acme/widgets");
        assert_eq!(tick.delivery_id.as_deref(), Some("nightly:1795957500"));
        assert_eq!(tick.dedup_key, None);
        assert_eq!(tick.text_attr("tick_time"), Some("2026-11-29T13:05:00Z"));
        assert_eq!(tick.text_attr("schedule"), Some("nightly"));
        assert!(matches!(
            tick.get_attr("due_at"),
            Some(Value::Integer(1_795_957_500))
        ));
    }

    #[test]
    fn settings_give_the_type_and_extra_attrs() {
        let settings = Settings {
            event_type: Some("nightly_review".into()),
            attrs: Some(r#"{"repo_owner":"acme","number":7,"draft":false,"schedule":"x"}"#.into()),
            ..Settings::default()
        };
        let tick = event("n", 60, &settings).expect("valid");
        assert_eq!(tick.event_type, "nightly_review");
        assert_eq!(tick.text_attr("repo_owner"), Some("acme"));
        assert!(matches!(tick.get_attr("number"), Some(Value::Integer(7))));
        assert!(matches!(
            tick.get_attr("draft"),
            Some(Value::Boolean(false))
        ));
        // The tick's own attrs cannot be overridden.
        assert_eq!(tick.text_attr("schedule"), Some("n"));
    }

    #[test]
    fn bad_attrs_say_what_to_write() {
        for attrs in ["[1]", "not json", r#"{"nested":{"a":1}}"#] {
            let settings = Settings {
                attrs: Some(attrs.into()),
                ..Settings::default()
            };
            match event("n", 0, &settings) {
                Err(Error::BadRequest(message)) => {
                    assert!(message.contains("JSON object"), "{message}")
                }
                other => panic!("{attrs}: {other:?}"),
            }
        }
    }
}
