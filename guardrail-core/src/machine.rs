//! Machines: identities holding an Ed25519 key, their states and lifecycle transitions.

use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;

use crate::guardrail::Guardrails;
use crate::ids::{MachineId, TokenId, VaultId};

/// Where a machine is in its lifecycle. A denied, revoked or purged machine is deleted, so "gone"
/// has no state of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MachineState {
    /// Registered, waiting for the owner's approval.
    Pending,
    /// Approved and enabled: may authenticate until its expiry.
    Active,
    /// Switched off by the owner; can be enabled again.
    Disabled,
    /// Past its expiry and marked by the sweeper. Terminal.
    Expired,
}

/// An Ed25519 public key that passed registration checks: 32 bytes, a canonical encoding of a
/// curve point, and not of small order.
#[derive(Clone, PartialEq, Eq)]
pub struct MachinePublicKey {
    key: VerifyingKey,
}

impl MachinePublicKey {
    /// The decoded key, ready for `verify_strict`.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The raw 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

impl std::fmt::Debug for MachinePublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Public keys are not secret; print them as hex so logs can be matched against clients.
        f.write_str("MachinePublicKey(")?;
        for byte in self.key.as_bytes() {
            write!(f, "{byte:02x}")?;
        }
        f.write_str(")")
    }
}

/// A registered machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    pub id: MachineId,
    pub vault_id: VaultId,
    /// The name set when its bootstrap token was issued.
    pub name: String,
    pub description: Option<String>,
    pub public_key: MachinePublicKey,
    pub state: MachineState,
    /// The registration instant.
    pub created_at: DateTime<Utc>,
    /// The machine is expired exactly when `now >= expires_at`, whether or not the sweeper has
    /// marked it yet.
    pub expires_at: DateTime<Utc>,
    pub guardrails: Guardrails,
    /// The token it registered with.
    pub token_id: TokenId,
}
