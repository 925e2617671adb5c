//! Sweep planning: which machines the background sweeper marks expired and which it purges.
//!
//! [`plan_sweep`] is pure: it reads machines with their vault owner's id and `now`, and returns
//! the ids to mark, the ids to delete and the audit events, in a deterministic order. The store
//! selects the candidates (machines with `expires_at <= now` that are not yet marked, and
//! machines whose purge is due), so the sweep's cost follows the number of machines that change.
//!
//! # Edge cases
//!
//! - **Idempotent marking.** A machine already marked expired gets no second
//!   `temp_machine_expired` entry, so running the sweep twice writes nothing new.
//! - **Late sweeps.** A machine not yet marked whose purge is also due (the sweeper was down for
//!   30 days) is marked and purged in the same plan: it gets its `temp_machine_expired` entry
//!   first and is then listed in the purge entry.
//! - **One purge entry per owner and vault.** The entry is written per vault owner, listing the
//!   purged machines' names sorted. An owner with purged machines in several vaults gets one
//!   entry in each vault, because every audit entry belongs to one vault.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::audit::{Actor, AuditAction, AuditEvent, Target};
use crate::ids::{MachineId, OwnerId, VaultId};
use crate::machine::{Machine, MachineState, expired_event};

/// What one sweep does, in order: mark `expire`, delete `purge`, and persist `events`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SweepPlan {
    /// Machines to mark expired, by expiry then id.
    pub expire: Vec<MachineId>,
    /// Machines to delete with their grants, guardrails and extension chain, by expiry then id.
    pub purge: Vec<MachineId>,
    /// One `temp_machine_expired` event per entry of `expire` (same order), then one
    /// `temp_machine_purge` event per owner and vault, by owner then vault.
    pub events: Vec<AuditEvent>,
}

impl SweepPlan {
    /// Whether the sweep has nothing to do.
    pub fn is_empty(&self) -> bool {
        self.expire.is_empty() && self.purge.is_empty()
    }
}

/// Plans a sweep at `now` over `machines`, each paired with its vault owner's id.
pub fn plan_sweep<'a>(
    machines: impl IntoIterator<Item = (&'a Machine, &'a OwnerId)>,
    now: DateTime<Utc>,
) -> SweepPlan {
    let mut to_expire: Vec<&Machine> = Vec::new();
    let mut to_purge: Vec<(&Machine, &OwnerId)> = Vec::new();
    for (machine, owner_id) in machines {
        if machine.state != MachineState::Expired && now >= machine.expires_at {
            to_expire.push(machine);
        }
        if now >= machine.purge_due_at() {
            to_purge.push((machine, owner_id));
        }
    }
    to_expire.sort_by_key(|machine| (machine.expires_at, machine.id));
    to_purge.sort_by_key(|(machine, _)| (machine.expires_at, machine.id));

    let mut events: Vec<AuditEvent> = to_expire
        .iter()
        .map(|machine| expired_event(machine, now))
        .collect();

    let mut purged_names: BTreeMap<(&OwnerId, &VaultId), Vec<&str>> = BTreeMap::new();
    for (machine, owner_id) in &to_purge {
        purged_names
            .entry((*owner_id, &machine.vault_id))
            .or_default()
            .push(&machine.name);
    }
    for ((_, vault_id), mut names) in purged_names {
        names.sort_unstable();
        events.push(AuditEvent::new(
            now,
            vault_id.clone(),
            Actor::System,
            AuditAction::TempMachinePurge,
            Target::Vault(vault_id.clone()),
            serde_json::json!({ "machines": names }),
        ));
    }

    SweepPlan {
        expire: to_expire.iter().map(|machine| machine.id).collect(),
        purge: to_purge.iter().map(|(machine, _)| machine.id).collect(),
        events,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::audit::Severity;
    use crate::lifetime::Lifetime;
    use crate::machine::fixtures::machine;
    use crate::token::fixtures::at;

    /// A machine registered on 1 January 2025 that expires `hours` later, in `state`.
    fn named(name: &str, id: u8, hours: u32, state: MachineState) -> Machine {
        let base = machine(Lifetime::new(0, 0, hours), at(2025, 1, 1, 0), state);
        Machine {
            id: MachineId::from_random_bytes([id; 16]),
            name: name.to_owned(),
            ..base
        }
    }

    #[test]
    fn marks_due_machines_once() {
        let alice: OwnerId = "owner_alice".parse().unwrap();
        let due = named("due", 1, 1, MachineState::Active);
        let pending_due = named("pending-due", 2, 2, MachineState::Pending);
        let marked = named("marked", 3, 1, MachineState::Expired);
        let fresh = named("fresh", 4, 48, MachineState::Active);
        let now = at(2025, 1, 1, 2);
        let machines = [&due, &pending_due, &marked, &fresh];
        let plan = plan_sweep(machines.iter().map(|m| (*m, &alice)), now);

        assert_eq!(plan.expire, vec![due.id, pending_due.id]);
        assert!(plan.purge.is_empty());
        assert_eq!(plan.events.len(), 2);
        for (event, machine) in plan.events.iter().zip([&due, &pending_due]) {
            assert_eq!(event.action, AuditAction::TempMachineExpired);
            assert_eq!(event.severity(), Severity::Info);
            assert_eq!(event.actor, Actor::System);
            assert_eq!(event.target, Target::Machine(machine.id));
            assert_eq!(event.detail["name"], machine.name.as_str());
        }
    }

    #[test]
    fn second_sweep_is_empty() {
        let alice: OwnerId = "owner_alice".parse().unwrap();
        let due = named("due", 1, 1, MachineState::Active);
        let now = at(2025, 1, 1, 2);
        let first = plan_sweep([(&due, &alice)], now);
        assert_eq!(first.expire, vec![due.id]);
        let (marked, _) = due.expire(now).unwrap();
        let second = plan_sweep([(&marked, &alice)], now + TimeDelta::minutes(1));
        assert!(second.is_empty());
        assert!(second.events.is_empty());
    }

    #[test]
    fn purges_after_thirty_days_grouped_by_owner() {
        let alice: OwnerId = "owner_alice".parse().unwrap();
        let bob: OwnerId = "owner_bob".parse().unwrap();
        let zeta = named("zeta", 1, 1, MachineState::Expired);
        let alpha = named("alpha", 2, 2, MachineState::Expired);
        let recent = named("recent", 3, 24 * 10, MachineState::Expired);
        let mut bobs = named("bobs", 4, 1, MachineState::Expired);
        bobs.vault_id = "vault_bob".parse().unwrap();
        // 30 days after the 02:00 expiry of `alpha`.
        let now = at(2025, 1, 31, 2);
        let input = [
            (&zeta, &alice),
            (&bobs, &bob),
            (&recent, &alice),
            (&alpha, &alice),
        ];
        let plan = plan_sweep(input, now);

        assert!(plan.expire.is_empty());
        assert_eq!(plan.purge, vec![zeta.id, bobs.id, alpha.id]);
        assert_eq!(plan.events.len(), 2);
        let first = &plan.events[0];
        assert_eq!(first.action, AuditAction::TempMachinePurge);
        assert_eq!(first.severity(), Severity::Low);
        assert_eq!(first.vault_id.as_str(), "vault_main");
        assert_eq!(first.target, Target::Vault(first.vault_id.clone()));
        assert_eq!(
            first.detail,
            serde_json::json!({"machines": ["alpha", "zeta"]})
        );
        let second = &plan.events[1];
        assert_eq!(second.vault_id.as_str(), "vault_bob");
        assert_eq!(second.detail, serde_json::json!({"machines": ["bobs"]}));
    }

    #[test]
    fn purge_not_due_one_second_early() {
        let alice: OwnerId = "owner_alice".parse().unwrap();
        let m = named("m", 1, 1, MachineState::Expired);
        let due = m.purge_due_at();
        assert!(plan_sweep([(&m, &alice)], due - TimeDelta::seconds(1)).is_empty());
        assert_eq!(plan_sweep([(&m, &alice)], due).purge, vec![m.id]);
    }

    #[test]
    fn late_sweep_marks_then_purges() {
        let alice: OwnerId = "owner_alice".parse().unwrap();
        let m = named("late", 1, 1, MachineState::Active);
        let plan = plan_sweep([(&m, &alice)], at(2025, 3, 1, 0));
        assert_eq!(plan.expire, vec![m.id]);
        assert_eq!(plan.purge, vec![m.id]);
        let actions: Vec<_> = plan.events.iter().map(|e| e.action).collect();
        assert_eq!(
            actions,
            vec![
                AuditAction::TempMachineExpired,
                AuditAction::TempMachinePurge
            ]
        );
    }
}
