//! The SQL implementation shared by SQLite and PostgreSQL.
//!
//! Both backends run the same statements through a small transaction interface ([`Tx`]). The
//! statements use the subset both dialects accept (`ON CONFLICT`, `RETURNING`, partial indexes)
//! with `$N` placeholders, which the SQLite backend rewrites to `?N`. The differences left are
//! row locks (`FOR UPDATE` on PostgreSQL; SQLite locks the whole database with
//! `BEGIN IMMEDIATE` instead) and column types, which the backends convert in [`Value`].

pub(crate) mod codec;
pub(crate) mod ops;

use chrono::{DateTime, Utc};

use crate::error::StoreError;

/// One SQL parameter or column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
    /// SQLite stores it as integer microseconds since the Unix epoch, PostgreSQL as
    /// `timestamptz` (also microseconds).
    Instant(DateTime<Utc>),
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<u32> for Value {
    fn from(value: u32) -> Self {
        Self::Int(i64::from(value))
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<&[u8]> for Value {
    fn from(value: &[u8]) -> Self {
        Self::Bytes(value.to_vec())
    }
}

impl From<DateTime<Utc>> for Value {
    fn from(value: DateTime<Utc>) -> Self {
        Self::Instant(value)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Null, Into::into)
    }
}

/// Builds an array of [`Value`] from expressions that convert into it.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        [$($crate::sql::Value::from($value)),*]
    };
}
pub(crate) use params;

/// One result row.
#[derive(Debug)]
pub struct Row(pub(crate) Vec<Value>);

impl Row {
    fn value(&self, index: usize) -> Result<&Value, StoreError> {
        self.0
            .get(index)
            .ok_or_else(|| StoreError::backend(format!("result has no column {index}")))
    }

    fn mismatch(&self, index: usize, expected: &str) -> StoreError {
        StoreError::backend(format!(
            "column {index} holds {:?}, expected {expected}",
            self.0.get(index)
        ))
    }

    pub(crate) fn int(&self, index: usize) -> Result<i64, StoreError> {
        match self.value(index)? {
            Value::Int(value) => Ok(*value),
            _ => Err(self.mismatch(index, "an integer")),
        }
    }

    pub(crate) fn text(&self, index: usize) -> Result<String, StoreError> {
        match self.value(index)? {
            Value::Text(value) => Ok(value.clone()),
            _ => Err(self.mismatch(index, "text")),
        }
    }

    pub(crate) fn opt_text(&self, index: usize) -> Result<Option<String>, StoreError> {
        match self.value(index)? {
            Value::Null => Ok(None),
            _ => self.text(index).map(Some),
        }
    }

    pub(crate) fn bytes(&self, index: usize) -> Result<Vec<u8>, StoreError> {
        match self.value(index)? {
            Value::Bytes(value) => Ok(value.clone()),
            _ => Err(self.mismatch(index, "bytes")),
        }
    }

    pub(crate) fn bool(&self, index: usize) -> Result<bool, StoreError> {
        match self.value(index)? {
            Value::Bool(value) => Ok(*value),
            Value::Int(value) => Ok(*value != 0),
            _ => Err(self.mismatch(index, "a boolean")),
        }
    }

    pub(crate) fn instant(&self, index: usize) -> Result<DateTime<Utc>, StoreError> {
        match self.value(index)? {
            Value::Instant(value) => Ok(*value),
            Value::Int(micros) => DateTime::from_timestamp_micros(*micros)
                .ok_or_else(|| self.mismatch(index, "an instant in range")),
            _ => Err(self.mismatch(index, "an instant")),
        }
    }

    pub(crate) fn opt_instant(&self, index: usize) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.value(index)? {
            Value::Null => Ok(None),
            _ => self.instant(index).map(Some),
        }
    }
}

/// The SQL dialect of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// An open transaction. Dropping it without [`SqlBackend::write`] finishing rolls it back.
pub trait Tx {
    fn dialect(&self) -> Dialect;

    /// Runs a statement and returns the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError>;

    /// Runs a query and returns all its rows.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError>;

    /// `" FOR UPDATE"` where the dialect locks rows, empty where the transaction already holds
    /// the database's write lock.
    fn for_update(&self) -> &'static str {
        match self.dialect() {
            Dialect::Postgres => " FOR UPDATE",
            Dialect::Sqlite => "",
        }
    }

    fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
}

/// A database that runs closures in transactions.
pub trait SqlBackend: Send + Sync {
    /// Runs `work` in a write transaction and commits when it returns `Ok`.
    fn write<T>(
        &self,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError>;

    /// Runs `work` in a read-only view of the database.
    fn read<T>(
        &self,
        work: &mut dyn FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError>;
}

/// A store over a SQL database. Use it through [`crate::SqliteStore`] or
/// [`crate::PostgresStore`].
pub struct SqlStore<B> {
    pub(crate) backend: B,
}
