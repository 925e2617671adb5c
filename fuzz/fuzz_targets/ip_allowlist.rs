//! IP allowlists as an admin enters them, one entry per line, then a lookup of an address taken
//! from the same input and a print-parse round trip of the list.

#![no_main]

use std::net::IpAddr;

use guardrail_core::guardrail::IpAllowlist;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let lines: Vec<&str> = text.lines().collect();
    let machine = IpAllowlist::parse(&lines);
    let Ok(list) = IpAllowlist::parse_allow_empty(&lines) else {
        assert!(machine.is_err());
        return;
    };
    assert_eq!(machine.is_ok(), !lines.is_empty());

    // Every entry contains its own first address, also through the merged range tables.
    for entry in list.entries() {
        let first = entry.network().network();
        assert!(list.contains(first), "{first} in `{entry}`");
    }
    if let Some(ip) = lines.first().and_then(|line| line.parse::<IpAddr>().ok()) {
        let _ = list.contains(ip);
    }

    let printed: Vec<String> = list.entries().iter().map(ToString::to_string).collect();
    let reparsed = IpAllowlist::parse_allow_empty(&printed);
    assert_eq!(reparsed.as_ref().ok(), Some(&list));
});
