//! Sweeper scale: one sweep over 1,000,000 stored machines of which 1,000 are due to expire,
//! on the memory backend and on SQLite (a WAL file in a temporary folder, `synchronous = FULL`).
//!
//! A plain timing harness is used because one run takes seconds and populating takes longer.
//! It prints the time of the draining sweep (batches of 500, as the server's sweeper runs them)
//! and the time of an idle sweep afterwards, with nothing due, which is what every later
//! minute costs. Memory comes from `/proc/self/status`: VmRSS before and after, VmHWM at the
//! end.
//!
//! # Populating
//!
//! - Memory: the store offers no bulk insert, so every machine goes through the public
//!   registration path: `issue_token`, `insert_token`, `register_machine`. Each stored machine
//!   therefore also keeps its used token and two audit entries (issuance and registration),
//!   as a machine registered through the server does, and the memory figure per machine
//!   includes them.
//! - SQLite: one machine is registered through the public path, then its row is copied with
//!   `INSERT ... SELECT` under new ids and expiries, in transactions of 100,000 rows, directly
//!   against the store's file and schema. Tokens and audit entries are not copied.
//!
//! Run one backend per process, so that one's memory does not blur the other's:
//!
//! ```sh
//! cargo bench -p guardrail-benches --bench sweep_scale -- memory
//! cargo bench -p guardrail-benches --bench sweep_scale -- sqlite
//! ```
//!
//! `SWEEP_SCALE_MACHINES=N` changes the machine count (the expiring 1,000 stay 1,000, or N
//! when N is smaller).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "benchmark harness"
)]

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use guardrail_core::guardrail::Guardrails;
use guardrail_core::ids::{MachineId, OwnerId, VaultId};
use guardrail_core::lifetime::Lifetime;
use guardrail_core::machine::{Machine, MachinePublicKey};
use guardrail_core::plan::{Owner, Plan, Vault};
use guardrail_core::token::{TokenRandomness, TokenRequest, issue_token};
use guardrail_store::{
    MachineStore as _, MemoryLimits, MemoryStore, OwnerKeyHash, SqliteStore, Store, SweepReport,
};

/// Machines stored by default.
const DEFAULT_MACHINES: u64 = 1_000_000;
/// Machines due to expire at the sweep.
const EXPIRING: u64 = 1_000;
/// The server's sweeper batch (`reference_server::sweeper::SWEEP_BATCH`).
const SWEEP_BATCH: u32 = 500;
/// Rows per SQLite transaction while populating.
const SQLITE_CHUNK: u64 = 100_000;

fn registered_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
}

fn sweep_at() -> DateTime<Utc> {
    registered_at() + TimeDelta::hours(2)
}

/// Reads a kibibyte field of `/proc/self/status`, such as `VmRSS` or `VmHWM`.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no `{field}` in /proc/self/status"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn id_bytes(index: u64) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&index.to_le_bytes());
    bytes[8..].copy_from_slice(&0x5eed_5eed_5eed_5eed_u64.to_le_bytes());
    bytes
}

fn machine_id(index: u64) -> MachineId {
    MachineId::from_random_bytes(id_bytes(index))
}

fn create_vault(store: &dyn Store) -> Vault {
    let owner = Owner {
        id: "owner_sweepscale".parse::<OwnerId>().unwrap(),
        active: true,
    };
    let vault = Vault {
        id: "vault_sweepscale".parse::<VaultId>().unwrap(),
        owner_id: owner.id.clone(),
        name: "sweep scale".to_owned(),
        plan: Plan::Enterprise,
        machine_limit: u32::MAX,
        ip_allowlist: None,
    };
    store
        .create_vault_with_owner(&owner, &OwnerKeyHash([2; 32]), &vault, registered_at())
        .unwrap();
    vault
}

/// Registers machine `index` through the public path: issue, insert the token, redeem it.
fn register(
    store: &dyn Store,
    vault: &Vault,
    public_key: &MachinePublicKey,
    index: u64,
    hours: bool,
) -> Machine {
    let lifetime = if hours {
        Lifetime::new(0, 0, 1)
    } else {
        Lifetime::new(0, 30, 0)
    };
    let mut secret = [0x42u8; 32];
    secret[..8].copy_from_slice(&index.to_le_bytes());
    let mut id = [0u8; 12];
    id[..8].copy_from_slice(&index.to_le_bytes());
    let issued = issue_token(
        vault,
        &vault.owner_id,
        TokenRequest {
            machine_name: "fleet".to_owned(),
            description: None,
            machine_lifetime: lifetime,
            token_lifetime_hours: None,
            guardrails: Guardrails::default(),
        },
        TokenRandomness {
            id,
            secret: &secret,
        },
        registered_at(),
    )
    .unwrap();
    store.insert_token(&issued.token, &issued.event).unwrap();
    store
        .register_machine(
            &vault.id,
            &issued.plaintext,
            public_key,
            id_bytes(index),
            registered_at(),
        )
        .unwrap()
        .value
}

fn public_key() -> MachinePublicKey {
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    MachinePublicKey::from_bytes(&key.verifying_key().to_bytes()).unwrap()
}

/// Runs sweeps of [`SWEEP_BATCH`] until one changes nothing; returns the total and each
/// batch's time.
fn drain(store: &dyn Store) -> (SweepReport, Vec<Duration>) {
    let mut total = SweepReport::default();
    let mut times = Vec::new();
    loop {
        let started = Instant::now();
        let batch = store.sweep(sweep_at(), SWEEP_BATCH).unwrap();
        times.push(started.elapsed());
        total.expired += batch.expired;
        total.purged += batch.purged;
        total.audit.extend(batch.audit);
        if batch.expired == 0 && batch.purged == 0 {
            return (total, times);
        }
    }
}

fn report_sweep(backend: &str, count: u64, expiring: u64, store: &dyn Store) {
    let rss_before = status_kib("VmRSS");
    let started = Instant::now();
    let (total, batches) = drain(store);
    let drained = started.elapsed();
    let rss_after = status_kib("VmRSS");
    assert_eq!(total.expired, expiring, "every due machine is marked once");
    assert_eq!(total.purged, 0);
    let idle_started = Instant::now();
    let idle = store.sweep(sweep_at(), SWEEP_BATCH).unwrap();
    let idle_time = idle_started.elapsed();
    assert_eq!(idle.expired, 0);
    let batch_ms: Vec<String> = batches
        .iter()
        .map(|time| format!("{:.1}", time.as_secs_f64() * 1000.0))
        .collect();
    println!(
        "{backend}: sweep of {count} machines, {expiring} due: {:.1} ms in {} batches [{} ms]; idle sweep {:.1} ms",
        drained.as_secs_f64() * 1000.0,
        batches.len(),
        batch_ms.join(", "),
        idle_time.as_secs_f64() * 1000.0
    );
    println!(
        "{backend}: VmRSS {:.1} MiB before the sweep, {:.1} MiB after; VmHWM {:.1} MiB",
        mib(rss_before),
        mib(rss_after),
        mib(status_kib("VmHWM"))
    );
}

// TODO: the memory backend's sweep scans every stored machine (about 100 ms per call at 1 M),
// so this figure grows with the count until `MemoryStore` keeps an expiry index.
fn bench_memory(count: u64, expiring: u64) {
    let rss_empty = status_kib("VmRSS");
    let store = MemoryStore::new(MemoryLimits::default());
    let vault = create_vault(&store);
    let key = public_key();
    let started = Instant::now();
    for index in 0..count {
        register(&store, &vault, &key, index, index < expiring);
    }
    let populated = started.elapsed();
    let rss_full = status_kib("VmRSS");
    let per_machine = (rss_full.saturating_sub(rss_empty) * 1024) as f64 / count as f64;
    println!(
        "memory: populated {count} machines in {:.1} s through the registration path; VmRSS {:.1} -> {:.1} MiB, {per_machine:.0} bytes per machine (with its token and 2 audit entries)",
        populated.as_secs_f64(),
        mib(rss_empty),
        mib(rss_full)
    );
    report_sweep("memory", count, expiring, &store);
}

fn bench_sqlite(count: u64, expiring: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sweep.sqlite3");
    let store = SqliteStore::open(&path).unwrap();
    let vault = create_vault(&store);
    let template = register(&store, &vault, &public_key(), 0, true);

    let started = Instant::now();
    let mut connection = rusqlite::Connection::open(&path).unwrap();
    connection
        .execute_batch("PRAGMA synchronous = FULL;")
        .unwrap();
    let soon = (registered_at() + TimeDelta::hours(1)).timestamp_micros();
    let later = (registered_at() + TimeDelta::days(30)).timestamp_micros();
    let mut next = 1;
    while next < count {
        let end = (next + SQLITE_CHUNK).min(count);
        let tx = connection.transaction().unwrap();
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO machines (id, vault_id, name, description, public_key, state, \
                     created_at, expires_at, guardrails, token_id) \
                     SELECT ?1, vault_id, name, description, public_key, state, created_at, ?2, \
                     guardrails, token_id FROM machines WHERE id = ?3",
                )
                .unwrap();
            let template_id = template.id.to_string();
            for index in next..end {
                let expires = if index < expiring { soon } else { later };
                let inserted = insert
                    .execute(rusqlite::params![
                        machine_id(index).to_string(),
                        expires,
                        template_id
                    ])
                    .unwrap();
                assert_eq!(inserted, 1);
            }
        }
        tx.commit().unwrap();
        next = end;
    }
    drop(connection);
    let populated = started.elapsed();
    // The copies read back through the store as the machines they stand for.
    let copy = store.find_machine(&machine_id(count - 1)).unwrap().unwrap();
    assert_eq!(copy.expires_at, registered_at() + TimeDelta::days(30));
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "sqlite: populated {count} machines in {:.1} s by INSERT ... SELECT from one registered row; file {:.1} MiB",
        populated.as_secs_f64(),
        size as f64 / 1_048_576.0
    );
    report_sweep("sqlite", count, expiring, &store);
}

fn main() {
    let count: u64 = std::env::var("SWEEP_SCALE_MACHINES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(DEFAULT_MACHINES)
        .max(1);
    let expiring = EXPIRING.min(count);
    // Cargo passes `--bench`; any other argument picks backends by name.
    let picked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let wants =
        |name: &str| picked.is_empty() || picked.iter().any(|arg| name.contains(arg.as_str()));
    if wants("memory") {
        bench_memory(count, expiring);
    }
    if wants("sqlite") {
        bench_sqlite(count, expiring);
    }
}
