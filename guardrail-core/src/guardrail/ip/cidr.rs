//! One allowlist entry: an IPv4 or IPv6 network in CIDR notation, parsed strictly.
//!
//! A strict textual check runs before `ipnetwork` sees the entry, because the usual parsers
//! accept forms that an allowlist must not: netmask prefixes (`/255.0.0.0`), zone ids, signs and
//! leading zeros that some tools read as octal.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use ipnetwork::IpNetwork;

/// Maximum length of one entry in bytes. The longest valid entry,
/// `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128`, has 49.
pub const MAX_ENTRY_LEN: usize = 64;

/// An IPv4 or IPv6 network without host bits, such as `10.0.0.0/8` or `2001:db8::/32`.
///
/// A bare address parses as a /32 or /128 network, and a network of full length prints as the
/// bare address, so that `Display` and `FromStr` round-trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr(IpNetwork);

impl Cidr {
    /// The network as an `ipnetwork` value.
    pub fn network(&self) -> IpNetwork {
        self.0
    }

    /// Returns whether the network contains `ip`. IPv4-mapped IPv6 sources are not converted
    /// here; [`super::IpAllowlist::contains`] does that.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(ip)
    }

    /// The first and last IPv4 address as integers, for an IPv4 network.
    pub(crate) fn v4_range(&self) -> Option<(u32, u32)> {
        match self.0 {
            IpNetwork::V4(net) => {
                let start = u32::from(net.network());
                let host_mask = u32::MAX.checked_shr(u32::from(net.prefix())).unwrap_or(0);
                Some((start, start | host_mask))
            }
            IpNetwork::V6(_) => None,
        }
    }

    /// The first and last IPv6 address as integers, for an IPv6 network.
    pub(crate) fn v6_range(&self) -> Option<(u128, u128)> {
        match self.0 {
            IpNetwork::V6(net) => {
                let start = u128::from(net.network());
                let host_mask = u128::MAX.checked_shr(u32::from(net.prefix())).unwrap_or(0);
                Some((start, start | host_mask))
            }
            IpNetwork::V4(_) => None,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full_length = match self.0 {
            IpNetwork::V4(net) => net.prefix() == 32,
            IpNetwork::V6(net) => net.prefix() == 128,
        };
        if full_length {
            write!(f, "{}", self.0.ip())
        } else {
            write!(f, "{}/{}", self.0.ip(), self.0.prefix())
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        let fail = |reason| Err(CidrError::new(entry, reason));

        if entry.is_empty() {
            return fail(CidrReason::Empty);
        }
        if entry.len() > MAX_ENTRY_LEN {
            return fail(CidrReason::TooLong);
        }
        if entry.chars().any(char::is_whitespace) {
            return fail(CidrReason::Whitespace);
        }
        if entry.contains('%') {
            return fail(CidrReason::ZoneId);
        }
        if entry.starts_with(['+', '-']) || entry.contains("/+") || entry.contains("/-") {
            return fail(CidrReason::Sign);
        }
        if let Some(bad) = entry
            .chars()
            .find(|c| !(c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '/')))
        {
            return fail(CidrReason::Character(bad));
        }

        let (address, prefix) = match entry.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (entry, None),
        };
        let is_v6 = address.contains(':');
        let max_prefix: u8 = if is_v6 { 128 } else { 32 };

        let prefix = match prefix {
            None => max_prefix,
            Some(text) => {
                parse_prefix(text, max_prefix).map_err(|reason| CidrError::new(entry, reason))?
            }
        };

        // IPv4 text, alone or as the tail of an IPv6 address, must be four plain decimal octets.
        let dotted_tail = if is_v6 {
            address
                .rsplit_once(':')
                .map(|(_, tail)| tail)
                .filter(|tail| tail.contains('.'))
        } else {
            Some(address)
        };
        if let Some(dotted) = dotted_tail {
            check_dotted_quad(dotted).map_err(|reason| CidrError::new(entry, reason))?;
        }

        let network = match IpNetwork::from_str(entry) {
            Ok(network) => network,
            Err(_) => return fail(CidrReason::InvalidAddress),
        };
        if network.prefix() != prefix {
            // ipnetwork read the prefix differently from the strict check, so neither is trusted.
            return fail(CidrReason::InvalidAddress);
        }
        if network.ip() != network.network() {
            return fail(CidrReason::HostBits {
                network: network.network(),
                address: network.ip(),
                prefix,
            });
        }
        // Sources in `::ffff:0:0/96` are matched as IPv4, so an entry inside that range could
        // never match and is rejected with its IPv4 spelling.
        if let IpNetwork::V6(net) = network
            && let Some(ipv4) = net.ip().to_ipv4_mapped()
            && net.prefix() >= 96
        {
            return fail(CidrReason::Ipv4Mapped {
                ipv4,
                prefix: net.prefix() - 96,
            });
        }
        Ok(Self(network))
    }
}

fn parse_prefix(text: &str, max_prefix: u8) -> Result<u8, CidrReason> {
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CidrReason::InvalidPrefix);
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(CidrReason::LeadingZeroPrefix);
    }
    match text.parse::<u8>() {
        Ok(prefix) if prefix <= max_prefix => Ok(prefix),
        _ => Err(CidrReason::PrefixTooLong { max: max_prefix }),
    }
}

fn check_dotted_quad(text: &str) -> Result<(), CidrReason> {
    let octets: Vec<&str> = text.split('.').collect();
    if octets.len() != 4 {
        return Err(CidrReason::InvalidAddress);
    }
    for octet in octets {
        if octet.is_empty() || octet.len() > 3 || !octet.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CidrReason::InvalidAddress);
        }
        if octet.len() > 1 && octet.starts_with('0') {
            return Err(CidrReason::LeadingZeroOctet);
        }
    }
    Ok(())
}

/// Why an entry is not a valid CIDR.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CidrReason {
    Empty,
    TooLong,
    Whitespace,
    ZoneId,
    Sign,
    Character(char),
    InvalidPrefix,
    LeadingZeroPrefix,
    PrefixTooLong {
        max: u8,
    },
    LeadingZeroOctet,
    InvalidAddress,
    HostBits {
        network: IpAddr,
        address: IpAddr,
        prefix: u8,
    },
    Ipv4Mapped {
        ipv4: Ipv4Addr,
        prefix: u8,
    },
}

/// An allowlist entry that is not a valid CIDR. The message quotes the entry, truncated to
/// [`MAX_ENTRY_LEN`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrError {
    entry: String,
    reason: CidrReason,
}

impl CidrError {
    fn new(entry: &str, reason: CidrReason) -> Self {
        let entry = match entry.char_indices().nth(MAX_ENTRY_LEN) {
            Some((cut, _)) => format!("{}...", &entry[..cut]),
            None => entry.to_owned(),
        };
        Self { entry, reason }
    }

    /// The rejected entry as written, truncated when it is overlong.
    pub fn entry(&self) -> &str {
        &self.entry
    }
}

impl std::error::Error for CidrError {}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entry = &self.entry;
        match &self.reason {
            CidrReason::Empty => write!(f, "invalid CIDR ``: the entry is empty"),
            CidrReason::TooLong => {
                write!(
                    f,
                    "invalid CIDR `{entry}`: longer than {MAX_ENTRY_LEN} characters"
                )
            }
            CidrReason::Whitespace => {
                write!(f, "invalid CIDR `{entry}`: contains whitespace, remove it")
            }
            CidrReason::ZoneId => write!(
                f,
                "invalid CIDR `{entry}`: zone ids (`%eth0`) are not allowed, remove the zone id"
            ),
            CidrReason::Sign => write!(f, "invalid CIDR `{entry}`: a sign is not allowed"),
            CidrReason::Character(c) => {
                write!(f, "invalid CIDR `{entry}`: unexpected character `{c}`")
            }
            CidrReason::InvalidPrefix => write!(
                f,
                "invalid CIDR `{entry}`: the prefix length must be a decimal number after one `/`"
            ),
            CidrReason::LeadingZeroPrefix => {
                write!(
                    f,
                    "invalid CIDR `{entry}`: the prefix length has a leading zero"
                )
            }
            CidrReason::PrefixTooLong { max } => write!(
                f,
                "invalid CIDR `{entry}`: the prefix length is past the address length of {max} bits"
            ),
            CidrReason::LeadingZeroOctet => write!(
                f,
                "invalid CIDR `{entry}`: an IPv4 octet has a leading zero, which some tools read as octal"
            ),
            CidrReason::InvalidAddress => {
                write!(f, "invalid CIDR `{entry}`: not an IPv4 or IPv6 address")
            }
            CidrReason::HostBits {
                network,
                address,
                prefix,
            } => {
                let full_length = if address.is_ipv4() { 32 } else { 128 };
                write!(
                    f,
                    "invalid CIDR `{entry}`: host bits are set, write `{network}/{prefix}` for the network or `{address}/{full_length}` for the single address"
                )
            }
            CidrReason::Ipv4Mapped { ipv4, prefix } => write!(
                f,
                "invalid CIDR `{entry}`: IPv4-mapped sources are matched as IPv4, write `{ipv4}/{prefix}` instead"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_address_prints_bare() {
        let cidr: Cidr = "10.1.2.3/32".parse().unwrap();
        assert_eq!(cidr.to_string(), "10.1.2.3");
        let cidr: Cidr = "2001:db8::1".parse().unwrap();
        assert_eq!(cidr.to_string(), "2001:db8::1");
    }

    #[test]
    fn ranges_cover_network() {
        let cidr: Cidr = "10.0.0.0/8".parse().unwrap();
        assert_eq!(cidr.v4_range(), Some((0x0a00_0000, 0x0aff_ffff)));
        let cidr: Cidr = "0.0.0.0/0".parse().unwrap();
        assert_eq!(cidr.v4_range(), Some((0, u32::MAX)));
        let cidr: Cidr = "::/0".parse().unwrap();
        assert_eq!(cidr.v6_range(), Some((0, u128::MAX)));
    }
}
