#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
//! The nine-step evaluation against the real guardrail axes, a signing key and in-memory stores.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeZone as _, Utc};
use ed25519_dalek::{Signer as _, SigningKey};
use guardrail_core::audit::{AuditAction, Target};
use guardrail_core::evaluate::{
    AUTHENTICATION_FAILED, DenialStatus, DenyReason, Evaluation, EvaluationConfig, MachineRecord,
    MachineRoute, Outcome, RouteAuthorizer, RouteDecision, RouteDenial, RouteDenialReason, Step,
    evaluate,
};
use guardrail_core::guardrail::geo::UndeterminedReason;
use guardrail_core::guardrail::{
    CountryAllowlist, CountryCode, CountryLookup, CountryResolver, Guardrails, IpAllowlist,
    TimeWindow,
};
use guardrail_core::ids::{MachineId, SecretId};
use guardrail_core::lockout::LockoutKey;
use guardrail_core::machine::{Machine, MachinePublicKey, MachineState};
use guardrail_core::plan::{Owner, Plan, Vault};
use guardrail_core::request::{
    NonceOutcome, NonceStore, NonceStoreError, RawRequest, SignedRequest, body_hash,
};

const MACHINE: &str = "6f1c2a4e-0b7d-4c1e-9a35-2f0d8c7b6e51";
const PATH: &str = "/v1/secret/sk_abcdefghij";

/// Wednesday 2025-10-08 10:00 in Copenhagen (UTC+2), inside a 09:00-17:00 weekday window.
fn office_hours() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 10, 8, 8, 0, 0).unwrap()
}

fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn owner() -> Owner {
    Owner {
        id: "owner_alice".parse().unwrap(),
        active: true,
    }
}

fn vault() -> Vault {
    Vault {
        id: "vault_main".parse().unwrap(),
        owner_id: "owner_alice".parse().unwrap(),
        name: "main".to_owned(),
        plan: Plan::Pro,
        machine_limit: 10,
        ip_allowlist: None,
    }
}

fn machine() -> Machine {
    Machine {
        id: MACHINE.parse().unwrap(),
        vault_id: "vault_main".parse().unwrap(),
        name: "pentest-q3".to_owned(),
        description: None,
        public_key: MachinePublicKey::from_bytes(&signing_key().verifying_key().to_bytes())
            .unwrap(),
        state: MachineState::Active,
        created_at: office_hours() - chrono::TimeDelta::days(1),
        expires_at: office_hours() + chrono::TimeDelta::days(30),
        guardrails: Guardrails::default(),
        token_id: "tok_abc".parse().unwrap(),
    }
}

fn guarded_machine() -> Machine {
    let mut machine = machine();
    machine.guardrails = Guardrails {
        ip_allowlist: Some(IpAllowlist::parse(&["203.0.113.0/24", "2001:db8::/32"]).unwrap()),
        countries: Some(CountryAllowlist::parse(&["DK", "SE"]).unwrap()),
        time_window: Some(
            TimeWindow::new(
                "09:00",
                "17:00",
                "Europe/Copenhagen",
                &["mon", "tue", "wed", "thu", "fri"],
            )
            .unwrap(),
        ),
    };
    machine
}

#[derive(Default)]
struct MemoryNonces {
    seen: RefCell<HashSet<(MachineId, String)>>,
    calls: Cell<usize>,
    fail: bool,
}

impl NonceStore for MemoryNonces {
    fn insert_if_absent(
        &self,
        machine: MachineId,
        nonce: &str,
        _keep_until: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Result<NonceOutcome, NonceStoreError> {
        self.calls.set(self.calls.get() + 1);
        if self.fail {
            return Err(NonceStoreError::new("store full"));
        }
        if self.seen.borrow_mut().insert((machine, nonce.to_owned())) {
            Ok(NonceOutcome::Recorded)
        } else {
            Ok(NonceOutcome::Replayed)
        }
    }
}

/// Resolves a fixed table of addresses; every other address is not in the database.
#[derive(Default)]
struct TableResolver(HashMap<IpAddr, CountryCode>);

impl TableResolver {
    fn with(entries: &[(&str, &str)]) -> Self {
        Self(
            entries
                .iter()
                .map(|(address, code)| (address.parse().unwrap(), code.parse().unwrap()))
                .collect(),
        )
    }
}

impl CountryResolver for TableResolver {
    fn resolve(&self, ip: IpAddr) -> CountryLookup {
        match self.0.get(&ip) {
            Some(code) => CountryLookup::Country(*code),
            None => CountryLookup::Undetermined(UndeterminedReason::NotInDatabase),
        }
    }
}

/// Grants exactly one secret; everything else is allowed except a secret named as missing.
struct Grants;

impl RouteAuthorizer for Grants {
    fn authorize(&self, _machine: &Machine, route: &MachineRoute) -> RouteDecision {
        match route {
            MachineRoute::ReadSecret(secret) if secret.as_str() == "sk_abcdefghij" => {
                RouteDecision::Allow
            }
            MachineRoute::ReadSecret(secret) if secret.as_str() == "sk_missing0000" => {
                RouteDecision::Deny(RouteDenial {
                    status: DenialStatus::NotFound,
                    reason: RouteDenialReason::SecretNotFound {
                        secret: secret.clone(),
                    },
                })
            }
            MachineRoute::ReadSecret(secret) => RouteDecision::Deny(RouteDenial {
                status: DenialStatus::Forbidden,
                reason: RouteDenialReason::NoSecretGrant {
                    secret: secret.clone(),
                },
            }),
            _ => RouteDecision::Allow,
        }
    }
}

/// A request as an official client would send it.
struct Client {
    timestamp: i64,
    nonce: String,
    body: Vec<u8>,
    machine_id: Option<String>,
    corrupt_signature: bool,
}

impl Client {
    fn new(timestamp: DateTime<Utc>) -> Self {
        Self {
            timestamp: timestamp.timestamp(),
            nonce: "AAECAwQFBgcICQoLDA0ODw==".to_owned(),
            body: Vec::new(),
            machine_id: Some(MACHINE.to_owned()),
            corrupt_signature: false,
        }
    }

    fn signed(&self) -> SignedRequest {
        let payload = format!(
            "GET:{PATH}:{}:{}:{}",
            self.timestamp,
            self.nonce,
            body_hash(&self.body)
        );
        let mut signature = signing_key().sign(payload.as_bytes()).to_bytes();
        if self.corrupt_signature {
            signature[0] ^= 1;
        }
        let signature = STANDARD.encode(signature);
        let timestamp = self.timestamp.to_string();
        SignedRequest::parse(&RawRequest {
            method: "GET",
            path: PATH,
            machine_id: self.machine_id.as_deref().map(str::as_bytes),
            timestamp: Some(timestamp.as_bytes()),
            nonce: Some(self.nonce.as_bytes()),
            signature: Some(signature.as_bytes()),
            body: &self.body,
        })
    }
}

struct World {
    owner: Owner,
    vault: Vault,
    machine: Option<Machine>,
    countries: TableResolver,
    nonces: MemoryNonces,
    route: MachineRoute,
    now: DateTime<Utc>,
    transport_now: DateTime<Utc>,
}

impl World {
    fn new(machine: Machine) -> Self {
        Self {
            owner: owner(),
            vault: vault(),
            machine: Some(machine),
            countries: TableResolver::with(&[("203.0.113.7", "DK"), ("198.51.100.7", "DE")]),
            nonces: MemoryNonces::default(),
            route: MachineRoute::ReadSecret("sk_abcdefghij".parse().unwrap()),
            now: office_hours(),
            transport_now: office_hours(),
        }
    }

    fn run(
        &self,
        request: &SignedRequest,
        source: Option<&str>,
    ) -> guardrail_core::evaluate::Decision {
        let record = self.machine.as_ref().map(|machine| MachineRecord {
            machine,
            vault: &self.vault,
            owner: &self.owner,
        });
        evaluate(&Evaluation {
            now: self.now,
            transport_now: self.transport_now,
            source: source.map(|text| text.parse().unwrap()),
            request,
            record,
            route: &self.route,
            countries: &self.countries,
            nonces: &self.nonces,
            routes: &Grants,
            config: EvaluationConfig::default(),
        })
    }
}

fn step(decision: &guardrail_core::evaluate::Decision) -> Option<Step> {
    decision.failed_step()
}

fn source_key(address: &str) -> Option<LockoutKey> {
    Some(LockoutKey::Source(Some(address.parse().unwrap())))
}

#[test]
fn guarded_machine_is_allowed() {
    let world = World::new(guarded_machine());
    let decision = world.run(&Client::new(world.now).signed(), Some("203.0.113.7"));
    assert!(decision.is_allowed(), "{decision:?}");
    assert_eq!(decision.status, 200);
    assert_eq!(decision.client_message, None);
    assert!(decision.audit_events.is_empty());
    assert_eq!(decision.rate_limit, None);
    assert_eq!(world.nonces.calls.get(), 1);
}

#[test]
fn expired_outside_allowlist_fails_step_4() {
    let mut machine = guarded_machine();
    machine.expires_at = office_hours();
    let world = World::new(machine);
    let decision = world.run(&Client::new(world.now).signed(), Some("198.51.100.7"));
    assert_eq!(step(&decision), Some(Step::NotExpired));
    assert_eq!(
        decision.deny_reason(),
        Some(&DenyReason::Expired {
            now: office_hours(),
            expires_at: office_hours()
        })
    );
    assert_eq!(decision.status, 401);
    assert_eq!(decision.client_message, Some(AUTHENTICATION_FAILED));
    assert_eq!(decision.rate_limit, source_key("198.51.100.7"));
    assert_eq!(decision.audit_events.len(), 1);
    assert_eq!(decision.audit_events[0].action, AuditAction::AuthFailure);
    assert_eq!(decision.audit_events[0].detail["step"], 4);
}

#[test]
fn swept_machine_fails_step_4() {
    let mut machine = machine();
    machine.state = MachineState::Expired;
    let world = World::new(machine);
    let decision = world.run(&Client::new(world.now).signed(), Some("203.0.113.7"));
    assert_eq!(step(&decision), Some(Step::NotExpired));
}

#[test]
fn bad_signature_outside_allowlist_fails_step_5() {
    let world = World::new(guarded_machine());
    let mut client = Client::new(world.now);
    client.corrupt_signature = true;
    let decision = world.run(&client.signed(), Some("198.51.100.7"));
    assert_eq!(step(&decision), Some(Step::MachineIpAllowlist));
    assert_eq!(
        decision.deny_reason(),
        Some(&DenyReason::IpNotAllowed {
            address: "198.51.100.7".parse().unwrap()
        })
    );
    assert_eq!(decision.status, 403);
    let machine: MachineId = MACHINE.parse().unwrap();
    assert_eq!(
        decision.rate_limit,
        Some(LockoutKey::MachineSource(
            machine,
            Some("198.51.100.7".parse().unwrap())
        ))
    );
    let event = &decision.audit_events[0];
    assert_eq!(event.action, AuditAction::TempMachineBlocked);
    assert_eq!(event.detail["axis"], "ip");
    assert_eq!(event.detail["count"], 1);
    assert_eq!(
        event.detail["reason"],
        "source address `198.51.100.7` is not in the machine's IP allowlist"
    );
    assert_eq!(world.nonces.calls.get(), 0);
    let key = decision.block_key().unwrap();
    assert_eq!(key.axis, "ip");
    assert_eq!(key.machine, machine);
}

#[test]
fn bad_signature_fails_step_8_without_nonce() {
    let world = World::new(guarded_machine());
    let mut client = Client::new(world.now);
    client.corrupt_signature = true;
    let decision = world.run(&client.signed(), Some("203.0.113.7"));
    assert_eq!(step(&decision), Some(Step::Signature));
    assert_eq!(decision.deny_reason(), Some(&DenyReason::BadSignature));
    assert_eq!(decision.status, 401);
    assert_eq!(decision.client_message, Some(AUTHENTICATION_FAILED));
    assert_eq!(decision.rate_limit, source_key("203.0.113.7"));
    assert_eq!(
        decision.audit_events[0].detail["reason"],
        "invalid signature"
    );
    assert_eq!(world.nonces.calls.get(), 0);
}

#[test]
fn replay_is_rejected() {
    let world = World::new(machine());
    let request = Client::new(world.now).signed();
    assert!(world.run(&request, Some("203.0.113.7")).is_allowed());
    let decision = world.run(&request, Some("203.0.113.7"));
    assert_eq!(step(&decision), Some(Step::Signature));
    assert_eq!(
        decision.deny_reason(),
        Some(&DenyReason::Replayed {
            nonce: "AAECAwQFBgcICQoLDA0ODw==".to_owned()
        })
    );
    assert_eq!(decision.status, 401);
}

#[test]
fn stale_timestamp_uses_transport_clock() {
    // The policy clock moved a day ahead; the transport clock is real time.
    let mut world = World::new(machine());
    world.now = office_hours() + chrono::TimeDelta::days(1);
    let decision = world.run(
        &Client::new(world.transport_now).signed(),
        Some("203.0.113.7"),
    );
    assert!(decision.is_allowed(), "{decision:?}");

    let client = Client::new(world.transport_now - chrono::TimeDelta::seconds(61));
    let decision = world.run(&client.signed(), Some("203.0.113.7"));
    assert_eq!(step(&decision), Some(Step::Signature));
    assert!(matches!(
        decision.deny_reason(),
        Some(DenyReason::StaleTimestamp { .. })
    ));
    assert_eq!(
        decision.audit_events[0].detail["reason"],
        format!(
            "stale timestamp `{}`: server time `{}`, allowed skew 60 s",
            client.timestamp,
            world.transport_now.timestamp()
        )
    );
}

#[test]
fn unknown_machine_fails_step_3() {
    let mut world = World::new(machine());
    world.machine = None;
    let decision = world.run(&Client::new(world.now).signed(), Some("203.0.113.7"));
    assert_eq!(step(&decision), Some(Step::MachineEnabled));
    assert_eq!(
        decision.deny_reason().unwrap().to_string(),
        format!("machine `{MACHINE}` not found")
    );
    assert_eq!(decision.client_message, Some(AUTHENTICATION_FAILED));
    assert!(decision.audit_events.is_empty());
    assert_eq!(decision.rate_limit, source_key("203.0.113.7"));
}

#[test]
fn malformed_machine_id_fails_step_3() {
    let mut world = World::new(machine());
    world.machine = None;
    let mut client = Client::new(world.now);
    client.machine_id = Some("not-a-uuid".to_owned());
    let decision = world.run(&client.signed(), Some("203.0.113.7"));
    assert_eq!(step(&decision), Some(Step::MachineEnabled));
    assert_eq!(
        decision.deny_reason().unwrap().to_string(),
        "machine id unreadable: invalid header `X-Machine-Id` value `not-a-uuid`: expected a hyphenated UUID"
    );
}

#[test]
fn malformed_timestamp_fails_step_8() {
    let world = World::new(machine());
    let request = SignedRequest::parse(&RawRequest {
        method: "GET",
        path: PATH,
        machine_id: Some(MACHINE.as_bytes()),
        timestamp: Some(b"-5"),
        nonce: Some(b"abc"),
        signature: Some(b"AAAA"),
        body: b"",
    });
    let decision = world.run(&request, Some("203.0.113.7"));
    assert_eq!(step(&decision), Some(Step::Signature));
    assert!(matches!(
        decision.deny_reason(),
        Some(DenyReason::MalformedRequest(_))
    ));
    assert_eq!(world.nonces.calls.get(), 0);
}

#[test]
fn inactive_owner_fails_step_1() {
    let mut world = World::new(machine());
    world.owner.active = false;
    let decision = world.run(&Client::new(world.now).signed(), Some("203.0.113.7"));
    assert_eq!(step(&decision), Some(Step::OwnerActive));
    assert_eq!(
        decision.deny_reason().unwrap().to_string(),
        "vault owner `owner_alice` is not active"
    );
    assert_eq!(decision.client_message, Some(AUTHENTICATION_FAILED));
}

#[test]
fn mismatched_records_fail_closed() {
    let mut world = World::new(machine());
    world.vault.owner_id = "owner_mallory".parse().unwrap();
    let decision = world.run(&Client::new(world.now).signed(), Some("203.0.113.7"));
    assert_eq!(step(&decision), Some(Step::OwnerActive));
    assert!(matches!(
        decision.deny_reason(),
        Some(DenyReason::RecordMismatch { .. })
    ));
}

#[test]
fn vault_allowlist_fails_step_2() {
    let mut world = World::new(machine());
    world.vault.ip_allowlist = Some(IpAllowlist::parse(&["203.0.113.0/24"]).unwrap());
    let decision = world.run(&Client::new(world.now).signed(), Some("198.51.100.7"));
    assert_eq!(step(&decision), Some(Step::VaultIpAllowlist));
    assert_eq!(decision.status, 401);
    let decision = world.run(&Client::new(world.now).signed(), None);
    assert_eq!(step(&decision), Some(Step::VaultIpAllowlist));
    assert_eq!(
        decision.deny_reason(),
        Some(&DenyReason::VaultSourceUndetermined)
    );
    assert_eq!(decision.rate_limit, Some(LockoutKey::Source(None)));
}

#[test]
fn pending_and_disabled_fail_step_3() {
    for state in [MachineState::Pending, MachineState::Disabled] {
        let mut machine = machine();
        machine.state = state;
        let world = World::new(machine);
        let decision = world.run(&Client::new(world.now).signed(), Some("203.0.113.7"));
        assert_eq!(step(&decision), Some(Step::MachineEnabled), "{state:?}");
        assert_eq!(decision.client_message, Some(AUTHENTICATION_FAILED));
    }
}

#[test]
fn mapped_source_matches_ipv4_rules() {
    let world = World::new(guarded_machine());
    let decision = world.run(&Client::new(world.now).signed(), Some("::ffff:203.0.113.7"));
    assert!(decision.is_allowed(), "{decision:?}");
    assert_eq!(decision.source, Some("203.0.113.7".parse().unwrap()));
}

#[test]
fn country_outside_list_fails_step_6() {
    let mut machine = guarded_machine();
    machine.guardrails.ip_allowlist = None;
    let world = World::new(machine);
    let decision = world.run(&Client::new(world.now).signed(), Some("198.51.100.7"));
    assert_eq!(step(&decision), Some(Step::MachineGeo));
    assert_eq!(
        decision.audit_events[0].detail["reason"],
        "country `DE` is not in the machine's allowed countries"
    );
    assert_eq!(decision.audit_events[0].detail["axis"], "geo");
}

#[test]
fn undetermined_country_fails_step_6() {
    let mut machine = guarded_machine();
    machine.guardrails.ip_allowlist = None;
    let world = World::new(machine);
    for source in [Some("192.0.2.1"), None] {
        let decision = world.run(&Client::new(world.now).signed(), source);
        assert_eq!(step(&decision), Some(Step::MachineGeo), "{source:?}");
        assert!(
            decision.audit_events[0].detail["reason"]
                .as_str()
                .unwrap()
                .starts_with("country undetermined: "),
            "{source:?}"
        );
    }
}

#[test]
fn closed_window_fails_step_7() {
    let mut world = World::new(guarded_machine());
    // Saturday: the window is open on weekdays only. The transport clock stays current.
    world.now = Utc.with_ymd_and_hms(2025, 10, 11, 8, 0, 0).unwrap();
    let decision = world.run(
        &Client::new(world.transport_now).signed(),
        Some("203.0.113.7"),
    );
    assert_eq!(step(&decision), Some(Step::MachineTimeWindow));
    assert_eq!(decision.audit_events[0].detail["axis"], "time_window");
    assert_eq!(decision.status, 403);
}

#[test]
fn route_denials_fail_step_9() {
    let mut world = World::new(machine());
    world.route = MachineRoute::ReadSecret("sk_otherothe1".parse().unwrap());
    let decision = world.run(&Client::new(world.now).signed(), Some("203.0.113.7"));
    assert_eq!(step(&decision), Some(Step::RouteAuthorization));
    assert_eq!(decision.status, 403);
    assert_eq!(decision.rate_limit, None);
    let event = &decision.audit_events[0];
    assert_eq!(event.action, AuditAction::AccessDenied);
    assert_eq!(
        event.target,
        Target::Secret("sk_otherothe1".parse::<SecretId>().unwrap())
    );
    assert_eq!(
        event.detail["reason"],
        "machine holds no grant on secret `sk_otherothe1` (route `read_secret`)"
    );

    world.route = MachineRoute::ReadSecret("sk_missing0000".parse().unwrap());
    let mut client = Client::new(world.now);
    client.nonce = "fresh".to_owned();
    let decision = world.run(&client.signed(), Some("203.0.113.7"));
    assert_eq!(decision.status, 404);
    assert_eq!(decision.client_message, Some("not found"));
}

#[test]
fn nonce_store_failure_answers_503() {
    let mut world = World::new(machine());
    world.nonces.fail = true;
    let decision = world.run(&Client::new(world.now).signed(), Some("203.0.113.7"));
    assert_eq!(step(&decision), Some(Step::Signature));
    assert_eq!(decision.status, 503);
    assert_eq!(decision.rate_limit, None);
}

/// Changes a world or a client so that one authentication step fails.
type Setup = dyn Fn(&mut World, &mut Client);

#[test]
fn authentication_failures_share_one_body() {
    let mut messages = HashSet::new();
    let mut statuses = HashSet::new();
    let cases: Vec<Box<Setup>> = vec![
        Box::new(|world, _| world.owner.active = false),
        Box::new(|world, _| {
            world.vault.ip_allowlist = Some(IpAllowlist::parse(&["10.0.0.0/8"]).unwrap())
        }),
        Box::new(|world, _| world.machine = None),
        Box::new(|world, _| world.machine.as_mut().unwrap().state = MachineState::Pending),
        Box::new(|world, _| world.machine.as_mut().unwrap().expires_at = world.now),
        Box::new(|_, client| client.corrupt_signature = true),
    ];
    for case in cases {
        let mut world = World::new(machine());
        let mut client = Client::new(world.now);
        case(&mut world, &mut client);
        let decision = world.run(&client.signed(), Some("203.0.113.7"));
        assert!(!decision.is_allowed());
        messages.insert(decision.client_message);
        statuses.insert(decision.status);
    }
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(statuses, HashSet::from([401]));
}

#[test]
fn outcome_names_allowed_machine() {
    let world = World::new(machine());
    let decision = world.run(&Client::new(world.now).signed(), Some("203.0.113.7"));
    assert_eq!(
        decision.outcome,
        Outcome::Allow {
            machine: MACHINE.parse().unwrap()
        }
    );
}
