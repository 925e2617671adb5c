//! Machine lifetimes: `{months, days, hours}` and the expiry they give.

use serde::{Deserialize, Serialize};

/// A machine lifetime as the owner enters it. Validation and expiry computation are methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Lifetime {
    pub months: u32,
    pub days: u32,
    pub hours: u32,
}
