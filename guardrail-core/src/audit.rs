//! Audit events: what happened, to what, by whom, and how severe it is.
//!
//! The core never writes an audit log. Every operation returns the events it caused, and the
//! caller persists them together with the state change (see the store's atomicity contracts).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{MachineId, OwnerId, SecretId, TokenId, VaultId};

/// How much attention an audit entry deserves, from `info` up to `high`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
}

impl Severity {
    /// The severity's name as stored and shown: `info`, `low`, `medium` or `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is not one of `info`, `low`, `medium`, `high`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity `{0}`: expected one of info, low, medium, high")]
pub struct UnknownSeverity(String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "info" => Ok(Self::Info),
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            other => Err(UnknownSeverity(other.chars().take(40).collect())),
        }
    }
}

macro_rules! audit_actions {
    ($($(#[$doc:meta])* $variant:ident => $name:literal, $severity:ident;)+) => {
        /// An audited action. The temporary-machine actions and their severities are fixed by the
        /// product; the others are the general machine and authentication actions around them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditAction {
            $($(#[$doc])* $variant,)+
        }

        impl AuditAction {
            /// Every action, in declaration order.
            pub const ALL: &'static [AuditAction] = &[$(Self::$variant,)+];

            /// The action's name as stored and shown, such as `temp_machine_blocked`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }

            /// The fixed severity of the action.
            pub fn severity(self) -> Severity {
                match self {
                    $(Self::$variant => Severity::$severity,)+
                }
            }
        }

        impl FromStr for AuditAction {
            type Err = UnknownAction;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($name => Ok(Self::$variant),)+
                    other => Err(UnknownAction(other.chars().take(64).collect())),
                }
            }
        }
    };
}

audit_actions! {
    /// A temporary-machine bootstrap token was issued.
    TempMachineTokenCreate => "temp_machine_token_create", Low;
    /// An unused token was revoked by its owner.
    TempMachineTokenRevoke => "temp_machine_token_revoke", Medium;
    /// A machine registered with a temporary bootstrap token and waits for approval.
    TempMachineCreate => "temp_machine_create", Low;
    /// A signed request was blocked by a per-machine guardrail; the detail names the axis.
    TempMachineBlocked => "temp_machine_blocked", High;
    /// A machine's expiry was pushed further into the future.
    TempMachineExtend => "temp_machine_extend", Medium;
    /// The most recent un-reverted extension was rolled back.
    TempMachineExtendRevert => "temp_machine_extend_revert", Medium;
    /// A machine's guardrail configuration changed; the detail holds before and after.
    TempMachineGuardrailsUpdate => "temp_machine_guardrails_update", Medium;
    /// A machine reached its expiry and was disabled.
    TempMachineExpired => "temp_machine_expired", Info;
    /// Machines were deleted 30 days after expiry; one entry per vault owner lists their names.
    TempMachinePurge => "temp_machine_purge", Low;
    /// A machine was revoked and deleted by its owner.
    MachineRevoke => "machine_revoke", Medium;
    /// A pending machine was approved.
    MachineApprove => "machine_approve", Low;
    /// A pending machine was denied and deleted.
    MachineDeny => "machine_deny", Low;
    /// A disabled machine was enabled again.
    MachineEnable => "machine_enable", Low;
    /// A machine was disabled by its owner.
    MachineDisable => "machine_disable", Medium;
    /// A machine request failed authentication (steps 1 to 4 and 8); the detail names the reason.
    AuthFailure => "auth_failure", Medium;
    /// An authenticated machine was denied by route authorization (step 9).
    AccessDenied => "access_denied", Medium;
    /// A machine read a secret value.
    SecretRead => "secret_read", Info;
}

/// An action name that the product does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown audit action `{0}`")]
pub struct UnknownAction(String);

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AuditAction {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuditAction {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Who caused an audited action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A vault owner, through the admin API or dashboard.
    Owner(OwnerId),
    /// A machine, through a signed request (or an attempt at one).
    Machine(MachineId),
    /// The engine itself, such as the sweeper.
    System,
}

impl Actor {
    /// `owner`, `machine` or `system`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Owner(_) => "owner",
            Self::Machine(_) => "machine",
            Self::System => "system",
        }
    }

    /// The actor's id as text, or `None` for the system.
    pub fn id(&self) -> Option<String> {
        match self {
            Self::Owner(id) => Some(id.to_string()),
            Self::Machine(id) => Some(id.to_string()),
            Self::System => None,
        }
    }
}

/// What an audited action was done to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Vault(VaultId),
    Machine(MachineId),
    Token(TokenId),
    Secret(SecretId),
}

impl fmt::Display for Target {
    /// Writes `kind:id`, such as `machine:6f1c2a4e-...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vault(id) => write!(f, "vault:{id}"),
            Self::Machine(id) => write!(f, "machine:{id}"),
            Self::Token(id) => write!(f, "token:{id}"),
            Self::Secret(id) => write!(f, "secret:{id}"),
        }
    }
}

/// One audit entry, before it is stored.
///
/// `detail` is a JSON object whose keys depend on the action; for `temp_machine_blocked` it holds
/// `axis` (`ip`, `geo` or `time_window`), `reason` and `count`. It never holds a token, key or
/// secret value.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub at: DateTime<Utc>,
    pub vault_id: VaultId,
    pub actor: Actor,
    pub action: AuditAction,
    pub target: Target,
    pub source_ip: Option<IpAddr>,
    pub detail: serde_json::Value,
}

impl AuditEvent {
    /// Makes an event without a source address; add one with [`AuditEvent::with_source_ip`].
    pub fn new(
        at: DateTime<Utc>,
        vault_id: VaultId,
        actor: Actor,
        action: AuditAction,
        target: Target,
        detail: serde_json::Value,
    ) -> Self {
        Self {
            at,
            vault_id,
            actor,
            action,
            target,
            source_ip: None,
            detail,
        }
    }

    /// Makes an `auth_failure` event for a machine request that failed authentication. The
    /// detail is `{"reason": reason}`; `reason` names the failed check and must not contain a
    /// token, key or signature.
    pub fn auth_failure(
        at: DateTime<Utc>,
        vault_id: VaultId,
        machine_id: MachineId,
        reason: &str,
    ) -> Self {
        Self::new(
            at,
            vault_id,
            Actor::Machine(machine_id),
            AuditAction::AuthFailure,
            Target::Machine(machine_id),
            serde_json::json!({ "reason": reason }),
        )
    }

    /// Sets the source address of the request that caused the event.
    #[must_use]
    pub fn with_source_ip(mut self, source_ip: IpAddr) -> Self {
        self.source_ip = Some(source_ip);
        self
    }

    /// The action's fixed severity.
    pub fn severity(&self) -> Severity {
        self.action.severity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_actions_have_their_severities() {
        let expected = [
            ("temp_machine_token_create", Severity::Low),
            ("temp_machine_token_revoke", Severity::Medium),
            ("temp_machine_create", Severity::Low),
            ("temp_machine_blocked", Severity::High),
            ("temp_machine_extend", Severity::Medium),
            ("temp_machine_extend_revert", Severity::Medium),
            ("temp_machine_guardrails_update", Severity::Medium),
            ("temp_machine_expired", Severity::Info),
            ("temp_machine_purge", Severity::Low),
        ];
        for (name, severity) in expected {
            let action: AuditAction = name.parse().unwrap();
            assert_eq!(action.severity(), severity, "{name}");
            assert_eq!(action.as_str(), name);
        }
    }

    #[test]
    fn action_names_round_trip() {
        for action in AuditAction::ALL {
            assert_eq!(action.as_str().parse::<AuditAction>().unwrap(), *action);
        }
    }

    #[test]
    fn unknown_action_is_named() {
        let err = "temp_machine_exploded".parse::<AuditAction>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown audit action `temp_machine_exploded`"
        );
    }

    #[test]
    fn auth_failure_names_reason() {
        let machine: MachineId = "6f1c2a4e-0b7d-4c1e-9a35-2f0d8c7b6e51".parse().unwrap();
        let vault: VaultId = "vault_abc".parse().unwrap();
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let event = AuditEvent::auth_failure(at, vault.clone(), machine, "machine_expired")
            .with_source_ip(ip);
        assert_eq!(event.action, AuditAction::AuthFailure);
        assert_eq!(event.severity(), Severity::Medium);
        assert_eq!(event.actor, Actor::Machine(machine));
        assert_eq!(event.target, Target::Machine(machine));
        assert_eq!(event.vault_id, vault);
        assert_eq!(event.source_ip, Some(ip));
        assert_eq!(
            event.detail,
            serde_json::json!({"reason": "machine_expired"})
        );
    }

    #[test]
    fn severity_names_round_trip() {
        for severity in [
            Severity::Info,
            Severity::Low,
            Severity::Medium,
            Severity::High,
        ] {
            assert_eq!(severity.as_str().parse::<Severity>().unwrap(), severity);
        }
        let err = "critical".parse::<Severity>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown severity `critical`: expected one of info, low, medium, high"
        );
    }
}
