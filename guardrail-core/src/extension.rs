//! Extension chains: pushing a machine's expiry forward, and reverting the latest push.
//!
//! A machine's chain lists its extensions oldest first. [`extend`] appends one, [`revert`] marks
//! the most recent un-reverted one reverted and restores the expiry it replaced. Both return the
//! updated machine and chain together, with the audit event; the store writes all three at once.
//!
//! # Edge cases
//!
//! - **The rolling cap.** A new expiry may be at most 12 calendar months after the moment of the
//!   extension (clamped like lifetimes: on 29 February 2024 the cap is 28 February 2025), not
//!   after registration, so the cap moves with the clock.
//! - **Expired machines** (marked, or `now >= expires_at`) can be neither extended nor reverted.
//! - **Reverts stack.** After a revert, the next revert acts on the extension that is now the most
//!   recent un-reverted one. A reverted extension is never un-reverted.
//! - **Revert into the past.** A revert whose restored expiry is not after `now` is rejected, so a
//!   revert never expires a machine on the spot.
//! - **Bounded chain.** A chain holds at most [`MAX_EXTENSIONS`] extensions, reverted ones
//!   included.

mod error;

use chrono::{DateTime, Utc};

pub use error::{ExtendError, RevertError};

use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::ids::OwnerId;
use crate::lifetime::max_expiry;
use crate::machine::Machine;

/// The maximum length of an extension's reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// The maximum number of extensions one machine's chain holds, reverted ones included.
pub const MAX_EXTENSIONS: usize = 1000;

/// One extension of a machine's expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub previous_expires_at: DateTime<Utc>,
    pub new_expires_at: DateTime<Utc>,
    pub applied_by: OwnerId,
    pub applied_at: DateTime<Utc>,
    pub reason: Option<String>,
    pub reverted: bool,
}

/// A machine's extensions, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtensionChain {
    extensions: Vec<Extension>,
}

impl ExtensionChain {
    /// An empty chain, for a machine never extended.
    pub fn new() -> Self {
        Self::default()
    }

    /// A chain from stored extensions, oldest first.
    pub fn from_extensions(extensions: Vec<Extension>) -> Self {
        Self { extensions }
    }

    /// The extensions, oldest first.
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }

    /// The extensions, oldest first, for storing.
    pub fn into_extensions(self) -> Vec<Extension> {
        self.extensions
    }

    /// The most recent extension that is not reverted: the one [`revert`] would act on.
    pub fn latest_unreverted(&self) -> Option<&Extension> {
        self.extensions.iter().rev().find(|ext| !ext.reverted)
    }
}

/// An owner's request to extend a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendRequest {
    pub new_expires_at: DateTime<Utc>,
    /// At most [`MAX_REASON_CHARS`] characters.
    pub reason: Option<String>,
    pub applied_by: OwnerId,
}

/// A machine and its chain after an extension or a revert, with the audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainUpdate {
    pub machine: Machine,
    pub chain: ExtensionChain,
    pub event: AuditEvent,
}

/// Extends `machine` to `request.new_expires_at` at `now`, appending to `chain`, and emits
/// `temp_machine_extend`.
///
/// # Errors
///
/// [`ExtendError`] when the machine is expired, the reason is too long, the chain is full, the new
/// expiry is not later than the current one, or it is more than 12 calendar months after `now`.
pub fn extend(
    machine: Machine,
    chain: ExtensionChain,
    request: ExtendRequest,
    now: DateTime<Utc>,
) -> Result<ChainUpdate, ExtendError> {
    let ExtendRequest {
        new_expires_at,
        reason,
        applied_by,
    } = request;
    if machine.is_expired(now) {
        return Err(ExtendError::MachineExpired {
            machine_id: machine.id,
            expires_at: machine.expires_at,
        });
    }
    if let Some(chars) = reason.as_deref().map(|text| text.chars().count())
        && chars > MAX_REASON_CHARS
    {
        return Err(ExtendError::ReasonTooLong { chars });
    }
    if chain.extensions.len() >= MAX_EXTENSIONS {
        return Err(ExtendError::ChainFull {
            machine_id: machine.id,
        });
    }
    // The machine is not expired, so the current expiry is after `now`, and a later expiry is
    // after `now` too.
    if new_expires_at <= machine.expires_at {
        return Err(ExtendError::NotLater {
            new_expires_at,
            current: machine.expires_at,
        });
    }
    let cap = max_expiry(now).unwrap_or(DateTime::<Utc>::MAX_UTC);
    if new_expires_at > cap {
        return Err(ExtendError::BeyondCap {
            new_expires_at,
            cap,
        });
    }

    let extension = Extension {
        previous_expires_at: machine.expires_at,
        new_expires_at,
        applied_by: applied_by.clone(),
        applied_at: now,
        reason,
        reverted: false,
    };
    let detail = serde_json::json!({
        "name": machine.name,
        "previous_expires_at": extension.previous_expires_at,
        "new_expires_at": extension.new_expires_at,
        "reason": extension.reason,
    });
    let event = machine.event(
        Actor::Owner(applied_by),
        AuditAction::TempMachineExtend,
        now,
        detail,
    );
    let mut extensions = chain.extensions;
    extensions.push(extension);
    Ok(ChainUpdate {
        machine: Machine {
            expires_at: new_expires_at,
            ..machine
        },
        chain: ExtensionChain { extensions },
        event,
    })
}

/// Reverts the most recent un-reverted extension at `now`: the machine's expiry goes back to that
/// extension's previous expiry, the extension is marked reverted, and `temp_machine_extend_revert`
/// is emitted.
///
/// # Errors
///
/// [`RevertError`] when the machine is expired, no un-reverted extension exists, or the restored
/// expiry would not be after `now`.
pub fn revert(
    machine: Machine,
    chain: ExtensionChain,
    reverted_by: &OwnerId,
    now: DateTime<Utc>,
) -> Result<ChainUpdate, RevertError> {
    if machine.is_expired(now) {
        return Err(RevertError::MachineExpired {
            machine_id: machine.id,
            expires_at: machine.expires_at,
        });
    }
    let mut extensions = chain.extensions;
    let Some(latest) = extensions.iter_mut().rev().find(|ext| !ext.reverted) else {
        return Err(RevertError::NothingToRevert {
            machine_id: machine.id,
        });
    };
    if latest.previous_expires_at <= now {
        return Err(RevertError::IntoThePast {
            previous_expires_at: latest.previous_expires_at,
            now,
        });
    }
    // TODO: the chain row does not record who reverted it or when; only the audit event does.
    latest.reverted = true;
    let restored = latest.previous_expires_at;
    let detail = serde_json::json!({
        "name": machine.name,
        "reverted_expires_at": latest.new_expires_at,
        "restored_expires_at": restored,
    });
    let event = machine.event(
        Actor::Owner(reverted_by.clone()),
        AuditAction::TempMachineExtendRevert,
        now,
        detail,
    );
    Ok(ChainUpdate {
        machine: Machine {
            expires_at: restored,
            ..machine
        },
        chain: ExtensionChain { extensions },
        event,
    })
}

#[cfg(test)]
mod tests;
