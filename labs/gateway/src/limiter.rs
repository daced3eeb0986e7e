//! The rate limiter shared by every connection: the core's GCRA, sharded behind locks.
//!
//! The core [`RateLimiter`] is a plain `&mut self` value; the gateway needs it from many
//! tasks at once. One lock around one limiter would serialize every request, so the
//! clients are spread over shards by a hash of their key, each with its own lock and its
//! share of the memory bound. Time comes from tokio's clock, so a paused-clock test moves it.

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderValue};
use gateway_core::{Decision, LimitError, Millis, RateLimitConfig, RateLimiter};
use parking_lot::Mutex;

use crate::config::RateLimitSection;

const SHARDS: usize = 16;

/// A thread-safe, sharded GCRA limiter.
#[derive(Debug)]
pub struct SharedLimiter {
    shards: Box<[Mutex<RateLimiter>]>,
    hasher: RandomState,
    epoch: tokio::time::Instant,
    burst: u32,
}

impl SharedLimiter {
    /// A limiter for the configured rate; `max_clients` is split over the shards.
    pub fn new(section: &RateLimitSection) -> Result<Self, LimitError> {
        let per_shard = section.max_clients.div_ceil(SHARDS).max(1);
        let shards = (0..SHARDS)
            .map(|_| {
                RateLimiter::new(RateLimitConfig {
                    requests: section.requests,
                    per: Millis(section.per_ms),
                    burst: section.burst,
                    max_clients: per_shard,
                })
                .map(Mutex::new)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            shards: shards.into_boxed_slice(),
            hasher: RandomState::new(),
            epoch: tokio::time::Instant::now(),
            burst: section.burst,
        })
    }

    fn now(&self) -> Millis {
        Millis(u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// Decides one request from `client`.
    pub fn check(&self, client: &str) -> Decision {
        let shard = self.hasher.hash_one(client) as usize % SHARDS;
        self.shards[shard].lock().check(client, self.now())
    }

    /// Decides one request from a client address (see [`AddressKey`]). The shard comes from
    /// the address bits by a multiplication instead of a second hash, so the check costs the
    /// limiter's own map lookup and little more.
    pub fn check_address(&self, ip: IpAddr) -> Decision {
        let key = AddressKey::of(ip);
        let shard = (key.bits.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize % SHARDS;
        self.shards[shard].lock().check(key.as_str(), self.now())
    }

    /// Forgets clients whose buckets are full (the gateway calls this once a second).
    pub fn purge(&self) -> usize {
        let now = self.now();
        self.shards
            .iter()
            .map(|shard| shard.lock().handle_timeout(now))
            .sum()
    }

    /// How many clients are remembered across all shards.
    pub fn remembered(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().len()).sum()
    }

    // ANCHOR: ratelimit_headers
    /// Writes the `RateLimit-*` headers (IETF draft) for a decision, and `Retry-After` for
    /// a refusal, so well-behaved clients can pace themselves instead of hammering.
    pub fn write_headers(&self, decision: &Decision, headers: &mut HeaderMap) {
        let (remaining, reset) = match decision {
            Decision::Allowed {
                remaining,
                reset_after,
            } => (*remaining, *reset_after),
            Decision::Limited {
                retry_after,
                reset_after,
            } => {
                headers.insert(
                    "retry-after",
                    HeaderValue::from(retry_after.as_secs_ceil().max(1)),
                );
                (0, *reset_after)
            }
        };
        headers.insert("ratelimit-limit", HeaderValue::from(self.burst));
        headers.insert("ratelimit-remaining", HeaderValue::from(remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(reset.as_secs_ceil()));
    }
    // ANCHOR_END: ratelimit_headers
}

// ANCHOR: address_key
/// The key of a client address for the per-address limit: an IPv4 address as it is, an IPv6
/// address by its /64 (one customer's network: a client can pick any address in it). It is
/// written in hex on the stack, so the check before authentication allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressKey {
    text: [u8; 17],
    len: u8,
    /// The address (IPv4) or its /64 (IPv6) as a number.
    bits: u64,
}

impl AddressKey {
    /// The key of `ip` (an IPv4-mapped IPv6 address counts as the IPv4 one).
    pub fn of(ip: IpAddr) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 17];
        let (tag, bits, digits): (u8, u64, usize) = match ip.to_canonical() {
            IpAddr::V4(v4) => (b'4', u64::from(u32::from(v4)), 8),
            IpAddr::V6(v6) => (b'6', (u128::from(v6) >> 64) as u64, 16),
        };
        text[0] = tag;
        for i in 0..digits {
            let nibble = (bits >> (4 * (digits - 1 - i))) & 0xf;
            text[1 + i] = HEX[nibble as usize];
        }
        Self {
            text,
            len: 1 + digits as u8,
            bits,
        }
    }

    /// The key as the limiter stores it.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text[..usize::from(self.len)]).unwrap_or("?")
    }
}

/// How a refusal names the client: the address, or the /64 it belongs to.
pub fn address_group(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        }
    }
}
// ANCHOR_END: address_key

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_ipv6_client_is_keyed_by_its_64() {
        let key = |text: &str| AddressKey::of(text.parse().unwrap());
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("2001:db8:1:2::1").as_str(), "620010db800010002");
        assert_eq!(key("203.0.113.5").as_str(), "4cb007105");
        assert_eq!(key("::ffff:203.0.113.5"), key("203.0.113.5"));
        assert_ne!(key("203.0.113.5"), key("203.0.113.6"));
        assert_eq!(
            address_group("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(address_group("203.0.113.5".parse().unwrap()), "203.0.113.5");
    }
}
