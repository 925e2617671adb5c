//! The client address of a request, decided once and used by every consumer.
//!
//! The source address is the TCP peer. A forwarding header counts only when that peer is a
//! configured trusted proxy. The header is then walked from the right, skipping trusted hops,
//! and the first untrusted entry is the client. actix-web's `realip_remote_addr` trusts whatever
//! the client writes, so it is never used here.
//!
//! # Entries
//!
//! The header is a comma-separated list, and every occurrence of it counts, in the order
//! received. An entry, after trimming spaces and tabs, is one of:
//!
//! - a bare address: `203.0.113.7`, `2001:db8::1`;
//! - an IPv4 address with a port: `203.0.113.7:4711`;
//! - a bracketed IPv6 address, with or without a port: `[2001:db8::1]`, `[2001:db8::1]:4711`.
//!
//! Anything else (an empty entry, `unknown`, a host name, a zone id such as `fe80::1%eth0`,
//! octets with leading zeros, RFC 7239 `for=` syntax) does not parse.
//!
//! # Undetermined clients
//!
//! The client is undetermined, and never the proxy's own address, when a trusted proxy sent no
//! header, when the walk meets an entry that does not parse, when every entry is a trusted hop,
//! or when the walk passes [`MAX_HOPS`] entries. The caller denies wherever an address rule
//! applies and treats the country as undetermined.
//!
//! # IPv4-mapped addresses
//!
//! The peer and every entry are canonicalised: `::ffff:a.b.c.d` becomes `a.b.c.d`, so that an
//! IPv4 client reaching a dual-stack socket matches IPv4 rules and trusted-proxy ranges.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use actix_web::HttpRequest;
use actix_web::http::header::HeaderName;
use ipnetwork::IpNetwork;

/// Most header entries the walk inspects before giving up.
pub const MAX_HOPS: usize = 32;

/// Why the client address of a request could not be determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Undetermined {
    /// The connection has no peer address (only in unit tests of actix handlers).
    #[error("the connection has no peer address")]
    NoPeer,
    /// A trusted proxy connected without the forwarding header.
    #[error("a trusted proxy sent no forwarding header")]
    MissingHeader,
    /// The forwarding header held an entry that is not an address.
    #[error("the forwarding header holds an entry that is not an address")]
    InvalidEntry,
    /// Every entry of the forwarding header is a trusted proxy.
    #[error("every forwarding header entry is a trusted proxy")]
    OnlyTrustedHops,
    /// The walk passed [`MAX_HOPS`] entries without finding an untrusted one.
    #[error("the forwarding header has more than {MAX_HOPS} trusted hops")]
    TooManyHops,
}

/// The trusted proxies and the header they write the client address into.
#[derive(Debug, Clone)]
pub struct ClientAddressResolver {
    trusted: Vec<IpNetwork>,
    header: HeaderName,
}

impl ClientAddressResolver {
    /// Makes a resolver that trusts `trusted` proxies and reads `header` from them.
    ///
    /// The networks should be written in canonical form (IPv4 as IPv4): the configuration
    /// rejects IPv4-mapped IPv6 networks, since canonical peers never fall into them.
    pub fn new(trusted: Vec<IpNetwork>, header: HeaderName) -> Self {
        Self { trusted, header }
    }

    /// Returns the forwarding header this resolver reads.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// Returns whether `ip` (canonicalised first) lies in a trusted proxy range.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted.iter().any(|net| net.contains(ip))
    }

    /// Decides the client address of an actix request from its peer and headers.
    ///
    /// # Errors
    ///
    /// An [`Undetermined`] reason when the client cannot be known.
    pub fn resolve_request(&self, request: &HttpRequest) -> Result<IpAddr, Undetermined> {
        let peer = request.peer_addr().ok_or(Undetermined::NoPeer)?;
        let values = request
            .headers()
            .get_all(&self.header)
            .map(|value| value.as_bytes());
        self.resolve(peer.ip(), values)
    }

    /// Decides the client address from the TCP `peer` and the values of every occurrence of
    /// the forwarding header, in the order received.
    ///
    /// # Errors
    ///
    /// An [`Undetermined`] reason when the client cannot be known.
    pub fn resolve<'a>(
        &self,
        peer: IpAddr,
        header_values: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<IpAddr, Undetermined> {
        let peer = canonical(peer);
        if !self.is_trusted(peer) {
            return Ok(peer);
        }

        let values: Vec<&[u8]> = header_values.into_iter().collect();
        if values.is_empty() {
            return Err(Undetermined::MissingHeader);
        }

        // Walk the occurrences from the last, and each occurrence's entries from the right.
        let mut inspected = 0;
        for value in values.iter().rev() {
            let text = std::str::from_utf8(value).map_err(|_| Undetermined::InvalidEntry)?;
            for entry in text.rsplit(',') {
                inspected += 1;
                if inspected > MAX_HOPS {
                    return Err(Undetermined::TooManyHops);
                }
                let ip = parse_entry(entry).ok_or(Undetermined::InvalidEntry)?;
                if !self.is_trusted(ip) {
                    return Ok(ip);
                }
            }
        }
        Err(Undetermined::OnlyTrustedHops)
    }
}

/// Canonicalises an address: an IPv4-mapped IPv6 address becomes the IPv4 address it carries.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Parses one forwarding-header entry into a canonical address, or `None`.
pub fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim_matches([' ', '\t']);
    if entry.is_empty() {
        return None;
    }

    if let Some(rest) = entry.strip_prefix('[') {
        // `[v6]` or `[v6]:port`.
        let (inner, after) = rest.split_once(']')?;
        if !(after.is_empty() || is_port(after.strip_prefix(':')?)) {
            return None;
        }
        return inner
            .parse::<Ipv6Addr>()
            .ok()
            .map(|ip| canonical(IpAddr::V6(ip)));
    }

    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(canonical(ip));
    }

    // `v4:port`. A bare IPv6 address with a port is ambiguous and was handled above only in
    // brackets.
    let (host, port) = entry.split_once(':')?;
    if !is_port(port) {
        return None;
    }
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

fn is_port(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 5
        && text.bytes().all(|b| b.is_ascii_digit())
        && text.parse::<u16>().is_ok()
}

/// Canonicalises a socket address's IP part, for logging a peer.
pub fn canonical_socket(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical(addr.ip()), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn resolver(trusted: &[&str]) -> ClientAddressResolver {
        ClientAddressResolver::new(
            trusted.iter().map(|net| net.parse().unwrap()).collect(),
            HeaderName::from_static("x-forwarded-for"),
        )
    }

    fn resolve(
        r: &ClientAddressResolver,
        peer: &str,
        values: &[&str],
    ) -> Result<IpAddr, Undetermined> {
        r.resolve(ip(peer), values.iter().map(|v| v.as_bytes()))
    }

    #[test]
    fn untrusted_peer_ignores_header() {
        let r = resolver(&["10.0.0.0/8"]);
        assert_eq!(
            resolve(&r, "198.51.100.9", &["1.2.3.4"]),
            Ok(ip("198.51.100.9"))
        );
        assert_eq!(resolve(&r, "198.51.100.9", &[]), Ok(ip("198.51.100.9")));
        assert_eq!(
            resolve(&r, "198.51.100.9", &["garbage"]),
            Ok(ip("198.51.100.9"))
        );
    }

    #[test]
    fn mapped_peer_is_canonicalised() {
        let r = resolver(&[]);
        assert_eq!(resolve(&r, "::ffff:192.0.2.1", &[]), Ok(ip("192.0.2.1")));
        assert!(resolve(&r, "::ffff:192.0.2.1", &[]).unwrap().is_ipv4());
        // A mapped peer inside a trusted IPv4 range is trusted.
        let r = resolver(&["10.0.0.0/8"]);
        assert_eq!(
            resolve(&r, "::ffff:10.1.1.1", &["203.0.113.5"]),
            Ok(ip("203.0.113.5"))
        );
    }

    #[test]
    fn trusted_peer_without_header_is_undetermined() {
        let r = resolver(&["10.0.0.0/8"]);
        assert_eq!(
            resolve(&r, "10.0.0.2", &[]),
            Err(Undetermined::MissingHeader)
        );
    }

    #[test]
    fn walk_takes_rightmost_untrusted() {
        let r = resolver(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        assert_eq!(
            resolve(&r, "10.0.0.2", &["203.0.113.5"]),
            Ok(ip("203.0.113.5"))
        );
        // The leftmost entry is what the client wrote itself; the rightmost untrusted wins.
        assert_eq!(
            resolve(&r, "10.0.0.2", &["6.6.6.6, 203.0.113.5, 10.0.0.7"]),
            Ok(ip("203.0.113.5"))
        );
        assert_eq!(
            resolve(&r, "10.0.0.2", &["6.6.6.6,203.0.113.5,2001:db8:ffff::1"]),
            Ok(ip("203.0.113.5"))
        );
    }

    #[test]
    fn walk_spans_header_occurrences() {
        let r = resolver(&["10.0.0.0/8"]);
        // The second occurrence is read first (it is further right in the combined list).
        assert_eq!(
            resolve(&r, "10.0.0.2", &["203.0.113.5", "10.0.0.9, 10.0.0.8"]),
            Ok(ip("203.0.113.5"))
        );
        assert_eq!(
            resolve(&r, "10.0.0.2", &["203.0.113.5", "198.51.100.1"]),
            Ok(ip("198.51.100.1"))
        );
    }

    #[test]
    fn invalid_entry_is_undetermined() {
        let r = resolver(&["10.0.0.0/8"]);
        for value in [
            "unknown",
            "",
            " , ",
            "203.0.113.5,",
            "example.com",
            "fe80::1%eth0",
            "01.2.3.4",
            "1.2.3",
            "for=203.0.113.5",
            "203.0.113.5:99999",
            "203.0.113.5:",
            "2001:db8::1:80x",
            "[2001:db8::1",
            "[2001:db8::1]x",
            "[203.0.113.5]",
            "203.0.113.5/32",
        ] {
            assert_eq!(
                resolve(&r, "10.0.0.2", &[value]),
                Err(Undetermined::InvalidEntry),
                "entry {value:?}"
            );
        }
        // Never the proxy's own address, even when a valid entry sits further left.
        assert_eq!(
            resolve(&r, "10.0.0.2", &["203.0.113.5, bogus"]),
            Err(Undetermined::InvalidEntry)
        );
    }

    #[test]
    fn invalid_entry_beyond_client_is_ignored() {
        let r = resolver(&["10.0.0.0/8"]);
        // The walk stops at the first untrusted entry, so what lies left of it is not read.
        assert_eq!(
            resolve(&r, "10.0.0.2", &["bogus, 203.0.113.5"]),
            Ok(ip("203.0.113.5"))
        );
    }

    #[test]
    fn non_utf8_header_is_undetermined() {
        let r = resolver(&["10.0.0.0/8"]);
        let value: &[u8] = b"203.0.113.5\xff";
        assert_eq!(
            r.resolve(ip("10.0.0.2"), [value]),
            Err(Undetermined::InvalidEntry)
        );
    }

    #[test]
    fn only_trusted_hops_is_undetermined() {
        let r = resolver(&["10.0.0.0/8"]);
        assert_eq!(
            resolve(&r, "10.0.0.2", &["10.0.0.3, 10.0.0.4"]),
            Err(Undetermined::OnlyTrustedHops)
        );
    }

    #[test]
    fn hop_count_is_bounded() {
        let r = resolver(&["10.0.0.0/8"]);
        let mut hops = vec!["203.0.113.5".to_owned()];
        hops.extend((0..MAX_HOPS).map(|i| format!("10.0.0.{}", i % 250)));
        let value = hops.join(",");
        assert_eq!(
            resolve(&r, "10.0.0.2", &[&value]),
            Err(Undetermined::TooManyHops)
        );
        // One hop fewer reaches the client.
        let value = hops[..MAX_HOPS].join(",");
        assert_eq!(resolve(&r, "10.0.0.2", &[&value]), Ok(ip("203.0.113.5")));
    }

    #[test]
    fn entry_forms_parse() {
        assert_eq!(parse_entry("203.0.113.5"), Some(ip("203.0.113.5")));
        assert_eq!(parse_entry(" \t203.0.113.5 "), Some(ip("203.0.113.5")));
        assert_eq!(parse_entry("203.0.113.5:443"), Some(ip("203.0.113.5")));
        assert_eq!(parse_entry("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(parse_entry("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_entry("[2001:db8::1]:8443"), Some(ip("2001:db8::1")));
        assert_eq!(parse_entry("::ffff:203.0.113.5"), Some(ip("203.0.113.5")));
        assert_eq!(
            parse_entry("[::ffff:203.0.113.5]:1"),
            Some(ip("203.0.113.5"))
        );
    }

    #[test]
    fn mapped_entry_matches_ipv4_trust() {
        let r = resolver(&["10.0.0.0/8"]);
        assert_eq!(
            resolve(&r, "10.0.0.2", &["203.0.113.5, ::ffff:10.9.9.9"]),
            Ok(ip("203.0.113.5"))
        );
    }

    #[test]
    fn ipv6_peer_trust() {
        let r = resolver(&["::1/128"]);
        assert_eq!(
            resolve(&r, "::1", &["[2001:db8::5]:1234"]),
            Ok(ip("2001:db8::5"))
        );
        assert_eq!(resolve(&r, "::2", &["2001:db8::5"]), Ok(ip("::2")));
    }

    #[test]
    fn actix_request_uses_peer() {
        let r = resolver(&["127.0.0.1/32"]);
        let request = actix_web::test::TestRequest::default()
            .peer_addr("127.0.0.1:5000".parse().unwrap())
            .insert_header(("X-Forwarded-For", "203.0.113.5"))
            .to_http_request();
        assert_eq!(r.resolve_request(&request), Ok(ip("203.0.113.5")));

        let request = actix_web::test::TestRequest::default()
            .peer_addr("192.0.2.8:5000".parse().unwrap())
            .insert_header(("X-Forwarded-For", "203.0.113.5"))
            .to_http_request();
        assert_eq!(r.resolve_request(&request), Ok(ip("192.0.2.8")));

        let request = actix_web::test::TestRequest::default().to_http_request();
        assert_eq!(r.resolve_request(&request), Err(Undetermined::NoPeer));
    }
}
