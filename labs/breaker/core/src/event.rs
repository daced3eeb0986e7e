//! The words the core speaks: [`Input`] in, [`Output`] and [`Event`] out.
//!
//! They are serde enums so the same values feed the lab's log, the playground's view, the
//! grader's traces and the snapshot tests. Every [`Event`] carries the time it happened on
//! the driver's clock, so a list of events is a timeline that needs no other context.

use crate::Rejected;
use crate::outcome::Outcome;
use crate::state::{Permit, State};
use crate::time::Millis;
use serde::{Deserialize, Serialize};

// ANCHOR: transition_reason
/// Why the breaker changed state.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TransitionReason {
    /// The failure rate reached the threshold (in Closed over the window, in HalfOpen over
    /// the trial calls).
    FailureRateExceeded {
        /// The failure percentage that was judged.
        rate: f32,
    },
    /// The slow-call rate reached the threshold.
    SlowCallRateExceeded {
        /// The slow-call percentage that was judged.
        rate: f32,
    },
    /// The wait in Open elapsed: trial calls may go through.
    WaitElapsed,
    /// All trial calls completed below both thresholds.
    TrialsSucceeded,
    /// HalfOpen did not decide within `max_wait_in_half_open`.
    HalfOpenTimedOut,
    /// An operator forced the breaker open.
    ForcedOpen,
    /// An operator disabled the breaker.
    Disabled,
    /// An operator reset the breaker to a fresh Closed. Queued from every state, Closed
    /// included (`from` and `to` are then both Closed): this transition is the breaker's
    /// reset event, where resilience4j publishes a transition to CLOSED (from any other
    /// state) and a separate reset event.
    Reset,
    /// An operator asked for this state explicitly.
    Manual,
}
// ANCHOR_END: transition_reason

/// Something the breaker did or saw, for logs, timelines and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The state changed.
    StateTransition {
        /// When it happened, on the core's clock.
        at: Millis,
        /// The state left.
        from: State,
        /// The state entered.
        to: State,
        #[allow(missing_docs)]
        reason: TransitionReason,
    },
    /// A call succeeded and was recorded.
    Success {
        /// When it was recorded.
        at: Millis,
        /// How long the call took.
        duration: Millis,
    },
    /// A call failed and was recorded.
    Failure {
        /// When it was recorded.
        at: Millis,
        /// How long the call took.
        duration: Millis,
    },
    /// A recorded call was slow (queued right after its `Success` or `Failure`).
    SlowCall {
        /// When it was recorded.
        at: Millis,
        /// How long the call took.
        duration: Millis,
        /// Whether it also failed.
        failed: bool,
    },
    /// A call's outcome was [`Outcome::Ignored`]: nothing recorded.
    Ignored {
        /// When it happened, on the core's clock.
        at: Millis,
        /// How long the call took.
        duration: Millis,
    },
    /// A permit was handed back without an outcome (the call was cancelled).
    Released {
        /// When it happened, on the core's clock.
        at: Millis,
        /// The state that admitted the call.
        admitted_in: State,
    },
    /// A call was refused.
    Rejected {
        /// When it happened, on the core's clock.
        at: Millis,
        /// The refusal, as returned to the caller.
        rejected: Rejected,
    },
}

impl Event {
    /// When the event happened.
    pub fn at(&self) -> Millis {
        match *self {
            Event::StateTransition { at, .. }
            | Event::Success { at, .. }
            | Event::Failure { at, .. }
            | Event::SlowCall { at, .. }
            | Event::Ignored { at, .. }
            | Event::Released { at, .. }
            | Event::Rejected { at, .. } => at,
        }
    }
}

// ANCHOR: input
/// What a driver can tell the breaker through [`handle_input`](crate::CircuitBreaker::handle_input).
///
/// Each has an ergonomic method too (`try_acquire`, `on_outcome`, `release`, `force_open`,
/// `disable`, `reset`, `transition_to`); `Input` exists so a recorded trace, a playground
/// button or a property test can drive the breaker with plain data. Like the [`Permit`]s it
/// carries, an `Input` is not `Copy` or `Clone`: it is applied once.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Input {
    /// Ask to make a call; answered by [`Output::Permitted`] or [`Output::Rejected`].
    Acquire,
    /// A call finished.
    Outcome {
        /// The call's permit.
        permit: Permit,
        /// How it counts.
        outcome: Outcome,
        /// How long it took.
        duration: Millis,
    },
    /// A call was cancelled before it had an outcome.
    Release {
        /// The call's permit.
        permit: Permit,
    },
    /// Operator: hold the breaker open.
    ForceOpen,
    /// Operator: admit everything, record nothing.
    Disable,
    /// Operator: back to a fresh Closed with an empty window (see
    /// [`reset`](crate::CircuitBreaker::reset)).
    Reset,
    /// Operator: go to this state (an error if already there).
    TransitionTo {
        /// The requested state.
        state: State,
    },
}
// ANCHOR_END: input

// ANCHOR: output
/// What the breaker wants its driver to know, drained with
/// [`poll_output`](crate::CircuitBreaker::poll_output). Not `Copy` or `Clone`, because
/// [`Output::Permitted`] carries a [`Permit`].
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// The answer to [`Input::Acquire`]: go ahead, and hand this permit back.
    Permitted(Permit),
    /// The answer to [`Input::Acquire`]: do not call.
    Rejected(Rejected),
    /// Something happened (queued by inputs, timeouts and the ergonomic methods alike).
    Event(Event),
}
// ANCHOR_END: output

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_tagged_json() {
        let event = Event::StateTransition {
            at: Millis(1500),
            from: State::Closed,
            to: State::Open,
            reason: TransitionReason::FailureRateExceeded { rate: 50.0 },
        };
        let json = serde_json::to_value(Output::Event(event)).expect("events serialize");
        assert_eq!(
            json,
            serde_json::json!({"event": {
                "type": "state_transition", "at": 1500, "from": "closed", "to": "open",
                "reason": {"type": "failure_rate_exceeded", "rate": 50.0}
            }})
        );
        let back: Output = serde_json::from_value(json).expect("and deserialize");
        assert_eq!(back, Output::Event(event));
        assert_eq!(event.at(), Millis(1500));
    }

    #[test]
    fn rejections_read_well() {
        let open = Rejected {
            state: State::Open,
            retry_after: Some(Millis(2500)),
        };
        assert_eq!(
            open.to_string(),
            "call rejected: the circuit breaker is open; retry after 2.5s"
        );
        let forced = Rejected {
            state: State::ForcedOpen,
            retry_after: None,
        };
        assert_eq!(
            forced.to_string(),
            "call rejected: the circuit breaker is forced-open"
        );
    }
}
