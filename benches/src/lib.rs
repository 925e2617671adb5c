//! Fixtures shared by the benchmarks: a machine with all three guardrail axes enabled, IP
//! allowlists of a chosen size, the MaxMind test database and signed requests in the wire format
//! of the machine protocol.
//!
//! Every fixture is deterministic, so that two runs measure the same work.

use std::error::Error;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use guardrail_core::guardrail::{
    CountryAllowlist, CountryLookup, CountryResolver, Guardrails, IpAllowlist,
    MaxMindCountryResolver, TimeWindow,
};

pub mod evaluation;
pub mod signed;

/// A boxed error for fixture setup.
pub type FixtureError = Box<dyn Error + Send + Sync>;

/// Returns the path of a MaxMind test database in the core crate's test data, such as
/// `GeoIP2-Country-Test.mmdb`.
pub fn geoip_test_database(file_name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../guardrail-core/tests/data/geoip")
        .join(file_name)
}

/// Loads MaxMind's `GeoIP2-Country-Test.mmdb` into a resolver with its range tables built.
///
/// # Errors
///
/// Returns an error when the file cannot be read or is not a valid MaxMind DB.
pub fn country_test_resolver() -> Result<MaxMindCountryResolver, FixtureError> {
    let bytes = std::fs::read(geoip_test_database("GeoIP2-Country-Test.mmdb"))?;
    Ok(MaxMindCountryResolver::from_bytes(bytes)?)
}

/// Returns the first address of IPv4 entry `index` in [`ipv4_allowlist`]: `11.0.0.0` plus
/// `index * 512`, so that neighbouring `/24` entries never touch and cannot merge.
pub fn ipv4_entry_address(index: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0B00_0000_u32 + index * 512)
}

/// Returns the first address of IPv6 entry `index` in [`ipv6_allowlist`]: `2001:db8::/32` with
/// the entry number, doubled, in bits 80 to 95, so that neighbouring `/48` entries never touch.
pub fn ipv6_entry_address(index: u32) -> Ipv6Addr {
    let base = 0x2001_0db8_u128 << 96;
    Ipv6Addr::from(base | (u128::from(index) * 2) << 80)
}

/// Builds an allowlist of `count` disjoint IPv4 `/24` networks from [`ipv4_entry_address`].
///
/// # Errors
///
/// Returns an error when `count` exceeds the allowlist's maximum number of entries.
pub fn ipv4_allowlist(count: u32) -> Result<IpAllowlist, FixtureError> {
    let entries: Vec<String> = (0..count)
        .map(|index| format!("{}/24", ipv4_entry_address(index)))
        .collect();
    Ok(IpAllowlist::parse(&entries)?)
}

/// Builds an allowlist of `count` disjoint IPv6 `/48` networks from [`ipv6_entry_address`].
///
/// # Errors
///
/// Returns an error when `count` exceeds the allowlist's maximum number of entries.
pub fn ipv6_allowlist(count: u32) -> Result<IpAllowlist, FixtureError> {
    let entries: Vec<String> = (0..count)
        .map(|index| format!("{}/48", ipv6_entry_address(index)))
        .collect();
    Ok(IpAllowlist::parse(&entries)?)
}

/// The source address of every decision benchmark. MaxMind's test database places it in Sweden.
pub const SOURCE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(89, 160, 20, 115));

/// Returns the instant of every decision benchmark: Wednesday 2024-03-13 10:30 UTC, which is 11:30 in
/// Copenhagen (UTC+1), inside the machine's window.
pub fn decision_instant() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 13, 10, 30, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// Returns the machine's expiry in the decision benchmarks, after [`decision_instant`].
pub fn machine_expiry() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// The per-machine IP allowlist of the decision benchmarks, one line per entry.
pub const MACHINE_CIDRS: [&str; 4] = [
    "10.0.0.0/8",
    "89.160.20.0/24",
    "192.0.2.0/24",
    "2001:db8::/32",
];

/// The per-machine country allowlist of the decision benchmarks.
pub const MACHINE_COUNTRIES: [&str; 3] = ["DK", "SE", "NO"];

/// The per-machine time window of the decision benchmarks: 09:00 to 17:00 on working days in
/// Europe/Copenhagen.
pub const MACHINE_WINDOW: (&str, &str, &str, [&str; 5]) = (
    "09:00",
    "17:00",
    "Europe/Copenhagen",
    ["mon", "tue", "wed", "thu", "fri"],
);

/// Builds the guardrails of the decision benchmarks with all three axes enabled.
///
/// # Errors
///
/// Returns an error when one of the constant entries above fails to parse.
pub fn machine_guardrails() -> Result<Guardrails, FixtureError> {
    let (start, end, zone, days) = MACHINE_WINDOW;
    Ok(Guardrails {
        ip_allowlist: Some(IpAllowlist::parse(&MACHINE_CIDRS)?),
        countries: Some(CountryAllowlist::parse(&MACHINE_COUNTRIES)?),
        time_window: Some(TimeWindow::new(start, end, zone, &days)?),
    })
}

/// The step at which [`decide_guardrails`] rejected a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Step 4: `now >= expires_at`.
    Expired,
    /// Step 5: the source is outside the machine's IP allowlist.
    IpAllowlist,
    /// Step 6: the country is undetermined or not in the machine's list.
    Country,
    /// Step 7: the time window is closed.
    TimeWindow,
}

/// Runs steps 4 to 7 of the evaluation (expiry, IP allowlist, country, time window) in the
/// evaluator's order, straight on the guardrail axes and without building a decision.
///
/// It is the same work that the Cedar peer benchmark gives Cedar, so the two compare like with
/// like; `guardrail_core::evaluate::evaluate` is measured separately.
pub fn decide_guardrails<R: CountryResolver>(
    guardrails: &Guardrails,
    expires_at: DateTime<Utc>,
    resolver: &R,
    source: IpAddr,
    now: DateTime<Utc>,
) -> Result<(), Rejected> {
    if now >= expires_at {
        return Err(Rejected::Expired);
    }
    if let Some(list) = &guardrails.ip_allowlist
        && !list.contains(source)
    {
        return Err(Rejected::IpAllowlist);
    }
    if let Some(countries) = &guardrails.countries {
        match resolver.resolve(source) {
            CountryLookup::Country(code) if countries.contains(code) => {}
            CountryLookup::Country(_) | CountryLookup::Undetermined(_) => {
                return Err(Rejected::Country);
            }
        }
    }
    if let Some(window) = &guardrails.time_window
        && window.check(now).is_err()
    {
        return Err(Rejected::TimeWindow);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_entries_never_merge() {
        for count in [1, 100, 10_000] {
            assert_eq!(
                ipv4_allowlist(count).unwrap().merged_range_count(),
                count as usize
            );
            assert_eq!(
                ipv6_allowlist(count).unwrap().merged_range_count(),
                count as usize
            );
        }
    }

    #[test]
    fn decision_fixture_allows_then_expires() {
        let guardrails = machine_guardrails().unwrap();
        let resolver = country_test_resolver().unwrap();
        let decide =
            |now| decide_guardrails(&guardrails, machine_expiry(), &resolver, SOURCE_IP, now);

        assert_eq!(decide(decision_instant()), Ok(()));
        assert_eq!(decide(machine_expiry()), Err(Rejected::Expired));
        // 20:30 in Copenhagen is after the window closes at 17:00.
        let evening = decision_instant() + chrono::TimeDelta::hours(9);
        assert_eq!(decide(evening), Err(Rejected::TimeWindow));
    }

    #[test]
    fn decision_fixture_rejects_other_sources() {
        let guardrails = machine_guardrails().unwrap();
        let resolver = country_test_resolver().unwrap();
        let decide = |source| {
            decide_guardrails(
                &guardrails,
                machine_expiry(),
                &resolver,
                source,
                decision_instant(),
            )
        };

        // Inside the allowlist but private, so no country can be determined.
        assert_eq!(
            decide(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))),
            Err(Rejected::Country)
        );
        assert_eq!(
            decide(IpAddr::V4(Ipv4Addr::new(81, 2, 69, 142))),
            Err(Rejected::IpAllowlist)
        );
    }
}
