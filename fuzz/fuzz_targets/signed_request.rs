//! The signed-request headers and payload: `SignedRequest::parse` on arbitrary header values and
//! body, `verify` against a fixed key, and a sign-then-verify round trip whenever the timestamp
//! and nonce parse.

#![no_main]

use std::cell::RefCell;
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, SigningKey};
use guardrail_core::ids::MachineId;
use guardrail_core::request::{
    MaxSkew, Nonce, NonceOutcome, NonceStore, NonceStoreError, RawRequest, RequestError,
    SignedRequest, Timestamp,
};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    method: &'a str,
    path: &'a str,
    machine_id: Option<&'a [u8]>,
    timestamp: Option<&'a [u8]>,
    nonce: Option<&'a [u8]>,
    signature: Option<&'a [u8]>,
    body: &'a [u8],
    now: i64,
    skew: u32,
}

/// An in-memory nonce store with no bound, enough for one input.
#[derive(Default)]
struct Nonces(RefCell<HashSet<(MachineId, String)>>);

impl NonceStore for Nonces {
    fn insert_if_absent(
        &self,
        machine: MachineId,
        nonce: &str,
        _keep_until: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Result<NonceOutcome, NonceStoreError> {
        if self.0.borrow_mut().insert((machine, nonce.to_owned())) {
            Ok(NonceOutcome::Recorded)
        } else {
            Ok(NonceOutcome::Replayed)
        }
    }
}

fuzz_target!(|input: Input<'_>| {
    let signing_key = SigningKey::from_bytes(&[9_u8; 32]);
    let key = signing_key.verifying_key();
    let machine = MachineId::from_random_bytes([3_u8; 16]);
    let now = DateTime::from_timestamp(input.now, 0).unwrap_or(DateTime::UNIX_EPOCH);
    let skew = MaxSkew::from_secs(input.skew % 4_000).unwrap_or_default();

    let raw = RawRequest {
        method: input.method,
        path: input.path,
        machine_id: input.machine_id,
        timestamp: input.timestamp,
        nonce: input.nonce,
        signature: input.signature,
        body: input.body,
    };
    let request = SignedRequest::parse(&raw);
    let _ = request.machine_id();
    let nonces = Nonces::default();
    let _ = request.verify(machine, &key, now, skew, &nonces);

    // Accepted timestamps have one spelling, the one the signature covers.
    if let Ok(timestamp) = request.timestamp() {
        let printed = timestamp.to_string();
        assert_eq!(Timestamp::parse(printed.as_bytes()).ok(), Some(timestamp));
        assert_eq!(Some(printed.as_bytes()), input.timestamp);
    }

    // When the timestamp and nonce parse, the machine's own signature over the payload verifies at
    // the timestamp, and the same request again is a replay.
    let Ok(payload) = request.payload() else {
        return;
    };
    let (Some(timestamp), Some(nonce)) = (input.timestamp, input.nonce) else {
        return;
    };
    assert!(Nonce::parse(nonce).is_ok());
    let signature = base64_standard(&signing_key.sign(&payload).to_bytes());
    let signed = SignedRequest::parse(&RawRequest {
        signature: Some(signature.as_bytes()),
        ..raw
    });
    let Ok(parsed) = Timestamp::parse(timestamp) else {
        return;
    };
    let Some(at_timestamp) = DateTime::from_timestamp(parsed.unix_seconds(), 0) else {
        return;
    };
    let nonces = Nonces::default();
    let first = signed.verify(machine, &key, at_timestamp, skew, &nonces);
    assert!(first.is_ok(), "{first:?}");
    let second = signed.verify(machine, &key, at_timestamp, skew, &nonces);
    assert!(
        matches!(second, Err(RequestError::Replayed(_))),
        "{second:?}"
    );
});

fn base64_standard(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
