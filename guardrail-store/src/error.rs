//! The store's one error type, with variants the server maps to HTTP statuses.

use std::error::Error as StdError;

/// Why a store operation failed.
///
/// The variants follow what a caller does next: [`StoreError::NotFound`] becomes 404,
/// [`StoreError::Conflict`] 409, [`StoreError::Domain`] whatever the core's error means,
/// [`StoreError::Unavailable`] 503 (retry later), and [`StoreError::Backend`] 500.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A record the operation needs does not exist.
    #[error(transparent)]
    NotFound(NotFound),
    /// The operation would break a uniqueness rule or a state precondition.
    #[error(transparent)]
    Conflict(Conflict),
    /// The core rejected the change, so nothing was written. Use [`StoreError::domain_error`]
    /// to get the core's error back.
    #[error("{0}")]
    Domain(Box<dyn StdError + Send + Sync>),
    /// The database is busy, unreachable, or a bounded table is full of live entries. Retrying
    /// later may succeed.
    #[error(transparent)]
    Unavailable(Unavailable),
    /// The database failed or returned data the store cannot decode.
    #[error(transparent)]
    Backend(Backend),
}

impl StoreError {
    pub(crate) fn not_found(kind: &'static str, id: impl ToString) -> Self {
        Self::NotFound(NotFound {
            kind,
            id: id.to_string(),
        })
    }

    pub(crate) fn conflict(reason: impl Into<String>) -> Self {
        Self::Conflict(Conflict {
            reason: reason.into(),
        })
    }

    pub(crate) fn unavailable(reason: impl Into<String>) -> Self {
        Self::Unavailable(Unavailable {
            reason: reason.into(),
        })
    }

    pub(crate) fn backend(reason: impl Into<String>) -> Self {
        Self::Backend(Backend {
            reason: reason.into(),
        })
    }

    /// Wraps an error of the core (or of the caller's decision function) that rejected a change.
    pub fn domain(error: impl StdError + Send + Sync + 'static) -> Self {
        Self::Domain(Box::new(error))
    }

    /// The wrapped core error, if this is a [`StoreError::Domain`] holding an `E`.
    pub fn domain_error<E: StdError + 'static>(&self) -> Option<&E> {
        match self {
            Self::Domain(inner) => inner.downcast_ref::<E>(),
            _ => None,
        }
    }
}

/// A missing record: its kind and id.
#[derive(Debug, thiserror::Error)]
#[error("{kind} `{id}` not found")]
pub struct NotFound {
    kind: &'static str,
    id: String,
}

impl NotFound {
    /// The kind of record, such as `machine` or `token`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The id that was looked up.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// A uniqueness or state conflict.
#[derive(Debug, thiserror::Error)]
#[error("conflict: {reason}")]
pub struct Conflict {
    reason: String,
}

/// A temporary failure.
#[derive(Debug, thiserror::Error)]
#[error("store unavailable: {reason}")]
pub struct Unavailable {
    reason: String,
}

/// A database failure or undecodable data.
#[derive(Debug, thiserror::Error)]
#[error("store backend failed: {reason}")]
pub struct Backend {
    reason: String,
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        match &error {
            rusqlite::Error::SqliteFailure(failure, message) => {
                let detail = message.clone().unwrap_or_else(|| failure.to_string());
                match failure.code {
                    ErrorCode::ConstraintViolation => {
                        if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY {
                            Self::not_found("referenced record", detail)
                        } else {
                            Self::conflict(detail)
                        }
                    }
                    ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                        Self::unavailable(detail)
                    }
                    _ => Self::backend(detail),
                }
            }
            _ => Self::backend(error.to_string()),
        }
    }
}

impl From<postgres::Error> for StoreError {
    fn from(error: postgres::Error) -> Self {
        use postgres::error::SqlState;
        let detail = match error.as_db_error() {
            Some(db) => db.message().to_owned(),
            None => error.to_string(),
        };
        match error.code() {
            Some(code) if *code == SqlState::UNIQUE_VIOLATION => Self::conflict(detail),
            Some(code) if *code == SqlState::FOREIGN_KEY_VIOLATION => {
                Self::not_found("referenced record", detail)
            }
            Some(code)
                if *code == SqlState::T_R_SERIALIZATION_FAILURE
                    || *code == SqlState::T_R_DEADLOCK_DETECTED
                    || *code == SqlState::LOCK_NOT_AVAILABLE =>
            {
                Self::unavailable(detail)
            }
            Some(_) => Self::backend(detail),
            None if error.is_closed() => Self::unavailable(detail),
            None => Self::backend(detail),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(error: r2d2::Error) -> Self {
        Self::unavailable(format!("no database connection: {error}"))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        Self::backend(format!("stored JSON does not decode: {error}"))
    }
}
