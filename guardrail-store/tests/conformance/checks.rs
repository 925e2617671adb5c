//! The checks. Each takes a fresh, empty store.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Barrier;
use std::time::Duration;

use guardrail_core::audit::{AuditAction, Severity};
use guardrail_core::extension::{ExtendError, ExtendRequest, RevertError};
use guardrail_core::guardrail::Guardrails;
use guardrail_core::lockout::{FailureCounter, LockoutKey};
use guardrail_core::machine::{MachineState, RegistrationError, TransitionError};
use guardrail_core::plan::Plan;
use guardrail_core::request::NonceOutcome;
use guardrail_core::token::{
    RejectionReason, RevokeTokenError, TokenPlaintext, TokenRejected, TokenState,
};
use guardrail_store::{
    AuditId, AuditQuery, AuditRecord, CoalesceKey, CoalesceOutcome, NewWebhook, OwnerKeyHash,
    Project, SecretRecord, SecretValueType, Store, StoreError,
};

use super::fixtures::*;

/// Checks that `record`, returned by an operation, is the entry stored under its id, and that
/// it has `action`.
fn assert_stored(store: &dyn Store, record: &AuditRecord, action: AuditAction) {
    assert_eq!(record.event.action, action, "{record:?}");
    let query = AuditQuery {
        before: Some(AuditId(record.id.0 + 1)),
        ..AuditQuery::newest(record.event.vault_id.clone(), 1)
    };
    let stored = store.query_audit(&query).unwrap();
    assert_eq!(stored, vec![record.clone()]);
}

fn rejection(error: &StoreError) -> RejectionReason {
    error
        .domain_error::<TokenRejected>()
        .unwrap_or_else(|| panic!("expected a token rejection, got {error}"))
        .reason()
}

pub fn vault_and_owner_round_trip(store: &dyn Store) {
    let vault = create_vault(store, 1, Plan::Pro, 5);

    assert_eq!(store.get_vault(&vault.id).unwrap(), Some(vault.clone()));
    let owner = store
        .owner_by_key_hash(&OwnerKeyHash([1; 32]))
        .unwrap()
        .unwrap();
    assert_eq!(owner.id, vault.owner_id);
    assert!(owner.active);
    assert_eq!(
        store.owner_by_key_hash(&OwnerKeyHash([9; 32])).unwrap(),
        None
    );
    assert_eq!(store.list_vaults(&owner.id).unwrap(), vec![vault.clone()]);

    store.set_plan(&vault.id, Plan::Enterprise, 50).unwrap();
    let changed = store.get_vault(&vault.id).unwrap().unwrap();
    assert_eq!(changed.plan, Plan::Enterprise);
    assert_eq!(changed.machine_limit, 50);

    store.set_owner_active(&owner.id, false).unwrap();
    assert!(!store.get_owner(&owner.id).unwrap().unwrap().active);
    store.set_owner_active(&owner.id, true).unwrap();
    assert!(store.get_owner(&owner.id).unwrap().unwrap().active);
}

pub fn vault_errors_name_the_record(store: &dyn Store) {
    let vault = create_vault(store, 1, Plan::Pro, 5);
    let missing = vault_id(7);
    let error = store.set_plan(&missing, Plan::Pro, 1).unwrap_err();
    assert!(matches!(error, StoreError::NotFound(_)), "{error}");
    assert_eq!(error.to_string(), "vault `vault_v7` not found");

    let owner = store.get_owner(&vault.owner_id).unwrap().unwrap();
    let again = store.create_vault_with_owner(&owner, &OwnerKeyHash([1; 32]), &vault, t0());
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
}

pub fn token_insert_list_revoke(store: &dyn Store) {
    let vault = create_vault(store, 1, Plan::Pro, 5);
    let first = issue(store, &vault, 1, 24);
    let second = issue(store, &vault, 2, 24);

    assert_eq!(
        store.get_token(&vault.id, &first.token.id).unwrap(),
        Some(first.token.clone())
    );
    assert_eq!(
        store.find_token_by_hash(&first.token.hash).unwrap(),
        Some(first.token.clone())
    );
    assert_eq!(
        store.get_token(&vault_id(9), &first.token.id).unwrap(),
        None
    );
    let listed: HashSet<_> = store
        .list_tokens(&vault.id)
        .unwrap()
        .into_iter()
        .map(|token| token.id)
        .collect();
    assert_eq!(
        listed,
        HashSet::from([first.token.id.clone(), second.token.id.clone()])
    );

    let revoked = store
        .revoke_token(&vault.id, &first.token.id, &vault.owner_id, t0())
        .unwrap();
    assert_stored(store, &revoked.audit, AuditAction::TempMachineTokenRevoke);
    let revoked = revoked.value;
    assert_eq!(revoked.state, TokenState::Revoked);
    let stored = store
        .get_token(&vault.id, &first.token.id)
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, TokenState::Revoked);

    let again = store
        .revoke_token(&vault.id, &first.token.id, &vault.owner_id, t0())
        .unwrap_err();
    assert!(
        again.domain_error::<RevokeTokenError>().is_some(),
        "{again}"
    );

    let entries = store
        .query_audit(&AuditQuery::newest(vault.id.clone(), 10))
        .unwrap();
    let actions: Vec<_> = entries.iter().map(|entry| entry.event.action).collect();
    assert_eq!(
        actions,
        vec![
            AuditAction::TempMachineTokenRevoke,
            AuditAction::TempMachineTokenCreate,
            AuditAction::TempMachineTokenCreate,
        ]
    );
}

pub fn registration_uses_token_once(store: &dyn Store) {
    let vault = create_vault(store, 1, Plan::Pro, 5);
    let issued = issue(store, &vault, 1, 24);

    let wrong_vault = store
        .register_machine(
            &vault_id(2),
            &issued.plaintext,
            &public_key(1),
            [1; 16],
            t0(),
        )
        .unwrap_err();
    assert_eq!(rejection(&wrong_vault), RejectionReason::WrongVault);
    let unchanged = store
        .get_token(&vault.id, &issued.token.id)
        .unwrap()
        .unwrap();
    assert_eq!(unchanged.state, TokenState::Unused);

    let registered = store
        .register_machine(&vault.id, &issued.plaintext, &public_key(1), [1; 16], t0())
        .unwrap();
    assert_stored(store, &registered.audit, AuditAction::TempMachineCreate);
    let machine = registered.value;
    assert_eq!(machine.state, MachineState::Pending);
    assert_eq!(machine.name, "machine-1");
    assert_eq!(machine.expires_at, t0() + hours(24));
    assert_eq!(machine.public_key, public_key(1));
    assert_eq!(
        store.get_machine(&vault.id, &machine.id).unwrap(),
        Some(machine.clone())
    );
    assert_eq!(
        store.find_machine(&machine.id).unwrap(),
        Some(machine.clone())
    );
    let used = store
        .get_token(&vault.id, &issued.token.id)
        .unwrap()
        .unwrap();
    assert_eq!(used.state, TokenState::Used);

    let replay = store
        .register_machine(&vault.id, &issued.plaintext, &public_key(2), [2; 16], t0())
        .unwrap_err();
    assert_eq!(rejection(&replay), RejectionReason::Used);
    assert_eq!(replay.to_string(), "invalid bootstrap token");
    assert_eq!(store.count_machines(&vault.id).unwrap(), 1);

    let created = store
        .query_audit(&AuditQuery {
            action: Some(AuditAction::TempMachineCreate),
            ..AuditQuery::newest(vault.id.clone(), 10)
        })
        .unwrap();
    assert_eq!(created.len(), 1);
}

pub fn registration_failure_keeps_token_unused(store: &dyn Store) {
    let vault = create_vault(store, 1, Plan::Pro, 1);
    register(store, &vault, 1, 24);
    let second = issue(store, &vault, 2, 24);

    let full = store
        .register_machine(&vault.id, &second.plaintext, &public_key(2), [2; 16], t0())
        .unwrap_err();
    assert!(
        matches!(
            full.domain_error::<RegistrationError>(),
            Some(RegistrationError::LimitReached { limit: 1, .. })
        ),
        "{full}"
    );
    let token = store
        .get_token(&vault.id, &second.token.id)
        .unwrap()
        .unwrap();
    assert_eq!(token.state, TokenState::Unused);

    store.set_plan(&vault.id, Plan::Free, 10).unwrap();
    let free = store
        .register_machine(&vault.id, &second.plaintext, &public_key(2), [2; 16], t0())
        .unwrap_err();
    assert!(
        matches!(
            free.domain_error::<RegistrationError>(),
            Some(RegistrationError::PlanDisallows(Plan::Free))
        ),
        "{free}"
    );
    let token = store
        .get_token(&vault.id, &second.token.id)
        .unwrap()
        .unwrap();
    assert_eq!(token.state, TokenState::Unused);

    // Once a slot is free again, the same token still works.
    store.set_plan(&vault.id, Plan::Pro, 2).unwrap();
    store
        .register_machine(&vault.id, &second.plaintext, &public_key(2), [2; 16], t0())
        .unwrap();
    assert_eq!(store.count_machines(&vault.id).unwrap(), 2);
}

pub fn unknown_token_is_rejected_like_used(store: &dyn Store) {
    let vault = create_vault(store, 1, Plan::Pro, 5);
    let unknown = TokenPlaintext::from_random_bytes(&[42; 32]).unwrap();
    let error = store
        .register_machine(&vault.id, &unknown, &public_key(1), [1; 16], t0())
        .unwrap_err();
    assert_eq!(rejection(&error), RejectionReason::Unknown);
    assert_eq!(error.to_string(), "invalid bootstrap token");
    assert_eq!(store.count_machines(&vault.id).unwrap(), 0);
}

pub fn machine_transitions_are_audited(store: &dyn Store) {
    let vault = create_vault(store, 1, Plan::Pro, 5);
    let machine = register(store, &vault, 1, 24);
    let owner = vault.owner_id.clone();

    let wrong = store
        .enable_machine(&vault.id, &machine.id, &owner, t0())
        .unwrap_err();
    assert!(wrong.domain_error::<TransitionError>().is_some(), "{wrong}");

    let active = store
        .approve_machine(&vault.id, &machine.id, &owner, t0())
        .unwrap();
    assert_eq!(active.value.state, MachineState::Active);
    assert_stored(store, &active.audit, AuditAction::MachineApprove);
    let disabled = store
        .disable_machine(&vault.id, &machine.id, &owner, t0())
        .unwrap();
    assert_eq!(disabled.value.state, MachineState::Disabled);
    assert_stored(store, &disabled.audit, AuditAction::MachineDisable);
    let enabled = store
        .enable_machine(&vault.id, &machine.id, &owner, t0())
        .unwrap();
    assert_eq!(enabled.value.state, MachineState::Active);
    assert_stored(store, &enabled.audit, AuditAction::MachineEnable);
    assert_eq!(
        store
            .get_machine(&vault.id, &machine.id)
            .unwrap()
            .unwrap()
            .state,
        MachineState::Active
    );

    let other_vault = create_vault(store, 2, Plan::Pro, 5);
    let hidden = store
        .approve_machine(&other_vault.id, &machine.id, &owner, t0())
        .unwrap_err();
    assert!(matches!(hidden, StoreError::NotFound(_)), "{hidden}");

    let actions: Vec<_> = store
        .query_audit(&AuditQuery::newest(vault.id.clone(), 3))
        .unwrap()
        .into_iter()
        .map(|entry| entry.event.action)
        .collect();
    assert_eq!(
        actions,
        vec![
            AuditAction::MachineEnable,
            AuditAction::MachineDisable,
            AuditAction::MachineApprove
        ]
    );

    let pending = register(store, &vault, 2, 24);
    let denied = store
        .deny_machine(&vault.id, &pending.id, &owner, t0())
        .unwrap();
    assert_eq!(denied.value.id, pending.id);
    assert_stored(store, &denied.audit, AuditAction::MachineDeny);
    assert_eq!(store.get_machine(&vault.id, &pending.id).unwrap(), None);
    assert_eq!(store.list_machines(&vault.id).unwrap().len(), 1);
}

pub fn guardrails_update_round_trips(store: &dyn Store) {
    let vault = create_vault(store, 1, Plan::Pro, 5);
    let machine = register(store, &vault, 1, 24);
    let guardrails = Guardrails::default();
    let updated = store
        .set_guardrails(&vault.id, &machine.id, &guardrails, &vault.owner_id, t0())
        .unwrap();
    assert_eq!(updated.value.guardrails, guardrails);
    assert_stored(
        store,
        &updated.audit,
        AuditAction::TempMachineGuardrailsUpdate,
    );
    let latest = store
        .query_audit(&AuditQuery::newest(vault.id.clone(), 1))
        .unwrap();
    assert_eq!(
        latest[0].event.action,
        AuditAction::TempMachineGuardrailsUpdate
    );
}

pub fn extend_and_revert_persist_chain(store: &dyn Store) {
    let vault = create_vault(store, 1, Plan::Pro, 5);
    let machine = register(store, &vault, 1, 24);
    let owner = vault.owner_id.clone();
    let request = |at| ExtendRequest {
        new_expires_at: at,
        reason: Some("more time".to_owned()),
        applied_by: owner.clone(),
    };

    let extension = store
        .extend_machine(&vault.id, &machine.id, &request(t0() + hours(48)), t0())
        .unwrap();
    assert_stored(store, &extension.audit, AuditAction::TempMachineExtend);
    let (extended, chain) = extension.value;
    assert_eq!(extended.expires_at, t0() + hours(48));
    assert_eq!(chain.extensions().len(), 1);
    store
        .extend_machine(&vault.id, &machine.id, &request(t0() + hours(72)), t0())
        .unwrap();
    let stored = store.get_machine(&vault.id, &machine.id).unwrap().unwrap();
    assert_eq!(stored.expires_at, t0() + hours(72));
    let chain = store.extension_chain(&machine.id).unwrap();
    assert_eq!(chain.extensions().len(), 2);
    assert_eq!(chain.extensions()[0].previous_expires_at, t0() + hours(24));
    assert_eq!(chain.extensions()[1].reason.as_deref(), Some("more time"));

    let not_later = store
        .extend_machine(&vault.id, &machine.id, &request(t0() + hours(10)), t0())
        .unwrap_err();
    assert!(
        not_later.domain_error::<ExtendError>().is_some(),
        "{not_later}"
    );

    let reversion = store
        .revert_extension(&vault.id, &machine.id, &owner, t0())
        .unwrap();
    assert_stored(
        store,
        &reversion.audit,
        AuditAction::TempMachineExtendRevert,
    );
    let (reverted, chain) = reversion.value;
    assert_eq!(reverted.expires_at, t0() + hours(48));
    assert!(chain.extensions()[1].reverted);
    store
        .revert_extension(&vault.id, &machine.id, &owner, t0())
        .unwrap();
    let stored = store.get_machine(&vault.id, &machine.id).unwrap().unwrap();
    assert_eq!(stored.expires_at, t0() + hours(24));
    let chain = store.extension_chain(&machine.id).unwrap();
    assert!(
        chain
            .extensions()
            .iter()
            .all(|extension| extension.reverted)
    );

    let nothing = store
        .revert_extension(&vault.id, &machine.id, &owner, t0())
        .unwrap_err();
    assert!(
        matches!(
            nothing.domain_error::<RevertError>(),
            Some(RevertError::NothingToRevert { .. })
        ),
        "{nothing}"
    );
    let actions: Vec<_> = store
        .query_audit(&AuditQuery::newest(vault.id.clone(), 4))
        .unwrap()
        .into_iter()
        .map(|entry| entry.event.action)
        .collect();
    assert_eq!(
        actions,
        vec![
            AuditAction::TempMachineExtendRevert,
            AuditAction::TempMachineExtendRevert,
            AuditAction::TempMachineExtend,
            AuditAction::TempMachineExtend
        ]
    );
}

fn setup_dependents(
    store: &dyn Store,
    tag: u8,
) -> (
    guardrail_core::plan::Vault,
    guardrail_core::machine::Machine,
    SecretRecord,
) {
    let vault = create_vault(store, tag, Plan::Pro, 5);
    let machine = register(store, &vault, tag, 24);
    let project = Project {
        id: format!("proj_abcdefghij{tag}").parse().unwrap(),
        vault_id: vault.id.clone(),
        name: "api".to_owned(),
        created_at: t0(),
    };
    store.create_project(&project).unwrap();
    store
        .add_project_member(&vault.id, &project.id, &machine.id)
        .unwrap();
    let secret = SecretRecord {
        id: format!("sk_abcdefghij{tag}").parse().unwrap(),
        vault_id: vault.id.clone(),
        project_id: project.id.clone(),
        name: "db-password".to_owned(),
        value_type: SecretValueType::Secret,
        field_names: None,
        ciphertext: vec![1, 2, 3],
        version: 1,
        created_at: t0(),
        updated_at: t0(),
    };
    store.create_secret(&secret).unwrap();
    store
        .grant_secret(&vault.id, &secret.id, &machine.id, t0())
        .unwrap();
    store
        .record_secret_read(&machine.id, &secret.id, 1, t0())
        .unwrap();
    (vault, machine, secret)
}

pub fn revoke_deletes_dependents(store: &dyn Store) {
    let (vault, machine, secret) = setup_dependents(store, 1);
    store
        .extend_machine(
            &vault.id,
            &machine.id,
            &ExtendRequest {
                new_expires_at: t0() + hours(48),
                reason: None,
                applied_by: vault.owner_id.clone(),
            },
            t0(),
        )
        .unwrap();
    assert!(store.has_grant(&secret.id, &machine.id).unwrap());

    let revoked = store
        .revoke_machine(&vault.id, &machine.id, &vault.owner_id, t0())
        .unwrap();
    assert_eq!(revoked.value.id, machine.id);
    assert_stored(store, &revoked.audit, AuditAction::MachineRevoke);
    assert_eq!(store.find_machine(&machine.id).unwrap(), None);
    assert!(!store.has_grant(&secret.id, &machine.id).unwrap());
    assert!(store.granted_secrets(&machine.id).unwrap().is_empty());
    assert!(store.machine_projects(&machine.id).unwrap().is_empty());
    assert!(
        store
            .extension_chain(&machine.id)
            .unwrap()
            .extensions()
            .is_empty()
    );
    assert!(
        store
            .last_read_versions(&machine.id, std::slice::from_ref(&secret.id))
            .unwrap()
            .is_empty()
    );
    let latest = store
        .query_audit(&AuditQuery::newest(vault.id.clone(), 1))
        .unwrap();
    assert_eq!(latest[0].event.action, AuditAction::MachineRevoke);

    let gone = store
        .revoke_machine(&vault.id, &machine.id, &vault.owner_id, t0())
        .unwrap_err();
    assert!(matches!(gone, StoreError::NotFound(_)), "{gone}");
}

pub fn sweep_marks_once_then_purges(store: &dyn Store) {
    let (vault, short, secret) = setup_dependents(store, 1);
    let long = register(store, &vault, 2, 24 * 10);

    let nothing = store.sweep(t0() + hours(1), 100).unwrap();
    assert_eq!(nothing.expired, 0);

    let first = store.sweep(t0() + hours(25), 100).unwrap();
    assert_eq!(first.expired, 1);
    assert_eq!(first.purged, 0);
    assert_eq!(first.audit.len(), 1);
    assert_stored(store, &first.audit[0], AuditAction::TempMachineExpired);
    assert_eq!(
        first.audit[0].event.target.to_string(),
        format!("machine:{}", short.id)
    );
    let marked = store.get_machine(&vault.id, &short.id).unwrap().unwrap();
    assert_eq!(marked.state, MachineState::Expired);
    assert_eq!(
        store
            .get_machine(&vault.id, &long.id)
            .unwrap()
            .unwrap()
            .state,
        MachineState::Pending
    );

    let again = store.sweep(t0() + hours(26), 100).unwrap();
    assert_eq!(again, Default::default());

    // 30 days after its expiry the short-lived machine is purged with its dependents.
    let purge_at = t0() + hours(24) + chrono::TimeDelta::days(30);
    let purge = store.sweep(purge_at, 100).unwrap();
    assert_eq!(purge.purged, 1);
    assert_eq!(purge.expired, 1, "the long-lived machine expired meanwhile");
    let actions: Vec<AuditAction> = purge.audit.iter().map(|r| r.event.action).collect();
    assert_eq!(
        actions,
        vec![
            AuditAction::TempMachineExpired,
            AuditAction::TempMachinePurge
        ]
    );
    for record in &purge.audit {
        assert_stored(store, record, record.event.action);
    }
    assert_eq!(store.find_machine(&short.id).unwrap(), None);
    assert!(!store.has_grant(&secret.id, &short.id).unwrap());
    let purges = store
        .query_audit(&AuditQuery {
            action: Some(AuditAction::TempMachinePurge),
            ..AuditQuery::newest(vault.id.clone(), 10)
        })
        .unwrap();
    assert_eq!(purges.len(), 1);
    assert_eq!(
        purges[0].event.detail["machines"],
        serde_json::json!(["machine-1"])
    );

    // A batch limit leaves the rest for the next call.
    for seed in 3..6 {
        register(store, &vault, seed, 1);
    }
    let limited = store.sweep(t0() + hours(2), 2).unwrap();
    assert_eq!(limited.expired, 2);
    let rest = store.sweep(t0() + hours(2), 2).unwrap();
    assert_eq!(rest.expired, 1);
}

pub fn sweep_follows_expiry_changes(store: &dyn Store) {
    let vault = create_vault(store, 1, Plan::Pro, 5);
    let owner = vault.owner_id.clone();
    let extended = register(store, &vault, 1, 24);
    let revoked = register(store, &vault, 2, 24);
    let reverted = register(store, &vault, 3, 24);
    let state_of = |machine: &guardrail_core::machine::Machine| {
        store
            .get_machine(&vault.id, &machine.id)
            .unwrap()
            .map(|stored| stored.state)
    };
    let extend_to = |machine: &guardrail_core::machine::Machine, expiry_hours: i64| {
        let request = ExtendRequest {
            new_expires_at: t0() + hours(expiry_hours),
            reason: None,
            applied_by: owner.clone(),
        };
        store
            .extend_machine(&vault.id, &machine.id, &request, t0())
            .unwrap();
    };
    extend_to(&extended, 72);
    extend_to(&reverted, 48);
    extend_to(&reverted, 96);
    store
        .revert_extension(&vault.id, &reverted.id, &owner, t0())
        .unwrap();

    // Only the machine left at its first expiry is due.
    let first = store.sweep(t0() + hours(30), 100).unwrap();
    assert_eq!(first.expired, 1);
    assert_eq!(state_of(&revoked), Some(MachineState::Expired));
    assert_eq!(state_of(&extended), Some(MachineState::Pending));
    assert_eq!(state_of(&reverted), Some(MachineState::Pending));

    // A deleted machine is never swept again, and the others are purged 30 days after the
    // expiry they have now, not the one they were registered with.
    store
        .revoke_machine(&vault.id, &revoked.id, &owner, t0() + hours(31))
        .unwrap();
    let days_30 = chrono::TimeDelta::days(30);
    let marking = store.sweep(t0() + hours(24) + days_30, 100).unwrap();
    assert_eq!(marking.expired, 2);
    assert_eq!(marking.purged, 0);
    assert_eq!(state_of(&extended), Some(MachineState::Expired));
    assert_eq!(state_of(&reverted), Some(MachineState::Expired));

    let purge_reverted = store.sweep(t0() + hours(48) + days_30, 100).unwrap();
    assert_eq!(purge_reverted.purged, 1);
    assert_eq!(state_of(&reverted), None);
    assert_eq!(state_of(&extended), Some(MachineState::Expired));

    let purge_extended = store.sweep(t0() + hours(72) + days_30, 100).unwrap();
    assert_eq!(purge_extended.purged, 1);
    assert_eq!(state_of(&extended), None);
    let after = store.sweep(t0() + hours(72) + days_30, 100).unwrap();
    assert_eq!(after, Default::default());
}

pub fn projects_secrets_and_grants(store: &dyn Store) {
    let (vault, machine, secret) = setup_dependents(store, 1);
    let project = store.machine_projects(&machine.id).unwrap();
    assert_eq!(project.len(), 1);
    assert_eq!(store.list_projects(&vault.id).unwrap(), project);
    assert_eq!(
        store.get_project(&vault.id, &project[0].id).unwrap(),
        Some(project[0].clone())
    );
    // Adding twice is not an error.
    store
        .add_project_member(&vault.id, &project[0].id, &machine.id)
        .unwrap();

    assert_eq!(store.get_secret(&secret.id).unwrap(), Some(secret.clone()));
    let names = vec!["user".to_owned(), "password".to_owned()];
    let updated = store
        .update_secret(
            &vault.id,
            &secret.id,
            1,
            &[9, 9],
            Some(&names),
            t0() + hours(1),
        )
        .unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.ciphertext, vec![9, 9]);
    assert_eq!(updated.field_names, Some(names));
    assert_eq!(updated.updated_at, t0() + hours(1));
    assert_eq!(store.get_secret(&secret.id).unwrap(), Some(updated.clone()));
    assert_eq!(
        store.list_secrets(&vault.id, Some(&project[0].id)).unwrap(),
        vec![updated.clone()]
    );
    assert_eq!(store.list_secrets(&vault.id, None).unwrap().len(), 1);

    // An update that expected the old version is rejected and writes nothing.
    let stale = store
        .update_secret(&vault.id, &secret.id, 1, &[7], None, t0() + hours(2))
        .unwrap_err();
    assert!(matches!(stale, StoreError::Conflict(_)), "{stale}");
    assert_eq!(
        stale.to_string(),
        format!(
            "conflict: secret `{}` is at version `2`, not the expected `1`: read it again and retry",
            secret.id
        )
    );
    assert_eq!(store.get_secret(&secret.id).unwrap(), Some(updated.clone()));
    let missing = store
        .update_secret(&vault_id(9), &secret.id, 2, &[7], None, t0())
        .unwrap_err();
    assert_eq!(
        missing.to_string(),
        format!("secret `{}` not found", secret.id)
    );

    assert_eq!(
        store.granted_secrets(&machine.id).unwrap(),
        vec![secret.id.clone()]
    );
    store
        .grant_secret(&vault.id, &secret.id, &machine.id, t0())
        .unwrap();

    let other = create_vault(store, 2, Plan::Pro, 5);
    let foreign = store
        .grant_secret(&other.id, &secret.id, &machine.id, t0())
        .unwrap_err();
    assert!(matches!(foreign, StoreError::NotFound(_)), "{foreign}");

    store.delete_secret(&vault.id, &secret.id).unwrap();
    assert_eq!(store.get_secret(&secret.id).unwrap(), None);
    assert!(!store.has_grant(&secret.id, &machine.id).unwrap());
    let missing = store.delete_secret(&vault.id, &secret.id).unwrap_err();
    assert_eq!(
        missing.to_string(),
        format!("secret `{}` not found", secret.id)
    );
}

pub fn secret_reads_keep_newest_version(store: &dyn Store) {
    let (_, machine, secret) = setup_dependents(store, 1);
    store
        .record_secret_read(&machine.id, &secret.id, 3, t0())
        .unwrap();
    store
        .record_secret_read(&machine.id, &secret.id, 2, t0())
        .unwrap();
    let unread: guardrail_core::ids::SecretId = "sk_neverread00".parse().unwrap();
    let versions = store
        .last_read_versions(&machine.id, &[secret.id.clone(), unread])
        .unwrap();
    assert_eq!(versions, vec![(secret.id.clone(), 3)]);

    let unknown = store
        .record_secret_read(&machine_id(99), &secret.id, 1, t0())
        .unwrap_err();
    assert!(matches!(unknown, StoreError::NotFound(_)), "{unknown}");
}

pub fn secret_reads_repeat_same_version(store: &dyn Store) {
    let (_, machine, secret) = setup_dependents(store, 1);
    for _ in 0..3 {
        store
            .record_secret_read(&machine.id, &secret.id, 2, t0())
            .unwrap();
    }
    let versions = store
        .last_read_versions(&machine.id, std::slice::from_ref(&secret.id))
        .unwrap();
    assert_eq!(versions, vec![(secret.id.clone(), 2)]);

    store
        .record_secret_read(&machine.id, &secret.id, 4, t0() + hours(1))
        .unwrap();
    let versions = store
        .last_read_versions(&machine.id, std::slice::from_ref(&secret.id))
        .unwrap();
    assert_eq!(versions, vec![(secret.id.clone(), 4)]);
}

pub fn audited_secret_read_writes_both(store: &dyn Store) {
    let (vault, machine, secret) = setup_dependents(store, 1);
    let read_entries = |store: &dyn Store| {
        store
            .query_audit(&AuditQuery {
                action: Some(AuditAction::SecretRead),
                ..AuditQuery::newest(vault.id.clone(), 100)
            })
            .unwrap()
    };

    let first = event(&vault.id, machine.id, AuditAction::SecretRead, t0());
    let record = store
        .record_secret_read_audited(&machine.id, &secret.id, 3, &first)
        .unwrap();
    assert_stored(store, &record, AuditAction::SecretRead);
    let versions = store
        .last_read_versions(&machine.id, std::slice::from_ref(&secret.id))
        .unwrap();
    assert_eq!(versions, vec![(secret.id.clone(), 3)]);

    // An older version keeps the newer one, and the read is still audited.
    let older = event(
        &vault.id,
        machine.id,
        AuditAction::SecretRead,
        t0() + hours(1),
    );
    let second = store
        .record_secret_read_audited(&machine.id, &secret.id, 2, &older)
        .unwrap();
    assert_stored(store, &second, AuditAction::SecretRead);
    let versions = store
        .last_read_versions(&machine.id, std::slice::from_ref(&secret.id))
        .unwrap();
    assert_eq!(versions, vec![(secret.id.clone(), 3)]);
    assert_eq!(read_entries(store).len(), 2);

    // An unknown machine writes neither the version nor the entry.
    let unknown_event = event(&vault.id, machine_id(99), AuditAction::SecretRead, t0());
    let unknown = store
        .record_secret_read_audited(&machine_id(99), &secret.id, 1, &unknown_event)
        .unwrap_err();
    assert!(matches!(unknown, StoreError::NotFound(_)), "{unknown}");
    assert_eq!(read_entries(store).len(), 2);
    let versions = store
        .last_read_versions(&machine_id(99), std::slice::from_ref(&secret.id))
        .unwrap();
    assert_eq!(versions, vec![]);
}

pub fn audit_query_filters_newest_first(store: &dyn Store) {
    let vault = create_vault(store, 1, Plan::Pro, 5);
    let other = create_vault(store, 2, Plan::Pro, 5);
    let machine = machine_id(1);
    let events = vec![
        event(&vault.id, machine, AuditAction::AuthFailure, t0()),
        event(&vault.id, machine, AuditAction::SecretRead, t0() + hours(1)),
        event(
            &vault.id,
            machine,
            AuditAction::TempMachineBlocked,
            t0() + hours(2),
        ),
        event(&other.id, machine, AuditAction::SecretRead, t0() + hours(3)),
        event(&vault.id, machine, AuditAction::SecretRead, t0() + hours(4)),
    ];
    let ids = store.append_audit(&events).unwrap();
    assert_eq!(ids.len(), 5);
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");

    let all = store
        .query_audit(&AuditQuery::newest(vault.id.clone(), 100))
        .unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].id, ids[4]);
    assert_eq!(all[0].event, events[4]);
    assert_eq!(all[3].event, events[0]);

    let reads = store
        .query_audit(&AuditQuery {
            action: Some(AuditAction::SecretRead),
            ..AuditQuery::newest(vault.id.clone(), 100)
        })
        .unwrap();
    assert_eq!(
        reads.iter().map(|entry| entry.id).collect::<Vec<_>>(),
        vec![ids[4], ids[1]]
    );

    let high = store
        .query_audit(&AuditQuery {
            severity: Some(Severity::High),
            ..AuditQuery::newest(vault.id.clone(), 100)
        })
        .unwrap();
    assert_eq!(high.len(), 1);
    assert_eq!(high[0].id, ids[2]);

    let since = store
        .query_audit(&AuditQuery {
            since: Some(t0() + hours(1)),
            ..AuditQuery::newest(vault.id.clone(), 100)
        })
        .unwrap();
    assert_eq!(since.len(), 3);

    let page = store
        .query_audit(&AuditQuery::newest(vault.id.clone(), 2))
        .unwrap();
    assert_eq!(page.len(), 2);
    let next = store
        .query_audit(&AuditQuery {
            before: Some(page[1].id),
            ..AuditQuery::newest(vault.id.clone(), 2)
        })
        .unwrap();
    assert_eq!(
        next.iter().map(|entry| entry.id).collect::<Vec<_>>(),
        vec![ids[1], ids[0]]
    );
}

pub fn blocked_events_coalesce(store: &dyn Store) {
    let vault = create_vault(store, 1, Plan::Pro, 5);
    let machine = machine_id(1);
    let key = CoalesceKey {
        machine_id: machine,
        source_ip: Some("203.0.113.7".parse().unwrap()),
        axis: "ip".to_owned(),
        reason: "not allowed".to_owned(),
    };
    let at = |minutes| t0() + chrono::TimeDelta::minutes(minutes);
    let blocked = |minutes| {
        event(
            &vault.id,
            machine,
            AuditAction::TempMachineBlocked,
            at(minutes),
        )
    };

    let first = store.append_coalesced(&blocked(0), &key, at(-5)).unwrap();
    let CoalesceOutcome::Appended(entry_id) = first else {
        panic!("first block must append, got {first:?}");
    };
    let second = store.append_coalesced(&blocked(1), &key, at(-4)).unwrap();
    assert_eq!(second, CoalesceOutcome::Coalesced { entry_id, count: 2 });
    let state = store.coalesce_state(&key).unwrap().unwrap();
    assert_eq!(state.entry_id, entry_id);
    assert_eq!(state.count, 2);
    assert_eq!(state.first_at, at(0));
    assert_eq!(state.last_at, at(1));

    let entries = store
        .query_audit(&AuditQuery::newest(vault.id.clone(), 10))
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].count, 2);
    assert_eq!(entries[0].event.detail["count"], 2);

    // Another source is another key.
    let other_source = CoalesceKey {
        source_ip: Some("198.51.100.1".parse().unwrap()),
        ..key.clone()
    };
    let other = store
        .append_coalesced(&blocked(2), &other_source, at(-3))
        .unwrap();
    assert!(
        matches!(other, CoalesceOutcome::Appended(id) if id != entry_id),
        "{other:?}"
    );

    // After the coalescing period a repeat starts a new entry.
    let later = store.append_coalesced(&blocked(20), &key, at(15)).unwrap();
    assert!(
        matches!(later, CoalesceOutcome::Appended(id) if id != entry_id),
        "{later:?}"
    );
    let restarted = store.coalesce_state(&key).unwrap().unwrap();
    assert_eq!(restarted.count, 1);
    assert_eq!(
        restarted.first_at,
        at(20),
        "a new entry restarts the first instant"
    );
    assert_eq!(restarted.last_at, at(20));

    assert_eq!(store.increment_audit_count(entry_id).unwrap(), 3);
    let missing = store.increment_audit_count(AuditId(999_999)).unwrap_err();
    assert_eq!(missing.to_string(), "audit entry `999999` not found");

    let purged = store.purge_expired(at(30), at(10)).unwrap();
    assert_eq!(
        purged.coalesce_entries, 1,
        "only the other source's state is stale"
    );
}

pub fn nonce_insert_if_absent(store: &dyn Store) {
    let machine = machine_id(1);
    let keep = t0() + chrono::TimeDelta::seconds(120);
    assert_eq!(
        store
            .insert_if_absent(machine, "bm9uY2U=", keep, t0())
            .unwrap(),
        NonceOutcome::Recorded
    );
    assert_eq!(
        store
            .insert_if_absent(machine, "bm9uY2U=", keep, t0())
            .unwrap(),
        NonceOutcome::Replayed
    );
    assert_eq!(
        store
            .insert_if_absent(machine_id(2), "bm9uY2U=", keep, t0())
            .unwrap(),
        NonceOutcome::Recorded
    );
    // Still protected one second before `keep_until`.
    let almost = keep - chrono::TimeDelta::seconds(1);
    assert_eq!(
        store
            .insert_if_absent(machine, "bm9uY2U=", keep, almost)
            .unwrap(),
        NonceOutcome::Replayed
    );
    let purged = store.purge_expired(keep, t0()).unwrap();
    assert_eq!(purged.nonces, 2);
    assert_eq!(
        store
            .insert_if_absent(machine, "bm9uY2U=", keep + hours(1), keep)
            .unwrap(),
        NonceOutcome::Recorded
    );
}

pub fn lockout_counter_updates(store: &dyn Store) {
    let source: IpAddr = "203.0.113.9".parse().unwrap();
    let key = LockoutKey::Source(Some(source));
    let pair = LockoutKey::MachineSource(machine_id(1), Some(source));
    let keep = t0() + hours(1);
    let bump = |current: Option<FailureCounter>| {
        let failures = current.map_or(0, |state| state.failures) + 1;
        FailureCounter {
            failures,
            first_failure_at: current.map_or(Some(t0()), |state| state.first_failure_at),
            locked_until: (failures >= 3).then(|| t0() + chrono::TimeDelta::minutes(15)),
        }
    };
    for expected in 1..=3 {
        let state = store.record_failure(&key, t0(), keep, &bump).unwrap();
        assert_eq!(state.failures, expected);
    }
    let locked = store.lockout_state(&key, t0()).unwrap().unwrap();
    assert_eq!(
        locked.locked_until,
        Some(t0() + chrono::TimeDelta::minutes(15))
    );
    assert_eq!(store.lockout_state(&pair, t0()).unwrap(), None);

    // Past `keep_until` the entry counts as absent and the rule starts over.
    assert_eq!(store.lockout_state(&key, keep).unwrap(), None);
    let fresh = store
        .record_failure(&key, keep, keep + hours(1), &bump)
        .unwrap();
    assert_eq!(fresh.failures, 1);

    store.record_failure(&pair, t0(), keep, &bump).unwrap();
    store.clear_lockout(&pair).unwrap();
    assert_eq!(store.lockout_state(&pair, t0()).unwrap(), None);

    let purged = store.purge_expired(keep + hours(2), t0()).unwrap();
    assert_eq!(purged.lockouts, 1);
}

pub fn webhook_subscriptions(store: &dyn Store) {
    let vault = create_vault(store, 1, Plan::Pro, 5);
    let blocked = store
        .create_webhook(&NewWebhook {
            vault_id: vault.id.clone(),
            url: "https://alerts.example/hook".to_owned(),
            actions: vec![AuditAction::TempMachineBlocked],
            secret: vec![7; 16],
            created_at: t0(),
        })
        .unwrap();
    let both = store
        .create_webhook(&NewWebhook {
            vault_id: vault.id.clone(),
            url: "https://alerts.example/all".to_owned(),
            actions: vec![
                AuditAction::TempMachineBlocked,
                AuditAction::TempMachineExpired,
            ],
            secret: vec![8; 16],
            created_at: t0(),
        })
        .unwrap();
    assert_ne!(blocked.id, both.id);
    assert_eq!(
        store.list_webhooks(&vault.id).unwrap(),
        vec![blocked.clone(), both.clone()]
    );
    assert_eq!(
        store
            .webhooks_for(&vault.id, AuditAction::TempMachineExpired)
            .unwrap(),
        vec![both.clone()]
    );
    store.delete_webhook(&vault.id, blocked.id).unwrap();
    assert_eq!(store.list_webhooks(&vault.id).unwrap(), vec![both]);
    let missing = store.delete_webhook(&vault.id, blocked.id).unwrap_err();
    assert!(matches!(missing, StoreError::NotFound(_)), "{missing}");
}

pub fn lease_has_one_holder(store: &dyn Store) {
    let ttl = Duration::from_secs(60);
    assert!(store.try_acquire_lease("sweeper", "a", t0(), ttl).unwrap());
    assert!(!store.try_acquire_lease("sweeper", "b", t0(), ttl).unwrap());
    assert!(
        store
            .try_acquire_lease("sweeper", "a", t0() + chrono::TimeDelta::seconds(30), ttl)
            .unwrap()
    );
    let renewed_until = t0() + chrono::TimeDelta::seconds(90);
    assert!(
        !store
            .try_acquire_lease(
                "sweeper",
                "b",
                renewed_until - chrono::TimeDelta::seconds(1),
                ttl
            )
            .unwrap()
    );
    assert!(
        store
            .try_acquire_lease("sweeper", "b", renewed_until, ttl)
            .unwrap()
    );
    store.release_lease("sweeper", "a").unwrap();
    assert!(
        !store
            .try_acquire_lease("sweeper", "a", renewed_until, ttl)
            .unwrap()
    );
    store.release_lease("sweeper", "b").unwrap();
    assert!(
        store
            .try_acquire_lease("sweeper", "a", renewed_until, ttl)
            .unwrap()
    );
}

pub fn concurrent_redemption_has_one_winner(store: &dyn Store) {
    let vault = create_vault(store, 1, Plan::Pro, 100);
    let issued = issue(store, &vault, 1, 24);
    let threads = 32;
    let barrier = Barrier::new(threads);
    let outcomes: Vec<Result<_, StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|index| {
                let barrier = &barrier;
                let issued = &issued;
                let vault = &vault;
                scope.spawn(move || {
                    let seed = u8::try_from(index).unwrap() + 10;
                    barrier.wait();
                    store.register_machine(
                        &vault.id,
                        &issued.plaintext,
                        &public_key(seed),
                        [seed; 16],
                        t0(),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    let winners = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    assert_eq!(winners, 1, "{outcomes:?}");
    for outcome in &outcomes {
        if let Err(error) = outcome {
            assert_eq!(rejection(error), RejectionReason::Used);
        }
    }
    assert_eq!(store.count_machines(&vault.id).unwrap(), 1);
}

pub fn concurrent_secret_updates_have_one_winner(store: &dyn Store) {
    let (vault, _, secret) = setup_dependents(store, 1);
    let threads = 8;
    let barrier = Barrier::new(threads);
    let outcomes: Vec<Result<SecretRecord, StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|index| {
                let barrier = &barrier;
                let vault = &vault;
                let secret = &secret;
                scope.spawn(move || {
                    let byte = u8::try_from(index).unwrap();
                    barrier.wait();
                    store.update_secret(&vault.id, &secret.id, 1, &[byte], None, t0())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    let winners: Vec<&SecretRecord> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    for outcome in &outcomes {
        if let Err(error) = outcome {
            assert!(matches!(error, StoreError::Conflict(_)), "{error}");
        }
    }
    let stored = store.get_secret(&secret.id).unwrap().unwrap();
    assert_eq!(stored.version, 2, "one update, one new version");
    assert_eq!(stored.ciphertext, winners[0].ciphertext);
}

pub fn concurrent_registration_respects_limit(store: &dyn Store) {
    let limit = 3;
    let vault = create_vault(store, 1, Plan::Pro, limit);
    let tokens: Vec<_> = (1..=8).map(|seed| issue(store, &vault, seed, 24)).collect();
    let barrier = Barrier::new(tokens.len());
    let outcomes: Vec<Result<_, StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = tokens
            .iter()
            .enumerate()
            .map(|(index, issued)| {
                let barrier = &barrier;
                let vault = &vault;
                scope.spawn(move || {
                    let seed = u8::try_from(index).unwrap() + 1;
                    barrier.wait();
                    store.register_machine(
                        &vault.id,
                        &issued.plaintext,
                        &public_key(seed),
                        [seed; 16],
                        t0(),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    let winners = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    assert_eq!(winners, limit as usize, "{outcomes:?}");
    assert_eq!(store.count_machines(&vault.id).unwrap(), limit);
    let unused = store
        .list_tokens(&vault.id)
        .unwrap()
        .into_iter()
        .filter(|token| token.state == TokenState::Unused)
        .count();
    assert_eq!(unused, tokens.len() - limit as usize);
}
