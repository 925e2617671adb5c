//! Time-window checks in a zone with daylight saving time, on ordinary instants and around the
//! transitions, where the conversion to wall-clock time does the most work.

#![expect(
    clippy::expect_used,
    reason = "benchmark setup fails loudly on a broken fixture"
)]

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use guardrail_core::guardrail::TimeWindow;

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339 instant")
        .with_timezone(&Utc)
}

fn time_window(c: &mut Criterion) {
    let working_hours = TimeWindow::new(
        "09:00",
        "17:00",
        "America/New_York",
        &["mon", "tue", "wed", "thu", "fri"],
    )
    .expect("working-hours window");
    let overnight = TimeWindow::new("22:00", "06:00", "America/New_York", &["sat", "sun"])
        .expect("overnight window");

    // 2024-03-10 is the spring-forward Sunday in New York (02:00 EST becomes 03:00 EDT, at
    // 07:00 UTC) and 2024-11-03 the fall-back Sunday (02:00 EDT becomes 01:00 EST, at 06:00 UTC).
    let cases = [
        ("open_summer", &working_hours, "2024-07-10T15:00:00Z", true),
        (
            "closed_winter",
            &working_hours,
            "2024-01-13T15:00:00Z",
            false,
        ),
        ("spring_forward", &overnight, "2024-03-10T07:30:00Z", true),
        (
            "fall_back_repeated_hour",
            &overnight,
            "2024-11-03T06:30:00Z",
            true,
        ),
    ];

    let mut group = c.benchmark_group("time_window");
    for (name, window, at, open) in cases {
        let now = instant(at);
        assert_eq!(window.is_open(now), open, "{name}");
        group.bench_function(name, |b| {
            b.iter(|| black_box(window.check(black_box(now)).is_ok()));
        });
    }
    group.finish();
}

criterion_group!(benches, time_window);
criterion_main!(benches);
