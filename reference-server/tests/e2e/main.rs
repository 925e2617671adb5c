//! End-to-end tests of the `guardrail-server` binary.
//!
//! Each test starts its own server process on a free `localhost` port, with its own SQLite
//! database in a temporary folder. It creates vaults with the binary's `vault create` and then
//! talks to the admin API, the bootstrap endpoints and the machine API over HTTP. All tests live in this
//! one test binary, so that the slow ones (the sweeper) run in parallel with the rest.
//!
//! Needs `sh`, `dash`, `openssl` (3.x) and `curl` on `PATH`. The SikkerKey SDK test also needs
//! `GUARDRAIL_E2E_PYTHON`; see `sdk.rs`. The PostgreSQL test runs two servers on one PostgreSQL
//! database and is skipped unless `GUARDRAIL_TEST_POSTGRES_URL` is set; see `postgres.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod bootstrap;
mod guardrails;
mod lifecycle_admin;
mod postgres;
mod replay;
mod sdk;
mod support;
mod tokens;
