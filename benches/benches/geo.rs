//! Country lookups in MaxMind's `GeoIP2-Country-Test.mmdb`: through the precomputed range table
//! that the engine uses, and through a plain maxminddb lookup with record decoding for
//! comparison. Loading the database and building the tables is measured too, because the server
//! pays it at start and on every database reload.

#![expect(
    clippy::expect_used,
    reason = "benchmark setup fails loudly on a broken fixture"
)]

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use guardrail_benches::{country_test_resolver, geoip_test_database};
use guardrail_core::guardrail::{CountryLookup, CountryResolver, MaxMindCountryResolver};

fn geo(c: &mut Criterion) {
    let resolver = country_test_resolver().expect("MaxMind test database");
    let bytes = std::fs::read(geoip_test_database("GeoIP2-Country-Test.mmdb"))
        .expect("MaxMind test database");
    let sweden: IpAddr = "89.160.20.115".parse().expect("address");
    let ipv6: IpAddr = "2a02:d040::1".parse().expect("address");
    let unknown: IpAddr = "1.1.1.1".parse().expect("address");
    for ip in [sweden, ipv6] {
        assert!(matches!(resolver.resolve(ip), CountryLookup::Country(_)));
        assert_eq!(resolver.resolve(ip), resolver.resolve_direct(ip));
    }

    let mut group = c.benchmark_group("geo");
    for (name, ip) in [
        ("v4", sweden),
        ("v6", ipv6),
        ("v4_not_in_database", unknown),
    ] {
        group.bench_function(format!("range_table_{name}"), |b| {
            b.iter(|| black_box(resolver.resolve(black_box(ip))));
        });
        group.bench_function(format!("maxminddb_direct_{name}"), |b| {
            b.iter(|| black_box(resolver.resolve_direct(black_box(ip))));
        });
    }
    group.bench_function("load_and_build_tables", |b| {
        b.iter(|| black_box(MaxMindCountryResolver::from_bytes(black_box(bytes.clone())).is_ok()));
    });
    group.finish();
}

criterion_group!(benches, geo);
criterion_main!(benches);
