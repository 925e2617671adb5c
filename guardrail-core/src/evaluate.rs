//! The nine-step evaluation of a signed machine request.
//!
//! [`evaluate`] runs the steps in the documented order and stops at the first failure.
//! [`evaluate_guardrails`] runs steps 1 to 7 alone, for a caller that wants to reject a blocked
//! machine before it reads the request body. Both return the [`Decision`] as data; the caller
//! persists the audit events, increments the named failure counter and responds to the client. The caller also checks lockouts before calling it
//! ([`check_before_evaluation`](crate::lockout::check_before_evaluation)).
//!
//! | step | check | client sees | audit | counter |
//! | --- | --- | --- | --- | --- |
//! | 1 | vault owner account is active | 401 | `auth_failure` | source |
//! | 2 | vault-wide IP allowlist, if configured | 401 | `auth_failure` | source |
//! | 3 | machine exists, approved and enabled | 401 | `auth_failure` | source |
//! | 4 | machine has not expired | 401 | `auth_failure` | source |
//! | 5 | machine IP allowlist, if enabled | 403 | `temp_machine_blocked`, axis `ip` | machine and source |
//! | 6 | machine countries, if enabled | 403 | `temp_machine_blocked`, axis `geo` | machine and source |
//! | 7 | machine time window, if enabled | 403 | `temp_machine_blocked`, axis `time_window` | machine and source |
//! | 8 | signature, timestamp and nonce | 401 (503 if the nonce store fails) | `auth_failure` | source |
//! | 9 | route authorization | 403 or 404 | `access_denied` | none |

mod decision;
mod route;

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::audit::{Actor, AuditAction, AuditEvent, Target};
use crate::guardrail::{CountryLookup, CountryResolver};
use crate::machine::{Machine, MachineState};
use crate::plan::{Owner, Vault};
use crate::request::{MaxSkew, NonceStore, RequestError, SignedRequest};

pub use decision::{
    ACCESS_DENIED, AUTHENTICATION_FAILED, Decision, DenyReason, NOT_FOUND, Outcome, Step,
    UNAVAILABLE,
};
pub use route::{
    DenialStatus, MachineRoute, RouteAuthorizer, RouteDecision, RouteDenial, RouteDenialReason,
};

use crate::lockout::LockoutKey;

/// A machine together with its vault and that vault's owner, as the caller loaded them for the
/// machine id in `X-Machine-Id`.
#[derive(Debug, Clone, Copy)]
pub struct MachineRecord<'a> {
    pub machine: &'a Machine,
    pub vault: &'a Vault,
    pub owner: &'a Owner,
}

/// Settings of the evaluation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvaluationConfig {
    /// The allowed difference between `X-Timestamp` and the transport clock.
    pub max_skew: MaxSkew,
}

/// Everything [`evaluate`] reads.
pub struct Evaluation<'a> {
    /// The policy clock: expiry (step 4) and the time window (step 7).
    pub now: DateTime<Utc>,
    /// The transport clock: timestamp freshness and nonce retention (step 8). It differs from
    /// `now` only when a test clock moved the policy clock.
    pub transport_now: DateTime<Utc>,
    /// The client address, `None` when a trusted proxy sent nothing parseable.
    pub source: Option<IpAddr>,
    pub request: &'a SignedRequest,
    /// The records found for the request's machine id; `None` when the id is unreadable or
    /// unknown.
    pub record: Option<MachineRecord<'a>>,
    pub route: &'a MachineRoute,
    pub countries: &'a dyn CountryResolver,
    pub nonces: &'a dyn NonceStore,
    pub routes: &'a dyn RouteAuthorizer,
    pub config: EvaluationConfig,
}

/// Evaluates one signed request through the nine steps and returns the decision.
///
/// Runs [`evaluate_guardrails`] (steps 1 to 7), then the signature (step 8) and the route
/// authorization (step 9), each one early return in the documented order.
pub fn evaluate(input: &Evaluation<'_>) -> Decision {
    let machine = match evaluate_guardrails(input) {
        Ok(machine) => machine,
        Err(decision) => return decision,
    };
    let source = canonical_source(input);
    let deny = |step: Step, reason: DenyReason| denial(input, source, step, reason);

    // Step 8: signature, timestamp and nonce, on the transport clock. The nonce store is called
    // only after the signature and the timestamp passed.
    let verified = input.request.verify(
        machine.id,
        machine.public_key.verifying_key(),
        input.transport_now,
        input.config.max_skew,
        input.nonces,
    );
    if let Err(error) = verified {
        return deny(Step::Signature, signature_reason(error));
    }

    // Step 9: route authorization by the server's grants and policies.
    if let RouteDecision::Deny(denial) = input.routes.authorize(machine, input.route) {
        let mut decision = deny(
            Step::RouteAuthorization,
            DenyReason::Route {
                route: input.route.clone(),
                reason: denial.reason,
            },
        );
        decision.status = denial.status.code();
        decision.client_message = Some(match denial.status {
            DenialStatus::Forbidden => ACCESS_DENIED,
            DenialStatus::NotFound => NOT_FOUND,
        });
        return decision;
    }

    Decision {
        outcome: Outcome::Allow {
            machine: machine.id,
        },
        status: 200,
        client_message: None,
        audit_events: Vec::new(),
        rate_limit: None,
        source,
    }
}

/// Runs steps 1 to 7: the owner, the vault-wide allowlist, the machine's state and expiry, and
/// the machine's three guardrail axes. Returns the machine when they all pass.
///
/// None of these steps reads the body hash, the signature or the nonce store. A caller can
/// therefore parse the headers with an empty body, run this before it reads the request body, and
/// reject a blocked machine without reading it. If this passes, the caller parses the request
/// again with its body and calls [`evaluate`], which runs steps 1 to 7 again before steps 8 and 9.
///
/// # Errors
///
/// Returns the denial of the first step that fails, exactly as [`evaluate`] would return it.
#[expect(
    clippy::result_large_err,
    reason = "the denial goes straight to the caller once per request, and a box would add an allocation to it"
)]
pub fn evaluate_guardrails<'a>(input: &Evaluation<'a>) -> Result<&'a Machine, Decision> {
    let source = canonical_source(input);
    let header_id = input.request.machine_id();
    #[expect(
        clippy::result_large_err,
        reason = "the closure only wraps the denial that this function returns"
    )]
    let deny = |step: Step, reason: DenyReason| Err(denial(input, source, step, reason));

    // Step 1: the vault owner's account is active. Without a record there is no vault and no
    // owner to check, and the request fails at step 3.
    if let Some(record) = input.record {
        let belongs_together = header_id == Ok(record.machine.id)
            && record.machine.vault_id == record.vault.id
            && record.vault.owner_id == record.owner.id;
        if !belongs_together {
            return deny(
                Step::OwnerActive,
                DenyReason::RecordMismatch {
                    machine: record.machine.id,
                    vault: record.vault.id.clone(),
                    owner: record.owner.id.clone(),
                },
            );
        }
        if !record.owner.active {
            let owner = record.owner.id.clone();
            return deny(Step::OwnerActive, DenyReason::OwnerInactive { owner });
        }
    }

    // Step 2: the vault-wide IP allowlist, if configured. An undetermined source fails it.
    if let Some(allowlist) = input
        .record
        .and_then(|record| record.vault.ip_allowlist.as_ref())
    {
        match source {
            None => return deny(Step::VaultIpAllowlist, DenyReason::VaultSourceUndetermined),
            Some(address) if !allowlist.contains(address) => {
                let reason = DenyReason::VaultIpNotAllowed { address };
                return deny(Step::VaultIpAllowlist, reason);
            }
            Some(_) => {}
        }
    }

    // Step 3: the machine exists, is approved and enabled. An unreadable id is an unknown machine.
    let machine_id = match header_id {
        Ok(id) => id,
        Err(error) => {
            let reason = DenyReason::MachineIdUnreadable(error.clone());
            return deny(Step::MachineEnabled, reason);
        }
    };
    let Some(record) = input.record else {
        let reason = DenyReason::UnknownMachine {
            machine: machine_id,
        };
        return deny(Step::MachineEnabled, reason);
    };
    let machine = record.machine;
    if matches!(
        machine.state,
        MachineState::Pending | MachineState::Disabled
    ) {
        let reason = DenyReason::MachineNotEnabled {
            machine: machine.id,
            state: machine.state,
        };
        return deny(Step::MachineEnabled, reason);
    }

    // Step 4: the machine has not expired. A machine the sweeper marked expired fails here too,
    // whatever `now` is, because `expired` is terminal.
    if machine.state == MachineState::Expired || input.now >= machine.expires_at {
        let reason = DenyReason::Expired {
            now: input.now,
            expires_at: machine.expires_at,
        };
        return deny(Step::NotExpired, reason);
    }

    // Step 5: the machine's IP allowlist, if enabled. An undetermined source fails it.
    if let Some(allowlist) = &machine.guardrails.ip_allowlist {
        match source {
            None => return deny(Step::MachineIpAllowlist, DenyReason::SourceUndetermined),
            Some(address) if !allowlist.contains(address) => {
                let reason = DenyReason::IpNotAllowed { address };
                return deny(Step::MachineIpAllowlist, reason);
            }
            Some(_) => {}
        }
    }

    // Step 6: the machine's countries, if enabled. A country that cannot be determined fails it.
    if let Some(countries) = &machine.guardrails.countries {
        let Some(address) = source else {
            let detail = "the source address is undetermined".to_owned();
            return deny(Step::MachineGeo, DenyReason::CountryUndetermined { detail });
        };
        match input.countries.resolve(address) {
            CountryLookup::Undetermined(cause) => {
                let detail = cause.to_string();
                let reason = DenyReason::CountryUndetermined { detail };
                return deny(Step::MachineGeo, reason);
            }
            CountryLookup::Country(country) if !countries.contains(country) => {
                let reason = DenyReason::CountryNotAllowed { country };
                return deny(Step::MachineGeo, reason);
            }
            CountryLookup::Country(_) => {}
        }
    }

    // Step 7: the machine's time window, if enabled, on the policy clock.
    if let Some(window) = &machine.guardrails.time_window
        && !window.is_open(input.now)
    {
        let reason = DenyReason::OutsideWindow { now: input.now };
        return deny(Step::MachineTimeWindow, reason);
    }

    Ok(machine)
}

/// Returns the client address as every step matches it: an IPv4-mapped IPv6 source becomes the
/// IPv4 address it carries.
fn canonical_source(input: &Evaluation<'_>) -> Option<IpAddr> {
    input.source.map(|address| address.to_canonical())
}

/// Maps a step 8 error to its deny reason.
fn signature_reason(error: RequestError) -> DenyReason {
    match error {
        RequestError::BadSignature(_) => DenyReason::BadSignature,
        RequestError::StaleTimestamp(stale) => DenyReason::StaleTimestamp {
            timestamp: stale.timestamp(),
            now: stale.now(),
            skew: stale.max_skew(),
        },
        RequestError::Replayed(replayed) => DenyReason::Replayed {
            nonce: replayed.nonce().to_owned(),
        },
        RequestError::NonceStore(store) => DenyReason::NonceStoreUnavailable(store),
        other => DenyReason::MalformedRequest(other),
    }
}

/// Builds the decision of a failed step: status, client message, audit event and counter.
fn denial(
    input: &Evaluation<'_>,
    source: Option<IpAddr>,
    step: Step,
    reason: DenyReason,
) -> Decision {
    let machine_id = input.request.machine_id().ok();
    let store_failed = matches!(reason, DenyReason::NonceStoreUnavailable(_));

    let (status, client_message, rate_limit) = match step {
        Step::MachineIpAllowlist | Step::MachineGeo | Step::MachineTimeWindow => (
            403,
            ACCESS_DENIED,
            machine_id.map(|machine| LockoutKey::MachineSource(machine, source)),
        ),
        Step::RouteAuthorization => (403, ACCESS_DENIED, None),
        // A failing store is not the client's fault, so it counts against no one.
        Step::Signature if store_failed => (503, UNAVAILABLE, None),
        Step::OwnerActive
        | Step::VaultIpAllowlist
        | Step::MachineEnabled
        | Step::NotExpired
        | Step::Signature => (401, AUTHENTICATION_FAILED, Some(LockoutKey::Source(source))),
    };

    let audit_events = input
        .record
        .map(|record| vec![audit_event(input, record.machine, source, step, &reason)])
        .unwrap_or_default();

    Decision {
        outcome: Outcome::Deny { step, reason },
        status,
        client_message: Some(client_message),
        audit_events,
        rate_limit,
        source,
    }
}

/// Builds the audit event of a failed step for a known machine.
fn audit_event(
    input: &Evaluation<'_>,
    machine: &Machine,
    source: Option<IpAddr>,
    step: Step,
    reason: &DenyReason,
) -> AuditEvent {
    let (action, target, detail) = match (step.guardrail_axis(), step) {
        (Some(axis), _) => (
            AuditAction::TempMachineBlocked,
            Target::Machine(machine.id),
            json!({ "axis": axis, "reason": reason.to_string(), "count": 1 }),
        ),
        (None, Step::RouteAuthorization) => {
            let target = match input.route {
                MachineRoute::ReadSecret(secret) => Target::Secret(secret.clone()),
                _ => Target::Machine(machine.id),
            };
            let detail = json!({ "route": input.route.name(), "reason": reason.to_string() });
            (AuditAction::AccessDenied, target, detail)
        }
        (None, _) => (
            AuditAction::AuthFailure,
            Target::Machine(machine.id),
            json!({ "step": step.number(), "reason": reason.to_string() }),
        ),
    };
    AuditEvent {
        at: input.now,
        vault_id: machine.vault_id.clone(),
        actor: Actor::Machine(machine.id),
        action,
        target,
        source_ip: source,
        detail,
    }
}
