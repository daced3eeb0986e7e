//! The rate limiter shared by every connection: the core's GCRA, sharded behind locks.
//!
//! The core [`RateLimiter`] is a plain `&mut self` value; the gateway needs it from many
//! tasks at once. One lock around one limiter would serialize every request, so the
//! clients are spread over shards by a hash of their key, each with its own lock and its
//! share of the memory bound. Time comes from lab-runtime's [`TokioClock`], so a paused-clock
//! test moves it.
//!
//! Memory comes back through [`SharedLimiter::forget_when_due`], which sleeps until the
//! earliest shard's `poll_timeout` (the next bucket full again) instead of sweeping on a
//! tick: an idle gateway does not wake at all, and a request that fills a bucket sooner than
//! the sweeper planned wakes it to plan again.

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, HeaderValue};
use gateway_core::{Decision, LimitError, Millis, RateLimitConfig, RateLimiter};
use lab_runtime::{Clock, TokioClock};
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::config::RateLimitSection;

const SHARDS: usize = 16;

/// The sweeper's pace at most: one sweep a second, however many buckets fall due, since a
/// sweep reads every client. Forgetting late changes no decision; it only holds memory longer.
const MIN_SWEEP_INTERVAL: Millis = Millis::from_secs(1);

/// What [`SharedLimiter::sleeps_until`] holds while no bucket can wake the sweeper sooner.
const NEVER_SOONER: u64 = 0;
/// What it holds while the sweeper waits for nothing, or is looking: any bucket wakes it.
const ANY_BUCKET: u64 = u64::MAX;

/// A thread-safe, sharded GCRA limiter.
#[derive(Debug)]
pub struct SharedLimiter {
    shards: Box<[Mutex<RateLimiter>]>,
    hasher: RandomState,
    clock: TokioClock,
    burst: u32,
    /// How many sweeps [`forget_when_due`](Self::forget_when_due) has made.
    sweeps: AtomicU64,
    /// When the sweeper will next sweep, in milliseconds on this limiter's clock
    /// ([`ANY_BUCKET`], [`NEVER_SOONER`]): a request whose bucket is full before it wakes
    /// the sweeper through `wake`.
    sleeps_until: AtomicU64,
    /// Wakes the sweeper to plan again.
    wake: Notify,
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
            clock: TokioClock::new(),
            burst: section.burst,
            sweeps: AtomicU64::new(0),
            sleeps_until: AtomicU64::new(ANY_BUCKET),
            wake: Notify::new(),
        })
    }

    fn now(&self) -> Millis {
        self.clock.now()
    }

    /// Decides one request from `client`.
    pub fn check(&self, client: &str) -> Decision {
        let shard = self.hasher.hash_one(client) as usize % SHARDS;
        let now = self.now();
        let decision = self.shards[shard].lock().check(client, now);
        self.wake_if_due_sooner(now, &decision);
        decision
    }

    /// Decides one request from a client address (see [`AddressKey`]). The shard comes from
    /// the address bits by a multiplication instead of a second hash, so the check costs the
    /// limiter's own map lookup and little more.
    pub fn check_address(&self, ip: IpAddr) -> Decision {
        let key = AddressKey::of(ip);
        let shard = (key.bits.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize % SHARDS;
        let now = self.now();
        let decision = self.shards[shard].lock().check(key.as_str(), now);
        self.wake_if_due_sooner(now, &decision);
        decision
    }

    /// Wakes the sweeper when an allowed request's bucket is full again before the sweeper
    /// means to wake (a refused request stores nothing). The shard's lock is released by
    /// now, so a sweeper that looked at the shard before this request has stored its plan
    /// (or [`ANY_BUCKET`], while still looking) where this reads it.
    fn wake_if_due_sooner(&self, now: Millis, decision: &Decision) {
        if let Decision::Allowed { reset_after, .. } = decision
            && (now + *reset_after).0 < self.sleeps_until.load(Ordering::Relaxed)
        {
            self.wake.notify_one();
        }
    }

    /// Forgets clients whose buckets are full, now; returns how many.
    pub fn purge(&self) -> usize {
        let now = self.now();
        self.shards
            .iter()
            .map(|shard| shard.lock().handle_timeout(now))
            .sum()
    }

    // ANCHOR: forget_when_due
    /// Forgets the clients whose buckets are full, for as long as it runs (the gateway
    /// spawns it next to the server and aborts it on shutdown). It sleeps until the earliest
    /// shard's `poll_timeout`, at most one sweep a second ([`MIN_SWEEP_INTERVAL`]), and with
    /// nobody remembered until a request comes.
    pub async fn forget_when_due(&self) {
        let mut not_before = Millis::ZERO;
        loop {
            // Looking: a bucket filled from here on wakes the sweeper to look again.
            self.sleeps_until.store(ANY_BUCKET, Ordering::SeqCst);
            let due = self
                .shards
                .iter()
                .filter_map(|shard| shard.lock().poll_timeout())
                .min();
            let wake_at = due.map(|due| due.max(not_before));
            let plan = match wake_at {
                None => ANY_BUCKET,
                Some(at) if at > not_before => at.0,
                Some(_) => NEVER_SOONER,
            };
            self.sleeps_until.store(plan, Ordering::SeqCst);
            let sleep = async {
                match wake_at {
                    Some(at) => self.clock.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = sleep => {
                    self.purge();
                    self.sweeps.fetch_add(1, Ordering::Relaxed);
                    not_before = self.now() + MIN_SWEEP_INTERVAL;
                }
                () = self.wake.notified() => {}
            }
        }
    }
    // ANCHOR_END: forget_when_due

    /// How many sweeps [`forget_when_due`](Self::forget_when_due) has made.
    pub fn sweeps(&self) -> u64 {
        self.sweeps.load(Ordering::Relaxed)
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
                    HeaderValue::from(lab_http::retry_after_secs(*retry_after)),
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
    use std::sync::Arc;
    use std::time::Duration;

    /// 10 per second (T = 100 ms): each request fills a client's bucket for 100 ms more.
    fn limiter_with_its_sweeper(burst: u32) -> (Arc<SharedLimiter>, tokio::task::JoinHandle<()>) {
        let limiter = Arc::new(
            SharedLimiter::new(&RateLimitSection {
                requests: 10,
                per_ms: 1000,
                burst,
                max_clients: 1000,
            })
            .unwrap(),
        );
        let sweeper = tokio::spawn({
            let limiter = Arc::clone(&limiter);
            async move { limiter.forget_when_due().await }
        });
        (limiter, sweeper)
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_limiter_does_not_wake_its_sweeper() {
        let (limiter, sweeper) = limiter_with_its_sweeper(1);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(
            limiter.sweeps(),
            0,
            "sweeps in a minute without a client: nothing was ever due"
        );
        sweeper.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_bucket_is_forgotten_when_it_is_full_even_after_a_long_idle() {
        let (limiter, sweeper) = limiter_with_its_sweeper(1);
        tokio::time::sleep(Duration::from_millis(10_500)).await;
        let swept = limiter.sweeps();
        assert!(limiter.check("alice").is_allowed());
        assert_eq!(limiter.remembered(), 1);
        tokio::time::sleep(Duration::from_millis(99)).await;
        assert_eq!(
            limiter.remembered(),
            1,
            "alice is remembered for the 100 ms her bucket takes to fill"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(
            (limiter.remembered(), limiter.sweeps() - swept),
            (0, 1),
            "(clients remembered, sweeps since alice came) 101 ms after her request: \
             the sleeping sweeper woke for her, once, when her bucket was full at 100 ms"
        );
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(limiter.sweeps() - swept, 1, "and it sleeps again");
        sweeper.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_bucket_full_sooner_than_the_sweeper_planned_wakes_it_to_plan_again() {
        let (limiter, sweeper) = limiter_with_its_sweeper(3);
        for _ in 0..3 {
            assert!(limiter.check("alice").is_allowed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The sweeper sleeps until 300 ms, alice's full bucket; bob's is full at 150 ms.
        assert!(limiter.check("bob").is_allowed());
        tokio::time::sleep(Duration::from_millis(101)).await;
        assert_eq!(
            (limiter.remembered(), limiter.sweeps()),
            (1, 1),
            "(clients remembered, sweeps) at 151 ms: bob was forgotten at 150 ms, alice not yet"
        );
        sweeper.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_limiter_sweeps_at_most_once_a_second() {
        let (limiter, sweeper) = limiter_with_its_sweeper(1);
        for client in 0..100 {
            assert!(limiter.check(&format!("client-{client}")).is_allowed());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            limiter.sweeps() <= 10,
            "sweeps in 10 s with a bucket due every 100 ms: {} (at most one a second)",
            limiter.sweeps()
        );
        tokio::time::sleep(Duration::from_millis(1_001)).await;
        assert_eq!(
            limiter.remembered(),
            0,
            "a second after the last request every client is forgotten"
        );
        sweeper.abort();
    }

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
