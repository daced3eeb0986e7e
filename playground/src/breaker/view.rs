//! What the breaker playground hands the page: one [`Frame`] of news per animation frame.
//!
//! These types are serialised to JSON for the page's script (`playground/web/breaker.js`),
//! which draws them as they are: their field names and the names of their variants are the
//! JSON the script reads, so renaming one breaks the page.

use breaker_core::{Metrics, State};
use serde::Serialize;

/// How one call ended, as the core's events said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkKind {
    /// `Event::Success`.
    Success,
    /// `Event::Failure`.
    Failure,
    /// `Event::Success` followed by `Event::SlowCall`.
    Slow,
    /// `Event::Failure` followed by `Event::SlowCall`.
    SlowFailure,
    /// `Output::Rejected`: the call never reached the downstream.
    Rejected,
    /// The outcome came back after a state transition: the core refused the stale permit.
    Late,
}

/// One call on the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallMark {
    /// 1, 2, 3… in the order calls were sent.
    pub id: u64,
    /// When it was sent (and, if rejected, refused).
    pub sent: u64,
    /// When its outcome was reported; `None` for a rejected call.
    pub done: Option<u64>,
    /// What the core made of it.
    pub kind: MarkKind,
}

/// A state change, from `Event::StateTransition`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Transition {
    /// Simulated milliseconds since the run began.
    pub at: u64,
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
}

/// The rates the core reported at a moment (`None` while below the minimum calls).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RatePoint {
    /// Simulated milliseconds since the run began.
    pub t: u64,
    /// `Metrics::failure_rate`.
    pub failure: Option<f32>,
    /// `Metrics::slow_call_rate`.
    pub slow: Option<f32>,
}

/// One line of the event log: a core event in words, and the event itself as JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogLine {
    /// Simulated milliseconds since the run began.
    pub t: u64,
    /// The event's serde tag (`state_transition`, `failure`…), for colouring.
    pub kind: &'static str,
    /// What happened, in words.
    pub text: String,
    /// The event exactly as the core serialises it (what the lab logs).
    pub raw: String,
}

/// Running totals the simulation keeps about its own traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Calls sent to the breaker.
    pub sent: u64,
    /// Calls the breaker admitted.
    pub admitted: u64,
    /// Calls it rejected.
    pub rejected: u64,
    /// Outcomes refused as stale.
    pub late: u64,
}

/// What changed since the page last looked, plus where things stand now.
#[derive(Clone, Debug, Serialize)]
pub struct Frame {
    /// The simulated clock, in ms.
    pub now: u64,
    /// The breaker's state.
    pub state: State,
    /// The breaker's metrics (straight from `CircuitBreaker::metrics`).
    pub metrics: Metrics,
    /// `CircuitBreaker::poll_timeout`: when the breaker next needs the clock.
    pub next_timeout: Option<u64>,
    /// Calls admitted and not yet answered by the downstream.
    pub pending: usize,
    /// The simulation's traffic totals.
    pub totals: Totals,
    /// New timeline marks.
    pub marks: Vec<CallMark>,
    /// New state transitions.
    pub transitions: Vec<Transition>,
    /// New rate samples.
    pub rates: Vec<RatePoint>,
    /// New log lines.
    pub log: Vec<LogLine>,
}
