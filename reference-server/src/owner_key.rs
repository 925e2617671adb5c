//! Owner keys: the bearer credentials of the admin API.
//!
//! A key is `gro_` followed by 32 bytes from the operating system's CSPRNG in URL-safe base64
//! without padding. Only its SHA-256 hash is stored, and the admin API finds the owner by
//! hashing the presented key; no stored key is ever compared byte by byte.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use guardrail_store::OwnerKeyHash;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The prefix of every owner key, so that a leaked key is recognisable in a secret scan.
pub const OWNER_KEY_PREFIX: &str = "gro_";

/// Random bytes in an owner key.
pub const OWNER_KEY_RANDOM_BYTES: usize = 32;

/// A new owner key that the system random generator could not make.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw random bytes for an owner key: {0}")]
pub struct OwnerKeyError(getrandom::Error);

impl OwnerKeyError {
    /// Wraps a failure of the system random generator.
    pub fn from_random(error: getrandom::Error) -> Self {
        Self(error)
    }
}

/// Makes a new owner key and its hash. Show the key once and store only the hash.
///
/// # Errors
///
/// [`OwnerKeyError`] when the system random generator fails.
pub fn generate() -> Result<(Zeroizing<String>, OwnerKeyHash), OwnerKeyError> {
    let mut bytes = Zeroizing::new([0u8; OWNER_KEY_RANDOM_BYTES]);
    getrandom::fill(bytes.as_mut()).map_err(OwnerKeyError)?;
    let key = Zeroizing::new(format!(
        "{OWNER_KEY_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(bytes.as_ref())
    ));
    let hash = hash(&key);
    Ok((key, hash))
}

/// Hashes a presented key for lookup.
pub fn hash(key: &str) -> OwnerKeyHash {
    OwnerKeyHash(Sha256::digest(key.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_and_distinct() {
        let (first, first_hash) = generate().unwrap();
        let (second, second_hash) = generate().unwrap();
        assert!(first.starts_with(OWNER_KEY_PREFIX));
        assert_eq!(first.len(), OWNER_KEY_PREFIX.len() + 43);
        assert_ne!(*first, *second);
        assert_ne!(first_hash, second_hash);
        assert_eq!(hash(&first), first_hash);
    }
}
