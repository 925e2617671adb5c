//! The geo axis: country codes, the country allowlist and how a source address becomes a
//! country.
//!
//! A [`CountryResolver`] turns an address into a [`CountryLookup`]. The reference server uses
//! [`MaxMindCountryResolver`], which reads a MaxMind DB that the caller has loaded into memory;
//! tests and examples can use [`StaticCountryResolver`].
//!
//! # Undetermined countries
//!
//! The lookup is [`CountryLookup::Undetermined`] with an [`UndeterminedReason`] when the address
//! is not public (private, loopback, link-local, shared, documentation, multicast or reserved),
//! the database has no record for it, the record has no `country`, or the record's code is not
//! a country (`EU`, `AP`, `A1`, `A2`, `O1`, `T1`, `XX`, `ZZ` or anything else `celes` rejects).
//! Only the record's `country` counts: `registered_country` and `represented_country` are never
//! read.
//!
//! # IPv4-mapped sources
//!
//! Resolvers canonicalise the address first, so `::ffff:81.2.69.142` resolves as `81.2.69.142`.

mod country;
mod maxmind;
mod public;
mod static_resolver;

use std::fmt;
use std::net::IpAddr;

pub use country::{
    CountryAllowlist, CountryAllowlistError, CountryCode, CountryCodeError, MAX_COUNTRY_ENTRIES,
};
pub use maxmind::{GeoDbError, MaxMindCountryResolver};
pub use public::is_public_address;
pub use static_resolver::StaticCountryResolver;

/// The country of a source address, or why it has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "result", content = "value")]
pub enum CountryLookup {
    /// The database's `country` for the address.
    Country(CountryCode),
    /// No country could be determined, so the geo axis rejects the request.
    Undetermined(UndeterminedReason),
}

/// Why a resolver returned no country.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "code")]
pub enum UndeterminedReason {
    /// A private, loopback, link-local, shared, documentation, multicast or reserved address,
    /// which no database locates.
    NonPublicAddress,
    /// The database has no record for the address.
    NotInDatabase,
    /// The record has no `country` (some records carry only a continent or traits).
    NoCountry,
    /// The record's `country` code is a pseudo-code or not an ISO 3166-1 alpha-2 code.
    NotACountry(ReportedCode),
    /// The record could not be decoded.
    InvalidRecord,
}

impl fmt::Display for UndeterminedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NonPublicAddress => f.write_str("the address is not public"),
            Self::NotInDatabase => f.write_str("the address is not in the database"),
            Self::NoCountry => f.write_str("the database record has no country"),
            Self::NotACountry(code) => write!(f, "the database code `{code}` is not a country"),
            Self::InvalidRecord => f.write_str("the database record could not be decoded"),
        }
    }
}

/// A code that a database reported in place of a country, kept for audit detail. Codes longer
/// than [`ReportedCode::MAX_LEN`] bytes are cut at a character boundary.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReportedCode {
    bytes: [u8; ReportedCode::MAX_LEN],
    len: u8,
}

impl ReportedCode {
    /// Maximum number of bytes kept.
    pub const MAX_LEN: usize = 8;

    pub(crate) fn new(code: &str) -> Self {
        let mut cut = code.len().min(Self::MAX_LEN);
        while !code.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut bytes = [0_u8; Self::MAX_LEN];
        bytes[..cut].copy_from_slice(&code.as_bytes()[..cut]);
        Self {
            bytes,
            len: cut as u8,
        }
    }

    /// The code as reported, possibly cut.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for ReportedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReportedCode({:?})", self.as_str())
    }
}

impl fmt::Display for ReportedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ReportedCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Turns a source address into a country.
pub trait CountryResolver {
    /// Resolves the country of `ip`. Implementations canonicalise IPv4-mapped IPv6 addresses
    /// and never panic: a failure is [`CountryLookup::Undetermined`].
    fn resolve(&self, ip: IpAddr) -> CountryLookup;
}

impl<R: CountryResolver + ?Sized> CountryResolver for &R {
    fn resolve(&self, ip: IpAddr) -> CountryLookup {
        (**self).resolve(ip)
    }
}

impl<R: CountryResolver + ?Sized> CountryResolver for std::sync::Arc<R> {
    fn resolve(&self, ip: IpAddr) -> CountryLookup {
        (**self).resolve(ip)
    }
}

/// Turns a database's `country.iso_code` (or its absence) into a lookup result.
pub(crate) fn lookup_from_iso_code(iso_code: Option<&str>) -> CountryLookup {
    let Some(code) = iso_code else {
        return CountryLookup::Undetermined(UndeterminedReason::NoCountry);
    };
    match code.parse::<CountryCode>() {
        Ok(country) => CountryLookup::Country(country),
        Err(_) => {
            CountryLookup::Undetermined(UndeterminedReason::NotACountry(ReportedCode::new(code)))
        }
    }
}
