//! The time-window axis: wall-clock hours on chosen weekdays in one IANA time zone.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use guardrail_core::guardrail::TimeWindow;
//!
//! let window = TimeWindow::new("22:00", "06:00", "Europe/Copenhagen", &["fri"]).unwrap();
//! // Saturday 2024-06-08 03:00 in Copenhagen (UTC+2) is inside Friday's overnight window.
//! assert!(window.is_open(Utc.with_ymd_and_hms(2024, 6, 8, 1, 0, 0).unwrap()));
//! ```
//!
//! The window includes `start` and excludes `end`, to the minute. When `start < end` the window
//! lies inside each listed day. When `start > end` it opens on each listed day at `start` and
//! closes at `end` the next morning, so the early hours belong to the day before: a Saturday-only
//! `22:00`-`06:00` window is not open at 03:00 on Saturday.
//!
//! # DST gaps and folds
//!
//! The check converts `now` to wall-clock time in the zone and compares the weekday and the
//! minute of the day. It never turns the window's bounds into instants, so a bound that falls in
//! a gap or a fold cannot fail. On the spring-forward day a window inside the skipped hour never
//! opens, and on the fall-back day a window over the repeated hour is open for both real hours.
//! The same holds in zones whose midnight is skipped (America/Havana, America/Santiago).

mod clock;
mod days;

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;

pub use clock::{ClockTime, ClockTimeError};
pub use days::{WeekdaySet, WeekdaySetError, weekday_name};

/// Allowed wall-clock hours on a set of weekdays in one IANA time zone.
///
/// Serialises as `{"start":"09:00","end":"17:00","timezone":"Europe/Copenhagen","days":["mon"]}`;
/// deserialisation applies the same checks as [`TimeWindow::new`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "TimeWindowWire", into = "TimeWindowWire")]
pub struct TimeWindow {
    start: ClockTime,
    end: ClockTime,
    timezone: Tz,
    days: WeekdaySet,
}

impl TimeWindow {
    /// Parses a window from its text fields.
    ///
    /// # Errors
    ///
    /// Returns an error when `start` or `end` is not a strict `HH:MM` time, `start` is `24:00`,
    /// `start` equals `end`, the zone is not an IANA name known to `chrono-tz`, or the day list is
    /// empty, has an unknown name or repeats a day. The message names the field and the value.
    pub fn new<S: AsRef<str>>(
        start: &str,
        end: &str,
        timezone: &str,
        days: &[S],
    ) -> Result<Self, TimeWindowError> {
        let start_time = start
            .parse::<ClockTime>()
            .map_err(|source| TimeWindowError(Problem::Start(source)))?;
        let end_time = end
            .parse::<ClockTime>()
            .map_err(|source| TimeWindowError(Problem::End(source)))?;
        let zone = timezone
            .parse::<Tz>()
            .map_err(|_| TimeWindowError(Problem::UnknownZone(quote(timezone))))?;
        let days =
            WeekdaySet::parse(days).map_err(|source| TimeWindowError(Problem::Days(source)))?;
        Self::from_parts(start_time, end_time, zone, days)
    }

    /// Builds a window from parsed parts.
    ///
    /// # Errors
    ///
    /// Returns an error when `start` is `24:00` or equals `end`.
    pub fn from_parts(
        start: ClockTime,
        end: ClockTime,
        timezone: Tz,
        days: WeekdaySet,
    ) -> Result<Self, TimeWindowError> {
        if start.is_end_of_day() {
            return Err(TimeWindowError(Problem::StartAtEndOfDay));
        }
        if start == end {
            return Err(TimeWindowError(Problem::StartEqualsEnd(start)));
        }
        Ok(Self {
            start,
            end,
            timezone,
            days,
        })
    }

    /// Returns whether the window is open at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.check(now).is_ok()
    }

    /// Checks the window at `now`.
    ///
    /// # Errors
    ///
    /// Returns [`WindowClosed`] with the local time, weekday and zone when the window is closed.
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), WindowClosed> {
        let local = now.with_timezone(&self.timezone);
        let day = local.weekday();
        // hour() < 24 and minute() < 60, so the value fits in u16 with room to spare.
        let minute = (local.hour() * 60 + local.minute()) as u16;
        let (start, end) = (self.start.minutes(), self.end.minutes());

        let open = if start < end {
            // Same-day window: [start, end) on a listed day.
            self.days.contains(day) && start <= minute && minute < end
        } else {
            // Overnight window: from start on a listed day, or before end on the morning after
            // a listed day.
            (self.days.contains(day) && minute >= start)
                || (self.days.contains(day.pred()) && minute < end)
        };
        if open {
            return Ok(());
        }
        Err(WindowClosed {
            local: local.naive_local(),
            weekday: day,
            zone: self.timezone,
        })
    }

    /// The first minute of the window.
    pub fn start(&self) -> ClockTime {
        self.start
    }

    /// The first minute after the window; may be `24:00`.
    pub fn end(&self) -> ClockTime {
        self.end
    }

    /// The IANA time zone of the wall-clock times.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The days on which the window opens.
    pub fn days(&self) -> WeekdaySet {
        self.days
    }
}

/// The time window was closed at the checked instant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outside the time window: local time `{}` on `{}` in `{}`", .local.format("%Y-%m-%d %H:%M"), weekday_name(*.weekday), .zone.name())]
pub struct WindowClosed {
    local: NaiveDateTime,
    weekday: Weekday,
    zone: Tz,
}

impl WindowClosed {
    /// The wall-clock time in the window's zone at the checked instant.
    pub fn local_time(&self) -> NaiveDateTime {
        self.local
    }

    /// The local weekday at the checked instant.
    pub fn weekday(&self) -> Weekday {
        self.weekday
    }

    /// The window's time zone.
    pub fn zone(&self) -> Tz {
        self.zone
    }
}

/// A time window that could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeWindowError(Problem);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    Start(ClockTimeError),
    End(ClockTimeError),
    StartAtEndOfDay,
    StartEqualsEnd(ClockTime),
    UnknownZone(String),
    Days(WeekdaySetError),
}

impl std::error::Error for TimeWindowError {}

impl fmt::Display for TimeWindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Problem::Start(source) => write!(f, "time window `start`: {source}"),
            Problem::End(source) => write!(f, "time window `end`: {source}"),
            Problem::StartAtEndOfDay => write!(
                f,
                "time window `start`: `24:00` is only valid as an end, write `00:00` for midnight"
            ),
            Problem::StartEqualsEnd(time) => write!(
                f,
                "time window `start` and `end` are both `{time}`, which would be an empty window; for a whole day write `00:00` to `24:00`"
            ),
            Problem::UnknownZone(name) => write!(
                f,
                "time window `timezone`: unknown IANA time zone `{name}`, use a name such as `Europe/Copenhagen`"
            ),
            Problem::Days(source) => write!(f, "time window `days`: {source}"),
        }
    }
}

fn quote(value: &str) -> String {
    match value.char_indices().nth(64) {
        Some((cut, _)) => format!("{}...", &value[..cut]),
        None => value.to_owned(),
    }
}

/// The serialised form of [`TimeWindow`].
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeWindowWire {
    start: String,
    end: String,
    timezone: String,
    days: Vec<String>,
}

impl TryFrom<TimeWindowWire> for TimeWindow {
    type Error = TimeWindowError;

    fn try_from(wire: TimeWindowWire) -> Result<Self, Self::Error> {
        Self::new(&wire.start, &wire.end, &wire.timezone, &wire.days)
    }
}

impl From<TimeWindow> for TimeWindowWire {
    fn from(window: TimeWindow) -> Self {
        Self {
            start: window.start.to_string(),
            end: window.end.to_string(),
            timezone: window.timezone.name().to_owned(),
            days: window
                .days
                .days()
                .map(|day| weekday_name(day).to_owned())
                .collect(),
        }
    }
}
