//! Request and response bodies on the wire, with exactly the keys the protocol lists.
//!
//! Machine-API responses are read by SikkerKey's official clients, some of which reject unknown
//! keys, so each struct here carries exactly the listed keys and no `skip_serializing_if`:
//! an absent optional value is written as `null`, and container keys are always present.
//! `fieldNames` is a JSON-encoded array inside a string, or null, never an array.
//!
//! Machine-API and bootstrap request bodies are lenient (unknown keys are ignored), so that
//! newer clients keep working. Admin request bodies reject unknown keys, so that a mistyped
//! field fails loudly instead of being ignored.
//!
//! Types that carry a token, a key or a secret value have a hand-written `Debug` that hides it.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use guardrail_core::ids::{MachineId, ProjectId, SecretId, TokenId, VaultId};
use serde::{Deserialize, Serialize};

/// Most ids one poll request may watch.
pub const MAX_POLL_WATCH: usize = 1000;

// ---------------------------------------------------------------------------------------------
// Machine API
// ---------------------------------------------------------------------------------------------

/// `GET /v1/secret/{secretId}`: `{"value"}`. A structured secret's value is its JSON object as
/// a string.
#[derive(Serialize)]
pub struct SecretValueResponse {
    /// The plaintext value.
    pub value: String,
}

impl fmt::Debug for SecretValueResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretValueResponse")
            .finish_non_exhaustive()
    }
}

/// One secret in `GET /v1/secrets` and `POST /v1/secrets/list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretSummary {
    /// The secret's id.
    pub id: SecretId,
    /// The secret's name.
    pub name: String,
    /// A JSON-encoded array of field names for a structured secret, otherwise `None` (`null`).
    pub field_names: Option<String>,
    /// The project the secret belongs to.
    pub project_id: ProjectId,
}

/// `{"secrets": [...]}` of secret summaries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecretListResponse {
    /// The secrets, possibly none.
    pub secrets: Vec<SecretSummary>,
}

/// `POST /v1/secrets/list` body: `{"projectId"}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectFilterRequest {
    /// The project to list, as the client sent it; the handler parses and checks it.
    pub project_id: String,
}

/// `POST /v1/secrets/export` body: empty, or `{"projectId"}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportRequest {
    /// The project to export, or every readable secret when absent or null.
    #[serde(default)]
    pub project_id: Option<String>,
}

/// One secret in `POST /v1/secrets/export`.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedSecret {
    /// The secret's id.
    pub id: SecretId,
    /// The secret's name.
    pub name: String,
    /// The plaintext value.
    pub value: String,
    /// A JSON-encoded array of field names, or `None` (`null`).
    pub field_names: Option<String>,
}

impl fmt::Debug for ExportedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportedSecret")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("field_names", &self.field_names)
            .finish_non_exhaustive()
    }
}

/// `{"secrets": [...]}` of exported secrets.
#[derive(Debug, Clone, Serialize)]
pub struct ExportResponse {
    /// The secrets, possibly none.
    pub secrets: Vec<ExportedSecret>,
}

/// `POST /v1/secrets/poll` body: `{"watch": [ids]}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PollRequest {
    /// The secret ids to check, as sent; at most [`MAX_POLL_WATCH`] are accepted by the handler.
    pub watch: Vec<String>,
}

/// The change to a watched secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PollStatus {
    /// The current version is newer than the one the machine last read.
    Changed,
    /// The secret no longer exists.
    Deleted,
    /// The machine may no longer read the secret.
    AccessDenied,
}

/// One entry of a poll response: `{"status"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PollChange {
    /// The change.
    pub status: PollStatus,
}

/// `{"changes": {id: {"status"}}}`, listing only real changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PollResponse {
    /// The changed secrets by id, possibly none.
    pub changes: BTreeMap<String, PollChange>,
}

/// One project of `GET /v1/cli/projects`. Applications are not modelled, so their fields are
/// always `null`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CliProject {
    /// The project's id.
    pub project_id: ProjectId,
    /// The project's name.
    pub project_name: String,
    /// Always `None`.
    pub application_id: Option<String>,
    /// Always `None`.
    pub application_name: Option<String>,
}

/// `{"projects": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CliProjectsResponse {
    /// The projects, possibly none.
    pub projects: Vec<CliProject>,
}

/// The kind of a secret as the CLI shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// A plain string value.
    Secret,
    /// A JSON object of string fields.
    Structured,
}

/// One secret of `GET /v1/cli/secrets`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CliSecret {
    /// The secret's id.
    pub id: SecretId,
    /// The secret's name.
    pub name: String,
    /// A JSON-encoded array of field names, or `None` (`null`).
    pub field_names: Option<String>,
    /// The project the secret belongs to.
    pub project_id: ProjectId,
    /// That project's name.
    pub project_name: String,
    /// Always `None`.
    pub application_id: Option<String>,
    /// Always `None`.
    pub application_name: Option<String>,
    /// `secret` or `structured`.
    #[serde(rename = "type")]
    pub kind: SecretKind,
}

/// `{"secrets": [...]}` for the CLI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CliSecretsResponse {
    /// The secrets, possibly none.
    pub secrets: Vec<CliSecret>,
}

// ---------------------------------------------------------------------------------------------
// Temporary-machine bootstrap
// ---------------------------------------------------------------------------------------------

/// `POST /v1/{vaultId}/temp-bootstrap/register` body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    /// The bootstrap token's plaintext.
    pub token: String,
    /// The raw 32-byte Ed25519 public key in standard base64.
    pub public_key: String,
    /// The machine's host name, for the audit trail only; the machine's name comes from the
    /// token.
    #[serde(default)]
    pub hostname: Option<String>,
}

impl fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("public_key", &self.public_key)
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}

/// The 201 response to a registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterResponse {
    /// The new machine's id.
    pub machine_id: MachineId,
    /// The name set at issuance.
    pub machine_name: String,
    /// The vault the machine belongs to.
    pub vault_id: VaultId,
    /// When the machine expires.
    pub expires_at: DateTime<Utc>,
    /// The server's public URL, for the machine's identity file.
    pub api_url: String,
}

// ---------------------------------------------------------------------------------------------
// Admin API
// ---------------------------------------------------------------------------------------------

/// `{"items": [...]}`, the shape of every admin list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Items<T> {
    /// The listed values, possibly none.
    pub items: Vec<T>,
}

/// A lifetime of months, days and hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifetimeBody {
    /// Calendar months.
    #[serde(default)]
    pub months: u32,
    /// Days.
    #[serde(default)]
    pub days: u32,
    /// Hours.
    #[serde(default)]
    pub hours: u32,
}

/// A time window: `{"start","end","timezone","days"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeWindowBody {
    /// `HH:MM`, inclusive.
    pub start: String,
    /// `HH:MM` or `24:00`, exclusive.
    pub end: String,
    /// An IANA zone name.
    pub timezone: String,
    /// Weekdays: `mon` to `sun`.
    pub days: Vec<String>,
}

/// Guardrails as sent and shown; a missing or null axis is off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuardrailsBody {
    /// CIDR strings.
    #[serde(default)]
    pub ip_allowlist: Option<Vec<String>>,
    /// ISO 3166-1 alpha-2 codes.
    #[serde(default)]
    pub countries: Option<Vec<String>>,
    /// The time window.
    #[serde(default)]
    pub time_window: Option<TimeWindowBody>,
}

/// `POST .../temp-tokens` body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssueTokenRequest {
    /// The machine's name once it registers.
    pub name: String,
    /// Free-text notes.
    #[serde(default)]
    pub description: Option<String>,
    /// The machine's lifetime from registration.
    pub lifetime: LifetimeBody,
    /// The token's own lifetime, default 7 days.
    #[serde(default)]
    pub token_lifetime_hours: Option<u32>,
    /// Guardrails the machine starts with.
    #[serde(default)]
    pub guardrails: Option<GuardrailsBody>,
}

/// The bootstrap commands for each platform, each holding the token.
#[derive(Clone, Serialize)]
pub struct BootstrapCommands {
    /// `curl -sSL URL | sh`.
    pub linux: String,
    /// `iex (irm "URL/ps")`.
    pub windows: String,
}

impl fmt::Debug for BootstrapCommands {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapCommands").finish_non_exhaustive()
    }
}

/// The 201 response to token issuance, the only time the token is shown.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueTokenResponse {
    /// The token's public handle.
    pub token_id: TokenId,
    /// When the token expires unused.
    pub token_expires_at: DateTime<Utc>,
    /// The machine's expiry if it registered now.
    pub machine_expires_at_preview: DateTime<Utc>,
    /// The commands that carry the token.
    pub commands: BootstrapCommands,
}

/// A token's state as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenStateView {
    /// Not used yet and not expired.
    Unused,
    /// A machine registered with it.
    Used,
    /// Revoked by its owner.
    Revoked,
    /// Past its own expiry, unused.
    Expired,
}

/// A token as listed, without its plaintext.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    /// The token's public handle.
    pub token_id: TokenId,
    /// The name the machine will get.
    pub name: String,
    /// The token's state.
    pub state: TokenStateView,
    /// When the token expires unused.
    pub token_expires_at: DateTime<Utc>,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
}

/// A machine's state as shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineStateView {
    /// Registered, waiting for approval.
    Pending,
    /// Approved and enabled.
    Active,
    /// Switched off by the owner.
    Disabled,
    /// Past its expiry.
    Expired,
}

/// The kind of a machine; only temporary machines are modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineKindView {
    /// A temporary machine.
    Temporary,
}

/// One extension of a machine's chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionView {
    /// The expiry before the extension.
    pub previous_expires_at: DateTime<Utc>,
    /// The expiry it set.
    pub new_expires_at: DateTime<Utc>,
    /// The owner or system that applied it.
    pub applied_by: String,
    /// When.
    pub applied_at: DateTime<Utc>,
    /// The optional reason.
    pub reason: Option<String>,
    /// Whether it was reverted.
    pub reverted: bool,
}

/// A machine as shown by the admin API.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineView {
    /// The machine's id.
    pub machine_id: MachineId,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: MachineKindView,
    /// Its state.
    pub state: MachineStateView,
    /// When it registered.
    pub created_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// Its guardrails.
    pub guardrails: GuardrailsBody,
    /// Its extension chain, oldest first.
    pub extensions: Vec<ExtensionView>,
}

/// `POST .../machines/{machineId}/extensions` body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtendRequest {
    /// The new expiry.
    pub new_expires_at: DateTime<Utc>,
    /// At most 500 characters.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST .../projects` body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectRequest {
    /// The project's name.
    pub name: String,
}

/// A project as shown by the admin API.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectView {
    /// The project's id.
    pub project_id: ProjectId,
    /// Its name.
    pub name: String,
}

/// A secret value as sent: a string, or a JSON object of string fields (structured).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SecretValueBody {
    /// A plain value.
    Plain(String),
    /// A structured value.
    Structured(BTreeMap<String, String>),
}

impl fmt::Debug for SecretValueBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(_) => f.write_str("Plain(..)"),
            Self::Structured(fields) => f
                .debug_tuple("Structured")
                .field(&fields.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// `POST .../secrets` body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSecretRequest {
    /// The project the secret belongs to.
    pub project_id: ProjectId,
    /// The secret's name.
    pub name: String,
    /// Its value.
    pub value: SecretValueBody,
}

/// `PUT .../secrets/{secretId}` body: a new version.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateSecretRequest {
    /// The new value.
    pub value: SecretValueBody,
}

/// A secret as shown by the admin API, without its value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretView {
    /// The secret's id.
    pub secret_id: SecretId,
    /// The project it belongs to.
    pub project_id: ProjectId,
    /// Its name.
    pub name: String,
    /// Its current version, from 1.
    pub version: u64,
}

/// `POST .../secrets/{secretId}/grants` body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantRequest {
    /// The machine to grant.
    pub machine_id: MachineId,
}

/// `PUT .../ip-allowlist` body, and its response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultAllowlistRequest {
    /// CIDR strings; an empty list blocks every machine, and `null` turns the allowlist off.
    pub cidrs: Option<Vec<String>>,
}

/// `GET .../audit` query.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this action.
    #[serde(default)]
    pub action: Option<String>,
    /// Only this severity.
    #[serde(default)]
    pub severity: Option<String>,
    /// Only entries at or after this RFC 3339 instant; the handler parses it, so that an
    /// error can name the field.
    #[serde(default)]
    pub since: Option<String>,
    /// At most this many entries; parsed by the handler.
    #[serde(default)]
    pub limit: Option<String>,
}

/// An audit entry as shown by the admin API.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntryView {
    /// The entry's sequence number.
    pub id: u64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The vault.
    pub vault_id: VaultId,
    /// `owner`, `machine` or `system`.
    pub actor_kind: String,
    /// The actor's id, if any.
    pub actor_id: Option<String>,
    /// The action name.
    pub action: String,
    /// The severity name.
    pub severity: String,
    /// The target of the action.
    pub target: Option<String>,
    /// The source address, if known.
    pub source_ip: Option<String>,
    /// Action-specific detail.
    pub detail: serde_json::Value,
}

/// `POST .../webhooks` body.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    /// The destination URL.
    pub url: String,
    /// The audit actions to deliver; empty or missing means `temp_machine_blocked`.
    #[serde(default)]
    pub actions: Vec<String>,
    /// The HMAC key.
    pub secret: String,
}

impl fmt::Debug for WebhookRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookRequest")
            .field("url", &self.url)
            .field("actions", &self.actions)
            .finish_non_exhaustive()
    }
}

/// A webhook subscription as shown, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    /// The subscription's id.
    pub webhook_id: i64,
    /// The destination URL.
    pub url: String,
    /// The audit actions it receives.
    pub actions: Vec<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// `POST /admin/v1/test-clock/advance` body: `{"seconds": N}` or `{"to": instant}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum AdvanceClockRequest {
    /// Move forward by this many seconds.
    Seconds {
        /// Seconds, at least 1.
        seconds: u64,
    },
    /// Move forward to this instant.
    To {
        /// The target instant.
        to: DateTime<Utc>,
    },
}

/// The test clock's response: its new instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClockView {
    /// The policy clock's instant after the move.
    pub now: DateTime<Utc>,
}

/// Output of `guardrail-server vault create`: `{"vaultId","ownerKey"}`.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultCreated {
    /// The new vault.
    pub vault_id: VaultId,
    /// The owner key, shown only here.
    pub owner_key: String,
}

impl fmt::Debug for VaultCreated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultCreated")
            .field("vault_id", &self.vault_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn keys(value: &serde_json::Value) -> Vec<&str> {
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn secret_summary_keys_and_nulls() {
        let summary = SecretSummary {
            id: "sk_abcdefghij".parse().unwrap(),
            name: "db".into(),
            field_names: None,
            project_id: "proj_abcdefghij".parse().unwrap(),
        };
        let value = serde_json::to_value(SecretListResponse {
            secrets: vec![summary.clone()],
        })
        .unwrap();
        assert_eq!(
            value,
            json!({"secrets": [{"id": "sk_abcdefghij", "name": "db", "fieldNames": null, "projectId": "proj_abcdefghij"}]})
        );
        let structured = SecretSummary {
            field_names: Some(r#"["user","pass"]"#.into()),
            ..summary
        };
        let value = serde_json::to_value(&structured).unwrap();
        assert_eq!(value["fieldNames"], json!("[\"user\",\"pass\"]"));
    }

    #[test]
    fn empty_containers_present() {
        assert_eq!(
            serde_json::to_value(SecretListResponse { secrets: vec![] }).unwrap(),
            json!({"secrets": []})
        );
        assert_eq!(
            serde_json::to_value(PollResponse::default()).unwrap(),
            json!({"changes": {}})
        );
        assert_eq!(
            serde_json::to_value(ExportResponse { secrets: vec![] }).unwrap(),
            json!({"secrets": []})
        );
        assert_eq!(
            serde_json::to_value(Items::<TokenView> { items: vec![] }).unwrap(),
            json!({"items": []})
        );
    }

    #[test]
    fn poll_statuses() {
        let mut changes = BTreeMap::new();
        changes.insert(
            "sk_aaaaaaaaaa".to_owned(),
            PollChange {
                status: PollStatus::Changed,
            },
        );
        changes.insert(
            "sk_bbbbbbbbbb".to_owned(),
            PollChange {
                status: PollStatus::Deleted,
            },
        );
        changes.insert(
            "sk_cccccccccc".to_owned(),
            PollChange {
                status: PollStatus::AccessDenied,
            },
        );
        assert_eq!(
            serde_json::to_value(PollResponse { changes }).unwrap(),
            json!({"changes": {
                "sk_aaaaaaaaaa": {"status": "changed"},
                "sk_bbbbbbbbbb": {"status": "deleted"},
                "sk_cccccccccc": {"status": "access_denied"}
            }})
        );
    }

    #[test]
    fn cli_secret_keys() {
        let secret = CliSecret {
            id: "sk_abcdefghij".parse().unwrap(),
            name: "db".into(),
            field_names: None,
            project_id: "proj_abcdefghij".parse().unwrap(),
            project_name: "infra".into(),
            application_id: None,
            application_name: None,
            kind: SecretKind::Structured,
        };
        let value = serde_json::to_value(&secret).unwrap();
        assert_eq!(
            keys(&value),
            [
                "applicationId",
                "applicationName",
                "fieldNames",
                "id",
                "name",
                "projectId",
                "projectName",
                "type"
            ]
        );
        assert_eq!(value["type"], "structured");
        let project = CliProject {
            project_id: "proj_abcdefghij".parse().unwrap(),
            project_name: "infra".into(),
            application_id: None,
            application_name: None,
        };
        let value = serde_json::to_value(&project).unwrap();
        assert_eq!(
            keys(&value),
            [
                "applicationId",
                "applicationName",
                "projectId",
                "projectName"
            ]
        );
    }

    #[test]
    fn exported_secret_keys() {
        let secret = ExportedSecret {
            id: "sk_abcdefghij".parse().unwrap(),
            name: "db".into(),
            value: "hunter2".into(),
            field_names: None,
        };
        let value = serde_json::to_value(&secret).unwrap();
        assert_eq!(keys(&value), ["fieldNames", "id", "name", "value"]);
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn machine_requests_are_lenient() {
        let poll: PollRequest = serde_json::from_str(r#"{"watch":["sk_x"],"since":5}"#).unwrap();
        assert_eq!(poll.watch, ["sk_x"]);
        let export: ExportRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(export.project_id, None);
        let register: RegisterRequest =
            serde_json::from_str(r#"{"token":"tok-plain","publicKey":"AAAA","extra":true}"#)
                .unwrap();
        assert_eq!(register.hostname, None);
        assert!(!format!("{register:?}").contains("tok-plain"));
    }

    #[test]
    fn admin_requests_reject_unknown_fields() {
        let error = serde_json::from_str::<IssueTokenRequest>(
            r#"{"name":"a","lifetime":{"hours":1},"lifetme":{}}"#,
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("unknown field `lifetme`"),
            "{error}"
        );
        let error = serde_json::from_str::<GuardrailsBody>(r#"{"ipAllowList":[]}"#).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `ipAllowList`"),
            "{error}"
        );
        let request: IssueTokenRequest =
            serde_json::from_str(r#"{"name":"a","lifetime":{"days":2},"guardrails":{"countries":["DK"],"timeWindow":null}}"#)
                .unwrap();
        assert_eq!(
            request.lifetime,
            LifetimeBody {
                months: 0,
                days: 2,
                hours: 0
            }
        );
        assert_eq!(
            request.guardrails.unwrap().countries,
            Some(vec!["DK".to_owned()])
        );
    }

    #[test]
    fn secret_value_forms() {
        let plain: UpdateSecretRequest = serde_json::from_str(r#"{"value":"s3cret"}"#).unwrap();
        assert_eq!(plain.value, SecretValueBody::Plain("s3cret".into()));
        assert!(!format!("{plain:?}").contains("s3cret"));
        let structured: UpdateSecretRequest =
            serde_json::from_str(r#"{"value":{"user":"u","pass":"p4ss"}}"#).unwrap();
        assert!(matches!(structured.value, SecretValueBody::Structured(ref f) if f.len() == 2));
        assert!(!format!("{structured:?}").contains("p4ss"));
        assert!(serde_json::from_str::<UpdateSecretRequest>(r#"{"value":{"n":1}}"#).is_err());
    }

    #[test]
    fn register_response_round_trips() {
        let response = RegisterResponse {
            machine_id: "0b6a3c1e-8f5d-4c2a-9e7b-1d2c3b4a5f60".parse().unwrap(),
            machine_name: "pentest-q3".into(),
            vault_id: "vault_abc123".parse().unwrap(),
            expires_at: "2026-03-29T01:30:00Z".parse().unwrap(),
            api_url: "https://guardrail.example.com".into(),
        };
        let text = serde_json::to_string(&response).unwrap();
        assert_eq!(
            text,
            r#"{"machineId":"0b6a3c1e-8f5d-4c2a-9e7b-1d2c3b4a5f60","machineName":"pentest-q3","vaultId":"vault_abc123","expiresAt":"2026-03-29T01:30:00Z","apiUrl":"https://guardrail.example.com"}"#
        );
        assert_eq!(
            serde_json::from_str::<RegisterResponse>(&text).unwrap(),
            response
        );
    }

    #[test]
    fn advance_clock_forms() {
        let seconds: AdvanceClockRequest = serde_json::from_str(r#"{"seconds":60}"#).unwrap();
        assert_eq!(seconds, AdvanceClockRequest::Seconds { seconds: 60 });
        let to: AdvanceClockRequest =
            serde_json::from_str(r#"{"to":"2030-01-01T00:00:00Z"}"#).unwrap();
        assert!(matches!(to, AdvanceClockRequest::To { .. }));
        assert!(serde_json::from_str::<AdvanceClockRequest>(r#"{"seconds":-1}"#).is_err());
        assert!(serde_json::from_str::<AdvanceClockRequest>(r#"{}"#).is_err());
    }

    #[test]
    fn vault_created_hides_key_in_debug() {
        let created = VaultCreated {
            vault_id: "vault_abc".parse().unwrap(),
            owner_key: "ok_secretkey".into(),
        };
        assert!(!format!("{created:?}").contains("ok_secretkey"));
        assert_eq!(
            serde_json::to_value(&created).unwrap(),
            json!({"vaultId": "vault_abc", "ownerKey": "ok_secretkey"})
        );
    }
}
