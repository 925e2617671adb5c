//! The storage traits implemented once over [`SqlBackend`].

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use guardrail_core::audit::{AuditAction, AuditEvent};
use guardrail_core::extension::{ChainUpdate, Extension, ExtensionChain};
use guardrail_core::guardrail::IpAllowlist;
use guardrail_core::ids::{MachineId, OwnerId, ProjectId, SecretId, TokenId, VaultId};
use guardrail_core::lockout::{FailureCounter, LockoutKey};
use guardrail_core::machine::{Machine, MachineState, PURGE_AFTER_DAYS, Registration};
use guardrail_core::plan::{Owner, Plan, Vault};
use guardrail_core::request::{NonceOutcome, NonceStore, NonceStoreError};
use guardrail_core::sweep::plan_sweep;
use guardrail_core::token::{
    BootstrapToken, TokenHash, TokenState, revoke_token as core_revoke_token,
};

use super::codec::{
    self, AUDIT_COLUMNS, EXTENSION_COLUMNS, MACHINE_COLUMNS, OWNER_COLUMNS, PROJECT_COLUMNS,
    SECRET_COLUMNS, TOKEN_COLUMNS, VAULT_COLUMNS, WEBHOOK_COLUMNS,
};
use super::{Dialect, Row, SqlBackend, SqlStore, Tx, Value, params};
use crate::codec::{machine_state_str, plan_str, set_detail_count, token_state_str};
use crate::error::StoreError;
use crate::model::{
    AuditId, AuditQuery, AuditRecord, Audited, CoalesceKey, CoalesceOutcome, CoalesceState,
    NewWebhook, OwnerKeyHash, Project, PurgeCounts, RegistrationContext, SecretRecord, SweepReport,
    WebhookId, WebhookSubscription, lockout_storage_key,
};
use crate::traits::{
    AuditStore, GuardStore, LeaseStore, MachineStore, SecretStore, StoreResult, TokenStore,
    VaultStore,
};

/// Returns the cutoff for purging: machines that expired at or before it are purged at `now`.
pub(crate) fn purge_cutoff(now: DateTime<Utc>) -> DateTime<Utc> {
    chrono::TimeDelta::try_days(PURGE_AFTER_DAYS)
        .and_then(|delay| now.checked_sub_signed(delay))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn prefixed_machine_columns() -> String {
    MACHINE_COLUMNS
        .split(", ")
        .map(|column| format!("m.{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn decode_all<T>(rows: Vec<Row>, decode: fn(&Row) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(decode).collect()
}

fn count_to_u32(rows: Option<Row>) -> StoreResult<u32> {
    let count = match rows {
        Some(row) => row.int(0)?,
        None => 0,
    };
    codec::to_u32(count, "row count")
}

/// Serialises writers on one key for the rest of the transaction. PostgreSQL takes a
/// transaction-scoped advisory lock; SQLite's write transaction already excludes every other
/// writer.
fn lock_key(tx: &mut dyn Tx, key: &str) -> StoreResult<()> {
    if tx.dialect() == Dialect::Postgres {
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &params![key])?;
    }
    Ok(())
}

pub(crate) fn insert_audit(tx: &mut dyn Tx, event: &AuditEvent) -> StoreResult<AuditId> {
    let row = tx
        .query_one(
            "INSERT INTO audit_log (at, vault_id, actor_kind, actor_id, action, severity, \
             target_kind, target_id, source_ip, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            &codec::audit_params(event)?,
        )?
        .ok_or_else(|| StoreError::backend("audit insert returned no id"))?;
    Ok(AuditId(row.int(0)?))
}

fn insert_audits(tx: &mut dyn Tx, events: &[AuditEvent]) -> StoreResult<Vec<AuditId>> {
    events.iter().map(|event| insert_audit(tx, event)).collect()
}

/// Appends an entry and returns it as stored.
fn insert_audit_record(tx: &mut dyn Tx, event: &AuditEvent) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        id: insert_audit(tx, event)?,
        event: event.clone(),
        count: 1,
    })
}

fn lock_machine(
    tx: &mut dyn Tx,
    vault_id: &VaultId,
    machine_id: &MachineId,
) -> StoreResult<Machine> {
    let sql = format!(
        "SELECT {MACHINE_COLUMNS} FROM machines WHERE vault_id = $1 AND id = $2{}",
        tx.for_update()
    );
    let row = tx
        .query_one(&sql, &params![vault_id.as_str(), machine_id.to_string()])?
        .ok_or_else(|| StoreError::not_found("machine", machine_id))?;
    codec::machine(&row)
}

fn load_chain(tx: &mut dyn Tx, machine_id: &MachineId) -> StoreResult<Vec<Extension>> {
    let rows = tx.query(
        &format!("SELECT {EXTENSION_COLUMNS} FROM extensions WHERE machine_id = $1 ORDER BY seq"),
        &params![machine_id.to_string()],
    )?;
    decode_all(rows, codec::extension)
}

fn write_chain(tx: &mut dyn Tx, machine_id: &MachineId, chain: &[Extension]) -> StoreResult<()> {
    let id = machine_id.to_string();
    tx.execute(
        "DELETE FROM extensions WHERE machine_id = $1",
        &params![id.as_str()],
    )?;
    for (seq, extension) in chain.iter().enumerate() {
        let seq = i64::try_from(seq)
            .map_err(|_| StoreError::backend("extension chain is too long to store"))?;
        tx.execute(
            "INSERT INTO extensions (machine_id, seq, previous_expires_at, new_expires_at, \
             applied_by, applied_at, reason, reverted) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &params![
                id.as_str(),
                seq,
                extension.previous_expires_at,
                extension.new_expires_at,
                extension.applied_by.as_str(),
                extension.applied_at,
                extension.reason.clone(),
                extension.reverted,
            ],
        )?;
    }
    Ok(())
}

/// Deletes a machine; the schema's `ON DELETE CASCADE` removes its extension chain, grants,
/// project memberships and read versions with it.
fn delete_machine_row(tx: &mut dyn Tx, machine_id: &MachineId) -> StoreResult<u64> {
    tx.execute(
        "DELETE FROM machines WHERE id = $1",
        &params![machine_id.to_string()],
    )
}

impl<B: SqlBackend> VaultStore for SqlStore<B> {
    fn create_vault_with_owner(
        &self,
        owner: &Owner,
        key_hash: &OwnerKeyHash,
        vault: &Vault,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.backend.write(&mut |tx| {
            tx.execute(
                "INSERT INTO owners (id, active, key_hash, created_at) VALUES ($1, $2, $3, $4)",
                &params![owner.id.as_str(), owner.active, &key_hash.0[..], now],
            )?;
            let mut values = codec::vault_params(vault)?;
            values.push(Value::from(now));
            tx.execute(
                "INSERT INTO vaults (id, owner_id, name, plan, machine_limit, ip_allowlist, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &values,
            )?;
            Ok(())
        })
    }

    fn owner_by_key_hash(&self, key_hash: &OwnerKeyHash) -> StoreResult<Option<Owner>> {
        self.backend.read(&mut |tx| {
            tx.query_one(
                &format!("SELECT {OWNER_COLUMNS} FROM owners WHERE key_hash = $1"),
                &params![&key_hash.0[..]],
            )?
            .as_ref()
            .map(codec::owner)
            .transpose()
        })
    }

    fn get_owner(&self, owner_id: &OwnerId) -> StoreResult<Option<Owner>> {
        self.backend.read(&mut |tx| {
            tx.query_one(
                &format!("SELECT {OWNER_COLUMNS} FROM owners WHERE id = $1"),
                &params![owner_id.as_str()],
            )?
            .as_ref()
            .map(codec::owner)
            .transpose()
        })
    }

    fn get_vault(&self, vault_id: &VaultId) -> StoreResult<Option<Vault>> {
        self.backend.read(&mut |tx| {
            tx.query_one(
                &format!("SELECT {VAULT_COLUMNS} FROM vaults WHERE id = $1"),
                &params![vault_id.as_str()],
            )?
            .as_ref()
            .map(codec::vault)
            .transpose()
        })
    }

    fn list_vaults(&self, owner_id: &OwnerId) -> StoreResult<Vec<Vault>> {
        self.backend.read(&mut |tx| {
            let rows = tx.query(
                &format!("SELECT {VAULT_COLUMNS} FROM vaults WHERE owner_id = $1 ORDER BY id"),
                &params![owner_id.as_str()],
            )?;
            decode_all(rows, codec::vault)
        })
    }

    fn set_owner_active(&self, owner_id: &OwnerId, active: bool) -> StoreResult<()> {
        self.backend.write(&mut |tx| {
            let changed = tx.execute(
                "UPDATE owners SET active = $1 WHERE id = $2",
                &params![active, owner_id.as_str()],
            )?;
            if changed == 0 {
                return Err(StoreError::not_found("owner", owner_id));
            }
            Ok(())
        })
    }

    fn set_plan(&self, vault_id: &VaultId, plan: Plan, machine_limit: u32) -> StoreResult<()> {
        self.backend.write(&mut |tx| {
            let changed = tx.execute(
                "UPDATE vaults SET plan = $1, machine_limit = $2 WHERE id = $3",
                &params![plan_str(plan), machine_limit, vault_id.as_str()],
            )?;
            if changed == 0 {
                return Err(StoreError::not_found("vault", vault_id));
            }
            Ok(())
        })
    }

    fn set_vault_ip_allowlist(
        &self,
        vault_id: &VaultId,
        allowlist: Option<&IpAllowlist>,
    ) -> StoreResult<()> {
        let json = allowlist.map(serde_json::to_string).transpose()?;
        self.backend.write(&mut |tx| {
            let changed = tx.execute(
                "UPDATE vaults SET ip_allowlist = $1 WHERE id = $2",
                &params![json.clone(), vault_id.as_str()],
            )?;
            if changed == 0 {
                return Err(StoreError::not_found("vault", vault_id));
            }
            Ok(())
        })
    }
}

impl<B: SqlBackend> TokenStore for SqlStore<B> {
    fn insert_token(&self, token: &BootstrapToken, audit: &AuditEvent) -> StoreResult<AuditRecord> {
        let values = codec::token_params(token)?;
        self.backend.write(&mut |tx| {
            tx.execute(
                &format!(
                    "INSERT INTO tokens ({TOKEN_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                ),
                &values,
            )?;
            insert_audit_record(tx, audit)
        })
    }

    fn get_token(
        &self,
        vault_id: &VaultId,
        token_id: &TokenId,
    ) -> StoreResult<Option<BootstrapToken>> {
        self.backend.read(&mut |tx| {
            tx.query_one(
                &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE vault_id = $1 AND id = $2"),
                &params![vault_id.as_str(), token_id.as_str()],
            )?
            .as_ref()
            .map(codec::token)
            .transpose()
        })
    }

    fn find_token_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<BootstrapToken>> {
        self.backend.read(&mut |tx| {
            tx.query_one(
                &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = $1"),
                &params![&hash.0[..]],
            )?
            .as_ref()
            .map(codec::token)
            .transpose()
        })
    }

    fn list_tokens(&self, vault_id: &VaultId) -> StoreResult<Vec<BootstrapToken>> {
        self.backend.read(&mut |tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM tokens WHERE vault_id = $1 \
                     ORDER BY created_at DESC, id DESC"
                ),
                &params![vault_id.as_str()],
            )?;
            decode_all(rows, codec::token)
        })
    }

    fn revoke_token(
        &self,
        vault_id: &VaultId,
        token_id: &TokenId,
        revoked_by: &OwnerId,
        now: DateTime<Utc>,
    ) -> StoreResult<Audited<BootstrapToken>> {
        self.backend.write(&mut |tx| {
            let sql = format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens WHERE vault_id = $1 AND id = $2{}",
                tx.for_update()
            );
            let row = tx
                .query_one(&sql, &params![vault_id.as_str(), token_id.as_str()])?
                .ok_or_else(|| StoreError::not_found("token", token_id))?;
            let (revoked, event) = core_revoke_token(codec::token(&row)?, revoked_by, now)
                .map_err(StoreError::domain)?;
            tx.execute(
                "UPDATE tokens SET state = $1 WHERE id = $2",
                &params![token_state_str(revoked.state), token_id.as_str()],
            )?;
            Ok(Audited {
                audit: insert_audit_record(tx, &event)?,
                value: revoked,
            })
        })
    }
}

impl<B: SqlBackend> MachineStore for SqlStore<B> {
    fn register_machine_with(
        &self,
        hash: &TokenHash,
        decide: &mut dyn FnMut(RegistrationContext<'_>) -> StoreResult<Registration>,
    ) -> StoreResult<Audited<Machine>> {
        self.backend.write(&mut |tx| {
            // Lock order: token, then vault. Registration is the only operation that locks both,
            // so concurrent registrations cannot deadlock each other.
            let sql = format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = $1{}",
                tx.for_update()
            );
            let row = tx
                .query_one(&sql, &params![&hash.0[..]])?
                .ok_or_else(|| StoreError::not_found("token", "with the presented hash"))?;
            let token = codec::token(&row)?;

            let sql = format!(
                "SELECT {VAULT_COLUMNS} FROM vaults WHERE id = $1{}",
                tx.for_update()
            );
            let row = tx
                .query_one(&sql, &params![token.vault_id.as_str()])?
                .ok_or_else(|| StoreError::not_found("vault", &token.vault_id))?;
            let vault = codec::vault(&row)?;

            let row = tx
                .query_one(
                    &format!("SELECT {OWNER_COLUMNS} FROM owners WHERE id = $1"),
                    &params![vault.owner_id.as_str()],
                )?
                .ok_or_else(|| StoreError::not_found("owner", &vault.owner_id))?;
            let owner = codec::owner(&row)?;

            // The vault row lock (or SQLite's write lock) is held, so no other registration in
            // this vault can commit between this count and the insert below.
            let machines_in_vault = count_to_u32(tx.query_one(
                "SELECT count(*) FROM machines WHERE vault_id = $1",
                &params![vault.id.as_str()],
            )?)?;

            let registration = decide(RegistrationContext {
                token: &token,
                vault: &vault,
                owner: &owner,
                machines_in_vault,
            })?;

            let changed = tx.execute(
                "UPDATE tokens SET state = $1 WHERE id = $2 AND state = $3",
                &params![
                    token_state_str(registration.token.state),
                    token.id.as_str(),
                    token_state_str(TokenState::Unused)
                ],
            )?;
            if changed == 0 {
                return Err(StoreError::conflict(format!(
                    "token `{}` is {}, not unused",
                    token.id,
                    token_state_str(token.state)
                )));
            }
            tx.execute(
                &format!(
                    "INSERT INTO machines ({MACHINE_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ),
                &codec::machine_params(&registration.machine)?,
            )?;
            Ok(Audited {
                audit: insert_audit_record(tx, &registration.event)?,
                value: registration.machine.clone(),
            })
        })
    }

    fn get_machine(
        &self,
        vault_id: &VaultId,
        machine_id: &MachineId,
    ) -> StoreResult<Option<Machine>> {
        self.backend.read(&mut |tx| {
            tx.query_one(
                &format!("SELECT {MACHINE_COLUMNS} FROM machines WHERE vault_id = $1 AND id = $2"),
                &params![vault_id.as_str(), machine_id.to_string()],
            )?
            .as_ref()
            .map(codec::machine)
            .transpose()
        })
    }

    fn find_machine(&self, machine_id: &MachineId) -> StoreResult<Option<Machine>> {
        self.backend.read(&mut |tx| {
            tx.query_one(
                &format!("SELECT {MACHINE_COLUMNS} FROM machines WHERE id = $1"),
                &params![machine_id.to_string()],
            )?
            .as_ref()
            .map(codec::machine)
            .transpose()
        })
    }

    fn list_machines(&self, vault_id: &VaultId) -> StoreResult<Vec<Machine>> {
        self.backend.read(&mut |tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {MACHINE_COLUMNS} FROM machines WHERE vault_id = $1 \
                     ORDER BY created_at, id"
                ),
                &params![vault_id.as_str()],
            )?;
            decode_all(rows, codec::machine)
        })
    }

    fn count_machines(&self, vault_id: &VaultId) -> StoreResult<u32> {
        self.backend.read(&mut |tx| {
            count_to_u32(tx.query_one(
                "SELECT count(*) FROM machines WHERE vault_id = $1",
                &params![vault_id.as_str()],
            )?)
        })
    }

    fn update_machine(
        &self,
        vault_id: &VaultId,
        machine_id: &MachineId,
        decide: &mut dyn FnMut(Machine) -> StoreResult<(Machine, AuditEvent)>,
    ) -> StoreResult<Audited<Machine>> {
        self.backend.write(&mut |tx| {
            let machine = lock_machine(tx, vault_id, machine_id)?;
            let (changed, event) = decide(machine)?;
            tx.execute(
                "UPDATE machines SET state = $1, guardrails = $2 WHERE id = $3",
                &params![
                    machine_state_str(changed.state),
                    serde_json::to_string(&changed.guardrails)?,
                    machine_id.to_string()
                ],
            )?;
            Ok(Audited {
                audit: insert_audit_record(tx, &event)?,
                value: changed,
            })
        })
    }

    fn delete_machine(
        &self,
        vault_id: &VaultId,
        machine_id: &MachineId,
        decide: &mut dyn FnMut(Machine) -> StoreResult<AuditEvent>,
    ) -> StoreResult<Audited<Machine>> {
        self.backend.write(&mut |tx| {
            let machine = lock_machine(tx, vault_id, machine_id)?;
            let event = decide(machine.clone())?;
            delete_machine_row(tx, machine_id)?;
            Ok(Audited {
                audit: insert_audit_record(tx, &event)?,
                value: machine,
            })
        })
    }

    fn extension_chain(&self, machine_id: &MachineId) -> StoreResult<ExtensionChain> {
        self.backend
            .read(&mut |tx| load_chain(tx, machine_id).map(ExtensionChain::from_extensions))
    }

    fn change_expiry(
        &self,
        vault_id: &VaultId,
        machine_id: &MachineId,
        decide: &mut dyn FnMut(Machine, ExtensionChain) -> StoreResult<ChainUpdate>,
    ) -> StoreResult<Audited<(Machine, ExtensionChain)>> {
        self.backend.write(&mut |tx| {
            // The machine row lock also guards its chain: every chain write locks it first.
            let machine = lock_machine(tx, vault_id, machine_id)?;
            let chain = ExtensionChain::from_extensions(load_chain(tx, machine_id)?);
            let update = decide(machine, chain)?;
            tx.execute(
                "UPDATE machines SET expires_at = $1 WHERE id = $2",
                &params![update.machine.expires_at, machine_id.to_string()],
            )?;
            write_chain(tx, machine_id, update.chain.extensions())?;
            Ok(Audited {
                audit: insert_audit_record(tx, &update.event)?,
                value: (update.machine, update.chain),
            })
        })
    }

    fn sweep(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<SweepReport> {
        let purge_before = purge_cutoff(now);
        self.backend.write(&mut |tx| {
            let lock = match tx.dialect() {
                Dialect::Postgres => " FOR UPDATE OF m",
                Dialect::Sqlite => "",
            };
            let columns = prefixed_machine_columns();
            // `m.state <> 'expired'` repeats the predicate of the partial index
            // `machines_unexpired_expiry`, so the planner can use that index.
            let due_expire = tx.query(
                &format!(
                    "SELECT {columns}, v.owner_id FROM machines m \
                     JOIN vaults v ON v.id = m.vault_id \
                     WHERE m.state <> 'expired' AND m.expires_at <= $1 \
                     ORDER BY m.expires_at LIMIT $2{lock}"
                ),
                &params![now, limit],
            )?;
            let due_purge = tx.query(
                &format!(
                    "SELECT {columns}, v.owner_id FROM machines m \
                     JOIN vaults v ON v.id = m.vault_id WHERE m.expires_at <= $1 \
                     ORDER BY m.expires_at LIMIT $2{lock}"
                ),
                &params![purge_before, limit],
            )?;
            let mut candidates: Vec<(Machine, OwnerId)> = Vec::new();
            for row in due_expire.iter().chain(due_purge.iter()) {
                let machine = codec::machine(row)?;
                if candidates.iter().any(|(seen, _)| seen.id == machine.id) {
                    continue;
                }
                let owner_id = codec::parse::<OwnerId>(&row.text(10)?, "owner id")?;
                candidates.push((machine, owner_id));
            }
            let plan = plan_sweep(candidates.iter().map(|(m, o)| (m, o)), now);

            let mut report = SweepReport::default();
            for machine_id in &plan.expire {
                report.expired += tx.execute(
                    "UPDATE machines SET state = $1 WHERE id = $2 AND state <> $1",
                    &params![
                        machine_state_str(MachineState::Expired),
                        machine_id.to_string()
                    ],
                )?;
            }
            for machine_id in &plan.purge {
                report.purged += delete_machine_row(tx, machine_id)?;
            }
            for event in &plan.events {
                report.audit.push(insert_audit_record(tx, event)?);
            }
            Ok(report)
        })
    }
}

impl<B: SqlBackend> SecretStore for SqlStore<B> {
    fn create_project(&self, project: &Project) -> StoreResult<()> {
        self.backend.write(&mut |tx| {
            tx.execute(
                &format!("INSERT INTO projects ({PROJECT_COLUMNS}) VALUES ($1, $2, $3, $4)"),
                &params![
                    project.id.as_str(),
                    project.vault_id.as_str(),
                    project.name.as_str(),
                    project.created_at
                ],
            )?;
            Ok(())
        })
    }

    fn get_project(
        &self,
        vault_id: &VaultId,
        project_id: &ProjectId,
    ) -> StoreResult<Option<Project>> {
        self.backend.read(&mut |tx| {
            tx.query_one(
                &format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE vault_id = $1 AND id = $2"),
                &params![vault_id.as_str(), project_id.as_str()],
            )?
            .as_ref()
            .map(codec::project)
            .transpose()
        })
    }

    fn list_projects(&self, vault_id: &VaultId) -> StoreResult<Vec<Project>> {
        self.backend.read(&mut |tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {PROJECT_COLUMNS} FROM projects WHERE vault_id = $1 ORDER BY name, id"
                ),
                &params![vault_id.as_str()],
            )?;
            decode_all(rows, codec::project)
        })
    }

    fn add_project_member(
        &self,
        vault_id: &VaultId,
        project_id: &ProjectId,
        machine_id: &MachineId,
    ) -> StoreResult<()> {
        self.backend.write(&mut |tx| {
            require_in_vault(tx, "projects", "project", vault_id, project_id.as_str())?;
            require_in_vault(tx, "machines", "machine", vault_id, &machine_id.to_string())?;
            tx.execute(
                "INSERT INTO project_members (project_id, machine_id) VALUES ($1, $2) \
                 ON CONFLICT (project_id, machine_id) DO NOTHING",
                &params![project_id.as_str(), machine_id.to_string()],
            )?;
            Ok(())
        })
    }

    fn machine_projects(&self, machine_id: &MachineId) -> StoreResult<Vec<Project>> {
        self.backend.read(&mut |tx| {
            let rows = tx.query(
                "SELECT p.id, p.vault_id, p.name, p.created_at FROM projects p \
                 JOIN project_members m ON m.project_id = p.id \
                 WHERE m.machine_id = $1 ORDER BY p.name, p.id",
                &params![machine_id.to_string()],
            )?;
            decode_all(rows, codec::project)
        })
    }

    fn create_secret(&self, secret: &SecretRecord) -> StoreResult<()> {
        let field_names = secret
            .field_names
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        let version = i64::try_from(secret.version)
            .map_err(|_| StoreError::conflict("secret version is out of range"))?;
        self.backend.write(&mut |tx| {
            require_in_vault(
                tx,
                "projects",
                "project",
                &secret.vault_id,
                secret.project_id.as_str(),
            )?;
            tx.execute(
                &format!(
                    "INSERT INTO secrets ({SECRET_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ),
                &params![
                    secret.id.as_str(),
                    secret.vault_id.as_str(),
                    secret.project_id.as_str(),
                    secret.name.as_str(),
                    secret.value_type.as_str(),
                    field_names.clone(),
                    secret.ciphertext.as_slice(),
                    version,
                    secret.created_at,
                    secret.updated_at,
                ],
            )?;
            Ok(())
        })
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
        let field_names = field_names.map(serde_json::to_string).transpose()?;
        let (expected, next) = next_secret_version(secret_id, expected_version)?;
        self.backend.write(&mut |tx| {
            // The version condition makes the check and the write one statement, so no lock is
            // needed: of two updates from one version, the second matches no row.
            let updated = tx.query_one(
                &format!(
                    "UPDATE secrets SET ciphertext = $1, field_names = $2, version = $3, \
                     updated_at = $4 WHERE vault_id = $5 AND id = $6 AND version = $7 \
                     RETURNING {SECRET_COLUMNS}"
                ),
                &params![
                    ciphertext,
                    field_names.clone(),
                    next,
                    now,
                    vault_id.as_str(),
                    secret_id.as_str(),
                    expected
                ],
            )?;
            if let Some(row) = updated {
                return codec::secret(&row);
            }
            let current = tx
                .query_one(
                    "SELECT version FROM secrets WHERE vault_id = $1 AND id = $2",
                    &params![vault_id.as_str(), secret_id.as_str()],
                )?
                .ok_or_else(|| StoreError::not_found("secret", secret_id))?;
            Err(version_conflict(
                secret_id,
                current.int(0)?,
                expected_version,
            ))
        })
    }

    fn get_secret(&self, secret_id: &SecretId) -> StoreResult<Option<SecretRecord>> {
        self.backend.read(&mut |tx| {
            tx.query_one(
                &format!("SELECT {SECRET_COLUMNS} FROM secrets WHERE id = $1"),
                &params![secret_id.as_str()],
            )?
            .as_ref()
            .map(codec::secret)
            .transpose()
        })
    }

    fn list_secrets(
        &self,
        vault_id: &VaultId,
        project_id: Option<&ProjectId>,
    ) -> StoreResult<Vec<SecretRecord>> {
        self.backend.read(&mut |tx| {
            let rows = match project_id {
                Some(project_id) => tx.query(
                    &format!(
                        "SELECT {SECRET_COLUMNS} FROM secrets \
                         WHERE vault_id = $1 AND project_id = $2 ORDER BY name, id"
                    ),
                    &params![vault_id.as_str(), project_id.as_str()],
                )?,
                None => tx.query(
                    &format!(
                        "SELECT {SECRET_COLUMNS} FROM secrets WHERE vault_id = $1 \
                         ORDER BY name, id"
                    ),
                    &params![vault_id.as_str()],
                )?,
            };
            decode_all(rows, codec::secret)
        })
    }

    fn delete_secret(&self, vault_id: &VaultId, secret_id: &SecretId) -> StoreResult<()> {
        self.backend.write(&mut |tx| {
            let deleted = tx.execute(
                "DELETE FROM secrets WHERE vault_id = $1 AND id = $2",
                &params![vault_id.as_str(), secret_id.as_str()],
            )?;
            if deleted == 0 {
                return Err(StoreError::not_found("secret", secret_id));
            }
            Ok(())
        })
    }

    fn grant_secret(
        &self,
        vault_id: &VaultId,
        secret_id: &SecretId,
        machine_id: &MachineId,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.backend.write(&mut |tx| {
            require_in_vault(tx, "secrets", "secret", vault_id, secret_id.as_str())?;
            require_in_vault(tx, "machines", "machine", vault_id, &machine_id.to_string())?;
            tx.execute(
                "INSERT INTO grants (secret_id, machine_id, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (secret_id, machine_id) DO NOTHING",
                &params![secret_id.as_str(), machine_id.to_string(), now],
            )?;
            Ok(())
        })
    }

    fn has_grant(&self, secret_id: &SecretId, machine_id: &MachineId) -> StoreResult<bool> {
        self.backend.read(&mut |tx| {
            Ok(tx
                .query_one(
                    "SELECT 1 FROM grants WHERE secret_id = $1 AND machine_id = $2",
                    &params![secret_id.as_str(), machine_id.to_string()],
                )?
                .is_some())
        })
    }

    fn granted_secrets(&self, machine_id: &MachineId) -> StoreResult<Vec<SecretId>> {
        self.backend.read(&mut |tx| {
            let rows = tx.query(
                "SELECT secret_id FROM grants WHERE machine_id = $1 ORDER BY secret_id",
                &params![machine_id.to_string()],
            )?;
            rows.iter()
                .map(|row| codec::parse(&row.text(0)?, "secret id"))
                .collect()
        })
    }

    fn record_secret_read(
        &self,
        machine_id: &MachineId,
        secret_id: &SecretId,
        version: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let version = read_version_param(version)?;
        // Most reads repeat the version already recorded. Checking first with a read keeps
        // them off the write lock and out of the commit (and fsync) queue.
        let stored = self.backend.read(&mut |tx| {
            tx.query_one(
                "SELECT version FROM secret_reads WHERE machine_id = $1 AND secret_id = $2",
                &params![machine_id.to_string(), secret_id.as_str()],
            )?
            .map(|row| row.int(0))
            .transpose()
        })?;
        if stored.is_some_and(|stored| stored >= version) {
            return Ok(());
        }
        self.backend
            .write(&mut |tx| upsert_read_version(tx, machine_id, secret_id, version, now))
    }

    fn record_secret_read_audited(
        &self,
        machine_id: &MachineId,
        secret_id: &SecretId,
        version: u64,
        audit: &AuditEvent,
    ) -> StoreResult<AuditRecord> {
        let version = read_version_param(version)?;
        self.backend.write(&mut |tx| {
            upsert_read_version(tx, machine_id, secret_id, version, audit.at)?;
            insert_audit_record(tx, audit)
        })
    }

    fn last_read_versions(
        &self,
        machine_id: &MachineId,
        secret_ids: &[SecretId],
    ) -> StoreResult<Vec<(SecretId, u64)>> {
        let wanted: HashSet<&str> = secret_ids.iter().map(SecretId::as_str).collect();
        self.backend.read(&mut |tx| {
            let rows = tx.query(
                "SELECT secret_id, version FROM secret_reads WHERE machine_id = $1 \
                 ORDER BY secret_id",
                &params![machine_id.to_string()],
            )?;
            let mut versions = Vec::new();
            for row in &rows {
                let id = row.text(0)?;
                if wanted.contains(id.as_str()) {
                    let version = u64::try_from(row.int(1)?)
                        .map_err(|_| StoreError::backend("stored read version is negative"))?;
                    versions.push((codec::parse(&id, "secret id")?, version));
                }
            }
            Ok(versions)
        })
    }
}

fn read_version_param(version: u64) -> StoreResult<i64> {
    i64::try_from(version)
        .map_err(|_| StoreError::conflict(format!("secret version `{version}` is out of range")))
}

/// Stores the version a machine read, unless the stored one is the same or newer. The
/// machine's foreign key makes an unknown machine fail.
fn upsert_read_version(
    tx: &mut dyn Tx,
    machine_id: &MachineId,
    secret_id: &SecretId,
    version: i64,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO secret_reads (machine_id, secret_id, version, read_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (machine_id, secret_id) DO UPDATE \
         SET version = excluded.version, read_at = excluded.read_at \
         WHERE secret_reads.version < excluded.version",
        &params![machine_id.to_string(), secret_id.as_str(), version, now],
    )?;
    Ok(())
}

/// Converts an expected secret version and its successor to the signed integers SQL stores.
fn next_secret_version(secret_id: &SecretId, expected: u64) -> StoreResult<(i64, i64)> {
    i64::try_from(expected)
        .ok()
        .and_then(|expected| Some((expected, expected.checked_add(1)?)))
        .ok_or_else(|| {
            StoreError::conflict(format!(
                "secret `{secret_id}` cannot go past version `{expected}`"
            ))
        })
}

/// The conflict of an update that expected another version than the stored one.
pub(crate) fn version_conflict(
    secret_id: &SecretId,
    current: impl std::fmt::Display,
    expected: u64,
) -> StoreError {
    StoreError::conflict(format!(
        "secret `{secret_id}` is at version `{current}`, not the expected `{expected}`: \
         read it again and retry"
    ))
}

fn require_in_vault(
    tx: &mut dyn Tx,
    table: &str,
    kind: &'static str,
    vault_id: &VaultId,
    id: &str,
) -> StoreResult<()> {
    let found = tx
        .query_one(
            &format!("SELECT 1 FROM {table} WHERE vault_id = $1 AND id = $2"),
            &params![vault_id.as_str(), id],
        )?
        .is_some();
    if found {
        Ok(())
    } else {
        Err(StoreError::not_found(kind, id))
    }
}

impl<B: SqlBackend> AuditStore for SqlStore<B> {
    fn append_audit(&self, events: &[AuditEvent]) -> StoreResult<Vec<AuditId>> {
        self.backend.write(&mut |tx| insert_audits(tx, events))
    }

    fn query_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        let mut sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE vault_id = $1");
        let mut values = Vec::from(params![query.vault_id.as_str()]);
        if let Some(action) = query.action {
            values.push(Value::from(action.as_str()));
            sql.push_str(&format!(" AND action = ${}", values.len()));
        }
        if let Some(severity) = query.severity {
            values.push(Value::from(severity.as_str()));
            sql.push_str(&format!(" AND severity = ${}", values.len()));
        }
        if let Some(since) = query.since {
            values.push(Value::from(since));
            sql.push_str(&format!(" AND at >= ${}", values.len()));
        }
        if let Some(before) = query.before {
            values.push(Value::from(before.0));
            sql.push_str(&format!(" AND id < ${}", values.len()));
        }
        values.push(Value::from(query.limit));
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", values.len()));
        self.backend.read(&mut |tx| {
            let rows = tx.query(&sql, &values)?;
            decode_all(rows, codec::audit)
        })
    }

    fn append_coalesced(
        &self,
        event: &AuditEvent,
        key: &CoalesceKey,
        coalesce_since: DateTime<Utc>,
    ) -> StoreResult<CoalesceOutcome> {
        let key = key.storage_key();
        self.backend.write(&mut |tx| {
            lock_key(tx, &format!("coalesce|{key}"))?;
            let current = tx.query_one(
                "SELECT audit_id, count, last_at FROM audit_coalesce WHERE key = $1",
                &params![key.as_str()],
            )?;
            if let Some(row) = current
                && row.instant(2)? >= coalesce_since
            {
                let entry_id = AuditId(row.int(0)?);
                if let Some(count) = bump_audit_count(tx, entry_id)? {
                    tx.execute(
                        "UPDATE audit_coalesce SET count = $1, last_at = $2 WHERE key = $3",
                        &params![count, event.at, key.as_str()],
                    )?;
                    return Ok(CoalesceOutcome::Coalesced { entry_id, count });
                }
            }
            let entry_id = insert_audit(tx, event)?;
            tx.execute(
                "INSERT INTO audit_coalesce (key, audit_id, count, first_at, last_at) \
                 VALUES ($1, $2, 1, $3, $3) \
                 ON CONFLICT (key) DO UPDATE SET audit_id = excluded.audit_id, count = 1, \
                 first_at = excluded.first_at, last_at = excluded.last_at",
                &params![key.as_str(), entry_id.0, event.at],
            )?;
            Ok(CoalesceOutcome::Appended(entry_id))
        })
    }

    fn coalesce_state(&self, key: &CoalesceKey) -> StoreResult<Option<CoalesceState>> {
        let key = key.storage_key();
        self.backend.read(&mut |tx| {
            let Some(row) = tx.query_one(
                "SELECT audit_id, count, first_at, last_at FROM audit_coalesce WHERE key = $1",
                &params![key.as_str()],
            )?
            else {
                return Ok(None);
            };
            Ok(Some(CoalesceState {
                entry_id: AuditId(row.int(0)?),
                count: codec::to_u32(row.int(1)?, "coalesce count")?,
                first_at: row.instant(2)?,
                last_at: row.instant(3)?,
            }))
        })
    }

    fn increment_audit_count(&self, entry_id: AuditId) -> StoreResult<u32> {
        self.backend.write(&mut |tx| {
            bump_audit_count(tx, entry_id)?
                .ok_or_else(|| StoreError::not_found("audit entry", entry_id))
        })
    }

    fn create_webhook(&self, webhook: &NewWebhook) -> StoreResult<WebhookSubscription> {
        let actions = serde_json::to_string(&webhook.actions)?;
        self.backend.write(&mut |tx| {
            let row = tx
                .query_one(
                    &format!(
                        "INSERT INTO webhooks (vault_id, url, actions, secret, created_at) \
                         VALUES ($1, $2, $3, $4, $5) RETURNING {WEBHOOK_COLUMNS}"
                    ),
                    &params![
                        webhook.vault_id.as_str(),
                        webhook.url.as_str(),
                        actions.as_str(),
                        webhook.secret.as_slice(),
                        webhook.created_at
                    ],
                )?
                .ok_or_else(|| StoreError::backend("webhook insert returned no row"))?;
            codec::webhook(&row)
        })
    }

    fn list_webhooks(&self, vault_id: &VaultId) -> StoreResult<Vec<WebhookSubscription>> {
        self.backend.read(&mut |tx| {
            let rows = tx.query(
                &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE vault_id = $1 ORDER BY id"),
                &params![vault_id.as_str()],
            )?;
            decode_all(rows, codec::webhook)
        })
    }

    fn webhooks_for(
        &self,
        vault_id: &VaultId,
        action: AuditAction,
    ) -> StoreResult<Vec<WebhookSubscription>> {
        // A vault has few subscriptions, so filtering the decoded list is cheaper than a JSON
        // query that differs between the dialects.
        Ok(self
            .list_webhooks(vault_id)?
            .into_iter()
            .filter(|webhook| webhook.actions.contains(&action))
            .collect())
    }

    fn delete_webhook(&self, vault_id: &VaultId, webhook_id: WebhookId) -> StoreResult<()> {
        self.backend.write(&mut |tx| {
            let deleted = tx.execute(
                "DELETE FROM webhooks WHERE vault_id = $1 AND id = $2",
                &params![vault_id.as_str(), webhook_id.0],
            )?;
            if deleted == 0 {
                return Err(StoreError::not_found("webhook", webhook_id.0));
            }
            Ok(())
        })
    }
}

/// Adds one to an entry's count and its `detail.count`; `None` when the entry does not exist.
fn bump_audit_count(tx: &mut dyn Tx, entry_id: AuditId) -> StoreResult<Option<u32>> {
    let sql = format!(
        "SELECT count, detail FROM audit_log WHERE id = $1{}",
        tx.for_update()
    );
    let Some(row) = tx.query_one(&sql, &params![entry_id.0])? else {
        return Ok(None);
    };
    let count = codec::to_u32(row.int(0)?, "audit count")?.saturating_add(1);
    let mut detail: serde_json::Value = serde_json::from_str(&row.text(1)?)?;
    set_detail_count(&mut detail, count);
    tx.execute(
        "UPDATE audit_log SET count = $1, detail = $2 WHERE id = $3",
        &params![count, serde_json::to_string(&detail)?, entry_id.0],
    )?;
    Ok(Some(count))
}

impl<B: SqlBackend> GuardStore for SqlStore<B> {
    fn record_failure(
        &self,
        key: &LockoutKey,
        now: DateTime<Utc>,
        keep_until: DateTime<Utc>,
        update: &dyn Fn(Option<FailureCounter>) -> FailureCounter,
    ) -> StoreResult<FailureCounter> {
        let key = lockout_storage_key(key);
        self.backend.write(&mut |tx| {
            lock_key(tx, &format!("lockout|{key}"))?;
            let current = read_lockout(tx, &key, now)?;
            let next = update(current);
            tx.execute(
                "INSERT INTO lockouts (key, failures, first_failure_at, locked_until, keep_until) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO UPDATE SET \
                 failures = excluded.failures, first_failure_at = excluded.first_failure_at, \
                 locked_until = excluded.locked_until, keep_until = excluded.keep_until",
                &params![
                    key.as_str(),
                    next.failures,
                    next.first_failure_at,
                    next.locked_until,
                    keep_until
                ],
            )?;
            Ok(next)
        })
    }

    fn lockout_state(
        &self,
        key: &LockoutKey,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<FailureCounter>> {
        let key = lockout_storage_key(key);
        self.backend.read(&mut |tx| read_lockout(tx, &key, now))
    }

    fn clear_lockout(&self, key: &LockoutKey) -> StoreResult<()> {
        let key = lockout_storage_key(key);
        self.backend.write(&mut |tx| {
            tx.execute(
                "DELETE FROM lockouts WHERE key = $1",
                &params![key.as_str()],
            )?;
            Ok(())
        })
    }

    fn purge_expired(
        &self,
        now: DateTime<Utc>,
        coalesce_before: DateTime<Utc>,
    ) -> StoreResult<PurgeCounts> {
        // NOTE: the SQL lockout and coalescing tables have no row cap; they stay small only
        // because the reference server's sweeper calls this on every run.
        self.backend.write(&mut |tx| {
            Ok(PurgeCounts {
                nonces: tx.execute("DELETE FROM nonces WHERE keep_until <= $1", &params![now])?,
                lockouts: tx
                    .execute("DELETE FROM lockouts WHERE keep_until <= $1", &params![now])?,
                coalesce_entries: tx.execute(
                    "DELETE FROM audit_coalesce WHERE last_at < $1",
                    &params![coalesce_before],
                )?,
            })
        })
    }
}

fn read_lockout(
    tx: &mut dyn Tx,
    key: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<FailureCounter>> {
    let row = tx.query_one(
        "SELECT failures, first_failure_at, locked_until FROM lockouts \
         WHERE key = $1 AND keep_until > $2",
        &params![key, now],
    )?;
    row.map(|row| {
        Ok(FailureCounter {
            failures: codec::to_u32(row.int(0)?, "failure count")?,
            first_failure_at: row.opt_instant(1)?,
            locked_until: row.opt_instant(2)?,
        })
    })
    .transpose()
}

impl<B: SqlBackend> LeaseStore for SqlStore<B> {
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
        self.backend.write(&mut |tx| {
            let changed = tx.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                 expires_at = excluded.expires_at \
                 WHERE leases.holder = excluded.holder OR leases.expires_at <= $4",
                &params![name, holder, expires_at, now],
            )?;
            Ok(changed == 1)
        })
    }

    fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        self.backend.write(&mut |tx| {
            tx.execute(
                "DELETE FROM leases WHERE name = $1 AND holder = $2",
                &params![name, holder],
            )?;
            Ok(())
        })
    }
}

impl<B: SqlBackend> NonceStore for SqlStore<B> {
    fn insert_if_absent(
        &self,
        machine: MachineId,
        nonce: &str,
        keep_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<NonceOutcome, NonceStoreError> {
        let machine = machine.to_string();
        let result = self.backend.write(&mut |tx| {
            // A row whose `keep_until` passed no longer protects anything, so a new request
            // may take its place; a live row makes this a replay.
            tx.execute(
                "INSERT INTO nonces (machine_id, nonce, keep_until) VALUES ($1, $2, $3) \
                 ON CONFLICT (machine_id, nonce) DO UPDATE SET keep_until = excluded.keep_until \
                 WHERE nonces.keep_until <= $4",
                &params![machine.as_str(), nonce, keep_until, now],
            )
        });
        match result {
            Ok(1) => Ok(NonceOutcome::Recorded),
            Ok(_) => Ok(NonceOutcome::Replayed),
            Err(error) => Err(NonceStoreError::new(error.to_string())),
        }
    }
}
