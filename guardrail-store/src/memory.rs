//! The in-memory backend, for tests and for embedding the engine without a database.
//!
//! All state sits behind one mutex, so every operation is atomic and serialised. Nothing
//! survives the process. Most queries scan maps instead of using indexes, which suits the small
//! data sets of tests and embedded use. The sweep is the exception: it runs on a timer whatever
//! the data set, so machines are also indexed by expiry, and a sweep reads only the machines
//! that are due.
//!
//! # Bounds
//!
//! The tables keyed by request input are bounded by [`MemoryLimits`]. When the nonce or
//! lockout table is full, expired entries are dropped first. If it is still full of live
//! entries, the operation fails with [`StoreError::Unavailable`], and the caller fails closed.
//! When the coalescing table is full, the least recently repeated key is forgotten, which only
//! means its next block starts a new audit entry.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use guardrail_core::audit::{AuditAction, AuditEvent};
use guardrail_core::extension::{ChainUpdate, ExtensionChain};
use guardrail_core::guardrail::IpAllowlist;
use guardrail_core::ids::{MachineId, OwnerId, ProjectId, SecretId, TokenId, VaultId};
use guardrail_core::lockout::{FailureCounter, LockoutKey};
use guardrail_core::machine::{Machine, MachineState, Registration};
use guardrail_core::plan::{Owner, Plan, Vault};
use guardrail_core::request::{NonceOutcome, NonceStore, NonceStoreError};
use guardrail_core::sweep::plan_sweep;
use guardrail_core::token::{
    BootstrapToken, TokenHash, TokenState, revoke_token as core_revoke_token,
};

use crate::codec::{set_detail_count, token_state_str};
use crate::error::StoreError;
use crate::model::{
    AuditId, AuditQuery, AuditRecord, Audited, CoalesceKey, CoalesceOutcome, CoalesceState,
    NewWebhook, OwnerKeyHash, Project, PurgeCounts, RegistrationContext, SecretRecord, SweepReport,
    WebhookId, WebhookSubscription, lockout_storage_key,
};
use crate::sql::ops::{purge_cutoff, version_conflict};
use crate::traits::{
    AuditStore, GuardStore, LeaseStore, MachineStore, SecretStore, StoreResult, TokenStore,
    VaultStore,
};

/// Size bounds of the memory backend's tables that request input can grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    /// Live nonces kept at once.
    pub max_nonces: usize,
    /// Lockout counters kept at once.
    pub max_lockouts: usize,
    /// Coalescing keys kept at once.
    pub max_coalesce_keys: usize,
}

impl Default for MemoryLimits {
    /// 1,000,000 nonces (about 60 s of skew at 16,000 signed requests a second), 100,000
    /// lockout counters and 100,000 coalescing keys.
    fn default() -> Self {
        Self {
            max_nonces: 1_000_000,
            max_lockouts: 100_000,
            max_coalesce_keys: 100_000,
        }
    }
}

#[derive(Default)]
struct State {
    owners: HashMap<OwnerId, Owner>,
    owner_by_key: HashMap<[u8; 32], OwnerId>,
    vaults: HashMap<VaultId, Vault>,
    tokens: HashMap<TokenId, BootstrapToken>,
    token_by_hash: HashMap<[u8; 32], TokenId>,
    machines: HashMap<MachineId, Machine>,
    /// Every machine as `(expires_at, id)`, for finding the machines due for purge.
    /// Kept in step with `machines` by [`State::put_machine`] and [`State::remove_machine`].
    by_expiry: BTreeSet<(DateTime<Utc>, MachineId)>,
    /// The machines not yet marked expired, as `(expires_at, id)`, for finding the machines
    /// due for marking. Kept in step like `by_expiry`.
    unmarked_by_expiry: BTreeSet<(DateTime<Utc>, MachineId)>,
    /// Machines per vault, so that registration counts slots without a scan.
    machine_counts: HashMap<VaultId, u32>,
    chains: HashMap<MachineId, ExtensionChain>,
    projects: HashMap<ProjectId, Project>,
    members: BTreeSet<(ProjectId, MachineId)>,
    secrets: HashMap<SecretId, SecretRecord>,
    grants: BTreeSet<(SecretId, MachineId)>,
    reads: HashMap<(MachineId, SecretId), u64>,
    audit: Vec<AuditRecord>,
    coalesce: HashMap<String, CoalesceState>,
    webhooks: Vec<WebhookSubscription>,
    next_webhook_id: i64,
    nonces: HashMap<(MachineId, String), DateTime<Utc>>,
    lockouts: HashMap<String, (FailureCounter, DateTime<Utc>)>,
    leases: HashMap<String, (String, DateTime<Utc>)>,
}

/// A store that keeps everything in process memory.
pub struct MemoryStore {
    limits: MemoryLimits,
    state: Mutex<State>,
}

impl MemoryStore {
    /// Makes an empty store with the given table bounds.
    pub fn new(limits: MemoryLimits) -> Self {
        Self {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> StoreResult<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| StoreError::backend("memory store lock is poisoned by an earlier panic"))
    }
}

impl State {
    fn append(&mut self, events: &[AuditEvent]) -> Vec<AuditId> {
        events
            .iter()
            .map(|event| self.append_record(event).id)
            .collect()
    }

    /// Appends one entry and returns it as stored.
    fn append_record(&mut self, event: &AuditEvent) -> AuditRecord {
        let id = AuditId(self.audit.len() as i64 + 1);
        let record = AuditRecord {
            id,
            event: event.clone(),
            count: 1,
        };
        self.audit.push(record.clone());
        record
    }

    fn machine_in(&self, vault_id: &VaultId, machine_id: &MachineId) -> StoreResult<&Machine> {
        self.machines
            .get(machine_id)
            .filter(|machine| &machine.vault_id == vault_id)
            .ok_or_else(|| StoreError::not_found("machine", machine_id))
    }

    /// Stores `machine`, replacing the stored one with its id, and updates the expiry indexes.
    fn put_machine(&mut self, machine: Machine) {
        if let Some(old) = self.machines.get(&machine.id) {
            let key = (old.expires_at, old.id);
            self.by_expiry.remove(&key);
            self.unmarked_by_expiry.remove(&key);
        }
        let key = (machine.expires_at, machine.id);
        self.by_expiry.insert(key);
        if machine.state != MachineState::Expired {
            self.unmarked_by_expiry.insert(key);
        }
        self.machines.insert(machine.id, machine);
    }

    fn remove_machine(&mut self, machine_id: &MachineId) -> bool {
        let removed = self.machines.remove(machine_id);
        if let Some(machine) = &removed {
            let key = (machine.expires_at, machine.id);
            self.by_expiry.remove(&key);
            self.unmarked_by_expiry.remove(&key);
            if let Some(count) = self.machine_counts.get_mut(&machine.vault_id) {
                *count = count.saturating_sub(1);
            }
        }
        // TODO: these three scans cost a purge time in proportion to all memberships, grants
        // and reads, not to the purged machine's own.
        self.chains.remove(machine_id);
        self.members.retain(|(_, member)| member != machine_id);
        self.grants.retain(|(_, grantee)| grantee != machine_id);
        self.reads.retain(|(reader, _), _| reader != machine_id);
        removed.is_some()
    }

    fn bump_count(&mut self, entry_id: AuditId) -> Option<u32> {
        let index = usize::try_from(entry_id.0.checked_sub(1)?).ok()?;
        let record = self.audit.get_mut(index)?;
        record.count = record.count.saturating_add(1);
        set_detail_count(&mut record.event.detail, record.count);
        Some(record.count)
    }
}

fn vault_of<'a>(state: &'a State, vault_id: &VaultId) -> StoreResult<&'a Vault> {
    state
        .vaults
        .get(vault_id)
        .ok_or_else(|| StoreError::not_found("vault", vault_id))
}

impl VaultStore for MemoryStore {
    fn create_vault_with_owner(
        &self,
        owner: &Owner,
        key_hash: &OwnerKeyHash,
        vault: &Vault,
        _now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut state = self.lock()?;
        if state.owners.contains_key(&owner.id) || state.owner_by_key.contains_key(&key_hash.0) {
            return Err(StoreError::conflict(format!(
                "owner `{}` already exists",
                owner.id
            )));
        }
        if state.vaults.contains_key(&vault.id) {
            return Err(StoreError::conflict(format!(
                "vault `{}` already exists",
                vault.id
            )));
        }
        state.owners.insert(owner.id.clone(), owner.clone());
        state.owner_by_key.insert(key_hash.0, owner.id.clone());
        state.vaults.insert(vault.id.clone(), vault.clone());
        Ok(())
    }

    fn owner_by_key_hash(&self, key_hash: &OwnerKeyHash) -> StoreResult<Option<Owner>> {
        let state = self.lock()?;
        Ok(state
            .owner_by_key
            .get(&key_hash.0)
            .and_then(|id| state.owners.get(id))
            .cloned())
    }

    fn get_owner(&self, owner_id: &OwnerId) -> StoreResult<Option<Owner>> {
        Ok(self.lock()?.owners.get(owner_id).cloned())
    }

    fn get_vault(&self, vault_id: &VaultId) -> StoreResult<Option<Vault>> {
        Ok(self.lock()?.vaults.get(vault_id).cloned())
    }

    fn list_vaults(&self, owner_id: &OwnerId) -> StoreResult<Vec<Vault>> {
        let state = self.lock()?;
        let mut vaults: Vec<Vault> = state
            .vaults
            .values()
            .filter(|vault| &vault.owner_id == owner_id)
            .cloned()
            .collect();
        vaults.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(vaults)
    }

    fn set_owner_active(&self, owner_id: &OwnerId, active: bool) -> StoreResult<()> {
        let mut state = self.lock()?;
        let owner = state
            .owners
            .get_mut(owner_id)
            .ok_or_else(|| StoreError::not_found("owner", owner_id))?;
        owner.active = active;
        Ok(())
    }

    fn set_plan(&self, vault_id: &VaultId, plan: Plan, machine_limit: u32) -> StoreResult<()> {
        let mut state = self.lock()?;
        let vault = state
            .vaults
            .get_mut(vault_id)
            .ok_or_else(|| StoreError::not_found("vault", vault_id))?;
        vault.plan = plan;
        vault.machine_limit = machine_limit;
        Ok(())
    }

    fn set_vault_ip_allowlist(
        &self,
        vault_id: &VaultId,
        allowlist: Option<&IpAllowlist>,
    ) -> StoreResult<()> {
        let mut state = self.lock()?;
        let vault = state
            .vaults
            .get_mut(vault_id)
            .ok_or_else(|| StoreError::not_found("vault", vault_id))?;
        vault.ip_allowlist = allowlist.cloned();
        Ok(())
    }
}

impl TokenStore for MemoryStore {
    fn insert_token(&self, token: &BootstrapToken, audit: &AuditEvent) -> StoreResult<AuditRecord> {
        let mut state = self.lock()?;
        vault_of(&state, &token.vault_id)?;
        if state.tokens.contains_key(&token.id) || state.token_by_hash.contains_key(&token.hash.0) {
            return Err(StoreError::conflict(format!(
                "token `{}` already exists",
                token.id
            )));
        }
        state.tokens.insert(token.id.clone(), token.clone());
        state.token_by_hash.insert(token.hash.0, token.id.clone());
        Ok(state.append_record(audit))
    }

    fn get_token(
        &self,
        vault_id: &VaultId,
        token_id: &TokenId,
    ) -> StoreResult<Option<BootstrapToken>> {
        Ok(self
            .lock()?
            .tokens
            .get(token_id)
            .filter(|token| &token.vault_id == vault_id)
            .cloned())
    }

    fn find_token_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<BootstrapToken>> {
        let state = self.lock()?;
        Ok(state
            .token_by_hash
            .get(&hash.0)
            .and_then(|id| state.tokens.get(id))
            .cloned())
    }

    fn list_tokens(&self, vault_id: &VaultId) -> StoreResult<Vec<BootstrapToken>> {
        let state = self.lock()?;
        let mut tokens: Vec<BootstrapToken> = state
            .tokens
            .values()
            .filter(|token| &token.vault_id == vault_id)
            .cloned()
            .collect();
        tokens.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Ok(tokens)
    }

    fn revoke_token(
        &self,
        vault_id: &VaultId,
        token_id: &TokenId,
        revoked_by: &OwnerId,
        now: DateTime<Utc>,
    ) -> StoreResult<Audited<BootstrapToken>> {
        let mut state = self.lock()?;
        let token = state
            .tokens
            .get(token_id)
            .filter(|token| &token.vault_id == vault_id)
            .cloned()
            .ok_or_else(|| StoreError::not_found("token", token_id))?;
        let (revoked, event) =
            core_revoke_token(token, revoked_by, now).map_err(StoreError::domain)?;
        state.tokens.insert(revoked.id.clone(), revoked.clone());
        Ok(Audited {
            audit: state.append_record(&event),
            value: revoked,
        })
    }
}

impl MachineStore for MemoryStore {
    fn register_machine_with(
        &self,
        hash: &TokenHash,
        decide: &mut dyn FnMut(RegistrationContext<'_>) -> StoreResult<Registration>,
    ) -> StoreResult<Audited<Machine>> {
        let mut state = self.lock()?;

        let token = state
            .token_by_hash
            .get(&hash.0)
            .and_then(|id| state.tokens.get(id))
            .cloned()
            .ok_or_else(|| StoreError::not_found("token", "with the presented hash"))?;
        let vault = vault_of(&state, &token.vault_id)?.clone();
        let owner = state
            .owners
            .get(&vault.owner_id)
            .cloned()
            .ok_or_else(|| StoreError::not_found("owner", &vault.owner_id))?;

        let machines_in_vault = state.machine_counts.get(&vault.id).copied().unwrap_or(0);
        let registration = decide(RegistrationContext {
            token: &token,
            vault: &vault,
            owner: &owner,
            machines_in_vault,
        })?;

        if token.state != TokenState::Unused {
            return Err(StoreError::conflict(format!(
                "token `{}` is {}, not unused",
                token.id,
                token_state_str(token.state)
            )));
        }
        let machine = registration.machine;
        if state.machines.contains_key(&machine.id) {
            return Err(StoreError::conflict(format!(
                "machine `{}` already exists",
                machine.id
            )));
        }
        state
            .tokens
            .insert(registration.token.id.clone(), registration.token);
        state.put_machine(machine.clone());
        *state
            .machine_counts
            .entry(machine.vault_id.clone())
            .or_insert(0) += 1;
        Ok(Audited {
            audit: state.append_record(&registration.event),
            value: machine,
        })
    }

    fn get_machine(
        &self,
        vault_id: &VaultId,
        machine_id: &MachineId,
    ) -> StoreResult<Option<Machine>> {
        Ok(self
            .lock()?
            .machines
            .get(machine_id)
            .filter(|machine| &machine.vault_id == vault_id)
            .cloned())
    }

    fn find_machine(&self, machine_id: &MachineId) -> StoreResult<Option<Machine>> {
        Ok(self.lock()?.machines.get(machine_id).cloned())
    }

    fn list_machines(&self, vault_id: &VaultId) -> StoreResult<Vec<Machine>> {
        let state = self.lock()?;
        let mut machines: Vec<Machine> = state
            .machines
            .values()
            .filter(|machine| &machine.vault_id == vault_id)
            .cloned()
            .collect();
        machines.sort_by_key(|machine| (machine.created_at, machine.id));
        Ok(machines)
    }

    fn count_machines(&self, vault_id: &VaultId) -> StoreResult<u32> {
        Ok(self
            .lock()?
            .machine_counts
            .get(vault_id)
            .copied()
            .unwrap_or(0))
    }

    fn update_machine(
        &self,
        vault_id: &VaultId,
        machine_id: &MachineId,
        decide: &mut dyn FnMut(Machine) -> StoreResult<(Machine, AuditEvent)>,
    ) -> StoreResult<Audited<Machine>> {
        let mut state = self.lock()?;
        let mut stored = state.machine_in(vault_id, machine_id)?.clone();
        let (changed, event) = decide(stored.clone())?;
        stored.state = changed.state;
        stored.guardrails = changed.guardrails;
        state.put_machine(stored.clone());
        Ok(Audited {
            audit: state.append_record(&event),
            value: stored,
        })
    }

    fn delete_machine(
        &self,
        vault_id: &VaultId,
        machine_id: &MachineId,
        decide: &mut dyn FnMut(Machine) -> StoreResult<AuditEvent>,
    ) -> StoreResult<Audited<Machine>> {
        let mut state = self.lock()?;
        let machine = state.machine_in(vault_id, machine_id)?.clone();
        let event = decide(machine.clone())?;
        state.remove_machine(machine_id);
        Ok(Audited {
            audit: state.append_record(&event),
            value: machine,
        })
    }

    fn extension_chain(&self, machine_id: &MachineId) -> StoreResult<ExtensionChain> {
        Ok(self
            .lock()?
            .chains
            .get(machine_id)
            .cloned()
            .unwrap_or_default())
    }

    fn change_expiry(
        &self,
        vault_id: &VaultId,
        machine_id: &MachineId,
        decide: &mut dyn FnMut(Machine, ExtensionChain) -> StoreResult<ChainUpdate>,
    ) -> StoreResult<Audited<(Machine, ExtensionChain)>> {
        let mut state = self.lock()?;
        let mut stored = state.machine_in(vault_id, machine_id)?.clone();
        let chain = state.chains.get(machine_id).cloned().unwrap_or_default();
        let update = decide(stored.clone(), chain)?;
        stored.expires_at = update.machine.expires_at;
        state.put_machine(stored.clone());
        state.chains.insert(stored.id, update.chain.clone());
        Ok(Audited {
            audit: state.append_record(&update.event),
            value: (stored, update.chain),
        })
    }

    fn sweep(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<SweepReport> {
        let purge_before = purge_cutoff(now);
        let mut state = self.lock()?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        // Both indexes are ordered by `(expires_at, id)`, so each batch is a prefix: the
        // sweep reads only the machines it returns, plus one entry that ends each prefix.
        let due = |index: &BTreeSet<(DateTime<Utc>, MachineId)>, cutoff: DateTime<Utc>| {
            index
                .iter()
                .take_while(|(expires_at, _)| *expires_at <= cutoff)
                .take(limit)
                .map(|(_, id)| *id)
                .collect::<Vec<_>>()
        };
        let due_expire = due(&state.unmarked_by_expiry, now);
        let due_purge = due(&state.by_expiry, purge_before);
        let mut candidates: Vec<(Machine, OwnerId)> = Vec::new();
        let mut seen = HashSet::new();
        for machine_id in due_expire.into_iter().chain(due_purge) {
            if !seen.insert(machine_id) {
                continue;
            }
            let machine = state.machines.get(&machine_id).ok_or_else(|| {
                StoreError::backend(format!(
                    "expiry index lists machine `{machine_id}`, which is not stored"
                ))
            })?;
            let owner_id = vault_of(&state, &machine.vault_id)?.owner_id.clone();
            candidates.push((machine.clone(), owner_id));
        }
        let plan = plan_sweep(candidates.iter().map(|(m, o)| (m, o)), now);

        let mut report = SweepReport::default();
        for machine_id in &plan.expire {
            if let Some(machine) = state.machines.get(machine_id)
                && machine.state != MachineState::Expired
            {
                let mut marked = machine.clone();
                marked.state = MachineState::Expired;
                state.put_machine(marked);
                report.expired += 1;
            }
        }
        for machine_id in &plan.purge {
            if state.remove_machine(machine_id) {
                report.purged += 1;
            }
        }
        report.audit = plan
            .events
            .iter()
            .map(|event| state.append_record(event))
            .collect();
        Ok(report)
    }
}

impl SecretStore for MemoryStore {
    fn create_project(&self, project: &Project) -> StoreResult<()> {
        let mut state = self.lock()?;
        vault_of(&state, &project.vault_id)?;
        if state.projects.contains_key(&project.id) {
            return Err(StoreError::conflict(format!(
                "project `{}` already exists",
                project.id
            )));
        }
        state.projects.insert(project.id.clone(), project.clone());
        Ok(())
    }

    fn get_project(
        &self,
        vault_id: &VaultId,
        project_id: &ProjectId,
    ) -> StoreResult<Option<Project>> {
        Ok(self
            .lock()?
            .projects
            .get(project_id)
            .filter(|project| &project.vault_id == vault_id)
            .cloned())
    }

    fn list_projects(&self, vault_id: &VaultId) -> StoreResult<Vec<Project>> {
        let state = self.lock()?;
        let mut projects: Vec<Project> = state
            .projects
            .values()
            .filter(|project| &project.vault_id == vault_id)
            .cloned()
            .collect();
        projects.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Ok(projects)
    }

    fn add_project_member(
        &self,
        vault_id: &VaultId,
        project_id: &ProjectId,
        machine_id: &MachineId,
    ) -> StoreResult<()> {
        let mut state = self.lock()?;
        if state
            .projects
            .get(project_id)
            .is_none_or(|project| &project.vault_id != vault_id)
        {
            return Err(StoreError::not_found("project", project_id));
        }
        state.machine_in(vault_id, machine_id)?;
        state.members.insert((project_id.clone(), *machine_id));
        Ok(())
    }

    fn machine_projects(&self, machine_id: &MachineId) -> StoreResult<Vec<Project>> {
        let state = self.lock()?;
        let mut projects: Vec<Project> = state
            .members
            .iter()
            .filter(|(_, member)| member == machine_id)
            .filter_map(|(project_id, _)| state.projects.get(project_id).cloned())
            .collect();
        projects.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Ok(projects)
    }

    fn create_secret(&self, secret: &SecretRecord) -> StoreResult<()> {
        let mut state = self.lock()?;
        if state
            .projects
            .get(&secret.project_id)
            .is_none_or(|project| project.vault_id != secret.vault_id)
        {
            return Err(StoreError::not_found("project", &secret.project_id));
        }
        if state.secrets.contains_key(&secret.id) {
            return Err(StoreError::conflict(format!(
                "secret `{}` already exists",
                secret.id
            )));
        }
        state.secrets.insert(secret.id.clone(), secret.clone());
        Ok(())
    }

    fn update_secret(
        &self,
        vault_id: &VaultId,
        secret_id: &SecretId,
        expected_version: u64,
        ciphertext: &[u8],
        field_names: Option<&[String]>,
        now: DateTime<Utc>,
    ) -> StoreResult<SecretRecord> {
        let mut state = self.lock()?;
        let secret = state
            .secrets
            .get_mut(secret_id)
            .filter(|secret| &secret.vault_id == vault_id)
            .ok_or_else(|| StoreError::not_found("secret", secret_id))?;
        if secret.version != expected_version {
            return Err(version_conflict(
                secret_id,
                secret.version,
                expected_version,
            ));
        }
        // The SQL backends store versions as signed 64-bit integers; stop at the same bound.
        let next = expected_version
            .checked_add(1)
            .filter(|next| i64::try_from(*next).is_ok())
            .ok_or_else(|| {
                StoreError::conflict(format!(
                    "secret `{secret_id}` cannot go past version `{expected_version}`"
                ))
            })?;
        secret.ciphertext = ciphertext.to_vec();
        secret.field_names = field_names.map(<[String]>::to_vec);
        secret.version = next;
        secret.updated_at = now;
        Ok(secret.clone())
    }

    fn get_secret(&self, secret_id: &SecretId) -> StoreResult<Option<SecretRecord>> {
        Ok(self.lock()?.secrets.get(secret_id).cloned())
    }

    fn list_secrets(
        &self,
        vault_id: &VaultId,
        project_id: Option<&ProjectId>,
    ) -> StoreResult<Vec<SecretRecord>> {
        let state = self.lock()?;
        let mut secrets: Vec<SecretRecord> = state
            .secrets
            .values()
            .filter(|secret| &secret.vault_id == vault_id)
            .filter(|secret| project_id.is_none_or(|id| &secret.project_id == id))
            .cloned()
            .collect();
        secrets.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Ok(secrets)
    }

    fn delete_secret(&self, vault_id: &VaultId, secret_id: &SecretId) -> StoreResult<()> {
        let mut state = self.lock()?;
        if state
            .secrets
            .get(secret_id)
            .is_none_or(|secret| &secret.vault_id != vault_id)
        {
            return Err(StoreError::not_found("secret", secret_id));
        }
        state.secrets.remove(secret_id);
        state.grants.retain(|(granted, _)| granted != secret_id);
        Ok(())
    }

    fn grant_secret(
        &self,
        vault_id: &VaultId,
        secret_id: &SecretId,
        machine_id: &MachineId,
        _now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut state = self.lock()?;
        if state
            .secrets
            .get(secret_id)
            .is_none_or(|secret| &secret.vault_id != vault_id)
        {
            return Err(StoreError::not_found("secret", secret_id));
        }
        state.machine_in(vault_id, machine_id)?;
        state.grants.insert((secret_id.clone(), *machine_id));
        Ok(())
    }

    fn has_grant(&self, secret_id: &SecretId, machine_id: &MachineId) -> StoreResult<bool> {
        Ok(self
            .lock()?
            .grants
            .contains(&(secret_id.clone(), *machine_id)))
    }

    fn granted_secrets(&self, machine_id: &MachineId) -> StoreResult<Vec<SecretId>> {
        Ok(self
            .lock()?
            .grants
            .iter()
            .filter(|(_, grantee)| grantee == machine_id)
            .map(|(secret_id, _)| secret_id.clone())
            .collect())
    }

    fn record_secret_read(
        &self,
        machine_id: &MachineId,
        secret_id: &SecretId,
        version: u64,
        _now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut state = self.lock()?;
        if !state.machines.contains_key(machine_id) {
            return Err(StoreError::not_found("machine", machine_id));
        }
        let entry = state
            .reads
            .entry((*machine_id, secret_id.clone()))
            .or_insert(version);
        *entry = (*entry).max(version);
        Ok(())
    }

    fn record_secret_read_audited(
        &self,
        machine_id: &MachineId,
        secret_id: &SecretId,
        version: u64,
        audit: &AuditEvent,
    ) -> StoreResult<AuditRecord> {
        let mut state = self.lock()?;
        if !state.machines.contains_key(machine_id) {
            return Err(StoreError::not_found("machine", machine_id));
        }
        let entry = state
            .reads
            .entry((*machine_id, secret_id.clone()))
            .or_insert(version);
        *entry = (*entry).max(version);
        Ok(state.append_record(audit))
    }

    fn last_read_versions(
        &self,
        machine_id: &MachineId,
        secret_ids: &[SecretId],
    ) -> StoreResult<Vec<(SecretId, u64)>> {
        let state = self.lock()?;
        let mut versions: Vec<(SecretId, u64)> = secret_ids
            .iter()
            .filter_map(|id| {
                state
                    .reads
                    .get(&(*machine_id, id.clone()))
                    .map(|version| (id.clone(), *version))
            })
            .collect();
        versions.sort();
        versions.dedup();
        Ok(versions)
    }
}

impl AuditStore for MemoryStore {
    fn append_audit(&self, events: &[AuditEvent]) -> StoreResult<Vec<AuditId>> {
        Ok(self.lock()?.append(events))
    }

    fn query_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        let state = self.lock()?;
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        Ok(state
            .audit
            .iter()
            .rev()
            .filter(|record| record.event.vault_id == query.vault_id)
            .filter(|record| {
                query
                    .action
                    .is_none_or(|action| record.event.action == action)
            })
            .filter(|record| {
                query
                    .severity
                    .is_none_or(|severity| record.event.severity() == severity)
            })
            .filter(|record| query.since.is_none_or(|since| record.event.at >= since))
            .filter(|record| query.before.is_none_or(|before| record.id < before))
            .take(limit)
            .cloned()
            .collect())
    }

    fn append_coalesced(
        &self,
        event: &AuditEvent,
        key: &CoalesceKey,
        coalesce_since: DateTime<Utc>,
    ) -> StoreResult<CoalesceOutcome> {
        let key = key.storage_key();
        let mut state = self.lock()?;
        if let Some(current) = state.coalesce.get(&key).copied()
            && current.last_at >= coalesce_since
            && let Some(count) = state.bump_count(current.entry_id)
        {
            state.coalesce.insert(
                key,
                CoalesceState {
                    last_at: event.at,
                    count,
                    ..current
                },
            );
            return Ok(CoalesceOutcome::Coalesced {
                entry_id: current.entry_id,
                count,
            });
        }
        let ids = state.append(std::slice::from_ref(event));
        let entry_id = ids
            .first()
            .copied()
            .ok_or_else(|| StoreError::backend("audit append returned no id"))?;
        if state.coalesce.len() >= self.limits.max_coalesce_keys
            && !state.coalesce.contains_key(&key)
        {
            let oldest = state
                .coalesce
                .iter()
                .min_by_key(|(_, entry)| entry.last_at)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                state.coalesce.remove(&oldest);
            }
        }
        state.coalesce.insert(
            key,
            CoalesceState {
                entry_id,
                count: 1,
                first_at: event.at,
                last_at: event.at,
            },
        );
        Ok(CoalesceOutcome::Appended(entry_id))
    }

    fn coalesce_state(&self, key: &CoalesceKey) -> StoreResult<Option<CoalesceState>> {
        Ok(self.lock()?.coalesce.get(&key.storage_key()).copied())
    }

    fn increment_audit_count(&self, entry_id: AuditId) -> StoreResult<u32> {
        self.lock()?
            .bump_count(entry_id)
            .ok_or_else(|| StoreError::not_found("audit entry", entry_id))
    }

    fn create_webhook(&self, webhook: &NewWebhook) -> StoreResult<WebhookSubscription> {
        let mut state = self.lock()?;
        vault_of(&state, &webhook.vault_id)?;
        state.next_webhook_id += 1;
        let stored = WebhookSubscription {
            id: WebhookId(state.next_webhook_id),
            vault_id: webhook.vault_id.clone(),
            url: webhook.url.clone(),
            actions: webhook.actions.clone(),
            secret: webhook.secret.clone(),
            created_at: webhook.created_at,
        };
        state.webhooks.push(stored.clone());
        Ok(stored)
    }

    fn list_webhooks(&self, vault_id: &VaultId) -> StoreResult<Vec<WebhookSubscription>> {
        Ok(self
            .lock()?
            .webhooks
            .iter()
            .filter(|webhook| &webhook.vault_id == vault_id)
            .cloned()
            .collect())
    }

    fn webhooks_for(
        &self,
        vault_id: &VaultId,
        action: AuditAction,
    ) -> StoreResult<Vec<WebhookSubscription>> {
        Ok(self
            .list_webhooks(vault_id)?
            .into_iter()
            .filter(|webhook| webhook.actions.contains(&action))
            .collect())
    }

    fn delete_webhook(&self, vault_id: &VaultId, webhook_id: WebhookId) -> StoreResult<()> {
        let mut state = self.lock()?;
        let before = state.webhooks.len();
        state
            .webhooks
            .retain(|webhook| !(webhook.id == webhook_id && &webhook.vault_id == vault_id));
        if state.webhooks.len() == before {
            return Err(StoreError::not_found("webhook", webhook_id.0));
        }
        Ok(())
    }
}

impl GuardStore for MemoryStore {
    fn record_failure(
        &self,
        key: &LockoutKey,
        now: DateTime<Utc>,
        keep_until: DateTime<Utc>,
        update: &dyn Fn(Option<FailureCounter>) -> FailureCounter,
    ) -> StoreResult<FailureCounter> {
        let key = lockout_storage_key(key);
        let mut state = self.lock()?;
        if !state.lockouts.contains_key(&key) && state.lockouts.len() >= self.limits.max_lockouts {
            state.lockouts.retain(|_, (_, until)| *until > now);
            if state.lockouts.len() >= self.limits.max_lockouts {
                return Err(StoreError::unavailable(format!(
                    "lockout table is full with {} live entries",
                    state.lockouts.len()
                )));
            }
        }
        let current = state
            .lockouts
            .get(&key)
            .filter(|(_, until)| *until > now)
            .map(|(lockout, _)| *lockout);
        let next = update(current);
        state.lockouts.insert(key, (next, keep_until));
        Ok(next)
    }

    fn lockout_state(
        &self,
        key: &LockoutKey,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<FailureCounter>> {
        Ok(self
            .lock()?
            .lockouts
            .get(&lockout_storage_key(key))
            .filter(|(_, until)| *until > now)
            .map(|(lockout, _)| *lockout))
    }

    fn clear_lockout(&self, key: &LockoutKey) -> StoreResult<()> {
        self.lock()?.lockouts.remove(&lockout_storage_key(key));
        Ok(())
    }

    fn purge_expired(
        &self,
        now: DateTime<Utc>,
        coalesce_before: DateTime<Utc>,
    ) -> StoreResult<PurgeCounts> {
        let mut state = self.lock()?;
        let before = (
            state.nonces.len(),
            state.lockouts.len(),
            state.coalesce.len(),
        );
        state.nonces.retain(|_, until| *until > now);
        state.lockouts.retain(|_, (_, until)| *until > now);
        state
            .coalesce
            .retain(|_, entry| entry.last_at >= coalesce_before);
        Ok(PurgeCounts {
            nonces: (before.0 - state.nonces.len()) as u64,
            lockouts: (before.1 - state.lockouts.len()) as u64,
            coalesce_entries: (before.2 - state.coalesce.len()) as u64,
        })
    }
}

impl LeaseStore for MemoryStore {
    fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let ttl = chrono::Duration::from_std(ttl)
            .map_err(|_| StoreError::conflict(format!("lease duration `{ttl:?}` is too long")))?;
        let expires_at = now
            .checked_add_signed(ttl)
            .ok_or_else(|| StoreError::conflict("lease expiry is out of range"))?;
        let mut state = self.lock()?;
        let free = state
            .leases
            .get(name)
            .is_none_or(|(current, until)| current == holder || *until <= now);
        if free {
            state
                .leases
                .insert(name.to_owned(), (holder.to_owned(), expires_at));
        }
        Ok(free)
    }

    fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        let mut state = self.lock()?;
        if state
            .leases
            .get(name)
            .is_some_and(|(current, _)| current == holder)
        {
            state.leases.remove(name);
        }
        Ok(())
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
        let mut state = self
            .lock()
            .map_err(|error| NonceStoreError::new(error.to_string()))?;
        let key = (machine, nonce.to_owned());
        if let Some(until) = state.nonces.get(&key)
            && *until > now
        {
            return Ok(NonceOutcome::Replayed);
        }
        if !state.nonces.contains_key(&key) && state.nonces.len() >= self.limits.max_nonces {
            state.nonces.retain(|_, until| *until > now);
            if state.nonces.len() >= self.limits.max_nonces {
                return Err(NonceStoreError::new(format!(
                    "nonce table is full with {} unexpired nonces",
                    state.nonces.len()
                )));
            }
        }
        state.nonces.insert(key, keep_until);
        Ok(NonceOutcome::Recorded)
    }
}
