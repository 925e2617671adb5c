//! Everything `guardrail_core::evaluate::evaluate` reads for one allowed request: an active owner,
//! a vault with a vault-wide allowlist, an active machine with all three guardrail axes, the
//! MaxMind test database and a signed request.
//!
//! The nonce store and the route authorizer are stand-ins that always accept, because the
//! store and the server's grants are measured by their own benchmarks.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use guardrail_core::evaluate::{
    Evaluation, EvaluationConfig, MachineRecord, MachineRoute, RouteAuthorizer, RouteDecision,
};
use guardrail_core::guardrail::{IpAllowlist, MaxMindCountryResolver};
use guardrail_core::ids::{MachineId, OwnerId, TokenId, VaultId};
use guardrail_core::machine::{Machine, MachinePublicKey, MachineState};
use guardrail_core::plan::{Owner, Plan, Vault};
use guardrail_core::request::{NonceOutcome, NonceStore, NonceStoreError, SignedRequest};

use crate::signed::SignedFixture;
use crate::{
    FixtureError, SOURCE_IP, country_test_resolver, decision_instant, machine_expiry,
    machine_guardrails,
};

/// A nonce store that records every nonce as new and keeps nothing, so that one signed request
/// can be evaluated again and again.
#[derive(Debug, Default)]
pub struct AcceptingNonces;

impl NonceStore for AcceptingNonces {
    fn insert_if_absent(
        &self,
        _machine: MachineId,
        _nonce: &str,
        _keep_until: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Result<NonceOutcome, NonceStoreError> {
        Ok(NonceOutcome::Recorded)
    }
}

/// A route authorizer that allows every route.
#[derive(Debug, Default)]
pub struct AllowingRoutes;

impl RouteAuthorizer for AllowingRoutes {
    fn authorize(&self, _machine: &Machine, _route: &MachineRoute) -> RouteDecision {
        RouteDecision::Allow
    }
}

/// The records, resolver and signed request of one allowed decision.
pub struct EvaluationFixture {
    pub owner: Owner,
    pub vault: Vault,
    pub machine: Machine,
    pub resolver: MaxMindCountryResolver,
    pub signed: SignedFixture,
    pub route: MachineRoute,
    pub now: DateTime<Utc>,
    pub source: IpAddr,
}

impl EvaluationFixture {
    /// Builds the fixture at [`decision_instant`] from [`SOURCE_IP`].
    ///
    /// # Errors
    ///
    /// Returns an error when a constant fixture value fails to parse or the MaxMind test database
    /// cannot be loaded.
    pub fn new() -> Result<Self, FixtureError> {
        let now = decision_instant();
        let machine_id: MachineId = "6f1c2b1e-8a53-4c0e-9a52-2f1d6c3b9e01".parse()?;
        let owner = Owner {
            id: "owner_bench".parse::<OwnerId>()?,
            active: true,
        };
        let vault = Vault {
            id: "vault_bench".parse::<VaultId>()?,
            owner_id: owner.id.clone(),
            name: "benchmarks".to_owned(),
            plan: Plan::Pro,
            machine_limit: 100,
            ip_allowlist: Some(IpAllowlist::parse(&["89.160.0.0/16", "10.0.0.0/8"])?),
        };
        let signed = SignedFixture::new(machine_id, now.timestamp())?;
        let public_key =
            MachinePublicKey::from_bytes(signed.signing_key.verifying_key().as_bytes())?;
        let machine = Machine {
            id: machine_id,
            vault_id: vault.id.clone(),
            name: "ci-runner".to_owned(),
            description: None,
            public_key,
            state: MachineState::Active,
            created_at: now,
            expires_at: machine_expiry(),
            guardrails: machine_guardrails()?,
            token_id: "tok_bench".parse::<TokenId>()?,
        };
        Ok(Self {
            owner,
            vault,
            machine,
            resolver: country_test_resolver()?,
            signed,
            route: MachineRoute::Poll,
            now,
            source: SOURCE_IP,
        })
    }

    /// Returns the evaluator's input for `request`, with the policy and transport clocks both at
    /// the fixture's instant.
    pub fn evaluation<'a>(&'a self, request: &'a SignedRequest) -> Evaluation<'a> {
        Evaluation {
            now: self.now,
            transport_now: self.now,
            source: Some(self.source),
            request,
            record: Some(MachineRecord {
                machine: &self.machine,
                vault: &self.vault,
                owner: &self.owner,
            }),
            route: &self.route,
            countries: &self.resolver,
            nonces: &AcceptingNonces,
            routes: &AllowingRoutes,
            config: EvaluationConfig::default(),
        }
    }
}
