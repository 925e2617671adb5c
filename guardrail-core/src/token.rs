//! Single-use bootstrap tokens for temporary machines: issuance, listing state, the redemption
//! check and revocation.
//!
//! A token is issued with the name, description, lifetime and guardrails of the machine it will
//! register. Its plaintext ([`TokenPlaintext`]) is returned once and only its SHA-256 hash is
//! stored. Registration (see [`crate::machine::register_machine`]) needs the proof returned by
//! [`check_redemption`].
//!
//! # Edge cases
//!
//! - **Expiry is derived.** A token is expired exactly when `now >= expires_at`; the stored
//!   state stays `unused`, and [`BootstrapToken::status`] shows `expired` for listings.
//! - **Revoking an expired token** is allowed while it is unused: it can no longer register a
//!   machine either way, and the owner sees it as revoked afterwards.
//! - **Names are trimmed** before they are checked and stored.

mod error;
mod plaintext;
mod redeem;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

pub use error::{InvalidMachineText, IssueError, RevokeTokenError};
pub use plaintext::{
    InvalidTokenFormat, MAX_TOKEN_CHARS, MAX_TOKEN_RANDOM_BYTES, MIN_TOKEN_CHARS,
    MIN_TOKEN_RANDOM_BYTES, TokenPlaintext, TokenRandomnessError,
};
pub use redeem::{RedeemableToken, RejectionReason, TokenRejected, check_redemption};

use crate::audit::{Actor, AuditAction, AuditEvent, Target};
use crate::guardrail::Guardrails;
use crate::ids::{OwnerId, TokenId, VaultId};
use crate::lifetime::Lifetime;
use crate::plan::Vault;

/// A token's own lifetime when the owner does not choose one: 7 days.
pub const DEFAULT_TOKEN_LIFETIME_HOURS: u32 = 7 * 24;
/// The shortest token lifetime an owner may choose: 1 hour.
pub const MIN_TOKEN_LIFETIME_HOURS: u32 = 1;
/// The longest token lifetime an owner may choose: 30 days. A bootstrap URL is a bearer
/// credential, so it should not outlive the engagement it was made for.
pub const MAX_TOKEN_LIFETIME_HOURS: u32 = 30 * 24;
/// The maximum length of a machine name, in characters, after trimming.
pub const MAX_MACHINE_NAME_CHARS: usize = 100;
/// The maximum length of a machine description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

/// A token's stored state. "Expired" is not stored: it follows from `expires_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    Unused,
    Used,
    Revoked,
}

impl TokenState {
    /// `unused`, `used` or `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unused => "unused",
            Self::Used => "used",
            Self::Revoked => "revoked",
        }
    }
}

/// A token's state as listings show it: the stored state, or `expired` for an unused token
/// past its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenStatus {
    Unused,
    Used,
    Revoked,
    Expired,
}

impl TokenStatus {
    /// `unused`, `used`, `revoked` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unused => "unused",
            Self::Used => "used",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}

/// The SHA-256 hash of a token's plaintext, the only form in which a token is stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A hash of a 256-bit random token does not help an attacker, but there is no reason to
        // print it either.
        f.write_str("TokenHash(..)")
    }
}

/// A stored bootstrap token: what the machine it creates will be called, its lifetime and its
/// guardrails.
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrapToken {
    pub id: TokenId,
    pub vault_id: VaultId,
    pub hash: TokenHash,
    /// The name the registered machine gets.
    pub machine_name: String,
    pub description: Option<String>,
    /// The machine's lifetime, applied at registration.
    pub machine_lifetime: Lifetime,
    pub guardrails: Guardrails,
    pub created_by: OwnerId,
    pub created_at: DateTime<Utc>,
    /// The token's own expiry.
    pub expires_at: DateTime<Utc>,
    pub state: TokenState,
}

impl BootstrapToken {
    /// Whether the token's own lifetime has passed: `now >= expires_at`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }

    /// The state to show in listings at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> TokenStatus {
        match self.state {
            TokenState::Used => TokenStatus::Used,
            TokenState::Revoked => TokenStatus::Revoked,
            TokenState::Unused if self.is_expired(now) => TokenStatus::Expired,
            TokenState::Unused => TokenStatus::Unused,
        }
    }
}

/// What the owner asks for when issuing a token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRequest {
    /// The registered machine's name; trimmed, then 1 to [`MAX_MACHINE_NAME_CHARS`] characters
    /// without control characters.
    pub machine_name: String,
    /// Free-text notes, at most [`MAX_DESCRIPTION_CHARS`] characters. An empty or blank
    /// description is stored as `None`.
    pub description: Option<String>,
    /// The machine's lifetime, counted from registration.
    pub machine_lifetime: Lifetime,
    /// The token's own lifetime in hours; `None` means [`DEFAULT_TOKEN_LIFETIME_HOURS`].
    pub token_lifetime_hours: Option<u32>,
    pub guardrails: Guardrails,
}

/// A freshly issued token: the row to store, the plaintext to show once, the machine expiry
/// the lifetime would give if the machine registered now, and the audit event.
pub struct IssuedToken {
    pub token: BootstrapToken,
    pub plaintext: TokenPlaintext,
    pub machine_expires_at_preview: DateTime<Utc>,
    pub event: AuditEvent,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &self.token)
            .field("plaintext", &"<redacted>")
            .field(
                "machine_expires_at_preview",
                &self.machine_expires_at_preview,
            )
            .field("event", &self.event)
            .finish()
    }
}

/// Random bytes for a new token, drawn by the caller from a CSPRNG.
pub struct TokenRandomness<'a> {
    /// Bytes for the public [`TokenId`].
    pub id: [u8; 12],
    /// Bytes for the secret plaintext: [`MIN_TOKEN_RANDOM_BYTES`] to [`MAX_TOKEN_RANDOM_BYTES`].
    pub secret: &'a [u8],
}

/// Trims and checks a machine name.
///
/// # Errors
///
/// [`InvalidMachineText`] when the trimmed name is empty, longer than
/// [`MAX_MACHINE_NAME_CHARS`] characters, or contains a control character.
pub fn validate_machine_name(name: &str) -> Result<String, InvalidMachineText> {
    let name = name.trim();
    if name.is_empty() {
        return Err(InvalidMachineText::EmptyName);
    }
    let chars = name.chars().count();
    if chars > MAX_MACHINE_NAME_CHARS {
        return Err(InvalidMachineText::NameTooLong { chars });
    }
    if name.chars().any(char::is_control) {
        let escaped = name.chars().flat_map(char::escape_default).collect();
        return Err(InvalidMachineText::NameControlCharacter { escaped });
    }
    Ok(name.to_owned())
}

/// Checks a description; a blank one becomes `None`.
///
/// # Errors
///
/// [`InvalidMachineText`] when it is longer than [`MAX_DESCRIPTION_CHARS`] characters or
/// contains a control character other than newline, carriage return or tab.
pub fn validate_description(
    description: Option<&str>,
) -> Result<Option<String>, InvalidMachineText> {
    let Some(text) = description.filter(|text| !text.trim().is_empty()) else {
        return Ok(None);
    };
    let chars = text.chars().count();
    if chars > MAX_DESCRIPTION_CHARS {
        return Err(InvalidMachineText::DescriptionTooLong { chars });
    }
    if let Some(bad) = text
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        let escaped = bad.escape_default().collect();
        return Err(InvalidMachineText::DescriptionControlCharacter { escaped });
    }
    Ok(Some(text.to_owned()))
}

/// Issues a bootstrap token for `vault` at `now`, on behalf of `issued_by`.
///
/// # Errors
///
/// [`IssueError`] when the vault's plan is `free`, the name or description is invalid, the
/// machine lifetime is invalid at `now`, the token lifetime is outside
/// [`MIN_TOKEN_LIFETIME_HOURS`] to [`MAX_TOKEN_LIFETIME_HOURS`], or the random bytes are too few.
pub fn issue_token(
    vault: &Vault,
    issued_by: &OwnerId,
    request: TokenRequest,
    randomness: TokenRandomness<'_>,
    now: DateTime<Utc>,
) -> Result<IssuedToken, IssueError> {
    if !vault.plan.allows_temporary_machines() {
        return Err(IssueError::PlanDisallows(vault.plan));
    }
    let machine_name = validate_machine_name(&request.machine_name)?;
    let description = validate_description(request.description.as_deref())?;
    let machine_expires_at_preview = request.machine_lifetime.expires_at(now)?;

    let hours = request
        .token_lifetime_hours
        .unwrap_or(DEFAULT_TOKEN_LIFETIME_HOURS);
    if !(MIN_TOKEN_LIFETIME_HOURS..=MAX_TOKEN_LIFETIME_HOURS).contains(&hours) {
        return Err(IssueError::TokenLifetime(hours));
    }
    let expires_at = TimeDelta::try_hours(i64::from(hours))
        .and_then(|delta| now.checked_add_signed(delta))
        .ok_or(IssueError::TokenLifetime(hours))?;

    let plaintext = TokenPlaintext::from_random_bytes(randomness.secret)?;
    let token = BootstrapToken {
        id: TokenId::from_random_bytes(&randomness.id),
        vault_id: vault.id.clone(),
        hash: plaintext.hash(),
        machine_name,
        description,
        machine_lifetime: request.machine_lifetime,
        guardrails: request.guardrails,
        created_by: issued_by.clone(),
        created_at: now,
        expires_at,
        state: TokenState::Unused,
    };
    let event = AuditEvent::new(
        now,
        token.vault_id.clone(),
        Actor::Owner(issued_by.clone()),
        AuditAction::TempMachineTokenCreate,
        Target::Token(token.id.clone()),
        serde_json::json!({
            "machine_name": token.machine_name,
            "machine_lifetime": token.machine_lifetime,
            "token_expires_at": token.expires_at,
            "machine_expires_at_preview": machine_expires_at_preview,
        }),
    );
    Ok(IssuedToken {
        token,
        plaintext,
        machine_expires_at_preview,
        event,
    })
}

/// Revokes an unused token on behalf of `revoked_by`, returning the revoked row and the
/// `temp_machine_token_revoke` event.
///
/// # Errors
///
/// [`RevokeTokenError`] when the token is used or already revoked.
pub fn revoke_token(
    token: BootstrapToken,
    revoked_by: &OwnerId,
    now: DateTime<Utc>,
) -> Result<(BootstrapToken, AuditEvent), RevokeTokenError> {
    if token.state != TokenState::Unused {
        return Err(RevokeTokenError::new(token.id, token.state));
    }
    let event = AuditEvent::new(
        now,
        token.vault_id.clone(),
        Actor::Owner(revoked_by.clone()),
        AuditAction::TempMachineTokenRevoke,
        Target::Token(token.id.clone()),
        serde_json::json!({ "machine_name": token.machine_name }),
    );
    let revoked = BootstrapToken {
        state: TokenState::Revoked,
        ..token
    };
    Ok((revoked, event))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) mod fixtures;
