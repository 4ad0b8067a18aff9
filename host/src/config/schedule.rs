//! When a trigger is due: parsing schedule expressions and finding their next occurrence.
//!
//! A schedule is a five-field cron expression (`min hour day-of-month month day-of-week`, Vixie
//! cron's grammar), one of the `@daily`-style macros, or `@every <duration>`. This module is pure
//! arithmetic: it never reads the clock or sleeps. The host keeps time and asks
//! [`Schedule::next_after`] for the next due instant, so everything here is testable with fixed
//! instants and the host decides what a missed tick means.
//!
//! Cron fields are evaluated on the wall clock of the schedule's time zone, because operators
//! write `0 9 * * MON-FRI` meaning nine o'clock where they are, DST or not. Two DST rules follow
//! Vixie cron, which neither drops nor repeats a job when clocks change:
//! - a wall time that does not exist (the spring-forward gap) is due at the first instant after
//!   the gap: `30 2 * * *` in Europe/Berlin on 2026-03-29 runs at 03:00 CEST. jiff's
//!   `compatible` disambiguation would shift it by the gap's length instead (03:30); that mapping
//!   is not monotonic (in a 30-minute DST zone a shifted 02:15 lands after a real 02:40), so a
//!   tick could be reordered or lost. Mapping the gap onto its end keeps wall-clock order.
//! - a wall time that occurs twice (the fall-back fold) is due once, at its first occurrence.
//!
//! Both rules make the wall-clock-to-instant mapping monotonic, which is what lets
//! [`Schedule::next_after`] take the first matching wall time whose instant lies after its
//! argument instead of comparing every candidate.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};

use crate::config::worker::duration;

#[cfg(test)]
mod tests;

/// The shortest `@every` interval: anything faster would hammer a plugin rather than schedule it,
/// and a zero interval would spin.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// How far [`Schedule::next_after`] searches: the Gregorian calendar, weekdays included, repeats
/// every 400 years (146,097 days, a whole number of weeks), so a day that matches nowhere in that
/// span matches never. Expressions that pass [`Schedule::parse`] match within about 40 years
/// (Feb 29 on a given weekday, across a skipped leap year in 2100).
const SEARCH_YEARS: i16 = 400;

/// The macros and the cron expressions they stand for.
const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// A parsed schedule: when ticks are due.
///
/// Parsed once, when the config loads, so a bad expression or zone is reported with the config
/// rather than when the first tick would have fired.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// As the operator wrote it, for [`fmt::Display`] and logs.
    expression: String,
    /// The zone name as given; `None` means UTC.
    zone_name: Option<String>,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Every(Duration),
    Cron(Cron),
}

/// A cron expression resolved to value sets, plus the zone its wall clock runs in.
#[derive(Clone, Debug)]
struct Cron {
    minutes: Values,
    hours: Values,
    days: Values,
    months: Values,
    /// Sunday is 0; a 7 in the expression is folded into 0 while parsing.
    weekdays: Values,
    /// Vixie's rule: when both day fields are restricted (neither starts with `*`), a day matches
    /// when either does, so `0 0 13 * FRI` runs on the 13th and on every Friday.
    either_day: bool,
    zone: TimeZone,
}

/// The values one cron field allows, one bit each (minutes, at 0-59, are the widest field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Values(u64);

impl Values {
    fn contains(self, value: i8) -> bool {
        (0..64).contains(&value) && self.0 & (1 << value) != 0
    }

    /// The allowed values from `start` on, ascending.
    fn starting_at(self, start: i8) -> impl Iterator<Item = i8> {
        let mut rest = if (0..64).contains(&start) {
            self.0 & (u64::MAX << start)
        } else {
            0
        };
        std::iter::from_fn(move || {
            let value = rest.trailing_zeros();
            rest &= rest.saturating_sub(1);
            i8::try_from(value).ok().filter(|value| *value < 64)
        })
    }
}

/// The shape of one cron field, which drives parsing and error messages.
struct Field {
    name: &'static str,
    min: u8,
    max: u8,
    /// Names for `min`, `min + 1`, ...: `JAN` is 1, `SUN` is 0.
    names: &'static [&'static str],
    /// What the field accepts, spelled out for error messages.
    allowed: &'static str,
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
        allowed: "0-59",
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
        allowed: "0-23",
    },
    Field {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
        allowed: "1-31",
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &[
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ],
        allowed: "1-12 or JAN-DEC",
    },
    Field {
        name: "day-of-week",
        min: 0,
        max: 7,
        names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
        allowed: "0-7 with 0 and 7 both Sunday, or SUN-SAT",
    },
];

/// Why an expression or zone was refused; each message names the culprit and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "the schedule is empty; write five cron fields like `*/15 * * * *`, a macro like `@daily`, or `@every 90s`"
    )]
    Empty,
    #[error(
        "`{expression}`: 5 fields expected (minute hour day-of-month month day-of-week), found {found}{}",
        if *.found == 6 { "; a seconds field is not supported" } else { "" }
    )]
    FieldCount { expression: String, found: usize },
    #[error("{field} `{token}`: {problem} (allowed: {allowed})")]
    Field {
        field: &'static str,
        token: String,
        problem: FieldProblem,
        allowed: &'static str,
    },
    #[error(
        "unknown macro `{name}`; use @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every <duration>"
    )]
    UnknownMacro { name: String },
    #[error("`{name}` takes nothing after it; write it alone, like `@daily`")]
    MacroArguments { name: String },
    #[error("`{expression}`: {problem}")]
    Every { expression: String, problem: String },
    #[error(
        "`{expression}` can never run: none of its months has one of its days (February has at most 29 days; April, June, September and November 30)"
    )]
    Never { expression: String },
    #[error("unknown time zone `{zone}`; use an IANA name like `Europe/Berlin`, or `UTC`")]
    UnknownZone { zone: String, source: jiff::Error },
}

/// What is wrong with one item of a cron field.
#[derive(Debug, thiserror::Error)]
pub enum FieldProblem {
    #[error("{value} is out of range")]
    OutOfRange { value: String },
    #[error("the range runs backwards; write the smaller value first")]
    Reversed,
    #[error("a step must be at least 1, like `*/15`")]
    ZeroStep,
    #[error("the step {step} is wider than the whole field")]
    StepTooLarge { step: String },
    #[error("there is an empty item; separate values with single commas, like `1,15,30`")]
    EmptyItem,
    #[error(
        "`?`, `L`, `W` and `#` are not supported; list the values instead, like `28-31` or `MON-FRI`"
    )]
    Unsupported,
    #[error("write `*`, a value `N`, a range `N-M`, or a step `*/S`, `N/S` or `N-M/S`")]
    Invalid,
}

impl Schedule {
    /// Parses `expression`: five-field cron (`min hour day-of-month month day-of-week`), a macro
    /// (`@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly`), or
    /// `@every <go duration>` of at least 1s.
    ///
    /// `zone` is an IANA name like `Europe/Berlin`; `None` means UTC. `@every` runs on elapsed
    /// time and ignores the zone, but a zone given with it is still checked, so a typo does not
    /// wait to surface until the expression changes to cron.
    pub fn parse(expression: &str, zone: Option<&str>) -> Result<Schedule, ScheduleError> {
        let expression = expression.trim();
        let time_zone = match zone {
            None => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|source| ScheduleError::UnknownZone {
                zone: name.to_owned(),
                source,
            })?,
        };
        let words: Vec<&str> = expression.split_whitespace().collect();
        let kind = match words.as_slice() {
            [] => return Err(ScheduleError::Empty),
            [first, rest @ ..] if first.starts_with('@') => {
                parse_macro(expression, first, rest, time_zone)?
            }
            fields => Kind::Cron(Cron::parse(expression, fields, time_zone)?),
        };
        Ok(Schedule {
            expression: expression.to_owned(),
            zone_name: zone.map(str::to_owned),
            kind,
        })
    }

    /// The first due instant strictly after `after`.
    ///
    /// Applied repeatedly it yields strictly increasing instants, each tick once, across DST
    /// changes too (see the module docs). `None` means no tick exists: past the end of jiff's
    /// range (year 9999), or an expression that can never match and that [`Schedule::parse`]
    /// could not see through (it refuses the ones it can, like `0 0 30 2 *`).
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match &self.kind {
            // At multiples of the interval since the unix epoch, not from whenever the daemon
            // started: daemons sharing a database then compute the same instants, so a tick's
            // delivery id (its schedule and due time) is the same on each, and the tick is
            // stored, and run, once.
            Kind::Every(interval) => {
                let step = i64::try_from(interval.as_millis()).ok()?;
                let next = after
                    .as_millisecond()
                    .div_euclid(step)
                    .checked_add(1)?
                    .checked_mul(step)?;
                Timestamp::from_millisecond(next).ok()
            }
            Kind::Cron(cron) => cron.next_after(after),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)?;
        if let Some(zone) = &self.zone_name {
            write!(f, " ({zone})")?;
        }
        Ok(())
    }
}

/// Parses `@every <duration>` or a macro, which expands to its cron expression.
fn parse_macro(
    expression: &str,
    name: &str,
    rest: &[&str],
    zone: TimeZone,
) -> Result<Kind, ScheduleError> {
    if name.eq_ignore_ascii_case("@every") {
        let every = |problem: String| ScheduleError::Every {
            expression: expression.to_owned(),
            problem,
        };
        let [text] = rest else {
            return Err(every(
                "@every takes one duration, like `@every 90s` or `@every 1h30m`".to_owned(),
            ));
        };
        let interval = if text.starts_with('-') {
            Err(format!(
                "`{text}` is negative; an interval must be at least 1s"
            ))
        } else {
            duration::parse(text)
        }
        .map_err(every)?;
        if interval < MIN_INTERVAL {
            return Err(every(format!(
                "`{text}` is shorter than the shortest interval, 1s"
            )));
        }
        return Ok(Kind::Every(interval));
    }
    let (_, cron) = MACROS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .ok_or_else(|| ScheduleError::UnknownMacro {
            name: name.to_owned(),
        })?;
    if !rest.is_empty() {
        return Err(ScheduleError::MacroArguments {
            name: name.to_owned(),
        });
    }
    let fields: Vec<&str> = cron.split(' ').collect();
    Ok(Kind::Cron(Cron::parse(expression, &fields, zone)?))
}

impl Cron {
    fn parse(expression: &str, fields: &[&str], zone: TimeZone) -> Result<Cron, ScheduleError> {
        let [minutes, hours, days, months, weekdays] = fields else {
            return Err(ScheduleError::FieldCount {
                expression: expression.to_owned(),
                found: fields.len(),
            });
        };
        let [minute, hour, day, month, weekday] = &FIELDS;
        let mut weekday_values = weekday.parse(weekdays)?;
        if weekday_values.contains(7) {
            weekday_values = Values((weekday_values.0 | 1) & !(1 << 7));
        }
        let cron = Cron {
            minutes: minute.parse(minutes)?,
            hours: hour.parse(hours)?,
            days: day.parse(days)?,
            months: month.parse(months)?,
            weekdays: weekday_values,
            either_day: !days.starts_with('*') && !weekdays.starts_with('*'),
            zone,
        };
        if !cron.can_match() {
            return Err(ScheduleError::Never {
                expression: expression.to_owned(),
            });
        }
        Ok(cron)
    }

    /// Whether some date can match. Every month-and-day pair falls on each weekday in some year,
    /// so only a day-of-month that fits none of the months (with `either_day` off, the weekday
    /// cannot rescue it) makes an expression impossible.
    fn can_match(&self) -> bool {
        const LONGEST_MONTHS: [i8; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        self.either_day
            || (1..=12).any(|month: i8| {
                self.months.contains(month)
                    && self.days.starting_at(1).next().is_some_and(|day| {
                        day <= LONGEST_MONTHS[usize::from(month.unsigned_abs()) - 1]
                    })
            })
    }

    /// Walks the days from `after`'s wall-clock date, skipping months that are not allowed
    /// whole, and on each matching day takes the first allowed time whose instant lies after
    /// `after`. The wall-to-instant mapping is monotonic (see the module docs), so the first such
    /// time is the earliest instant.
    fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let local = self.zone.to_datetime(after);
        let mut date = local.date();
        let last_year = date.year().checked_add(SEARCH_YEARS)?;
        // Times up to `after`'s minute map to instants no later than `after`, so the search on
        // its own date starts one minute on.
        let mut from_minute = i16::from(local.hour()) * 60 + i16::from(local.minute()) + 1;
        while date.year() <= last_year {
            if !self.months.contains(date.month()) {
                date = date.last_of_month().tomorrow().ok()?;
                from_minute = 0;
                continue;
            }
            if self.day_matches(date)
                && let Some(due) = self.first_on(date, from_minute, after)
            {
                return Some(due);
            }
            date = date.tomorrow().ok()?;
            from_minute = 0;
        }
        None
    }

    fn day_matches(&self, date: Date) -> bool {
        let day = self.days.contains(date.day());
        let weekday = self
            .weekdays
            .contains(date.weekday().to_sunday_zero_offset());
        if self.either_day {
            day || weekday
        } else {
            day && weekday
        }
    }

    /// The first allowed time on `date`, at or after minute-of-day `from_minute`, whose instant
    /// lies after `after`. More than one candidate is looked at only when `after` falls in the
    /// second pass of a fold, whose wall times map to their (earlier) first occurrence.
    fn first_on(&self, date: Date, from_minute: i16, after: Timestamp) -> Option<Timestamp> {
        let (from_hour, from_minute) = (from_minute / 60, from_minute % 60);
        let from_hour = i8::try_from(from_hour).ok()?;
        self.hours.starting_at(from_hour).find_map(|hour| {
            let start = if hour == from_hour {
                i8::try_from(from_minute).ok()?
            } else {
                0
            };
            self.minutes.starting_at(start).find_map(|minute| {
                let due = self.instant(date.at(hour, minute, 0, 0))?;
                (due > after).then_some(due)
            })
        })
    }

    /// The instant a wall time is due: itself when it exists once, its first occurrence in a
    /// fold, and the end of the gap (the transition) when clocks skip it.
    fn instant(&self, wall: DateTime) -> Option<Timestamp> {
        match self.zone.to_ambiguous_timestamp(wall).offset() {
            AmbiguousOffset::Unambiguous { offset }
            | AmbiguousOffset::Fold { before: offset, .. } => offset.to_timestamp(wall).ok(),
            AmbiguousOffset::Gap { after, .. } => {
                // Read with the later offset, a skipped wall time lands before the transition.
                let before_gap = after.to_timestamp(wall).ok()?;
                self.zone
                    .following(before_gap)
                    .next()
                    .map(|transition| transition.timestamp())
            }
        }
    }
}

impl Field {
    /// Parses one field: a comma list of `*`, `N`, `N-M`, each with an optional `/step`
    /// (`N/step` meaning `N` to the field's maximum).
    fn parse(&self, text: &str) -> Result<Values, ScheduleError> {
        let mut values = Values::default();
        for item in text.split(',') {
            let fail = |problem: FieldProblem| {
                self.error(if item.is_empty() { text } else { item }, problem)
            };
            if item.is_empty() {
                return Err(fail(FieldProblem::EmptyItem));
            }
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => (range, Some(self.step(step).map_err(fail)?)),
                None => (item, None),
            };
            let (first, last) = if range == "*" {
                (self.min, self.max)
            } else if let Some((first, last)) = range.split_once('-') {
                let (first, last) = (self.value(first), self.value(last));
                let (first, last) = (first.map_err(fail)?, last.map_err(fail)?);
                if first > last {
                    return Err(fail(FieldProblem::Reversed));
                }
                (first, last)
            } else {
                let first = self.value(range).map_err(fail)?;
                (first, if step.is_some() { self.max } else { first })
            };
            for value in (first..=last).step_by(usize::from(step.unwrap_or(1))) {
                values.0 |= 1 << value;
            }
        }
        Ok(values)
    }

    fn step(&self, text: &str) -> Result<u8, FieldProblem> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(unsupported_or_invalid(text));
        }
        match text.parse::<u8>() {
            Ok(0) => Err(FieldProblem::ZeroStep),
            Ok(step) if step <= self.max - self.min + 1 => Ok(step),
            _ => Err(FieldProblem::StepTooLarge {
                step: text.to_owned(),
            }),
        }
    }

    /// A number or, for months and weekdays, a three-letter name (any case).
    fn value(&self, text: &str) -> Result<u8, FieldProblem> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse::<u8>()
                .ok()
                .filter(|value| (self.min..=self.max).contains(value))
                .ok_or_else(|| FieldProblem::OutOfRange {
                    value: text.to_owned(),
                });
        }
        self.names
            .iter()
            .zip(self.min..)
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
            .map(|(_, value)| value)
            .ok_or_else(|| unsupported_or_invalid(text))
    }

    fn error(&self, token: &str, problem: FieldProblem) -> ScheduleError {
        ScheduleError::Field {
            field: self.name,
            token: token.to_owned(),
            problem,
            allowed: self.allowed,
        }
    }
}

/// Tells Quartz-style syntax (`?`, `L`, `15W`, `5#3`), which people bring from other schedulers,
/// apart from plain garbage, so the message can say it is not supported rather than malformed.
fn unsupported_or_invalid(text: &str) -> FieldProblem {
    let upper = text.to_ascii_uppercase();
    let quartz = upper.contains(['?', '#'])
        || upper.strip_suffix(['L', 'W']).is_some_and(|rest| {
            rest.is_empty() || rest == "L" || rest.bytes().all(|b| b.is_ascii_digit())
        });
    if quartz {
        FieldProblem::Unsupported
    } else {
        FieldProblem::Invalid
    }
}
