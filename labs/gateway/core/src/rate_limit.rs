//! A GCRA rate limiter with bounded memory: one number per client, time passed in.
//!
//! This is the lab's second graded part (the learner's copy is
//! `labs/gateway/exercise/rate_limit.rs`).
//!
//! GCRA, the Generic Cell Rate Algorithm from ATM networks, is a token bucket that stores a
//! single timestamp per client instead of a token count and a refill time: the
//! *theoretical arrival time* (TAT), the moment the client's bucket would be full again if
//! it stopped sending. A request is allowed when taking one more "emission interval" `T`
//! from the bucket would not push the TAT further than `burst × T` into the future.
//! It is what the `governor` crate and Redis' `redis-cell` implement.
//!
//! Because a client whose TAT has passed is indistinguishable from a client never seen,
//! forgetting it changes nothing: that is what makes eviction safe, and memory bounded
//! under a flood of distinct clients. [`RateLimiter::poll_timeout`] says when the next
//! client can be forgotten, so a driver sleeps until then instead of sweeping on a tick.
//!
//! Driven as a [`Machine`], a check is an input, its decision an output, and a timeout that
//! forgets clients says how many.

use std::collections::{HashMap, VecDeque};

use crate::limit::{Decision, LimitError, LimiterInput, LimiterOutput, RateLimitConfig};
use crate::{Machine, Millis};

// ANCHOR: limiter
/// Per-client GCRA state: client key → TAT, in microseconds on the driver's clock.
///
/// Microseconds, not milliseconds, so that "3 per second" is 333 333 µs per request
/// rather than a rounded 333 ms that would admit 3.003 per second.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    config: RateLimitConfig,
    /// `T`: the time one request "costs".
    emission_interval_us: u64,
    /// `burst × T`: how far ahead of now a client's TAT may run.
    capacity_us: u64,
    tats: HashMap<String, u64>,
    /// What the limiter said when driven as a [`Machine`], oldest first.
    outputs: VecDeque<LimiterOutput>,
}

impl RateLimiter {
    /// A limiter for `config`; refuses zeros and rates finer than a microsecond.
    pub fn new(config: RateLimitConfig) -> Result<Self, LimitError> {
        for (field, is_zero) in [
            ("requests", config.requests == 0),
            ("per", config.per == Millis::ZERO),
            ("burst", config.burst == 0),
            ("max_clients", config.max_clients == 0),
        ] {
            if is_zero {
                return Err(LimitError::Zero { field });
            }
        }
        let emission_interval_us = config.per.0.saturating_mul(1000) / u64::from(config.requests);
        if emission_interval_us == 0 {
            return Err(LimitError::TooFast {
                requests: config.requests,
                per: config.per,
            });
        }
        Ok(Self {
            capacity_us: emission_interval_us.saturating_mul(u64::from(config.burst)),
            emission_interval_us,
            tats: HashMap::new(),
            outputs: VecDeque::new(),
            config,
        })
    }

    /// The configuration this limiter was built with.
    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// Decides one request from `client` at `now`, and counts it if allowed.
    pub fn check(&mut self, client: &str, now: Millis) -> Decision {
        let now_us = now.0.saturating_mul(1000);
        // A client never seen (or forgotten) has a full bucket: its TAT is "now".
        let tat = self.tats.get(client).copied().unwrap_or(now_us).max(now_us);
        let new_tat = tat.saturating_add(self.emission_interval_us);
        let ahead = new_tat - now_us;
        if ahead > self.capacity_us {
            // Allowed once the TAT has fallen back to `capacity` ahead of now.
            return Decision::Limited {
                retry_after: ceil_millis(ahead - self.capacity_us),
                reset_after: ceil_millis(tat - now_us),
            };
        }
        if let Some(stored) = self.tats.get_mut(client) {
            *stored = new_tat;
        } else {
            if self.tats.len() >= self.config.max_clients {
                self.make_room(now_us);
            }
            self.tats.insert(client.to_owned(), new_tat);
        }
        let remaining = (self.capacity_us - ahead) / self.emission_interval_us;
        Decision::Allowed {
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            reset_after: ceil_millis(ahead),
        }
    }

    /// Forgets every client whose bucket is full again; returns how many.
    ///
    /// Call it when [`poll_timeout`](Self::poll_timeout) says (the gateway does): it
    /// changes no decision, only frees memory. (Driven as a [`Machine`], the count comes
    /// out as [`LimiterOutput::Forgotten`] instead.)
    pub fn handle_timeout(&mut self, now: Millis) -> usize {
        let now_us = now.0.saturating_mul(1000);
        let before = self.tats.len();
        self.tats.retain(|_, tat| *tat > now_us);
        before - self.tats.len()
    }

    /// When [`handle_timeout`](Self::handle_timeout) would next forget a client: the
    /// earliest TAT, rounded up to the millisecond (a TAT of 333 333 µs is a full bucket at
    /// 334 ms, not yet at 333); `None` when nobody is remembered. It reads every client, so
    /// ask it after a sweep, not on every request.
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.tats.values().min().map(|&tat| ceil_millis(tat))
    }

    /// How many clients are remembered.
    pub fn len(&self) -> usize {
        self.tats.len()
    }

    /// Whether no client is remembered.
    pub fn is_empty(&self) -> bool {
        self.tats.is_empty()
    }

    /// Frees at least a quarter of the table, so a flood pays for one sweep per
    /// `max_clients / 4` new clients rather than one per request.
    fn make_room(&mut self, now_us: u64) {
        self.tats.retain(|_, tat| *tat > now_us);
        let max = self.config.max_clients;
        let target = max - (max / 4).max(1);
        if self.tats.len() <= target {
            return;
        }
        // Still too full: forget the clients closest to a full bucket. Each one forgotten
        // gets its full burst back early — a small, bounded leniency, the price of bounded
        // memory. (The alternative, refusing new clients, lets a flood lock everyone out.)
        let excess = self.tats.len() - target;
        let mut tats: Vec<u64> = self.tats.values().copied().collect();
        let (_, cutoff, _) = tats.select_nth_unstable(excess - 1);
        let cutoff = *cutoff;
        self.tats.retain(|_, tat| *tat > cutoff);
    }
}
// ANCHOR_END: limiter

// ANCHOR: limiter_machine
/// The limiter in the vocabulary every core shares: each call goes to the method above of the
/// same name (a check to [`RateLimiter::check`]), and what it answers is queued.
impl Machine for RateLimiter {
    type Input = LimiterInput;
    type Output = LimiterOutput;
    type Error = core::convert::Infallible;

    fn handle_input(&mut self, now: Millis, input: LimiterInput) -> Result<(), Self::Error> {
        let LimiterInput::Check { client } = input;
        let decision = self.check(&client, now);
        self.outputs
            .push_back(LimiterOutput::Decided { client, decision });
        Ok(())
    }

    fn handle_timeout(&mut self, now: Millis) {
        let clients = RateLimiter::handle_timeout(self, now);
        if clients > 0 {
            self.outputs.push_back(LimiterOutput::Forgotten { clients });
        }
    }

    fn poll_output(&mut self) -> Option<LimiterOutput> {
        self.outputs.pop_front()
    }

    fn poll_timeout(&self) -> Option<Millis> {
        RateLimiter::poll_timeout(self)
    }
}
// ANCHOR_END: limiter_machine

fn ceil_millis(us: u64) -> Millis {
    Millis(us.div_ceil(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(requests: u32, per_ms: u64, burst: u32, max_clients: usize) -> RateLimiter {
        RateLimiter::new(RateLimitConfig {
            requests,
            per: Millis(per_ms),
            burst,
            max_clients,
        })
        .expect("valid config")
    }

    #[test]
    fn admits_a_burst_then_one_per_interval() {
        let mut limiter = limiter(10, 1000, 3, 100);
        for left in [2, 1, 0] {
            assert_eq!(
                limiter.check("a", Millis(0)),
                Decision::Allowed {
                    remaining: left,
                    reset_after: Millis(100 * (3 - u64::from(left)))
                }
            );
        }
        assert_eq!(
            limiter.check("a", Millis(0)),
            Decision::Limited {
                retry_after: Millis(100),
                reset_after: Millis(300)
            }
        );
        assert!(limiter.check("a", Millis(100)).is_allowed());
        assert!(!limiter.check("a", Millis(150)).is_allowed());
        assert!(limiter.check("b", Millis(150)).is_allowed());
    }

    #[test]
    fn memory_stays_bounded() {
        let mut limiter = limiter(1, 60_000, 1, 1000);
        for i in 0..100_000 {
            limiter.check(&format!("client-{i}"), Millis(0));
            assert!(limiter.len() <= 1000);
        }
        let remembered = limiter.len();
        assert_eq!(limiter.handle_timeout(Millis(60_000)), remembered);
        assert!(limiter.is_empty());
    }

    #[test]
    fn refuses_zero_configs() {
        assert!(matches!(
            RateLimiter::new(RateLimitConfig {
                burst: 0,
                ..RateLimitConfig::default()
            }),
            Err(LimitError::Zero { field: "burst" })
        ));
        assert!(matches!(
            RateLimiter::new(RateLimitConfig {
                requests: 10_000,
                per: Millis(1),
                ..RateLimitConfig::default()
            }),
            Err(LimitError::TooFast { .. })
        ));
    }
}
