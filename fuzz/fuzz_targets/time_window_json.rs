//! Whole time windows as JSON, then a check at an instant taken from the input and a
//! serialise-parse round trip.

#![no_main]

use chrono::DateTime;
use guardrail_core::guardrail::TimeWindow;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first eight bytes pick the instant; the rest is the JSON.
    let Some((instant, json)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Ok(window) = serde_json::from_slice::<TimeWindow>(json) else {
        return;
    };
    if let Some(now) = DateTime::from_timestamp(i64::from_le_bytes(*instant), 0) {
        assert_eq!(window.is_open(now), window.check(now).is_ok());
        if let Err(closed) = window.check(now) {
            let _ = closed.to_string();
        }
    }

    let Ok(printed) = serde_json::to_string(&window) else {
        return;
    };
    let reparsed = serde_json::from_str::<TimeWindow>(&printed);
    assert_eq!(reparsed.as_ref().ok(), Some(&window), "{printed}");
});
