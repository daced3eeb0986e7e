//! Exercise: the registry's rules.
//!
//! This is your copy of the graded module. `cargo xtask grade discovery` runs
//! `labs/discovery/core/tests/graded.rs` against it. The signatures must stay as they are: the
//! registry and the balancer call them. Replace each `todo!()`.
//! Read: book chapter patterns/service-discovery.md (section "Exercise").

// The parameters are unused until you write the bodies.
#![allow(unused_variables)]

use sansio_core::Millis;

use crate::types::{CheckKind, CheckState, ProbeOutcome, Status};

/// How long a blocking query waits when it names no wait: five minutes, as Consul.
pub const DEFAULT_WAIT: Millis = Millis(5 * 60 * 1000);
/// The longest wait a blocking query gets: ten minutes, as Consul.
pub const MAX_WAIT: Millis = Millis(10 * 60 * 1000);
/// The weight of a new latency sample in the balancer's moving average.
pub const EWMA_ALPHA: f64 = 0.25;

/// What an HTTP probe's outcome says: any 2xx is passing, 429 (Too Many Requests) is
/// warning, anything else, a timeout or no connection is critical.
pub fn probe_status(outcome: ProbeOutcome) -> Status {
    // A `match` with a guard on the code's range.
    todo!("the status a probe outcome gives")
}

/// A check's status at `now`: what was last reported, unless it is a TTL check whose report
/// has gone stale (`now` later than `fresh_until`): then it is critical. A report at exactly
/// `fresh_until` is still in time.
pub fn check_status(check: &CheckState, now: Millis) -> Status {
    todo!("the reported status, or critical once the TTL has run out")
}

/// The last instant a report made at `now` holds: `now + ttl` for a TTL check, `None` for a
/// check that never goes stale on its own.
pub fn fresh_until(kind: &CheckKind, now: Millis) -> Option<Millis> {
    todo!("when a report made now stops holding")
}

/// Whether an instance with these checks gets traffic at `now`: every check passing (use
/// `check_status`, not the stored status). An instance with no checks at all is passing.
pub fn instance_passing<'a>(checks: impl IntoIterator<Item = &'a CheckState>, now: Millis) -> bool {
    todo!("every check passing at now")
}

/// When the reaper removes the instance of `check`: once the check has been critical for its
/// `spec.deregister_after`, counted from `critical_since`. `None`: nothing to reap (no
/// `deregister_after`, or a check that is not critical). A TTL check that runs out is made
/// critical by the registry at the instant after `fresh_until`, and counts from then.
pub fn reap_at(check: &CheckState) -> Option<Millis> {
    todo!("the instant the reaper strikes, if ever")
}

/// When a blocking query that arrived at `now` asking to wait `wait` must be answered even if
/// nothing changed: the wait (`DEFAULT_WAIT` when not given, never more than `MAX_WAIT`), plus
/// a jitter of `random` modulo one more than a sixteenth of that wait.
pub fn wait_deadline(now: Millis, wait: Option<Millis>, random: u64) -> Millis {
    todo!("now + capped wait + jitter")
}

/// Whether a blocking query that has seen index `seen` is answered at `now`: as soon as its
/// service's index `current` has moved past it, or once its `deadline` has come.
pub fn watch_due(seen: u64, current: u64, deadline: Millis, now: Millis) -> bool {
    todo!("moved, or the wait is over")
}

/// Round-robin over `count` instances: the instance at `cursor` (wrapped to the list, which
/// may have shrunk since the last call), and the cursor moves on by one. `None` when there is
/// no instance.
pub fn round_robin(count: usize, cursor: &mut usize) -> Option<usize> {
    todo!("the instance whose turn it is")
}

/// Power of two choices over instances with these latency averages: two different
/// instances drawn from the random numbers `a` and `b` (the first `a % n`, the second one of
/// the other `n - 1`: `(first + 1 + b % (n - 1)) % n`), and the one with the lower average
/// wins; a tie goes to the first. One instance is always the pick; `None` when there is none.
pub fn two_choices(latencies: &[f64], a: u64, b: u64) -> Option<usize> {
    todo!("the faster of two different instances")
}

/// The latency average after a new `sample`: the sample itself for an instance never
/// measured, else the old average moved `EWMA_ALPHA` of the way towards the sample.
pub fn ewma(previous: Option<f64>, sample: f64) -> f64 {
    todo!("an exponentially weighted moving average")
}
