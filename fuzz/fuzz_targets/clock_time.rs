//! Strict `HH:MM` times: parse, print and parse again.

#![no_main]

use guardrail_core::guardrail::window::ClockTime;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(time) = text.parse::<ClockTime>() else {
        return;
    };
    // The parser is strict, so the only accepted spelling is the printed one.
    assert_eq!(time.to_string(), text);
    assert!(time.minutes() <= 24 * 60);
});
