//! The conformance suite on SQLite (a fresh file per test), plus index use, migrations and
//! crash durability.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod conformance;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use guardrail_core::audit::AuditAction;
use guardrail_store::{AuditQuery, AuditStore, SqliteStore, Store};

use conformance::fixtures::{event, machine_id, t0, vault_id};

/// A store in a temporary folder that lives as long as the store.
struct TempSqlite {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TempSqlite {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        &self.store
    }
}

fn open() -> Option<TempSqlite> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("guardrail.db")).unwrap();
    Some(TempSqlite { store, _dir: dir })
}

conformance_tests!(open());

#[test]
fn in_memory_url_opens() {
    let store = guardrail_store::open_store("sqlite::memory:").unwrap();
    assert_eq!(store.count_machines(&vault_id(1)).unwrap(), 0);
}

#[test]
fn unknown_url_scheme_is_named() {
    let error = guardrail_store::open_store("mysql://localhost/db")
        .err()
        .unwrap();
    assert_eq!(
        error.to_string(),
        "store backend failed: unsupported database URL scheme `mysql`: use `sqlite://PATH`, \
         `sqlite::memory:`, `postgres://...` or `memory:`"
    );
}

#[test]
fn migrate_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    assert_eq!(
        guardrail_store::migrate(&url).unwrap(),
        guardrail_store::SCHEMA_VERSION
    );
    assert_eq!(
        guardrail_store::migrate(&url).unwrap(),
        guardrail_store::SCHEMA_VERSION
    );
    let store = guardrail_store::open_store(&url).unwrap();
    assert_eq!(store.count_machines(&vault_id(1)).unwrap(), 0);
}

#[test]
fn sweep_queries_use_expiry_indexes() {
    let store = open().unwrap();
    let due_expire = store
        .store
        .explain_query_plan(
            "SELECT m.id FROM machines m JOIN vaults v ON v.id = m.vault_id \
             WHERE m.state <> 'expired' AND m.expires_at <= $1 ORDER BY m.expires_at LIMIT $2",
        )
        .unwrap();
    assert!(
        due_expire
            .iter()
            .any(|line| line.contains("USING INDEX machines_unexpired_expiry")),
        "{due_expire:?}"
    );
    let due_purge = store
        .store
        .explain_query_plan(
            "SELECT m.id FROM machines m JOIN vaults v ON v.id = m.vault_id \
             WHERE m.expires_at <= $1 ORDER BY m.expires_at LIMIT $2",
        )
        .unwrap();
    assert!(
        due_purge
            .iter()
            .any(|line| line.contains("USING INDEX machines_expiry")),
        "{due_purge:?}"
    );
}

/// The child process: appends audit entries one at a time and prints each acknowledged id.
const CHILD_ENV: &str = "GUARDRAIL_STORE_DURABILITY_CHILD";

#[test]
fn durability_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = SqliteStore::open(&path).unwrap();
    let vault = vault_id(1);
    for index in 0..100_000 {
        let at = t0() + chrono::TimeDelta::seconds(index);
        let ids = store
            .append_audit(&[event(&vault, machine_id(1), AuditAction::SecretRead, at)])
            .unwrap();
        println!("ack {}", ids[0].0);
    }
}

#[test]
fn acknowledged_audit_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("durable.db");
    // Create the schema first, so the child starts appending at once.
    drop(SqliteStore::open(&path).unwrap());

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "durability_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acknowledged = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("ack ") {
            acknowledged.push(id.parse::<i64>().unwrap());
            if acknowledged.len() == 200 {
                // SIGKILL: no destructor, no flush, no chance to finish the transaction.
                child.kill().unwrap();
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(acknowledged.len(), 200, "the child stopped early");

    let store = SqliteStore::open(&path).unwrap();
    let stored: std::collections::HashSet<i64> = store
        .query_audit(&AuditQuery::newest(vault_id(1), 1_000_000))
        .unwrap()
        .into_iter()
        .map(|entry| entry.id.0)
        .collect();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged entries lost after SIGKILL: {lost:?}"
    );
}

/// A database left at schema version 1 keeps its coalescing state through migration 2, which
/// fills `first_at` from the instant of each row's audit entry.
#[test]
fn migration_2_fills_coalesce_first_at() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let first_at = t0().timestamp_micros();
    let last_at = first_at + 90_000_000;
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch(include_str!("../migrations/sqlite/0001_init.sql"))
            .unwrap();
        connection
            .execute_batch(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, \
                 name TEXT NOT NULL, applied_at INTEGER NOT NULL); \
                 INSERT INTO schema_migrations VALUES (1, 'init', 0);",
            )
            .unwrap();
        connection
            .execute(
                "INSERT INTO audit_log (id, at, vault_id, actor_kind, action, severity, \
                 target_kind, target_id, detail, count) \
                 VALUES (7, ?1, 'vault_x', 'system', 'temp_machine_blocked', 'high', \
                 'machine', 'm', '{}', 3)",
                [first_at],
            )
            .unwrap();
        connection
            .execute(
                "INSERT INTO audit_coalesce (key, audit_id, count, last_at) \
                 VALUES ('kept', 7, 3, ?1), ('orphan', 99, 1, ?1)",
                [last_at],
            )
            .unwrap();
    }

    drop(SqliteStore::open(&path).unwrap());

    let connection = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = connection
        .query_row("SELECT max(version) FROM schema_migrations", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(version, guardrail_store::SCHEMA_VERSION);
    let first_at_of = |key: &str| -> i64 {
        connection
            .query_row(
                "SELECT first_at FROM audit_coalesce WHERE key = ?1",
                [key],
                |row| row.get(0),
            )
            .unwrap()
    };
    assert_eq!(first_at_of("kept"), first_at, "taken from the audit entry");
    assert_eq!(
        first_at_of("orphan"),
        last_at,
        "no entry: the latest repeat"
    );
}
