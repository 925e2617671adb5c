//! The embedded-service example's in-memory store: records, grants, nonces, failure counters
//! and the audit log, all in one struct of maps behind a [`Mutex`].
//!
//! It implements the two traits the engine calls during an evaluation,
//! [`NonceStore`] (step 8) and [`RouteAuthorizer`] (step 9), and the bookkeeping the caller does
//! around it: the lockout pre-check, failure counters, and coalesced audit entries. Nothing
//! survives a restart, so a real service keeps these tables in a database shared by its replicas.
//!
//! # Locking
//!
//! Every method takes the one lock for a short map operation and releases it before returning.
//! [`MemoryStore::load_record`] returns owned copies, so the caller holds no lock while
//! [`evaluate`](guardrail_core::evaluate()) calls back into the store.
//!
//! # Bounds
//!
//! Nonces, failure counters and recent blocks are keyed by values a client chooses, so each
//! table has a maximum size ([`Limits`]). When a table is full, entries that no longer matter
//! are dropped first. What happens next differs per table:
//!
//! - Nonces: an unexpired nonce is never dropped, so a full table rejects the insertion and
//!   the request fails closed with 503.
//! - Failure counters: a lockout must not be lost, so while the table is full every request
//!   whose keys have no counter yet gets 429 as if it were locked out.
//! - Recent blocks: a block that finds no room gets its own audit entry instead of a count.
//!   Only the audit log grows, and that is bounded too.
//! - Audit log: the oldest entry is dropped. A real service persists entries and never drops
//!   them; here they are printed as they are written.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use guardrail_core::Decision;
use guardrail_core::audit::AuditEvent;
use guardrail_core::evaluate::{
    DenialStatus, MachineRecord, MachineRoute, RouteAuthorizer, RouteDecision, RouteDenial,
    RouteDenialReason,
};
use guardrail_core::ids::{MachineId, OwnerId, SecretId, VaultId};
use guardrail_core::lockout::{
    BlockKey, CoalescePolicy, Coalesced, FailureCounter, LockStatus, LockoutKey, LockoutPolicy,
    RecentBlock, check_before_evaluation, coalesce_block,
};
use guardrail_core::machine::Machine;
use guardrail_core::plan::{Owner, Vault};
use guardrail_core::request::{NonceOutcome, NonceStore, NonceStoreError};

/// Maximum sizes of the tables keyed by client input, and of the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Unexpired nonces across all machines.
    pub nonces: usize,
    /// Failure counters across all lockout keys.
    pub counters: usize,
    /// Guardrail blocks remembered for coalescing.
    pub recent_blocks: usize,
    /// Audit entries kept in memory.
    pub audit_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // NOTE: these sizes are guesses for a small service, not measured.
        Self {
            nonces: 100_000,
            counters: 10_000,
            recent_blocks: 10_000,
            audit_entries: 10_000,
        }
    }
}

/// One stored audit entry: the event, numbered in the order it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Position in the log, starting at 1.
    pub id: u64,
    /// The event; for a coalesced `temp_machine_blocked` entry, `detail.count` is kept current.
    pub event: AuditEvent,
}

impl fmt::Display for AuditEntry {
    /// Writes one line: number, time, action, severity, actor, target, source and detail.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let event = &self.event;
        let actor = match event.actor.id() {
            Some(id) => format!("{}:{id}", event.actor.kind()),
            None => event.actor.kind().to_owned(),
        };
        let source = event
            .source_ip
            .map_or_else(|| "-".to_owned(), |ip| ip.to_string());
        write!(
            f,
            "#{} {} {} [{}] actor={actor} target={} source={source} detail={}",
            self.id,
            event.at.to_rfc3339(),
            event.action,
            event.severity(),
            event.target,
            event.detail
        )
    }
}

/// A machine with its vault and owner, copied out of the store for one evaluation.
#[derive(Debug, Clone)]
pub struct LoadedRecord {
    pub machine: Machine,
    pub vault: Vault,
    pub owner: Owner,
}

impl LoadedRecord {
    /// Borrows the three records in the form [`Evaluation`](guardrail_core::Evaluation) takes.
    pub fn as_record(&self) -> MachineRecord<'_> {
        MachineRecord {
            machine: &self.machine,
            vault: &self.vault,
            owner: &self.owner,
        }
    }
}

/// A secret's value. It has no `Debug`, so it cannot end up in a log by accident.
struct SecretValue(String);

#[derive(Default)]
struct Tables {
    owners: HashMap<OwnerId, Owner>,
    vaults: HashMap<VaultId, Vault>,
    machines: HashMap<MachineId, Machine>,
    secrets: HashMap<SecretId, SecretValue>,
    /// Pairs of a machine and a secret it may read.
    grants: HashSet<(MachineId, SecretId)>,
    /// Nonces by machine, with the instant until which each must be kept.
    nonces: HashMap<(MachineId, String), DateTime<Utc>>,
    counters: HashMap<LockoutKey, FailureCounter>,
    /// The audit entry that identical guardrail blocks are currently folded into.
    recent_blocks: HashMap<BlockKey, RecentBlock<u64>>,
    audit: VecDeque<AuditEntry>,
    next_entry_id: u64,
}

/// The example's store. Share it between connection threads with an `Arc`.
pub struct MemoryStore {
    tables: Mutex<Tables>,
    limits: Limits,
    lockout: LockoutPolicy,
    coalesce: CoalescePolicy,
}

impl MemoryStore {
    /// Makes an empty store with the given table sizes and policies.
    pub fn new(limits: Limits, lockout: LockoutPolicy, coalesce: CoalescePolicy) -> Self {
        Self {
            tables: Mutex::new(Tables::default()),
            limits,
            lockout,
            coalesce,
        }
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        // A thread that panicked while holding the lock had finished or not yet started its one
        // map operation, so the maps are still usable.
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores a vault owner, replacing any with the same id.
    pub fn insert_owner(&self, owner: Owner) {
        self.tables().owners.insert(owner.id.clone(), owner);
    }

    /// Stores a vault, replacing any with the same id.
    pub fn insert_vault(&self, vault: Vault) {
        self.tables().vaults.insert(vault.id.clone(), vault);
    }

    /// Stores a machine, replacing any with the same id.
    pub fn insert_machine(&self, machine: Machine) {
        self.tables().machines.insert(machine.id, machine);
    }

    /// Stores a secret's value, replacing any with the same id.
    pub fn insert_secret(&self, secret: SecretId, value: String) {
        self.tables().secrets.insert(secret, SecretValue(value));
    }

    /// Lets `machine` read `secret`.
    pub fn grant(&self, machine: MachineId, secret: SecretId) {
        self.tables().grants.insert((machine, secret));
    }

    /// Returns the number of machines stored in `vault`, for the plan's machine limit.
    pub fn machine_count(&self, vault: &VaultId) -> u32 {
        let count = self
            .tables()
            .machines
            .values()
            .filter(|machine| machine.vault_id == *vault)
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// Copies out the machine `id` with its vault and owner; `None` when any of them is missing.
    pub fn load_record(&self, id: MachineId) -> Option<LoadedRecord> {
        let tables = self.tables();
        let machine = tables.machines.get(&id)?;
        let vault = tables.vaults.get(&machine.vault_id)?;
        let owner = tables.owners.get(&vault.owner_id)?;
        Some(LoadedRecord {
            machine: machine.clone(),
            vault: vault.clone(),
            owner: owner.clone(),
        })
    }

    /// Returns the value of `secret`, if it exists.
    pub fn secret_value(&self, secret: &SecretId) -> Option<String> {
        self.tables()
            .secrets
            .get(secret)
            .map(|value| value.0.clone())
    }

    /// Runs the lockout check before step 1 for a request from `source` that names `machine`.
    ///
    /// A key without a counter is treated as locked while the counter table is full, so that
    /// a full table never loses a lockout (see the module docs).
    pub fn lock_status(
        &self,
        source: Option<IpAddr>,
        machine: Option<MachineId>,
        now: DateTime<Utc>,
    ) -> LockStatus {
        let mut tables = self.tables();
        let locked = check_before_evaluation(source, machine, |key| tables.counters.get(key), now);
        if let Some((_, status)) = locked {
            return status;
        }

        if tables.counters.len() >= self.limits.counters {
            let policy = self.lockout;
            tables
                .counters
                .retain(|_, counter| !counter.is_expired(&policy, now));
        }
        let table_full = tables.counters.len() >= self.limits.counters;
        let source = source.map(|address| address.to_canonical());
        let mut keys = vec![LockoutKey::Source(source)];
        keys.extend(machine.map(|machine| LockoutKey::MachineSource(machine, source)));
        let has_no_counter = keys.iter().any(|key| !tables.counters.contains_key(key));
        if table_full && has_no_counter {
            return LockStatus::Locked {
                retry_after_seconds: u64::from(self.lockout.period_seconds()),
            };
        }
        LockStatus::Open
    }

    /// Records one failure against `key` and returns the key's status afterwards.
    ///
    /// When the table is full of counters that still matter, nothing is recorded and the key
    /// stays without a counter, which [`MemoryStore::lock_status`] then treats as locked.
    pub fn record_failure(&self, key: LockoutKey, now: DateTime<Utc>) -> LockStatus {
        let policy = self.lockout;
        let mut tables = self.tables();
        if !tables.counters.contains_key(&key) && tables.counters.len() >= self.limits.counters {
            tables
                .counters
                .retain(|_, counter| !counter.is_expired(&policy, now));
            if tables.counters.len() >= self.limits.counters {
                return LockStatus::Open;
            }
        }
        let counter = tables.counters.entry(key).or_default();
        *counter = counter.record_failure(&policy, now);
        counter.status(now)
    }

    /// Writes the audit events of `decision` and returns the entries written or updated.
    ///
    /// A guardrail block identical to a recent one (same machine, source, axis and reason)
    /// raises that entry's `detail.count` instead of adding an entry.
    pub fn persist_decision(&self, decision: &Decision, now: DateTime<Utc>) -> Vec<AuditEntry> {
        let mut tables = self.tables();
        let block_key = decision.block_key();
        let mut written = Vec::new();

        for event in &decision.audit_events {
            let Some(key) = &block_key else {
                written.push(self.append(&mut tables, event.clone()));
                continue;
            };
            match coalesce_block(tables.recent_blocks.get(key), &self.coalesce, now) {
                Coalesced::Increment { entry, count } => {
                    if let Some(block) = tables.recent_blocks.get_mut(key) {
                        block.count = count;
                    }
                    let stored = tables.audit.iter_mut().find(|stored| stored.id == entry);
                    if let Some(stored) = stored {
                        stored.event.detail["count"] = count.into();
                        written.push(stored.clone());
                        continue;
                    }
                    // The entry was dropped from the bounded log: start a new one.
                    tables.recent_blocks.remove(key);
                    let entry = self.append(&mut tables, event.clone());
                    self.remember_block(&mut tables, key.clone(), entry.id, now);
                    written.push(entry);
                }
                Coalesced::NewEntry => {
                    let entry = self.append(&mut tables, event.clone());
                    self.remember_block(&mut tables, key.clone(), entry.id, now);
                    written.push(entry);
                }
            }
        }
        written
    }

    /// Appends an event that is not a request decision, such as a registration.
    pub fn persist_event(&self, event: AuditEvent) -> AuditEntry {
        let mut tables = self.tables();
        self.append(&mut tables, event)
    }

    /// Returns a copy of the audit log, oldest entry first.
    pub fn audit_log(&self) -> Vec<AuditEntry> {
        self.tables().audit.iter().cloned().collect()
    }

    fn append(&self, tables: &mut Tables, event: AuditEvent) -> AuditEntry {
        tables.next_entry_id += 1;
        let entry = AuditEntry {
            id: tables.next_entry_id,
            event,
        };
        while tables.audit.len() >= self.limits.audit_entries.max(1) {
            tables.audit.pop_front();
        }
        tables.audit.push_back(entry.clone());
        entry
    }

    fn remember_block(&self, tables: &mut Tables, key: BlockKey, entry: u64, now: DateTime<Utc>) {
        let policy = self.coalesce;
        if tables.recent_blocks.len() >= self.limits.recent_blocks {
            tables
                .recent_blocks
                .retain(|_, block| !block.is_expired(&policy, now));
        }
        if tables.recent_blocks.len() < self.limits.recent_blocks {
            let block = RecentBlock {
                entry,
                first_at: now,
                count: 1,
            };
            tables.recent_blocks.insert(key, block);
        }
    }
}

impl NonceStore for MemoryStore {
    fn insert_if_absent(
        &self,
        machine: MachineId,
        nonce: &str,
        keep_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<NonceOutcome, NonceStoreError> {
        let mut tables = self.tables();
        // `MachineId` contains the parsed UUID, so the key is the canonical id whatever case
        // the header used.
        let key = (machine, nonce.to_owned());
        // A timestamp exactly `max_skew` old is still accepted, so a nonce is kept through
        // `keep_until` inclusive.
        if let Some(kept_until) = tables.nonces.get(&key)
            && *kept_until >= now
        {
            return Ok(NonceOutcome::Replayed);
        }

        if tables.nonces.len() >= self.limits.nonces {
            tables.nonces.retain(|_, kept_until| *kept_until >= now);
        }
        if tables.nonces.len() >= self.limits.nonces && !tables.nonces.contains_key(&key) {
            return Err(NonceStoreError::new(format!(
                "nonce table full: {} unexpired nonces",
                self.limits.nonces
            )));
        }
        tables.nonces.insert(key, keep_until);
        Ok(NonceOutcome::Recorded)
    }
}

impl RouteAuthorizer for MemoryStore {
    fn authorize(&self, machine: &Machine, route: &MachineRoute) -> RouteDecision {
        let tables = self.tables();
        match route {
            MachineRoute::ReadSecret(secret) => {
                let (status, reason) = if !tables.secrets.contains_key(secret) {
                    let reason = RouteDenialReason::SecretNotFound {
                        secret: secret.clone(),
                    };
                    (DenialStatus::NotFound, reason)
                } else if !tables.grants.contains(&(machine.id, secret.clone())) {
                    let reason = RouteDenialReason::NoSecretGrant {
                        secret: secret.clone(),
                    };
                    (DenialStatus::Forbidden, reason)
                } else {
                    return RouteDecision::Allow;
                };
                RouteDecision::Deny(RouteDenial { status, reason })
            }
            // This store has no projects, so every project the client names is unknown.
            MachineRoute::ListProjectSecrets(project) | MachineRoute::Export(Some(project)) => {
                RouteDecision::Deny(RouteDenial {
                    status: DenialStatus::NotFound,
                    reason: RouteDenialReason::ProjectNotFound {
                        project: project.clone(),
                    },
                })
            }
            // These routes name no resource. Their handlers must return only the secrets that
            // the machine has grants on. The example serves none of them.
            MachineRoute::ListSecrets
            | MachineRoute::Export(None)
            | MachineRoute::Poll
            | MachineRoute::CliProjects
            | MachineRoute::CliSecrets => RouteDecision::Allow,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn at(second: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap() + Duration::seconds(second)
    }

    fn machine(byte: u8) -> MachineId {
        MachineId::from_random_bytes([byte; 16])
    }

    fn store(limits: Limits) -> MemoryStore {
        MemoryStore::new(
            limits,
            LockoutPolicy::new(3, 900).unwrap(),
            CoalescePolicy::default(),
        )
    }

    fn small() -> Limits {
        Limits {
            nonces: 2,
            counters: 2,
            recent_blocks: 2,
            audit_entries: 3,
        }
    }

    #[test]
    fn nonce_replay_is_detected_per_machine() {
        let store = store(Limits::default());
        let insert = |id, nonce| store.insert_if_absent(machine(id), nonce, at(60), at(0));
        assert_eq!(insert(1, "abc"), Ok(NonceOutcome::Recorded));
        assert_eq!(insert(1, "abc"), Ok(NonceOutcome::Replayed));
        assert_eq!(insert(2, "abc"), Ok(NonceOutcome::Recorded));
    }

    #[test]
    fn nonce_is_kept_through_keep_until() {
        let store = store(Limits::default());
        let id = machine(1);
        store.insert_if_absent(id, "n", at(60), at(0)).unwrap();
        let at_end = store.insert_if_absent(id, "n", at(60), at(60));
        assert_eq!(at_end, Ok(NonceOutcome::Replayed));
        let after = store.insert_if_absent(id, "n", at(121), at(61));
        assert_eq!(after, Ok(NonceOutcome::Recorded));
    }

    #[test]
    fn full_nonce_table_fails_closed() {
        let store = store(small());
        let id = machine(1);
        store.insert_if_absent(id, "a", at(60), at(0)).unwrap();
        store.insert_if_absent(id, "b", at(60), at(0)).unwrap();
        let error = store.insert_if_absent(id, "c", at(60), at(0)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "nonce store unavailable: nonce table full: 2 unexpired nonces"
        );
        // Once the first two expire, they make room and are never replayed as unexpired.
        let later = store.insert_if_absent(id, "c", at(121), at(61));
        assert_eq!(later, Ok(NonceOutcome::Recorded));
        assert_eq!(store.tables().nonces.len(), 1);
    }

    #[test]
    fn third_failure_locks_source() {
        let store = store(Limits::default());
        let source = Some(IpAddr::from([192, 0, 2, 7]));
        let key = LockoutKey::Source(source);
        assert_eq!(store.record_failure(key, at(0)), LockStatus::Open);
        assert_eq!(store.record_failure(key, at(1)), LockStatus::Open);
        let locked = LockStatus::Locked {
            retry_after_seconds: 900,
        };
        assert_eq!(store.record_failure(key, at(2)), locked);
        assert_eq!(store.lock_status(source, None, at(2)), locked);
        assert_eq!(store.lock_status(source, None, at(902)), LockStatus::Open);
    }

    #[test]
    fn full_counter_table_locks_new_keys() {
        let store = store(small());
        let source = |last: u8| Some(IpAddr::from([192, 0, 2, last]));
        store.record_failure(LockoutKey::Source(source(1)), at(0));
        store.record_failure(LockoutKey::Source(source(2)), at(0));
        assert_eq!(
            store.record_failure(LockoutKey::Source(source(3)), at(0)),
            LockStatus::Open
        );
        assert_eq!(store.tables().counters.len(), 2);
        assert_eq!(
            store.lock_status(source(3), None, at(0)),
            LockStatus::Locked {
                retry_after_seconds: 900
            }
        );
        // A source that has a counter is judged by it.
        assert_eq!(store.lock_status(source(1), None, at(0)), LockStatus::Open);
        // After the counting period the old counters are dropped and new keys get room.
        assert_eq!(
            store.lock_status(source(3), None, at(900)),
            LockStatus::Open
        );
        assert!(store.tables().counters.is_empty());
    }

    #[test]
    fn audit_log_drops_oldest_when_full() {
        let store = store(small());
        let vault = VaultId::from_random_bytes(&[7; 12]);
        for second in 0..5 {
            let event = AuditEvent::auth_failure(at(second), vault.clone(), machine(1), "test");
            store.persist_event(event);
        }
        let ids: Vec<u64> = store.audit_log().iter().map(|entry| entry.id).collect();
        assert_eq!(ids, [3, 4, 5]);
    }
}
