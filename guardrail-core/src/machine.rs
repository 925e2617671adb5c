//! Machines: identities holding an Ed25519 key, their states and lifecycle transitions.
//!
//! Each transition consumes the machine and returns the new value with the audit event it
//! caused, or a [`MachineGone`] proof when the machine is deleted (deny, revoke, purge). A
//! transition the state does not allow is a [`TransitionError`] naming the state and the action.
//!
//! | action | from | to | event |
//! | --- | --- | --- | --- |
//! | approve | pending | active | `machine_approve` |
//! | deny | pending | gone | `machine_deny` |
//! | enable | disabled | active | `machine_enable` |
//! | disable | active | disabled | `machine_disable` |
//! | revoke | any | gone | `machine_revoke` |
//! | expire | pending, active, disabled; `now >= expires_at` | expired | `temp_machine_expired` |
//! | purge | expired; `now >= expires_at + 30 days` | gone | per owner, see [`crate::sweep`] |
//!
//! # Edge cases
//!
//! - **Expiry is read from the clock.** A machine is expired when `now >= expires_at` even if
//!   the sweeper has not marked it, and [`Machine::status`] reports that. Approve, enable and
//!   disable check the state only, so an owner may approve a machine that is already past its
//!   expiry. Such a machine still fails authentication, and the sweeper marks it expired.
//! - **Purge** returns no event of its own, because the sweeper writes one `temp_machine_purge`
//!   entry per vault owner listing every machine it purged.

mod error;
mod key;
mod register;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

pub use error::{
    GuardrailsUpdateError, NotDueError, PublicKeyError, RegistrationError, SweepStepError,
    TransitionError,
};
pub use key::MachinePublicKey;
pub use register::{Registration, register_machine};

use crate::audit::{Actor, AuditAction, AuditEvent, Target};
use crate::guardrail::Guardrails;
use crate::ids::{MachineId, OwnerId, TokenId, VaultId};

/// How long an expired machine is kept before it is purged.
pub const PURGE_AFTER_DAYS: i64 = 30;

/// A machine's lifecycle state. A denied, revoked or purged machine is deleted, so "gone"
/// has no state of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

impl MachineState {
    /// `pending`, `active`, `disabled` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Expired => "expired",
        }
    }
}

/// A lifecycle action on a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MachineAction {
    Approve,
    Deny,
    Enable,
    Disable,
    Revoke,
    Expire,
    Purge,
}

impl MachineAction {
    /// The action's verb: `approve`, `deny`, `enable`, `disable`, `revoke`, `expire`, `purge`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Deny => "deny",
            Self::Enable => "enable",
            Self::Disable => "disable",
            Self::Revoke => "revoke",
            Self::Expire => "expire",
            Self::Purge => "purge",
        }
    }

    pub(crate) fn past_tense(self) -> &'static str {
        match self {
            Self::Approve => "approved",
            Self::Deny => "denied",
            Self::Enable => "enabled",
            Self::Disable => "disabled",
            Self::Revoke => "revoked",
            Self::Expire => "expired",
            Self::Purge => "purged",
        }
    }

    /// The states the action starts from, with their article, for messages.
    pub(crate) fn allowed_from(self) -> &'static str {
        match self {
            Self::Approve | Self::Deny => "a pending",
            Self::Enable => "a disabled",
            Self::Disable => "an active",
            Self::Revoke => "a pending, active, disabled or expired",
            Self::Expire => "a pending, active or disabled",
            Self::Purge => "an expired",
        }
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

/// Proof that a machine was deleted (denied, revoked or purged): the store deletes the row, its
/// grants, its guardrails and its extension chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineGone {
    machine_id: MachineId,
    vault_id: VaultId,
    name: String,
    action: MachineAction,
}

impl MachineGone {
    /// The deleted machine's id.
    pub fn machine_id(&self) -> MachineId {
        self.machine_id
    }

    /// The vault it belonged to.
    pub fn vault_id(&self) -> &VaultId {
        &self.vault_id
    }

    /// Its name, for the purge event.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How it went: deny, revoke or purge.
    pub fn action(&self) -> MachineAction {
        self.action
    }
}

impl Machine {
    /// Whether the machine is expired at `now`: marked expired, or `now >= expires_at`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.state == MachineState::Expired || now >= self.expires_at
    }

    /// The state to show at `now`: the stored state, or `expired` once `now >= expires_at`.
    pub fn status(&self, now: DateTime<Utc>) -> MachineState {
        if self.is_expired(now) {
            MachineState::Expired
        } else {
            self.state
        }
    }

    /// The instant from which the machine may be purged: `expires_at` plus 30 days, or the end
    /// of the representable calendar when that sum does not fit.
    pub fn purge_due_at(&self) -> DateTime<Utc> {
        TimeDelta::try_days(PURGE_AFTER_DAYS)
            .and_then(|delta| self.expires_at.checked_add_signed(delta))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Approves a pending machine: it becomes active.
    ///
    /// # Errors
    ///
    /// [`TransitionError`] unless the machine is pending.
    pub fn approve(
        self,
        by: &OwnerId,
        now: DateTime<Utc>,
    ) -> Result<(Machine, AuditEvent), TransitionError> {
        self.owner_step(
            MachineAction::Approve,
            MachineState::Pending,
            MachineState::Active,
            by,
            now,
        )
    }

    /// Enables a disabled machine: it becomes active.
    ///
    /// # Errors
    ///
    /// [`TransitionError`] unless the machine is disabled.
    pub fn enable(
        self,
        by: &OwnerId,
        now: DateTime<Utc>,
    ) -> Result<(Machine, AuditEvent), TransitionError> {
        self.owner_step(
            MachineAction::Enable,
            MachineState::Disabled,
            MachineState::Active,
            by,
            now,
        )
    }

    /// Disables an active machine.
    ///
    /// # Errors
    ///
    /// [`TransitionError`] unless the machine is active.
    pub fn disable(
        self,
        by: &OwnerId,
        now: DateTime<Utc>,
    ) -> Result<(Machine, AuditEvent), TransitionError> {
        self.owner_step(
            MachineAction::Disable,
            MachineState::Active,
            MachineState::Disabled,
            by,
            now,
        )
    }

    /// Denies a pending machine: it is deleted.
    ///
    /// # Errors
    ///
    /// [`TransitionError`] unless the machine is pending.
    pub fn deny(
        self,
        by: &OwnerId,
        now: DateTime<Utc>,
    ) -> Result<(MachineGone, AuditEvent), TransitionError> {
        if self.state != MachineState::Pending {
            return Err(TransitionError::new(
                self.id,
                self.state,
                MachineAction::Deny,
            ));
        }
        let event = self.event(
            Actor::Owner(by.clone()),
            AuditAction::MachineDeny,
            now,
            self.name_detail(),
        );
        Ok((self.gone(MachineAction::Deny), event))
    }

    /// Revokes the machine in any state: it is deleted at once.
    pub fn revoke(self, by: &OwnerId, now: DateTime<Utc>) -> (MachineGone, AuditEvent) {
        let detail = serde_json::json!({ "name": self.name, "state": self.state.as_str() });
        let event = self.event(
            Actor::Owner(by.clone()),
            AuditAction::MachineRevoke,
            now,
            detail,
        );
        (self.gone(MachineAction::Revoke), event)
    }

    /// Marks the machine expired, once, on behalf of the sweeper.
    ///
    /// # Errors
    ///
    /// [`SweepStepError::Transition`] when it is already marked expired, and
    /// [`SweepStepError::NotDue`] when `now < expires_at`.
    pub fn expire(self, now: DateTime<Utc>) -> Result<(Machine, AuditEvent), SweepStepError> {
        if self.state == MachineState::Expired {
            return Err(TransitionError::new(self.id, self.state, MachineAction::Expire).into());
        }
        if now < self.expires_at {
            return Err(NotDueError::new(self.id, MachineAction::Expire, self.expires_at).into());
        }
        let event = expired_event(&self, now);
        let machine = Machine {
            state: MachineState::Expired,
            ..self
        };
        Ok((machine, event))
    }

    /// Purges an expired machine 30 days after its expiry, on behalf of the sweeper. The purge
    /// event is written per vault owner by [`crate::sweep::plan_sweep`], so none is returned here.
    ///
    /// # Errors
    ///
    /// [`SweepStepError::Transition`] unless the machine is marked expired, and
    /// [`SweepStepError::NotDue`] when `now < expires_at + 30 days`.
    pub fn purge(self, now: DateTime<Utc>) -> Result<MachineGone, SweepStepError> {
        if self.state != MachineState::Expired {
            return Err(TransitionError::new(self.id, self.state, MachineAction::Purge).into());
        }
        let due_at = self.purge_due_at();
        if now < due_at {
            return Err(NotDueError::new(self.id, MachineAction::Purge, due_at).into());
        }
        Ok(self.gone(MachineAction::Purge))
    }

    /// Replaces the machine's guardrails, in any state, and returns the
    /// `temp_machine_guardrails_update` event whose detail holds `before` and `after`.
    ///
    /// # Errors
    ///
    /// [`GuardrailsUpdateError`] when either configuration cannot be serialized to JSON.
    pub fn update_guardrails(
        self,
        guardrails: Guardrails,
        by: &OwnerId,
        now: DateTime<Utc>,
    ) -> Result<(Machine, AuditEvent), GuardrailsUpdateError> {
        let to_json = |value: &Guardrails| {
            serde_json::to_value(value)
                .map_err(|err| GuardrailsUpdateError::new(self.id, err.to_string()))
        };
        let before = to_json(&self.guardrails)?;
        let after = to_json(&guardrails)?;
        let detail = serde_json::json!({ "name": self.name, "before": before, "after": after });
        let event = self.event(
            Actor::Owner(by.clone()),
            AuditAction::TempMachineGuardrailsUpdate,
            now,
            detail,
        );
        let machine = Machine { guardrails, ..self };
        Ok((machine, event))
    }

    fn owner_step(
        self,
        action: MachineAction,
        from: MachineState,
        to: MachineState,
        by: &OwnerId,
        now: DateTime<Utc>,
    ) -> Result<(Machine, AuditEvent), TransitionError> {
        if self.state != from {
            return Err(TransitionError::new(self.id, self.state, action));
        }
        let audit_action = match action {
            MachineAction::Approve => AuditAction::MachineApprove,
            MachineAction::Enable => AuditAction::MachineEnable,
            MachineAction::Disable => AuditAction::MachineDisable,
            MachineAction::Deny => AuditAction::MachineDeny,
            MachineAction::Revoke => AuditAction::MachineRevoke,
            MachineAction::Expire => AuditAction::TempMachineExpired,
            MachineAction::Purge => AuditAction::TempMachinePurge,
        };
        let event = self.event(
            Actor::Owner(by.clone()),
            audit_action,
            now,
            self.name_detail(),
        );
        Ok((Machine { state: to, ..self }, event))
    }

    fn name_detail(&self) -> serde_json::Value {
        serde_json::json!({ "name": self.name })
    }

    /// Builds an event targeting this machine.
    pub(crate) fn event(
        &self,
        actor: Actor,
        action: AuditAction,
        now: DateTime<Utc>,
        detail: serde_json::Value,
    ) -> AuditEvent {
        AuditEvent::new(
            now,
            self.vault_id.clone(),
            actor,
            action,
            Target::Machine(self.id),
            detail,
        )
    }

    fn gone(self, action: MachineAction) -> MachineGone {
        MachineGone {
            machine_id: self.id,
            vault_id: self.vault_id,
            name: self.name,
            action,
        }
    }
}

/// The `temp_machine_expired` event for `machine`, written by the system at `now`.
pub(crate) fn expired_event(machine: &Machine, now: DateTime<Utc>) -> AuditEvent {
    let detail = serde_json::json!({ "name": machine.name, "expires_at": machine.expires_at });
    machine.event(Actor::System, AuditAction::TempMachineExpired, now, detail)
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
