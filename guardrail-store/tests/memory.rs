//! The conformance suite on the in-memory backend, plus its table bounds.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod conformance;

use std::sync::Arc;

use guardrail_core::lockout::{FailureCounter, LockoutKey};
use guardrail_core::request::{NonceOutcome, NonceStore};
use guardrail_store::{GuardStore, MemoryLimits, MemoryStore, Store, StoreError};

use conformance::fixtures::{hours, machine_id, t0};

fn open() -> Option<Arc<dyn Store>> {
    Some(Arc::new(MemoryStore::new(MemoryLimits::default())))
}

conformance_tests!(open());

fn small() -> MemoryStore {
    MemoryStore::new(MemoryLimits {
        max_nonces: 2,
        max_lockouts: 2,
        max_coalesce_keys: 2,
    })
}

#[test]
fn full_nonce_table_fails_closed() {
    let store = small();
    let keep = t0() + hours(1);
    for nonce in ["a", "b"] {
        assert_eq!(
            store
                .insert_if_absent(machine_id(1), nonce, keep, t0())
                .unwrap(),
            NonceOutcome::Recorded
        );
    }
    let error = store
        .insert_if_absent(machine_id(1), "c", keep, t0())
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "nonce store unavailable: nonce table is full with 2 unexpired nonces"
    );
    // A replay is still recognised while the table is full.
    assert_eq!(
        store
            .insert_if_absent(machine_id(1), "a", keep, t0())
            .unwrap(),
        NonceOutcome::Replayed
    );
    // Once the stored nonces expire, they make room.
    assert_eq!(
        store
            .insert_if_absent(machine_id(1), "c", keep + hours(1), keep)
            .unwrap(),
        NonceOutcome::Recorded
    );
}

#[test]
fn full_lockout_table_fails_closed() {
    let store = small();
    let keep = t0() + hours(1);
    let update = |_: Option<FailureCounter>| FailureCounter {
        failures: 1,
        first_failure_at: Some(t0()),
        locked_until: None,
    };
    for octet in 1..=2u8 {
        let key = LockoutKey::Source(Some([192, 0, 2, octet].into()));
        store.record_failure(&key, t0(), keep, &update).unwrap();
    }
    let third = LockoutKey::Source(Some([192, 0, 2, 3].into()));
    let error = store
        .record_failure(&third, t0(), keep, &update)
        .unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error}");
    assert_eq!(
        error.to_string(),
        "store unavailable: lockout table is full with 2 live entries"
    );
    store
        .record_failure(&third, keep, keep + hours(1), &update)
        .unwrap();
}

#[test]
fn memory_url_has_two_spellings() {
    for url in ["memory:", "memory://"] {
        let store = guardrail_store::open_store(url).unwrap();
        assert_eq!(
            store
                .count_machines(&conformance::fixtures::vault_id(1))
                .unwrap(),
            0,
            "{url}"
        );
        assert_eq!(
            guardrail_store::migrate(url).unwrap(),
            guardrail_store::SCHEMA_VERSION,
            "{url}"
        );
    }
    let error = guardrail_store::open_store("memory:/x").err().unwrap();
    assert_eq!(
        error.to_string(),
        "store backend failed: unsupported database URL scheme `memory`: use `sqlite://PATH`, \
         `sqlite::memory:`, `postgres://...` or `memory:`"
    );
}
