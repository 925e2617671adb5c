use chrono::TimeDelta;

use super::*;
use crate::audit::{Severity, Target};
use crate::lifetime::Lifetime;
use crate::machine::MachineState;
use crate::machine::fixtures::machine;
use crate::token::fixtures::{at, owner};

fn request(new_expires_at: DateTime<Utc>) -> ExtendRequest {
    ExtendRequest {
        new_expires_at,
        reason: Some("engagement ran over".to_owned()),
        applied_by: owner(),
    }
}

fn active(now: DateTime<Utc>) -> Machine {
    // Registered at `now` for one month.
    machine(Lifetime::new(1, 0, 0), now, MachineState::Active)
}

#[test]
fn extend_moves_expiry_and_records() {
    let now = at(2025, 1, 1, 0);
    let m = active(now);
    let update = extend(
        m.clone(),
        ExtensionChain::new(),
        request(at(2025, 3, 1, 0)),
        now,
    )
    .unwrap();
    assert_eq!(update.machine.expires_at, at(2025, 3, 1, 0));
    let ext = &update.chain.extensions()[0];
    assert_eq!(ext.previous_expires_at, at(2025, 2, 1, 0));
    assert_eq!(ext.new_expires_at, at(2025, 3, 1, 0));
    assert_eq!(ext.applied_by, owner());
    assert_eq!(ext.applied_at, now);
    assert_eq!(ext.reason.as_deref(), Some("engagement ran over"));
    assert!(!ext.reverted);
    assert_eq!(update.event.action, AuditAction::TempMachineExtend);
    assert_eq!(update.event.severity(), Severity::Medium);
    assert_eq!(update.event.target, Target::Machine(m.id));
    assert_eq!(
        update.event.detail["new_expires_at"],
        "2025-03-01T00:00:00Z"
    );
    assert_eq!(
        update.event.detail["previous_expires_at"],
        "2025-02-01T00:00:00Z"
    );
}

#[test]
fn extend_cap_is_twelve_months_from_now() {
    let registered = at(2024, 2, 29, 0);
    let m = active(registered);
    let later = at(2024, 2, 29, 12);
    let cap = at(2025, 2, 28, 12);
    assert!(extend(m.clone(), ExtensionChain::new(), request(cap), later).is_ok());
    let err = extend(
        m,
        ExtensionChain::new(),
        request(cap + TimeDelta::seconds(1)),
        later,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "new expiry `2025-02-28 12:00:01 UTC` is after `2025-02-28 12:00:00 UTC`, 12 months from \
         now: choose an earlier expiry"
    );
}

#[test]
fn extend_must_move_forward() {
    let now = at(2025, 1, 1, 0);
    let m = active(now);
    let err = extend(m.clone(), ExtensionChain::new(), request(m.expires_at), now).unwrap_err();
    assert_eq!(
        err.to_string(),
        "new expiry `2025-02-01 00:00:00 UTC` is not later than the current expiry `2025-02-01 \
         00:00:00 UTC`: an extension can only move the expiry forward"
    );
    let past = at(2024, 12, 1, 0);
    assert!(matches!(
        extend(m, ExtensionChain::new(), request(past), now),
        Err(ExtendError::NotLater { .. })
    ));
}

#[test]
fn extend_rejects_expired_machine() {
    let now = at(2025, 1, 1, 0);
    let m = active(now);
    let id = m.id;
    let err = extend(
        m.clone(),
        ExtensionChain::new(),
        request(at(2025, 4, 1, 0)),
        m.expires_at,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot extend machine `{id}`: it expired at `2025-02-01 00:00:00 UTC`")
    );
    let marked = Machine {
        state: MachineState::Expired,
        ..m
    };
    assert!(matches!(
        extend(
            marked,
            ExtensionChain::new(),
            request(at(2025, 4, 1, 0)),
            now
        ),
        Err(ExtendError::MachineExpired { .. })
    ));
}

#[test]
fn extend_reason_bound() {
    let now = at(2025, 1, 1, 0);
    let mut req = request(at(2025, 3, 1, 0));
    req.reason = Some("é".repeat(500));
    assert!(extend(active(now), ExtensionChain::new(), req.clone(), now).is_ok());
    req.reason = Some("x".repeat(501));
    let err = extend(active(now), ExtensionChain::new(), req, now).unwrap_err();
    assert_eq!(
        err.to_string(),
        "extension reason has 501 characters, the maximum is 500"
    );
}

#[test]
fn extend_chain_is_bounded() {
    let now = at(2025, 1, 1, 0);
    let m = active(now);
    let filler = Extension {
        previous_expires_at: now,
        new_expires_at: now,
        applied_by: owner(),
        applied_at: now,
        reason: None,
        reverted: true,
    };
    let chain = ExtensionChain::from_extensions(vec![filler; MAX_EXTENSIONS]);
    let id = m.id;
    let err = extend(m, chain, request(at(2025, 3, 1, 0)), now).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "machine `{id}` already has 1000 extensions: revoke it and issue a new token instead"
        )
    );
}

#[test]
fn revert_restores_and_stacks() {
    let now = at(2025, 1, 1, 0);
    let m = active(now);
    let first = extend(m, ExtensionChain::new(), request(at(2025, 3, 1, 0)), now).unwrap();
    let second = extend(first.machine, first.chain, request(at(2025, 4, 1, 0)), now).unwrap();

    let undo = revert(second.machine, second.chain, &owner(), now).unwrap();
    assert_eq!(undo.machine.expires_at, at(2025, 3, 1, 0));
    assert!(undo.chain.extensions()[1].reverted);
    assert!(!undo.chain.extensions()[0].reverted);
    assert_eq!(undo.event.action, AuditAction::TempMachineExtendRevert);
    assert_eq!(undo.event.severity(), Severity::Medium);
    assert_eq!(
        undo.event.detail["restored_expires_at"],
        "2025-03-01T00:00:00Z"
    );
    assert_eq!(
        undo.chain.latest_unreverted(),
        undo.chain.extensions().first()
    );

    let undo = revert(undo.machine, undo.chain, &owner(), now).unwrap();
    assert_eq!(undo.machine.expires_at, at(2025, 2, 1, 0));
    let id = undo.machine.id;
    let err = revert(undo.machine, undo.chain, &owner(), now).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("machine `{id}` has no un-reverted extension to revert")
    );
}

#[test]
fn revert_into_past_rejected() {
    let now = at(2025, 1, 1, 0);
    let m = active(now);
    let update = extend(m, ExtensionChain::new(), request(at(2025, 3, 1, 0)), now).unwrap();
    let later = at(2025, 2, 1, 0);
    let err = revert(update.machine, update.chain, &owner(), later).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot revert into the past: the previous expiry `2025-02-01 00:00:00 UTC` is not after \
         now (`2025-02-01 00:00:00 UTC`)"
    );
}

#[test]
fn revert_rejects_expired_machine() {
    let now = at(2025, 1, 1, 0);
    let update = extend(
        active(now),
        ExtensionChain::new(),
        request(at(2025, 3, 1, 0)),
        now,
    )
    .unwrap();
    let id = update.machine.id;
    let err = revert(update.machine, update.chain, &owner(), at(2025, 3, 1, 0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot revert an extension of machine `{id}`: it expired at `2025-03-01 00:00:00 UTC`"
        )
    );
}
