//! Helpers shared by the examples: random bytes from the operating system.
//!
//! `guardrail-core` draws no random numbers of its own, so every program that embeds it brings a
//! CSPRNG. These helpers wrap `getrandom`.

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
