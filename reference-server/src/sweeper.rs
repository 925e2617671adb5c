//! The background sweeper: marks machines past expiry, purges them 30 days later, and drops
//! expired replay, lockout and coalescing state.
//!
//! Each run first takes the store's `sweeper` lease, so that of several replicas sharing a
//! PostgreSQL database only one sweeps at a time. The lease lasts three intervals, so another
//! replica takes over when the holder stops. A run drains at most [`MAX_BATCHES_PER_RUN`]
//! batches of [`SWEEP_BATCH`] machines; a larger backlog continues at the next run.
//!
//! The sweeper runs every interval (at most 60 seconds) and also right after the test clock
//! moved, so that end-to-end tests see expiry and purge without waiting.
//!
//! Every run that holds the lease also deletes expired nonces, lockout counters and coalescing
//! state with the store's `purge_expired`, even when the machine sweep failed. The SQL
//! backends bound those tables only this way, so a failing sweep must not let them grow.
//!
//! The `temp_machine_expired` and `temp_machine_purge` entries a run writes are alerted to
//! their subscribers like the entries of any other action.

use std::time::Duration;

use chrono::TimeDelta;
use guardrail_store::{PurgeCounts, StoreError, SweepReport};

use crate::audit_log;
use crate::clock::transport_now;
use crate::state::AppState;

/// The lease name the replicas compete for.
pub const LEASE_NAME: &str = "sweeper";
/// Machines loaded per batch.
pub const SWEEP_BATCH: u32 = 500;
/// Batches per run.
pub const MAX_BATCHES_PER_RUN: u32 = 20;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunReport {
    /// Machines marked expired, machines purged and the audit entries written.
    pub sweep: SweepReport,
    /// Expired nonces, lockout counters and coalescing entries deleted.
    pub purged: PurgeCounts,
}

/// Runs one sweep as `holder` if the lease is free or already held by it, alerts the audit
/// entries it wrote, and purges expired replay, lockout and coalescing state. Returns `None`
/// when another replica holds the lease.
///
/// # Errors
///
/// The store's error. When the machine sweep fails, the purge still runs, and the entries of
/// the batches committed before the failure are still alerted.
pub fn run_once(
    state: &AppState,
    holder: &str,
    lease_ttl: Duration,
) -> Result<Option<RunReport>, StoreError> {
    let store = state.store.as_ref();
    if !store.try_acquire_lease(LEASE_NAME, holder, transport_now(), lease_ttl)? {
        return Ok(None);
    }
    let now = state.clock.now();
    let mut sweep = SweepReport::default();
    let swept = sweep_batches(state, now, &mut sweep);
    // Coalescing state is stamped with the policy clock, replay and lockout state with the
    // transport clock.
    let coalesce_period = TimeDelta::seconds(i64::from(state.settings.coalesce.period_seconds()));
    let purged = store.purge_expired(transport_now(), now - coalesce_period);
    swept?;
    Ok(Some(RunReport {
        sweep,
        purged: purged?,
    }))
}

/// Sweeps up to [`MAX_BATCHES_PER_RUN`] batches into `report` and alerts each batch's entries
/// once the batch is committed.
fn sweep_batches(
    state: &AppState,
    now: chrono::DateTime<chrono::Utc>,
    report: &mut SweepReport,
) -> Result<(), StoreError> {
    for _ in 0..MAX_BATCHES_PER_RUN {
        let batch = state.store.sweep(now, SWEEP_BATCH)?;
        for record in &batch.audit {
            audit_log::alert(state, record);
        }
        report.expired += batch.expired;
        report.purged += batch.purged;
        let done = batch.expired == 0 && batch.purged == 0;
        report.audit.extend(batch.audit);
        if done {
            break;
        }
    }
    Ok(())
}

/// Starts the sweeper on the current actix runtime as `holder` (see [`holder_id`]): a run every
/// `interval`, and one whenever [`AppState::sweep_now`] is notified.
pub fn spawn(
    state: AppState,
    holder: String,
    interval: Duration,
) -> actix_web::rt::task::JoinHandle<()> {
    let lease_ttl = interval.saturating_mul(3);
    actix_web::rt::spawn(async move {
        tracing::info!(interval_seconds = interval.as_secs(), %holder, "sweeper started");
        // Waiting for another holder's lease is normal between replicas, but a single server
        // that waits is worth one line at startup: a process that was killed holds the lease
        // until it lapses.
        let mut reported_wait = false;
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = state.sweep_now.notified() => {}
            }
            let holder = holder.clone();
            let result = state
                .blocking(move |state| {
                    run_once(state, &holder, lease_ttl).map_err(crate::state::store_error)
                })
                .await;
            match result {
                Ok(Some(report)) if report != RunReport::default() => tracing::info!(
                    expired = report.sweep.expired,
                    purged = report.sweep.purged,
                    audit_entries = report.sweep.audit.len(),
                    nonces_dropped = report.purged.nonces,
                    lockouts_dropped = report.purged.lockouts,
                    coalesce_entries_dropped = report.purged.coalesce_entries,
                    "sweep finished"
                ),
                Ok(Some(_)) => tracing::debug!("sweep found nothing to do"),
                Ok(None) if !reported_wait => {
                    reported_wait = true;
                    tracing::info!(
                        lease_seconds = lease_ttl.as_secs(),
                        "another process holds the sweeper lease; this server sweeps once it lapses"
                    );
                }
                Ok(None) => tracing::debug!("another replica holds the sweeper lease"),
                Err(error) => tracing::warn!(%error, "sweep failed, retrying at the next interval"),
            }
        }
    })
}

/// Releases this process's claim on the lease at shutdown, so that the next server sweeps at
/// once instead of waiting for the lease to lapse.
///
/// # Errors
///
/// The store's error when it cannot be reached.
pub fn release(state: &AppState, holder: &str) -> Result<(), guardrail_store::StoreError> {
    state.store.release_lease(LEASE_NAME, holder)
}

/// A random id for this process's claim on the lease.
pub fn holder_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return format!("pid-{}", std::process::id());
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use std::sync::Arc;

    use chrono::{DateTime, Utc};
    use guardrail_core::audit::{Actor, AuditAction, AuditEvent, Target};
    use guardrail_core::guardrail::{Guardrails, StaticCountryResolver};
    use guardrail_core::ids::MachineId;
    use guardrail_core::lifetime::Lifetime;
    use guardrail_core::lockout::{CoalescePolicy, FailureCounter, LockoutKey, LockoutPolicy};
    use guardrail_core::machine::MachinePublicKey;
    use guardrail_core::plan::Plan;
    use guardrail_core::request::{MaxSkew, NonceOutcome};
    use guardrail_core::token::{TokenRandomness, TokenRequest, issue_token};
    use guardrail_store::{CoalesceKey, MemoryLimits, MemoryStore, NewWebhook, Store};
    use tokio::sync::Notify;

    use super::*;
    use crate::client_addr::ClientAddressResolver;
    use crate::clock::{PolicyClock, TestClock};
    use crate::crypto::{SecretCipher, SecretKey};
    use crate::state::Settings;
    use crate::telemetry::Metrics;
    use crate::test_http::TestServer;
    use crate::webhook::{RetryPolicy, WebhookSender, spawn_dispatcher};

    const TTL: Duration = Duration::from_secs(180);

    fn state(webhooks: Option<WebhookSender>) -> AppState {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(MemoryLimits::default()));
        AppState {
            store,
            cipher: Arc::new(SecretCipher::new(&SecretKey::generate().unwrap())),
            clock: PolicyClock::Test(Arc::new(TestClock::new())),
            settings: Arc::new(Settings {
                public_url: "http://localhost:8080".parse().unwrap(),
                allow_private_webhooks: true,
                max_skew: MaxSkew::from_secs(60).unwrap(),
                lockout: LockoutPolicy::default(),
                coalesce: CoalescePolicy::default(),
            }),
            client_addresses: Arc::new(ClientAddressResolver::new(
                Vec::new(),
                "x-forwarded-for".parse().unwrap(),
            )),
            countries: Arc::new(StaticCountryResolver::new(Vec::new())),
            metrics: Metrics::new().unwrap(),
            webhooks,
            sweep_now: Arc::new(Notify::new()),
        }
    }

    /// Registers a machine of one hour's lifetime at `at` and returns its id.
    fn register_at(
        state: &AppState,
        at: DateTime<Utc>,
    ) -> (guardrail_core::ids::VaultId, MachineId) {
        let store = state.store.as_ref();
        let created =
            crate::vault_admin::create_vault(store, "sweep", Plan::Pro, None, at).unwrap();
        let vault = store.get_vault(&created.vault_id).unwrap().unwrap();
        let secret = [7; 32];
        let issued = issue_token(
            &vault,
            &vault.owner_id,
            TokenRequest {
                machine_name: "short-lived".to_owned(),
                description: None,
                machine_lifetime: Lifetime {
                    months: 0,
                    days: 0,
                    hours: 1,
                },
                token_lifetime_hours: None,
                guardrails: Guardrails::default(),
            },
            TokenRandomness {
                id: [7; 12],
                secret: &secret,
            },
            at,
        )
        .unwrap();
        store.insert_token(&issued.token, &issued.event).unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let public_key = MachinePublicKey::from_bytes(&key.verifying_key().to_bytes()).unwrap();
        let machine = store
            .register_machine(&vault.id, &issued.plaintext, &public_key, [7; 16], at)
            .unwrap()
            .value;
        (vault.id, machine.id)
    }

    #[test]
    fn run_purges_expired_guard_state() {
        let state = state(None);
        let store = state.store.as_ref();
        let machine = MachineId::from_random_bytes([1; 16]);
        let past = transport_now() - TimeDelta::minutes(5);
        let future = transport_now() + TimeDelta::minutes(5);

        store.insert_if_absent(machine, "old", past, past).unwrap();
        store
            .insert_if_absent(machine, "live", future, past)
            .unwrap();
        let key = LockoutKey::Source(Some([192, 0, 2, 1].into()));
        let counter = |_: Option<FailureCounter>| FailureCounter {
            failures: 1,
            first_failure_at: Some(past),
            locked_until: None,
        };
        store.record_failure(&key, past, past, &counter).unwrap();
        let coalesce_key = CoalesceKey {
            machine_id: machine,
            source_ip: None,
            axis: "ip".to_owned(),
            reason: "not allowed".to_owned(),
        };
        let stale_block = AuditEvent::new(
            state.clock.now() - TimeDelta::hours(2),
            guardrail_core::ids::VaultId::from_random_bytes(&[1; 12]),
            Actor::Machine(machine),
            AuditAction::TempMachineBlocked,
            Target::Machine(machine),
            serde_json::json!({ "axis": "ip", "reason": "not allowed", "count": 1 }),
        );
        store
            .append_coalesced(&stale_block, &coalesce_key, DateTime::<Utc>::MAX_UTC)
            .unwrap();

        // Another replica holds the lease: this run neither sweeps nor purges.
        assert!(
            store
                .try_acquire_lease(LEASE_NAME, "other", transport_now(), TTL)
                .unwrap()
        );
        assert_eq!(run_once(&state, "this", TTL).unwrap(), None);
        assert!(store.coalesce_state(&coalesce_key).unwrap().is_some());
        store.release_lease(LEASE_NAME, "other").unwrap();

        let report = run_once(&state, "this", TTL).unwrap().unwrap();
        assert_eq!(report.purged.nonces, 1);
        assert_eq!(report.purged.lockouts, 1);
        assert_eq!(report.purged.coalesce_entries, 1);
        assert_eq!(store.coalesce_state(&coalesce_key).unwrap(), None);
        assert_eq!(
            store
                .insert_if_absent(machine, "live", future, transport_now())
                .unwrap(),
            NonceOutcome::Replayed,
            "an unexpired nonce stays"
        );

        // The next run has nothing left to purge.
        let again = run_once(&state, "this", TTL).unwrap().unwrap();
        assert_eq!(again, RunReport::default());
    }

    #[actix_web::test]
    async fn run_alerts_expired_and_purged_machines() {
        let server = TestServer::start(|_| (204, String::new()));
        let policy = RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        };
        let (sender, _dispatcher) = spawn_dispatcher(policy, true, 16, |_| {}).unwrap();
        let state = state(Some(sender));
        let store = state.store.as_ref();
        let registered_at = state.clock.now() - TimeDelta::days(31);
        let (vault_id, machine_id) = register_at(&state, registered_at);
        store
            .create_webhook(&NewWebhook {
                vault_id: vault_id.clone(),
                url: format!("http://{}/hook", server.addr),
                actions: vec![
                    AuditAction::TempMachineExpired,
                    AuditAction::TempMachinePurge,
                ],
                secret: audit_log::seal_webhook_secret(&state.cipher, b"whsec").unwrap(),
                created_at: registered_at,
            })
            .unwrap();

        let report = run_once(&state, "this", TTL).unwrap().unwrap();
        assert_eq!(report.sweep.expired, 1);
        assert_eq!(report.sweep.purged, 1);
        assert_eq!(store.find_machine(&machine_id).unwrap(), None);
        let written: Vec<(u64, String)> = report
            .sweep
            .audit
            .iter()
            .map(|record| {
                (
                    u64::try_from(record.id.0).unwrap(),
                    record.event.action.as_str().to_owned(),
                )
            })
            .collect();
        assert_eq!(written.len(), 2, "{written:?}");

        for _ in 0..100 {
            if server.count() >= written.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut alerted: Vec<(u64, String)> = server
            .recorded()
            .iter()
            .map(|request| {
                let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
                (
                    body["id"].as_u64().unwrap(),
                    body["action"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        alerted.sort();
        assert_eq!(alerted, written);
        let actions: Vec<&str> = alerted.iter().map(|(_, action)| action.as_str()).collect();
        assert_eq!(actions, vec!["temp_machine_expired", "temp_machine_purge"]);
    }
}
