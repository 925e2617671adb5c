//! The storage traits. Every backend implements all of them; [`Store`] bundles them.
//!
//! All methods are synchronous and take `&self`, so one handle can be shared between threads.
//! The PostgreSQL backend blocks the calling thread on network I/O: call the store from a
//! blocking worker (such as `actix_web::web::block`), never directly on an async executor.
//!
//! # Atomicity
//!
//! Methods that take a decision function (`decide`) load the records the decision needs, call
//! the function, and write its result together with its audit events in one transaction. When
//! the function returns an error, nothing is written and that error is returned. The function
//! may be called more than once if a backend retries a transaction, so it must be pure; the
//! core's lifecycle functions are.

use std::time::Duration;

use chrono::{DateTime, Utc};
use guardrail_core::audit::{AuditAction, AuditEvent};
use guardrail_core::extension::{ChainUpdate, ExtendRequest, ExtensionChain, extend, revert};
use guardrail_core::guardrail::{Guardrails, IpAllowlist};
use guardrail_core::ids::{MachineId, OwnerId, ProjectId, SecretId, TokenId, VaultId};
use guardrail_core::lockout::{FailureCounter, LockoutKey};
use guardrail_core::machine::{
    Machine, MachinePublicKey, Registration, register_machine as core_register,
};
use guardrail_core::plan::{Owner, Plan, Vault};
use guardrail_core::request::NonceStore;
use guardrail_core::token::{BootstrapToken, TokenHash, TokenPlaintext, check_redemption};

use crate::error::StoreError;
use crate::model::{
    AuditId, AuditQuery, AuditRecord, Audited, CoalesceKey, CoalesceOutcome, CoalesceState,
    NewWebhook, OwnerKeyHash, Project, PurgeCounts, RegistrationContext, SecretRecord, SweepReport,
    WebhookId, WebhookSubscription,
};

/// Result of every store method.
pub type StoreResult<T> = Result<T, StoreError>;

/// Vaults, their owners and plans.
pub trait VaultStore {
    /// Creates an owner with the hash of its key and its first vault, atomically.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the owner, the vault or the key hash already exists.
    fn create_vault_with_owner(
        &self,
        owner: &Owner,
        key_hash: &OwnerKeyHash,
        vault: &Vault,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Finds the owner whose key hashes to `key_hash`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn owner_by_key_hash(&self, key_hash: &OwnerKeyHash) -> StoreResult<Option<Owner>>;

    /// Returns an owner by id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn get_owner(&self, owner_id: &OwnerId) -> StoreResult<Option<Owner>>;

    /// Returns a vault by id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn get_vault(&self, vault_id: &VaultId) -> StoreResult<Option<Vault>>;

    /// Lists an owner's vaults, ordered by id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn list_vaults(&self, owner_id: &OwnerId) -> StoreResult<Vec<Vault>>;

    /// Suspends (`active = false`) or resumes an owner account.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when the owner does not exist.
    fn set_owner_active(&self, owner_id: &OwnerId, active: bool) -> StoreResult<()>;

    /// Changes a vault's plan and machine limit. Machines already registered stay.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when the vault does not exist.
    fn set_plan(&self, vault_id: &VaultId, plan: Plan, machine_limit: u32) -> StoreResult<()>;

    /// Replaces the vault-wide IP allowlist; `None` turns it off.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when the vault does not exist.
    fn set_vault_ip_allowlist(
        &self,
        vault_id: &VaultId,
        allowlist: Option<&IpAllowlist>,
    ) -> StoreResult<()>;
}

/// Bootstrap tokens.
pub trait TokenStore {
    /// Inserts an issued token together with its audit event, atomically. Returns the audit
    /// entry as stored.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the token id or hash exists; [`StoreError::NotFound`] when
    /// the vault does not exist.
    fn insert_token(&self, token: &BootstrapToken, audit: &AuditEvent) -> StoreResult<AuditRecord>;

    /// Returns a token of a vault by id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn get_token(
        &self,
        vault_id: &VaultId,
        token_id: &TokenId,
    ) -> StoreResult<Option<BootstrapToken>>;

    /// Finds a token by the hash of its plaintext, in any vault. The caller compares the vault.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn find_token_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<BootstrapToken>>;

    /// Lists a vault's tokens, newest first.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn list_tokens(&self, vault_id: &VaultId) -> StoreResult<Vec<BootstrapToken>>;

    /// Revokes an unused token on behalf of `revoked_by`: the core's `revoke_token` decides,
    /// and the new state and its audit event are written in one transaction with the token row
    /// locked. Returns the revoked token and the audit entry.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when the vault has no such token; [`StoreError::Domain`] holding
    /// a [`RevokeTokenError`](guardrail_core::token::RevokeTokenError) when it is used or already revoked (a used token's machine is
    /// revoked instead).
    fn revoke_token(
        &self,
        vault_id: &VaultId,
        token_id: &TokenId,
        revoked_by: &OwnerId,
        now: DateTime<Utc>,
    ) -> StoreResult<Audited<BootstrapToken>>;
}

/// Machines, their guardrails and extension chains, and the sweeper's batch.
///
/// The primitives (`*_with`, [`MachineStore::update_machine`], [`MachineStore::delete_machine`],
/// [`MachineStore::change_expiry`]) take a decision function. The provided methods call the
/// core's lifecycle functions through them and wrap the core's errors in
/// [`StoreError::Domain`].
pub trait MachineStore {
    /// Redeems a token and registers a machine in one transaction.
    ///
    /// Finds the token by `hash` and locks it and its vault (PostgreSQL: `SELECT ... FOR UPDATE`
    /// on both rows, so registrations in one vault count slots one at a time; SQLite:
    /// `BEGIN IMMEDIATE`; memory: one lock). Then it counts the vault's machines and calls
    /// `decide`. When `decide` succeeds, the token's new state, the machine and the audit event
    /// are written in the same transaction, and only if the token is still unused. On any
    /// failure nothing changes, so the token stays unused. Returns the machine and the
    /// `temp_machine_create` entry.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] (kind `token`) when no token has that hash; the error `decide`
    /// returned; [`StoreError::Conflict`] when the machine id exists or the token is not unused.
    fn register_machine_with(
        &self,
        hash: &TokenHash,
        decide: &mut dyn FnMut(RegistrationContext<'_>) -> StoreResult<Registration>,
    ) -> StoreResult<Audited<Machine>>;

    /// Registers a machine with the token `presented` under the vault id of the URL, using the
    /// core's `check_redemption` and `register_machine` inside
    /// [`MachineStore::register_machine_with`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Domain`] holding a [`TokenRejected`](guardrail_core::token::TokenRejected) for every token failure (unknown,
    /// wrong vault, used, revoked, expired: one error, so callers respond to them alike) or a
    /// [`RegistrationError`](guardrail_core::machine::RegistrationError) for plan and limit failures; the token then stays unused.
    fn register_machine(
        &self,
        url_vault_id: &VaultId,
        presented: &TokenPlaintext,
        public_key: &MachinePublicKey,
        machine_id_bytes: [u8; 16],
        now: DateTime<Utc>,
    ) -> StoreResult<Audited<Machine>> {
        let result = self.register_machine_with(&presented.hash(), &mut |context| {
            let redeemable =
                check_redemption(Some(context.token.clone()), presented, url_vault_id, now)
                    .map_err(StoreError::domain)?;
            core_register(
                redeemable,
                public_key.clone(),
                context.vault,
                context.machines_in_vault,
                machine_id_bytes,
                now,
            )
            .map_err(StoreError::domain)
        });
        match result {
            Err(StoreError::NotFound(missing)) if missing.kind() == "token" => {
                // Build the same rejection an unknown token gets from the core.
                match check_redemption(None, presented, url_vault_id, now) {
                    Err(rejected) => Err(StoreError::domain(rejected)),
                    Ok(_) => Err(StoreError::NotFound(missing)),
                }
            }
            other => other,
        }
    }

    /// Returns a machine of a vault.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn get_machine(
        &self,
        vault_id: &VaultId,
        machine_id: &MachineId,
    ) -> StoreResult<Option<Machine>>;

    /// Finds a machine by id alone, as a signed request names it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn find_machine(&self, machine_id: &MachineId) -> StoreResult<Option<Machine>>;

    /// Lists a vault's machines, oldest first.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn list_machines(&self, vault_id: &VaultId) -> StoreResult<Vec<Machine>>;

    /// Counts a vault's machines in every state.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn count_machines(&self, vault_id: &VaultId) -> StoreResult<u32>;

    /// Changes a machine's state and guardrails with an audit event, atomically. `decide` gets
    /// the machine as stored, locked against concurrent changes, and returns the machine to
    /// store (only `state` and `guardrails` are written) with its event. Returns the machine as
    /// stored and the audit entry.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when the vault has no such machine; the error `decide` returned.
    fn update_machine(
        &self,
        vault_id: &VaultId,
        machine_id: &MachineId,
        decide: &mut dyn FnMut(Machine) -> StoreResult<(Machine, AuditEvent)>,
    ) -> StoreResult<Audited<Machine>>;

    /// Approves a pending machine (the core's `Machine::approve`).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`]; [`StoreError::Domain`] holding a `TransitionError`.
    fn approve_machine(
        &self,
        vault_id: &VaultId,
        machine_id: &MachineId,
        by: &OwnerId,
        now: DateTime<Utc>,
    ) -> StoreResult<Audited<Machine>> {
        self.update_machine(vault_id, machine_id, &mut |machine| {
            machine.approve(by, now).map_err(StoreError::domain)
        })
    }

    /// Enables a disabled machine (the core's `Machine::enable`).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`]; [`StoreError::Domain`] holding a `TransitionError`.
    fn enable_machine(
        &self,
        vault_id: &VaultId,
        machine_id: &MachineId,
        by: &OwnerId,
        now: DateTime<Utc>,
    ) -> StoreResult<Audited<Machine>> {
        self.update_machine(vault_id, machine_id, &mut |machine| {
            machine.enable(by, now).map_err(StoreError::domain)
        })
    }

    /// Disables an active machine (the core's `Machine::disable`).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`]; [`StoreError::Domain`] holding a `TransitionError`.
    fn disable_machine(
        &self,
        vault_id: &VaultId,
        machine_id: &MachineId,
        by: &OwnerId,
        now: DateTime<Utc>,
    ) -> StoreResult<Audited<Machine>> {
        self.update_machine(vault_id, machine_id, &mut |machine| {
            machine.disable(by, now).map_err(StoreError::domain)
        })
    }

    /// Replaces a machine's guardrails, audited with before and after (the core's
    /// `Machine::update_guardrails`).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`]; [`StoreError::Domain`] holding a `GuardrailsUpdateError`.
    fn set_guardrails(
        &self,
        vault_id: &VaultId,
        machine_id: &MachineId,
        guardrails: &Guardrails,
        by: &OwnerId,
        now: DateTime<Utc>,
    ) -> StoreResult<Audited<Machine>> {
        self.update_machine(vault_id, machine_id, &mut |machine| {
            machine
                .update_guardrails(guardrails.clone(), by, now)
                .map_err(StoreError::domain)
        })
    }

    /// Deletes a machine with its grants, project memberships, extension chain and last-read
    /// versions, and appends the audit event `decide` returns, atomically. Returns the deleted
    /// machine and the audit entry.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when the vault has no such machine; the error `decide` returned.
    fn delete_machine(
        &self,
        vault_id: &VaultId,
        machine_id: &MachineId,
        decide: &mut dyn FnMut(Machine) -> StoreResult<AuditEvent>,
    ) -> StoreResult<Audited<Machine>>;

    /// Denies a pending machine: it is deleted (the core's `Machine::deny`).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`]; [`StoreError::Domain`] holding a `TransitionError`.
    fn deny_machine(
        &self,
        vault_id: &VaultId,
        machine_id: &MachineId,
        by: &OwnerId,
        now: DateTime<Utc>,
    ) -> StoreResult<Audited<Machine>> {
        self.delete_machine(vault_id, machine_id, &mut |machine| {
            machine
                .deny(by, now)
                .map(|(_, event)| event)
                .map_err(StoreError::domain)
        })
    }

    /// Revokes a machine in any state: it is deleted (the core's `Machine::revoke`).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when the vault has no such machine.
    fn revoke_machine(
        &self,
        vault_id: &VaultId,
        machine_id: &MachineId,
        by: &OwnerId,
        now: DateTime<Utc>,
    ) -> StoreResult<Audited<Machine>> {
        self.delete_machine(vault_id, machine_id, &mut |machine| {
            Ok(machine.revoke(by, now).1)
        })
    }

    /// Returns a machine's extension chain, oldest extension first.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn extension_chain(&self, machine_id: &MachineId) -> StoreResult<ExtensionChain>;

    /// Extends or reverts: loads the machine and its chain with the machine locked, calls
    /// `decide`, then writes the new expiry, the new chain and the audit event in one
    /// transaction. Returns the machine and chain as written, and the audit entry.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when the vault has no such machine; the error `decide` returned.
    fn change_expiry(
        &self,
        vault_id: &VaultId,
        machine_id: &MachineId,
        decide: &mut dyn FnMut(Machine, ExtensionChain) -> StoreResult<ChainUpdate>,
    ) -> StoreResult<Audited<(Machine, ExtensionChain)>>;

    /// Extends a machine's expiry (the core's `extend`).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`]; [`StoreError::Domain`] holding an [`ExtendError`](guardrail_core::extension::ExtendError).
    fn extend_machine(
        &self,
        vault_id: &VaultId,
        machine_id: &MachineId,
        request: &ExtendRequest,
        now: DateTime<Utc>,
    ) -> StoreResult<Audited<(Machine, ExtensionChain)>> {
        self.change_expiry(vault_id, machine_id, &mut |machine, chain| {
            extend(machine, chain, request.clone(), now).map_err(StoreError::domain)
        })
    }

    /// Reverts the latest un-reverted extension (the core's `revert`).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`]; [`StoreError::Domain`] holding a [`RevertError`](guardrail_core::extension::RevertError).
    fn revert_extension(
        &self,
        vault_id: &VaultId,
        machine_id: &MachineId,
        by: &OwnerId,
        now: DateTime<Utc>,
    ) -> StoreResult<Audited<(Machine, ExtensionChain)>> {
        self.change_expiry(vault_id, machine_id, &mut |machine, chain| {
            revert(machine, chain, by, now).map_err(StoreError::domain)
        })
    }

    /// Runs one sweeper batch in one transaction.
    ///
    /// It loads at most `limit` machines due to be marked expired
    /// (`state <> 'expired' AND expires_at <= now`) and at most `limit` due to be purged
    /// (`expires_at <= now - 30 days`), each with its vault owner. The core's `plan_sweep`
    /// decides, and the store marks and deletes what the plan lists (deleting as
    /// [`MachineStore::delete_machine`] does) and appends the plan's audit events, which the
    /// report returns as stored, so that the caller can alert them. Both loads
    /// use indexes on `expires_at`, so a batch costs in proportion to the machines due, not to
    /// all machines stored. Call it again while it reports changes to drain a backlog.
    ///
    /// # Errors
    ///
    /// A database failure; nothing is written then.
    fn sweep(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<SweepReport>;
}

/// Projects, membership, secrets, grants and per-machine read versions.
pub trait SecretStore {
    /// Creates a project.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the id exists; [`StoreError::NotFound`] for an unknown
    /// vault.
    fn create_project(&self, project: &Project) -> StoreResult<()>;

    /// Returns a project of a vault.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn get_project(
        &self,
        vault_id: &VaultId,
        project_id: &ProjectId,
    ) -> StoreResult<Option<Project>>;

    /// Lists a vault's projects, ordered by name.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn list_projects(&self, vault_id: &VaultId) -> StoreResult<Vec<Project>>;

    /// Adds a machine to a project of the same vault. Adding it twice is not an error.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when the project or machine is not in the vault.
    fn add_project_member(
        &self,
        vault_id: &VaultId,
        project_id: &ProjectId,
        machine_id: &MachineId,
    ) -> StoreResult<()>;

    /// Lists the projects a machine is a member of, ordered by name.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn machine_projects(&self, machine_id: &MachineId) -> StoreResult<Vec<Project>>;

    /// Stores a new secret at version 1.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the id exists; [`StoreError::NotFound`] when the project
    /// is not in the vault.
    fn create_secret(&self, secret: &SecretRecord) -> StoreResult<()>;

    /// Replaces a secret's ciphertext (and field names) and stores it as version
    /// `expected_version + 1`, but only if the stored version is still `expected_version`
    /// (compare-and-set). The check and the write are one atomic step, so of concurrent updates
    /// from one version exactly one succeeds, and every version number names one ciphertext.
    /// Returns the secret as stored.
    ///
    /// The caller encrypts for `expected_version + 1` before calling, so that a ciphertext bound
    /// to its version is written under that version or not at all.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when the vault has no such secret; [`StoreError::Conflict`] when
    /// its version is no longer `expected_version` (another update got in first), and then
    /// nothing is written.
    fn update_secret(
        &self,
        vault_id: &VaultId,
        secret_id: &SecretId,
        expected_version: u64,
        ciphertext: &[u8],
        field_names: Option<&[String]>,
        now: DateTime<Utc>,
    ) -> StoreResult<SecretRecord>;

    /// Returns a secret by id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn get_secret(&self, secret_id: &SecretId) -> StoreResult<Option<SecretRecord>>;

    /// Lists a vault's secrets, optionally of one project, ordered by name.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn list_secrets(
        &self,
        vault_id: &VaultId,
        project_id: Option<&ProjectId>,
    ) -> StoreResult<Vec<SecretRecord>>;

    /// Deletes a secret and its grants.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when the vault has no such secret.
    fn delete_secret(&self, vault_id: &VaultId, secret_id: &SecretId) -> StoreResult<()>;

    /// Grants a machine read access to a secret of the same vault. Granting twice is not an
    /// error.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when the secret or machine is not in the vault.
    fn grant_secret(
        &self,
        vault_id: &VaultId,
        secret_id: &SecretId,
        machine_id: &MachineId,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Returns whether a machine has a grant on a secret.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn has_grant(&self, secret_id: &SecretId, machine_id: &MachineId) -> StoreResult<bool>;

    /// Lists the secrets a machine has grants on, ordered by id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn granted_secrets(&self, machine_id: &MachineId) -> StoreResult<Vec<SecretId>>;

    /// Records that a machine read `version` of a secret. An older version never replaces a
    /// newer one. When the stored version is already `version` or newer, nothing is written:
    /// the SQL backends then check with a read and take no write lock.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] for an unknown machine.
    fn record_secret_read(
        &self,
        machine_id: &MachineId,
        secret_id: &SecretId,
        version: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Records that a machine read `version` of a secret, at `audit.at`, and appends `audit`
    /// (its `secret_read` entry) atomically: both are written or neither is. As in
    /// [`SecretStore::record_secret_read`], an older version never replaces a newer one, and the
    /// entry is appended either way. Returns the entry as stored. The SQL backends write both in
    /// one transaction, so a read costs one commit instead of two.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] for an unknown machine, [`StoreError::Unavailable`] or
    /// [`StoreError::Backend`] when the database fails; then nothing was written.
    fn record_secret_read_audited(
        &self,
        machine_id: &MachineId,
        secret_id: &SecretId,
        version: u64,
        audit: &AuditEvent,
    ) -> StoreResult<AuditRecord>;

    /// Returns the version of each listed secret that the machine last read; secrets it never
    /// read are absent from the result.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn last_read_versions(
        &self,
        machine_id: &MachineId,
        secret_ids: &[SecretId],
    ) -> StoreResult<Vec<(SecretId, u64)>>;
}

/// The append-only audit log, coalescing of repeated blocks, and webhook subscriptions.
///
/// TODO: no webhook delivery queue yet; the server must deliver alerts itself after commit.
pub trait AuditStore {
    /// Appends entries in one transaction and returns their ids in order.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`]; then no entry was written.
    fn append_audit(&self, events: &[AuditEvent]) -> StoreResult<Vec<AuditId>>;

    /// Returns a vault's entries matching `query`, newest first.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn query_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>>;

    /// Appends a `temp_machine_blocked` event, or counts it on the entry last written for the
    /// same `key` when that entry's latest repeat is at or after `coalesce_since`. Atomic: two
    /// concurrent repeats never both append.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn append_coalesced(
        &self,
        event: &AuditEvent,
        key: &CoalesceKey,
        coalesce_since: DateTime<Utc>,
    ) -> StoreResult<CoalesceOutcome>;

    /// Returns the coalescing state of `key`, if an entry was written for it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn coalesce_state(&self, key: &CoalesceKey) -> StoreResult<Option<CoalesceState>>;

    /// Adds one to an entry's count (and its `detail.count`) and returns the new count.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no entry has that id.
    fn increment_audit_count(&self, entry_id: AuditId) -> StoreResult<u32>;

    /// Stores a webhook subscription and returns it with its id.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] for an unknown vault.
    fn create_webhook(&self, webhook: &NewWebhook) -> StoreResult<WebhookSubscription>;

    /// Lists a vault's webhook subscriptions, oldest first.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn list_webhooks(&self, vault_id: &VaultId) -> StoreResult<Vec<WebhookSubscription>>;

    /// Lists a vault's subscriptions that include `action`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn webhooks_for(
        &self,
        vault_id: &VaultId,
        action: AuditAction,
    ) -> StoreResult<Vec<WebhookSubscription>>;

    /// Deletes a subscription.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when the vault has no such subscription.
    fn delete_webhook(&self, vault_id: &VaultId, webhook_id: WebhookId) -> StoreResult<()>;
}

/// Failure counters for lockouts, and cleanup of expired replay and lockout state.
pub trait GuardStore {
    /// Applies `update` to the counter state of `key` (or to `None` when there is none, or
    /// when its `keep_until` has passed) and stores the result until `keep_until`, atomically:
    /// concurrent failures are never lost. Returns the stored state.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the memory backend is full of live entries (the
    /// caller fails closed and treats the source as locked), or the database fails.
    fn record_failure(
        &self,
        key: &LockoutKey,
        now: DateTime<Utc>,
        keep_until: DateTime<Utc>,
        update: &dyn Fn(Option<FailureCounter>) -> FailureCounter,
    ) -> StoreResult<FailureCounter>;

    /// Returns the counter state of `key` unless its `keep_until` has passed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn lockout_state(
        &self,
        key: &LockoutKey,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<FailureCounter>>;

    /// Forgets the counter state of `key`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn clear_lockout(&self, key: &LockoutKey) -> StoreResult<()>;

    /// Deletes nonces and lockout entries whose `keep_until` is at or before `now`, and
    /// coalescing state last touched before `coalesce_before`. The server calls it from the
    /// sweeper; the memory backend also does it when a table reaches its bound.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn purge_expired(
        &self,
        now: DateTime<Utc>,
        coalesce_before: DateTime<Utc>,
    ) -> StoreResult<PurgeCounts>;
}

/// A named lease, so that only one replica runs the sweeper at a time.
pub trait LeaseStore {
    /// Takes or renews the lease `name` for `holder` until `now + ttl`. Succeeds when the lease
    /// is free, expired, or already held by `holder`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> StoreResult<bool>;

    /// Gives the lease up if `holder` holds it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the database fails.
    fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()>;
}

/// Everything the server needs from a store, implemented by every backend.
pub trait Store:
    VaultStore
    + TokenStore
    + MachineStore
    + SecretStore
    + AuditStore
    + GuardStore
    + LeaseStore
    + NonceStore
    + Send
    + Sync
{
}

impl<T> Store for T where
    T: VaultStore
        + TokenStore
        + MachineStore
        + SecretStore
        + AuditStore
        + GuardStore
        + LeaseStore
        + NonceStore
        + Send
        + Sync
{
}
