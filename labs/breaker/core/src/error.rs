//! What can go wrong when talking to a breaker: a rejection (normal operation) and misuse
//! (a stale or unknown permit, an impossible transition). Both are values, never panics:
//! a driver under load will hand back late permits, and that must not crash a service.

use crate::state::State;
use crate::time::Millis;
use serde::{Deserialize, Serialize};

// ANCHOR: rejected
/// The breaker refused a call. This is the breaker working, not an error in the code:
/// the driver fails fast, uses a fallback, or answers 503 with `Retry-After`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("call rejected: the circuit breaker is {state}{}", RetryAfter(*.retry_after))]
pub struct Rejected {
    /// The state that refused the call: Open, HalfOpen (all trial slots taken) or ForcedOpen.
    pub state: State,
    /// How long until the breaker may admit calls again, when it knows: the rest of the
    /// wait in Open. `None` in ForcedOpen (an operator decides) and in a full HalfOpen
    /// (it depends on the trial calls).
    pub retry_after: Option<Millis>,
}
// ANCHOR_END: rejected

/// Formats the optional retry hint of a [`Rejected`] message.
struct RetryAfter(Option<Millis>);

impl core::fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(wait) => write!(f, "; retry after {wait}"),
            None => Ok(()),
        }
    }
}

// ANCHOR: breaker_error
/// A permit or an operator command the breaker cannot accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum BreakerError {
    /// The permit was issued before the last state transition; its outcome is not recorded
    /// (it would describe a state the breaker has left). Drivers may ignore this error.
    #[error("stale permit from generation {permit}; the breaker is at generation {current}")]
    StalePermit {
        /// The permit's generation.
        permit: u32,
        /// The breaker's generation.
        current: u32,
    },
    /// The permit is from the current generation but is not outstanding: it was already
    /// handed back, or it never came from this breaker.
    #[error("unknown permit: it was already handed back or never issued by this breaker")]
    UnknownPermit,
    /// An operator asked for a transition to the state the breaker is already in.
    #[error("invalid transition from {from} to {to}")]
    InvalidTransition {
        /// The current state.
        from: State,
        /// The requested state.
        to: State,
    },
}
// ANCHOR_END: breaker_error
