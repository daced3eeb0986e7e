//! Graded tests of the breaker's state machine and sliding windows.
//!
//! `cargo xtask grade breaker` runs these against the learner's copy
//! (`labs/breaker/exercise/circuit.rs`, swapped in by the `exercise` feature); plain
//! `cargo test -p breaker-core` runs them against the reference. They are ordered like the
//! chapter: first what a breaker is, then how it decides, then the edge cases that make it
//! trustworthy, then the cases pinned after the first learners' trial, then those pinned by
//! mutation testing (`cargo xtask mutants breaker`). Each name is a sentence, and
//! `labs/breaker/grading.toml` lists them in the same order with a hint per test. Time is a
//! number here: nothing sleeps.
//!
//! Every assertion says what it expects and why: structs with named fields are compared
//! whole, and plain values carry a message. A property test's assertion names the invariant
//! it checks (`invariant: <name>` in its message), so the grader can pick the hint for the
//! invariant that failed.

#![allow(clippy::unwrap_used)]

use breaker_core::{
    Backoff, BreakerError, CallRecord, CircuitBreaker, Config, Event, Input, Metrics, Millis,
    Outcome, Output, Permit, Rejected, SlidingWindow, State, TransitionReason, WindowKind,
    WindowSnapshot,
};
use lab_test_support::check_property;
use proptest::prelude::*;

// ANCHOR: test_config
/// A small breaker that is easy to reason about: judges the last 4 calls once it has 4,
/// opens at 50 % failures or 50 % slow calls (1 s or longer), waits 10 s in Open, and
/// lets 3 trial calls through in HalfOpen.
fn config() -> Config {
    Config {
        window: WindowKind::CountBased { size: 4 },
        minimum_calls: 4,
        failure_rate_threshold: 50.0,
        slow_call_rate_threshold: 50.0,
        slow_call_duration: Millis(1_000),
        wait_in_open: Millis::from_secs(10),
        permitted_calls_in_half_open: 3,
        ..Config::default()
    }
}
// ANCHOR_END: test_config

fn breaker(config: Config) -> CircuitBreaker {
    CircuitBreaker::new(config).expect("the test's configuration is valid")
}

/// Makes one 10 ms call at `at` with the given outcome, or returns the rejection.
fn call(breaker: &mut CircuitBreaker, at: u64, outcome: Outcome) -> Result<(), Rejected> {
    let permit = breaker.try_acquire(Millis(at))?;
    breaker
        .on_outcome(Millis(at), permit, outcome, Millis(10))
        .expect("a permit handed back at once is accepted");
    Ok(())
}

/// Opens a Closed breaker built from `config()` with failures at `at` (at most four).
fn trip(breaker: &mut CircuitBreaker, at: u64) {
    for _ in 0..4 {
        if breaker.state() == State::Open {
            break;
        }
        call(breaker, at, Outcome::Failure).expect("a closed breaker admits calls");
    }
    assert_eq!(
        breaker.state(),
        State::Open,
        "four failures out of four must open it"
    );
}

/// The three trial calls a HalfOpen breaker built from `config()` admits, at `at`.
fn three_trials(breaker: &mut CircuitBreaker, at: u64) -> [Permit; 3] {
    std::array::from_fn(|n| {
        breaker
            .try_acquire(Millis(at))
            .unwrap_or_else(|rejected| panic!("trial call {} of 3 was rejected: {rejected}", n + 1))
    })
}

/// A second copy of `permit`, as a recorded trace or a replayed message would hold it. A
/// permit is neither `Copy` nor `Clone`, so this is the only way to hand one back twice.
fn duplicate(permit: &Permit) -> Permit {
    let json = serde_json::to_value(permit).expect("a permit serializes");
    serde_json::from_value(json).expect("and deserializes")
}

/// The calls `metrics()` reports as judged (`buffered_calls` and its parts), as a window.
fn judged(metrics: &Metrics) -> WindowSnapshot {
    WindowSnapshot {
        calls: metrics.buffered_calls,
        failed: metrics.failed_calls,
        slow: metrics.slow_calls,
        slow_failed: metrics.slow_failed_calls,
    }
}

/// A state transition as the tests compare it (without its time).
#[derive(Debug, PartialEq)]
struct Transition {
    from: State,
    to: State,
    reason: TransitionReason,
}

/// Drains the output queue and keeps the state transitions.
fn transitions(breaker: &mut CircuitBreaker) -> Vec<Transition> {
    let mut found = Vec::new();
    while let Some(output) = breaker.poll_output() {
        if let Output::Event(Event::StateTransition {
            from, to, reason, ..
        }) = output
        {
            found.push(Transition { from, to, reason });
        }
    }
    found
}

/// The rejection of a full HalfOpen: no `retry_after`, since it depends on the trials.
const HALF_OPEN_FULL: Rejected = Rejected {
    state: State::HalfOpen,
    retry_after: None,
};

// --- What a breaker is -------------------------------------------------------------------

#[test]
fn starts_closed() {
    let mut breaker = breaker(config());
    assert_eq!(
        breaker.state(),
        State::Closed,
        "a new breaker has seen no failure: state() is Closed"
    );
    let metrics = breaker.metrics();
    assert_eq!(
        judged(&metrics),
        WindowSnapshot::default(),
        "metrics() of a new breaker: no call recorded yet"
    );
    assert_eq!(
        metrics.failure_rate, None,
        "metrics().failure_rate is None until minimum_calls calls are recorded"
    );
    let permit = breaker
        .try_acquire(Millis(0))
        .expect("a closed breaker admits calls");
    assert_eq!(
        permit.admitted_in(),
        State::Closed,
        "the permit names the state that admitted the call"
    );
    assert_eq!(
        breaker.poll_timeout(),
        None,
        "poll_timeout() is None in Closed: no deadline is pending"
    );
}

#[test]
fn records_outcomes_in_the_window() {
    let mut breaker = breaker(config());
    let permit = breaker.try_acquire(Millis(0)).unwrap();
    assert_eq!(
        breaker.metrics().in_flight,
        1,
        "one permit handed out and not back yet: in_flight is 1"
    );
    breaker.on_success(Millis(5), permit, Millis(5)).unwrap();
    call(&mut breaker, 6, Outcome::Failure).unwrap();
    call(&mut breaker, 7, Outcome::Success).unwrap();
    let metrics = breaker.metrics();
    assert_eq!(
        judged(&metrics),
        WindowSnapshot {
            calls: 3,
            failed: 1,
            slow: 0,
            slow_failed: 0
        },
        "a success, a failure and a success are in the window, none of them slow"
    );
    assert_eq!(metrics.in_flight, 0, "every permit was handed back");
}

// ANCHOR: count_window_test
#[test]
fn count_based_window_keeps_only_the_last_n_calls() {
    let failed = CallRecord {
        failed: true,
        slow: false,
    };
    let ok = CallRecord {
        failed: false,
        slow: false,
    };
    let slow = CallRecord {
        failed: false,
        slow: true,
    };
    let mut window = SlidingWindow::new(WindowKind::CountBased { size: 3 });
    for record in [failed, failed, ok] {
        window.record(Millis(0), record);
    }
    assert_eq!(
        window.totals(),
        WindowSnapshot {
            calls: 3,
            failed: 2,
            slow: 0,
            slow_failed: 0
        },
        "failed, failed, ok fill a window of 3"
    );
    window.record(Millis(1), slow); // pushes out the first failure
    window.record(Millis(2), ok); // pushes out the second
    assert_eq!(
        window.snapshot(Millis(3)),
        WindowSnapshot {
            calls: 3,
            failed: 0,
            slow: 1,
            slow_failed: 0
        },
        "two more calls pushed both failures out: the window holds ok, slow, ok"
    );
    window.clear();
    assert_eq!(
        window.totals(),
        WindowSnapshot::default(),
        "clear() forgets every call"
    );
}
// ANCHOR_END: count_window_test

// --- How it decides ----------------------------------------------------------------------

#[test]
fn waits_for_minimum_calls_before_judging() {
    let mut breaker = breaker(config());
    for t in 0..3 {
        call(&mut breaker, t, Outcome::Failure).unwrap();
    }
    assert_eq!(
        breaker.state(),
        State::Closed,
        "3 failures out of 3 are below minimum_calls = 4"
    );
    assert_eq!(
        breaker.metrics().failure_rate,
        None,
        "below minimum_calls the failure rate is not reported"
    );
}

// ANCHOR: opens_test
#[test]
fn opens_after_failure_rate_crosses_threshold() {
    let mut breaker = breaker(config());
    call(&mut breaker, 0, Outcome::Success).unwrap();
    call(&mut breaker, 1, Outcome::Failure).unwrap();
    call(&mut breaker, 2, Outcome::Success).unwrap();
    call(&mut breaker, 3, Outcome::Failure).unwrap();
    assert_eq!(
        breaker.state(),
        State::Open,
        "2 failures out of 4 = 50 %, which reaches the 50 % threshold"
    );
    assert_eq!(
        transitions(&mut breaker),
        vec![Transition {
            from: State::Closed,
            to: State::Open,
            reason: TransitionReason::FailureRateExceeded { rate: 50.0 }
        }],
        "opening is one transition event, with the failure rate that caused it"
    );
    assert_eq!(
        breaker.metrics().failure_rate,
        Some(50.0),
        "in Open, metrics() shows the failure rate that opened it"
    );
}
// ANCHOR_END: opens_test

#[test]
fn stays_closed_below_failure_rate_threshold() {
    let mut breaker = breaker(config());
    for (t, outcome) in [
        Outcome::Failure,
        Outcome::Success,
        Outcome::Success,
        Outcome::Success,
        Outcome::Failure, // the window is now S S S F: 25 %
        Outcome::Success,
    ]
    .into_iter()
    .enumerate()
    {
        call(&mut breaker, t as u64, outcome).unwrap();
    }
    assert_eq!(
        breaker.state(),
        State::Closed,
        "no window of the last 4 calls ever held 2 failures"
    );
    assert_eq!(
        breaker.metrics().failure_rate,
        Some(25.0),
        "the last 4 calls are S S F S: 1 failure in 4 is 25 %"
    );
}

#[test]
fn opens_when_slow_call_rate_crosses_threshold() {
    let mut breaker = breaker(config());
    for (t, duration) in [10, 1_000, 20, 5_000].into_iter().enumerate() {
        let permit = breaker.try_acquire(Millis(t as u64)).unwrap();
        breaker
            .on_success(Millis(t as u64), permit, Millis(duration))
            .unwrap();
    }
    assert_eq!(
        breaker.state(),
        State::Open,
        "2 of 4 calls took >= 1 s (slow_call_duration): 50 % slow reaches the threshold"
    );
    assert_eq!(
        transitions(&mut breaker),
        vec![Transition {
            from: State::Closed,
            to: State::Open,
            reason: TransitionReason::SlowCallRateExceeded { rate: 50.0 }
        }],
        "the transition names the slow-call rate, not the failure rate (every call succeeded)"
    );
}

// ANCHOR: open_rejects_test
#[test]
fn open_rejects_calls_with_retry_after() {
    let mut breaker = breaker(config());
    trip(&mut breaker, 0);
    let rejected = breaker.try_acquire(Millis(4_000)).unwrap_err();
    assert_eq!(
        rejected,
        Rejected {
            state: State::Open,
            retry_after: Some(Millis(6_000))
        },
        "opened at 0 with a 10 s wait: at 4 s there are 6 s left"
    );
    let metrics = breaker.metrics();
    assert_eq!(
        metrics.not_permitted_calls, 1,
        "the rejection counts among the current state's rejections"
    );
    assert_eq!(
        metrics.rejected_calls, 1,
        "and among the rejections since the breaker was built"
    );
    assert_eq!(
        metrics.open_until,
        Some(Millis(10_000)),
        "opened at 0 with a 10 s wait: Open ends at 10 s"
    );
}
// ANCHOR_END: open_rejects_test

// ANCHOR: wait_elapsed_test
#[test]
fn open_moves_to_half_open_after_wait() {
    let mut breaker = breaker(config());
    trip(&mut breaker, 0);
    assert_eq!(
        breaker.poll_timeout(),
        Some(Millis(10_000)),
        "poll_timeout() names the end of the wait in Open"
    );
    assert!(
        breaker.try_acquire(Millis(9_999)).is_err(),
        "1 ms before the end of the wait, Open still rejects"
    );
    breaker.handle_timeout(Millis(10_000));
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "handle_timeout at the deadline moves Open to HalfOpen"
    );
    let permit = breaker.try_acquire(Millis(10_000)).expect("a trial call");
    assert_eq!(
        permit.admitted_in(),
        State::HalfOpen,
        "the call after the wait is a HalfOpen trial"
    );

    // Without handle_timeout, the next call after the deadline makes the move itself.
    let mut lazy = self::breaker(config());
    trip(&mut lazy, 0);
    let permit = lazy.try_acquire(Millis(12_000)).expect("the wait is over");
    assert_eq!(
        permit.admitted_in(),
        State::HalfOpen,
        "without handle_timeout, try_acquire after the deadline applies it first"
    );
}
// ANCHOR_END: wait_elapsed_test

#[test]
fn half_open_admits_exactly_n_trial_calls() {
    let mut breaker = breaker(config());
    trip(&mut breaker, 0);
    let _trials = three_trials(&mut breaker, 10_000);
    assert_eq!(
        breaker.try_acquire(Millis(10_001)).unwrap_err(),
        HALF_OPEN_FULL,
        "permitted_calls_in_half_open is 3: a fourth call is rejected, with no retry_after"
    );
    assert_eq!(
        breaker.metrics().in_flight,
        3,
        "the three trial calls are in flight"
    );
}

#[test]
fn half_open_closes_when_trials_succeed() {
    let mut breaker = breaker(config());
    trip(&mut breaker, 0);
    transitions(&mut breaker);
    for t in 0..3 {
        call(&mut breaker, 10_000 + t, Outcome::Success).unwrap();
    }
    assert_eq!(
        breaker.state(),
        State::Closed,
        "3 successful trials of 3: Closed"
    );
    assert_eq!(
        breaker.metrics().buffered_calls,
        0,
        "Closed starts with an empty window"
    );
    assert_eq!(
        transitions(&mut breaker),
        vec![
            Transition {
                from: State::Open,
                to: State::HalfOpen,
                reason: TransitionReason::WaitElapsed
            },
            Transition {
                from: State::HalfOpen,
                to: State::Closed,
                reason: TransitionReason::TrialsSucceeded
            },
        ],
        "the first trial call found the wait elapsed; the last trial closed it"
    );
}

// ANCHOR: trials_fail_test
#[test]
fn half_open_reopens_when_trials_fail() {
    let mut breaker = breaker(config());
    trip(&mut breaker, 0);
    let [first, second, third] = three_trials(&mut breaker, 10_000);
    breaker
        .on_failure(Millis(10_100), first, Millis(10))
        .unwrap();
    breaker
        .on_failure(Millis(10_200), second, Millis(10))
        .unwrap();
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "decide only once all 3 trials have an outcome"
    );
    breaker
        .on_success(Millis(10_300), third, Millis(10))
        .unwrap();
    assert_eq!(
        breaker.state(),
        State::Open,
        "2 of 3 trials failed: 67 % >= 50 %"
    );
    assert_eq!(
        breaker.metrics().open_until,
        Some(Millis(20_300)),
        "re-opened by the last trial at 10.3 s, for the 10 s wait"
    );
}
// ANCHOR_END: trials_fail_test

// --- The edge cases that make it trustworthy ---------------------------------------------

// ANCHOR: cancelled_trial_test
#[test]
fn cancelled_trial_frees_its_slot() {
    let mut breaker = breaker(config());
    trip(&mut breaker, 0);
    let [first, second, third] = three_trials(&mut breaker, 10_000);
    breaker
        .release(Millis(10_050), second)
        .expect("a trial permit can be released");
    let replacement = breaker
        .try_acquire(Millis(10_060))
        .expect("the released slot admits another trial");
    assert_eq!(
        breaker.try_acquire(Millis(10_070)).unwrap_err(),
        HALF_OPEN_FULL,
        "still only 3 trials at a time"
    );
    for permit in [first, third, replacement] {
        breaker
            .on_success(Millis(10_100), permit, Millis(10))
            .unwrap();
    }
    assert_eq!(
        breaker.state(),
        State::Closed,
        "the three trials that ran all succeeded"
    );
}
// ANCHOR_END: cancelled_trial_test

#[test]
fn ignored_outcomes_are_neither_success_nor_failure() {
    let mut breaker = breaker(config());
    for t in 0..10 {
        call(&mut breaker, t, Outcome::Ignored).unwrap();
    }
    assert_eq!(
        breaker.metrics().buffered_calls,
        0,
        "ignored outcomes are not recorded in the window"
    );
    trip(&mut breaker, 20);
    let [ignored, _second, _third] = three_trials(&mut breaker, 10_020);
    breaker
        .on_outcome(Millis(10_030), ignored, Outcome::Ignored, Millis(10))
        .unwrap();
    assert!(
        breaker.try_acquire(Millis(10_040)).is_ok(),
        "an ignored trial frees its slot like a cancelled one"
    );
}

// ANCHOR: stale_permit_test
#[test]
fn late_outcome_from_an_earlier_state_is_stale() {
    let mut breaker = breaker(config());
    let slow_call = breaker.try_acquire(Millis(0)).unwrap();
    let released_late = duplicate(&slow_call);
    trip(&mut breaker, 1);
    let before = breaker.metrics();
    let late = breaker.on_failure(Millis(2), slow_call, Millis(2));
    assert!(
        matches!(late, Err(BreakerError::StalePermit { .. })),
        "a permit from Closed returned in Open must be refused as stale, got {late:?}"
    );
    assert_eq!(breaker.metrics(), before, "a stale outcome changes nothing");
    let released = breaker.release(Millis(3), released_late);
    assert!(
        matches!(released, Err(BreakerError::StalePermit { .. })),
        "releasing a permit from an earlier generation is refused as stale too, got {released:?}"
    );
}
// ANCHOR_END: stale_permit_test

// ANCHOR: handed_back_once_test
#[test]
fn a_permit_is_handed_back_only_once() {
    let mut breaker = breaker(config());
    let permit = breaker.try_acquire(Millis(0)).unwrap();
    let again = duplicate(&permit);
    breaker.on_success(Millis(1), permit, Millis(1)).unwrap();
    assert_eq!(
        breaker.on_success(Millis(2), again, Millis(1)),
        Err(BreakerError::UnknownPermit),
        "a permit already handed back is not outstanding: a second outcome is refused"
    );
    assert_eq!(
        breaker.metrics().buffered_calls,
        1,
        "the refused outcome was not recorded"
    );

    trip(&mut breaker, 3);
    let trial = breaker.try_acquire(Millis(10_003)).unwrap();
    let (outcome_again, release_again) = (duplicate(&trial), duplicate(&trial));
    breaker
        .on_failure(Millis(10_004), trial, Millis(1))
        .unwrap();
    assert_eq!(
        breaker.on_failure(Millis(10_005), outcome_again, Millis(1)),
        Err(BreakerError::UnknownPermit),
        "a trial counted twice would decide HalfOpen on fewer real trials"
    );
    assert_eq!(
        breaker.release(Millis(10_006), release_again),
        Err(BreakerError::UnknownPermit),
        "a finished trial cannot be released either: its slot stays taken until HalfOpen decides"
    );
}
// ANCHOR_END: handed_back_once_test

#[test]
fn time_based_window_forgets_old_calls() {
    let mut window = SlidingWindow::new(WindowKind::TimeBased { seconds: 10 });
    window.record(
        Millis(500),
        CallRecord {
            failed: true,
            slow: false,
        },
    );
    assert_eq!(
        window.snapshot(Millis(9_999)).calls,
        1,
        "second 0 is inside 0..=9"
    );
    assert_eq!(
        window.snapshot(Millis(10_000)).calls,
        0,
        "at second 10, second 0 is gone"
    );

    let mut breaker = breaker(Config {
        window: WindowKind::TimeBased { seconds: 10 },
        ..config()
    });
    for t in [0, 1_000, 2_000] {
        call(&mut breaker, t, Outcome::Failure).unwrap();
    }
    assert_eq!(
        breaker.metrics().buffered_calls,
        3,
        "failures at 0, 1 and 2 s are all inside a 10 s window"
    );
    call(&mut breaker, 10_500, Outcome::Failure).unwrap();
    assert_eq!(
        breaker.state(),
        State::Closed,
        "the failure at 0 s left the window at 10 s: 3 calls remain, below minimum_calls"
    );
    breaker.handle_timeout(Millis(60_000));
    assert_eq!(
        breaker.metrics().buffered_calls,
        0,
        "a minute later nothing is left"
    );
}

// ANCHOR: half_open_timeout_test
#[test]
fn half_open_without_trial_calls_reopens_after_max_wait() {
    let mut breaker = breaker(Config {
        max_wait_in_half_open: Some(Millis::from_secs(5)),
        ..config()
    });
    trip(&mut breaker, 0);
    breaker.handle_timeout(Millis(10_000));
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "the 10 s wait in Open is over"
    );
    assert_eq!(
        breaker.poll_timeout(),
        Some(Millis(15_000)),
        "entered HalfOpen at 10 s with max_wait_in_half_open = 5 s: the deadline is 15 s"
    );
    transitions(&mut breaker);
    breaker.handle_timeout(Millis(15_000));
    assert_eq!(
        breaker.state(),
        State::Open,
        "no trial call came before the deadline"
    );
    assert_eq!(
        transitions(&mut breaker),
        vec![Transition {
            from: State::HalfOpen,
            to: State::Open,
            reason: TransitionReason::HalfOpenTimedOut
        }],
        "the transition says HalfOpen timed out"
    );
    assert_eq!(
        breaker.poll_timeout(),
        Some(Millis(25_000)),
        "re-opened at 15 s for the 10 s wait"
    );
}
// ANCHOR_END: half_open_timeout_test

// ANCHOR: backoff_test
#[test]
fn reopening_backs_off_exponentially_up_to_the_cap() {
    let mut breaker = breaker(Config {
        backoff: Some(Backoff {
            multiplier: 2.0,
            max_wait: Millis::from_secs(35),
        }),
        permitted_calls_in_half_open: 1,
        ..config()
    });
    trip(&mut breaker, 0);
    let mut waits = vec![breaker.metrics().open_until.unwrap().0];
    let mut now = waits[0];
    for _ in 0..3 {
        call(&mut breaker, now, Outcome::Failure).unwrap(); // the trial fails: re-open
        let until = breaker.metrics().open_until.unwrap().0;
        waits.push(until - now);
        now = until;
    }
    assert_eq!(
        waits,
        vec![10_000, 20_000, 35_000, 35_000],
        "openings k = 0, 1, 2, 3 wait 10 s × 2^k: 10 s, 20 s, then 40 s and 80 s capped at 35 s"
    );
    call(&mut breaker, now, Outcome::Success).unwrap();
    assert_eq!(breaker.state(), State::Closed, "the one trial succeeded");
    trip(&mut breaker, now);
    assert_eq!(
        breaker.metrics().open_until,
        Some(Millis(now + 10_000)),
        "closing forgets the backoff: the next opening is k = 0 again"
    );
}
// ANCHOR_END: backoff_test

#[test]
fn jitter_spreads_the_wait_and_is_reproducible_from_the_seed() {
    let waits = |seed: u64| -> Vec<u64> {
        let mut breaker = breaker(Config {
            jitter: 0.5,
            seed: Some(seed),
            ..config()
        });
        let mut found = Vec::new();
        for round in 0..8 {
            let at = round * 100_000;
            trip(&mut breaker, at);
            found.push(breaker.metrics().open_until.unwrap().0 - at);
            breaker.reset(Millis(at));
        }
        found
    };
    let first = waits(7);
    assert_eq!(first, waits(7), "the same seed gives the same waits");
    assert_ne!(first, waits(8), "another seed gives other waits");
    for wait in &first {
        assert!(
            (5_000..=15_000).contains(wait),
            "10 s ± 50 % must hold, got {wait} ms"
        );
    }
    assert!(
        first.iter().any(|w| *w != 10_000),
        "jitter must change something: {first:?}"
    );
}

#[test]
fn forced_open_rejects_everything_until_reset() {
    let mut breaker = breaker(config());
    breaker.force_open(Millis(0));
    assert_eq!(
        breaker.state(),
        State::ForcedOpen,
        "force_open holds the breaker open"
    );
    assert_eq!(
        breaker.try_acquire(Millis(1)).unwrap_err(),
        Rejected {
            state: State::ForcedOpen,
            retry_after: None
        },
        "ForcedOpen rejects, and cannot say when it will admit again"
    );
    assert_eq!(breaker.poll_timeout(), None, "no wait ends a forced open");
    breaker.handle_timeout(Millis(1_000_000));
    assert_eq!(
        breaker.state(),
        State::ForcedOpen,
        "time passing does not leave ForcedOpen"
    );
    breaker.reset(Millis(1_000_001));
    assert_eq!(breaker.state(), State::Closed, "reset leaves ForcedOpen");
    assert!(
        breaker.try_acquire(Millis(1_000_002)).is_ok(),
        "after the reset, calls are admitted"
    );
}

#[test]
fn disabled_admits_everything_and_records_nothing() {
    let mut breaker = breaker(config());
    breaker.disable(Millis(0));
    for t in 0..100 {
        call(&mut breaker, t, Outcome::Failure).expect("Disabled admits every call");
    }
    assert_eq!(
        breaker.state(),
        State::Disabled,
        "100 failures do not move a disabled breaker"
    );
    assert_eq!(
        breaker.metrics().buffered_calls,
        0,
        "Disabled records nothing"
    );
    breaker.transition_to(Millis(200), State::Closed).unwrap();
    assert_eq!(
        breaker.metrics().buffered_calls,
        0,
        "back in Closed, the window is empty: nothing was recorded while disabled"
    );
}

// ANCHOR: events_test
#[test]
fn events_tell_the_story_in_order() {
    let mut breaker = breaker(config());
    for t in 0..4 {
        call(&mut breaker, t, Outcome::Failure).unwrap();
    }
    let _ = breaker.try_acquire(Millis(5));
    let mut story = Vec::new();
    while let Some(Output::Event(event)) = breaker.poll_output() {
        story.push(event);
    }
    let failure = |at| Event::Failure {
        at: Millis(at),
        duration: Millis(10),
    };
    assert_eq!(
        story,
        vec![
            failure(0),
            failure(1),
            failure(2),
            failure(3),
            Event::StateTransition {
                at: Millis(3),
                from: State::Closed,
                to: State::Open,
                reason: TransitionReason::FailureRateExceeded { rate: 100.0 }
            },
            Event::Rejected {
                at: Millis(5),
                rejected: Rejected {
                    state: State::Open,
                    retry_after: Some(Millis(9_998))
                }
            },
        ],
        "each call's outcome is queued as it is recorded, the transition right after the \
         outcome that caused it, then the rejection"
    );
    assert_eq!(breaker.poll_output(), None, "everything was drained");
}
// ANCHOR_END: events_test

// ANCHOR: sans_io_test
#[test]
fn sans_io_inputs_give_the_same_answers() {
    let mut breaker = breaker(config());
    breaker.handle_input(Millis(0), Input::Acquire).unwrap();
    let Some(Output::Permitted(permit)) = breaker.poll_output() else {
        panic!("Input::Acquire must be answered with Output::Permitted in Closed");
    };
    let outcome = Input::Outcome {
        permit,
        outcome: Outcome::Success,
        duration: Millis(3),
    };
    breaker.handle_input(Millis(3), outcome).unwrap();
    assert_eq!(
        breaker.metrics().buffered_calls,
        1,
        "Input::Outcome records the call like on_outcome"
    );
    assert_eq!(
        breaker.handle_input(
            Millis(4),
            Input::TransitionTo {
                state: State::Closed
            }
        ),
        Err(BreakerError::InvalidTransition {
            from: State::Closed,
            to: State::Closed
        }),
        "Input::TransitionTo the current state is refused, like transition_to"
    );
    breaker.handle_input(Millis(5), Input::ForceOpen).unwrap();
    while breaker.poll_output().is_some() {}
    breaker.handle_input(Millis(6), Input::Acquire).unwrap();
    let answer = std::iter::from_fn(|| breaker.poll_output())
        .find(|output| !matches!(output, Output::Event(_)));
    assert_eq!(
        answer,
        Some(Output::Rejected(Rejected {
            state: State::ForcedOpen,
            retry_after: None
        })),
        "Input::Acquire must be answered with Output::Rejected in ForcedOpen"
    );
}
// ANCHOR_END: sans_io_test

/// One step of a random workload for the property test below.
#[derive(Clone, Debug)]
enum Step {
    /// Ask for a permit.
    Acquire,
    /// Finish the `n`-th outstanding call (modulo how many there are).
    Finish(usize, Outcome),
    /// Cancel the `n`-th outstanding call.
    Cancel(usize),
    /// Hand back, once more, a copy of the `n`-th trial permit already handed back: with
    /// an outcome, or released (`None`).
    HandBackAgain(usize, Option<Outcome>),
    /// Let time pass.
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    let outcome = || {
        prop_oneof![
            Just(Outcome::Success),
            Just(Outcome::Failure),
            Just(Outcome::Ignored)
        ]
    };
    prop_oneof![
        4 => Just(Step::Acquire),
        3 => (any::<usize>(), outcome()).prop_map(|(n, outcome)| Step::Finish(n, outcome)),
        1 => any::<usize>().prop_map(Step::Cancel),
        1 => (any::<usize>(), proptest::option::of(outcome()))
            .prop_map(|(n, outcome)| Step::HandBackAgain(n, outcome)),
        2 => (0u64..15_000).prop_map(Step::Wait),
    ]
}

/// The seed of the property test: fixed, so every grading run is the same; set
/// `PROPTEST_SEED` to explore other workloads.
const PROPTEST_SEED: u64 = 0x00b3_ea4e_5eed;

/// What the property test knows of one HalfOpen generation's trial calls.
#[derive(Debug, Default)]
struct TrialBook {
    /// The generation these counts are about.
    generation: u32,
    /// Trial calls admitted in it.
    admitted: u32,
    /// Of those, handed back without an outcome that counts (released or ignored), once each.
    given_back: u32,
}

#[test]
fn half_open_never_admits_more_than_n_trial_calls() {
    // The printed seed reproduces a failure; no regression files in the learner's tree.
    check_property(
        200,
        PROPTEST_SEED,
        &proptest::collection::vec(step(), 1..120),
        |steps| {
            let mut breaker = breaker(config());
            let mut now = 0;
            let mut outstanding: Vec<Permit> = Vec::new();
            // Copies of trial permits already handed back, to hand back again.
            let mut handed_back: Vec<Permit> = Vec::new();
            let mut book = TrialBook::default();
            for (index, step) in steps.iter().enumerate() {
                let at = format!("after step {index} ({step:?}) at {now} ms");
                match step {
                    Step::Acquire => {
                        if let Ok(permit) = breaker.try_acquire(Millis(now)) {
                            if permit.is_trial() {
                                if book.generation != permit.generation() {
                                    book = TrialBook {
                                        generation: permit.generation(),
                                        ..TrialBook::default()
                                    };
                                }
                                book.admitted += 1;
                            }
                            outstanding.push(permit);
                        }
                    }
                    Step::Finish(n, outcome) if !outstanding.is_empty() => {
                        let permit = outstanding.remove(n % outstanding.len());
                        let copy = permit.is_trial().then(|| duplicate(&permit));
                        let in_book = permit.is_trial() && permit.generation() == book.generation;
                        let accepted = breaker
                            .on_outcome(Millis(now), permit, *outcome, Millis(10))
                            .is_ok();
                        if accepted && in_book && *outcome == Outcome::Ignored {
                            book.given_back += 1;
                        }
                        handed_back.extend(copy.filter(|_| accepted));
                    }
                    Step::Cancel(n) if !outstanding.is_empty() => {
                        let permit = outstanding.remove(n % outstanding.len());
                        let copy = permit.is_trial().then(|| duplicate(&permit));
                        let in_book = permit.is_trial() && permit.generation() == book.generation;
                        let accepted = breaker.release(Millis(now), permit).is_ok();
                        if accepted && in_book {
                            book.given_back += 1;
                        }
                        handed_back.extend(copy.filter(|_| accepted));
                    }
                    Step::HandBackAgain(n, outcome) if !handed_back.is_empty() => {
                        let copy = duplicate(&handed_back[n % handed_back.len()]);
                        let expected = if copy.generation() == breaker.generation() {
                            BreakerError::UnknownPermit
                        } else {
                            BreakerError::StalePermit {
                                permit: copy.generation(),
                                current: breaker.generation(),
                            }
                        };
                        let answer = match outcome {
                            Some(outcome) => {
                                breaker.on_outcome(Millis(now), copy, *outcome, Millis(10))
                            }
                            None => breaker.release(Millis(now), copy),
                        };
                        prop_assert_eq!(
                            answer,
                            Err(expected),
                            "invariant: a_permit_comes_back_once: {}, a copy of a trial permit \
                         already handed back was accepted again; it must be refused (stale if \
                         from an earlier generation, unknown otherwise)",
                            at
                        );
                    }
                    Step::Wait(ms) => {
                        now += ms;
                        breaker.handle_timeout(Millis(now));
                    }
                    _ => {}
                }
                if breaker.state() == State::HalfOpen {
                    let generation = breaker.generation();
                    let (admitted, given_back) = if book.generation == generation {
                        (book.admitted, book.given_back)
                    } else {
                        (0, 0)
                    };
                    let holding = admitted.saturating_sub(given_back);
                    prop_assert!(
                        holding <= 3,
                        "invariant: trials_never_exceed_permits: {at}, this HalfOpen has admitted \
                     {admitted} trial calls and {given_back} of them came back unrecorded \
                     (released or ignored): {} hold a trial slot, running or finished; \
                     permitted_calls_in_half_open is 3",
                        holding
                    );
                    let running = outstanding
                        .iter()
                        .filter(|permit| permit.generation() == generation)
                        .count() as u32;
                    prop_assert_eq!(
                        breaker.metrics().in_flight,
                        running,
                        "invariant: in_flight_counts_running_trials: {}, metrics().in_flight must \
                     count the trial calls admitted in this HalfOpen and not handed back yet",
                        at
                    );
                }
            }
            Ok(())
        },
    );
}

// --- Pinned after the first learners' trial ----------------------------------------------

#[test]
fn a_released_trial_permit_cannot_free_the_slot_of_the_next_trial() {
    let mut breaker = breaker(config());
    trip(&mut breaker, 0);
    let first = breaker.try_acquire(Millis(10_000)).unwrap();
    let _second = breaker.try_acquire(Millis(10_000)).unwrap();
    let _third = breaker.try_acquire(Millis(10_000)).unwrap();
    let released_again = duplicate(&first);
    let recorded_again = duplicate(&first);
    breaker
        .release(Millis(10_010), first)
        .expect("the first release of a trial permit is accepted");
    let _fourth = breaker
        .try_acquire(Millis(10_020))
        .expect("the released slot admits one more trial call");
    assert_eq!(
        breaker.release(Millis(10_030), released_again),
        Err(BreakerError::UnknownPermit),
        "the first permit was already released and its slot now belongs to the fourth call: \
         releasing it again must be refused, not free the fourth call's slot"
    );
    assert_eq!(
        breaker.on_failure(Millis(10_040), recorded_again, Millis(10)),
        Err(BreakerError::UnknownPermit),
        "an outcome for the released permit must be refused too: it would be counted as the \
         fourth call's trial"
    );
    assert_eq!(
        breaker.try_acquire(Millis(10_050)).unwrap_err(),
        Rejected {
            state: State::HalfOpen,
            retry_after: None
        },
        "three trial calls are running (the second, third and fourth): a fourth concurrent \
         one must be rejected"
    );
    assert_eq!(
        breaker.metrics().in_flight,
        3,
        "metrics().in_flight counts the three trial calls still running"
    );
}

#[test]
fn a_finished_trial_keeps_its_slot_until_half_open_decides() {
    let mut breaker = breaker(config());
    trip(&mut breaker, 0);
    let mut permits: Vec<Permit> = (0..3)
        .map(|_| breaker.try_acquire(Millis(10_000)).unwrap())
        .collect();
    let finished = permits.remove(0);
    breaker
        .on_success(Millis(10_100), finished, Millis(10))
        .unwrap();
    assert_eq!(
        breaker.try_acquire(Millis(10_200)).unwrap_err(),
        Rejected {
            state: State::HalfOpen,
            retry_after: None
        },
        "a trial with an outcome still counts among the 3 permitted: only a release or an \
         ignored outcome gives a slot back, or a 4th trial would get in before HalfOpen decides"
    );
    assert_eq!(
        breaker.metrics().in_flight,
        2,
        "in HalfOpen, in_flight counts the trials still running, not the finished one"
    );
}

#[test]
fn half_open_reports_no_rates_until_every_trial_has_an_outcome() {
    let mut breaker = breaker(config());
    trip(&mut breaker, 0);
    let mut permits: Vec<Permit> = (0..3)
        .map(|_| breaker.try_acquire(Millis(10_000)).unwrap())
        .collect();
    for (at, permit) in [10_100, 10_200].into_iter().zip(permits.drain(..2)) {
        breaker.on_failure(Millis(at), permit, Millis(10)).unwrap();
    }
    let metrics = breaker.metrics();
    assert_eq!(metrics.state, State::HalfOpen, "1 of 3 trials is still out");
    assert_eq!(
        metrics.failure_rate, None,
        "2 of 3 trials have an outcome: HalfOpen judges only once all 3 are done, so its \
         failure rate is not known yet"
    );
    assert_eq!(
        metrics.slow_call_rate, None,
        "the slow-call rate follows the same rule as the failure rate"
    );
    assert_eq!(
        metrics.buffered_calls, 2,
        "in HalfOpen the buffered calls are the trials with an outcome"
    );
    assert_eq!(metrics.failed_calls, 2, "both finished trials failed");
}

#[test]
fn call_events_switched_off_queue_no_rejections() {
    let mut breaker = breaker(Config {
        emit_call_events: false,
        ..config()
    });
    trip(&mut breaker, 0);
    let in_open = breaker.try_acquire(Millis(5)).unwrap_err();
    assert_eq!(in_open.state, State::Open, "Open rejects the call");
    let trials: Vec<Permit> = (0..3)
        .map(|_| breaker.try_acquire(Millis(10_000)).unwrap())
        .collect();
    let in_half_open = breaker.try_acquire(Millis(10_000)).unwrap_err();
    assert_eq!(
        in_half_open.state,
        State::HalfOpen,
        "a full HalfOpen rejects the call"
    );
    drop(trials);
    breaker.force_open(Millis(10_001));
    let forced = breaker.try_acquire(Millis(10_002)).unwrap_err();
    assert_eq!(
        forced.state,
        State::ForcedOpen,
        "ForcedOpen rejects the call"
    );
    let queued: Vec<Output> = std::iter::from_fn(|| breaker.poll_output()).collect();
    let transition = |at, from, to, reason| {
        Output::Event(Event::StateTransition {
            at: Millis(at),
            from,
            to,
            reason,
        })
    };
    assert_eq!(
        queued,
        vec![
            transition(
                0,
                State::Closed,
                State::Open,
                TransitionReason::FailureRateExceeded { rate: 100.0 }
            ),
            transition(
                10_000,
                State::Open,
                State::HalfOpen,
                TransitionReason::WaitElapsed
            ),
            transition(
                10_001,
                State::HalfOpen,
                State::ForcedOpen,
                TransitionReason::ForcedOpen
            ),
        ],
        "with emit_call_events = false only state transitions are queued: no Failure event \
         for the calls that tripped it and no Rejected event for the three rejections"
    );
}

#[test]
fn reset_is_a_transition_to_closed() {
    let mut breaker = breaker(config());
    trip(&mut breaker, 0);
    transitions(&mut breaker);
    breaker.reset(Millis(500));
    assert_eq!(
        transitions(&mut breaker),
        vec![Transition {
            from: State::Open,
            to: State::Closed,
            reason: TransitionReason::Reset
        }],
        "reset from Open queues one state transition to Closed with reason Reset, like \
         resilience4j's transition event to CLOSED"
    );
    call(&mut breaker, 600, Outcome::Failure).unwrap();
    breaker.reset(Millis(700));
    assert_eq!(
        transitions(&mut breaker),
        vec![Transition {
            from: State::Closed,
            to: State::Closed,
            reason: TransitionReason::Reset
        }],
        "reset from Closed still queues a transition (Closed to Closed, reason Reset): it is \
         how the breaker reports that it emptied its window, resilience4j's reset event"
    );
    assert_eq!(
        breaker.metrics().buffered_calls,
        0,
        "the failure recorded before the reset is forgotten"
    );
}

#[test]
fn reset_keeps_drawing_from_the_same_jitter_sequence() {
    let jittered = || {
        breaker(Config {
            jitter: 0.5,
            seed: Some(11),
            ..config()
        })
    };
    // Three openings with a reset between them.
    let mut with_resets = jittered();
    let mut reset_waits = Vec::new();
    for round in 0..3 {
        let at = round * 100_000;
        trip(&mut with_resets, at);
        reset_waits.push(with_resets.metrics().open_until.unwrap().0 - at);
        with_resets.reset(Millis(at));
    }
    // Three openings in a row: the trials fail and it re-opens (no backoff configured).
    let mut reopening = jittered();
    trip(&mut reopening, 0);
    let mut reopen_waits = vec![reopening.metrics().open_until.unwrap().0];
    for _ in 0..2 {
        let now = reopening.metrics().open_until.unwrap().0;
        for _ in 0..3 {
            call(&mut reopening, now, Outcome::Failure).unwrap();
        }
        reopen_waits.push(reopening.metrics().open_until.unwrap().0 - now);
    }
    assert_eq!(
        reset_waits, reopen_waits,
        "reset does not re-seed the jitter: the k-th opening draws the k-th number of the \
         seed's sequence whether or not a reset came in between"
    );
    assert!(
        reset_waits.iter().any(|wait| *wait != reset_waits[0]),
        "the three waits are three different draws, not the first draw repeated: {reset_waits:?}"
    );
}

#[test]
fn breakers_left_on_the_default_seed_draw_different_waits() {
    let waits = || {
        let mut breaker = breaker(Config {
            jitter: 0.5,
            ..config()
        });
        let mut found = Vec::new();
        for round in 0..4 {
            let at = round * 100_000;
            trip(&mut breaker, at);
            found.push(breaker.metrics().open_until.unwrap().0 - at);
            breaker.reset(Millis(at));
        }
        found
    };
    let (first, second) = (waits(), waits());
    assert_ne!(
        first, second,
        "two breakers configured alike, without a fixed seed, must draw different waits, or \
         every instance of a service probes a recovering dependency at the same instant"
    );
}

// --- Pinned by mutation testing ----------------------------------------------------------

#[test]
fn time_based_window_keeps_each_call_for_exactly_its_window() {
    let failed = CallRecord {
        failed: true,
        slow: false,
    };
    let ok = CallRecord {
        failed: false,
        slow: false,
    };
    let mut window = SlidingWindow::new(WindowKind::TimeBased { seconds: 10 });
    window.record(Millis(5_500), failed);
    assert_eq!(
        window.snapshot(Millis(6_000)),
        WindowSnapshot {
            calls: 1,
            failed: 1,
            slow: 0,
            slow_failed: 0
        },
        "moving one second on (5 s to 6 s) empties only the bucket of second 6: the failure \
         of second 5 stays in the window until second 15"
    );
    window.record(Millis(12_000), ok);
    assert_eq!(
        window.snapshot(Millis(14_999)),
        WindowSnapshot {
            calls: 2,
            failed: 1,
            slow: 0,
            slow_failed: 0
        },
        "at 14.999 s the window holds seconds 5..=14: the failure of second 5 (bucket \
         5 % 10) and the success of second 12 (bucket 12 % 10)"
    );
    assert_eq!(
        window.snapshot(Millis(15_000)),
        WindowSnapshot {
            calls: 1,
            failed: 0,
            slow: 0,
            slow_failed: 0
        },
        "at second 15 the failure of second 5 is gone; the success of second 12 stays"
    );
    assert_eq!(
        window.snapshot(Millis(21_999)).calls,
        1,
        "the success of second 12 is in the window until the clock reaches second 22"
    );
    assert_eq!(
        window.snapshot(Millis(22_000)),
        WindowSnapshot::default(),
        "at second 22 the success of second 12 is gone too: the window is empty"
    );
}

#[test]
fn config_is_the_configuration_the_breaker_was_built_with() {
    let built_with = Config {
        max_wait_in_half_open: Some(Millis::from_secs(5)),
        jitter: 0.25,
        seed: Some(3),
        max_queued_outputs: 64,
        ..config()
    };
    let mut breaker = breaker(built_with.clone());
    trip(&mut breaker, 0);
    assert_eq!(
        breaker.config(),
        &built_with,
        "config() returns the Config given to new, unchanged by the calls since"
    );
}

#[test]
fn now_is_the_latest_time_given_and_never_runs_backwards() {
    let mut breaker = breaker(config());
    assert_eq!(
        breaker.now(),
        Millis(0),
        "a new breaker has been given no time yet"
    );
    call(&mut breaker, 5_000, Outcome::Success).unwrap();
    assert_eq!(
        breaker.now(),
        Millis(5_000),
        "now() is the latest time passed to any method"
    );
    breaker.handle_timeout(Millis(3_000));
    assert_eq!(
        breaker.now(),
        Millis(5_000),
        "an earlier time is treated as the latest one: the breaker's clock never runs backwards"
    );
    trip(&mut breaker, 6_000);
    assert_eq!(
        breaker.try_acquire(Millis(1_000)).unwrap_err(),
        Rejected {
            state: State::Open,
            retry_after: Some(Millis(10_000))
        },
        "opened at 6 s for 10 s: a call stamped 1 s is taken to be at 6 s, so 10 s are left"
    );
    assert_eq!(breaker.now(), Millis(6_000), "still 6 s after that call");
}

#[test]
fn reopened_from_half_open_metrics_show_the_trials_that_failed() {
    let mut breaker = breaker(config());
    trip(&mut breaker, 0);
    let [first, second, third] = three_trials(&mut breaker, 10_000);
    breaker
        .on_failure(Millis(10_100), first, Millis(10))
        .unwrap();
    breaker
        .on_success(Millis(10_200), second, Millis(10))
        .unwrap();
    breaker
        .on_failure(Millis(10_300), third, Millis(10))
        .unwrap();
    let metrics = breaker.metrics();
    assert_eq!(
        metrics.state,
        State::Open,
        "2 of 3 trials failed: 67 % >= 50 %, Open again"
    );
    assert_eq!(
        judged(&metrics),
        WindowSnapshot {
            calls: 3,
            failed: 2,
            slow: 0,
            slow_failed: 0
        },
        "in Open, metrics() shows the counts that opened it: here the three trials, not the \
         Closed window and not an empty one"
    );
    assert_eq!(
        metrics.failure_rate,
        Some(200.0 / 3.0),
        "and the failure rate of those trials, 2 of 3"
    );
}

#[test]
fn each_jittered_wait_is_one_draw_of_the_seeded_generator() {
    const JITTER: f64 = 0.5;
    let mut breaker = breaker(Config {
        jitter: JITTER,
        seed: Some(42),
        ..config()
    });
    let mut waits = Vec::new();
    for round in 0..6 {
        let at = round * 100_000;
        trip(&mut breaker, at);
        waits.push(breaker.metrics().open_until.unwrap().0 - at);
        breaker.reset(Millis(at));
    }
    // The same generator, seeded alike, drawn once per opening.
    let mut generator = fastrand::Rng::with_seed(42);
    let expected: Vec<u64> = (0..6)
        .map(|_| {
            let factor = 1.0 + JITTER * (2.0 * generator.f64() - 1.0);
            (10_000.0 * factor).round() as u64
        })
        .collect();
    assert_eq!(
        waits, expected,
        "each opening draws one u from fastrand::Rng::with_seed(seed).f64() and waits \
         wait_in_open × (1 + jitter × (2u − 1)), rounded to whole milliseconds"
    );
}

#[test]
fn a_full_output_queue_drops_the_oldest_output_and_counts_it() {
    let mut breaker = breaker(Config {
        max_queued_outputs: 2,
        ..config()
    });
    for t in 0..3 {
        call(&mut breaker, t, Outcome::Success).unwrap();
    }
    assert_eq!(
        breaker.metrics().dropped_outputs,
        1,
        "three Success events into a queue of 2: the first one is dropped and counted"
    );
    for t in 3..5 {
        call(&mut breaker, t, Outcome::Success).unwrap();
    }
    assert_eq!(
        breaker.metrics().dropped_outputs,
        3,
        "five Success events into a queue of 2: three dropped, each counted once"
    );
    let queued: Vec<Output> = std::iter::from_fn(|| breaker.poll_output()).collect();
    let success = |at| {
        Output::Event(Event::Success {
            at: Millis(at),
            duration: Millis(10),
        })
    };
    assert_eq!(
        queued,
        vec![success(3), success(4)],
        "the queue keeps the newest 2 outputs, oldest first"
    );
}
