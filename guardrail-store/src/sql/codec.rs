//! Conversions between the core's types and SQL rows.

use std::net::IpAddr;
use std::str::FromStr;

use guardrail_core::audit::{Actor, AuditAction, AuditEvent};
use guardrail_core::extension::Extension;
use guardrail_core::ids::{MachineId, OwnerId, ProjectId, SecretId, TokenId, VaultId};
use guardrail_core::lifetime::Lifetime;
use guardrail_core::machine::Machine;
use guardrail_core::plan::{Owner, Vault};
use guardrail_core::token::{BootstrapToken, TokenHash};

use super::Row;
use crate::codec::{
    decode_public_key, machine_state_from_str, machine_state_str, plan_from_str, plan_str,
    token_state_from_str, token_state_str,
};
use crate::error::StoreError;
use crate::model::{
    AuditId, AuditRecord, Project, SecretRecord, SecretValueType, WebhookId, WebhookSubscription,
};

pub(crate) fn parse<T: FromStr>(text: &str, what: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|error| StoreError::backend(format!("stored {what} `{text}` is invalid: {error}")))
}

pub(crate) fn to_u32(value: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(value)
        .map_err(|_| StoreError::backend(format!("stored {what} `{value}` is out of range")))
}

pub(crate) fn hash_bytes(bytes: Vec<u8>, what: &str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| StoreError::backend(format!("stored {what} is not 32 bytes")))
}

pub(crate) const OWNER_COLUMNS: &str = "id, active";

pub(crate) fn owner(row: &Row) -> Result<Owner, StoreError> {
    Ok(Owner {
        id: parse::<OwnerId>(&row.text(0)?, "owner id")?,
        active: row.bool(1)?,
    })
}

pub(crate) const VAULT_COLUMNS: &str = "id, owner_id, name, plan, machine_limit, ip_allowlist";

pub(crate) fn vault(row: &Row) -> Result<Vault, StoreError> {
    let ip_allowlist = match row.opt_text(5)? {
        Some(json) => Some(serde_json::from_str(&json)?),
        None => None,
    };
    Ok(Vault {
        id: parse::<VaultId>(&row.text(0)?, "vault id")?,
        owner_id: parse::<OwnerId>(&row.text(1)?, "owner id")?,
        name: row.text(2)?,
        plan: plan_from_str(&row.text(3)?)?,
        machine_limit: to_u32(row.int(4)?, "machine limit")?,
        ip_allowlist,
    })
}

pub(crate) fn vault_params(vault: &Vault) -> Result<Vec<super::Value>, StoreError> {
    let allowlist = match &vault.ip_allowlist {
        Some(list) => Some(serde_json::to_string(list)?),
        None => None,
    };
    Ok(super::params![
        vault.id.as_str(),
        vault.owner_id.as_str(),
        vault.name.as_str(),
        plan_str(vault.plan),
        vault.machine_limit,
        allowlist,
    ]
    .to_vec())
}

pub(crate) const TOKEN_COLUMNS: &str = "id, vault_id, hash, machine_name, description, \
     lifetime_months, lifetime_days, lifetime_hours, guardrails, created_by, created_at, \
     expires_at, state";

pub(crate) fn token(row: &Row) -> Result<BootstrapToken, StoreError> {
    Ok(BootstrapToken {
        id: parse::<TokenId>(&row.text(0)?, "token id")?,
        vault_id: parse::<VaultId>(&row.text(1)?, "vault id")?,
        hash: TokenHash(hash_bytes(row.bytes(2)?, "token hash")?),
        machine_name: row.text(3)?,
        description: row.opt_text(4)?,
        machine_lifetime: Lifetime {
            months: to_u32(row.int(5)?, "lifetime months")?,
            days: to_u32(row.int(6)?, "lifetime days")?,
            hours: to_u32(row.int(7)?, "lifetime hours")?,
        },
        guardrails: serde_json::from_str(&row.text(8)?)?,
        created_by: parse::<OwnerId>(&row.text(9)?, "owner id")?,
        created_at: row.instant(10)?,
        expires_at: row.instant(11)?,
        state: token_state_from_str(&row.text(12)?)?,
    })
}

pub(crate) fn token_params(token: &BootstrapToken) -> Result<Vec<super::Value>, StoreError> {
    Ok(super::params![
        token.id.as_str(),
        token.vault_id.as_str(),
        &token.hash.0[..],
        token.machine_name.as_str(),
        token.description.clone(),
        token.machine_lifetime.months,
        token.machine_lifetime.days,
        token.machine_lifetime.hours,
        serde_json::to_string(&token.guardrails)?,
        token.created_by.as_str(),
        token.created_at,
        token.expires_at,
        token_state_str(token.state),
    ]
    .to_vec())
}

pub(crate) const MACHINE_COLUMNS: &str = "id, vault_id, name, description, public_key, state, \
     created_at, expires_at, guardrails, token_id";

pub(crate) fn machine(row: &Row) -> Result<Machine, StoreError> {
    Ok(Machine {
        id: parse::<MachineId>(&row.text(0)?, "machine id")?,
        vault_id: parse::<VaultId>(&row.text(1)?, "vault id")?,
        name: row.text(2)?,
        description: row.opt_text(3)?,
        public_key: decode_public_key(&hash_bytes(row.bytes(4)?, "public key")?)?,
        state: machine_state_from_str(&row.text(5)?)?,
        created_at: row.instant(6)?,
        expires_at: row.instant(7)?,
        guardrails: serde_json::from_str(&row.text(8)?)?,
        token_id: parse::<TokenId>(&row.text(9)?, "token id")?,
    })
}

pub(crate) fn machine_params(machine: &Machine) -> Result<Vec<super::Value>, StoreError> {
    Ok(super::params![
        machine.id.to_string(),
        machine.vault_id.as_str(),
        machine.name.as_str(),
        machine.description.clone(),
        &machine.public_key.to_bytes()[..],
        machine_state_str(machine.state),
        machine.created_at,
        machine.expires_at,
        serde_json::to_string(&machine.guardrails)?,
        machine.token_id.as_str(),
    ]
    .to_vec())
}

pub(crate) const EXTENSION_COLUMNS: &str =
    "previous_expires_at, new_expires_at, applied_by, applied_at, reason, reverted";

pub(crate) fn extension(row: &Row) -> Result<Extension, StoreError> {
    Ok(Extension {
        previous_expires_at: row.instant(0)?,
        new_expires_at: row.instant(1)?,
        applied_by: parse::<OwnerId>(&row.text(2)?, "owner id")?,
        applied_at: row.instant(3)?,
        reason: row.opt_text(4)?,
        reverted: row.bool(5)?,
    })
}

pub(crate) const AUDIT_COLUMNS: &str = "id, at, vault_id, actor_kind, actor_id, action, \
     target_kind, target_id, source_ip, detail, count";

pub(crate) fn audit(row: &Row) -> Result<AuditRecord, StoreError> {
    let actor_id = row.opt_text(4)?;
    let actor = match (row.text(3)?.as_str(), actor_id) {
        ("owner", Some(id)) => Actor::Owner(parse(&id, "owner id")?),
        ("machine", Some(id)) => Actor::Machine(parse(&id, "machine id")?),
        ("system", None) => Actor::System,
        (kind, _) => {
            return Err(StoreError::backend(format!(
                "stored actor kind `{kind}` is invalid or lacks its id"
            )));
        }
    };
    let target = crate::codec::target_from_parts(&row.text(6)?, &row.text(7)?)?;
    let source_ip = match row.opt_text(8)? {
        Some(text) => Some(parse::<IpAddr>(&text, "source address")?),
        None => None,
    };
    let count = to_u32(row.int(10)?, "audit count")?;
    let mut detail: serde_json::Value = serde_json::from_str(&row.text(9)?)?;
    crate::codec::set_detail_count(&mut detail, count);
    Ok(AuditRecord {
        id: AuditId(row.int(0)?),
        event: AuditEvent {
            at: row.instant(1)?,
            vault_id: parse(&row.text(2)?, "vault id")?,
            actor,
            action: parse::<AuditAction>(&row.text(5)?, "audit action")?,
            target,
            source_ip,
            detail,
        },
        count,
    })
}

pub(crate) fn audit_params(event: &AuditEvent) -> Result<Vec<super::Value>, StoreError> {
    let (target_kind, target_id) = crate::codec::target_parts(&event.target);
    Ok(super::params![
        event.at,
        event.vault_id.as_str(),
        event.actor.kind(),
        event.actor.id(),
        event.action.as_str(),
        event.severity().as_str(),
        target_kind,
        target_id,
        event.source_ip.map(|ip| ip.to_string()),
        serde_json::to_string(&event.detail)?,
    ]
    .to_vec())
}

pub(crate) const PROJECT_COLUMNS: &str = "id, vault_id, name, created_at";

pub(crate) fn project(row: &Row) -> Result<Project, StoreError> {
    Ok(Project {
        id: parse::<ProjectId>(&row.text(0)?, "project id")?,
        vault_id: parse(&row.text(1)?, "vault id")?,
        name: row.text(2)?,
        created_at: row.instant(3)?,
    })
}

pub(crate) const SECRET_COLUMNS: &str = "id, vault_id, project_id, name, value_type, \
     field_names, ciphertext, version, created_at, updated_at";

pub(crate) fn secret(row: &Row) -> Result<SecretRecord, StoreError> {
    let value_type = match row.text(4)?.as_str() {
        "secret" => SecretValueType::Secret,
        "structured" => SecretValueType::Structured,
        other => {
            return Err(StoreError::backend(format!(
                "stored secret type `{other}` is invalid"
            )));
        }
    };
    let field_names = match row.opt_text(5)? {
        Some(json) => Some(serde_json::from_str(&json)?),
        None => None,
    };
    Ok(SecretRecord {
        id: parse::<SecretId>(&row.text(0)?, "secret id")?,
        vault_id: parse(&row.text(1)?, "vault id")?,
        project_id: parse(&row.text(2)?, "project id")?,
        name: row.text(3)?,
        value_type,
        field_names,
        ciphertext: row.bytes(6)?,
        version: u64::try_from(row.int(7)?)
            .map_err(|_| StoreError::backend("stored secret version is negative"))?,
        created_at: row.instant(8)?,
        updated_at: row.instant(9)?,
    })
}

pub(crate) const WEBHOOK_COLUMNS: &str = "id, vault_id, url, actions, secret, created_at";

pub(crate) fn webhook(row: &Row) -> Result<WebhookSubscription, StoreError> {
    Ok(WebhookSubscription {
        id: WebhookId(row.int(0)?),
        vault_id: parse(&row.text(1)?, "vault id")?,
        url: row.text(2)?,
        actions: serde_json::from_str(&row.text(3)?)?,
        secret: row.bytes(4)?,
        created_at: row.instant(5)?,
    })
}
