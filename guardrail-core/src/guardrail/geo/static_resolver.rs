//! A resolver backed by a fixed table, for tests and examples.

use std::net::IpAddr;

use super::{CountryCode, CountryLookup, CountryResolver, UndeterminedReason};
use crate::guardrail::ip::Cidr;

/// A resolver from a fixed list of networks to countries, for tests and examples.
///
/// The most specific network that contains the address wins. Unlike
/// [`super::MaxMindCountryResolver`] it does not treat private or loopback addresses specially,
/// so a test server on `127.0.0.1` can be given a country. Lookups scan the list, so keep it
/// short.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticCountryResolver {
    entries: Vec<(Cidr, CountryCode)>,
}

impl StaticCountryResolver {
    /// Creates a resolver from `(network, country)` pairs.
    pub fn new(entries: Vec<(Cidr, CountryCode)>) -> Self {
        Self { entries }
    }
}

impl CountryResolver for StaticCountryResolver {
    fn resolve(&self, ip: IpAddr) -> CountryLookup {
        let ip = ip.to_canonical();
        let best = self
            .entries
            .iter()
            .filter(|(network, _)| network.contains(ip))
            .max_by_key(|(network, _)| network.network().prefix());
        match best {
            Some((_, country)) => CountryLookup::Country(*country),
            None => CountryLookup::Undetermined(UndeterminedReason::NotInDatabase),
        }
    }
}
