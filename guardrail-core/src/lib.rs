//! The Guardrail engine: temporary machine identities, their lifecycle and the nine-step
//! evaluation of every signed request.
//!
//! The crate is pure. It performs no I/O, reads no clock and draws no random numbers: every
//! operation takes `now` (and random bytes where it needs them) from the caller and returns the
//! new state together with the audit events it caused. Storage, HTTP and logging live in the
//! crates around it.

#![forbid(unsafe_code)]

pub mod audit;
pub mod evaluate;
pub mod extension;
pub mod guardrail;
pub mod ids;
pub mod lifetime;
pub mod lockout;
pub mod machine;
pub mod plan;
pub mod request;
pub mod sweep;
pub mod token;
