//! Machine public keys as registration receives them: raw bytes and padded standard base64, with
//! the canonical-encoding and small-order checks, then a print-parse round trip.

#![no_main]

use guardrail_core::machine::MachinePublicKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = MachinePublicKey::from_bytes(data) {
        assert_eq!(key.to_bytes().as_slice(), data);
        assert!(!key.verifying_key().is_weak());
        let printed = key.to_base64();
        assert_eq!(MachinePublicKey::from_base64(&printed).ok(), Some(key));
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = MachinePublicKey::from_base64(text) {
        // Padded standard base64 has one spelling per byte string.
        assert_eq!(key.to_base64(), text);
    }
});
