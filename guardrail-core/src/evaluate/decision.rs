//! What [`evaluate`](super::evaluate) returns: the outcome, the deciding step and reason, the
//! client's status, the audit events and the rate-limit effect.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::audit::AuditEvent;
use crate::guardrail::CountryCode;
use crate::ids::{MachineId, OwnerId, VaultId};
use crate::lockout::{BlockKey, LockoutKey};
use crate::machine::MachineState;
use crate::request::{MaxSkew, NonceStoreError, RequestError, Timestamp};

use super::route::{MachineRoute, RouteDenialReason};

/// The body every 401 carries, whichever of steps 1 to 4 and 8 failed.
pub const AUTHENTICATION_FAILED: &str = "authentication failed";
/// The body of a 403.
pub const ACCESS_DENIED: &str = "access denied";
/// The body of a 404.
pub const NOT_FOUND: &str = "not found";
/// The body of a 503, sent when the nonce store cannot decide.
pub const UNAVAILABLE: &str = "service unavailable, retry later";

/// The nine steps, in evaluation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// 1: the vault owner's account is active.
    OwnerActive,
    /// 2: the vault-wide IP allowlist, if configured.
    VaultIpAllowlist,
    /// 3: the machine exists, is approved and enabled.
    MachineEnabled,
    /// 4: the machine has not expired.
    NotExpired,
    /// 5: the machine's IP allowlist, if enabled.
    MachineIpAllowlist,
    /// 6: the machine's countries, if enabled.
    MachineGeo,
    /// 7: the machine's time window, if enabled.
    MachineTimeWindow,
    /// 8: signature, timestamp and nonce.
    Signature,
    /// 9: route authorization.
    RouteAuthorization,
}

impl Step {
    /// Every step, in evaluation order.
    pub const ALL: [Step; 9] = [
        Self::OwnerActive,
        Self::VaultIpAllowlist,
        Self::MachineEnabled,
        Self::NotExpired,
        Self::MachineIpAllowlist,
        Self::MachineGeo,
        Self::MachineTimeWindow,
        Self::Signature,
        Self::RouteAuthorization,
    ];

    /// The step's number, 1 to 9.
    pub fn number(self) -> u8 {
        match self {
            Self::OwnerActive => 1,
            Self::VaultIpAllowlist => 2,
            Self::MachineEnabled => 3,
            Self::NotExpired => 4,
            Self::MachineIpAllowlist => 5,
            Self::MachineGeo => 6,
            Self::MachineTimeWindow => 7,
            Self::Signature => 8,
            Self::RouteAuthorization => 9,
        }
    }

    /// The guardrail axis a step checks, as named in `temp_machine_blocked` details: `ip`, `geo`
    /// or `time_window` for steps 5 to 7, `None` otherwise.
    pub fn guardrail_axis(self) -> Option<&'static str> {
        match self {
            Self::MachineIpAllowlist => Some("ip"),
            Self::MachineGeo => Some("geo"),
            Self::MachineTimeWindow => Some("time_window"),
            _ => None,
        }
    }
}

/// The reason a request was denied, with the values that decided it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DenyReason {
    /// Step 1: the vault owner's account is suspended.
    #[error("vault owner `{owner}` is not active")]
    OwnerInactive { owner: OwnerId },
    /// Step 1: the machine, vault and owner records given to the evaluator do not belong together,
    /// so the owner that step 1 checks is not known. This is a caller bug; the request fails closed.
    #[error("machine `{machine}`, vault `{vault}` and owner `{owner}` do not belong together")]
    RecordMismatch {
        machine: MachineId,
        vault: VaultId,
        owner: OwnerId,
    },
    /// Step 2: the source address is outside the vault-wide allowlist.
    #[error("source address `{address}` is not in the vault's IP allowlist")]
    VaultIpNotAllowed { address: IpAddr },
    /// Step 2: the vault has an allowlist and the source address is undetermined.
    #[error("source address undetermined and the vault has an IP allowlist")]
    VaultSourceUndetermined,
    /// Step 3: `X-Machine-Id` is missing or malformed, so no machine can be looked up.
    #[error("machine id unreadable: {0}")]
    MachineIdUnreadable(RequestError),
    /// Step 3: no machine has this id.
    #[error("machine `{machine}` not found")]
    UnknownMachine { machine: MachineId },
    /// Step 3: the machine is pending approval or disabled.
    #[error("machine `{machine}` is {}, not active", state_name(*state))]
    MachineNotEnabled {
        machine: MachineId,
        state: MachineState,
    },
    /// Step 4: the machine expired (`now >= expires_at`).
    #[error("machine expired at `{}`, checked at `{}`", expires_at.to_rfc3339(), now.to_rfc3339())]
    Expired {
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    },
    /// Step 5: the source address is outside the machine's allowlist.
    #[error("source address `{address}` is not in the machine's IP allowlist")]
    IpNotAllowed { address: IpAddr },
    /// Step 5: the machine has an allowlist and the source address is undetermined.
    #[error("source address undetermined")]
    SourceUndetermined,
    /// Step 6: the source country is not in the machine's list.
    #[error("country `{country}` is not in the machine's allowed countries")]
    CountryNotAllowed { country: CountryCode },
    /// Step 6: the machine has a country list and the source country cannot be determined.
    #[error("country undetermined: {detail}")]
    CountryUndetermined { detail: String },
    /// Step 7: `now` is outside the machine's time window.
    #[error("outside the machine's time window at `{}`", now.to_rfc3339())]
    OutsideWindow { now: DateTime<Utc> },
    /// Step 8: a header that step 8 needs is missing or malformed.
    #[error("{0}")]
    MalformedRequest(RequestError),
    /// Step 8: `verify_strict` rejected the signature.
    #[error("invalid signature")]
    BadSignature,
    /// Step 8: the timestamp is further than the allowed skew from the transport clock.
    #[error("stale timestamp `{timestamp}`: server time `{}`, allowed skew {} s", now.timestamp(), skew.as_secs())]
    StaleTimestamp {
        timestamp: Timestamp,
        now: DateTime<Utc>,
        skew: MaxSkew,
    },
    /// Step 8: the nonce was already used by this machine.
    #[error("replayed nonce `{nonce}`")]
    Replayed { nonce: String },
    /// Step 8: the nonce store could not decide, so the request fails closed with 503.
    #[error("{0}")]
    NonceStoreUnavailable(NonceStoreError),
    /// Step 9: the route authorizer denied the route.
    #[error("{reason} (route `{}`)", route.name())]
    Route {
        route: MachineRoute,
        reason: RouteDenialReason,
    },
}

/// The state's name as the admin API writes it.
fn state_name(state: MachineState) -> &'static str {
    match state {
        MachineState::Pending => "pending",
        MachineState::Active => "active",
        MachineState::Disabled => "disabled",
        MachineState::Expired => "expired",
    }
}

/// The result of evaluating one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Allowed, or denied at a step for a reason.
    pub outcome: Outcome,
    /// The HTTP status the client sees: 200 when allowed, otherwise 401, 403, 404 or 503.
    pub status: u16,
    /// The `{"error"}` message the client sees; `None` when allowed. Steps 1 to 4 and 8 share
    /// [`AUTHENTICATION_FAILED`], so the answer reveals nothing about the machine.
    pub client_message: Option<&'static str>,
    /// The audit events to persist. Empty when allowed, and when the request named no known
    /// machine (there is then no vault to file an entry under).
    pub audit_events: Vec<AuditEvent>,
    /// The failure counter to increment, if any.
    pub rate_limit: Option<LockoutKey>,
    /// The canonical source address that every check used.
    pub source: Option<IpAddr>,
}

/// Whether the request may proceed.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every step passed; the route handler may run for `machine`.
    Allow { machine: MachineId },
    /// `step` failed for `reason`.
    Deny { step: Step, reason: DenyReason },
}

impl Decision {
    /// Returns whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self.outcome, Outcome::Allow { .. })
    }

    /// The step that denied the request, if any.
    pub fn failed_step(&self) -> Option<Step> {
        match &self.outcome {
            Outcome::Allow { .. } => None,
            Outcome::Deny { step, .. } => Some(*step),
        }
    }

    /// The reason of a denial, if any.
    pub fn deny_reason(&self) -> Option<&DenyReason> {
        match &self.outcome {
            Outcome::Allow { .. } => None,
            Outcome::Deny { reason, .. } => Some(reason),
        }
    }

    /// The coalescing key of a guardrail block (steps 5 to 7), for
    /// [`coalesce_block`](crate::lockout::coalesce_block); `None` for every other decision.
    pub fn block_key(&self) -> Option<BlockKey> {
        let Outcome::Deny { step, reason } = &self.outcome else {
            return None;
        };
        let axis = step.guardrail_axis()?;
        let Some(LockoutKey::MachineSource(machine, source)) = self.rate_limit else {
            return None;
        };
        Some(BlockKey {
            machine,
            source,
            axis,
            reason: reason.to_string(),
        })
    }
}

impl fmt::Display for Step {
    /// Writes `step N`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {}", self.number())
    }
}
