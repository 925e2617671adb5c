//! Vaults, their owners and plans.

use serde::{Deserialize, Serialize};

use crate::guardrail::IpAllowlist;
use crate::ids::{OwnerId, VaultId};

/// A vault's plan: `free` allows no temporary machine, `pro` and `enterprise` count them
/// against the vault's machine limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    Free,
    Pro,
    Enterprise,
}

/// A vault owner's account. A suspended owner's machines fail step 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub id: OwnerId,
    pub active: bool,
}

/// A vault with its plan and vault-wide IP allowlist (step 2).
#[derive(Debug, Clone, PartialEq)]
pub struct Vault {
    pub id: VaultId,
    pub owner_id: OwnerId,
    pub name: String,
    pub plan: Plan,
    /// How many machines the vault may hold; temporary machines count against it.
    pub machine_limit: u32,
    /// `None` when the vault has no allowlist. An enabled but empty list blocks every machine.
    pub ip_allowlist: Option<IpAllowlist>,
}
