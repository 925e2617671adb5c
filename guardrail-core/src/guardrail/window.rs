//! PLACEHOLDER: replaced by the time window implementation.
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimeWindow {}

impl TimeWindow {
    pub fn is_open(&self, _now: DateTime<Utc>) -> bool {
        todo!()
    }
}
