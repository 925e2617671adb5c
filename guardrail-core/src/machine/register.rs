//! Registration: a redeemed token, a public key and a free plan slot make a pending machine.

use chrono::{DateTime, Utc};

use super::{Machine, MachinePublicKey, MachineState, RegistrationError};
use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::ids::MachineId;
use crate::lifetime::LifetimeError;
use crate::plan::Vault;
use crate::token::{BootstrapToken, RedeemableToken, TokenState};

/// A successful registration: the pending machine, the token marked used, and the
/// `temp_machine_create` event. The store writes all three atomically, and only if the token is
/// still unused at that moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    pub machine: Machine,
    pub token: BootstrapToken,
    pub event: AuditEvent,
}

/// Registers a machine with a redeemed token in `vault`, which holds `machine_count` machines.
///
/// The machine is pending, takes its name, description and guardrails from the token, and
/// expires at `now` plus the token's machine lifetime.
///
/// # The 12-month cap at registration
///
/// Issuance checked the lifetime against the issuance instant. Because months have different
/// lengths, the same lifetime can end a little after `now` plus 12 calendar months when it is
/// applied later (`11 months, 31 days` from 30 March ends on 31 March of the next year). The
/// expiry is then clamped to `now` plus 12 calendar months rather than rejecting the token.
///
/// # Errors
///
/// [`RegistrationError`] when the plan is `free`, the vault is at its machine limit, `vault` is
/// not the token's vault, or the lifetime does not fit the calendar. The token is not changed:
/// the caller keeps the stored row as it was.
pub fn register_machine(
    redeemed: RedeemableToken,
    public_key: MachinePublicKey,
    vault: &Vault,
    machine_count: u32,
    machine_id_bytes: [u8; 16],
    now: DateTime<Utc>,
) -> Result<Registration, RegistrationError> {
    let token = redeemed.into_token();
    if token.vault_id != vault.id {
        return Err(RegistrationError::VaultMismatch {
            token_vault: token.vault_id,
            given_vault: vault.id.clone(),
        });
    }
    if !vault.plan.allows_temporary_machines() {
        return Err(RegistrationError::PlanDisallows(vault.plan));
    }
    if machine_count >= vault.machine_limit {
        return Err(RegistrationError::LimitReached {
            vault_id: vault.id.clone(),
            limit: vault.machine_limit,
        });
    }
    let expires_at = match token.machine_lifetime.expires_at(now) {
        Ok(expires_at) => expires_at,
        Err(LifetimeError::TooLong { maximum, .. }) => maximum,
        Err(other) => return Err(other.into()),
    };

    let machine = Machine {
        id: MachineId::from_random_bytes(machine_id_bytes),
        vault_id: token.vault_id.clone(),
        name: token.machine_name.clone(),
        description: token.description.clone(),
        public_key,
        state: MachineState::Pending,
        created_at: now,
        expires_at,
        guardrails: token.guardrails.clone(),
        token_id: token.id.clone(),
    };
    let detail = serde_json::json!({
        "name": machine.name,
        "token_id": token.id,
        "expires_at": expires_at,
    });
    let event = machine.event(
        Actor::Machine(machine.id),
        AuditAction::TempMachineCreate,
        now,
        detail,
    );
    let token = BootstrapToken {
        state: TokenState::Used,
        ..token
    };
    Ok(Registration {
        machine,
        token,
        event,
    })
}
