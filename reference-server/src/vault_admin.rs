//! The operator's vault commands: create a vault with its owner, suspend and resume the owner,
//! change the plan.
//!
//! # Default machine limits
//!
//! | plan | machines |
//! | --- | --- |
//! | `free` | 3 (no temporary machines: a free vault cannot issue bootstrap tokens) |
//! | `pro` | 25 |
//! | `enterprise` | 1000 |
//!
//! `--machine-limit` overrides the default. A running server reads the vault and its owner on
//! every request, so a change takes effect with the next request.

use chrono::{DateTime, Utc};
use guardrail_core::ids::{OwnerId, VaultId};
use guardrail_core::plan::{Owner, Plan, Vault};
use guardrail_store::{Store, StoreError};

use crate::config::DatabaseUrl;
use crate::owner_key::{self, OwnerKeyError};
use crate::wire::VaultCreated;

/// Maximum vault name length, in characters.
pub const MAX_VAULT_NAME_CHARS: usize = 200;

/// A vault command that failed.
#[derive(Debug, thiserror::Error)]
pub enum VaultAdminError {
    /// The vault name is empty, too long or contains a control character.
    #[error(
        "invalid vault name `{0}`: expected 1 to {MAX_VAULT_NAME_CHARS} characters without control characters"
    )]
    InvalidName(String),
    /// The vault id is not of the form `vault_...`.
    #[error(transparent)]
    InvalidId(#[from] guardrail_core::ids::IdError),
    /// No vault has this id.
    #[error("vault `{0}` not found: check the id printed by `vault create`")]
    NotFound(VaultId),
    /// The machine limit is zero.
    #[error("invalid machine limit `0`: a vault needs room for at least one machine")]
    ZeroLimit,
    /// No owner key could be made.
    #[error(transparent)]
    OwnerKey(#[from] OwnerKeyError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Returns the machine limit of a plan when the operator sets none.
pub fn default_machine_limit(plan: Plan) -> u32 {
    match plan {
        Plan::Free => 3,
        Plan::Pro => 25,
        Plan::Enterprise => 1000,
    }
}

/// Returns the URL that [`guardrail_store::open_store`] takes for a configured database: the
/// configured URL itself, password included, since the store accepts every spelling the
/// configuration does.
pub fn store_url(database: &DatabaseUrl) -> String {
    match database {
        DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        DatabaseUrl::Postgres(url) => url.clone(),
        DatabaseUrl::Memory => "memory://".to_owned(),
    }
}

fn limit_for(plan: Plan, machine_limit: Option<u32>) -> Result<u32, VaultAdminError> {
    match machine_limit {
        Some(0) => Err(VaultAdminError::ZeroLimit),
        Some(limit) => Ok(limit),
        None => Ok(default_machine_limit(plan)),
    }
}

/// Creates a vault and its owner, and returns the vault id with the owner key, which is shown
/// only this once.
///
/// # Errors
///
/// [`VaultAdminError`] for an invalid name or limit, a failed random generator or store.
pub fn create_vault(
    store: &dyn Store,
    name: &str,
    plan: Plan,
    machine_limit: Option<u32>,
    now: DateTime<Utc>,
) -> Result<VaultCreated, VaultAdminError> {
    let trimmed = name.trim();
    if trimmed.is_empty()
        || trimmed.chars().count() > MAX_VAULT_NAME_CHARS
        || trimmed.chars().any(char::is_control)
    {
        let shown = name
            .chars()
            .take(80)
            .flat_map(char::escape_default)
            .collect();
        return Err(VaultAdminError::InvalidName(shown));
    }
    let machine_limit = limit_for(plan, machine_limit)?;
    let (key, key_hash) = owner_key::generate()?;
    let mut ids = [0u8; 24];
    getrandom::fill(&mut ids).map_err(OwnerKeyError::from_random)?;
    let (owner_bytes, vault_bytes) = ids.split_at(12);
    let owner = Owner {
        id: OwnerId::from_random_bytes(&to_array(owner_bytes)),
        active: true,
    };
    let vault = Vault {
        id: VaultId::from_random_bytes(&to_array(vault_bytes)),
        owner_id: owner.id.clone(),
        name: trimmed.to_owned(),
        plan,
        machine_limit,
        ip_allowlist: None,
    };
    store.create_vault_with_owner(&owner, &key_hash, &vault, now)?;
    Ok(VaultCreated {
        vault_id: vault.id,
        owner_key: key.to_string(),
    })
}

fn to_array(bytes: &[u8]) -> [u8; 12] {
    let mut array = [0u8; 12];
    array.copy_from_slice(&bytes[..12.min(bytes.len())]);
    array
}

fn vault(store: &dyn Store, vault_id: &str) -> Result<Vault, VaultAdminError> {
    let id = vault_id.parse::<VaultId>()?;
    store.get_vault(&id)?.ok_or(VaultAdminError::NotFound(id))
}

/// Suspends (`active = false`) or resumes the owner of a vault.
///
/// # Errors
///
/// [`VaultAdminError`] for an unknown vault or a failed store.
pub fn set_owner_active(
    store: &dyn Store,
    vault_id: &str,
    active: bool,
) -> Result<Vault, VaultAdminError> {
    let vault = vault(store, vault_id)?;
    store.set_owner_active(&vault.owner_id, active)?;
    Ok(vault)
}

/// Changes a vault's plan and machine limit (the plan's default when `machine_limit` is
/// `None`). Returns the limit set.
///
/// # Errors
///
/// [`VaultAdminError`] for an unknown vault, a zero limit or a failed store.
pub fn set_plan(
    store: &dyn Store,
    vault_id: &str,
    plan: Plan,
    machine_limit: Option<u32>,
) -> Result<u32, VaultAdminError> {
    let vault = vault(store, vault_id)?;
    let limit = limit_for(plan, machine_limit)?;
    store.set_plan(&vault.id, plan, limit)?;
    Ok(limit)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn store_url_of_each_database_opens_or_names_it() {
        let memory: DatabaseUrl = "memory://".parse().unwrap();
        assert_eq!(store_url(&memory), "memory://");
        let store = guardrail_store::open_store(&store_url(&memory)).unwrap();
        assert!(
            store
                .list_vaults(&OwnerId::from_random_bytes(&[1; 12]))
                .unwrap()
                .is_empty()
        );

        let sqlite: DatabaseUrl = "sqlite:///var/lib/g.db".parse().unwrap();
        assert_eq!(store_url(&sqlite), "sqlite:///var/lib/g.db");
        let postgres: DatabaseUrl = "postgres://guard:pw@db.internal/guardrail".parse().unwrap();
        assert_eq!(
            store_url(&postgres),
            "postgres://guard:pw@db.internal/guardrail"
        );
    }
}
