//! Country codes and country allowlists: parse, print and parse again.

#![no_main]

use guardrail_core::guardrail::{CountryAllowlist, CountryCode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(code) = text.parse::<CountryCode>() {
        let printed = code.to_string();
        assert_eq!(printed, text.to_ascii_uppercase());
        assert_eq!(printed.parse::<CountryCode>().ok(), Some(code));
    }

    let lines: Vec<&str> = text.lines().collect();
    if let Ok(list) = CountryAllowlist::parse(&lines) {
        for code in list.codes() {
            assert!(list.contains(*code));
        }
        let printed: Vec<String> = list.codes().iter().map(ToString::to_string).collect();
        assert_eq!(CountryAllowlist::parse(&printed).ok(), Some(list));
    }
});
