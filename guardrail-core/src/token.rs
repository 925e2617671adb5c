//! Single-use bootstrap tokens for temporary machines.

use chrono::{DateTime, Utc};

use crate::guardrail::Guardrails;
use crate::ids::{OwnerId, TokenId, VaultId};
use crate::lifetime::Lifetime;

/// A token's stored state. "Expired" is not stored: it follows from `expires_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenState {
    Unused,
    Used,
    Revoked,
}

/// The SHA-256 hash of a token's plaintext, the only form in which a token is stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A hash of a 256-bit random token does not help an attacker, but there is no reason to
        // print it either.
        f.write_str("TokenHash(..)")
    }
}

/// A stored bootstrap token: what the machine it creates will be called, its lifetime and its
/// guardrails.
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrapToken {
    pub id: TokenId,
    pub vault_id: VaultId,
    pub hash: TokenHash,
    /// The name the registered machine gets.
    pub machine_name: String,
    pub description: Option<String>,
    /// The machine's lifetime, applied at registration.
    pub machine_lifetime: Lifetime,
    pub guardrails: Guardrails,
    pub created_by: OwnerId,
    pub created_at: DateTime<Utc>,
    /// The token's own expiry.
    pub expires_at: DateTime<Utc>,
    pub state: TokenState,
}
