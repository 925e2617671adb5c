//! The server's base URL, restricted to loopback.
//!
//! # Accepted hosts
//!
//! `localhost`, any address in `127.0.0.0/8`, `::1`, and `::ffff:127.x.y.z` (an IPv4 loopback
//! address in IPv4-mapped form). Only `http` is accepted: a loopback server needs no TLS, and
//! refusing `https` keeps a mistyped public name from being tried at all.

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

/// A base URL of a server on this machine, such as `http://127.0.0.1:8080`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl(Url);

/// A server URL that is not a plain `http://` URL of a loopback host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing server URL `{url}`: {reason}")]
pub struct NotLoopback {
    url: String,
    reason: &'static str,
}

impl ServerUrl {
    /// Parses `text` and checks that it names a loopback host over `http`, with no path beyond
    /// `/`, no query and no credentials.
    ///
    /// # Errors
    ///
    /// [`NotLoopback`] naming the URL and what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, NotLoopback> {
        let refuse = |reason| NotLoopback {
            url: text.chars().take(120).collect(),
            reason,
        };
        let url =
            Url::parse(text).map_err(|_| refuse("not a URL: write `http://127.0.0.1:PORT`"))?;
        if url.scheme() != "http" {
            return Err(refuse("only `http://` is used for a loopback server"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("credentials in the URL are not accepted"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(refuse("give the base URL without a path or query"));
        }
        let loopback = match url.host() {
            Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => {
                ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
            None => false,
        };
        if !loopback {
            return Err(refuse(
                "the host must be `localhost`, an address in 127.0.0.0/8 or `::1`",
            ));
        }
        Ok(Self(url))
    }

    /// Builds the URL of `path` (which starts with `/`) on this server.
    pub fn join(&self, path: &str) -> String {
        let base = self.0.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }

    /// Returns the host as an address, when it is written as one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.0.host()? {
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            Host::Domain(_) => None,
        }
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str().trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn loopback_hosts_are_accepted() {
        for text in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3:9",
            "http://localhost:8080/",
            "http://LOCALHOST:1",
            "http://[::1]:8080",
            "http://[::ffff:127.0.0.1]:8080",
        ] {
            assert!(ServerUrl::parse(text).is_ok(), "{text}");
        }
        let url = ServerUrl::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            url.join("/v1/secret/sk_x"),
            "http://127.0.0.1:8080/v1/secret/sk_x"
        );
        assert_eq!(url.to_string(), "http://127.0.0.1:8080");
    }

    #[test]
    fn other_hosts_are_refused_with_the_reason() {
        let cases = [
            ("http://10.0.0.1:8080", "the host must be"),
            ("http://example.com", "the host must be"),
            ("http://localhost.example.com", "the host must be"),
            ("http://128.0.0.1", "the host must be"),
            ("http://[::2]:80", "the host must be"),
            ("http://0.0.0.0:8080", "the host must be"),
            ("https://127.0.0.1:8443", "only `http://`"),
            ("http://user:pw@127.0.0.1", "credentials"),
            ("http://127.0.0.1/v1", "without a path"),
            ("127.0.0.1:8080", "not a URL"),
        ];
        for (text, reason) in cases {
            let error = ServerUrl::parse(text).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("refusing server URL `{text}`")),
                "{error}"
            );
            assert!(error.contains(reason), "{text}: {error}");
        }
    }
}
