//! Builders for vaults, tokens and machines, made with the core's own functions.

use chrono::{DateTime, TimeZone, Utc};
use guardrail_core::audit::{Actor, AuditAction, AuditEvent, Target};
use guardrail_core::guardrail::Guardrails;
use guardrail_core::ids::{MachineId, OwnerId, VaultId};
use guardrail_core::lifetime::Lifetime;
use guardrail_core::machine::{Machine, MachinePublicKey};
use guardrail_core::plan::{Owner, Plan, Vault};
use guardrail_core::token::{IssuedToken, TokenRandomness, TokenRequest, issue_token};
use guardrail_store::{OwnerKeyHash, Store};

/// 1 March 2025, 12:00 UTC: the suite's "now".
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
}

pub fn hours(n: i64) -> chrono::TimeDelta {
    chrono::TimeDelta::hours(n)
}

pub fn owner_id(tag: u8) -> OwnerId {
    format!("owner_o{tag}").parse().unwrap()
}

pub fn vault_id(tag: u8) -> VaultId {
    format!("vault_v{tag}").parse().unwrap()
}

/// Creates owner `tag` with vault `tag` on `plan` with room for `limit` machines.
pub fn create_vault(store: &dyn Store, tag: u8, plan: Plan, limit: u32) -> Vault {
    let owner = Owner {
        id: owner_id(tag),
        active: true,
    };
    let vault = Vault {
        id: vault_id(tag),
        owner_id: owner.id.clone(),
        name: format!("vault {tag}"),
        plan,
        machine_limit: limit,
        ip_allowlist: None,
    };
    store
        .create_vault_with_owner(&owner, &OwnerKeyHash([tag; 32]), &vault, t0())
        .unwrap();
    vault
}

/// Issues a token for `vault` (machine lifetime `hours` hours) and stores it with its event.
pub fn issue(store: &dyn Store, vault: &Vault, seed: u8, lifetime_hours: u32) -> IssuedToken {
    let secret = [seed; 32];
    let issued = issue_token(
        vault,
        &vault.owner_id,
        TokenRequest {
            machine_name: format!("machine-{seed}"),
            description: None,
            machine_lifetime: Lifetime {
                months: 0,
                days: 0,
                hours: lifetime_hours,
            },
            token_lifetime_hours: None,
            guardrails: Guardrails::default(),
        },
        TokenRandomness {
            id: [seed; 12],
            secret: &secret,
        },
        t0(),
    )
    .unwrap();
    let record = store.insert_token(&issued.token, &issued.event).unwrap();
    assert_eq!(record.event, issued.event);
    let query = guardrail_store::AuditQuery {
        before: Some(guardrail_store::AuditId(record.id.0 + 1)),
        ..guardrail_store::AuditQuery::newest(vault.id.clone(), 1)
    };
    assert_eq!(store.query_audit(&query).unwrap(), vec![record]);
    issued
}

/// Derives a valid Ed25519 public key from `seed`.
pub fn public_key(seed: u8) -> MachinePublicKey {
    let signing = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    MachinePublicKey::from_bytes(&signing.verifying_key().to_bytes()).unwrap()
}

/// Issues a token and registers a machine with it at `t0()`.
pub fn register(store: &dyn Store, vault: &Vault, seed: u8, lifetime_hours: u32) -> Machine {
    let issued = issue(store, vault, seed, lifetime_hours);
    store
        .register_machine(
            &vault.id,
            &issued.plaintext,
            &public_key(seed),
            [seed; 16],
            t0(),
        )
        .unwrap()
        .value
}

/// Makes an audit event of `action` on `machine` at `at`.
pub fn event(
    vault: &VaultId,
    machine: MachineId,
    action: AuditAction,
    at: DateTime<Utc>,
) -> AuditEvent {
    AuditEvent::new(
        at,
        vault.clone(),
        Actor::Machine(machine),
        action,
        Target::Machine(machine),
        serde_json::json!({ "axis": "ip", "reason": "not allowed", "count": 1 }),
    )
}

pub fn machine_id(seed: u8) -> MachineId {
    MachineId::from_random_bytes([seed; 16])
}
