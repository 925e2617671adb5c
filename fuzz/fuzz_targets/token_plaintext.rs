//! Bootstrap token plaintexts as a client presents them, and tokens made from random bytes, which
//! must parse back.

#![no_main]

use guardrail_core::token::TokenPlaintext;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(made) = TokenPlaintext::from_random_bytes(data) {
        let parsed = TokenPlaintext::parse(made.expose_secret());
        assert!(
            parsed.is_ok(),
            "a token made from {} bytes did not parse",
            data.len()
        );
        if let Ok(parsed) = parsed {
            assert!(parsed.hash() == made.hash());
        }
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(token) = TokenPlaintext::parse(text) {
        assert_eq!(token.expose_secret(), text);
    }
});
