use chrono::TimeDelta;

use super::fixtures::{machine, public_key};
use super::*;
use crate::audit::Severity;
use crate::guardrail::Guardrails;
use crate::lifetime::Lifetime;
use crate::plan::Plan;
use crate::token::fixtures::{at, issued, owner, vault};
use crate::token::{RedeemableToken, check_redemption};

fn redeemed(lifetime: Lifetime, now: DateTime<Utc>) -> RedeemableToken {
    let (token, plaintext) = issued(lifetime, now);
    let vault_id = token.vault_id.clone();
    check_redemption(Some(token), &plaintext, &vault_id, now).unwrap()
}

#[test]
fn registration_makes_pending_machine() {
    let now = at(2025, 1, 31, 9);
    let proof = redeemed(Lifetime::new(1, 0, 0), now);
    let token_before = proof.token().clone();
    let registration =
        register_machine(proof, public_key(), &vault(Plan::Pro, 3), 2, [9; 16], now).unwrap();
    let machine = &registration.machine;
    assert_eq!(machine.state, MachineState::Pending);
    assert_eq!(machine.name, "pentest-q3");
    assert_eq!(machine.description.as_deref(), Some("external pen test"));
    assert_eq!(machine.expires_at, at(2025, 2, 28, 9));
    assert_eq!(machine.created_at, now);
    assert_eq!(machine.token_id, token_before.id);
    assert_eq!(machine.id, MachineId::from_random_bytes([9; 16]));
    assert_eq!(registration.token.state, crate::token::TokenState::Used);

    let event = &registration.event;
    assert_eq!(event.action, AuditAction::TempMachineCreate);
    assert_eq!(event.severity(), Severity::Low);
    assert_eq!(event.actor, Actor::Machine(machine.id));
    assert_eq!(event.target, Target::Machine(machine.id));
    assert_eq!(event.detail["name"], "pentest-q3");
    assert_eq!(event.detail["expires_at"], "2025-02-28T09:00:00Z");
}

#[test]
fn expiry_counts_from_registration() {
    let issued_at = at(2025, 1, 1, 0);
    let registered_at = at(2025, 1, 5, 6);
    let proof = redeemed(Lifetime::new(0, 2, 3), issued_at);
    let registration = register_machine(
        proof,
        public_key(),
        &vault(Plan::Pro, 3),
        0,
        [9; 16],
        registered_at,
    )
    .unwrap();
    assert_eq!(registration.machine.expires_at, at(2025, 1, 7, 9));
}

#[test]
fn lifetime_clamped_to_cap_at_registration() {
    // Valid on 15 January (ends 15 January next year), too long from 30 March (11 months gives
    // 28 February, then 31 days gives 31 March, past the 30 March cap).
    let proof = redeemed(Lifetime::new(11, 31, 0), at(2024, 1, 15, 0));
    let registered_at = at(2024, 3, 30, 0);
    let registration = register_machine(
        proof,
        public_key(),
        &vault(Plan::Pro, 3),
        0,
        [9; 16],
        registered_at,
    )
    .unwrap();
    assert_eq!(registration.machine.expires_at, at(2025, 3, 30, 0));
}

#[test]
fn free_plan_rejects_registration() {
    let now = at(2025, 1, 1, 0);
    let proof = redeemed(Lifetime::new(1, 0, 0), now);
    let err = register_machine(
        proof.clone(),
        public_key(),
        &vault(Plan::Free, 3),
        0,
        [9; 16],
        now,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the `free` plan does not allow temporary machines: move the vault to pro or enterprise, \
         then run the bootstrap command again"
    );
    // The rejected attempt changed nothing: the same unused token registers once a plan allows it.
    assert_eq!(proof.token().state, crate::token::TokenState::Unused);
    assert!(register_machine(proof, public_key(), &vault(Plan::Pro, 3), 0, [9; 16], now).is_ok());
}

#[test]
fn machine_limit_rejects_registration() {
    let now = at(2025, 1, 1, 0);
    let proof = redeemed(Lifetime::new(1, 0, 0), now);
    let err = register_machine(
        proof.clone(),
        public_key(),
        &vault(Plan::Enterprise, 3),
        3,
        [9; 16],
        now,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "vault `vault_main` has reached its limit of 3 machines: remove a machine or raise the \
         limit, then run the bootstrap command again"
    );
    assert!(
        register_machine(
            proof,
            public_key(),
            &vault(Plan::Enterprise, 3),
            2,
            [9; 16],
            now
        )
        .is_ok()
    );
}

#[test]
fn registration_rejects_other_vault() {
    let now = at(2025, 1, 1, 0);
    let proof = redeemed(Lifetime::new(1, 0, 0), now);
    let mut other = vault(Plan::Pro, 3);
    other.id = "vault_other".parse().unwrap();
    let err = register_machine(proof, public_key(), &other, 0, [9; 16], now).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the token belongs to vault `vault_main`, not to vault `vault_other`"
    );
}

#[test]
fn approve_then_disable_then_enable() {
    let now = at(2025, 1, 1, 0);
    let pending = machine(Lifetime::new(1, 0, 0), now, MachineState::Pending);
    let (active, event) = pending.approve(&owner(), now).unwrap();
    assert_eq!(active.state, MachineState::Active);
    assert_eq!(event.action, AuditAction::MachineApprove);
    assert_eq!(event.actor, Actor::Owner(owner()));
    assert_eq!(event.target, Target::Machine(active.id));
    assert_eq!(event.detail, serde_json::json!({"name": "pentest-q3"}));

    let (disabled, event) = active.disable(&owner(), now).unwrap();
    assert_eq!(disabled.state, MachineState::Disabled);
    assert_eq!(event.action, AuditAction::MachineDisable);
    assert_eq!(event.severity(), Severity::Medium);

    let (enabled, event) = disabled.enable(&owner(), now).unwrap();
    assert_eq!(enabled.state, MachineState::Active);
    assert_eq!(event.action, AuditAction::MachineEnable);
}

#[test]
fn illegal_transitions_name_state_and_action() {
    let now = at(2025, 1, 1, 0);
    let make = |state| machine(Lifetime::new(1, 0, 0), now, state);
    let id = make(MachineState::Active).id;

    let err = make(MachineState::Active)
        .approve(&owner(), now)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot approve machine `{id}` while it is active: only a pending machine can be approved"
        )
    );
    assert_eq!(err.state(), MachineState::Active);
    assert_eq!(err.action(), MachineAction::Approve);

    let err = make(MachineState::Disabled)
        .deny(&owner(), now)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot deny machine `{id}` while it is disabled: only a pending machine can be denied"
        )
    );
    let err = make(MachineState::Pending)
        .enable(&owner(), now)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot enable machine `{id}` while it is pending: only a disabled machine can be enabled"
        )
    );
    let err = make(MachineState::Expired)
        .disable(&owner(), now)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot disable machine `{id}` while it is expired: only an active machine can be disabled"
        )
    );
    for state in [
        MachineState::Active,
        MachineState::Disabled,
        MachineState::Expired,
    ] {
        assert!(make(state).approve(&owner(), now).is_err(), "{state:?}");
        assert!(make(state).deny(&owner(), now).is_err(), "{state:?}");
    }
    assert!(make(MachineState::Expired).enable(&owner(), now).is_err());
    assert!(make(MachineState::Disabled).disable(&owner(), now).is_err());
}

#[test]
fn deny_deletes_pending() {
    let now = at(2025, 1, 1, 0);
    let pending = machine(Lifetime::new(1, 0, 0), now, MachineState::Pending);
    let id = pending.id;
    let (gone, event) = pending.deny(&owner(), now).unwrap();
    assert_eq!(gone.machine_id(), id);
    assert_eq!(gone.action(), MachineAction::Deny);
    assert_eq!(gone.name(), "pentest-q3");
    assert_eq!(event.action, AuditAction::MachineDeny);
    assert_eq!(event.severity(), Severity::Low);
}

#[test]
fn revoke_works_from_every_state() {
    let now = at(2025, 1, 1, 0);
    for state in [
        MachineState::Pending,
        MachineState::Active,
        MachineState::Disabled,
        MachineState::Expired,
    ] {
        let m = machine(Lifetime::new(1, 0, 0), now, state);
        let (gone, event) = m.revoke(&owner(), now);
        assert_eq!(gone.action(), MachineAction::Revoke);
        assert_eq!(event.action, AuditAction::MachineRevoke);
        assert_eq!(event.detail["state"], state.as_str());
        assert_eq!(event.actor, Actor::Owner(owner()));
    }
}

#[test]
fn expire_once_when_due() {
    let now = at(2025, 1, 1, 0);
    let active = machine(Lifetime::new(0, 0, 5), now, MachineState::Active);
    let id = active.id;
    let err = active.clone().expire(at(2025, 1, 1, 4)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot expire machine `{id}` before `2025-01-01 05:00:00 UTC`")
    );

    let (expired, event) = active.expire(at(2025, 1, 1, 5)).unwrap();
    assert_eq!(expired.state, MachineState::Expired);
    assert_eq!(event.action, AuditAction::TempMachineExpired);
    assert_eq!(event.severity(), Severity::Info);
    assert_eq!(event.actor, Actor::System);
    assert_eq!(event.detail["expires_at"], "2025-01-01T05:00:00Z");

    let err = expired.expire(at(2025, 1, 2, 0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot expire machine `{id}` while it is expired: only a pending, active or \
             disabled machine can be expired"
        )
    );
}

#[test]
fn status_reads_clock() {
    let now = at(2025, 1, 1, 0);
    let active = machine(Lifetime::new(0, 0, 5), now, MachineState::Active);
    assert_eq!(active.status(now), MachineState::Active);
    assert!(!active.is_expired(at(2025, 1, 1, 4)));
    assert!(active.is_expired(at(2025, 1, 1, 5)));
    assert_eq!(active.status(at(2025, 1, 1, 5)), MachineState::Expired);
}

#[test]
fn purge_thirty_days_after_expiry() {
    let now = at(2025, 1, 1, 0);
    let expired = machine(Lifetime::new(0, 1, 0), now, MachineState::Expired);
    let id = expired.id;
    assert_eq!(expired.purge_due_at(), at(2025, 2, 1, 0));
    let just_before = at(2025, 2, 1, 0) - TimeDelta::seconds(1);
    let err = expired.clone().purge(just_before).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot purge machine `{id}` before `2025-02-01 00:00:00 UTC`")
    );
    let gone = expired.purge(at(2025, 2, 1, 0)).unwrap();
    assert_eq!(gone.action(), MachineAction::Purge);

    let active = machine(Lifetime::new(0, 1, 0), now, MachineState::Active);
    let err = active.purge(at(2026, 1, 1, 0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot purge machine `{id}` while it is active: only an expired machine can be purged"
        )
    );
}

#[test]
fn guardrails_update_records_before_and_after() {
    let now = at(2025, 1, 1, 0);
    let active = machine(Lifetime::new(1, 0, 0), now, MachineState::Active);
    let before = serde_json::to_value(&active.guardrails).unwrap();
    // `Guardrails` is opaque here, so the test changes nothing and checks the detail's shape.
    let after_value = Guardrails::default();
    let (updated, event) = active
        .update_guardrails(after_value.clone(), &owner(), now)
        .unwrap();
    assert_eq!(updated.guardrails, after_value);
    assert_eq!(event.action, AuditAction::TempMachineGuardrailsUpdate);
    assert_eq!(event.severity(), Severity::Medium);
    assert_eq!(event.actor, Actor::Owner(owner()));
    assert_eq!(event.detail["before"], before);
    assert_eq!(
        event.detail["after"],
        serde_json::to_value(&after_value).unwrap()
    );
    assert_eq!(event.detail["name"], "pentest-q3");
}
