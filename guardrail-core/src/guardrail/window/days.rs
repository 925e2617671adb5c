//! Sets of weekdays, written as lower-case three-letter names.

use std::fmt;

use chrono::Weekday;

const NAMES: [(&str, Weekday); 7] = [
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

/// Returns the lower-case three-letter name of `day`, such as `mon`.
pub fn weekday_name(day: Weekday) -> &'static str {
    NAMES[day.num_days_from_monday() as usize].0
}

/// A non-empty set of weekdays, stored as a bit mask with Monday as bit 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WeekdaySet(u8);

impl WeekdaySet {
    /// Parses day names (`mon` to `sun`, lower-case). Each day may appear once.
    ///
    /// # Errors
    ///
    /// Returns an error for an empty list, an unknown name or a repeated day.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, WeekdaySetError> {
        if names.is_empty() {
            return Err(WeekdaySetError(DaysProblem::Empty));
        }
        let mut mask = 0_u8;
        for name in names {
            let name = name.as_ref();
            let Some((_, day)) = NAMES.iter().find(|(known, _)| *known == name) else {
                return Err(WeekdaySetError(DaysProblem::Unknown(quote(name))));
            };
            let bit = 1_u8 << day.num_days_from_monday();
            if mask & bit != 0 {
                return Err(WeekdaySetError(DaysProblem::Repeated(name.to_owned())));
            }
            mask |= bit;
        }
        Ok(Self(mask))
    }

    /// Builds a set from weekdays; `None` when `days` is empty.
    pub fn from_days(days: impl IntoIterator<Item = Weekday>) -> Option<Self> {
        let mask = days
            .into_iter()
            .fold(0_u8, |mask, day| mask | 1 << day.num_days_from_monday());
        (mask != 0).then_some(Self(mask))
    }

    /// Returns whether `day` is in the set.
    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }

    /// The days in the set, Monday first.
    pub fn days(self) -> impl Iterator<Item = Weekday> {
        NAMES
            .iter()
            .map(|(_, day)| *day)
            .filter(move |day| self.contains(*day))
    }
}

impl fmt::Display for WeekdaySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.days().map(weekday_name).collect();
        f.write_str(&names.join(","))
    }
}

fn quote(value: &str) -> String {
    match value.char_indices().nth(16) {
        Some((cut, _)) => format!("{}...", &value[..cut]),
        None => value.to_owned(),
    }
}

/// A list of day names that is not a valid weekday set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct WeekdaySetError(DaysProblem);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum DaysProblem {
    #[error(
        "the day list is empty, give at least one of `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`"
    )]
    Empty,
    #[error(
        "invalid day `{0}`: expected one of `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun` in lower case"
    )]
    Unknown(String),
    #[error("day `{0}` is listed more than once")]
    Repeated(String),
}
