//! Records the store keeps beside the core's own types, and the inputs and outputs of the
//! atomic operations.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use guardrail_core::audit::{AuditAction, AuditEvent, Severity};
use guardrail_core::ids::{MachineId, ProjectId, SecretId, VaultId};
use guardrail_core::lockout::LockoutKey;
use guardrail_core::plan::{Owner, Vault};
use guardrail_core::token::BootstrapToken;

/// The SHA-256 hash of an owner key, the only form in which owner keys are stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OwnerKeyHash(pub [u8; 32]);

impl fmt::Debug for OwnerKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnerKeyHash(..)")
    }
}

/// The stable id of an audit entry. Ids grow with insertion order within one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AuditId(pub i64);

impl fmt::Display for AuditId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: AuditId,
    pub event: AuditEvent,
    /// How many identical events this entry stands for; above 1 only for coalesced
    /// `temp_machine_blocked` entries, whose `detail.count` the store keeps equal to it.
    pub count: u32,
}

/// The result of an operation that wrote one audit entry in its own transaction, together
/// with that entry as stored, so that the caller can alert exactly it.
#[derive(Debug, Clone, PartialEq)]
pub struct Audited<T> {
    /// What the operation changed or read, as written.
    pub value: T,
    /// The audit entry the operation wrote, with its id.
    pub audit: AuditRecord,
}

/// A filter over one vault's audit log. Results come newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditQuery {
    pub vault_id: VaultId,
    pub action: Option<AuditAction>,
    pub severity: Option<Severity>,
    /// Only entries at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only entries with a smaller id, for paging backwards.
    pub before: Option<AuditId>,
    pub limit: u32,
}

impl AuditQuery {
    /// Makes a query for the newest `limit` entries of a vault, with no other filter.
    pub fn newest(vault_id: VaultId, limit: u32) -> Self {
        Self {
            vault_id,
            action: None,
            severity: None,
            since: None,
            before: None,
            limit,
        }
    }
}

/// The identity of a repeated guardrail block: the same machine, source, axis and reason.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CoalesceKey {
    pub machine_id: MachineId,
    pub source_ip: Option<IpAddr>,
    /// `ip`, `geo` or `time_window`.
    pub axis: String,
    pub reason: String,
}

impl CoalesceKey {
    pub(crate) fn storage_key(&self) -> String {
        let source = self.source_ip.map(|ip| ip.to_string()).unwrap_or_default();
        format!(
            "{}|{}|{}|{}",
            self.machine_id, source, self.axis, self.reason
        )
    }
}

/// The last audit entry written for a [`CoalesceKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoalesceState {
    pub entry_id: AuditId,
    pub count: u32,
    /// When the first block the entry counts arrived: the instant of the entry itself.
    pub first_at: DateTime<Utc>,
    /// When the latest repeat arrived.
    pub last_at: DateTime<Utc>,
}

/// The result of [`crate::AuditStore::append_coalesced`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoalesceOutcome {
    /// A new entry was written.
    Appended(AuditId),
    /// An existing entry's count went up to `count`.
    Coalesced { entry_id: AuditId, count: u32 },
}

/// Formats the text key a lockout counter is stored under. An undetermined source is `-`.
pub(crate) fn lockout_storage_key(key: &LockoutKey) -> String {
    let source = |ip: &Option<IpAddr>| ip.map_or_else(|| "-".to_owned(), |ip| ip.to_string());
    match key {
        LockoutKey::Source(ip) => format!("source|{}", source(ip)),
        LockoutKey::MachineSource(machine, ip) => format!("machine|{machine}|{}", source(ip)),
    }
}

/// How many expired rows [`crate::GuardStore::purge_expired`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    pub nonces: u64,
    pub lockouts: u64,
    pub coalesce_entries: u64,
}

/// A project in a vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: ProjectId,
    pub vault_id: VaultId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// The kind of secret value: one string, or a JSON object of string fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretValueType {
    Secret,
    Structured,
}

impl SecretValueType {
    /// `secret` or `structured`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::Structured => "structured",
        }
    }
}

/// A stored secret. The store holds only ciphertext: encryption happens in the server.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretRecord {
    pub id: SecretId,
    pub vault_id: VaultId,
    pub project_id: ProjectId,
    pub name: String,
    pub value_type: SecretValueType,
    /// Field names of a structured secret, in order; `None` for a plain secret.
    pub field_names: Option<Vec<String>>,
    pub ciphertext: Vec<u8>,
    /// Starts at 1 and goes up by one with each new value.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretRecord")
            .field("id", &self.id)
            .field("vault_id", &self.vault_id)
            .field("project_id", &self.project_id)
            .field("name", &self.name)
            .field("value_type", &self.value_type)
            .field("field_names", &self.field_names)
            .field(
                "ciphertext",
                &format_args!("<{} bytes>", self.ciphertext.len()),
            )
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The stable id of a webhook subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WebhookId(pub i64);

/// An alert subscription. `secret` is stored as given: the server encrypts it first.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSubscription {
    pub id: WebhookId,
    pub vault_id: VaultId,
    pub url: String,
    pub actions: Vec<AuditAction>,
    pub secret: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for WebhookSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSubscription")
            .field("id", &self.id)
            .field("vault_id", &self.vault_id)
            .field("url", &self.url)
            .field("actions", &self.actions)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// A webhook subscription before it has an id.
#[derive(Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub vault_id: VaultId,
    pub url: String,
    pub actions: Vec<AuditAction>,
    pub secret: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

/// The records registration's decision function receives, read inside the registration
/// transaction with the token and vault locked.
#[derive(Debug)]
pub struct RegistrationContext<'a> {
    pub token: &'a BootstrapToken,
    pub vault: &'a Vault,
    pub owner: &'a Owner,
    /// Machines in the vault now, in every state.
    pub machines_in_vault: u32,
}

/// The changes one sweep made.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepReport {
    /// Machines marked expired.
    pub expired: u64,
    /// Machines deleted 30 days after expiry.
    pub purged: u64,
    /// The audit entries written (`temp_machine_expired` and `temp_machine_purge`), in the
    /// order of their ids.
    pub audit: Vec<AuditRecord>,
}
