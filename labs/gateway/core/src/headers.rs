//! Proxy-header rules as pure functions: which headers die at the gateway, and who the
//! client really is.
//!
//! They work on plain strings and addresses (no `http` types) so the fuzz target and the
//! property tests can hammer them without a server, and the lab applies them to real
//! requests in `lab-gateway`'s `forward` module.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

// ANCHOR: hop_by_hop
/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the
/// non-standard `Proxy-Connection`. A proxy must not forward them: passing `Upgrade` or
/// `Transfer-Encoding` through is how request smuggling and accidental WebSocket upgrades
/// start.
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The extra header names a `Connection` header lists (`Connection: close, X-Secret` makes
/// `x-secret` hop-by-hop too), lower-cased. Names already in [`HOP_BY_HOP`] and the `close`
/// option are left out, so the everyday `Connection: keep-alive` costs no allocation;
/// anything that is not a valid token is ignored.
pub fn connection_named<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    values
        .into_iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|token| !token.is_empty() && token.bytes().all(is_token_byte))
        .filter(|token| {
            !token.eq_ignore_ascii_case("close")
                && !HOP_BY_HOP.iter().any(|hop| hop.eq_ignore_ascii_case(token))
        })
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Whether `name` must be removed before forwarding, given the `Connection`-named headers.
pub fn is_hop_by_hop(name: &str, connection_named: &[String]) -> bool {
    HOP_BY_HOP.iter().any(|hop| hop.eq_ignore_ascii_case(name))
        || connection_named
            .iter()
            .any(|named| named.eq_ignore_ascii_case(name))
}
// ANCHOR_END: hop_by_hop

/// RFC 9110 `tchar`.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// An address range such as `10.0.0.0/8` or `::1/128`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

/// A CIDR that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{0:?} is not an address or an address range such as 10.0.0.0/8")]
pub struct CidrError(pub String);

impl Cidr {
    /// Parses `a.b.c.d/n`, `x::y/n`, or a bare address (a range of one).
    pub fn parse(text: &str) -> Result<Self, CidrError> {
        let error = || CidrError(text.to_owned());
        let (address, prefix_len) = match text.split_once('/') {
            Some((address, len)) => (address, Some(len.parse::<u8>().map_err(|_| error())?)),
            None => (text, None),
        };
        let network: IpAddr = address.trim().parse().map_err(|_| error())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix_len = prefix_len.unwrap_or(max);
        if prefix_len > max {
            return Err(error());
        }
        Ok(Self {
            network,
            prefix_len,
        })
    }

    /// Whether `ip` is inside this range (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl TryFrom<String> for Cidr {
    type Error = CidrError;
    fn try_from(text: String) -> Result<Self, CidrError> {
        Cidr::parse(&text)
    }
}

impl From<Cidr> for String {
    fn from(cidr: Cidr) -> String {
        format!("{}/{}", cidr.network, cidr.prefix_len)
    }
}

// ANCHOR: client_ip
/// Who the client is, given the TCP peer and the `X-Forwarded-For` values it sent.
///
/// `X-Forwarded-For` is a list anyone can write to: only the entries appended by proxies we
/// trust mean anything. So walk it from the right (the most recent hop) while the hop that
/// appended each entry is trusted; the first address not in `trusted` is the client. A peer
/// we do not trust gets no say at all: its header is ignored and the peer is the client.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &[Cidr],
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|cidr| cidr.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let entries: Vec<&str> = forwarded_for
        .into_iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            // Garbage written by someone: the last hop we could vouch for is the client.
            Err(_) => break,
        }
    }
    client
}

/// The `X-Forwarded-For` value to send upstream: the chain so far (only if the peer is a
/// trusted proxy, otherwise it is a forgery) with the peer appended.
pub fn forwarded_for_upstream<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &[Cidr],
) -> String {
    let mut chain: Vec<String> = Vec::new();
    if trusted.iter().any(|cidr| cidr.contains(peer)) {
        chain.extend(
            forwarded_for
                .into_iter()
                .flat_map(|value| value.split(','))
                .map(str::trim)
                .filter(|entry| entry.parse::<IpAddr>().is_ok())
                .map(str::to_owned),
        );
    }
    chain.push(peer.to_string());
    chain.join(", ")
}
// ANCHOR_END: client_ip

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn connection_names_more_hop_by_hop_headers() {
        let named = connection_named(["close, X-Secret", " keep-alive ,bad header"]);
        assert_eq!(named, ["x-secret"]);
        assert!(is_hop_by_hop("keep-alive", &named));
        assert!(is_hop_by_hop("X-Secret", &named));
        assert!(is_hop_by_hop("Transfer-Encoding", &[]));
        assert!(!is_hop_by_hop("content-type", &named));
    }

    #[test]
    fn cidrs_parse_and_contain() {
        let net = Cidr::parse("10.0.0.0/8").expect("valid");
        assert!(net.contains(ip("10.1.2.3")));
        assert!(net.contains(ip("::ffff:10.1.2.3")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .expect("valid")
                .contains(ip("1.2.3.4"))
        );
        assert!(Cidr::parse("::1").expect("valid").contains(ip("::1")));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nonsense").is_err());
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_hops() {
        let trusted = [Cidr::parse("10.0.0.0/8").expect("valid")];
        // An untrusted peer cannot claim to be someone else.
        assert_eq!(
            client_ip(ip("203.0.113.9"), ["1.1.1.1"], &trusted),
            ip("203.0.113.9")
        );
        // A trusted proxy vouches for the entry it appended; the forged left part is ignored.
        assert_eq!(
            client_ip(
                ip("10.0.0.2"),
                ["6.6.6.6, 198.51.100.7, 10.0.0.5"],
                &trusted
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), ["garbage"], &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            forwarded_for_upstream(ip("203.0.113.9"), ["1.1.1.1"], &trusted),
            "203.0.113.9"
        );
        assert_eq!(
            forwarded_for_upstream(ip("10.0.0.2"), ["198.51.100.7, junk"], &trusted),
            "198.51.100.7, 10.0.0.2"
        );
    }
}
