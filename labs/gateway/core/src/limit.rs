//! The vocabulary of rate limiting: the limiter's configuration and its answer.
//!
//! Shared by the reference GCRA (`rate_limit.rs`) and the learner's copy
//! (`labs/gateway/exercise/rate_limit.rs`).

use crate::Millis;
use serde::{Deserialize, Serialize};
use thiserror::Error;

// ANCHOR: rate_limit_config
/// How fast each client may go, and how many clients the limiter remembers.
///
/// `requests` per `per` is the sustained rate; `burst` is how many requests a client that
/// has been quiet may send at once. `requests = 10, per = 1s, burst = 5` admits 5 at once,
/// then one every 100 ms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitConfig {
    /// Requests admitted per `per`, sustained.
    pub requests: u32,
    /// The period of the sustained rate.
    pub per: Millis,
    /// Requests admitted back to back by a client with a full bucket.
    pub burst: u32,
    /// The most clients remembered at once; beyond it the least constrained are forgotten.
    pub max_clients: usize,
}
// ANCHOR_END: rate_limit_config

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            requests: 10,
            per: Millis::from_secs(1),
            burst: 10,
            max_clients: 10_000,
        }
    }
}

/// A configuration the limiter cannot work with.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum LimitError {
    /// `requests`, `burst`, `per` and `max_clients` must all be above zero.
    #[error("rate limit field `{field}` must be greater than zero")]
    Zero {
        /// The offending field.
        field: &'static str,
    },
    /// `per / requests` is below one microsecond, which the limiter cannot represent.
    #[error("{requests} requests per {per} is faster than one per microsecond")]
    TooFast {
        /// The configured requests.
        requests: u32,
        /// The configured period.
        per: Millis,
    },
}

// ANCHOR: decision
/// The limiter's answer for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Let it through.
    Allowed {
        /// How many more requests the client could send right now.
        remaining: u32,
        /// When the client's bucket would be full again if it sent nothing more.
        reset_after: Millis,
    },
    /// Refuse it (HTTP 429).
    Limited {
        /// The earliest moment the same request would be allowed.
        retry_after: Millis,
        /// When the client's bucket would be full again if it sent nothing more.
        reset_after: Millis,
    },
}
// ANCHOR_END: decision

impl Decision {
    /// Whether the request may pass.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }
}

// ANCHOR: limiter_machine_words
/// What a driver feeds the limiter when it drives it as a [`Machine`](crate::Machine).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimiterInput {
    /// A request from `client`: decide it, as [`RateLimiter::check`](crate::RateLimiter::check) does.
    Check {
        /// The client's key (an address, a token's subject).
        client: String,
    },
}

/// What the limiter says when it is driven as a [`Machine`](crate::Machine).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimiterOutput {
    /// The answer to [`LimiterInput::Check`].
    Decided {
        /// The client the request came from.
        client: String,
        /// Allowed or limited.
        decision: Decision,
    },
    /// A timeout forgot this many clients whose buckets were full again.
    Forgotten {
        /// How many were forgotten (never zero: a timeout that forgets nobody says nothing).
        clients: usize,
    },
}
// ANCHOR_END: limiter_machine_words
