//! Time windows on real DST dates, overnight windows, `24:00`, rejected input and serde.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use guardrail_core::guardrail::window::ClockTime;
use guardrail_core::guardrail::{Guardrails, TimeWindow};
use proptest::prelude::*;

fn window(start: &str, end: &str, zone: &str, days: &[&str]) -> TimeWindow {
    TimeWindow::new(start, end, zone, days).unwrap()
}

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// Counts the minutes in `[from, to)` at which the window is open.
fn open_minutes(window: &TimeWindow, from: &str, to: &str) -> i64 {
    let (from, to) = (utc(from), utc(to));
    let mut count = 0;
    let mut now = from;
    while now < to {
        if window.is_open(now) {
            count += 1;
        }
        now += Duration::minutes(1);
    }
    count
}

#[test]
fn copenhagen_skipped_hour_never_opens() {
    // 2024-03-31, a Sunday: 02:00 CET jumps to 03:00 CEST at 01:00 UTC.
    let inside_gap = window("02:00", "02:30", "Europe/Copenhagen", &["sun"]);
    assert_eq!(
        open_minutes(&inside_gap, "2024-03-30T22:00:00Z", "2024-03-31T22:00:00Z"),
        0
    );
    // The next Sunday has the hour, in CEST (UTC+2).
    assert_eq!(
        open_minutes(&inside_gap, "2024-04-06T22:00:00Z", "2024-04-07T22:00:00Z"),
        30
    );
    assert!(inside_gap.is_open(utc("2024-04-07T00:00:00Z")));

    // A window across the gap is open from 03:00 CEST, since 02:xx never happens.
    let across_gap = window("01:30", "03:30", "Europe/Copenhagen", &["sun"]);
    assert_eq!(
        open_minutes(&across_gap, "2024-03-30T22:00:00Z", "2024-03-31T22:00:00Z"),
        60
    );
    assert!(across_gap.is_open(utc("2024-03-31T00:59:00Z")));
    assert!(across_gap.is_open(utc("2024-03-31T01:00:00Z")));
    assert!(!across_gap.is_open(utc("2024-03-31T01:30:00Z")));
}

#[test]
fn copenhagen_repeated_hour_opens_twice() {
    // 2024-10-27, a Sunday: 03:00 CEST falls back to 02:00 CET at 01:00 UTC.
    let repeated = window("02:00", "03:00", "Europe/Copenhagen", &["sun"]);
    assert_eq!(
        open_minutes(&repeated, "2024-10-26T20:00:00Z", "2024-10-27T23:00:00Z"),
        120
    );
    assert!(repeated.is_open(utc("2024-10-27T00:00:00Z")));
    assert!(repeated.is_open(utc("2024-10-27T01:59:00Z")));
    assert!(!repeated.is_open(utc("2024-10-27T02:00:00Z")));
    assert!(!repeated.is_open(utc("2024-10-26T23:59:00Z")));
}

#[test]
fn new_york_office_hours_follow_dst() {
    let office = window(
        "09:00",
        "17:00",
        "America/New_York",
        &["mon", "tue", "wed", "thu", "fri"],
    );
    // Friday 2024-03-08 is EST (UTC-5) and Monday 2024-03-11 is EDT (UTC-4).
    assert!(!office.is_open(utc("2024-03-08T13:59:00Z")));
    assert!(office.is_open(utc("2024-03-08T14:00:00Z")));
    assert!(office.is_open(utc("2024-03-11T13:00:00Z")));
    assert!(!office.is_open(utc("2024-03-11T21:00:00Z")));
    assert!(!office.is_open(utc("2024-03-09T15:00:00Z")));
}

#[test]
fn new_york_fall_back_hour_opens_twice() {
    // 2024-11-03, a Sunday: 02:00 EDT falls back to 01:00 EST at 06:00 UTC.
    let repeated = window("01:00", "02:00", "America/New_York", &["sun"]);
    assert_eq!(
        open_minutes(&repeated, "2024-11-03T00:00:00Z", "2024-11-04T00:00:00Z"),
        120
    );
    // 2024-03-10: 02:00 EST jumps to 03:00 EDT.
    let skipped = window("02:00", "03:00", "America/New_York", &["sun"]);
    assert_eq!(
        open_minutes(&skipped, "2024-03-10T00:00:00Z", "2024-03-11T00:00:00Z"),
        0
    );
}

#[test]
fn lord_howe_half_hour_shifts() {
    // 2024-04-07, a Sunday: 02:00 (UTC+11) falls back to 01:30 (UTC+10:30) at 15:00 UTC on
    // 2024-04-06, so 01:30 to 02:00 happens twice.
    let repeated = window("01:30", "02:00", "Australia/Lord_Howe", &["sun"]);
    assert_eq!(
        open_minutes(&repeated, "2024-04-06T12:00:00Z", "2024-04-07T12:00:00Z"),
        60
    );
    // 2024-10-06, a Sunday: 02:00 (UTC+10:30) jumps to 02:30 (UTC+11).
    let skipped = window("02:00", "02:30", "Australia/Lord_Howe", &["sun"]);
    assert_eq!(
        open_minutes(&skipped, "2024-10-05T12:00:00Z", "2024-10-06T12:00:00Z"),
        0
    );
    let around = window("01:45", "02:45", "Australia/Lord_Howe", &["sun"]);
    assert_eq!(
        open_minutes(&around, "2024-10-05T12:00:00Z", "2024-10-06T12:00:00Z"),
        30
    );
}

#[test]
fn havana_skipped_midnight() {
    // 2024-03-10, a Sunday: 00:00 (UTC-5) jumps to 01:00 (UTC-4) at 05:00 UTC, so Sunday in
    // Havana starts at 01:00.
    let first_hour = window("00:00", "01:00", "America/Havana", &["sun"]);
    assert_eq!(
        open_minutes(&first_hour, "2024-03-09T12:00:00Z", "2024-03-11T12:00:00Z"),
        0
    );
    let whole_sunday = window("00:00", "24:00", "America/Havana", &["sun"]);
    assert_eq!(
        open_minutes(
            &whole_sunday,
            "2024-03-09T12:00:00Z",
            "2024-03-11T12:00:00Z"
        ),
        23 * 60
    );
    // Saturday night until 00:30 ends at the jump: only 23:00 to 24:00 happens.
    let late = window("23:00", "00:30", "America/Havana", &["sat"]);
    assert_eq!(
        open_minutes(&late, "2024-03-09T12:00:00Z", "2024-03-11T12:00:00Z"),
        60
    );
}

#[test]
fn santiago_skipped_midnight() {
    // 2024-09-08, a Sunday: 00:00 (UTC-4) jumps to 01:00 (UTC-3) at 04:00 UTC.
    let first_hour = window("00:00", "01:00", "America/Santiago", &["sun"]);
    assert_eq!(
        open_minutes(&first_hour, "2024-09-07T12:00:00Z", "2024-09-09T12:00:00Z"),
        0
    );
    assert!(first_hour.is_open(utc("2024-09-15T03:30:00Z")));
}

#[test]
fn overnight_window_belongs_to_start_day() {
    let friday_night = window("22:00", "06:00", "Europe/Copenhagen", &["fri"]);
    // 2024-06-07 is a Friday, and Copenhagen is at UTC+2.
    assert!(friday_night.is_open(utc("2024-06-07T20:00:00Z"))); // Fri 22:00
    assert!(friday_night.is_open(utc("2024-06-08T01:00:00Z"))); // Sat 03:00
    assert!(friday_night.is_open(utc("2024-06-08T03:59:00Z"))); // Sat 05:59
    assert!(!friday_night.is_open(utc("2024-06-08T04:00:00Z"))); // Sat 06:00
    assert!(!friday_night.is_open(utc("2024-06-07T01:00:00Z"))); // Fri 03:00
    assert!(!friday_night.is_open(utc("2024-06-08T20:00:00Z"))); // Sat 22:00

    let saturday_night = window("22:00", "06:00", "Europe/Copenhagen", &["sat"]);
    assert!(!saturday_night.is_open(utc("2024-06-08T01:00:00Z"))); // Sat 03:00
    assert!(saturday_night.is_open(utc("2024-06-09T01:00:00Z"))); // Sun 03:00
}

#[test]
fn sunday_night_wraps_to_monday() {
    let sunday_night = window("23:00", "01:00", "UTC", &["sun"]);
    assert!(sunday_night.is_open(utc("2024-06-09T23:30:00Z"))); // Sun
    assert!(sunday_night.is_open(utc("2024-06-10T00:30:00Z"))); // Mon
    assert!(!sunday_night.is_open(utc("2024-06-11T00:30:00Z"))); // Tue
}

#[test]
fn bounds_include_start_exclude_end() {
    let office = window("09:00", "17:00", "UTC", &["mon"]);
    assert!(!office.is_open(utc("2024-06-10T08:59:59Z")));
    assert!(office.is_open(utc("2024-06-10T09:00:00Z")));
    assert!(office.is_open(utc("2024-06-10T16:59:59Z")));
    assert!(!office.is_open(utc("2024-06-10T17:00:00Z")));
}

#[test]
fn end_of_day_covers_last_minute() {
    let whole_monday = window("00:00", "24:00", "UTC", &["mon"]);
    assert!(whole_monday.is_open(utc("2024-06-10T00:00:00Z")));
    assert!(whole_monday.is_open(utc("2024-06-10T23:59:59Z")));
    assert!(!whole_monday.is_open(utc("2024-06-11T00:00:00Z")));
    assert!(!whole_monday.is_open(utc("2024-06-09T23:59:59Z")));
    assert!(whole_monday.end().is_end_of_day());
}

#[test]
fn closed_window_reports_local_time() {
    let office = window("09:00", "17:00", "Europe/Copenhagen", &["mon"]);
    let closed = office.check(utc("2024-06-10T16:30:00Z")).unwrap_err();
    assert_eq!(closed.weekday(), chrono::Weekday::Mon);
    assert_eq!(closed.zone(), chrono_tz::Europe::Copenhagen);
    assert_eq!(
        closed.to_string(),
        "outside the time window: local time `2024-06-10 18:30` on `mon` in `Europe/Copenhagen`"
    );
    assert!(office.check(utc("2024-06-10T07:00:00Z")).is_ok());
}

#[test]
fn rejected_times_name_the_value() {
    for bad in ["7:05", " 07:05", "23:60", "07:05:00", "24:01", "", "ab:cd"] {
        let message = TimeWindow::new(bad, "17:00", "UTC", &["mon"])
            .unwrap_err()
            .to_string();
        assert!(message.contains("`start`"), "{bad:?}: {message}");
        assert!(message.contains(&format!("`{bad}`")), "{bad:?}: {message}");
        let message = TimeWindow::new("09:00", bad, "UTC", &["mon"])
            .unwrap_err()
            .to_string();
        assert!(message.contains("`end`"), "{bad:?}: {message}");
        assert!(message.contains(&format!("`{bad}`")), "{bad:?}: {message}");
    }
}

#[test]
fn end_of_day_is_not_a_start() {
    let message = TimeWindow::new("24:00", "06:00", "UTC", &["mon"])
        .unwrap_err()
        .to_string();
    assert!(message.contains("`24:00`"), "{message}");
    assert!(message.contains("`start`"), "{message}");
}

#[test]
fn equal_bounds_are_rejected() {
    let message = TimeWindow::new("09:00", "09:00", "UTC", &["mon"])
        .unwrap_err()
        .to_string();
    assert!(message.contains("`09:00`"), "{message}");
}

#[test]
fn unknown_zone_is_named() {
    let message = TimeWindow::new("09:00", "17:00", "Europe/Kopenhagen", &["mon"])
        .unwrap_err()
        .to_string();
    assert!(message.contains("`Europe/Kopenhagen`"), "{message}");
    assert!(message.contains("`timezone`"), "{message}");
}

#[test]
fn bad_days_are_named() {
    let none: [&str; 0] = [];
    let message = TimeWindow::new("09:00", "17:00", "UTC", &none)
        .unwrap_err()
        .to_string();
    assert!(message.contains("empty"), "{message}");
    for bad in ["Mon", "monday", "mo", ""] {
        let message = TimeWindow::new("09:00", "17:00", "UTC", &[bad])
            .unwrap_err()
            .to_string();
        assert!(message.contains(&format!("`{bad}`")), "{bad:?}: {message}");
    }
    let message = TimeWindow::new("09:00", "17:00", "UTC", &["mon", "tue", "mon"])
        .unwrap_err()
        .to_string();
    assert!(message.contains("`mon`"), "{message}");
    assert!(message.contains("more than once"), "{message}");
}

#[test]
fn serde_shape_round_trips() {
    let json =
        r#"{"start":"09:00","end":"17:00","timezone":"Europe/Copenhagen","days":["mon","tue"]}"#;
    let parsed: TimeWindow = serde_json::from_str(json).unwrap();
    assert_eq!(
        parsed,
        window("09:00", "17:00", "Europe/Copenhagen", &["tue", "mon"])
    );
    assert_eq!(serde_json::to_string(&parsed).unwrap(), json);
}

#[test]
fn deserialize_validates() {
    let json = r#"{"start":"9:00","end":"17:00","timezone":"UTC","days":["mon"]}"#;
    let error = serde_json::from_str::<TimeWindow>(json).unwrap_err();
    assert!(error.to_string().contains("`9:00`"), "{error}");
    let json = r#"{"start":"09:00","end":"17:00","timezone":"UTC","days":["mon"],"extra":1}"#;
    assert!(serde_json::from_str::<TimeWindow>(json).is_err());
}

#[test]
fn guardrails_missing_or_null_axis_is_off() {
    let off: Guardrails = serde_json::from_str("{}").unwrap();
    assert_eq!(off, Guardrails::default());
    let off: Guardrails =
        serde_json::from_str(r#"{"ipAllowlist":null,"countries":null,"timeWindow":null}"#).unwrap();
    assert_eq!(off, Guardrails::default());
}

#[test]
fn guardrails_use_camel_case_keys() {
    let json = r#"{"ipAllowlist":["10.0.0.0/8"],"countries":["DK"],"timeWindow":{"start":"22:00","end":"06:00","timezone":"UTC","days":["fri"]}}"#;
    let guardrails: Guardrails = serde_json::from_str(json).unwrap();
    assert!(guardrails.ip_allowlist.is_some());
    assert!(guardrails.countries.is_some());
    assert!(guardrails.time_window.is_some());
    assert_eq!(serde_json::to_string(&guardrails).unwrap(), json);
}

#[test]
fn guardrails_reject_empty_machine_allowlist() {
    let error = serde_json::from_str::<Guardrails>(r#"{"ipAllowlist":[]}"#).unwrap_err();
    assert!(
        error.to_string().contains("IP allowlist is empty"),
        "{error}"
    );
    let error = serde_json::from_str::<Guardrails>(r#"{"countries":[]}"#).unwrap_err();
    assert!(
        error.to_string().contains("country list is empty"),
        "{error}"
    );
    let error =
        serde_json::from_str::<Guardrails>(r#"{"ipAllowList":["10.0.0.0/8"]}"#).unwrap_err();
    assert!(error.to_string().contains("ipAllowList"), "{error}");
}

#[test]
fn window_open_agrees_with_check() {
    let window = window("22:00", "06:00", "Australia/Lord_Howe", &["fri", "sun"]);
    let start = Utc.with_ymd_and_hms(2024, 4, 1, 0, 0, 0).unwrap();
    for step in 0..(14 * 24 * 4) {
        let now = start + Duration::minutes(15 * step);
        assert_eq!(window.is_open(now), window.check(now).is_ok());
    }
}

proptest! {
    #[test]
    fn clock_parse_never_panics(text in "\\PC{0,12}") {
        if let Ok(time) = text.parse::<ClockTime>() {
            prop_assert_eq!(time.to_string(), text);
        }
    }

    #[test]
    fn window_new_never_panics(
        start in "[0-9:]{0,6}",
        end in "[0-9:]{0,6}",
        zone in "\\PC{0,20}",
        days in proptest::collection::vec("[a-z]{0,4}", 0..9),
    ) {
        let _ = TimeWindow::new(&start, &end, &zone, &days);
    }
}
