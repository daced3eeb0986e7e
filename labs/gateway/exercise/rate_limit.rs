//! Exercise: build a GCRA rate limiter with bounded memory.
//!
//! This is your copy of the graded module (with `router.rs`). `cargo xtask grade gateway`
//! runs `labs/gateway/core/tests/graded.rs` against it.
//!
//! GCRA keeps one number per client: its *theoretical arrival time* (TAT), the moment its
//! bucket would be full again if it stopped sending. With `T` = the time one request
//! "costs" (`per / requests`) and a capacity of `burst × T`:
//! - a client not remembered has a full bucket (its TAT is "now");
//! - a request is allowed if `max(TAT, now) + T` is at most `capacity` ahead of now; then
//!   that becomes the new TAT;
//! - otherwise it is limited, and nothing is stored: a refused request costs nothing.
//!
//! `RateLimitConfig`, `Decision` and `LimitError` are written for you (in `limit.rs`), and
//! so are `ceil_millis` and the `Machine` impl at the bottom, which only hands each call to
//! your methods. The public signatures must stay as they are: the lab's gateway calls them.
//! The private fields are a suggested design; change them freely (keep `outputs`, which the
//! `Machine` impl uses).
//!
//! Replace each `todo!()`, one test at a time, in the order of the scorecard.
//! Read: book chapter patterns/api-gateway.md (section "The rate limiter" under "Exercise").

// The suggested fields and helpers are unused until you write the bodies.
#![allow(dead_code, unused_variables, unused_imports, unused_mut)]

use std::collections::{HashMap, VecDeque};

use crate::limit::{Decision, LimitError, LimiterInput, LimiterOutput, RateLimitConfig};
use crate::{Machine, Millis};

/// Per-client GCRA state.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    config: RateLimitConfig,
    /// Client key → TAT. Hint: store microseconds, not milliseconds (why? 3 per second).
    tats: HashMap<String, u64>,
    /// What the limiter said when driven as a `Machine` (written for you, see the bottom).
    outputs: VecDeque<LimiterOutput>,
}

impl RateLimiter {
    /// A limiter for `config`; refuses zeros and rates finer than a microsecond.
    pub fn new(config: RateLimitConfig) -> Result<Self, LimitError> {
        // TODO: `requests`, `per`, `burst` and `max_clients` must be above zero
        // (`LimitError::Zero { field: "requests" }`, ...), and `T` must be at least 1 µs
        // (`LimitError::TooFast`).
        todo!("check the config and build an empty limiter")
    }

    /// The configuration this limiter was built with.
    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// Decides one request from `client` at `now`, and counts it if allowed.
    pub fn check(&mut self, client: &str, now: Millis) -> Decision {
        // TODO: the GCRA step described at the top of this file.
        //   Allowed { remaining: how many more `T`s fit in the capacity,
        //             reset_after: new TAT − now }
        //   Limited { retry_after: when the TAT will be `capacity` ahead of now at most,
        //             reset_after: TAT − now }
        // Round microseconds *up* to milliseconds (`ceil_millis`): a client told to wait
        // 1 ms must not be early.
        //
        // TODO (memory): before remembering a *new* client when `max_clients` are already
        // remembered, make room. First forget every client whose TAT has passed (that
        // changes no decision). If that frees less than a quarter of the table, forget the
        // clients closest to a full bucket (the smallest TATs) until it does.
        todo!("decide one request")
    }

    /// Forgets every client whose bucket is full again; returns how many.
    pub fn handle_timeout(&mut self, now: Millis) -> usize {
        // TODO: a client whose TAT is not after `now` has a full bucket: forget it.
        todo!("forget the clients with full buckets")
    }

    /// When `handle_timeout` would next forget a client; `None` when nobody is remembered.
    pub fn poll_timeout(&self) -> Option<Millis> {
        // TODO: the driver sleeps until this instant, then calls `handle_timeout`. Which
        // client's bucket is full first? Its TAT is in microseconds; the answer is in
        // milliseconds. Too early costs the driver a wasted wake-up; too late keeps a
        // forgettable client in memory. Which way must you round so that `handle_timeout` at
        // exactly that instant forgets it?
        todo!("when the next bucket is full again")
    }

    /// How many clients are remembered.
    pub fn len(&self) -> usize {
        self.tats.len()
    }

    /// Whether no client is remembered.
    pub fn is_empty(&self) -> bool {
        self.tats.is_empty()
    }
}

/// Microseconds rounded up to whole milliseconds.
fn ceil_millis(us: u64) -> Millis {
    Millis(us.div_ceil(1000))
}

/// The limiter in the vocabulary every core shares (written for you): each call goes to your
/// method of the same name (a check to `check`), and what it answers is queued.
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
