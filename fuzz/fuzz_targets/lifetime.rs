//! Machine lifetimes as JSON (`{months, days, hours}`), validated against a start instant taken
//! from the input.

#![no_main]

use chrono::DateTime;
use guardrail_core::lifetime::{Lifetime, max_expiry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first eight bytes pick the registration instant; the rest is the JSON.
    let Some((instant, json)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Some(start) = DateTime::from_timestamp(i64::from_le_bytes(*instant), 0) else {
        return;
    };
    let Ok(lifetime) = serde_json::from_slice::<Lifetime>(json) else {
        return;
    };
    let _ = lifetime.to_string();
    let Ok(expires_at) = lifetime.expires_at(start) else {
        return;
    };
    // A valid lifetime is at least one hour and at most 12 calendar months.
    assert!(expires_at > start, "{lifetime} from {start}");
    assert!(
        Some(expires_at) <= max_expiry(start),
        "{lifetime} from {start}"
    );

    let printed = serde_json::to_string(&lifetime).unwrap_or_default();
    assert_eq!(
        serde_json::from_str::<Lifetime>(&printed).ok(),
        Some(lifetime)
    );
});
