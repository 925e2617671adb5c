//! The conformance suite on PostgreSQL, plus replica sharing and index use.
//!
//! Set `GUARDRAIL_TEST_POSTGRES_URL` (for example `postgres://postgres@127.0.0.1:5432/test`) to
//! run these tests; without it each test prints a notice and passes. Every test works in its
//! own schema, which it drops at the end.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod conformance;

use std::sync::atomic::{AtomicU32, Ordering};

use guardrail_core::lockout::{FailureCounter, LockoutKey};
use guardrail_core::request::{NonceOutcome, NonceStore};
use guardrail_store::{GuardStore, PostgresStore, Store};

use conformance::fixtures::{hours, machine_id, t0};

const URL_VARIABLE: &str = "GUARDRAIL_TEST_POSTGRES_URL";

/// A store in a schema of its own, dropped with the store.
struct SchemaStore {
    store: PostgresStore,
    schema: String,
}

impl std::ops::Deref for SchemaStore {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        &self.store
    }
}

impl Drop for SchemaStore {
    fn drop(&mut self) {
        if let Err(error) = self.store.drop_schema(&self.schema) {
            eprintln!("could not drop test schema `{}`: {error}", self.schema);
        }
    }
}

fn database_url() -> Option<String> {
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("skipping: set {URL_VARIABLE}=postgres://... to run PostgreSQL tests");
            None
        }
    }
}

fn unique_schema() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "guardrail_test_{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn open() -> Option<SchemaStore> {
    let url = database_url()?;
    let schema = unique_schema();
    let store = PostgresStore::open_in_schema(&url, &schema).unwrap();
    Some(SchemaStore { store, schema })
}

conformance_tests!(open());

#[test]
fn two_handles_share_nonces_and_lockouts() {
    let Some(first) = open() else { return };
    let url = database_url().unwrap();
    let second = PostgresStore::open_in_schema(&url, &first.schema).unwrap();

    let keep = t0() + hours(1);
    assert_eq!(
        first
            .insert_if_absent(machine_id(1), "shared", keep, t0())
            .unwrap(),
        NonceOutcome::Recorded
    );
    assert_eq!(
        second
            .insert_if_absent(machine_id(1), "shared", keep, t0())
            .unwrap(),
        NonceOutcome::Replayed
    );

    let key = LockoutKey::Source(Some("203.0.113.5".parse().unwrap()));
    let bump = |current: Option<FailureCounter>| FailureCounter {
        failures: current.map_or(0, |state| state.failures) + 1,
        first_failure_at: Some(t0()),
        locked_until: None,
    };
    first.record_failure(&key, t0(), keep, &bump).unwrap();
    second.record_failure(&key, t0(), keep, &bump).unwrap();
    assert_eq!(
        first.lockout_state(&key, t0()).unwrap().unwrap().failures,
        2
    );
}

#[test]
fn concurrent_failures_across_handles_are_not_lost() {
    let Some(first) = open() else { return };
    let url = database_url().unwrap();
    let second = PostgresStore::open_in_schema(&url, &first.schema).unwrap();
    let key = LockoutKey::Source(Some("203.0.113.6".parse().unwrap()));
    let keep = t0() + hours(1);
    let bump = |current: Option<FailureCounter>| FailureCounter {
        failures: current.map_or(0, |state| state.failures) + 1,
        first_failure_at: Some(t0()),
        locked_until: None,
    };
    std::thread::scope(|scope| {
        for handle in [&first.store, &second] {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..5 {
                        handle.record_failure(&key, t0(), keep, &bump).unwrap();
                    }
                });
            }
        }
    });
    assert_eq!(
        first.lockout_state(&key, t0()).unwrap().unwrap().failures,
        40
    );
}

#[test]
fn migrate_is_idempotent() {
    let Some(store) = open() else { return };
    assert_eq!(
        store.store.migrate().unwrap(),
        guardrail_store::SCHEMA_VERSION
    );
    assert_eq!(
        store.store.migrate().unwrap(),
        guardrail_store::SCHEMA_VERSION
    );
}

#[test]
fn sweep_queries_can_use_expiry_indexes() {
    let Some(store) = open() else { return };
    let now = t0();
    let limit = 100_i64;
    let due_expire = store
        .store
        .explain(
            "SELECT m.id FROM machines m JOIN vaults v ON v.id = m.vault_id \
             WHERE m.state <> 'expired' AND m.expires_at <= $1 ORDER BY m.expires_at LIMIT $2",
            &[&now, &limit],
        )
        .unwrap();
    assert!(
        due_expire
            .iter()
            .any(|line| line.contains("machines_unexpired_expiry")),
        "{due_expire:#?}"
    );
    let due_purge = store
        .store
        .explain(
            "SELECT m.id FROM machines m JOIN vaults v ON v.id = m.vault_id \
             WHERE m.expires_at <= $1 ORDER BY m.expires_at LIMIT $2",
            &[&now, &limit],
        )
        .unwrap();
    assert!(
        due_purge
            .iter()
            .any(|line| line.contains("machines_expiry")),
        "{due_purge:#?}"
    );
}
