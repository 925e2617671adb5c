//! The policy clock, and the test clock that end-to-end tests move forward.
//!
//! Two clocks serve a request. The **policy clock** ([`PolicyClock`]) decides expiry, time
//! windows, extensions, token lifetimes and the sweeper. The **transport clock** is always the
//! real system time ([`transport_now`]) and guards the freshness of `X-Timestamp`, nonce
//! retention and lockout periods, because real clients sign with real time.
//!
//! # Test clock
//!
//! Only a server started with `--test-clock` builds a [`TestClock`]. Its `now()` is the real UTC
//! time plus an offset that only grows, so the clock keeps running from wherever it was moved.
//! A single move is bounded by [`MAX_ADVANCE_SECONDS`], and the total offset by
//! [`MAX_TOTAL_OFFSET_SECONDS`], so no arithmetic on the result can overflow.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};

/// Largest single move of the test clock: about five years.
pub const MAX_ADVANCE_SECONDS: u64 = 5 * 366 * 24 * 60 * 60;

/// Largest total offset of the test clock from real time: about fifty years.
pub const MAX_TOTAL_OFFSET_SECONDS: i64 = 50 * 366 * 24 * 60 * 60;

/// The real UTC time, used for transport checks (timestamp skew, nonces, lockouts).
pub fn transport_now() -> DateTime<Utc> {
    Utc::now()
}

/// The clock that policy decisions read: the system clock, or a test clock when enabled.
#[derive(Clone, Debug, Default)]
pub enum PolicyClock {
    /// The real UTC time.
    #[default]
    System,
    /// Real time plus a forward-only offset, shared by every clone.
    Test(Arc<TestClock>),
}

impl PolicyClock {
    /// Returns the current policy instant, in whole microseconds.
    ///
    /// The SQL stores keep microseconds, so an instant the server hands out (an expiry, an
    /// extension's `appliedAt`) reads back exactly as it was written.
    pub fn now(&self) -> DateTime<Utc> {
        let now = match self {
            Self::System => Utc::now(),
            Self::Test(clock) => clock.now(),
        };
        now.trunc_subsecs(6)
    }

    /// Returns the test clock when the server runs with one.
    pub fn test_clock(&self) -> Option<&TestClock> {
        match self {
            Self::System => None,
            Self::Test(clock) => Some(clock),
        }
    }
}

/// A move of the test clock that was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdvanceError {
    /// `seconds` was zero or above the bound.
    #[error("invalid `seconds` value `{seconds}`: expected 1 to {max}")]
    SecondsOutOfRange {
        /// The rejected value.
        seconds: u64,
        /// The largest accepted value.
        max: u64,
    },
    /// `to` lies before the clock's current instant.
    #[error(
        "invalid `to` value `{to}`: the test clock never moves back, and it is already at `{now}`"
    )]
    InThePast {
        /// The rejected target.
        to: String,
        /// The clock's instant when the move was tried.
        now: String,
    },
    /// The move would put the clock further from real time than the bound allows.
    #[error("the test clock cannot move more than {max} seconds ahead of real time")]
    TooFarAhead {
        /// The bound on the total offset, in seconds.
        max: i64,
    },
}

/// Real UTC time plus an offset that only moves forward.
#[derive(Debug, Default)]
pub struct TestClock {
    offset: Mutex<TimeDelta>,
}

impl TestClock {
    /// Makes a test clock that starts at real time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns real time plus the current offset.
    pub fn now(&self) -> DateTime<Utc> {
        let offset = *self.lock();
        Utc::now() + offset
    }

    /// Returns how far ahead of real time the clock runs.
    pub fn offset(&self) -> TimeDelta {
        *self.lock()
    }

    /// Moves the clock forward by `seconds` and returns the new instant.
    ///
    /// # Errors
    ///
    /// [`AdvanceError::SecondsOutOfRange`] for 0 or more than [`MAX_ADVANCE_SECONDS`], and
    /// [`AdvanceError::TooFarAhead`] when the total offset would pass its bound.
    pub fn advance_seconds(&self, seconds: u64) -> Result<DateTime<Utc>, AdvanceError> {
        if seconds == 0 || seconds > MAX_ADVANCE_SECONDS {
            return Err(AdvanceError::SecondsOutOfRange {
                seconds,
                max: MAX_ADVANCE_SECONDS,
            });
        }
        // The bound above keeps `seconds` far inside i64.
        let step = TimeDelta::seconds(i64::try_from(seconds).unwrap_or(i64::MAX));
        let mut offset = self.lock();
        let next = *offset + step;
        if next.num_seconds() > MAX_TOTAL_OFFSET_SECONDS {
            return Err(AdvanceError::TooFarAhead {
                max: MAX_TOTAL_OFFSET_SECONDS,
            });
        }
        *offset = next;
        Ok(Utc::now() + next)
    }

    /// Moves the clock forward to `to` and returns the new instant.
    ///
    /// A `to` equal to the clock's current instant leaves the offset as it is.
    ///
    /// # Errors
    ///
    /// [`AdvanceError::InThePast`] when `to` is before the clock's current instant, and
    /// [`AdvanceError::TooFarAhead`] when `to` is further ahead of real time than the bound.
    pub fn advance_to(&self, to: DateTime<Utc>) -> Result<DateTime<Utc>, AdvanceError> {
        let mut offset = self.lock();
        let real = Utc::now();
        let now = real + *offset;
        if to < now {
            return Err(AdvanceError::InThePast {
                to: to.to_rfc3339(),
                now: now.to_rfc3339(),
            });
        }
        let next = to - real;
        if next.num_seconds() > MAX_TOTAL_OFFSET_SECONDS {
            return Err(AdvanceError::TooFarAhead {
                max: MAX_TOTAL_OFFSET_SECONDS,
            });
        }
        *offset = next.max(*offset);
        Ok(real + *offset)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TimeDelta> {
        // The guarded value is a plain offset that is always valid, so a poisoned lock is safe
        // to use.
        self.offset.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_seconds_moves_forward() {
        let clock = TestClock::new();
        let before = clock.now();
        let after = clock.advance_seconds(3600).unwrap();
        assert!(after - before >= TimeDelta::seconds(3600));
        assert_eq!(clock.offset(), TimeDelta::seconds(3600));
        clock.advance_seconds(60).unwrap();
        assert_eq!(clock.offset(), TimeDelta::seconds(3660));
    }

    #[test]
    fn policy_now_has_whole_microseconds() {
        for clock in [
            PolicyClock::System,
            PolicyClock::Test(Arc::new(TestClock::new())),
        ] {
            let now = clock.now();
            assert_eq!(now.timestamp_subsec_nanos() % 1_000, 0, "{now:?}");
        }
    }

    #[test]
    fn advance_seconds_rejects_zero_and_huge() {
        let clock = TestClock::new();
        let zero = clock.advance_seconds(0).unwrap_err();
        assert_eq!(
            zero.to_string(),
            format!("invalid `seconds` value `0`: expected 1 to {MAX_ADVANCE_SECONDS}")
        );
        assert!(clock.advance_seconds(MAX_ADVANCE_SECONDS + 1).is_err());
        assert!(clock.advance_seconds(u64::MAX).is_err());
        assert_eq!(clock.offset(), TimeDelta::zero());
    }

    #[test]
    fn total_offset_is_bounded() {
        let clock = TestClock::new();
        let mut result = Ok(Utc::now());
        for _ in 0..20 {
            result = clock.advance_seconds(MAX_ADVANCE_SECONDS);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(
            result.unwrap_err(),
            AdvanceError::TooFarAhead {
                max: MAX_TOTAL_OFFSET_SECONDS
            }
        );
        assert!(clock.offset().num_seconds() <= MAX_TOTAL_OFFSET_SECONDS);
    }

    #[test]
    fn advance_to_rejects_past() {
        let clock = TestClock::new();
        clock.advance_seconds(86_400).unwrap();
        let yesterday_of_clock = clock.now() - TimeDelta::hours(1);
        let error = clock.advance_to(yesterday_of_clock).unwrap_err();
        assert!(matches!(error, AdvanceError::InThePast { .. }));
        assert!(error.to_string().contains("never moves back"), "{error}");
        // Real time now is also in the clock's past.
        assert!(clock.advance_to(Utc::now()).is_err());
        assert_eq!(clock.offset(), TimeDelta::seconds(86_400));
    }

    #[test]
    fn advance_to_reaches_target() {
        let clock = TestClock::new();
        let target = Utc::now() + TimeDelta::days(40);
        let reached = clock.advance_to(target).unwrap();
        assert!(reached >= target);
        assert!(reached - target < TimeDelta::seconds(5));
        assert!(clock.now() >= target);
    }

    #[test]
    fn policy_clock_system_has_no_test_clock() {
        let clock = PolicyClock::System;
        assert!(clock.test_clock().is_none());
        let test = PolicyClock::Test(Arc::new(TestClock::new()));
        test.test_clock().unwrap().advance_seconds(7200).unwrap();
        assert!(test.now() - transport_now() >= TimeDelta::seconds(7199));
    }
}
