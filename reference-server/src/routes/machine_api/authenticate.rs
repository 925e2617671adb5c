//! The nine steps for one signed request, with the lockout check before them and the decision's
//! audit entries, failure counter and metrics after them.

use std::cell::RefCell;
use std::net::IpAddr;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::web::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use guardrail_core::audit::AuditAction;
use guardrail_core::evaluate::{
    DenialStatus, EvaluationConfig, MachineRecord, MachineRoute, RouteAuthorizer, RouteDecision,
    RouteDenial, RouteDenialReason, Step,
};
use guardrail_core::lockout::{FailureCounter, LockStatus, LockoutKey, check_before_evaluation};
use guardrail_core::machine::Machine;
use guardrail_core::request::{
    MACHINE_ID_HEADER, NONCE_HEADER, RawRequest, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use guardrail_core::{Decision, Evaluation, SignedRequest, evaluate};
use guardrail_store::{Store, StoreError};

use crate::audit_log;
use crate::clock::transport_now;
use crate::error::ApiError;
use crate::state::{AppState, store_error};

/// A machine that passed all nine steps for this request.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The machine as loaded for the request.
    pub machine: Machine,
    /// The canonical client address, `None` when undetermined.
    pub source: Option<IpAddr>,
    /// The policy clock's instant the request was evaluated at.
    pub now: DateTime<Utc>,
}

/// The parts of the HTTP request that the evaluation needs, read on the async side because
/// [`HttpRequest`] cannot move to a blocking thread.
#[derive(Debug)]
pub struct PendingRequest {
    signed: SignedRequest,
    source: Option<IpAddr>,
}

impl PendingRequest {
    /// Reads the raw path (without query), the four headers (names match case-insensitively)
    /// and the exact body, and decides the client address.
    pub fn read(state: &AppState, request: &HttpRequest, body: &Bytes) -> Self {
        let header = |name: &str| request.headers().get(name).map(|value| value.as_bytes());
        let signed = SignedRequest::parse(&RawRequest {
            method: request.method().as_str(),
            path: request.uri().path(),
            machine_id: header(MACHINE_ID_HEADER),
            timestamp: header(TIMESTAMP_HEADER),
            nonce: header(NONCE_HEADER),
            signature: header(SIGNATURE_HEADER),
            body,
        });
        let source = match state.client_addresses.resolve_request(request) {
            Ok(address) => Some(address),
            Err(reason) => {
                tracing::info!(%reason, "client address undetermined");
                None
            }
        };
        Self { signed, source }
    }
}

/// Runs the lockout check and the nine steps for `route`, persists what the decision caused,
/// and returns the machine when every step passed.
///
/// # Errors
///
/// 429 for a locked source or machine and source pair; the decision's 401, 403, 404 or 503;
/// 503 or 500 when the store fails.
pub fn authenticate(
    state: &AppState,
    pending: &PendingRequest,
    route: &MachineRoute,
) -> Result<Authenticated, ApiError> {
    let store = state.store.as_ref();
    let transport_now = transport_now();
    let now = state.clock.now();
    let source = pending.source;
    let machine_id = pending.signed.machine_id().ok();

    // Before step 1: a locked source, or a locked machine and source pair, is not evaluated.
    let source_counter = store
        .lockout_state(&LockoutKey::Source(source), transport_now)
        .map_err(store_error)?;
    let pair_counter = match machine_id {
        Some(machine) => store
            .lockout_state(&LockoutKey::MachineSource(machine, source), transport_now)
            .map_err(store_error)?,
        None => None,
    };
    let lookup = |key: &LockoutKey| match key {
        LockoutKey::Source(_) => source_counter.as_ref(),
        LockoutKey::MachineSource(..) => pair_counter.as_ref(),
    };
    if let Some((
        key,
        LockStatus::Locked {
            retry_after_seconds,
        },
    )) = check_before_evaluation(source, machine_id, lookup, transport_now)
    {
        tracing::info!(
            ?key,
            retry_after_seconds,
            "locked out, request not evaluated"
        );
        return Err(ApiError::RateLimited {
            retry_after: Duration::from_secs(retry_after_seconds),
        });
    }

    let machine = match machine_id {
        Some(id) => store.find_machine(&id).map_err(store_error)?,
        None => None,
    };
    let vault = match &machine {
        Some(machine) => store.get_vault(&machine.vault_id).map_err(store_error)?,
        None => None,
    };
    let owner = match &vault {
        Some(vault) => store.get_owner(&vault.owner_id).map_err(store_error)?,
        None => None,
    };
    let record = match (&machine, &vault, &owner) {
        (Some(machine), Some(vault), Some(owner)) => Some(MachineRecord {
            machine,
            vault,
            owner,
        }),
        _ => None,
    };

    let routes = StoreRoutes::new(store);
    let decision = evaluate(&Evaluation {
        now,
        transport_now,
        source,
        request: &pending.signed,
        record,
        route,
        countries: state.countries.as_ref(),
        nonces: store,
        routes: &routes,
        config: EvaluationConfig {
            max_skew: state.settings.max_skew,
        },
    });
    if let Some(error) = routes.failure.into_inner() {
        // The authorizer could not read the store, so its denial means nothing.
        return Err(store_error(error));
    }
    record_decision(state, &decision, now, transport_now);

    match (decision.is_allowed(), machine) {
        (true, Some(machine)) => Ok(Authenticated {
            machine,
            source: decision.source,
            now,
        }),
        _ => Err(client_error(&decision)),
    }
}

/// Persists the decision's audit events, increments its failure counter and counts it in the
/// metrics. Failures here are logged, because the response is already decided.
fn record_decision(
    state: &AppState,
    decision: &Decision,
    now: DateTime<Utc>,
    transport_now: DateTime<Utc>,
) {
    let step = decision.failed_step();
    state.metrics.record_decision(step.map(Step::number));
    let block = decision.block_key();
    if let Some(block) = &block {
        state.metrics.record_block(block.axis);
    }
    if let (Some(step), Some(reason)) = (step, decision.deny_reason()) {
        tracing::info!(step = step.number(), %reason, source = ?decision.source, "machine request denied");
    }

    for event in &decision.audit_events {
        let written = match &block {
            Some(block) if event.action == AuditAction::TempMachineBlocked => {
                audit_log::append_block(state, event, block, now).map(drop)
            }
            _ => audit_log::append(state, std::slice::from_ref(event)),
        };
        if let Err(error) = written {
            tracing::warn!(%error, action = event.action.as_str(), "cannot write the audit entry of a machine request");
        }
    }

    if let Some(key) = decision.rate_limit
        && let Err(error) = record_failure(state.store.as_ref(), state, &key, transport_now)
    {
        tracing::warn!(%error, ?key, "cannot count a failed machine request");
    }
}

/// Counts one failure against `key` on the transport clock.
///
/// # Errors
///
/// The store's error.
pub fn record_failure(
    store: &dyn Store,
    state: &AppState,
    key: &LockoutKey,
    transport_now: DateTime<Utc>,
) -> Result<FailureCounter, StoreError> {
    let policy = state.settings.lockout;
    // A counter matters until its lock or its counting period ends, each at most one period
    // after this failure.
    let keep_until = transport_now
        .checked_add_signed(TimeDelta::seconds(i64::from(policy.period_seconds())))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    store.record_failure(key, transport_now, keep_until, &|counter| {
        counter
            .unwrap_or_default()
            .record_failure(&policy, transport_now)
    })
}

/// Builds the client's error for a denied decision.
fn client_error(decision: &Decision) -> ApiError {
    let message = decision.client_message.unwrap_or_default().to_owned();
    match decision.status {
        401 => ApiError::Unauthenticated,
        403 => ApiError::Forbidden(message),
        404 => ApiError::NotFound(message),
        503 => ApiError::Unavailable,
        other => {
            tracing::error!(
                status = other,
                "the evaluator returned an unexpected status"
            );
            ApiError::Internal
        }
    }
}

/// Step 9 over the store's grants and memberships. A store failure is kept and turned into 503
/// by the caller, because the trait's return type cannot carry it.
struct StoreRoutes<'a> {
    store: &'a dyn Store,
    failure: RefCell<Option<StoreError>>,
}

impl<'a> StoreRoutes<'a> {
    fn new(store: &'a dyn Store) -> Self {
        Self {
            store,
            failure: RefCell::new(None),
        }
    }

    fn check(&self, machine: &Machine, route: &MachineRoute) -> Result<RouteDecision, StoreError> {
        let deny = |status, reason| Ok(RouteDecision::Deny(RouteDenial { status, reason }));
        match route {
            MachineRoute::ReadSecret(secret) => {
                let exists = self
                    .store
                    .get_secret(secret)?
                    .is_some_and(|found| found.vault_id == machine.vault_id);
                if !exists {
                    let reason = RouteDenialReason::SecretNotFound {
                        secret: secret.clone(),
                    };
                    return deny(DenialStatus::NotFound, reason);
                }
                if !self.store.has_grant(secret, &machine.id)? {
                    let reason = RouteDenialReason::NoSecretGrant {
                        secret: secret.clone(),
                    };
                    return deny(DenialStatus::Forbidden, reason);
                }
                Ok(RouteDecision::Allow)
            }
            MachineRoute::ListProjectSecrets(project) | MachineRoute::Export(Some(project)) => {
                if self
                    .store
                    .get_project(&machine.vault_id, project)?
                    .is_none()
                {
                    let reason = RouteDenialReason::ProjectNotFound {
                        project: project.clone(),
                    };
                    return deny(DenialStatus::NotFound, reason);
                }
                let member = self
                    .store
                    .machine_projects(&machine.id)?
                    .iter()
                    .any(|joined| joined.id == *project);
                if !member {
                    let reason = RouteDenialReason::NotProjectMember {
                        project: project.clone(),
                    };
                    return deny(DenialStatus::Forbidden, reason);
                }
                Ok(RouteDecision::Allow)
            }
            MachineRoute::ListSecrets
            | MachineRoute::Export(None)
            | MachineRoute::Poll
            | MachineRoute::CliProjects
            | MachineRoute::CliSecrets => Ok(RouteDecision::Allow),
        }
    }
}

impl RouteAuthorizer for StoreRoutes<'_> {
    fn authorize(&self, machine: &Machine, route: &MachineRoute) -> RouteDecision {
        match self.check(machine, route) {
            Ok(decision) => decision,
            Err(error) => {
                *self.failure.borrow_mut() = Some(error);
                // Any denial does: the caller answers 503 before using it.
                RouteDecision::Deny(RouteDenial {
                    status: DenialStatus::NotFound,
                    reason: match route {
                        MachineRoute::ReadSecret(secret) => RouteDenialReason::SecretNotFound {
                            secret: secret.clone(),
                        },
                        _ => RouteDenialReason::ProjectNotFound {
                            project: placeholder_project(),
                        },
                    },
                })
            }
        }
    }
}

fn placeholder_project() -> guardrail_core::ids::ProjectId {
    guardrail_core::ids::ProjectId::from_random_bytes(&[0; 12])
}
