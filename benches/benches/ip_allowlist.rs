//! IP allowlist lookups against lists of 1, 100 and 10,000 disjoint networks, IPv4 and IPv6.
//!
//! The lists are compiled into sorted range tables, so a lookup is a binary search and should
//! grow with the logarithm of the list size. Each size is measured for an address inside the
//! middle entry and for an address just past it, which no entry contains.

#![expect(
    clippy::expect_used,
    reason = "benchmark setup fails loudly on a broken fixture"
)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use guardrail_benches::{ipv4_allowlist, ipv4_entry_address, ipv6_allowlist, ipv6_entry_address};
use guardrail_core::guardrail::IpAllowlist;

const SIZES: [u32; 3] = [1, 100, 10_000];

fn measure(
    c: &mut Criterion,
    name: &str,
    list: impl Fn(u32) -> IpAllowlist,
    probes: impl Fn(u32) -> (IpAddr, IpAddr),
) {
    let mut group = c.benchmark_group(name);
    for size in SIZES {
        let allowlist = list(size);
        let (inside, outside) = probes(size / 2);
        assert!(allowlist.contains(inside), "{inside} should be allowed");
        assert!(!allowlist.contains(outside), "{outside} should be rejected");
        group.bench_with_input(BenchmarkId::new("hit", size), &inside, |b, ip| {
            b.iter(|| black_box(allowlist.contains(black_box(*ip))));
        });
        group.bench_with_input(BenchmarkId::new("miss", size), &outside, |b, ip| {
            b.iter(|| black_box(allowlist.contains(black_box(*ip))));
        });
    }
    group.finish();
}

fn ipv4(c: &mut Criterion) {
    measure(
        c,
        "ip_allowlist_v4",
        |size| ipv4_allowlist(size).expect("IPv4 allowlist"),
        |index| {
            let first = u32::from(ipv4_entry_address(index));
            (
                IpAddr::V4(Ipv4Addr::from(first + 77)),
                IpAddr::V4(Ipv4Addr::from(first + 256 + 77)),
            )
        },
    );
}

fn ipv6(c: &mut Criterion) {
    measure(
        c,
        "ip_allowlist_v6",
        |size| ipv6_allowlist(size).expect("IPv6 allowlist"),
        |index| {
            let first = u128::from(ipv6_entry_address(index));
            (
                IpAddr::V6(Ipv6Addr::from(first + 0x1234_5678)),
                IpAddr::V6(Ipv6Addr::from(first + (1 << 80) + 0x1234_5678)),
            )
        },
    );
}

criterion_group!(benches, ipv4, ipv6);
criterion_main!(benches);
