//! Country codes, country lists and resolvers, against MaxMind's test databases.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::net::IpAddr;

use guardrail_core::guardrail::geo::{
    CountryAllowlist, CountryCode, CountryLookup, CountryResolver, MaxMindCountryResolver,
    StaticCountryResolver, UndeterminedReason,
};
use proptest::prelude::*;

fn database(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/geoip/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn resolver(name: &str) -> MaxMindCountryResolver {
    MaxMindCountryResolver::from_bytes(database(name)).unwrap()
}

fn country(code: &str) -> CountryLookup {
    CountryLookup::Country(code.parse().unwrap())
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn code_is_stored_upper_case() {
    let code: CountryCode = "dk".parse().unwrap();
    assert_eq!(code.to_string(), "DK");
    assert_eq!(code, "DK".parse().unwrap());
    assert_eq!("Dk".parse::<CountryCode>().unwrap(), code);
}

#[test]
fn kosovo_is_accepted() {
    assert_eq!("xk".parse::<CountryCode>().unwrap().to_string(), "XK");
}

#[test]
fn uk_hints_at_gb() {
    let message = "UK".parse::<CountryCode>().unwrap_err().to_string();
    assert!(message.contains("`UK`"), "{message}");
    assert!(message.contains("`GB`"), "{message}");
    let message = "uk".parse::<CountryCode>().unwrap_err().to_string();
    assert!(message.contains("`uk`"), "{message}");
}

#[test]
fn rejections_name_the_value() {
    let cases = [
        ("EU", "pseudo-code"),
        ("AP", "pseudo-code"),
        ("A1", "pseudo-code"),
        ("A2", "pseudo-code"),
        ("O1", "pseudo-code"),
        ("T1", "pseudo-code"),
        ("XX", "pseudo-code"),
        ("zz", "pseudo-code"),
        ("QQ", "not an ISO 3166-1 alpha-2 code"),
        ("DNK", "two ASCII letters"),
        ("D", "two ASCII letters"),
        ("", "two ASCII letters"),
        (" DK", "two ASCII letters"),
        ("D1", "two ASCII letters"),
        ("ÅÅ", "two ASCII letters"),
    ];
    for (text, reason) in cases {
        let message = text.parse::<CountryCode>().unwrap_err().to_string();
        assert!(
            message.contains(&format!("`{text}`")),
            "{text:?}: {message}"
        );
        assert!(message.contains(reason), "{text:?}: {message}");
    }
}

#[test]
fn allowlist_dedups_and_sorts() {
    let list = CountryAllowlist::parse(&["se", "DK", "dk", "SE"]).unwrap();
    let codes: Vec<String> = list.codes().iter().map(ToString::to_string).collect();
    assert_eq!(codes, ["DK", "SE"]);
    assert!(list.contains("DK".parse().unwrap()));
    assert!(!list.contains("NO".parse().unwrap()));
    assert_eq!(serde_json::to_string(&list).unwrap(), r#"["DK","SE"]"#);
}

#[test]
fn allowlist_rejects_empty_and_bad_entries() {
    let none: [&str; 0] = [];
    let message = CountryAllowlist::parse(&none).unwrap_err().to_string();
    assert!(message.contains("empty"), "{message}");

    let message = CountryAllowlist::parse(&["DK", "UK"])
        .unwrap_err()
        .to_string();
    assert!(message.contains("entry 1"), "{message}");
    assert!(message.contains("`GB`"), "{message}");

    let long = vec!["DK"; 1_001];
    let message = CountryAllowlist::parse(&long).unwrap_err().to_string();
    assert!(message.contains("`1001`"), "{message}");

    let error = serde_json::from_str::<CountryAllowlist>(r#"["DK","EU"]"#).unwrap_err();
    assert!(error.to_string().contains("`EU`"), "{error}");
}

#[test]
fn only_country_counts_not_registered() {
    // Each address's record has a `registered_country` (or `represented_country`) that differs
    // from its `country`, per GeoIP2-Country-Test.json and GeoLite2-Country-Test.json.
    let cases = [
        ("81.2.69.142", "GB"),   // registered US
        ("81.2.69.160", "GB"),   // registered US
        ("89.160.20.128", "SE"), // registered DE
        ("67.43.156.1", "BT"),   // registered RO
        ("216.160.83.57", "US"), // registered GB
        ("2.125.160.217", "GB"), // registered FR
        ("202.196.224.1", "PH"), // represented US
        ("2001:220::", "SE"),    // registered DE, GeoIP2 only
    ];
    let geoip2 = resolver("GeoIP2-Country-Test.mmdb");
    for (address, expected) in cases {
        assert_eq!(geoip2.resolve(ip(address)), country(expected), "{address}");
    }
    let geolite2 = resolver("GeoLite2-Country-Test.mmdb");
    for (address, expected) in &cases[..7] {
        assert_eq!(
            geolite2.resolve(ip(address)),
            country(expected),
            "{address}"
        );
    }
}

#[test]
fn most_specific_record_wins() {
    let geoip2 = resolver("GeoIP2-Country-Test.mmdb");
    // 2001:220::/128 is SE inside KR networks that start at 2001:220::1.
    assert_eq!(geoip2.resolve(ip("2001:220::")), country("SE"));
    assert_eq!(geoip2.resolve(ip("2001:220::1")), country("KR"));
    assert_eq!(geoip2.resolve(ip("2001:220:8000::1")), country("KR"));
}

#[test]
fn ipv4_mapped_and_6to4_sources_resolve_as_ipv4() {
    let geoip2 = resolver("GeoIP2-Country-Test.mmdb");
    assert_eq!(geoip2.resolve(ip("::ffff:81.2.69.142")), country("GB"));
    // 2002:5102:458e:: embeds 81.2.69.142; the database aliases 2002::/16 to its IPv4 data.
    assert_eq!(geoip2.resolve(ip("2002:5102:458e::")), country("GB"));
}

#[test]
fn record_without_country_is_undetermined() {
    let geoip2 = resolver("GeoIP2-Country-Test.mmdb");
    let no_country = CountryLookup::Undetermined(UndeterminedReason::NoCountry);
    // Only a continent.
    assert_eq!(geoip2.resolve(ip("2a02:d500::1")), no_country);
    // Only traits (`is_anycast`).
    assert_eq!(geoip2.resolve(ip("214.1.1.1")), no_country);
}

#[test]
fn unknown_and_private_addresses_are_undetermined() {
    let geoip2 = resolver("GeoIP2-Country-Test.mmdb");
    let not_in_database = CountryLookup::Undetermined(UndeterminedReason::NotInDatabase);
    let non_public = CountryLookup::Undetermined(UndeterminedReason::NonPublicAddress);
    assert_eq!(geoip2.resolve(ip("8.8.8.8")), not_in_database);
    assert_eq!(geoip2.resolve(ip("2c0f:ff00::1")), not_in_database);
    for address in [
        "10.0.0.1",
        "127.0.0.1",
        "192.168.1.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:10.0.0.1",
        "0.0.0.0",
        "255.255.255.255",
    ] {
        assert_eq!(geoip2.resolve(ip(address)), non_public, "{address}");
    }
}

#[test]
fn city_database_is_accepted() {
    let city = resolver("GeoIP2-City-Test.mmdb");
    assert_eq!(city.database_type(), "GeoIP2-City");
    assert_eq!(city.resolve(ip("81.2.69.142")), country("GB"));
    assert_eq!(city.resolve(ip("89.160.20.128")), country("SE"));
}

#[test]
fn broken_databases_fail_to_load() {
    let cases = [
        ("GeoIP2-City-Test-Invalid-Node-Count.mmdb", "search tree"),
        ("MaxMind-DB-test-broken-pointers-24.mmdb", "pointer"),
        ("MaxMind-DB-test-broken-search-tree-24.mmdb", "search tree"),
    ];
    for (name, detail) in cases {
        let message = MaxMindCountryResolver::from_bytes(database(name))
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("failed to load the MaxMind database"),
            "{name}: {message}"
        );
        assert!(message.contains(detail), "{name}: {message}");
    }
}

#[test]
fn garbage_bytes_fail_to_load() {
    for bytes in [
        Vec::new(),
        vec![0_u8; 1024],
        b"\xab\xcd\xefMaxMind.com".to_vec(),
    ] {
        assert!(MaxMindCountryResolver::from_bytes(bytes).is_err());
    }
}

#[test]
fn truncated_databases_never_panic() {
    let full = database("GeoIP2-Country-Test.mmdb");
    for cut in (0..full.len()).step_by(97) {
        let _ = MaxMindCountryResolver::from_bytes(full[..cut].to_vec());
    }
}

#[test]
fn static_resolver_picks_most_specific() {
    let resolver = StaticCountryResolver::new(vec![
        ("127.0.0.0/8".parse().unwrap(), "DK".parse().unwrap()),
        ("127.0.0.2".parse().unwrap(), "SE".parse().unwrap()),
    ]);
    assert_eq!(resolver.resolve(ip("127.0.0.1")), country("DK"));
    assert_eq!(resolver.resolve(ip("::ffff:127.0.0.2")), country("SE"));
    assert_eq!(
        resolver.resolve(ip("10.0.0.1")),
        CountryLookup::Undetermined(UndeterminedReason::NotInDatabase)
    );
}

proptest! {
    #[test]
    fn code_parse_never_panics(text in "\\PC{0,8}") {
        if let Ok(code) = text.parse::<CountryCode>() {
            prop_assert_eq!(code.to_string().parse::<CountryCode>().unwrap(), code);
        }
    }

    #[test]
    fn table_agrees_with_direct_lookup(
        v4 in proptest::collection::vec(any::<u32>(), 200),
        near in proptest::collection::vec((0_usize..8, any::<u16>()), 200),
        v6 in proptest::collection::vec(any::<u128>(), 200),
    ) {
        let geoip2 = resolver("GeoIP2-Country-Test.mmdb");
        // Networks from the test database, so that most probes land on records.
        let bases: [u128; 8] = [
            u128::from(u32::from(std::net::Ipv4Addr::new(81, 2, 69, 0))),
            u128::from(u32::from(std::net::Ipv4Addr::new(89, 160, 20, 0))),
            u128::from(u32::from(std::net::Ipv4Addr::new(214, 78, 0, 0))),
            u128::from(u32::from(std::net::Ipv4Addr::new(202, 196, 224, 0))),
            0x2001_0220_u128 << 96,
            0x2a02_d000_u128 << 96,
            0x2a02_ec00_u128 << 96,
            0x2002_5102_u128 << 96,
        ];
        let mut probes: Vec<IpAddr> = v4.into_iter().map(|bits| IpAddr::V4(bits.into())).collect();
        probes.extend(v6.into_iter().map(|bits| IpAddr::V6(bits.into())));
        for (index, offset) in near {
            let base = bases[index];
            if index < 4 {
                let bits = (base as u32).wrapping_add(u32::from(offset));
                probes.push(IpAddr::V4(bits.into()));
            } else {
                probes.push(IpAddr::V6((base | u128::from(offset) << 64 | u128::from(offset)).into()));
            }
        }
        for probe in probes {
            prop_assert_eq!(geoip2.resolve(probe), geoip2.resolve_direct(probe), "probe {}", probe);
        }
    }
}
