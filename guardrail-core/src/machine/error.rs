//! Errors of machine keys, lifecycle transitions and registration.

use chrono::{DateTime, Utc};

use super::{MachineAction, MachineState};
use crate::ids::{MachineId, VaultId};
use crate::lifetime::LifetimeError;
use crate::plan::Plan;

/// A public key that cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublicKeyError {
    /// The key is not 32 bytes long.
    #[error("invalid public key: expected 32 bytes of raw Ed25519 key, got {0} bytes")]
    Length(usize),
    /// The text is not standard base64 with padding.
    #[error("invalid public key: not standard base64 with padding")]
    Base64,
    /// The bytes are not the encoding of a curve point.
    #[error("invalid public key: the bytes are not an Ed25519 curve point")]
    NotOnCurve,
    /// The bytes decode to a point, but are not its canonical encoding.
    #[error("invalid public key: the point is not canonically encoded")]
    NonCanonical,
    /// The point has small order, so signatures under it prove nothing.
    #[error("invalid public key: the point has small order")]
    SmallOrder,
}

/// A lifecycle action that the machine's state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot {action} machine `{machine_id}` while it is {state}: only {allowed} machine can be \
     {past}",
    action = .action.as_str(),
    state = .state.as_str(),
    allowed = .action.allowed_from(),
    past = .action.past_tense()
)]
pub struct TransitionError {
    machine_id: MachineId,
    state: MachineState,
    action: MachineAction,
}

impl TransitionError {
    pub(super) fn new(machine_id: MachineId, state: MachineState, action: MachineAction) -> Self {
        Self {
            machine_id,
            state,
            action,
        }
    }

    /// The state the machine was in.
    pub fn state(&self) -> MachineState {
        self.state
    }

    /// The action that was attempted.
    pub fn action(&self) -> MachineAction {
        self.action
    }
}

/// A lifecycle step that the machine's state allows but the clock does not yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} machine `{machine_id}` before `{due_at}`", action = .action.as_str())]
pub struct NotDueError {
    machine_id: MachineId,
    action: MachineAction,
    due_at: DateTime<Utc>,
}

impl NotDueError {
    pub(super) fn new(machine_id: MachineId, action: MachineAction, due_at: DateTime<Utc>) -> Self {
        Self {
            machine_id,
            action,
            due_at,
        }
    }

    /// When the step becomes allowed.
    pub fn due_at(&self) -> DateTime<Utc> {
        self.due_at
    }
}

/// Why the sweeper's step on a machine failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SweepStepError {
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    NotDue(#[from] NotDueError),
}

/// A registration that the vault does not allow. The token stays unused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrationError {
    /// The vault's plan does not allow temporary machines (it may have moved to `free` after
    /// the token was issued).
    #[error(
        "the `{0}` plan does not allow temporary machines: move the vault to pro or enterprise, \
         then run the bootstrap command again"
    )]
    PlanDisallows(Plan),
    /// The vault already holds as many machines as its plan allows.
    #[error(
        "vault `{vault_id}` has reached its limit of {limit} machines: remove a machine or raise \
         the limit, then run the bootstrap command again"
    )]
    LimitReached { vault_id: VaultId, limit: u32 },
    /// The vault given is not the token's vault; the caller loaded the wrong vault.
    #[error("the token belongs to vault `{token_vault}`, not to vault `{given_vault}`")]
    VaultMismatch {
        token_vault: VaultId,
        given_vault: VaultId,
    },
    /// The token's lifetime does not fit the calendar at the registration instant.
    #[error(transparent)]
    Lifetime(#[from] LifetimeError),
}

/// A guardrail update whose before or after could not be written into the audit detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot record guardrails of machine `{machine_id}` in the audit detail: {reason}")]
pub struct GuardrailsUpdateError {
    machine_id: MachineId,
    reason: String,
}

impl GuardrailsUpdateError {
    pub(super) fn new(machine_id: MachineId, reason: String) -> Self {
        Self { machine_id, reason }
    }
}
