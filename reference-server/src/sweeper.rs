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

use std::time::Duration;

use chrono::TimeDelta;
use guardrail_store::{PurgeCounts, StoreError, SweepReport};

use crate::clock::transport_now;
use crate::state::AppState;

/// The lease name the replicas compete for.
pub const LEASE_NAME: &str = "sweeper";
/// Machines loaded per batch.
pub const SWEEP_BATCH: u32 = 500;
/// Batches per run.
pub const MAX_BATCHES_PER_RUN: u32 = 20;

/// What one run did, or `None` when another replica holds the lease.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunReport {
    /// Machines marked expired, machines purged and audit entries written.
    pub sweep: SweepReport,
    /// Expired nonces, lockout counters and coalescing entries deleted.
    pub purged: PurgeCounts,
}

/// Runs one sweep as `holder` if the lease is free or already held by it.
///
/// # Errors
///
/// The store's error.
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
    for _ in 0..MAX_BATCHES_PER_RUN {
        let batch = store.sweep(now, SWEEP_BATCH)?;
        sweep.expired += batch.expired;
        sweep.purged += batch.purged;
        let done = batch.expired == 0 && batch.purged == 0;
        sweep.audit.extend(batch.audit);
        if done {
            break;
        }
    }
    // Coalescing state is stamped with the policy clock, replay and lockout state with the
    // transport clock.
    let coalesce_period = TimeDelta::seconds(i64::from(state.settings.coalesce.period_seconds()));
    let purged = store.purge_expired(transport_now(), now - coalesce_period)?;
    // TODO: alert webhooks subscribed to `temp_machine_expired` and `temp_machine_purge`.
    Ok(Some(RunReport { sweep, purged }))
}

/// Starts the sweeper on the current actix runtime: a run every `interval`, and one whenever
/// [`AppState::sweep_now`] is notified.
pub fn spawn(state: AppState, interval: Duration) -> actix_web::rt::task::JoinHandle<()> {
    let holder = holder_id();
    let lease_ttl = interval.saturating_mul(3);
    actix_web::rt::spawn(async move {
        tracing::info!(interval_seconds = interval.as_secs(), %holder, "sweeper started");
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
                Ok(None) => tracing::debug!("another replica holds the sweeper lease"),
                Err(error) => tracing::warn!(%error, "sweep failed, retrying at the next interval"),
            }
        }
    })
}

/// A random id for this process's claim on the lease.
fn holder_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return format!("pid-{}", std::process::id());
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
