//! Machine lifetimes: `{months, days, hours}` and the expiry they give.
//!
//! A lifetime is applied to a start instant in UTC: first the calendar months, then the days,
//! then the hours. A valid lifetime is at least one hour long and ends no later than 12 calendar
//! months after its start.
//!
//! # Edge cases
//!
//! - **Short months.** Adding months keeps the day of the month unless the target month is
//!   shorter. Then the result is the target month's last day at the same time of day, so
//!   31 January plus 1 month is 28 February (29 in a leap year), and 29 February 2024 plus
//!   12 months is 28 February 2025.
//! - **The 12-month maximum** is computed with the same clamping rule, so `12 months` is always
//!   valid and `12 months, 0 days, 1 hour` never is.
//! - **Huge values.** Every field is a `u32`, so the arithmetic is checked: a lifetime that would
//!   overflow the calendar is a [`LifetimeError::OutOfRange`], never a panic.

use std::fmt;

use chrono::{DateTime, Days, Months, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// The maximum lifetime, and the rolling cap on extensions, in calendar months.
pub const MAX_LIFETIME_MONTHS: u32 = 12;

/// A machine lifetime as the owner enters it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Lifetime {
    pub months: u32,
    pub days: u32,
    pub hours: u32,
}

/// A lifetime that is empty, too long, or beyond the calendar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LifetimeError {
    /// All three fields are zero.
    #[error("lifetime `{lifetime}` is empty: set at least 1 hour")]
    Empty { lifetime: Lifetime },
    /// The lifetime ends more than 12 calendar months after its start.
    #[error(
        "lifetime `{lifetime}` ends at `{expires_at}`, after the maximum of 12 months \
         (`{maximum}`): choose a shorter lifetime"
    )]
    TooLong {
        lifetime: Lifetime,
        expires_at: DateTime<Utc>,
        maximum: DateTime<Utc>,
    },
    /// The arithmetic overflowed the calendar: the lifetime is far beyond any valid one.
    #[error("lifetime `{lifetime}` is out of range: the maximum is 12 months")]
    OutOfRange { lifetime: Lifetime },
}

impl Lifetime {
    /// Makes a lifetime from its three fields.
    pub const fn new(months: u32, days: u32, hours: u32) -> Self {
        Self {
            months,
            days,
            hours,
        }
    }

    /// Whether all three fields are zero.
    pub fn is_zero(&self) -> bool {
        self.months == 0 && self.days == 0 && self.hours == 0
    }

    /// Adds the lifetime to `start` (months, then days, then hours) without validating it.
    /// Returns `None` when the result does not fit the calendar.
    pub fn add_to(&self, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let after_months = add_calendar_months(start, self.months)?;
        let after_days = after_months.checked_add_days(Days::new(u64::from(self.days)))?;
        let hours = TimeDelta::try_hours(i64::from(self.hours))?;
        after_days.checked_add_signed(hours)
    }

    /// Validates the lifetime against `start` and returns the expiry it gives.
    ///
    /// # Errors
    ///
    /// [`LifetimeError::Empty`] when all fields are zero, [`LifetimeError::TooLong`] when the
    /// expiry is later than `start` plus 12 calendar months, and [`LifetimeError::OutOfRange`]
    /// when the arithmetic overflows.
    pub fn expires_at(&self, start: DateTime<Utc>) -> Result<DateTime<Utc>, LifetimeError> {
        let lifetime = *self;
        if self.is_zero() {
            return Err(LifetimeError::Empty { lifetime });
        }
        let out_of_range = || LifetimeError::OutOfRange { lifetime };
        let expires_at = self.add_to(start).ok_or_else(out_of_range)?;
        let maximum = max_expiry(start).ok_or_else(out_of_range)?;
        if expires_at > maximum {
            return Err(LifetimeError::TooLong {
                lifetime,
                expires_at,
                maximum,
            });
        }
        Ok(expires_at)
    }
}

impl fmt::Display for Lifetime {
    /// Writes `12 months, 0 days, 1 hour`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn unit(count: u32, singular: &str) -> String {
            if count == 1 {
                format!("1 {singular}")
            } else {
                format!("{count} {singular}s")
            }
        }
        write!(
            f,
            "{}, {}, {}",
            unit(self.months, "month"),
            unit(self.days, "day"),
            unit(self.hours, "hour")
        )
    }
}

/// Adds calendar months to `instant`, clamping to the last day of a shorter month. Returns
/// `None` when the result does not fit the calendar.
pub fn add_calendar_months(instant: DateTime<Utc>, months: u32) -> Option<DateTime<Utc>> {
    instant.checked_add_months(Months::new(months))
}

/// The latest expiry allowed from `start`: `start` plus 12 calendar months. This is both the
/// lifetime maximum and the rolling cap on extensions. Returns `None` only at the end of the
/// representable calendar.
pub fn max_expiry(start: DateTime<Utc>) -> Option<DateTime<Utc>> {
    add_calendar_months(start, MAX_LIFETIME_MONTHS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap()
    }

    #[test]
    fn jan_31_plus_one_month_clamps() {
        let lifetime = Lifetime::new(1, 0, 0);
        assert_eq!(
            lifetime.expires_at(at(2025, 1, 31, 10)).unwrap(),
            at(2025, 2, 28, 10)
        );
        assert_eq!(
            lifetime.expires_at(at(2024, 1, 31, 10)).unwrap(),
            at(2024, 2, 29, 10)
        );
    }

    #[test]
    fn feb_29_plus_twelve_months_clamps() {
        let lifetime = Lifetime::new(12, 0, 0);
        assert_eq!(
            lifetime.expires_at(at(2024, 2, 29, 8)).unwrap(),
            at(2025, 2, 28, 8)
        );
    }

    #[test]
    fn months_then_days_then_hours() {
        // 31 January + 1 month = 28 February, + 1 day = 1 March, + 25 hours = 2 March 01:00.
        let lifetime = Lifetime::new(1, 1, 25);
        assert_eq!(
            lifetime.expires_at(at(2025, 1, 31, 0)).unwrap(),
            at(2025, 3, 2, 1)
        );
    }

    #[test]
    fn one_hour_is_minimum_valid() {
        let lifetime = Lifetime::new(0, 0, 1);
        assert_eq!(
            lifetime.expires_at(at(2025, 6, 1, 23)).unwrap(),
            at(2025, 6, 2, 0)
        );
    }

    #[test]
    fn twelve_months_plus_hour_rejected() {
        let err = Lifetime::new(12, 0, 1)
            .expires_at(at(2025, 1, 15, 0))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "lifetime `12 months, 0 days, 1 hour` ends at `2026-01-15 01:00:00 UTC`, after the \
             maximum of 12 months (`2026-01-15 00:00:00 UTC`): choose a shorter lifetime"
        );
    }

    #[test]
    fn days_past_twelve_months_rejected() {
        let err = Lifetime::new(0, 366, 0)
            .expires_at(at(2025, 1, 15, 0))
            .unwrap_err();
        assert!(matches!(err, LifetimeError::TooLong { .. }), "{err}");
        assert!(
            Lifetime::new(0, 365, 0)
                .expires_at(at(2025, 1, 15, 0))
                .is_ok()
        );
    }

    #[test]
    fn all_zero_rejected() {
        let err = Lifetime::new(0, 0, 0)
            .expires_at(at(2025, 1, 15, 0))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "lifetime `0 months, 0 days, 0 hours` is empty: set at least 1 hour"
        );
    }

    #[test]
    fn huge_values_out_of_range() {
        let lifetime = Lifetime::new(u32::MAX, u32::MAX, u32::MAX);
        let err = lifetime.expires_at(at(2025, 1, 15, 0)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "lifetime `4294967295 months, 4294967295 days, 4294967295 hours` is out of range: \
             the maximum is 12 months"
        );
    }

    #[test]
    fn huge_hours_too_long_not_overflow() {
        // A million hours (about 114 years) fit the calendar, so the error is `TooLong`.
        let err = Lifetime::new(0, 0, 1_000_000)
            .expires_at(at(2025, 1, 15, 0))
            .unwrap_err();
        assert!(matches!(err, LifetimeError::TooLong { .. }), "{err}");
    }

    #[test]
    fn lifetime_serializes_as_object() {
        let json = serde_json::to_string(&Lifetime::new(1, 2, 3)).unwrap();
        assert_eq!(json, r#"{"months":1,"days":2,"hours":3}"#);
    }

    proptest! {
        #[test]
        fn expiry_never_panics(months in any::<u32>(), days in any::<u32>(), hours in any::<u32>(),
                               secs in 0i64..4_000_000_000) {
            let start = DateTime::from_timestamp(secs, 0).unwrap();
            let lifetime = Lifetime::new(months, days, hours);
            if let Ok(expires_at) = lifetime.expires_at(start) {
                prop_assert!(expires_at >= start + TimeDelta::hours(1));
                prop_assert!(expires_at <= max_expiry(start).unwrap());
            }
        }
    }
}
