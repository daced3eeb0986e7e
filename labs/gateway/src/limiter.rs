//! The rate limiter shared by every connection: the core's GCRA, sharded behind locks.
//!
//! The core [`RateLimiter`] is a plain `&mut self` value; the gateway needs it from many
//! tasks at once. One lock around one limiter would serialize every request, so the
//! clients are spread over shards by a hash of their key, each with its own lock and its
//! share of the memory bound. Time comes from tokio's clock, so a paused-clock test moves it.

use std::hash::{BuildHasher, RandomState};

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
