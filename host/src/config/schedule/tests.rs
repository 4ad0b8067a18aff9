//! Parsing errors, tick sequences across calendar and DST edges, and a brute-force comparison
//! that checks `next_after` against a minute-by-minute reading of the wall clock.

use jiff::{SignedDuration, Zoned};

use super::*;

fn schedule(expression: &str, zone: Option<&str>) -> Schedule {
    Schedule::parse(expression, zone).unwrap_or_else(|err| panic!("{expression}: {err}"))
}

fn instant(text: &str) -> Timestamp {
    match text.parse::<Timestamp>() {
        Ok(instant) => instant,
        Err(_) => text
            .parse::<Zoned>()
            .unwrap_or_else(|err| panic!("{text}: {err}"))
            .timestamp(),
    }
}

/// The next `count` ticks after `after`, written in the schedule's zone (UTC instants as `Z`).
fn ticks(schedule: &Schedule, after: &str, count: usize) -> Vec<String> {
    let zone = match &schedule.kind {
        Kind::Cron(cron) if schedule.zone_name.is_some() => Some(cron.zone.clone()),
        _ => None,
    };
    let mut at = instant(after);
    (0..count)
        .map(|_| {
            let next = schedule.next_after(at).expect("a next tick");
            assert!(next > at, "{schedule}: {next} is not after {at}");
            at = next;
            match &zone {
                Some(zone) => next.to_zoned(zone.clone()).to_string(),
                None => next.to_string(),
            }
        })
        .collect()
}

#[test]
fn refuses_bad_expressions_with_messages_that_say_how_to_fix_them() {
    for (expression, zone, expected) in [
        ("", None, &["the schedule is empty", "`@every 90s`"][..]),
        ("   ", None, &["the schedule is empty"]),
        ("* * * *", None, &["5 fields expected", "found 4"]),
        (
            "0 * * * * *",
            None,
            &["found 6", "a seconds field is not supported"],
        ),
        ("0 0 * * * * 2026", None, &["found 7"]),
        (
            "60 * * * *",
            None,
            &["minute `60`: 60 is out of range (allowed: 0-59)"],
        ),
        (
            "* 24 * * *",
            None,
            &["hour `24`: 24 is out of range (allowed: 0-23)"],
        ),
        ("* * 0 * *", None, &["day-of-month `0`", "(allowed: 1-31)"]),
        (
            "* * 32 * *",
            None,
            &["day-of-month `32`: 32 is out of range"],
        ),
        (
            "* * * 13 *",
            None,
            &["month `13`", "(allowed: 1-12 or JAN-DEC)"],
        ),
        (
            "* * * * 8",
            None,
            &["day-of-week `8`", "0 and 7 both Sunday, or SUN-SAT"],
        ),
        ("1-75 * * * *", None, &["minute `1-75`: 75 is out of range"]),
        (
            "99999999999 * * * *",
            None,
            &["99999999999 is out of range"],
        ),
        ("30-10 * * * *", None, &["minute `30-10`", "runs backwards"]),
        (
            "* * * * FRI-MON",
            None,
            &["day-of-week `FRI-MON`", "runs backwards"],
        ),
        ("*/0 * * * *", None, &["minute `*/0`", "at least 1"]),
        (
            "* */25 * * *",
            None,
            &["hour `*/25`", "the step 25 is wider"],
        ),
        (
            "* * * */300 *",
            None,
            &["month `*/300`", "the step 300 is wider"],
        ),
        ("1,,2 * * * *", None, &["minute `1,,2`", "empty item"]),
        ("1, * * * *", None, &["minute `1,`", "empty item"]),
        (
            "abc * * * *",
            None,
            &["minute `abc`", "write `*`, a value `N`"],
        ),
        ("-5 * * * *", None, &["minute `-5`", "write `*`"]),
        ("1-2-3 * * * *", None, &["minute `1-2-3`"]),
        ("*/15/2 * * * *", None, &["minute `*/15/2`"]),
        ("* * * JANUARY *", None, &["month `JANUARY`", "write `*`"]),
        ("* * * * MON", None, &[][..]),
        (
            "0 12 ? * MON",
            None,
            &["day-of-month `?`", "are not supported"],
        ),
        ("0 12 L * *", None, &["day-of-month `L`", "not supported"]),
        (
            "0 12 15W * *",
            None,
            &["day-of-month `15W`", "not supported"],
        ),
        ("0 12 LW * *", None, &["day-of-month `LW`", "not supported"]),
        (
            "0 12 * * 5#3",
            None,
            &["day-of-week `5#3`", "not supported"],
        ),
        ("0 12 * * 5L", None, &["day-of-week `5L`", "not supported"]),
        (
            "@reboot",
            None,
            &["unknown macro `@reboot`", "@every <duration>"],
        ),
        ("@daily now", None, &["`@daily` takes nothing after it"]),
        ("@every", None, &["@every takes one duration"]),
        ("@every 1 m", None, &["@every takes one duration"]),
        (
            "@every 0s",
            None,
            &["`0s` is shorter than the shortest interval, 1s"],
        ),
        ("@every 500ms", None, &["`500ms` is shorter"]),
        ("@every -5m", None, &["`-5m` is negative"]),
        ("@every soon", None, &["`soon` is not a duration"]),
        (
            "0 0 30 2 *",
            None,
            &["`0 0 30 2 *` can never run", "February has at most 29"],
        ),
        ("0 0 31 2 *", None, &["can never run"]),
        ("0 0 31 4,6,9,11 *", None, &["can never run"]),
        ("0 0 30,31 FEB */7", None, &["can never run"]),
        (
            "0 0 * * *",
            Some("Mars/Olympus_Mons"),
            &["unknown time zone `Mars/Olympus_Mons`"],
        ),
        (
            "@every 1m",
            Some("Europe/Berln"),
            &["unknown time zone `Europe/Berln`"],
        ),
        ("0 0 * * *", Some(""), &["unknown time zone ``"]),
    ] {
        match Schedule::parse(expression, zone) {
            Ok(_) if expected.is_empty() => {}
            Ok(parsed) => panic!("`{expression}` parsed as {parsed:?}"),
            Err(err) => {
                let message = err.to_string();
                assert!(!expected.is_empty(), "`{expression}` refused: {message}");
                for part in expected {
                    assert!(
                        message.contains(part),
                        "`{expression}`: {message:?} lacks {part:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn field_errors_carry_the_field_and_token() {
    let err = Schedule::parse("0 9 * * MON-XYZ", None).expect_err("bad weekday");
    assert!(
        matches!(
            &err,
            ScheduleError::Field { field: "day-of-week", token, problem: FieldProblem::Invalid, .. }
                if token == "MON-XYZ"
        ),
        "{err:?}"
    );
}

#[test]
fn accepts_names_steps_and_possible_odd_days() {
    for expression in [
        "0 9 * jan-Mar mon-FRI",
        "5/15 * * * *",
        "1-30/5 */2 * * *",
        "0 0 31 * *",
        "0 0 29 2 *",
        // Both day fields restricted: Mondays rescue the impossible 30 February.
        "0 0 30 2 MON",
        "@ANNUALLY",
        "  @every 1h30m  ",
    ] {
        schedule(expression, None);
    }
    let cron = |expression| match schedule(expression, None).kind {
        Kind::Cron(cron) => cron,
        Kind::Every(_) => panic!("{expression} is cron"),
    };
    let values = |values: Values| values.starting_at(0).collect::<Vec<_>>();
    assert_eq!(values(cron("5/15 * * * *").minutes), [5, 20, 35, 50]);
    assert_eq!(values(cron("1-30/10,59 * * * *").minutes), [1, 11, 21, 59]);
    assert_eq!(values(cron("* * * * 5-7").weekdays), [0, 5, 6]);
    assert_eq!(values(cron("* * * * */2").weekdays), [0, 2, 4, 6]);
    assert_eq!(values(cron("* * * jun-aug,DEC *").months), [6, 7, 8, 12]);
    assert!(cron("0 0 13 * FRI").either_day);
    assert!(!cron("0 0 */10 * FRI").either_day);
    assert!(!cron("0 0 13 * *").either_day);
}

#[test]
fn ticks_follow_the_calendar() {
    for (expression, after, expected) in [
        (
            "*/15 * * * *",
            "2026-01-01T10:07:30Z",
            &[
                "2026-01-01T10:15:00Z",
                "2026-01-01T10:30:00Z",
                "2026-01-01T10:45:00Z",
                "2026-01-01T11:00:00Z",
            ][..],
        ),
        // Strictly after: a start on a tick does not return that tick.
        (
            "*/15 * * * *",
            "2026-01-01T10:15:00Z",
            &["2026-01-01T10:30:00Z"],
        ),
        (
            "*/15 * * * *",
            "2026-12-31T23:59:59Z",
            &["2027-01-01T00:00:00Z"],
        ),
        // Friday after nine, across the weekend.
        (
            "0 9 * * MON-FRI",
            "2026-01-09T10:00:00Z",
            &["2026-01-12T09:00:00Z", "2026-01-13T09:00:00Z"],
        ),
        (
            "0 0 1 * *",
            "2026-01-31T12:00:00Z",
            &[
                "2026-02-01T00:00:00Z",
                "2026-03-01T00:00:00Z",
                "2026-04-01T00:00:00Z",
            ],
        ),
        (
            "0 0 31 * *",
            "2026-01-31T00:00:00Z",
            &[
                "2026-03-31T00:00:00Z",
                "2026-05-31T00:00:00Z",
                "2026-07-31T00:00:00Z",
                "2026-08-31T00:00:00Z",
            ],
        ),
        (
            "0 0 29 2 *",
            "2026-03-01T00:00:00Z",
            &["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"],
        ),
        // 2100 is no leap year.
        (
            "0 0 29 2 *",
            "2096-03-01T00:00:00Z",
            &["2104-02-29T00:00:00Z"],
        ),
        // 0, 7 and SUN are all Sunday (2026-01-04 is one).
        (
            "0 0 * * 0",
            "2026-01-01T00:00:00Z",
            &["2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"],
        ),
        (
            "0 0 * * 7",
            "2026-01-01T00:00:00Z",
            &["2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"],
        ),
        (
            "0 0 * * sun",
            "2026-01-01T00:00:00Z",
            &["2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"],
        ),
        // Both day fields restricted: the 13th (a Tuesday) or any Friday.
        (
            "0 0 13 * FRI",
            "2026-01-10T00:00:00Z",
            &[
                "2026-01-13T00:00:00Z",
                "2026-01-16T00:00:00Z",
                "2026-01-23T00:00:00Z",
                "2026-01-30T00:00:00Z",
                "2026-02-06T00:00:00Z",
            ],
        ),
        // A `*` day field: both must match, a Friday that is the 1st, 11th, 21st or 31st.
        (
            "0 0 */10 * FRI",
            "2026-01-01T00:00:00Z",
            &["2026-05-01T00:00:00Z", "2026-07-31T00:00:00Z"],
        ),
        // February 30 never comes, so only the Mondays of February remain.
        (
            "0 0 30 2 MON",
            "2026-01-01T00:00:00Z",
            &["2026-02-02T00:00:00Z", "2026-02-09T00:00:00Z"],
        ),
        (
            "@hourly",
            "2026-01-01T10:00:00Z",
            &["2026-01-01T11:00:00Z", "2026-01-01T12:00:00Z"],
        ),
        ("@daily", "2026-01-01T10:00:00Z", &["2026-01-02T00:00:00Z"]),
        (
            "@midnight",
            "2026-01-01T10:00:00Z",
            &["2026-01-02T00:00:00Z"],
        ),
        ("@weekly", "2026-01-01T10:00:00Z", &["2026-01-04T00:00:00Z"]),
        (
            "@monthly",
            "2026-01-01T10:00:00Z",
            &["2026-02-01T00:00:00Z"],
        ),
        ("@yearly", "2026-01-01T00:00:00Z", &["2027-01-01T00:00:00Z"]),
    ] {
        let parsed = schedule(expression, None);
        assert_eq!(
            ticks(&parsed, after, expected.len()),
            expected,
            "{expression} after {after}"
        );
    }
}

#[test]
fn ticks_follow_the_zone_wall_clock() {
    for (expression, zone, after, expected) in [
        // The night of 2026-03-29 lasts 23 hours in Berlin.
        (
            "@daily",
            "Europe/Berlin",
            "2026-03-28T12:00:00Z",
            &[
                "2026-03-29T00:00:00+01:00[Europe/Berlin]",
                "2026-03-30T00:00:00+02:00[Europe/Berlin]",
            ][..],
        ),
        (
            "@daily",
            "America/New_York",
            "2026-11-01T00:00:00Z",
            &[
                "2026-11-01T00:00:00-04:00[America/New_York]",
                "2026-11-02T00:00:00-05:00[America/New_York]",
            ],
        ),
        (
            "0 9 * * MON-FRI",
            "America/New_York",
            "2026-03-06T15:00:00Z",
            &["2026-03-09T09:00:00-04:00[America/New_York]"],
        ),
        // Berlin skips 02:00-03:00 on 2026-03-29: a skipped time runs when the gap ends, 03:00
        // CEST, once however many skipped times match.
        (
            "30 2 * * *",
            "Europe/Berlin",
            "2026-03-28T12:00:00Z",
            &[
                "2026-03-29T03:00:00+02:00[Europe/Berlin]",
                "2026-03-30T02:30:00+02:00[Europe/Berlin]",
            ],
        ),
        (
            "0,30 2 * * *",
            "Europe/Berlin",
            "2026-03-28T12:00:00Z",
            &[
                "2026-03-29T03:00:00+02:00[Europe/Berlin]",
                "2026-03-30T02:00:00+02:00[Europe/Berlin]",
                "2026-03-30T02:30:00+02:00[Europe/Berlin]",
            ],
        ),
        (
            "30 2,3 * * *",
            "Europe/Berlin",
            "2026-03-28T12:00:00Z",
            &[
                "2026-03-29T03:00:00+02:00[Europe/Berlin]",
                "2026-03-29T03:30:00+02:00[Europe/Berlin]",
            ],
        ),
        // New York repeats 01:00-02:00 on 2026-11-01: the repeated times run once, first pass.
        (
            "30 1 * * *",
            "America/New_York",
            "2026-10-31T12:00:00Z",
            &[
                "2026-11-01T01:30:00-04:00[America/New_York]",
                "2026-11-02T01:30:00-05:00[America/New_York]",
            ],
        ),
        (
            "30 1 * * *",
            "America/New_York",
            "2026-11-01T01:30:00-04:00[America/New_York]",
            &["2026-11-02T01:30:00-05:00[America/New_York]"],
        ),
        // Starting inside the second pass does not run the first pass's times again.
        (
            "*/30 1 * * *",
            "America/New_York",
            "2026-11-01T01:10:00-05:00[America/New_York]",
            &["2026-11-02T01:00:00-05:00[America/New_York]"],
        ),
        (
            "0 * * * *",
            "America/New_York",
            "2026-11-01T00:30:00-04:00[America/New_York]",
            &[
                "2026-11-01T01:00:00-04:00[America/New_York]",
                "2026-11-01T02:00:00-05:00[America/New_York]",
            ],
        ),
        // Lord Howe skips half an hour, 02:00-02:30: 02:15 runs at 02:30, before the real 02:40.
        (
            "15,40 2 * * *",
            "Australia/Lord_Howe",
            "2026-10-03T12:00:00Z",
            &[
                "2026-10-04T02:30:00+11:00[Australia/Lord_Howe]",
                "2026-10-04T02:40:00+11:00[Australia/Lord_Howe]",
                "2026-10-05T02:15:00+11:00[Australia/Lord_Howe]",
            ],
        ),
    ] {
        let parsed = schedule(expression, Some(zone));
        assert_eq!(
            ticks(&parsed, after, expected.len()),
            expected,
            "{expression} in {zone} after {after}"
        );
    }
}

#[test]
fn a_skipped_time_runs_when_the_gap_ends_not_shifted_by_it() {
    let berlin = TimeZone::get("Europe/Berlin").expect("tz database");
    let skipped = jiff::civil::date(2026, 3, 29).at(2, 30, 0, 0);
    // jiff's `compatible` shifts the wall time by the gap's length ...
    let shifted = berlin
        .to_ambiguous_zoned(skipped)
        .compatible()
        .expect("in range");
    assert_eq!(
        shifted.to_string(),
        "2026-03-29T03:30:00+02:00[Europe/Berlin]"
    );
    // ... while a schedule runs at the first instant after the gap.
    let due =
        schedule("30 2 * * *", Some("Europe/Berlin")).next_after(instant("2026-03-29T00:00:00Z"));
    assert_eq!(due, Some(instant("2026-03-29T01:00:00Z")));
}

/// `@every` ticks at the multiples of its interval since the unix epoch, whenever the daemon
/// started: daemons sharing a database tick at the same instants.
#[test]
fn every_ticks_at_multiples_of_its_interval_and_ignores_the_zone() {
    let every = schedule("@every 90s", Some("Europe/Berlin"));
    assert_eq!(
        every.next_after(instant("2026-03-29T00:59:00Z")),
        Some(instant("2026-03-29T01:00:00Z"))
    );
    assert_eq!(
        every.next_after(instant("2026-03-29T00:59:59.5Z")),
        Some(instant("2026-03-29T01:00:00Z"))
    );
    assert_eq!(
        every.next_after(instant("2026-03-29T01:00:00Z")),
        Some(instant("2026-03-29T01:01:30Z"))
    );
    assert_eq!(
        schedule("@every 1.5h", None).next_after(instant("2026-03-29T00:00:00Z")),
        Some(instant("2026-03-29T01:30:00Z"))
    );
    assert_eq!(
        schedule("@every 1s", None).next_after(instant("2026-03-29T00:00:00Z")),
        Some(instant("2026-03-29T00:00:01Z"))
    );
}

#[test]
fn displays_the_expression_and_the_zone_given() {
    assert_eq!(schedule("*/5 * * * *", None).to_string(), "*/5 * * * *");
    assert_eq!(
        schedule("@daily", Some("Europe/Berlin")).to_string(),
        "@daily (Europe/Berlin)"
    );
    assert_eq!(
        schedule(" @every 90s ", Some("UTC")).to_string(),
        "@every 90s (UTC)"
    );
}

#[test]
fn the_end_of_time_has_no_next_tick() {
    let yearly = schedule("0 0 1 1 *", None);
    assert_eq!(yearly.next_after(instant("9999-06-01T00:00:00Z")), None);
    assert_eq!(schedule("@every 1m", None).next_after(Timestamp::MAX), None);
}

/// Whether `cron` is due at `at`, read off the wall clock without `next_after`'s shortcuts: at a
/// matching whole minute on its first pass, or at the end of a gap that skipped a matching minute.
fn due_at(cron: &Cron, at: Timestamp) -> bool {
    let zone = &cron.zone;
    let offset = zone.to_offset(at);
    let wall = offset.to_datetime(at);
    let first_pass = match zone.to_ambiguous_timestamp(wall).offset() {
        AmbiguousOffset::Fold { before, .. } => before == offset,
        _ => true,
    };
    let on_minute = wall.second() == 0 && wall.subsec_nanosecond() == 0;
    if on_minute && first_pass && wall_matches(cron, wall) {
        return true;
    }
    let previous = zone.to_offset(at - SignedDuration::from_nanos(1));
    let mut skipped = previous.to_datetime(at);
    while skipped < wall {
        if wall_matches(cron, skipped) {
            return true;
        }
        skipped += SignedDuration::from_mins(1);
    }
    false
}

fn wall_matches(cron: &Cron, wall: DateTime) -> bool {
    cron.minutes.contains(wall.minute())
        && cron.hours.contains(wall.hour())
        && cron.months.contains(wall.month())
        && cron.day_matches(wall.date())
}

#[test]
fn ticks_increase_and_each_is_the_first_due_minute() {
    const EXPRESSIONS: [&str; 9] = [
        "*/15 * * * *",
        "30 2 * * *",
        "0,30 1-3 * * *",
        "15,40 2 * * *",
        "0 9 * * MON-FRI",
        "*/7 0-3 * * SUN",
        "0 0 13 * FRI",
        "59 23 */3 * *",
        "0 * * * *",
    ];
    const ZONES: [Option<&str>; 4] = [
        None,
        Some("Europe/Berlin"),
        Some("America/New_York"),
        Some("Australia/Lord_Howe"),
    ];
    // Ticks further apart than this are checked for order and match, not scanned for a
    // skipped earlier minute, to keep the brute force affordable.
    const SCAN_LIMIT: SignedDuration = SignedDuration::from_hours(30);
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut random_start = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Anywhere in 2024-2029, to the second.
        Timestamp::from_second(1_704_067_200 + i64::try_from(seed % 189_302_400).unwrap_or(0))
            .expect("in range")
    };
    for zone_name in ZONES {
        let zone = zone_name.map_or(TimeZone::UTC, |name| {
            TimeZone::get(name).expect("tz database")
        });
        // A few minutes before each of the year's transitions, and some random instants.
        let mut starts: Vec<Timestamp> = zone
            .following(instant("2026-01-01T00:00:00Z"))
            .take(2)
            .map(|transition| transition.timestamp() - SignedDuration::from_mins(150))
            .collect();
        starts.extend((0..4).map(|_| random_start()));
        for expression in EXPRESSIONS {
            let parsed = schedule(expression, zone_name);
            let Kind::Cron(cron) = &parsed.kind else {
                panic!("{expression} is cron");
            };
            for start in &starts {
                let mut at = *start;
                for _ in 0..12 {
                    let next = parsed.next_after(at).expect("a next tick");
                    assert!(next > at, "{parsed}: {next} is not after {at}");
                    assert!(due_at(cron, next), "{parsed}: {next} is not due");
                    if next.duration_since(at) <= SCAN_LIMIT {
                        let mut minute = at.round(jiff::Unit::Minute).expect("in range");
                        while minute < next {
                            assert!(
                                minute <= at || !due_at(cron, minute),
                                "{parsed}: {minute} is due, before {next} (after {at})"
                            );
                            minute += SignedDuration::from_mins(1);
                        }
                    }
                    at = next;
                }
            }
        }
    }
}
