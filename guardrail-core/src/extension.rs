//! Extension chains: pushing a machine's expiry forward, and reverting the latest push.

use chrono::{DateTime, Utc};

use crate::ids::OwnerId;

/// One extension of a machine's expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub previous_expires_at: DateTime<Utc>,
    pub new_expires_at: DateTime<Utc>,
    pub applied_by: OwnerId,
    pub applied_at: DateTime<Utc>,
    pub reason: Option<String>,
    pub reverted: bool,
}
