//! Which network addresses outbound fetches may reach: the screening applied after DNS
//! resolution (through the client's resolver) and to IP-literal hosts.
//!
//! - `localhost` and `*.localhost` are trusted as loopback only if they resolve to loopback
//!   addresses: other addresses are dropped, so a name under `.localhost` cannot point plain
//!   http at another machine.
//! - Private (RFC 1918, RFC 6598 shared, IPv6 unique-local), link-local and unspecified addresses
//!   are refused, unless the host is a configured issuer's host ([`TrustedHosts`]) or the client
//!   allows private addresses. This keeps a tampered metadata document, or an allow-listed host
//!   whose DNS changed, from sending requests into the resource server's own network
//!   (server-side request forgery). Loopback stays reachable: development servers live there.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, PoisonError, RwLock};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Host names (lower case) whose addresses are not screened: the hosts of the configured
/// issuers. Shared by the clones of one [`HttpClient`](super::HttpClient).
#[derive(Clone, Debug, Default)]
pub(crate) struct TrustedHosts(Arc<RwLock<HashSet<String>>>);

impl TrustedHosts {
    /// Trusts `host` (a name or an IP literal as written in a URL).
    pub(crate) fn insert(&self, host: &str) {
        let host = normalise(host);
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(host);
    }

    pub(crate) fn contains(&self, host: &str) -> bool {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&normalise(host))
    }
}

fn normalise(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Why an address was refused; the source of the transport error reqwest reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AddressRefused {
    pub(crate) host: String,
    pub(crate) reason: &'static str,
}

impl fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.host, self.reason)
    }
}

impl std::error::Error for AddressRefused {}

/// Whether an address is in a range outbound fetches refuse by default.
pub(crate) fn is_screened(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_screened_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(mapped) => is_screened_v4(mapped),
            None => is_screened_v6(ip),
        },
    }
}

fn is_screened_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        // RFC 6598 shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
}

fn is_screened_v6(ip: Ipv6Addr) -> bool {
    ip.is_unspecified() || ip.is_unique_local() || ip.is_unicast_link_local()
}

/// Whether `host` is `localhost` or a name under `.localhost` (RFC 6761).
pub(crate) fn is_localhost_name(host: &str) -> bool {
    let host = normalise(host);
    host == "localhost" || host.ends_with(".localhost")
}

/// The addresses of `host` that may be used, or why none may.
pub(crate) fn screen(
    host: &str,
    addresses: Vec<SocketAddr>,
    trusted: &TrustedHosts,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, AddressRefused> {
    let refused = |reason| AddressRefused {
        host: host.to_owned(),
        reason,
    };
    if is_localhost_name(host) {
        let loopback: Vec<SocketAddr> = addresses
            .into_iter()
            .filter(|a| a.ip().is_loopback())
            .collect();
        return if loopback.is_empty() {
            Err(refused("does not resolve to a loopback address"))
        } else {
            Ok(loopback)
        };
    }
    if allow_private || trusted.contains(host) {
        return Ok(addresses);
    }
    let public: Vec<SocketAddr> = addresses
        .into_iter()
        .filter(|a| !is_screened(a.ip()))
        .collect();
    if public.is_empty() {
        Err(refused(
            "resolves only to private, link-local or unspecified addresses; if this server is \
             on your private network, call `HttpClientBuilder::allow_private_addresses(true)`",
        ))
    } else {
        Ok(public)
    }
}

/// The system resolver, with [`screen`] applied to its answers.
#[derive(Debug, Clone)]
pub(crate) struct ScreeningResolver {
    pub(crate) trusted: TrustedHosts,
    pub(crate) allow_private: bool,
}

impl Resolve for ScreeningResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // Port 0: reqwest puts the URL's port in.
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = screen(&host, found, &this.trusted, this.allow_private)?;
            let addresses: Addrs = Box::new(allowed.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter()
            .map(|ip| SocketAddr::new(ip.parse().unwrap(), 443))
            .collect()
    }

    #[test]
    fn private_link_local_and_unspecified_ranges_are_screened() {
        for ip in [
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "100.127.255.255",
            "255.255.255.255",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(is_screened(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "::1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_screened(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn private_answers_are_dropped_and_an_all_private_answer_is_refused() {
        let trusted = TrustedHosts::default();
        assert_eq!(
            screen(
                "keys.example.com",
                addrs(&["10.0.0.7", "93.184.216.34"]),
                &trusted,
                false
            ),
            Ok(addrs(&["93.184.216.34"]))
        );
        let refused =
            screen("keys.example.com", addrs(&["10.0.0.7"]), &trusted, false).unwrap_err();
        assert!(
            refused.to_string().contains("allow_private_addresses"),
            "{refused}"
        );
    }

    #[test]
    fn an_issuer_host_or_an_explicit_allowance_skips_the_screening() {
        let trusted = TrustedHosts::default();
        trusted.insert("Auth.Internal.Example");
        assert_eq!(
            screen(
                "auth.internal.example",
                addrs(&["10.0.0.7"]),
                &trusted,
                false
            ),
            Ok(addrs(&["10.0.0.7"]))
        );
        assert_eq!(
            screen("other.example", addrs(&["192.168.0.2"]), &trusted, true),
            Ok(addrs(&["192.168.0.2"]))
        );
    }

    #[test]
    fn names_under_localhost_are_loopback_only_after_resolution() {
        let trusted = TrustedHosts::default();
        // Even a trusted or allowed name under .localhost keeps only its loopback addresses.
        trusted.insert("evil.localhost");
        assert_eq!(
            screen(
                "evil.localhost",
                addrs(&["127.0.0.1", "203.0.113.9"]),
                &trusted,
                true
            ),
            Ok(addrs(&["127.0.0.1"]))
        );
        let refused =
            screen("evil.localhost", addrs(&["203.0.113.9"]), &trusted, true).unwrap_err();
        assert_eq!(refused.reason, "does not resolve to a loopback address");
        assert!(is_localhost_name("localhost."));
        assert!(is_localhost_name("a.b.LOCALHOST"));
        assert!(!is_localhost_name("localhost.example.com"));
    }
}
