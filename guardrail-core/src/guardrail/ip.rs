//! IP allowlists: the per-machine guardrail axis and the vault-wide list share this type.
//!
//! Entries are parsed strictly (see [`Cidr`]) and compiled into sorted, merged ranges, one table
//! of `u32` for IPv4 and one of `u128` for IPv6, so that a lookup is a binary search whatever the
//! number of entries.
//!
//! # IPv4-mapped sources
//!
//! [`IpAllowlist::contains`] canonicalises its argument first: `::ffff:10.1.2.3` is looked up as
//! `10.1.2.3`. For the same reason an entry inside `::ffff:0:0/96` is rejected with a hint to
//! write it as IPv4, because it could never match.
//!
//! # Empty lists
//!
//! The per-machine axis needs at least one entry ([`IpAllowlist::parse`]). The vault-wide list may
//! be enabled and empty ([`IpAllowlist::parse_allow_empty`]), and then it blocks every source.
//! Deserialisation accepts an empty list; [`super::Guardrails`] rejects it for the machine axis.

mod cidr;

use std::fmt;
use std::net::IpAddr;

pub use cidr::{Cidr, CidrError, MAX_ENTRY_LEN};

use super::ranges::RangeSet;

/// Maximum number of entries in one allowlist. Lists of ten thousand entries are in real use.
pub const MAX_ENTRIES: usize = 65_536;

/// A set of IPv4 and IPv6 networks that a source address must fall in.
///
/// Serialises as the list of entries in their normalised form (see [`Cidr`]), in the order they
/// were given. Duplicates and overlapping entries are kept in that list and merged in the lookup
/// tables.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct IpAllowlist {
    entries: Vec<Cidr>,
    v4: RangeSet<u32>,
    v6: RangeSet<u128>,
}

impl IpAllowlist {
    /// Parses a per-machine allowlist, which needs at least one entry.
    ///
    /// # Errors
    ///
    /// Returns an error when the list is empty, has more than [`MAX_ENTRIES`] entries, or an
    /// entry is not a valid CIDR. The message names the entry and its position.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, IpAllowlistError> {
        if entries.is_empty() {
            return Err(IpAllowlistError(ErrorKind::Empty));
        }
        Self::parse_allow_empty(entries)
    }

    /// Parses a vault-wide allowlist, which may be empty and then blocks every source.
    ///
    /// # Errors
    ///
    /// Returns an error when the list has more than [`MAX_ENTRIES`] entries or an entry is not a
    /// valid CIDR.
    pub fn parse_allow_empty<S: AsRef<str>>(entries: &[S]) -> Result<Self, IpAllowlistError> {
        if entries.len() > MAX_ENTRIES {
            return Err(IpAllowlistError(ErrorKind::TooMany {
                count: entries.len(),
            }));
        }
        let parsed = entries
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                entry
                    .as_ref()
                    .parse::<Cidr>()
                    .map_err(|source| IpAllowlistError(ErrorKind::Entry { index, source }))
            })
            .collect::<Result<Vec<Cidr>, _>>()?;
        Ok(Self::from_cidrs(parsed))
    }

    /// Builds an allowlist from networks that are already parsed. The list may be empty.
    ///
    /// # Errors
    ///
    /// Returns an error when there are more than [`MAX_ENTRIES`] networks.
    pub fn from_networks(entries: Vec<Cidr>) -> Result<Self, IpAllowlistError> {
        if entries.len() > MAX_ENTRIES {
            return Err(IpAllowlistError(ErrorKind::TooMany {
                count: entries.len(),
            }));
        }
        Ok(Self::from_cidrs(entries))
    }

    fn from_cidrs(entries: Vec<Cidr>) -> Self {
        let v4 = RangeSet::from_ranges(entries.iter().filter_map(Cidr::v4_range).collect());
        let v6 = RangeSet::from_ranges(entries.iter().filter_map(Cidr::v6_range).collect());
        Self { entries, v4, v6 }
    }

    /// Returns whether `ip` falls in one of the entries. An IPv4-mapped IPv6 address is matched
    /// as the IPv4 address it carries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(v4) => self.v4.contains(u32::from(v4)),
            IpAddr::V6(v6) => self.v6.contains(u128::from(v6)),
        }
    }

    /// The entries in their normalised form, in the order given.
    pub fn entries(&self) -> &[Cidr] {
        &self.entries
    }

    /// Returns whether the list has no entries, in which case it matches no source.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Returns the number of ranges left after merging overlapping and adjacent entries.
    pub fn merged_range_count(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
}

impl TryFrom<Vec<String>> for IpAllowlist {
    type Error = IpAllowlistError;

    fn try_from(entries: Vec<String>) -> Result<Self, Self::Error> {
        Self::parse_allow_empty(&entries)
    }
}

impl From<IpAllowlist> for Vec<String> {
    fn from(list: IpAllowlist) -> Self {
        list.entries.iter().map(ToString::to_string).collect()
    }
}

/// An allowlist that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpAllowlistError(ErrorKind);

#[derive(Debug, Clone, PartialEq, Eq)]
enum ErrorKind {
    Empty,
    TooMany { count: usize },
    Entry { index: usize, source: CidrError },
}

impl IpAllowlistError {
    /// The position of the rejected entry, counted from zero, when one entry is at fault.
    pub fn entry_index(&self) -> Option<usize> {
        match &self.0 {
            ErrorKind::Entry { index, .. } => Some(*index),
            ErrorKind::Empty | ErrorKind::TooMany { .. } => None,
        }
    }
}

impl fmt::Display for IpAllowlistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            ErrorKind::Empty => write!(
                f,
                "the IP allowlist is empty, give at least one CIDR or turn the axis off"
            ),
            ErrorKind::TooMany { count } => write!(
                f,
                "the IP allowlist has `{count}` entries, more than the maximum of {MAX_ENTRIES}, merge adjacent networks"
            ),
            ErrorKind::Entry { index, source } => {
                write!(f, "IP allowlist entry {index}: {source}")
            }
        }
    }
}

impl std::error::Error for IpAllowlistError {}
