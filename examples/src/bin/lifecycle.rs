//! Walks one temporary machine through its whole life with `guardrail-core` alone: issue a
//! bootstrap token, register a machine with a fresh Ed25519 key, approve it, extend and revert its
//! expiry, and let the sweep planner expire and purge it. Every step prints the audit event it
//! caused.
//!
//! Run with `cargo run -p guardrail-examples --bin lifecycle`.

use std::error::Error;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ed25519_dalek::SigningKey;
use guardrail_core::audit::AuditEvent;
use guardrail_core::extension::{ExtendRequest, ExtensionChain, extend, revert};
use guardrail_core::guardrail::Guardrails;
use guardrail_core::ids::{OwnerId, VaultId};
use guardrail_core::lifetime::Lifetime;
use guardrail_core::machine::{MachinePublicKey, register_machine};
use guardrail_core::plan::{Plan, Vault};
use guardrail_core::sweep::plan_sweep;
use guardrail_core::token::{TokenRandomness, TokenRequest, check_redemption, issue_token};
use guardrail_examples::random_bytes;

fn print_event(step: &str, event: &AuditEvent) {
    println!(
        "{step:<10} {} [{}] target={} detail={}",
        event.action,
        event.severity(),
        event.target,
        event.detail
    );
}

fn main() -> Result<(), Box<dyn Error>> {
    let owner = OwnerId::from_random_bytes(&random_bytes()?);
    let vault = Vault {
        id: VaultId::from_random_bytes(&random_bytes()?),
        owner_id: owner.clone(),
        name: "example".to_owned(),
        plan: Plan::Pro,
        machine_limit: 10,
        ip_allowlist: None,
    };
    // A fixed starting instant keeps the output readable; a service passes its clock's `now`.
    let mut now: DateTime<Utc> = Utc
        .with_ymd_and_hms(2026, 1, 31, 9, 0, 0)
        .single()
        .ok_or("bad date")?;

    // 1. The owner issues a token for a machine that lives one month and one day.
    let secret: [u8; 32] = random_bytes()?;
    let issued = issue_token(
        &vault,
        &owner,
        TokenRequest {
            machine_name: "temp-migration-jan".to_owned(),
            description: Some("one-off data migration".to_owned()),
            machine_lifetime: Lifetime::new(1, 1, 0),
            token_lifetime_hours: None,
            guardrails: Guardrails::default(),
        },
        TokenRandomness {
            id: random_bytes()?,
            secret: &secret,
        },
        now,
    )?;
    print_event("issue", &issued.event);
    println!(
        "           machine would expire at {}",
        issued.machine_expires_at_preview
    );

    // 2. The operator's machine makes a key pair and registers an hour later. The store looks the
    //    token up by its hash; here the row is simply at hand.
    now += Duration::hours(1);
    let signing_key = SigningKey::from_bytes(&random_bytes()?);
    let public_key = MachinePublicKey::from_bytes(signing_key.verifying_key().as_bytes())?;
    let redeemable = check_redemption(Some(issued.token), &issued.plaintext, &vault.id, now)?;
    let registration = register_machine(redeemable, public_key, &vault, 0, random_bytes()?, now)?;
    print_event("register", &registration.event);
    println!(
        "           token is now {}, machine expires at {}",
        registration.token.state.as_str(),
        registration.machine.expires_at
    );

    // 3. The owner approves it.
    let (machine, event) = registration.machine.approve(&owner, now)?;
    print_event("approve", &event);

    // 4. Extend to 40 days after issuance (about eleven days more), then revert that extension.
    let update = extend(
        machine,
        ExtensionChain::new(),
        ExtendRequest {
            new_expires_at: registration.token.created_at + Duration::days(40),
            reason: Some("migration overran".to_owned()),
            applied_by: owner.clone(),
        },
        now,
    )?;
    print_event("extend", &update.event);
    let update = revert(update.machine, update.chain, &owner, now)?;
    print_event("revert", &update.event);
    let machine = update.machine;

    // 5. The sweeper runs just after expiry, then 30 days later.
    now = machine.expires_at + Duration::seconds(1);
    let plan = plan_sweep([(&machine, &owner)], now);
    for event in &plan.events {
        print_event("sweep", event);
    }
    let (machine, _) = machine.expire(now)?;
    now = machine.expires_at + Duration::days(30);
    let plan = plan_sweep([(&machine, &owner)], now);
    for event in &plan.events {
        print_event("sweep", event);
    }
    println!("purged {} machine(s)", plan.purge.len());
    Ok(())
}
