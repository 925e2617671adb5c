//! The three optional per-machine guardrail axes and the vault-wide IP allowlist.
//!
//! Each axis parses its configuration strictly into a type that can only hold valid values, and
//! answers one question for a request: is this source address, country or instant allowed.

pub mod geo;
pub mod ip;
mod ranges;
pub mod window;

pub use geo::{
    CountryAllowlist, CountryCode, CountryLookup, CountryResolver, MaxMindCountryResolver,
    StaticCountryResolver, UndeterminedReason,
};
pub use ip::{Cidr, IpAllowlist};
pub use window::{TimeWindow, WindowClosed};

/// A machine's guardrails. Each axis is optional, and a missing or `null` axis is off.
///
/// Deserialisation rejects an enabled IP allowlist with no entries, because the machine axis
/// needs at least one. The country list and the time window enforce that in their own types.
// TODO: the fields are public, so code that builds `Guardrails` directly can still set an empty
// `IpAllowlist` (from `parse_allow_empty`), which then blocks every source.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", try_from = "GuardrailsWire")]
pub struct Guardrails {
    /// Source networks the machine may connect from.
    pub ip_allowlist: Option<IpAllowlist>,
    /// Countries the machine may connect from.
    pub countries: Option<CountryAllowlist>,
    /// Wall-clock hours and weekdays in which the machine may connect.
    pub time_window: Option<TimeWindow>,
}

/// The serialised form of [`Guardrails`], before the machine-axis checks.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GuardrailsWire {
    #[serde(default)]
    ip_allowlist: Option<IpAllowlist>,
    #[serde(default)]
    countries: Option<CountryAllowlist>,
    #[serde(default)]
    time_window: Option<TimeWindow>,
}

impl TryFrom<GuardrailsWire> for Guardrails {
    type Error = ip::IpAllowlistError;

    fn try_from(wire: GuardrailsWire) -> Result<Self, Self::Error> {
        if let Some(list) = &wire.ip_allowlist
            && list.is_empty()
        {
            // Reuse the parser's message for an empty machine list.
            let no_entries: [&str; 0] = [];
            IpAllowlist::parse(&no_entries)?;
        }
        Ok(Self {
            ip_allowlist: wire.ip_allowlist,
            countries: wire.countries,
            time_window: wire.time_window,
        })
    }
}
