//! Vaults, their owners and plans.

use std::fmt;
use std::str::FromStr;

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

impl Plan {
    /// The plan's name as stored and shown: `free`, `pro` or `enterprise`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Pro => "pro",
            Self::Enterprise => "enterprise",
        }
    }

    /// Whether the plan allows temporary machines at all (every plan but `free`).
    pub fn allows_temporary_machines(self) -> bool {
        match self {
            Self::Free => false,
            Self::Pro | Self::Enterprise => true,
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A plan name that is not one of `free`, `pro`, `enterprise`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown plan `{0}`: expected one of free, pro, enterprise")]
pub struct UnknownPlan(String);

impl FromStr for Plan {
    type Err = UnknownPlan;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "free" => Ok(Self::Free),
            "pro" => Ok(Self::Pro),
            "enterprise" => Ok(Self::Enterprise),
            other => Err(UnknownPlan(other.chars().take(40).collect())),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_names_round_trip() {
        for plan in [Plan::Free, Plan::Pro, Plan::Enterprise] {
            assert_eq!(plan.to_string().parse::<Plan>().unwrap(), plan);
            let json = serde_json::to_string(&plan).unwrap();
            assert_eq!(json, format!("\"{plan}\""));
        }
    }

    #[test]
    fn unknown_plan_is_named() {
        let err = "gold".parse::<Plan>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown plan `gold`: expected one of free, pro, enterprise"
        );
    }

    #[test]
    fn only_free_lacks_temporary_machines() {
        assert!(!Plan::Free.allows_temporary_machines());
        assert!(Plan::Pro.allows_temporary_machines());
        assert!(Plan::Enterprise.allows_temporary_machines());
    }
}
