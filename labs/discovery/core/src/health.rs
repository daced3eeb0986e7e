//! The registry's rules: what a check's status is now, when an instance is passing, when the
//! reaper removes it, when a blocking query is answered, and how a caller picks an instance.
//! The lab's graded module (the learner's copy is `labs/discovery/exercise/health.rs`).

use sansio_core::Millis;

use crate::types::{CheckKind, CheckState, ProbeOutcome, Status};

/// How long a blocking query waits when it names no wait: five minutes, as Consul.
pub const DEFAULT_WAIT: Millis = Millis(5 * 60 * 1000);
/// The longest wait a blocking query gets: ten minutes, as Consul.
pub const MAX_WAIT: Millis = Millis(10 * 60 * 1000);
/// The weight of a new latency sample in the balancer's moving average.
pub const EWMA_ALPHA: f64 = 0.25;

// ANCHOR: probe_status
/// What an HTTP probe's outcome says: any 2xx is passing, 429 (Too Many Requests) is
/// warning, anything else, a timeout or no connection is critical.
pub fn probe_status(outcome: ProbeOutcome) -> Status {
    match outcome {
        ProbeOutcome::Response(code) if (200..300).contains(&code) => Status::Passing,
        ProbeOutcome::Response(429) => Status::Warning,
        _ => Status::Critical,
    }
}
// ANCHOR_END: probe_status

// ANCHOR: check_status
/// A check's status at `now`: what was last reported, unless it is a TTL check whose report
/// has gone stale (`now` later than `fresh_until`): then it is critical, heartbeat or not.
/// A report at exactly `fresh_until` is still in time.
pub fn check_status(check: &CheckState, now: Millis) -> Status {
    match check.fresh_until {
        Some(until) if now > until => Status::Critical,
        _ => check.status,
    }
}
// ANCHOR_END: check_status

// ANCHOR: fresh_until
/// The last instant a report made at `now` holds: `now + ttl` for a TTL check, `None` for a
/// check that never goes stale on its own.
pub fn fresh_until(kind: &CheckKind, now: Millis) -> Option<Millis> {
    match kind {
        CheckKind::Ttl { ttl } => Some(now + *ttl),
        CheckKind::Http { .. } => None,
    }
}
// ANCHOR_END: fresh_until

// ANCHOR: instance_passing
/// Whether an instance with these checks gets traffic at `now`: every check passing. An
/// instance with no checks at all is passing (nothing says otherwise).
pub fn instance_passing<'a>(checks: impl IntoIterator<Item = &'a CheckState>, now: Millis) -> bool {
    checks
        .into_iter()
        .all(|check| check_status(check, now) == Status::Passing)
}
// ANCHOR_END: instance_passing

// ANCHOR: reap_at
/// When the reaper removes the instance of `check`: once the check has been critical for its
/// `deregister_after`, counted from `critical_since`. `None`: nothing to reap (no
/// `deregister_after`, or a check that is not critical). A TTL check that runs out is made
/// critical by the registry at the instant after `fresh_until`, and counts from then.
pub fn reap_at(check: &CheckState) -> Option<Millis> {
    let after = check.spec.deregister_after?;
    match (check.status, check.critical_since) {
        (Status::Critical, Some(since)) => Some(since + after),
        _ => None,
    }
}
// ANCHOR_END: reap_at

// ANCHOR: wait_deadline
/// When a blocking query that arrived at `now` asking to wait `wait` must be answered even if
/// nothing changed: the wait (five minutes when not given, never more than ten), plus a jitter
/// of `random` modulo one more than a sixteenth of it, so watchers do not return in lockstep.
pub fn wait_deadline(now: Millis, wait: Option<Millis>, random: u64) -> Millis {
    let wait = wait.unwrap_or(DEFAULT_WAIT).min(MAX_WAIT);
    let jitter = random % (wait.0 / 16 + 1);
    now + wait + Millis(jitter)
}
// ANCHOR_END: wait_deadline

// ANCHOR: watch_due
/// Whether a blocking query that has seen index `seen` is answered at `now`: as soon as its
/// service's index `current` has moved past it, or once its `deadline` has come.
pub fn watch_due(seen: u64, current: u64, deadline: Millis, now: Millis) -> bool {
    current > seen || now >= deadline
}
// ANCHOR_END: watch_due

// ANCHOR: round_robin
/// Round-robin over `count` instances: the instance at `cursor` (wrapped to the list), and
/// the cursor moves on by one. `None` when there is no instance.
pub fn round_robin(count: usize, cursor: &mut usize) -> Option<usize> {
    if count == 0 {
        return None;
    }
    let pick = *cursor % count;
    *cursor = pick + 1;
    Some(pick)
}
// ANCHOR_END: round_robin

// ANCHOR: two_choices
/// Power of two choices over instances with these latency averages: two different
/// instances drawn from the random numbers `a` and `b` (the first `a % n`, the second one of
/// the other `n - 1`, from `b`), and the one with the lower average wins; a tie goes to the
/// first. One instance is always the pick; `None` when there is none.
pub fn two_choices(latencies: &[f64], a: u64, b: u64) -> Option<usize> {
    let n = latencies.len() as u64;
    match n {
        0 => None,
        1 => Some(0),
        _ => {
            let first = a % n;
            let second = (first + 1 + b % (n - 1)) % n;
            let (first, second) = (first as usize, second as usize);
            Some(if latencies[second] < latencies[first] {
                second
            } else {
                first
            })
        }
    }
}
// ANCHOR_END: two_choices

// ANCHOR: ewma
/// The latency average after a new `sample`: the sample itself for an instance never
/// measured, else the old average moved `EWMA_ALPHA` of the way towards the sample.
pub fn ewma(previous: Option<f64>, sample: f64) -> f64 {
    match previous {
        None => sample,
        Some(old) => old + EWMA_ALPHA * (sample - old),
    }
}
// ANCHOR_END: ewma
