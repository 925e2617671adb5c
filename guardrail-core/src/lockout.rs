//! Lockout after repeated failures, and coalescing of repeated guardrail blocks in the audit log.
//!
//! Both rules are pure functions over state the caller keeps: the caller loads a
//! [`FailureCounter`] or [`RecentBlock`], applies the rule with its clock's `now`, and stores the
//! result. The store makes each load-and-store atomic per key.
//!
//! # Lockout keys
//!
//! Authentication failures (steps 1 to 4 and 8) count against the source address alone.
//! Guardrail failures (steps 5 to 7) count against the pair of machine and source address, so
//! that someone outside a machine's allowlist who knows its id locks out only their own address
//! for that machine, never the machine itself. Requests whose source is undetermined share one
//! counter per key kind ([`LockoutKey::Source`] with `None`).
//!
//! # The rule
//!
//! A counter collects failures within one lockout period of its first failure. The failure that
//! reaches the configured maximum locks the key for one period from that instant and clears the
//! count. A failure recorded while the key is locked changes nothing, so retrying does not extend
//! the lockout. A success does not clear the count. Once the lock has run out and the counting
//! period of the first failure has passed, the counter is empty again and may be dropped
//! ([`FailureCounter::is_expired`]).
//!
//! # Bounds
//!
//! Counters and recent blocks are keyed by values an attacker chooses (source addresses, machine
//! ids from a header). The caller must bound both tables and may drop any entry for which
//! [`FailureCounter::is_expired`] or [`RecentBlock::is_expired`] holds. When a table is full, the
//! caller should drop the oldest expired entry first, and otherwise treat the key as locked
//! rather than forget a lockout.

use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, Utc};

use crate::ids::MachineId;

/// Default number of failures that locks a key out.
pub const DEFAULT_MAX_FAILURES: u32 = 3;
/// Default lockout period, in seconds (15 minutes).
pub const DEFAULT_LOCKOUT_SECONDS: u32 = 15 * 60;
/// Largest accepted failure count.
pub const MAX_MAX_FAILURES: u32 = 100;
/// Largest accepted lockout period, in seconds (one day).
pub const MAX_LOCKOUT_SECONDS: u32 = 24 * 60 * 60;
/// Default coalescing period for repeated guardrail blocks, in seconds.
pub const DEFAULT_COALESCE_SECONDS: u32 = 60;
/// Largest accepted coalescing period, in seconds (one hour).
pub const MAX_COALESCE_SECONDS: u32 = 60 * 60;

/// The counter a failure is recorded against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockoutKey {
    /// A source address, for authentication failures. `None` is every undetermined source.
    Source(Option<IpAddr>),
    /// A machine and source address pair, for guardrail failures.
    MachineSource(MachineId, Option<IpAddr>),
}

/// The number of failures that locks a key, and how long the lock and the counting period last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    max_failures: u32,
    period_seconds: u32,
}

impl LockoutPolicy {
    /// Makes a policy that locks a key for `period_seconds` after `max_failures` failures within
    /// `period_seconds`.
    ///
    /// # Errors
    ///
    /// [`InvalidLockoutPolicy`] unless `max_failures` is 1 to [`MAX_MAX_FAILURES`] and
    /// `period_seconds` is 1 to [`MAX_LOCKOUT_SECONDS`].
    pub fn new(max_failures: u32, period_seconds: u32) -> Result<Self, InvalidLockoutPolicy> {
        if !(1..=MAX_MAX_FAILURES).contains(&max_failures) {
            return Err(InvalidLockoutPolicy::MaxFailures(max_failures));
        }
        if !(1..=MAX_LOCKOUT_SECONDS).contains(&period_seconds) {
            return Err(InvalidLockoutPolicy::Period(period_seconds));
        }
        Ok(Self {
            max_failures,
            period_seconds,
        })
    }

    /// The number of failures that locks a key.
    pub fn max_failures(&self) -> u32 {
        self.max_failures
    }

    /// The lockout period and counting period, in seconds.
    pub fn period_seconds(&self) -> u32 {
        self.period_seconds
    }

    fn period(&self) -> TimeDelta {
        TimeDelta::seconds(i64::from(self.period_seconds))
    }
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: DEFAULT_MAX_FAILURES,
            period_seconds: DEFAULT_LOCKOUT_SECONDS,
        }
    }
}

/// A lockout policy value out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidLockoutPolicy {
    #[error(
        "invalid lockout failure count `{0}`: expected 1 to {MAX_MAX_FAILURES} (the default is {DEFAULT_MAX_FAILURES})"
    )]
    MaxFailures(u32),
    #[error(
        "invalid lockout period `{0}` s: expected 1 to {MAX_LOCKOUT_SECONDS} s (the default is {DEFAULT_LOCKOUT_SECONDS} s)"
    )]
    Period(u32),
}

/// Failures recorded against one [`LockoutKey`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureCounter {
    /// Failures counted since `first_failure_at`.
    pub failures: u32,
    /// The first failure of the current counting period, if any.
    pub first_failure_at: Option<DateTime<Utc>>,
    /// The end of the current lock, if one was set.
    pub locked_until: Option<DateTime<Utc>>,
}

/// Whether a key may be evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockStatus {
    /// Not locked.
    Open,
    /// Locked: respond with 429 with `Retry-After` set to `retry_after_seconds`.
    Locked {
        /// Seconds until the lock ends, rounded up, at least 1.
        retry_after_seconds: u64,
    },
}

impl FailureCounter {
    /// Returns whether the key is locked at `now`, and for how long.
    pub fn status(&self, now: DateTime<Utc>) -> LockStatus {
        match self.locked_until {
            Some(until) if now < until => {
                let remaining = until - now;
                let whole = remaining.num_seconds();
                let has_fraction = remaining.subsec_nanos() > 0;
                let rounded_up = if has_fraction {
                    whole.saturating_add(1)
                } else {
                    whole
                };
                LockStatus::Locked {
                    retry_after_seconds: u64::try_from(rounded_up).unwrap_or(u64::MAX).max(1),
                }
            }
            _ => LockStatus::Open,
        }
    }

    /// Records one failure at `now` and returns the new counter.
    pub fn record_failure(self, policy: &LockoutPolicy, now: DateTime<Utc>) -> Self {
        if let LockStatus::Locked { .. } = self.status(now) {
            return self;
        }
        let period = policy.period();
        let period_end = |first: DateTime<Utc>| {
            first
                .checked_add_signed(period)
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        };
        // A failure outside the counting period of the first one starts a new period.
        let (counting_since, earlier_failures) = match self.first_failure_at {
            Some(first) if first <= now && now < period_end(first) => (first, self.failures),
            _ => (now, 0),
        };
        let failures = earlier_failures.saturating_add(1);
        if failures >= policy.max_failures {
            return Self {
                failures: 0,
                first_failure_at: None,
                locked_until: Some(period_end(now)),
            };
        }
        Self {
            failures,
            first_failure_at: Some(counting_since),
            locked_until: self.locked_until,
        }
    }

    /// Returns whether the counter holds nothing that still matters at `now`: no lock in force
    /// and no failure within the counting period. The caller may then drop it.
    pub fn is_expired(&self, policy: &LockoutPolicy, now: DateTime<Utc>) -> bool {
        let lock_over = self.locked_until.is_none_or(|until| now >= until);
        let counting_over = self.first_failure_at.is_none_or(|first| {
            first
                .checked_add_signed(policy.period())
                .is_none_or(|end| now >= end)
        });
        lock_over && counting_over
    }
}

/// Checks the counters that apply to a request before step 1: the source address, and the
/// machine and source pair when the request names a machine id.
///
/// `lookup` returns the stored counter of a key, if any. The caller responds with 429 with
/// `Retry-After` when this returns a lock, and does not evaluate the request.
pub fn check_before_evaluation<'a>(
    source: Option<IpAddr>,
    machine: Option<MachineId>,
    mut lookup: impl FnMut(&LockoutKey) -> Option<&'a FailureCounter>,
    now: DateTime<Utc>,
) -> Option<(LockoutKey, LockStatus)> {
    let source = source.map(|address| address.to_canonical());
    let mut keys = vec![LockoutKey::Source(source)];
    if let Some(machine) = machine {
        keys.push(LockoutKey::MachineSource(machine, source));
    }
    let mut longest: Option<(LockoutKey, LockStatus)> = None;
    for key in keys {
        let Some(counter) = lookup(&key) else {
            continue;
        };
        let status = counter.status(now);
        let LockStatus::Locked {
            retry_after_seconds,
        } = status
        else {
            continue;
        };
        let is_longer = match longest {
            Some((
                _,
                LockStatus::Locked {
                    retry_after_seconds: current,
                },
            )) => retry_after_seconds > current,
            _ => true,
        };
        if is_longer {
            longest = Some((key, status));
        }
    }
    longest
}

/// How long repeated identical guardrail blocks are folded into one audit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoalescePolicy {
    period_seconds: u32,
}

impl CoalescePolicy {
    /// Makes a policy that folds identical blocks within `period_seconds` of an entry's first
    /// block into that entry. Zero turns coalescing off.
    ///
    /// # Errors
    ///
    /// [`InvalidCoalescePeriod`] when `period_seconds` is above [`MAX_COALESCE_SECONDS`].
    pub fn new(period_seconds: u32) -> Result<Self, InvalidCoalescePeriod> {
        if period_seconds > MAX_COALESCE_SECONDS {
            return Err(InvalidCoalescePeriod { period_seconds });
        }
        Ok(Self { period_seconds })
    }

    /// The coalescing period in seconds.
    pub fn period_seconds(&self) -> u32 {
        self.period_seconds
    }
}

impl Default for CoalescePolicy {
    fn default() -> Self {
        Self {
            period_seconds: DEFAULT_COALESCE_SECONDS,
        }
    }
}

/// A coalescing period above [`MAX_COALESCE_SECONDS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid coalescing period `{period_seconds}` s: expected 0 to {MAX_COALESCE_SECONDS} s (the default is {DEFAULT_COALESCE_SECONDS} s)"
)]
pub struct InvalidCoalescePeriod {
    period_seconds: u32,
}

/// The identity of a guardrail block: machine, source address, axis and reason. Two blocks with
/// equal keys are identical.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlockKey {
    pub machine: MachineId,
    pub source: Option<IpAddr>,
    /// `ip`, `geo` or `time_window`.
    pub axis: &'static str,
    /// The reason text of the audit detail.
    pub reason: String,
}

/// The audit entry that identical blocks are currently folded into, as the caller keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentBlock<EntryId> {
    /// The stored audit entry.
    pub entry: EntryId,
    /// When the entry's first block happened.
    pub first_at: DateTime<Utc>,
    /// How many blocks the entry counts so far.
    pub count: u64,
}

impl<EntryId> RecentBlock<EntryId> {
    /// Returns whether a block at `now` would start a new entry, so the caller may drop this one.
    pub fn is_expired(&self, policy: &CoalescePolicy, now: DateTime<Utc>) -> bool {
        let period = TimeDelta::seconds(i64::from(policy.period_seconds));
        self.first_at
            .checked_add_signed(period)
            .is_none_or(|end| now >= end)
            || now < self.first_at
    }
}

/// The action to take with a guardrail block's audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coalesced<EntryId> {
    /// Store the event as a new entry with count 1, and remember it for its [`BlockKey`].
    NewEntry,
    /// Do not store the event: set the `count` of entry `entry` to `count` instead.
    Increment { entry: EntryId, count: u64 },
}

/// Decides whether a block at `now` starts a new audit entry or increments `recent`, the entry
/// the caller remembers for the block's [`BlockKey`].
///
/// An entry absorbs identical blocks until `policy`'s period after its first block has passed.
/// A steady flood therefore produces one entry per period, each with its count.
pub fn coalesce_block<EntryId: Copy>(
    recent: Option<&RecentBlock<EntryId>>,
    policy: &CoalescePolicy,
    now: DateTime<Utc>,
) -> Coalesced<EntryId> {
    match recent {
        Some(block) if !block.is_expired(policy, now) => Coalesced::Increment {
            entry: block.entry,
            count: block.count.saturating_add(1),
        },
        _ => Coalesced::NewEntry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_760_000_000 + seconds, 0).unwrap()
    }

    fn fail_at(counter: FailureCounter, seconds: &[i64]) -> FailureCounter {
        let policy = LockoutPolicy::default();
        seconds.iter().fold(counter, |counter, second| {
            counter.record_failure(&policy, at(*second))
        })
    }

    #[test]
    fn third_failure_locks_for_fifteen_minutes() {
        let counter = fail_at(FailureCounter::default(), &[0, 10]);
        assert_eq!(counter.status(at(10)), LockStatus::Open);
        let counter = fail_at(counter, &[20]);
        assert_eq!(
            counter.status(at(20)),
            LockStatus::Locked {
                retry_after_seconds: 900
            }
        );
        assert_eq!(
            counter.status(at(919)),
            LockStatus::Locked {
                retry_after_seconds: 1
            }
        );
        assert_eq!(counter.status(at(920)), LockStatus::Open);
    }

    #[test]
    fn retry_after_rounds_up() {
        let counter = fail_at(FailureCounter::default(), &[0, 0, 0]);
        let almost_over = at(899) + TimeDelta::milliseconds(1);
        assert_eq!(
            counter.status(almost_over),
            LockStatus::Locked {
                retry_after_seconds: 1
            }
        );
        let just_started = at(0) + TimeDelta::milliseconds(1);
        assert_eq!(
            counter.status(just_started),
            LockStatus::Locked {
                retry_after_seconds: 900
            }
        );
    }

    #[test]
    fn failures_while_locked_do_not_extend() {
        let locked = fail_at(FailureCounter::default(), &[0, 1, 2]);
        let retried = fail_at(locked, &[100, 200, 300]);
        assert_eq!(retried, locked);
        assert_eq!(retried.status(at(902)), LockStatus::Open);
    }

    #[test]
    fn old_failures_stop_counting() {
        // Two failures, then the counting period of the first one passes.
        let counter = fail_at(FailureCounter::default(), &[0, 10, 900, 901]);
        assert_eq!(counter.status(at(901)), LockStatus::Open);
        assert_eq!(counter.failures, 2);
        let counter = fail_at(counter, &[902]);
        assert!(matches!(counter.status(at(902)), LockStatus::Locked { .. }));
    }

    #[test]
    fn counting_restarts_after_lock() {
        let counter = fail_at(FailureCounter::default(), &[0, 1, 2, 902, 903]);
        assert_eq!(counter.status(at(903)), LockStatus::Open);
        assert_eq!(counter.failures, 2);
    }

    #[test]
    fn expiry_allows_dropping() {
        let policy = LockoutPolicy::default();
        assert!(FailureCounter::default().is_expired(&policy, at(0)));
        let counter = fail_at(FailureCounter::default(), &[0]);
        assert!(!counter.is_expired(&policy, at(899)));
        assert!(counter.is_expired(&policy, at(900)));
        let locked = fail_at(FailureCounter::default(), &[0, 1, 2]);
        assert!(!locked.is_expired(&policy, at(901)));
        assert!(locked.is_expired(&policy, at(902)));
    }

    #[test]
    fn custom_policy_is_validated() {
        let policy = LockoutPolicy::new(1, 5).unwrap();
        let counter = FailureCounter::default().record_failure(&policy, at(0));
        assert_eq!(
            counter.status(at(0)),
            LockStatus::Locked {
                retry_after_seconds: 5
            }
        );
        assert_eq!(
            LockoutPolicy::new(0, 60).unwrap_err().to_string(),
            "invalid lockout failure count `0`: expected 1 to 100 (the default is 3)"
        );
        assert_eq!(
            LockoutPolicy::new(3, 0).unwrap_err().to_string(),
            "invalid lockout period `0` s: expected 1 to 86400 s (the default is 900 s)"
        );
        assert!(LockoutPolicy::new(101, 60).is_err());
        assert!(LockoutPolicy::new(3, 86_401).is_err());
    }

    #[test]
    fn pre_check_reports_longest_lock() {
        let source: IpAddr = "::ffff:203.0.113.9".parse().unwrap();
        let canonical: IpAddr = "203.0.113.9".parse().unwrap();
        let machine: MachineId = "6f1c2a4e-0b7d-4c1e-9a35-2f0d8c7b6e51".parse().unwrap();
        let short = fail_at(FailureCounter::default(), &[0, 0, 0]);
        let long = fail_at(FailureCounter::default(), &[100, 100, 100]);
        let lookup = |key: &LockoutKey| match key {
            LockoutKey::Source(Some(address)) if *address == canonical => Some(&short),
            LockoutKey::MachineSource(id, Some(address))
                if *id == machine && *address == canonical =>
            {
                Some(&long)
            }
            _ => None,
        };
        let found = check_before_evaluation(Some(source), Some(machine), lookup, at(200));
        assert_eq!(
            found,
            Some((
                LockoutKey::MachineSource(machine, Some(canonical)),
                LockStatus::Locked {
                    retry_after_seconds: 800
                }
            ))
        );
        // Another machine from the same source sees only the source's own lock.
        let other: MachineId = "00000000-0000-4000-8000-000000000000".parse().unwrap();
        let found = check_before_evaluation(Some(source), Some(other), lookup, at(200));
        assert_eq!(
            found.map(|(key, _)| key),
            Some(LockoutKey::Source(Some(canonical)))
        );
        assert_eq!(
            check_before_evaluation(Some(source), None, lookup, at(1_000)),
            None
        );
    }

    #[test]
    fn coalescing_folds_within_period() {
        let policy = CoalescePolicy::default();
        assert_eq!(
            coalesce_block::<u64>(None, &policy, at(0)),
            Coalesced::NewEntry
        );
        let recent = RecentBlock {
            entry: 42_u64,
            first_at: at(0),
            count: 1,
        };
        assert_eq!(
            coalesce_block(Some(&recent), &policy, at(59)),
            Coalesced::Increment {
                entry: 42,
                count: 2
            }
        );
        assert_eq!(
            coalesce_block(Some(&recent), &policy, at(60)),
            Coalesced::NewEntry
        );
        // A clock that went backwards starts a new entry rather than folding into the future.
        assert_eq!(
            coalesce_block(Some(&recent), &policy, at(-1)),
            Coalesced::NewEntry
        );
    }

    #[test]
    fn coalescing_can_be_turned_off() {
        let policy = CoalescePolicy::new(0).unwrap();
        let recent = RecentBlock {
            entry: 1_u64,
            first_at: at(0),
            count: 1,
        };
        assert_eq!(
            coalesce_block(Some(&recent), &policy, at(0)),
            Coalesced::NewEntry
        );
        assert_eq!(
            CoalescePolicy::new(3_601).unwrap_err().to_string(),
            "invalid coalescing period `3601` s: expected 0 to 3600 s (the default is 60 s)"
        );
    }
}
