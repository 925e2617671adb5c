//! The three optional per-machine guardrail axes and the vault-wide IP allowlist.

pub mod geo;
pub mod ip;
pub mod window;

pub use geo::{CountryAllowlist, CountryCode, CountryLookup, CountryResolver};
pub use ip::IpAllowlist;
pub use window::TimeWindow;

/// A machine's guardrails. Each axis is optional; a missing axis is off, and an enabled axis has
/// at least one entry.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Guardrails {
    pub ip_allowlist: Option<IpAllowlist>,
    pub countries: Option<CountryAllowlist>,
    pub time_window: Option<TimeWindow>,
}
