//! Errors of extending a machine's expiry and reverting an extension.

use chrono::{DateTime, Utc};

use super::{MAX_EXTENSIONS, MAX_REASON_CHARS};
use crate::ids::MachineId;

/// An extension that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtendError {
    /// The machine is marked expired or `now >= expires_at`.
    #[error("cannot extend machine `{machine_id}`: it expired at `{expires_at}`")]
    MachineExpired {
        machine_id: MachineId,
        expires_at: DateTime<Utc>,
    },
    /// The reason is longer than [`MAX_REASON_CHARS`] characters.
    #[error("extension reason has {chars} characters, the maximum is {MAX_REASON_CHARS}")]
    ReasonTooLong { chars: usize },
    /// The chain already holds [`MAX_EXTENSIONS`] extensions.
    #[error(
        "machine `{machine_id}` already has {MAX_EXTENSIONS} extensions: revoke it and issue a \
         new token instead"
    )]
    ChainFull { machine_id: MachineId },
    /// The new expiry is not later than the current one (which is later than now).
    #[error(
        "new expiry `{new_expires_at}` is not later than the current expiry `{current}`: an \
         extension can only move the expiry forward"
    )]
    NotLater {
        new_expires_at: DateTime<Utc>,
        current: DateTime<Utc>,
    },
    /// The new expiry is more than 12 calendar months after now.
    #[error(
        "new expiry `{new_expires_at}` is after `{cap}`, 12 months from now: choose an earlier \
         expiry"
    )]
    BeyondCap {
        new_expires_at: DateTime<Utc>,
        cap: DateTime<Utc>,
    },
}

/// A revert that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RevertError {
    /// The machine is marked expired or `now >= expires_at`.
    #[error("cannot revert an extension of machine `{machine_id}`: it expired at `{expires_at}`")]
    MachineExpired {
        machine_id: MachineId,
        expires_at: DateTime<Utc>,
    },
    /// Every extension is already reverted, or there is none.
    #[error("machine `{machine_id}` has no un-reverted extension to revert")]
    NothingToRevert { machine_id: MachineId },
    /// The expiry the revert would restore is not after now.
    #[error(
        "cannot revert into the past: the previous expiry `{previous_expires_at}` is not after \
         now (`{now}`)"
    )]
    IntoThePast {
        previous_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
}
