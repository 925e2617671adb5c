//! The redemption check at registration: does a presented token open this vault?
//!
//! The store looks the token up by the hash of the presented plaintext and passes the row it
//! found (or `None`) to [`check_redemption`]. Every failure is one [`TokenRejected`] with one
//! generic message, so the client cannot tell an unknown token from a used one or from a right
//! token under the wrong vault id. The precise reason stays available for the audit log through
//! [`TokenRejected::reason`].
//!
//! # Edge cases
//!
//! - **Wrong vault id.** The hash and the vault id are both compared in constant time before
//!   either result is used, and a wrong vault id returns the same error as an unknown token.
//! - **Used and expired.** A used token past its own expiry is reported as `used`: the stored
//!   state comes before the derived expiry.

use chrono::{DateTime, Utc};
use subtle::{Choice, ConstantTimeEq};

use super::{BootstrapToken, TokenPlaintext, TokenState};
use crate::ids::VaultId;

/// Why a token was rejected. Meant for the audit log and server logs only, never for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectionReason {
    /// The presented text is not a well-formed token.
    Malformed,
    /// No stored token has the presented hash.
    Unknown,
    /// The token exists but belongs to another vault than the one in the URL.
    WrongVault,
    /// The token already registered a machine.
    Used,
    /// The owner revoked the token.
    Revoked,
    /// The token's own lifetime has passed.
    Expired,
}

impl RejectionReason {
    /// `malformed`, `unknown`, `wrong_vault`, `used`, `revoked` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Unknown => "unknown",
            Self::WrongVault => "wrong_vault",
            Self::Used => "used",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}

/// A bootstrap token that cannot register a machine. The message is the same for every reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid bootstrap token")]
pub struct TokenRejected {
    reason: RejectionReason,
}

impl TokenRejected {
    /// The precise reason, for the audit log and server logs only.
    pub fn reason(&self) -> RejectionReason {
        self.reason
    }
}

impl From<super::InvalidTokenFormat> for TokenRejected {
    fn from(_: super::InvalidTokenFormat) -> Self {
        Self {
            reason: RejectionReason::Malformed,
        }
    }
}

/// Proof that a token passed [`check_redemption`]: the only way to call registration. It contains
/// the stored token, still unused.
#[derive(Debug, Clone, PartialEq)]
pub struct RedeemableToken {
    token: BootstrapToken,
}

impl RedeemableToken {
    /// The stored token, still unused.
    pub fn token(&self) -> &BootstrapToken {
        &self.token
    }

    pub(crate) fn into_token(self) -> BootstrapToken {
        self.token
    }
}

/// Checks that `presented` may register a machine in the vault `url_vault_id` at `now`.
///
/// `stored` is the row the store found by [`TokenPlaintext::hash`], or `None` when it found none.
/// The hash is compared again here, in constant time, so a store lookup that is not exact
/// cannot let a different token through.
///
/// # Errors
///
/// [`TokenRejected`] when the token is unknown, belongs to another vault, is used, revoked or
/// expired (`now >= expires_at`).
pub fn check_redemption(
    stored: Option<BootstrapToken>,
    presented: &TokenPlaintext,
    url_vault_id: &VaultId,
    now: DateTime<Utc>,
) -> Result<RedeemableToken, TokenRejected> {
    let reject = |reason| Err(TokenRejected { reason });
    let Some(token) = stored else {
        return reject(RejectionReason::Unknown);
    };

    // Compute both comparisons before branching on either.
    let hash_matches: Choice = presented.hash().0.ct_eq(&token.hash.0);
    let vault_matches: Choice = token
        .vault_id
        .as_str()
        .as_bytes()
        .ct_eq(url_vault_id.as_str().as_bytes());

    if !bool::from(hash_matches) {
        return reject(RejectionReason::Unknown);
    }
    if !bool::from(vault_matches) {
        return reject(RejectionReason::WrongVault);
    }
    match token.state {
        TokenState::Revoked => return reject(RejectionReason::Revoked),
        TokenState::Used => return reject(RejectionReason::Used),
        TokenState::Unused => {}
    }
    if token.is_expired(now) {
        return reject(RejectionReason::Expired);
    }
    Ok(RedeemableToken { token })
}
