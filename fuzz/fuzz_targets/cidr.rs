//! One IP allowlist entry: `Cidr::from_str` on arbitrary text, then print and parse again.

#![no_main]

use guardrail_core::guardrail::Cidr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(cidr) = text.parse::<Cidr>() else {
        return;
    };
    let printed = cidr.to_string();
    let reparsed: Result<Cidr, _> = printed.parse();
    assert_eq!(
        reparsed.as_ref().ok(),
        Some(&cidr),
        "`{text}` printed as `{printed}`"
    );
    // A network contains its own first address.
    assert!(cidr.contains(cidr.network().network()), "`{printed}`");
});
