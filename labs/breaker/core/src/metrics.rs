//! Numbers a breaker reports: what its window holds and what it has refused.
//!
//! [`WindowSnapshot`] is the raw count a sliding window keeps (calls, failed, slow); the
//! rates are derived from it on demand. [`Metrics`] is the view a dashboard or the
//! Prometheus endpoint of the lab shows.

use crate::state::State;
use crate::time::Millis;
use serde::{Deserialize, Serialize};

// ANCHOR: call_record
/// One recorded call as a sliding window stores it: was it a failure, was it slow?
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CallRecord {
    /// The call's outcome was [`Outcome::Failure`](crate::Outcome::Failure).
    pub failed: bool,
    /// The call lasted at least `slow_call_duration`.
    pub slow: bool,
}
// ANCHOR_END: call_record

// ANCHOR: window_snapshot
/// What a sliding window holds right now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WindowSnapshot {
    /// Recorded calls in the window.
    pub calls: u32,
    /// Of those, failures.
    pub failed: u32,
    /// Of those, slow calls (failed or not).
    pub slow: u32,
    /// Of those, calls that were both slow and failed.
    pub slow_failed: u32,
}
// ANCHOR_END: window_snapshot

impl WindowSnapshot {
    /// Failed calls as a percentage of recorded calls (0 when the window is empty).
    pub fn failure_rate(&self) -> f32 {
        percent(self.failed, self.calls)
    }

    /// Slow calls as a percentage of recorded calls (0 when the window is empty).
    pub fn slow_call_rate(&self) -> f32 {
        percent(self.slow, self.calls)
    }

    /// Adds one call to the counts.
    pub fn add(&mut self, call: CallRecord) {
        self.calls += 1;
        self.failed += u32::from(call.failed);
        self.slow += u32::from(call.slow);
        self.slow_failed += u32::from(call.failed && call.slow);
    }

    /// Removes counts that an older snapshot (a bucket, a call) added.
    pub fn subtract(&mut self, other: &WindowSnapshot) {
        self.calls -= other.calls;
        self.failed -= other.failed;
        self.slow -= other.slow;
        self.slow_failed -= other.slow_failed;
    }
}

fn percent(part: u32, whole: u32) -> f32 {
    if whole == 0 {
        0.0
    } else {
        part as f32 * 100.0 / whole as f32
    }
}

/// The breaker's numbers at the latest time it was given.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// The current state.
    pub state: State,
    /// Failure percentage over the calls the current state judges by, or `None` while
    /// fewer than the minimum number of calls are recorded (resilience4j reports -1).
    /// In Open it is the figure that opened the breaker.
    pub failure_rate: Option<f32>,
    /// Slow-call percentage, with the same rules as `failure_rate`.
    pub slow_call_rate: Option<f32>,
    /// Calls the current state judges by: the sliding window in Closed, the trial calls in
    /// HalfOpen, the window that tripped the breaker in Open.
    pub buffered_calls: u32,
    /// Of the buffered calls, failures.
    pub failed_calls: u32,
    /// Of the buffered calls, slow ones.
    pub slow_calls: u32,
    /// Of the buffered calls, ones that were slow and failed.
    pub slow_failed_calls: u32,
    /// Calls this breaker admitted since its latest transition whose permits have not come
    /// back yet: in Closed and Disabled every such permit; in HalfOpen the trial calls still
    /// running (a trial whose outcome is recorded holds its slot but is no longer in
    /// flight); always 0 in Open and ForcedOpen, which admit nothing. Calls admitted before
    /// the latest transition are not counted: their permits are stale. Calls a driver lets
    /// through without asking the breaker for a permit are not seen either (the lab's
    /// lock-free handle admits healthy calls that way and counts them itself).
    pub in_flight: u32,
    /// Calls rejected since the current state began (resilience4j's `notPermittedCalls`).
    pub not_permitted_calls: u64,
    /// Calls rejected since the breaker was built, across all states and resets.
    pub rejected_calls: u64,
    /// Openings since the breaker was last Closed: drives the backoff of the wait in Open.
    pub consecutive_opens: u32,
    /// When Open ends (when the breaker is Open).
    pub open_until: Option<Millis>,
    /// Outputs dropped because the driver did not drain `poll_output` in time.
    pub dropped_outputs: u64,
}
