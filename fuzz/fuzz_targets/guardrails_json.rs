//! A machine's guardrails as JSON (the body of `PUT .../guardrails`), then a serialise-parse round
//! trip and each axis applied to an address and an instant taken from the input.

#![no_main]

use std::net::{IpAddr, Ipv6Addr};

use chrono::DateTime;
use guardrail_core::guardrail::{
    CountryCode, CountryLookup, CountryResolver, Guardrails, StaticCountryResolver,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first sixteen bytes pick the source address and the next eight the instant.
    let Some((address, rest)) = data.split_first_chunk::<16>() else {
        return;
    };
    let Some((instant, json)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let Ok(guardrails) = serde_json::from_slice::<Guardrails>(json) else {
        return;
    };

    let source = IpAddr::V6(Ipv6Addr::from(*address)).to_canonical();
    if let Some(list) = &guardrails.ip_allowlist {
        assert!(!list.is_empty());
        let _ = list.contains(source);
    }
    if let Some(countries) = &guardrails.countries {
        let resolver = StaticCountryResolver::new(Vec::new());
        assert!(matches!(
            resolver.resolve(source),
            CountryLookup::Undetermined(_)
        ));
        if let Ok(code) = "SE".parse::<CountryCode>() {
            let _ = countries.contains(code);
        }
    }
    if let (Some(window), Some(now)) = (
        &guardrails.time_window,
        DateTime::from_timestamp(i64::from_le_bytes(*instant), 0),
    ) {
        let _ = window.check(now);
    }

    let Ok(printed) = serde_json::to_string(&guardrails) else {
        return;
    };
    let reparsed = serde_json::from_str::<Guardrails>(&printed);
    assert_eq!(reparsed.as_ref().ok(), Some(&guardrails), "{printed}");
});
