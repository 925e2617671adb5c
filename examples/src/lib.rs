//! Helpers shared by the examples.
//!
//! - [`random_bytes`]: `guardrail-core` draws no random numbers of its own, so every program that
//!   embeds it brings a CSPRNG. This wraps `getrandom`.
//! - [`http`]: the bounded HTTP/1.1 request reader and response writer of the `embedded_service`
//!   example.
//! - [`store`]: that example's in-memory store, which implements the engine's `NonceStore` and
//!   `RouteAuthorizer` and keeps failure counters and the audit log.

pub mod http;
pub mod store;

/// Fills an array with bytes from the operating system's CSPRNG.
///
/// # Errors
///
/// The `getrandom` error when the operating system has no random source available.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}
