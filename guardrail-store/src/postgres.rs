//! The PostgreSQL backend, for several server replicas sharing one database.
//!
//! It uses the synchronous `postgres` client behind an r2d2 pool. Transactions run at
//! `READ COMMITTED`; operations that read before they write lock what they read with
//! `SELECT ... FOR UPDATE` (rows) or `pg_advisory_xact_lock` (keys that may have no row yet),
//! so replicas never lose each other's updates.
//!
//! The client blocks the calling thread; call it from a blocking worker thread, never from an
//! async task.

use std::str::FromStr;
use std::time::Duration;

use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, Config, NoTls};
use r2d2::{CustomizeConnection, Pool};
use r2d2_postgres::PostgresConnectionManager;

use crate::error::StoreError;
use crate::migrate::{self, Migration};
use crate::sql::{Dialect, Row, SqlBackend, SqlStore, Tx, Value};

/// Connections in the pool of one store handle.
const POOL_SIZE: u32 = 8;

/// How long a caller waits for a free pooled connection.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Key of the advisory lock that serialises migrations of concurrently starting replicas.
const MIGRATION_LOCK: i64 = 0x6775_6172_6472_6c01;

/// A PostgreSQL-backed store.
pub type PostgresStore = SqlStore<PostgresBackend>;

/// The PostgreSQL connection pool behind a [`PostgresStore`].
pub struct PostgresBackend {
    pool: Pool<PostgresConnectionManager<NoTls>>,
}

/// Sets `search_path` on every new pooled connection, so that one database can hold several
/// independent stores (one per schema), as the tests do.
#[derive(Debug)]
struct SearchPath(String);

impl CustomizeConnection<Client, postgres::Error> for SearchPath {
    fn on_acquire(&self, client: &mut Client) -> Result<(), postgres::Error> {
        client.batch_execute(&format!("SET search_path TO {}", quote_identifier(&self.0)))
    }
}

/// Quotes an SQL identifier, doubling embedded quotes.
pub(crate) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl SqlStore<PostgresBackend> {
    /// Connects to `url` (`postgres://user@host:port/database`) and brings the database to the
    /// current schema. Connections use TLS never: reach a remote database through a local
    /// tunnel or socket.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] for an invalid URL or a failed migration,
    /// [`StoreError::Unavailable`] when the server cannot be reached.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, None)
    }

    /// Like [`PostgresStore::open`], but keeps every table in the schema `schema`, creating it
    /// if needed. Several stores in different schemas of one database do not see each other.
    ///
    /// # Errors
    ///
    /// As [`PostgresStore::open`].
    pub fn open_in_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        Self::open_with(url, Some(schema))
    }

    fn open_with(url: &str, schema: Option<&str>) -> Result<Self, StoreError> {
        // TODO: TLS connections are not supported; `NoTls` refuses servers that require TLS.
        let config = Config::from_str(url)
            .map_err(|error| StoreError::backend(format!("invalid PostgreSQL URL: {error}")))?;
        if let Some(schema) = schema {
            let mut client = config.connect(NoTls)?;
            client.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                quote_identifier(schema)
            ))?;
        }
        let manager = PostgresConnectionManager::new(config, NoTls);
        let mut builder = Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(CONNECTION_TIMEOUT);
        if let Some(schema) = schema {
            builder = builder.connection_customizer(Box::new(SearchPath(schema.to_owned())));
        }
        let pool = builder.build(manager)?;
        let store = Self {
            backend: PostgresBackend { pool },
        };
        store.migrate()?;
        Ok(store)
    }

    /// Applies every migration the database lacks, in one transaction that holds an advisory
    /// lock, so replicas starting together migrate once. Returns the schema version reached.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when a migration fails (it is rolled back) or the database is
    /// newer than this build.
    pub fn migrate(&self) -> Result<i64, StoreError> {
        let mut client = self.backend.pool.get()?;
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version BIGINT PRIMARY KEY,
                 name TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )?;
        let current: i64 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                &[],
            )?
            .get(0);
        if current > migrate::SCHEMA_VERSION {
            return Err(StoreError::backend(format!(
                "database schema version `{current}` is newer than this build's `{}`: upgrade guardrail",
                migrate::SCHEMA_VERSION
            )));
        }
        let pending: Vec<&Migration> = migrate::POSTGRES
            .iter()
            .filter(|m| m.version > current)
            .collect();
        for migration in &pending {
            tx.batch_execute(migration.sql).map_err(|error| {
                StoreError::backend(format!(
                    "migration `{:04}_{}` failed: {}",
                    migration.version,
                    migration.name,
                    StoreError::from(error)
                ))
            })?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[&migration.version, &migration.name],
            )?;
        }
        tx.commit()?;
        Ok(pending.last().map_or(current, |m| m.version))
    }

    /// Runs `EXPLAIN` on a statement with `$N` placeholders bound to `params`, with sequential
    /// scans discouraged so that the answer shows whether an index can serve it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the statement fails.
    pub fn explain(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<String>, StoreError> {
        let mut client = self.backend.pool.get()?;
        let mut tx = client.transaction()?;
        tx.batch_execute("SET LOCAL enable_seqscan = off")?;
        let rows = tx.query(&format!("EXPLAIN {sql}"), params)?;
        let lines = rows.iter().map(|row| row.get::<_, String>(0)).collect();
        tx.rollback()?;
        Ok(lines)
    }

    /// Drops the schema this store was opened in, with everything in it. For tests.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the statement fails.
    pub fn drop_schema(&self, schema: &str) -> Result<(), StoreError> {
        let mut client = self.backend.pool.get()?;
        client.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            quote_identifier(schema)
        ))?;
        Ok(())
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(value) => value.to_sql(ty, out),
            Value::Text(value) => value.to_sql(ty, out),
            Value::Bytes(value) => value.to_sql(ty, out),
            Value::Bool(value) => value.to_sql(ty, out),
            Value::Instant(value) => value.to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        // The inner value checks the type in `to_sql`.
        true
    }

    to_sql_checked!();
}

fn from_postgres(row: &postgres::Row, index: usize) -> Result<Value, StoreError> {
    let ty = row.columns()[index].type_().clone();
    let value = if ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(index)?.map(Value::Int)
    } else if ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(index)?
            .map(|value| Value::Int(i64::from(value)))
    } else if ty == Type::TEXT || ty == Type::VARCHAR || ty == Type::NAME {
        row.try_get::<_, Option<String>>(index)?.map(Value::Text)
    } else if ty == Type::BYTEA {
        row.try_get::<_, Option<Vec<u8>>>(index)?.map(Value::Bytes)
    } else if ty == Type::BOOL {
        row.try_get::<_, Option<bool>>(index)?.map(Value::Bool)
    } else if ty == Type::TIMESTAMPTZ {
        row.try_get::<_, Option<chrono::DateTime<chrono::Utc>>>(index)?
            .map(Value::Instant)
    } else {
        return Err(StoreError::backend(format!(
            "column {index} has unsupported type `{ty}`"
        )));
    };
    Ok(value.unwrap_or(Value::Null))
}

struct PostgresTx<'a> {
    tx: postgres::Transaction<'a>,
}

fn as_params(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|value| value as &(dyn ToSql + Sync))
        .collect()
}

impl Tx for PostgresTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        Ok(self.tx.execute(sql, &as_params(params))?)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let rows = self.tx.query(sql, &as_params(params))?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|index| from_postgres(row, index))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Row)
            })
            .collect()
    }
}

impl SqlBackend for PostgresBackend {
    fn write<T>(
        &self,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut client = self.pool.get()?;
        let tx = client.transaction()?;
        let mut postgres_tx = PostgresTx { tx };
        let value = work(&mut postgres_tx)?;
        postgres_tx.tx.commit()?;
        Ok(value)
    }

    fn read<T>(
        &self,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write(work)
    }
}
