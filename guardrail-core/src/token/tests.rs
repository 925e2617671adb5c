use super::fixtures::{SECRET, at, issued, owner, request, vault};
use super::*;
use crate::audit::Severity;
use crate::plan::Plan;

fn randomness() -> TokenRandomness<'static> {
    TokenRandomness {
        id: [1; 12],
        secret: &SECRET,
    }
}

#[test]
fn issue_stores_hash_and_defaults() {
    let now = at(2025, 3, 10, 12);
    let request = request(Lifetime::new(1, 0, 0));
    let issued = issue_token(&vault(Plan::Pro, 5), &owner(), request, randomness(), now).unwrap();
    let token = &issued.token;
    assert_eq!(token.hash, issued.plaintext.hash());
    assert_eq!(token.machine_name, "pentest-q3");
    assert_eq!(token.state, TokenState::Unused);
    assert_eq!(token.expires_at, at(2025, 3, 17, 12));
    assert_eq!(issued.machine_expires_at_preview, at(2025, 4, 10, 12));
    assert_eq!(token.id.as_str(), "tok_010101010101010101010101");
}

#[test]
fn issue_emits_token_create() {
    let now = at(2025, 3, 10, 12);
    let issued = issue_token(
        &vault(Plan::Enterprise, 5),
        &owner(),
        request(Lifetime::new(0, 2, 0)),
        randomness(),
        now,
    )
    .unwrap();
    let event = &issued.event;
    assert_eq!(event.action, AuditAction::TempMachineTokenCreate);
    assert_eq!(event.severity(), Severity::Low);
    assert_eq!(event.actor, Actor::Owner(owner()));
    assert_eq!(event.target, Target::Token(issued.token.id.clone()));
    assert_eq!(event.detail["machine_name"], "pentest-q3");
    assert_eq!(
        event.detail["machine_expires_at_preview"],
        "2025-03-12T12:00:00Z"
    );
    let detail = event.detail.to_string();
    assert!(!detail.contains(issued.plaintext.expose_secret()));
}

#[test]
fn issued_token_debug_hides_plaintext() {
    let now = at(2025, 3, 10, 12);
    let issued = issue_token(
        &vault(Plan::Pro, 5),
        &owner(),
        request(Lifetime::new(0, 2, 0)),
        randomness(),
        now,
    )
    .unwrap();
    let debug = format!("{issued:?}");
    assert!(!debug.contains(issued.plaintext.expose_secret()));
    assert!(debug.contains("<redacted>"));
}

#[test]
fn free_plan_cannot_issue() {
    let err = issue_token(
        &vault(Plan::Free, 5),
        &owner(),
        request(Lifetime::new(1, 0, 0)),
        randomness(),
        at(2025, 1, 1, 0),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the `free` plan does not allow temporary machines: move the vault to pro or enterprise"
    );
}

#[test]
fn issue_validates_lifetime_at_issuance() {
    let err = issue_token(
        &vault(Plan::Pro, 5),
        &owner(),
        request(Lifetime::new(12, 0, 1)),
        randomness(),
        at(2025, 1, 1, 0),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "lifetime `12 months, 0 days, 1 hour` ends at `2026-01-01 01:00:00 UTC`, after the \
         maximum of 12 months (`2026-01-01 00:00:00 UTC`): choose a shorter lifetime"
    );
}

#[test]
fn token_lifetime_bounds() {
    let now = at(2025, 1, 1, 0);
    for (hours, ok) in [
        (0, false),
        (1, true),
        (720, true),
        (721, false),
        (u32::MAX, false),
    ] {
        let mut req = request(Lifetime::new(1, 0, 0));
        req.token_lifetime_hours = Some(hours);
        let result = issue_token(&vault(Plan::Pro, 5), &owner(), req, randomness(), now);
        assert_eq!(result.is_ok(), ok, "{hours}");
    }
    let mut req = request(Lifetime::new(1, 0, 0));
    req.token_lifetime_hours = Some(721);
    let err = issue_token(&vault(Plan::Pro, 5), &owner(), req, randomness(), now).unwrap_err();
    assert_eq!(
        err.to_string(),
        "token lifetime `721` hours is out of range: choose 1 to 720 hours (30 days)"
    );
}

#[test]
fn issue_rejects_short_randomness() {
    let short = TokenRandomness {
        id: [1; 12],
        secret: &[7; 16],
    };
    let err = issue_token(
        &vault(Plan::Pro, 5),
        &owner(),
        request(Lifetime::new(1, 0, 0)),
        short,
        at(2025, 1, 1, 0),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "a bootstrap token needs 32 to 64 random bytes, got `16`: draw them from the operating \
         system's CSPRNG"
    );
}

#[test]
fn machine_name_rules() {
    assert_eq!(validate_machine_name(" a ").unwrap(), "a");
    assert_eq!(
        validate_machine_name("   ").unwrap_err().to_string(),
        "invalid machine name: it is empty, enter a name such as `pentest-q3`"
    );
    assert!(validate_machine_name(&"é".repeat(100)).is_ok());
    assert_eq!(
        validate_machine_name(&"x".repeat(101))
            .unwrap_err()
            .to_string(),
        "invalid machine name: it has 101 characters, the maximum is 100"
    );
    assert_eq!(
        validate_machine_name("a\nb").unwrap_err().to_string(),
        "invalid machine name `a\\nb`: it contains a control character"
    );
}

#[test]
fn description_rules() {
    assert_eq!(validate_description(None).unwrap(), None);
    assert_eq!(validate_description(Some("  ")).unwrap(), None);
    assert_eq!(
        validate_description(Some("line one\nline two"))
            .unwrap()
            .as_deref(),
        Some("line one\nline two")
    );
    assert_eq!(
        validate_description(Some(&"x".repeat(1001)))
            .unwrap_err()
            .to_string(),
        "invalid machine description: it has 1001 characters, the maximum is 1000"
    );
    assert_eq!(
        validate_description(Some("bell\u{7}"))
            .unwrap_err()
            .to_string(),
        "invalid machine description: it contains the control character `\\u{7}`"
    );
}

#[test]
fn status_derives_expired() {
    let now = at(2025, 1, 1, 0);
    let (token, _) = issued(Lifetime::new(1, 0, 0), now);
    assert_eq!(token.status(now), TokenStatus::Unused);
    assert!(!token.is_expired(token.expires_at - TimeDelta::seconds(1)));
    assert!(token.is_expired(token.expires_at));
    assert_eq!(token.status(token.expires_at), TokenStatus::Expired);
    let used = BootstrapToken {
        state: TokenState::Used,
        ..token.clone()
    };
    assert_eq!(used.status(token.expires_at), TokenStatus::Used);
    assert_eq!(TokenStatus::Expired.as_str(), "expired");
}

#[test]
fn redemption_accepts_fresh_token() {
    let now = at(2025, 1, 1, 0);
    let (token, plaintext) = issued(Lifetime::new(1, 0, 0), now);
    let proof = check_redemption(Some(token.clone()), &plaintext, &token.vault_id, now).unwrap();
    assert_eq!(proof.token(), &token);
}

#[test]
fn redemption_rejections_look_alike() {
    let now = at(2025, 1, 1, 0);
    let (token, plaintext) = issued(Lifetime::new(1, 0, 0), now);
    let other_vault: VaultId = "vault_other".parse().unwrap();
    let wrong_text = TokenPlaintext::from_random_bytes(&[0x22; 32]).unwrap();
    let cases = [
        (
            None,
            &plaintext,
            &token.vault_id,
            now,
            RejectionReason::Unknown,
        ),
        (
            Some(token.clone()),
            &wrong_text,
            &token.vault_id,
            now,
            RejectionReason::Unknown,
        ),
        (
            Some(token.clone()),
            &plaintext,
            &other_vault,
            now,
            RejectionReason::WrongVault,
        ),
        (
            Some(BootstrapToken {
                state: TokenState::Used,
                ..token.clone()
            }),
            &plaintext,
            &token.vault_id,
            now,
            RejectionReason::Used,
        ),
        (
            Some(BootstrapToken {
                state: TokenState::Revoked,
                ..token.clone()
            }),
            &plaintext,
            &token.vault_id,
            now,
            RejectionReason::Revoked,
        ),
        (
            Some(token.clone()),
            &plaintext,
            &token.vault_id,
            token.expires_at,
            RejectionReason::Expired,
        ),
    ];
    for (stored, presented, vault_id, when, reason) in cases {
        let err = check_redemption(stored, presented, vault_id, when).unwrap_err();
        assert_eq!(err.reason(), reason);
        assert_eq!(err.to_string(), "invalid bootstrap token");
    }
}

#[test]
fn wrong_vault_equals_unknown_publicly() {
    let now = at(2025, 1, 1, 0);
    let (token, plaintext) = issued(Lifetime::new(1, 0, 0), now);
    let other_vault: VaultId = "vault_other".parse().unwrap();
    let wrong = check_redemption(Some(token), &plaintext, &other_vault, now).unwrap_err();
    let unknown = check_redemption(None, &plaintext, &other_vault, now).unwrap_err();
    assert_eq!(wrong.to_string(), unknown.to_string());
    assert_eq!(wrong.reason().as_str(), "wrong_vault");
    assert_eq!(unknown.reason().as_str(), "unknown");
}

#[test]
fn malformed_token_maps_to_rejection() {
    let err: TokenRejected = TokenPlaintext::parse("short").err().unwrap().into();
    assert_eq!(err.reason(), RejectionReason::Malformed);
    assert_eq!(err.to_string(), "invalid bootstrap token");
}

#[test]
fn revoke_unused_only() {
    let now = at(2025, 1, 1, 0);
    let (token, _) = issued(Lifetime::new(1, 0, 0), now);
    let (revoked, event) = revoke_token(token.clone(), &owner(), now).unwrap();
    assert_eq!(revoked.state, TokenState::Revoked);
    assert_eq!(event.action, AuditAction::TempMachineTokenRevoke);
    assert_eq!(event.severity(), Severity::Medium);
    assert_eq!(event.target, Target::Token(token.id.clone()));
    assert_eq!(event.actor, Actor::Owner(owner()));
    assert_eq!(event.detail["machine_name"], "pentest-q3");

    let err = revoke_token(revoked, &owner(), now).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot revoke token `tok_010101010101010101010101`: it is already revoked"
    );
    let used = BootstrapToken {
        state: TokenState::Used,
        ..token
    };
    let err = revoke_token(used, &owner(), now).unwrap_err();
    assert_eq!(err.state(), TokenState::Used);
    assert_eq!(
        err.to_string(),
        "cannot revoke token `tok_010101010101010101010101`: it is already used, revoke the \
         machine it registered instead"
    );
}

#[test]
fn revoke_expired_unused_allowed() {
    let now = at(2025, 1, 1, 0);
    let (token, _) = issued(Lifetime::new(1, 0, 0), now);
    let later = token.expires_at + TimeDelta::days(1);
    let (revoked, _) = revoke_token(token, &owner(), later).unwrap();
    assert_eq!(revoked.status(later), TokenStatus::Revoked);
}
