//! A load generator for the reference server's signed machine API, and a measure of this
//! machine's Ed25519 bound to hold the server's figure against.
//!
//! It talks to loopback servers only: [`target::ServerUrl`] refuses any other host. Every
//! request is signed afresh with a fresh nonce, as the official clients do, so the server
//! verifies a signature and records a nonce for each one.
//!
//! # Flow
//!
//! 1. [`setup`] uses the admin API with a vault owner's key to register and approve a few
//!    machines with keys made here, and to create a project, a secret and grants.
//! 2. [`load`] drives `GET /v1/secret/{id}` over N keep-alive connections for D seconds and
//!    returns a [`load::LoadReport`].
//! 3. [`crypto`] counts sign-and-verify pairs per second on all cores.
//!
//! [`memory_server`] runs the reference server's routes over the in-memory store with a vault
//! created in the same process, because `guardrail-server serve --database memory://` starts
//! with an empty store that no other process can add a vault to.

pub mod cpu;
pub mod crypto;
pub mod load;
pub mod memory_server;
pub mod setup;
pub mod target;
