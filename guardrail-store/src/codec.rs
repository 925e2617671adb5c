//! Text forms of the core's enums as every backend stores them.

use guardrail_core::audit::Target;
use guardrail_core::machine::{MachinePublicKey, MachineState};
use guardrail_core::plan::Plan;
use guardrail_core::token::TokenState;

use crate::error::StoreError;
use crate::sql::codec::parse;

pub(crate) fn plan_str(plan: Plan) -> &'static str {
    match plan {
        Plan::Free => "free",
        Plan::Pro => "pro",
        Plan::Enterprise => "enterprise",
    }
}

pub(crate) fn plan_from_str(text: &str) -> Result<Plan, StoreError> {
    match text {
        "free" => Ok(Plan::Free),
        "pro" => Ok(Plan::Pro),
        "enterprise" => Ok(Plan::Enterprise),
        other => Err(StoreError::backend(format!(
            "stored plan `{other}` is invalid"
        ))),
    }
}

pub(crate) fn token_state_str(state: TokenState) -> &'static str {
    match state {
        TokenState::Unused => "unused",
        TokenState::Used => "used",
        TokenState::Revoked => "revoked",
    }
}

pub(crate) fn token_state_from_str(text: &str) -> Result<TokenState, StoreError> {
    match text {
        "unused" => Ok(TokenState::Unused),
        "used" => Ok(TokenState::Used),
        "revoked" => Ok(TokenState::Revoked),
        other => Err(StoreError::backend(format!(
            "stored token state `{other}` is invalid"
        ))),
    }
}

pub(crate) fn machine_state_str(state: MachineState) -> &'static str {
    match state {
        MachineState::Pending => "pending",
        MachineState::Active => "active",
        MachineState::Disabled => "disabled",
        MachineState::Expired => "expired",
    }
}

pub(crate) fn machine_state_from_str(text: &str) -> Result<MachineState, StoreError> {
    match text {
        "pending" => Ok(MachineState::Pending),
        "active" => Ok(MachineState::Active),
        "disabled" => Ok(MachineState::Disabled),
        "expired" => Ok(MachineState::Expired),
        other => Err(StoreError::backend(format!(
            "stored machine state `{other}` is invalid"
        ))),
    }
}

/// Decodes a stored raw Ed25519 key. Registration already checked it, so a failure means the
/// row was changed outside the store.
pub(crate) fn decode_public_key(bytes: &[u8; 32]) -> Result<MachinePublicKey, StoreError> {
    MachinePublicKey::from_bytes(bytes)
        .map_err(|error| StoreError::backend(format!("stored public key is invalid: {error}")))
}

pub(crate) fn target_parts(target: &Target) -> (&'static str, String) {
    match target {
        Target::Vault(id) => ("vault", id.to_string()),
        Target::Machine(id) => ("machine", id.to_string()),
        Target::Token(id) => ("token", id.to_string()),
        Target::Secret(id) => ("secret", id.to_string()),
    }
}

pub(crate) fn target_from_parts(kind: &str, id: &str) -> Result<Target, StoreError> {
    match kind {
        "vault" => Ok(Target::Vault(parse(id, "vault id")?)),
        "machine" => Ok(Target::Machine(parse(id, "machine id")?)),
        "token" => Ok(Target::Token(parse(id, "token id")?)),
        "secret" => Ok(Target::Secret(parse(id, "secret id")?)),
        other => Err(StoreError::backend(format!(
            "stored audit target kind `{other}` is invalid"
        ))),
    }
}

/// Keeps `detail.count` of a coalesced entry equal to the stored count. Only details that
/// already carry a `count` key are changed.
pub(crate) fn set_detail_count(detail: &mut serde_json::Value, count: u32) {
    if let Some(object) = detail.as_object_mut()
        && object.contains_key("count")
    {
        object.insert("count".to_owned(), serde_json::Value::from(count));
    }
}
