//! The SQLite backend: the embedded default.
//!
//! The database runs in WAL mode with `synchronous = FULL`, so a committed transaction survives
//! a crash of the process or the machine. Connections come from a small r2d2 pool. Writers
//! start with `BEGIN IMMEDIATE`, which takes SQLite's single write lock at once, and wait up to
//! the busy timeout for it. That lock is what makes the multi-step operations atomic here.
//!
//! `sqlite::memory:` opens a private in-memory database on a single connection, for tests.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use r2d2::Pool;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, TransactionBehavior};

use crate::error::StoreError;
use crate::migrate::{self, Migration};
use crate::sql::{Dialect, Row, SqlBackend, SqlStore, Tx, Value};

/// How long a writer waits for the write lock before the operation fails as unavailable.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections in the pool of a file database.
const POOL_SIZE: u32 = 4;

/// A SQLite-backed store.
pub type SqliteStore = SqlStore<SqliteBackend>;

impl SqlStore<SqliteBackend> {
    /// Opens (creating if needed) the database file at `path` and brings it to the current
    /// schema.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the file cannot be opened, [`StoreError::Backend`] when
    /// a migration fails.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let manager = SqliteConnectionManager::file(path.as_ref()).with_init(configure);
        Self::with_manager(manager, POOL_SIZE)
    }

    /// Opens a private in-memory database on one connection, so that every call uses the same data.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the schema cannot be created.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let manager = SqliteConnectionManager::memory().with_init(configure);
        Self::with_manager(manager, 1)
    }

    fn with_manager(manager: SqliteConnectionManager, size: u32) -> Result<Self, StoreError> {
        let pool = Pool::builder()
            .max_size(size)
            .connection_timeout(BUSY_TIMEOUT)
            .build(manager)?;
        let store = Self {
            backend: SqliteBackend { pool },
        };
        store.migrate()?;
        Ok(store)
    }

    /// Applies every migration the database lacks, each in its own transaction, and returns
    /// the schema version reached.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when a migration fails (it is rolled back) or the database is
    /// newer than this build.
    pub fn migrate(&self) -> Result<i64, StoreError> {
        let mut connection = self.backend.pool.get()?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version INTEGER PRIMARY KEY,
                 name TEXT NOT NULL,
                 applied_at INTEGER NOT NULL
             )",
        )?;
        apply_migrations(&mut connection, migrate::SQLITE)
    }

    /// Runs `EXPLAIN QUERY PLAN` on a statement and returns the plan's detail lines, for tests
    /// that check index use.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the statement does not prepare.
    pub fn explain_query_plan(&self, sql: &str) -> Result<Vec<String>, StoreError> {
        let connection = self.backend.pool.get()?;
        let mut statement =
            connection.prepare(&format!("EXPLAIN QUERY PLAN {}", sqlite_sql(sql)))?;
        // Placeholders are bound to NULL: the plan does not depend on their values.
        let nulls = std::iter::repeat_n(rusqlite::types::Null, statement.parameter_count());
        let rows = statement.query_map(rusqlite::params_from_iter(nulls), |row| {
            row.get::<_, String>(3)
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

fn apply_migrations(
    connection: &mut Connection,
    migrations: &[Migration],
) -> Result<i64, StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |row| row.get(0),
    )?;
    if current > migrate::SCHEMA_VERSION {
        return Err(StoreError::backend(format!(
            "database schema version `{current}` is newer than this build's `{}`: upgrade guardrail",
            migrate::SCHEMA_VERSION
        )));
    }
    for migration in migrations.iter().filter(|m| m.version > current) {
        tx.execute_batch(migration.sql).map_err(|error| {
            StoreError::backend(format!(
                "migration `{:04}_{}` failed: {error}",
                migration.version, migration.name
            ))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![
                migration.version,
                migration.name,
                Utc::now().timestamp_micros()
            ],
        )?;
    }
    tx.commit()?;
    Ok(migrations.last().map_or(0, |m| m.version).max(current))
}

fn configure(connection: &mut Connection) -> Result<(), rusqlite::Error> {
    connection.busy_timeout(BUSY_TIMEOUT)?;
    // `journal_mode` returns the mode it set as a row. An in-memory database stays `memory`.
    connection.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    connection.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    Ok(())
}

/// Rewrites `$N` placeholders to SQLite's `?N`. The shared statements contain no `$` elsewhere.
fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

/// The SQLite connection pool behind a [`SqliteStore`].
pub struct SqliteBackend {
    pool: Pool<SqliteConnectionManager>,
}

struct SqliteTx<'a> {
    tx: rusqlite::Transaction<'a>,
}

fn to_sqlite(value: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as Sql;
    match value {
        Value::Null => Sql::Null,
        Value::Int(value) => Sql::Integer(*value),
        Value::Text(value) => Sql::Text(value.clone()),
        Value::Bytes(value) => Sql::Blob(value.clone()),
        Value::Bool(value) => Sql::Integer(i64::from(*value)),
        Value::Instant(value) => Sql::Integer(value.timestamp_micros()),
    }
}

fn from_sqlite(value: ValueRef<'_>) -> Result<Value, StoreError> {
    Ok(match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(value) => Value::Int(value),
        ValueRef::Text(bytes) => Value::Text(
            String::from_utf8(bytes.to_vec())
                .map_err(|_| StoreError::backend("stored text is not UTF-8"))?,
        ),
        ValueRef::Blob(bytes) => Value::Bytes(bytes.to_vec()),
        ValueRef::Real(_) => return Err(StoreError::backend("unexpected REAL column")),
    })
}

impl Tx for SqliteTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let mut statement = self.tx.prepare_cached(&sqlite_sql(sql))?;
        let changed =
            statement.execute(rusqlite::params_from_iter(params.iter().map(to_sqlite)))?;
        Ok(changed as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let mut statement = self.tx.prepare_cached(&sqlite_sql(sql))?;
        let columns = statement.column_count();
        let mut rows = statement.query(rusqlite::params_from_iter(params.iter().map(to_sqlite)))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns);
            for index in 0..columns {
                values.push(from_sqlite(row.get_ref(index)?)?);
            }
            out.push(Row(values));
        }
        Ok(out)
    }
}

impl SqliteBackend {
    fn run<T>(
        &self,
        behavior: TransactionBehavior,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut connection = self.pool.get()?;
        let tx = connection.transaction_with_behavior(behavior)?;
        let mut sqlite_tx = SqliteTx { tx };
        let value = work(&mut sqlite_tx)?;
        sqlite_tx.tx.commit()?;
        Ok(value)
    }
}

impl SqlBackend for SqliteBackend {
    fn write<T>(
        &self,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.run(TransactionBehavior::Immediate, work)
    }

    fn read<T>(
        &self,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.run(TransactionBehavior::Deferred, work)
    }
}
