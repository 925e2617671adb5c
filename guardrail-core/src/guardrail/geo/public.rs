//! Which addresses a geolocation database can meaningfully locate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 special-purpose blocks that are not globally routed, as `(network, prefix)`, from the
/// IANA IPv4 Special-Purpose Address Registry plus multicast (`224.0.0.0/4`).
const V4_NON_PUBLIC: [(u32, u8); 15] = [
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
    (0x0a00_0000, 8),  // 10.0.0.0/8 private
    (0x6440_0000, 10), // 100.64.0.0/10 shared address space (carrier-grade NAT)
    (0x7f00_0000, 8),  // 127.0.0.0/8 loopback
    (0xa9fe_0000, 16), // 169.254.0.0/16 link-local
    (0xac10_0000, 12), // 172.16.0.0/12 private
    (0xc000_0000, 24), // 192.0.0.0/24 protocol assignments
    (0xc000_0200, 24), // 192.0.2.0/24 documentation
    (0xc058_6300, 24), // 192.88.99.0/24 deprecated 6to4 relay anycast
    (0xc0a8_0000, 16), // 192.168.0.0/16 private
    (0xc612_0000, 15), // 198.18.0.0/15 benchmarking
    (0xc633_6400, 24), // 198.51.100.0/24 documentation
    (0xcb00_7100, 24), // 203.0.113.0/24 documentation
    (0xe000_0000, 4),  // 224.0.0.0/4 multicast
    (0xf000_0000, 4),  // 240.0.0.0/4 reserved, including 255.255.255.255
];

/// IPv6 blocks that are not globally routed, as `(network, prefix)`.
const V6_NON_PUBLIC: [(u128, u8); 7] = [
    (0, 96), // ::/96 unspecified, loopback, IPv4-compatible
    (0x0100_0000_0000_0000_0000_0000_0000_0000, 64), // 100::/64 discard-only
    (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32), // 2001:db8::/32 documentation
    (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7), // fc00::/7 unique local
    (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10), // fe80::/10 link-local
    (0xfec0_0000_0000_0000_0000_0000_0000_0000, 10), // fec0::/10 deprecated site-local
    (0xff00_0000_0000_0000_0000_0000_0000_0000, 8), // ff00::/8 multicast
];

/// Returns whether `ip` is a public address that a geolocation database could locate.
///
/// An IPv4-mapped IPv6 address is judged as the IPv4 address it carries. The blocks judged not
/// public are private, shared (`100.64.0.0/10`), loopback, link-local, documentation,
/// benchmarking, multicast, reserved, unique-local and the IPv6 `::/96` block.
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let key = u32::from(ip);
    !V4_NON_PUBLIC.iter().any(|(network, prefix)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(*prefix)).unwrap_or(0);
        key & mask == *network
    })
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let key = u128::from(ip);
    !V6_NON_PUBLIC.iter().any(|(network, prefix)| {
        let mask = u128::MAX.checked_shl(128 - u32::from(*prefix)).unwrap_or(0);
        key & mask == *network
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_special_blocks() {
        for text in [
            "10.1.2.3",
            "127.0.0.1",
            "192.168.1.1",
            "172.31.255.255",
            "169.254.0.1",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = text.parse().unwrap();
            assert!(!is_public_address(ip), "{text} should not be public");
        }
        for text in [
            "81.2.69.142",
            "172.32.0.1",
            "100.128.0.1",
            "2a02:d040::1",
            "::ffff:81.2.69.142",
        ] {
            let ip: IpAddr = text.parse().unwrap();
            assert!(is_public_address(ip), "{text} should be public");
        }
    }
}
