//! PLACEHOLDER: replaced by the geo implementation.
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountryCode([u8; 2]);

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CountryAllowlist {}

impl CountryAllowlist {
    pub fn contains(&self, _code: CountryCode) -> bool {
        todo!()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CountryLookup {
    Country(CountryCode),
    Undetermined(&'static str),
}

pub trait CountryResolver {
    fn resolve(&self, ip: IpAddr) -> CountryLookup;
}
