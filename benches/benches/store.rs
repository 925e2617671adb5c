//! Store benchmarks: token redemption, nonce insertion and audit appends (one entry and a
//! batch of 100) on each backend.
//!
//! Memory and SQLite (a WAL file in a temporary folder, `synchronous = FULL`) always run.
//! PostgreSQL runs when `GUARDRAIL_TEST_POSTGRES_URL` is set, in a schema of its own that is
//! dropped at the end. Run with
//! `cargo bench -p guardrail-benches --bench store -- --warm-up-time 1 --measurement-time 3`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmarks")]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use guardrail_core::audit::{Actor, AuditAction, AuditEvent, Target};
use guardrail_core::guardrail::Guardrails;
use guardrail_core::ids::{MachineId, OwnerId, VaultId};
use guardrail_core::lifetime::Lifetime;
use guardrail_core::machine::MachinePublicKey;
use guardrail_core::plan::{Owner, Plan, Vault};
use guardrail_core::token::{IssuedToken, TokenRandomness, TokenRequest, issue_token};
use guardrail_store::{MemoryLimits, MemoryStore, OwnerKeyHash, PostgresStore, SqliteStore, Store};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
}

/// A counter that makes every token, machine id and nonce of a run distinct.
static COUNTER: AtomicU64 = AtomicU64::new(1);

fn next() -> u64 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

fn spread<const N: usize>(value: u64) -> [u8; N] {
    let mut bytes = [0u8; N];
    for (index, byte) in value.to_le_bytes().iter().enumerate() {
        bytes[index % N] ^= byte;
    }
    bytes[N - 1] ^= 0x5a;
    bytes
}

fn setup_vault(store: &dyn Store) -> Vault {
    let owner = Owner {
        id: "owner_bench".parse::<OwnerId>().unwrap(),
        active: true,
    };
    let vault = Vault {
        id: "vault_bench".parse::<VaultId>().unwrap(),
        owner_id: owner.id.clone(),
        name: "bench".to_owned(),
        plan: Plan::Enterprise,
        machine_limit: u32::MAX,
        ip_allowlist: None,
    };
    store
        .create_vault_with_owner(&owner, &OwnerKeyHash([1; 32]), &vault, now())
        .unwrap();
    vault
}

fn issue(store: &dyn Store, vault: &Vault) -> IssuedToken {
    let value = next();
    let mut secret = [0u8; 32];
    secret[..8].copy_from_slice(&value.to_le_bytes());
    let issued = issue_token(
        vault,
        &vault.owner_id,
        TokenRequest {
            machine_name: "bench".to_owned(),
            description: None,
            machine_lifetime: Lifetime {
                months: 0,
                days: 1,
                hours: 0,
            },
            token_lifetime_hours: None,
            guardrails: Guardrails::default(),
        },
        TokenRandomness {
            id: spread::<12>(value),
            secret: &secret,
        },
        now(),
    )
    .unwrap();
    store.insert_token(&issued.token, &issued.event).unwrap();
    issued
}

fn audit_event(vault: &VaultId) -> AuditEvent {
    let machine = MachineId::from_random_bytes([3; 16]);
    AuditEvent::new(
        now(),
        vault.clone(),
        Actor::Machine(machine),
        AuditAction::SecretRead,
        Target::Machine(machine),
        serde_json::json!({ "secret": "sk_benchmark01" }),
    )
}

fn bench_backend(c: &mut Criterion, name: &str, store: &dyn Store) {
    let vault = setup_vault(store);
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let public_key = MachinePublicKey::from_bytes(&key.verifying_key().to_bytes()).unwrap();
    let mut group = c.benchmark_group(format!("store/{name}"));

    group.bench_function("redeem_token", |b| {
        b.iter_batched(
            || issue(store, &vault),
            |issued| {
                let machine = store
                    .register_machine(
                        &vault.id,
                        &issued.plaintext,
                        &public_key,
                        spread::<16>(next()),
                        now(),
                    )
                    .unwrap();
                black_box(machine);
            },
            BatchSize::SmallInput,
        );
    });

    // The transport clock advances 1 µs per request and each nonce is kept for 100 ms, so the
    // memory backend's bounded table reaches a steady state instead of filling up.
    let machine = MachineId::from_random_bytes([4; 16]);
    group.bench_function("nonce_insert", |b| {
        b.iter(|| {
            let value = next();
            let at = now() + chrono::TimeDelta::microseconds(i64::try_from(value).unwrap());
            let keep_until = at + chrono::TimeDelta::milliseconds(100);
            let nonce = format!("{value:032x}");
            black_box(
                store
                    .insert_if_absent(machine, &nonce, keep_until, at)
                    .unwrap(),
            );
        });
    });

    let single = [audit_event(&vault.id)];
    group.bench_function("audit_append_1", |b| {
        b.iter(|| black_box(store.append_audit(&single).unwrap()));
    });
    let batch: Vec<AuditEvent> = (0..100).map(|_| audit_event(&vault.id)).collect();
    group.bench_function("audit_append_batch_100", |b| {
        b.iter(|| black_box(store.append_audit(&batch).unwrap()));
    });
    group.finish();
}

fn store_benches(c: &mut Criterion) {
    let memory = MemoryStore::new(MemoryLimits::default());
    bench_backend(c, "memory", &memory);

    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("bench.db")).unwrap();
    bench_backend(c, "sqlite", &sqlite);

    match std::env::var("GUARDRAIL_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => {
            let schema = format!("guardrail_bench_{}", std::process::id());
            let postgres = PostgresStore::open_in_schema(&url, &schema).unwrap();
            bench_backend(c, "postgres", &postgres);
            postgres.drop_schema(&schema).unwrap();
        }
        _ => eprintln!("skipping PostgreSQL: set GUARDRAIL_TEST_POSTGRES_URL=postgres://..."),
    }
}

criterion_group!(benches, store_benches);
criterion_main!(benches);
