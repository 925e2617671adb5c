//! Errors of token issuance and revocation.

use super::plaintext::TokenRandomnessError;
use super::{
    MAX_DESCRIPTION_CHARS, MAX_MACHINE_NAME_CHARS, MAX_TOKEN_LIFETIME_HOURS,
    MIN_TOKEN_LIFETIME_HOURS, TokenState,
};
use crate::ids::TokenId;
use crate::lifetime::LifetimeError;
use crate::plan::Plan;

/// A machine name or description that cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidMachineText {
    /// The name is empty or only whitespace.
    #[error("invalid machine name: it is empty, enter a name such as `pentest-q3`")]
    EmptyName,
    /// The name is longer than [`MAX_MACHINE_NAME_CHARS`] characters after trimming.
    #[error(
        "invalid machine name: it has {chars} characters, the maximum is {MAX_MACHINE_NAME_CHARS}"
    )]
    NameTooLong { chars: usize },
    /// The name contains a control character such as a newline.
    #[error("invalid machine name `{escaped}`: it contains a control character")]
    NameControlCharacter { escaped: String },
    /// The description is longer than [`MAX_DESCRIPTION_CHARS`] characters.
    #[error(
        "invalid machine description: it has {chars} characters, the maximum is \
         {MAX_DESCRIPTION_CHARS}"
    )]
    DescriptionTooLong { chars: usize },
    /// The description contains a control character other than newline, carriage return or tab.
    #[error("invalid machine description: it contains the control character `{escaped}`")]
    DescriptionControlCharacter { escaped: String },
}

/// A token that cannot be issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The vault's plan does not allow temporary machines.
    #[error(
        "the `{0}` plan does not allow temporary machines: move the vault to pro or enterprise"
    )]
    PlanDisallows(Plan),
    /// The machine name or description is invalid.
    #[error(transparent)]
    MachineText(#[from] InvalidMachineText),
    /// The machine lifetime is invalid at the issuance instant.
    #[error(transparent)]
    Lifetime(#[from] LifetimeError),
    /// The token's own lifetime is outside the allowed bounds.
    #[error(
        "token lifetime `{0}` hours is out of range: choose {MIN_TOKEN_LIFETIME_HOURS} to \
         {MAX_TOKEN_LIFETIME_HOURS} hours (30 days)"
    )]
    TokenLifetime(u32),
    /// The caller's random bytes are unusable.
    #[error(transparent)]
    Randomness(#[from] TokenRandomnessError),
}

/// A token that cannot be revoked because it is no longer unused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot revoke token `{token_id}`: it is already {}{}", .state.as_str(), hint(*.state))]
pub struct RevokeTokenError {
    token_id: TokenId,
    state: TokenState,
}

fn hint(state: TokenState) -> &'static str {
    match state {
        TokenState::Used => ", revoke the machine it registered instead",
        TokenState::Unused | TokenState::Revoked => "",
    }
}

impl RevokeTokenError {
    pub(super) fn new(token_id: TokenId, state: TokenState) -> Self {
        Self { token_id, state }
    }

    /// The token's state, `used` or `revoked`.
    pub fn state(&self) -> TokenState {
        self.state
    }
}
