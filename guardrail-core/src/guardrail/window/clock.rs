//! Wall-clock times of day in strict `HH:MM` form.

use std::fmt;
use std::str::FromStr;

/// Minutes in a day; the value of `24:00`.
pub(crate) const MINUTES_PER_DAY: u16 = 24 * 60;

/// A wall-clock time of day from `00:00` to `24:00`, stored as minutes since midnight.
///
/// `24:00` is the end of the day and is only valid as the end of a window, which
/// [`super::TimeWindow`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockTime(u16);

impl ClockTime {
    /// Minutes since local midnight, from 0 to 1440.
    pub fn minutes(self) -> u16 {
        self.0
    }

    /// Returns whether this is `24:00`, the end of the day.
    pub fn is_end_of_day(self) -> bool {
        self.0 == MINUTES_PER_DAY
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl FromStr for ClockTime {
    type Err = ClockTimeError;

    /// Parses exactly `HH:MM`: two digits, a colon, two digits. Hours run to 23 and minutes to
    /// 59, and `24:00` is accepted as the end of the day.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = || ClockTimeError::new(text);
        let bytes = text.as_bytes();
        let [h1, h2, b':', m1, m2] = bytes else {
            return Err(fail());
        };
        if ![h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit()) {
            return Err(fail());
        }
        let hours = u16::from(h1 - b'0') * 10 + u16::from(h2 - b'0');
        let minutes = u16::from(m1 - b'0') * 10 + u16::from(m2 - b'0');
        match (hours, minutes) {
            (0..=23, 0..=59) | (24, 0) => Ok(Self(hours * 60 + minutes)),
            _ => Err(fail()),
        }
    }
}

/// A string that is not a strict `HH:MM` time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid time `{value}`: expected `HH:MM` with two digits each, from `00:00` to `23:59` (or `24:00` as an end)"
)]
pub struct ClockTimeError {
    value: String,
}

impl ClockTimeError {
    fn new(value: &str) -> Self {
        let value = match value.char_indices().nth(16) {
            Some((cut, _)) => format!("{}...", &value[..cut]),
            None => value.to_owned(),
        };
        Self { value }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_valid_time_round_trips() {
        for minutes in 0..=MINUTES_PER_DAY {
            let text = format!("{:02}:{:02}", minutes / 60, minutes % 60);
            let parsed: ClockTime = text.parse().unwrap();
            assert_eq!(parsed.minutes(), minutes);
            assert_eq!(parsed.to_string(), text);
        }
    }

    #[test]
    fn lenient_forms_are_rejected() {
        for text in [
            "7:05",
            " 07:05",
            "07:05 ",
            "23:60",
            "07:05:00",
            "24:01",
            "25:00",
            "0705",
            "07.05",
            "+7:05",
            "",
            "０７:05",
        ] {
            assert!(
                text.parse::<ClockTime>().is_err(),
                "{text:?} should be rejected"
            );
        }
    }
}
