//! Compares `TimeWindow::is_open` with the table that `data/window/generate_differential.py`
//! produced from Python's `zoneinfo`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use chrono::{DateTime, Utc};
use guardrail_core::guardrail::TimeWindow;

const TABLE: &str = include_str!("data/window/differential.csv");

#[test]
fn window_agrees_with_zoneinfo_table() {
    let mut lines = TABLE.lines();
    assert_eq!(
        lines.next(),
        Some("start,end,timezone,days,instant,expected_open")
    );

    let mut checked = 0;
    let mut disagreements = Vec::new();
    for (number, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        let [start, end, zone, days, instant, expected] = fields[..] else {
            panic!("row {number} has {} fields: {line}", fields.len());
        };
        let days: Vec<&str> = days.split(';').collect();
        let window = TimeWindow::new(start, end, zone, &days)
            .unwrap_or_else(|e| panic!("row {number} does not parse: {e}"));
        let now: DateTime<Utc> = instant.parse().unwrap();
        let expected = match expected {
            "1" => true,
            "0" => false,
            other => panic!("row {number} has expected value {other}"),
        };
        if window.is_open(now) != expected {
            disagreements.push(line.to_owned());
        }
        checked += 1;
    }

    assert_eq!(checked, 6000);
    assert!(
        disagreements.is_empty(),
        "rows that disagree:\n{}",
        disagreements.join("\n")
    );
}
