//! IP allowlist parsing, lookup and serialisation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::net::IpAddr;

use guardrail_core::guardrail::ip::{Cidr, IpAllowlist, MAX_ENTRIES};
use proptest::prelude::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn rejection(entry: &str) -> String {
    entry.parse::<Cidr>().unwrap_err().to_string()
}

#[test]
fn bare_address_is_single_host() {
    let list = IpAllowlist::parse(&["10.1.2.3", "2001:db8::1"]).unwrap();
    assert!(list.contains(ip("10.1.2.3")));
    assert!(!list.contains(ip("10.1.2.4")));
    assert!(list.contains(ip("2001:db8::1")));
    assert!(!list.contains(ip("2001:db8::2")));
}

#[test]
fn network_bounds_are_inclusive() {
    let list = IpAllowlist::parse(&["10.0.0.0/8", "2001:db8::/32"]).unwrap();
    assert!(list.contains(ip("10.0.0.0")));
    assert!(list.contains(ip("10.255.255.255")));
    assert!(!list.contains(ip("11.0.0.0")));
    assert!(!list.contains(ip("9.255.255.255")));
    assert!(list.contains(ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
    assert!(!list.contains(ip("2001:db9::")));
}

#[test]
fn ipv4_mapped_source_matches_ipv4_entry() {
    let list = IpAllowlist::parse(&["203.0.113.0/24"]).unwrap();
    assert!(list.contains(ip("::ffff:203.0.113.7")));
    assert!(!list.contains(ip("::ffff:203.0.114.7")));
}

#[test]
fn ipv4_source_does_not_match_ipv6_entry() {
    let list = IpAllowlist::parse(&["::/0"]).unwrap();
    assert!(!list.contains(ip("192.0.2.1")));
    assert!(!list.contains(ip("::ffff:192.0.2.1")));
    assert!(list.contains(ip("2001:db8::1")));
}

#[test]
fn whole_spaces_cover_extremes() {
    let list = IpAllowlist::parse(&["0.0.0.0/0", "::/0"]).unwrap();
    assert!(list.contains(ip("0.0.0.0")));
    assert!(list.contains(ip("255.255.255.255")));
    assert!(list.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
}

#[test]
fn duplicates_and_overlaps_are_merged() {
    let list =
        IpAllowlist::parse(&["10.0.0.0/8", "10.1.0.0/16", "10.0.0.0/8", "11.0.0.0/8"]).unwrap();
    assert_eq!(list.entries().len(), 4);
    assert_eq!(list.merged_range_count(), 1);
    assert!(list.contains(ip("11.200.0.1")));
}

#[test]
fn machine_list_must_not_be_empty() {
    let none: [&str; 0] = [];
    let message = IpAllowlist::parse(&none).unwrap_err().to_string();
    assert!(message.contains("is empty"), "{message}");
}

#[test]
fn vault_list_may_be_empty_and_blocks_all() {
    let none: [&str; 0] = [];
    let list = IpAllowlist::parse_allow_empty(&none).unwrap();
    assert!(list.is_empty());
    assert!(!list.contains(ip("192.0.2.1")));
    assert!(!list.contains(ip("2001:db8::1")));
}

#[test]
fn ten_thousand_entries_are_searched() {
    // 10,000 disjoint /32 hosts spread over 10.0.0.0/8, every third address.
    let entries: Vec<String> = (0..10_000_u32)
        .map(|i| std::net::Ipv4Addr::from(0x0a00_0000 + i * 3).to_string())
        .collect();
    let list = IpAllowlist::parse(&entries).unwrap();
    assert_eq!(list.merged_range_count(), 10_000);
    for i in 0..10_000_u32 {
        let base = 0x0a00_0000 + i * 3;
        assert!(list.contains(IpAddr::V4(base.into())));
        assert!(!list.contains(IpAddr::V4((base + 1).into())));
        assert!(!list.contains(IpAddr::V4((base + 2).into())));
    }
}

#[test]
fn entry_count_is_bounded() {
    let entries = vec!["10.0.0.1"; MAX_ENTRIES + 1];
    let message = IpAllowlist::parse(&entries).unwrap_err().to_string();
    assert!(
        message.contains(&format!("`{}`", MAX_ENTRIES + 1)),
        "{message}"
    );
    let entries = vec!["10.0.0.1"; MAX_ENTRIES];
    assert!(IpAllowlist::parse(&entries).is_ok());
}

#[test]
fn error_names_entry_position() {
    let error = IpAllowlist::parse(&["10.0.0.0/8", "10.1.2.3/8"]).unwrap_err();
    assert_eq!(error.entry_index(), Some(1));
    assert!(
        error.to_string().starts_with("IP allowlist entry 1: "),
        "{error}"
    );
}

#[test]
fn host_bits_name_both_readings() {
    let message = rejection("10.1.2.3/8");
    assert!(message.contains("`10.1.2.3/8`"), "{message}");
    assert!(message.contains("`10.0.0.0/8`"), "{message}");
    assert!(message.contains("`10.1.2.3/32`"), "{message}");

    let message = rejection("2001:db8::1/32");
    assert!(message.contains("`2001:db8::/32`"), "{message}");
    assert!(message.contains("`2001:db8::1/128`"), "{message}");
}

#[test]
fn each_rejection_names_the_entry() {
    let cases = [
        ("010.0.0.1", "leading zero"),
        ("10.0.0.01/32", "leading zero"),
        ("10.0.0.0/08", "leading zero"),
        ("fe80::1%eth0", "zone id"),
        ("10.0.0.0/33", "past the address length"),
        ("2001:db8::/129", "past the address length"),
        (
            "10.0.0.0/255.0.0.0",
            "prefix length must be a decimal number",
        ),
        (" 10.0.0.1", "whitespace"),
        ("10.0.0.1 ", "whitespace"),
        ("10.0.0.0 /8", "whitespace"),
        ("+10.0.0.1", "sign"),
        ("10.0.0.0/+8", "sign"),
        ("-1", "sign"),
        ("10.0.0", "not an IPv4 or IPv6 address"),
        ("10.0.0.256", "not an IPv4 or IPv6 address"),
        ("10.0.0.0/", "prefix length must be a decimal number"),
        ("10.0.0.0/8/8", "prefix length must be a decimal number"),
        ("2001:db8::g", "unexpected character `g`"),
        ("::ffff:10.0.0.0/104", "write `10.0.0.0/8` instead"),
        ("::ffff:010.0.0.1", "leading zero"),
    ];
    for (entry, reason) in cases {
        let message = rejection(entry);
        assert!(
            message.contains(&format!("`{entry}`")),
            "{entry:?}: {message}"
        );
        assert!(message.contains(reason), "{entry:?}: {message}");
    }
}

#[test]
fn empty_entry_is_rejected() {
    let message = IpAllowlist::parse(&["10.0.0.0/8", ""])
        .unwrap_err()
        .to_string();
    assert!(message.contains("entry 1"), "{message}");
    assert!(message.contains("empty"), "{message}");
}

#[test]
fn overlong_entry_is_cut_in_message() {
    let entry = "1".repeat(500);
    let message = rejection(&entry);
    assert!(message.contains("longer than 64 characters"), "{message}");
    assert!(message.len() < 200, "{message}");
}

#[test]
fn serde_uses_normalised_strings() {
    let list = IpAllowlist::parse(&["10.0.0.0/8", "192.0.2.7/32", "2001:DB8:0::/32"]).unwrap();
    let json = serde_json::to_string(&list).unwrap();
    assert_eq!(json, r#"["10.0.0.0/8","192.0.2.7","2001:db8::/32"]"#);
    let back: IpAllowlist = serde_json::from_str(&json).unwrap();
    assert_eq!(back, list);
}

#[test]
fn deserialize_validates_entries() {
    let error = serde_json::from_str::<IpAllowlist>(r#"["10.1.2.3/8"]"#).unwrap_err();
    assert!(error.to_string().contains("`10.0.0.0/8`"), "{error}");
}

fn arbitrary_cidr() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<u32>(), 0_u8..=32).prop_map(|(bits, prefix)| {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            format!("{}/{prefix}", std::net::Ipv4Addr::from(bits & mask))
        }),
        (any::<u128>(), 0_u8..=128).prop_map(|(bits, prefix)| {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            format!("{}/{prefix}", std::net::Ipv6Addr::from(bits & mask))
        }),
    ]
}

proptest! {
    #[test]
    fn parse_never_panics(text in "\\PC{0,80}") {
        let _ = text.parse::<Cidr>();
    }

    #[test]
    fn parse_never_panics_on_address_alphabet(text in "[0-9a-fA-F:./%+ -]{0,60}") {
        let _ = text.parse::<Cidr>();
    }

    #[test]
    fn display_parse_round_trips(text in arbitrary_cidr()) {
        // Networks inside ::ffff:0:0/96 are rejected on purpose; skip them.
        if let Ok(cidr) = text.parse::<Cidr>() {
            let printed = cidr.to_string();
            let reparsed: Cidr = printed.parse().unwrap();
            prop_assert_eq!(reparsed, cidr);
            prop_assert_eq!(reparsed.to_string(), printed);
        }
    }

    #[test]
    fn lookup_agrees_with_linear_scan(
        entries in proptest::collection::vec(
            prop_oneof![
                // Dense IPv4 networks in 10.0.0.0/16 so that entries overlap and touch.
                (0_u32..65_536, 16_u8..=32).prop_map(|(low, prefix)| {
                    let bits = 0x0a00_0000 | low;
                    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                    format!("{}/{prefix}", std::net::Ipv4Addr::from(bits & mask))
                }),
                (0_u128..65_536, 112_u8..=128).prop_map(|(low, prefix)| {
                    let bits = 0x2001_0db8_u128 << 96 | low;
                    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                    format!("{}/{prefix}", std::net::Ipv6Addr::from(bits & mask))
                }),
            ],
            1..40,
        ),
        probes in proptest::collection::vec(0_u32..65_536, 64),
    ) {
        let list = IpAllowlist::parse(&entries).unwrap();
        let networks: Vec<Cidr> = entries.iter().map(|e| e.parse().unwrap()).collect();
        for low in probes {
            let v4 = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 | low));
            let v6 = IpAddr::V6(std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(low)));
            for probe in [v4, v6] {
                let naive = networks.iter().any(|network| network.contains(probe));
                prop_assert_eq!(list.contains(probe), naive, "probe {}", probe);
            }
        }
    }

    /// Lists of narrow networks keep more than 16 ranges after merging, so the lookup goes
    /// through the bucket index.
    #[test]
    fn indexed_lookup_agrees_with_linear_scan(
        entries in proptest::collection::vec(
            prop_oneof![
                (0_u32..65_536, 22_u8..=32).prop_map(|(low, prefix)| {
                    let bits = 0x0a00_0000 | low;
                    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                    format!("{}/{prefix}", std::net::Ipv4Addr::from(bits & mask))
                }),
                (0_u128..65_536, 118_u8..=128).prop_map(|(low, prefix)| {
                    let bits = 0x2001_0db8_u128 << 96 | low;
                    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                    format!("{}/{prefix}", std::net::Ipv6Addr::from(bits & mask))
                }),
            ],
            80..300,
        ),
        probes in proptest::collection::vec(0_u32..65_536, 256),
    ) {
        let list = IpAllowlist::parse(&entries).unwrap();
        let networks: Vec<Cidr> = entries.iter().map(|e| e.parse().unwrap()).collect();
        prop_assert!(list.merged_range_count() > 2 * 16, "{} ranges", list.merged_range_count());
        for low in probes {
            let v4 = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 | low));
            let v6 = IpAddr::V6(std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(low)));
            for probe in [v4, v6] {
                let naive = networks.iter().any(|network| network.contains(probe));
                prop_assert_eq!(list.contains(probe), naive, "probe {}", probe);
            }
        }
    }
}
