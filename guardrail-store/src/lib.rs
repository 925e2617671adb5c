//! Storage for the Guardrail engine: traits, and backends that keep records in memory, in
//! SQLite (the embedded default) or in PostgreSQL (for several server replicas).
//!
//! The core decides and the store persists. Every operation that changes state and writes
//! audit entries does both in one transaction. Where the core must look at current records
//! first (registration, extension, state changes, sweeping), the trait method takes a decision
//! function and calls it inside that transaction. The atomicity contract of each operation is
//! written on its trait method, and one conformance suite checks it on every backend.
//!
//! Open a store by URL with [`open_store`]:
//!
//! ```
//! let store = guardrail_store::open_store("sqlite::memory:").unwrap();
//! # let _ = store;
//! ```
//!
//! # Instants
//!
//! SQLite stores instants as integer microseconds since the Unix epoch and PostgreSQL as
//! `timestamptz`, which also has microsecond precision. Sub-microsecond digits are dropped by
//! both; the memory backend keeps them.

mod codec;
mod error;
mod memory;
mod migrate;
mod model;
mod postgres;
mod sql;
mod sqlite;
mod traits;

use std::sync::Arc;

pub use error::{Backend, Conflict, NotFound, StoreError, Unavailable};
pub use memory::{MemoryLimits, MemoryStore};
pub use migrate::SCHEMA_VERSION;
pub use model::{
    AuditId, AuditQuery, AuditRecord, Audited, CoalesceKey, CoalesceOutcome, CoalesceState,
    NewWebhook, OwnerKeyHash, Project, PurgeCounts, RegistrationContext, SecretRecord,
    SecretValueType, SweepReport, WebhookId, WebhookSubscription,
};
pub use postgres::{PostgresBackend, PostgresStore};
pub use sql::SqlStore;
pub use sqlite::{SqliteBackend, SqliteStore};
pub use traits::{
    AuditStore, GuardStore, LeaseStore, MachineStore, SecretStore, Store, StoreResult, TokenStore,
    VaultStore,
};

/// Opens a store by URL and brings its schema up to date:
///
/// - `sqlite://PATH` opens (or creates) a SQLite file; `sqlite::memory:` a private in-memory
///   SQLite database;
/// - `postgres://...` or `postgresql://...` connects to PostgreSQL;
/// - `memory:` or `memory://` (the spelling the server's configuration uses) returns a
///   [`MemoryStore`] with default limits.
///
/// # Errors
///
/// [`StoreError::Backend`] for an unknown scheme or a failed migration;
/// [`StoreError::Unavailable`] when the database cannot be reached.
pub fn open_store(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if is_memory_url(url) {
        return Ok(Arc::new(MemoryStore::new(MemoryLimits::default())));
    }
    if url == "sqlite::memory:" {
        return Ok(Arc::new(SqliteStore::open_in_memory()?));
    }
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(StoreError::backend(
                "database URL `sqlite://` has no path: write `sqlite://guardrail.db`",
            ));
        }
        return Ok(Arc::new(SqliteStore::open(path)?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresStore::open(url)?));
    }
    let scheme: String = url.chars().take_while(|c| *c != ':').take(32).collect();
    Err(StoreError::backend(format!(
        "unsupported database URL scheme `{scheme}`: use `sqlite://PATH`, `sqlite::memory:`, \
         `postgres://...` or `memory:`"
    )))
}

/// Returns whether `url` names the memory backend: `memory:` or `memory://`.
fn is_memory_url(url: &str) -> bool {
    url == "memory:" || url == "memory://"
}

/// Brings the database at `url` to the current schema and returns the version reached. The
/// server's `migrate` command calls it; opening a store does the same.
///
/// # Errors
///
/// As [`open_store`].
pub fn migrate(url: &str) -> Result<i64, StoreError> {
    if is_memory_url(url) || url == "sqlite::memory:" {
        return Ok(SCHEMA_VERSION);
    }
    if let Some(path) = url.strip_prefix("sqlite://") {
        return SqliteStore::open(path)?.migrate();
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return PostgresStore::open(url)?.migrate();
    }
    open_store(url).map(|_| SCHEMA_VERSION)
}
