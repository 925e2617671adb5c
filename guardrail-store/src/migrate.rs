//! Versioned schema migrations, embedded in the binary.
//!
//! Each backend has its own list of SQL files. A migration runs in one transaction together
//! with its row in `schema_migrations`, so a database is always at a whole version.

/// One schema version.
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "coalesce_first_at",
        sql: include_str!("../migrations/sqlite/0002_coalesce_first_at.sql"),
    },
];

pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "coalesce_first_at",
        sql: include_str!("../migrations/postgres/0002_coalesce_first_at.sql"),
    },
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 2;
