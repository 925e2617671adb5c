//! A country resolver over a MaxMind DB (GeoIP2 or GeoLite2 Country or City).
//!
//! Loading walks every network of the database once and builds two sorted range tables, `u32`
//! for IPv4 and `u128` for IPv6, so that [`CountryResolver::resolve`] is one binary search with no
//! record decoding. [`MaxMindCountryResolver::resolve_direct`] keeps the plain maxminddb lookup
//! for comparison in tests.
//!
//! # Aliased IPv4 networks
//!
//! IPv6 databases also reach their IPv4 data through `2002::/16` (6to4) and `2001::/32`
//! (Teredo). The walk includes those aliases, so an IPv6 source in them resolves as a direct
//! lookup would. The `::ffff:0:0/96` alias is left out because sources are canonicalised to IPv4
//! before lookup.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;
use maxminddb::{MaxMindDbError, Reader, WithinOptions};

use super::public::is_public_address;
use super::{CountryLookup, CountryResolver, UndeterminedReason, lookup_from_iso_code};
use crate::guardrail::ranges::RangeMap;

/// Resolves countries from a MaxMind DB held in memory.
pub struct MaxMindCountryResolver {
    reader: Reader<Vec<u8>>,
    v4: RangeMap<u32, CountryLookup>,
    v6: RangeMap<u128, CountryLookup>,
}

impl fmt::Debug for MaxMindCountryResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaxMindCountryResolver")
            .field("database_type", &self.reader.metadata().database_type)
            .field("v4_ranges", &self.v4.len())
            .field("v6_ranges", &self.v6.len())
            .finish()
    }
}

impl MaxMindCountryResolver {
    /// Loads a database from the bytes of a `.mmdb` file, verifies it and builds the range
    /// tables.
    ///
    /// # Errors
    ///
    /// Returns [`GeoDbError`] when the bytes are not a valid MaxMind DB: bad metadata, a broken
    /// search tree, a data pointer out of bounds, or a record whose `country.iso_code` cannot be
    /// decoded.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, GeoDbError> {
        let reader = Reader::from_source(bytes).map_err(|e| GeoDbError::new("open", &e))?;
        reader.verify().map_err(|e| GeoDbError::new("verify", &e))?;

        let root_address = if reader.metadata().ip_version == 6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        let root = IpNetwork::new(root_address, 0).map_err(|e| GeoDbError {
            stage: "walk",
            detail: e.to_string(),
        })?;
        let networks = reader
            .within(root, WithinOptions::default().include_aliased_networks())
            .map_err(|e| GeoDbError::new("walk", &e))?;

        // Many networks share one record, so decode each record once.
        let mut by_offset: HashMap<usize, CountryLookup> = HashMap::new();
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for item in networks {
            let found = item.map_err(|e| GeoDbError::new("walk", &e))?;
            let network = found.network().map_err(|e| GeoDbError::new("walk", &e))?;
            let Some(offset) = found.offset() else {
                continue;
            };
            let lookup = match by_offset.get(&offset) {
                Some(lookup) => *lookup,
                None => {
                    let iso_code: Option<&str> = found
                        .decode_path(&maxminddb::path!["country", "iso_code"])
                        .map_err(|e| GeoDbError::new("decode", &e))?;
                    let lookup = lookup_from_iso_code(iso_code);
                    by_offset.insert(offset, lookup);
                    lookup
                }
            };
            // TODO: in an IPv6 database, a record above the IPv4 subtree (a network shorter than
            // /96 that covers `::/96`) is not copied into the IPv4 table, so IPv4 sources in it
            // resolve as not in the database. The MaxMind databases tested here have none.
            match network {
                IpNetwork::V4(net) => {
                    let start = u32::from(net.network());
                    let host_mask = u32::MAX.checked_shr(u32::from(net.prefix())).unwrap_or(0);
                    v4.push((start, start | host_mask, lookup));
                }
                IpNetwork::V6(net) => {
                    if net.network().to_ipv4_mapped().is_some() && net.prefix() >= 96 {
                        continue;
                    }
                    let start = u128::from(net.network());
                    let host_mask = u128::MAX.checked_shr(u32::from(net.prefix())).unwrap_or(0);
                    v6.push((start, start | host_mask, lookup));
                }
            }
        }

        let v4 = RangeMap::from_ranges(v4).map_err(|_| GeoDbError::overlap())?;
        let v6 = RangeMap::from_ranges(v6).map_err(|_| GeoDbError::overlap())?;
        Ok(Self { reader, v4, v6 })
    }

    /// Resolves `ip` with a plain maxminddb lookup and record decode instead of the range
    /// tables. It is slower and exists to check the tables against the database.
    pub fn resolve_direct(&self, ip: IpAddr) -> CountryLookup {
        let ip = ip.to_canonical();
        if !is_public_address(ip) {
            return CountryLookup::Undetermined(UndeterminedReason::NonPublicAddress);
        }
        if ip.is_ipv6() && self.reader.metadata().ip_version == 4 {
            return CountryLookup::Undetermined(UndeterminedReason::NotInDatabase);
        }
        let Ok(found) = self.reader.lookup(ip) else {
            return CountryLookup::Undetermined(UndeterminedReason::InvalidRecord);
        };
        if !found.has_data() {
            return CountryLookup::Undetermined(UndeterminedReason::NotInDatabase);
        }
        match found.decode_path::<&str>(&maxminddb::path!["country", "iso_code"]) {
            Ok(iso_code) => lookup_from_iso_code(iso_code),
            Err(_) => CountryLookup::Undetermined(UndeterminedReason::InvalidRecord),
        }
    }

    /// The `database_type` from the database metadata, such as `GeoIP2-Country`.
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// The number of IPv4 and IPv6 ranges in the lookup tables, after merging neighbours with
    /// the same result.
    pub fn range_counts(&self) -> (usize, usize) {
        (self.v4.len(), self.v6.len())
    }
}

impl CountryResolver for MaxMindCountryResolver {
    fn resolve(&self, ip: IpAddr) -> CountryLookup {
        let ip = ip.to_canonical();
        if !is_public_address(ip) {
            return CountryLookup::Undetermined(UndeterminedReason::NonPublicAddress);
        }
        let found = match ip {
            IpAddr::V4(v4) => self.v4.get(u32::from(v4)),
            IpAddr::V6(v6) => self.v6.get(u128::from(v6)),
        };
        found.unwrap_or(CountryLookup::Undetermined(
            UndeterminedReason::NotInDatabase,
        ))
    }
}

/// A MaxMind DB that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to load the MaxMind database at the {stage} step: {detail}")]
pub struct GeoDbError {
    stage: &'static str,
    detail: String,
}

impl GeoDbError {
    fn new(stage: &'static str, source: &MaxMindDbError) -> Self {
        Self {
            stage,
            detail: source.to_string(),
        }
    }

    fn overlap() -> Self {
        Self {
            stage: "walk",
            detail: "the search tree yields overlapping networks".to_owned(),
        }
    }
}
