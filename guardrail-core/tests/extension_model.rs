//! Model-based test of the extension chain: random sequences of extend, revert and clock steps
//! run against `guardrail_core::extension` and against a small reference model written here
//! from the rules alone, and both must agree on every step.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use proptest::prelude::*;

use guardrail_core::extension::{
    ExtendError, ExtendRequest, ExtensionChain, RevertError, extend, revert,
};
use guardrail_core::guardrail::Guardrails;
use guardrail_core::ids::{MachineId, OwnerId};
use guardrail_core::machine::{Machine, MachinePublicKey, MachineState};

#[derive(Debug, Clone)]
enum Step {
    /// Move the clock forward by this many seconds.
    Advance(i64),
    /// Extend to `now + offset` seconds with a reason of this many characters (0 means none).
    Extend {
        offset: i64,
        reason_chars: usize,
    },
    Revert,
    /// Move the clock exactly onto a boundary: the previous expiry of the newest un-reverted
    /// extension (`false`) or the current expiry (`true`), when that is not in the past.
    ToBoundary(bool),
}

fn step() -> impl Strategy<Value = Step> {
    let day = 86_400i64;
    prop_oneof![
        3 => (0..=60 * day).prop_map(Step::Advance),
        1 => (0..=2 * day).prop_map(Step::Advance),
        // Mostly plausible expiries, some in the past, some just around the 12-month cap.
        4 => (-30 * day..=400 * day, 0usize..=520)
            .prop_map(|(offset, reason_chars)| Step::Extend { offset, reason_chars }),
        1 => (364 * day..=367 * day, Just(0usize))
            .prop_map(|(offset, reason_chars)| Step::Extend { offset, reason_chars }),
        3 => Just(Step::Revert),
        1 => any::<bool>().prop_map(Step::ToBoundary),
    ]
}

/// The model's verdict on a step, compared with the implementation's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accepted,
    Expired,
    ReasonTooLong,
    NotLater,
    BeyondCap,
    NothingToRevert,
    IntoThePast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ModelExtension {
    previous: DateTime<Utc>,
    new: DateTime<Utc>,
    reverted: bool,
}

/// The reference model: the expiry and the chain as plain values.
struct Model {
    expires_at: DateTime<Utc>,
    chain: Vec<ModelExtension>,
}

/// `now` plus 12 calendar months: the same day and time a year later, except that 29 February
/// becomes 28 February.
fn twelve_months_after(now: DateTime<Utc>) -> DateTime<Utc> {
    let year = now.year() + 1;
    let date = NaiveDate::from_ymd_opt(year, now.month(), now.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, now.month(), now.day() - 1))
        .unwrap();
    date.and_time(now.time()).and_utc()
}

impl Model {
    fn extend(&mut self, new: DateTime<Utc>, reason_chars: usize, now: DateTime<Utc>) -> Verdict {
        if now >= self.expires_at {
            return Verdict::Expired;
        }
        if reason_chars > 500 {
            return Verdict::ReasonTooLong;
        }
        if new <= self.expires_at || new <= now {
            return Verdict::NotLater;
        }
        if new > twelve_months_after(now) {
            return Verdict::BeyondCap;
        }
        self.chain.push(ModelExtension {
            previous: self.expires_at,
            new,
            reverted: false,
        });
        self.expires_at = new;
        Verdict::Accepted
    }

    fn revert(&mut self, now: DateTime<Utc>) -> Verdict {
        if now >= self.expires_at {
            return Verdict::Expired;
        }
        let Some(index) = self.chain.iter().rposition(|ext| !ext.reverted) else {
            return Verdict::NothingToRevert;
        };
        if self.chain[index].previous <= now {
            return Verdict::IntoThePast;
        }
        self.chain[index].reverted = true;
        self.expires_at = self.chain[index].previous;
        Verdict::Accepted
    }
}

fn extend_verdict(err: &ExtendError) -> Verdict {
    match err {
        ExtendError::MachineExpired { .. } => Verdict::Expired,
        ExtendError::ReasonTooLong { .. } => Verdict::ReasonTooLong,
        ExtendError::NotLater { .. } => Verdict::NotLater,
        ExtendError::BeyondCap { .. } => Verdict::BeyondCap,
        other => panic!("unexpected extend error: {other}"),
    }
}

fn revert_verdict(err: &RevertError) -> Verdict {
    match err {
        RevertError::MachineExpired { .. } => Verdict::Expired,
        RevertError::NothingToRevert { .. } => Verdict::NothingToRevert,
        RevertError::IntoThePast { .. } => Verdict::IntoThePast,
        other => panic!("unexpected revert error: {other}"),
    }
}

fn machine(registered: DateTime<Utc>, expires_at: DateTime<Utc>) -> Machine {
    // The Ed25519 base point, a valid key of prime order (RFC 8032, section 5.1).
    let mut key = [0x66; 32];
    key[0] = 0x58;
    Machine {
        id: MachineId::from_random_bytes([3; 16]),
        vault_id: "vault_model".parse().unwrap(),
        name: "model".to_owned(),
        description: None,
        public_key: MachinePublicKey::from_bytes(&key).unwrap(),
        state: MachineState::Active,
        created_at: registered,
        expires_at,
        guardrails: Guardrails::default(),
        token_id: "tok_model".parse().unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn chain_matches_model(
        // 2023-01-01 to 2025-12-31, so leap days and year ends are crossed.
        start_secs in 1_672_531_200i64..1_767_139_200,
        lifetime_secs in 3_600i64..=365 * 86_400,
        steps in prop::collection::vec(step(), 1..40),
    ) {
        let owner: OwnerId = "owner_model".parse().unwrap();
        let mut now = DateTime::from_timestamp(start_secs, 0).unwrap();
        let mut current = machine(now, now + TimeDelta::seconds(lifetime_secs));
        let mut chain = ExtensionChain::new();
        let mut model = Model { expires_at: current.expires_at, chain: Vec::new() };

        for step in steps {
            match step {
                Step::Advance(secs) => now += TimeDelta::seconds(secs),
                Step::ToBoundary(to_expiry) => {
                    let target = if to_expiry {
                        Some(model.expires_at)
                    } else {
                        model.chain.iter().rev().find(|ext| !ext.reverted).map(|ext| ext.previous)
                    };
                    if let Some(target) = target.filter(|target| *target > now) {
                        now = target;
                    }
                }
                Step::Extend { offset, reason_chars } => {
                    let new_expires_at = now + TimeDelta::seconds(offset);
                    let request = ExtendRequest {
                        new_expires_at,
                        reason: (reason_chars > 0).then(|| "r".repeat(reason_chars)),
                        applied_by: owner.clone(),
                    };
                    let expected = model.extend(new_expires_at, reason_chars, now);
                    match extend(current.clone(), chain.clone(), request, now) {
                        Ok(update) => {
                            prop_assert_eq!(expected, Verdict::Accepted);
                            // No accepted extension exceeds now + 12 months at that moment.
                            prop_assert!(update.machine.expires_at <= twelve_months_after(now));
                            prop_assert!(update.machine.expires_at > now);
                            current = update.machine;
                            chain = update.chain;
                        }
                        Err(err) => prop_assert_eq!(expected, extend_verdict(&err), "{}", err),
                    }
                }
                Step::Revert => {
                    let newest = chain.latest_unreverted().cloned();
                    let index = chain.extensions().iter().rposition(|ext| !ext.reverted);
                    let expected = model.revert(now);
                    match revert(current.clone(), chain.clone(), &owner, now) {
                        Ok(update) => {
                            prop_assert_eq!(expected, Verdict::Accepted);
                            let newest = newest.unwrap();
                            let index = index.unwrap();
                            // Revert restores exactly the stored previous expiry.
                            prop_assert_eq!(update.machine.expires_at, newest.previous_expires_at);
                            // Only the newest un-reverted extension changed.
                            for (i, (before, after)) in chain
                                .extensions()
                                .iter()
                                .zip(update.chain.extensions())
                                .enumerate()
                            {
                                if i == index {
                                    prop_assert!(!before.reverted && after.reverted);
                                } else {
                                    prop_assert_eq!(before, after);
                                }
                            }
                            current = update.machine;
                            chain = update.chain;
                        }
                        Err(err) => prop_assert_eq!(expected, revert_verdict(&err), "{}", err),
                    }
                }
            }

            // After every step the implementation and the model hold the same state.
            prop_assert_eq!(current.expires_at, model.expires_at);
            let seen: Vec<ModelExtension> = chain
                .extensions()
                .iter()
                .map(|ext| ModelExtension {
                    previous: ext.previous_expires_at,
                    new: ext.new_expires_at,
                    reverted: ext.reverted,
                })
                .collect();
            prop_assert_eq!(&seen, &model.chain);
        }
    }
}
