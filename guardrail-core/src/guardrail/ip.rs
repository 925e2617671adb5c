//! PLACEHOLDER: replaced by the IP allowlist implementation.
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IpAllowlist {}

impl IpAllowlist {
    pub fn contains(&self, _ip: IpAddr) -> bool {
        todo!()
    }
}
