//! Graded tests of the breaker's state machine and sliding windows.
//!
//! `cargo xtask grade breaker` runs these against the learner's copy
//! (`labs/breaker/exercise/circuit.rs`, swapped in by the `exercise` feature); plain
//! `cargo test -p breaker-core` runs them against the reference. They are ordered like the
//! chapter: first what a breaker is, then how it decides, then the edge cases that make it
//! trustworthy. Each name is a sentence, and `labs/breaker/grading.toml` lists them in the
//! same order with a hint per test. Time is a number here: nothing sleeps.

#![allow(clippy::unwrap_used)]

use breaker_core::{
    Backoff, BreakerError, CallRecord, CircuitBreaker, Config, Event, Input, Millis, Outcome,
    Output, Permit, Rejected, SlidingWindow, State, TransitionReason, WindowKind,
};
use proptest::prelude::*;
use proptest::test_runner::{
    Config as ProptestConfig, RngAlgorithm, TestError, TestRng, TestRunner,
};

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

/// Drains the output queue and keeps the state transitions.
fn transitions(breaker: &mut CircuitBreaker) -> Vec<(State, State, TransitionReason)> {
    let mut found = Vec::new();
    while let Some(output) = breaker.poll_output() {
        if let Output::Event(Event::StateTransition {
            from, to, reason, ..
        }) = output
        {
            found.push((from, to, reason));
        }
    }
    found
}

// --- What a breaker is -------------------------------------------------------------------

#[test]
fn starts_closed() {
    let mut breaker = breaker(config());
    assert_eq!(breaker.state(), State::Closed);
    let metrics = breaker.metrics();
    assert_eq!(metrics.buffered_calls, 0);
    assert_eq!(metrics.failure_rate, None, "no rate before minimum_calls");
    let permit = breaker
        .try_acquire(Millis(0))
        .expect("a closed breaker admits calls");
    assert_eq!(permit.admitted_in(), State::Closed);
    assert_eq!(breaker.poll_timeout(), None, "Closed has no deadline");
}

#[test]
fn records_outcomes_in_the_window() {
    let mut breaker = breaker(config());
    let permit = breaker.try_acquire(Millis(0)).unwrap();
    assert_eq!(breaker.metrics().in_flight, 1);
    breaker.on_success(Millis(5), permit, Millis(5)).unwrap();
    call(&mut breaker, 6, Outcome::Failure).unwrap();
    call(&mut breaker, 7, Outcome::Success).unwrap();
    let metrics = breaker.metrics();
    assert_eq!(metrics.buffered_calls, 3);
    assert_eq!(metrics.failed_calls, 1);
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
    assert_eq!(window.totals().calls, 3);
    assert_eq!(window.totals().failed, 2);
    window.record(Millis(1), slow); // pushes out the first failure
    window.record(Millis(2), ok); // pushes out the second
    let totals = window.snapshot(Millis(3));
    assert_eq!((totals.calls, totals.failed, totals.slow), (3, 0, 1));
    window.clear();
    assert_eq!(window.totals().calls, 0);
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
    assert_eq!(breaker.metrics().failure_rate, None);
}

// ANCHOR: opens_test
#[test]
fn opens_after_failure_rate_crosses_threshold() {
    let mut breaker = breaker(config());
    breaker.poll_output();
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
        vec![(
            State::Closed,
            State::Open,
            TransitionReason::FailureRateExceeded { rate: 50.0 }
        )]
    );
    assert_eq!(breaker.metrics().failure_rate, Some(50.0));
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
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().failure_rate, Some(25.0));
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
        vec![(
            State::Closed,
            State::Open,
            TransitionReason::SlowCallRateExceeded { rate: 50.0 }
        )]
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
    assert_eq!(metrics.not_permitted_calls, 1);
    assert_eq!(metrics.rejected_calls, 1);
    assert_eq!(metrics.open_until, Some(Millis(10_000)));
}
// ANCHOR_END: open_rejects_test

// ANCHOR: wait_elapsed_test
#[test]
fn open_moves_to_half_open_after_wait() {
    let mut breaker = breaker(config());
    trip(&mut breaker, 0);
    assert_eq!(breaker.poll_timeout(), Some(Millis(10_000)));
    assert!(breaker.try_acquire(Millis(9_999)).is_err(), "1 ms early");
    breaker.handle_timeout(Millis(10_000));
    assert_eq!(breaker.state(), State::HalfOpen);
    let permit = breaker.try_acquire(Millis(10_000)).expect("a trial call");
    assert_eq!(permit.admitted_in(), State::HalfOpen);

    // Without handle_timeout, the next call after the deadline makes the move itself.
    let mut lazy = self::breaker(config());
    trip(&mut lazy, 0);
    let permit = lazy.try_acquire(Millis(12_000)).expect("the wait is over");
    assert_eq!(permit.admitted_in(), State::HalfOpen);
}
// ANCHOR_END: wait_elapsed_test

#[test]
fn half_open_admits_exactly_n_trial_calls() {
    let mut breaker = breaker(config());
    trip(&mut breaker, 0);
    for n in 1..=3 {
        breaker
            .try_acquire(Millis(10_000))
            .unwrap_or_else(|r| panic!("trial call {n} of 3 was rejected: {r}"));
    }
    let rejected = breaker.try_acquire(Millis(10_001)).unwrap_err();
    assert_eq!(
        rejected,
        Rejected {
            state: State::HalfOpen,
            retry_after: None
        }
    );
    assert_eq!(breaker.metrics().in_flight, 3);
}

#[test]
fn half_open_closes_when_trials_succeed() {
    let mut breaker = breaker(config());
    trip(&mut breaker, 0);
    transitions(&mut breaker);
    for t in 0..3 {
        call(&mut breaker, 10_000 + t, Outcome::Success).unwrap();
    }
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(
        breaker.metrics().buffered_calls,
        0,
        "Closed starts with an empty window"
    );
    assert_eq!(
        transitions(&mut breaker),
        vec![
            (State::Open, State::HalfOpen, TransitionReason::WaitElapsed),
            (
                State::HalfOpen,
                State::Closed,
                TransitionReason::TrialsSucceeded
            ),
        ]
    );
}

// ANCHOR: trials_fail_test
#[test]
fn half_open_reopens_when_trials_fail() {
    let mut breaker = breaker(config());
    trip(&mut breaker, 0);
    let permits: Vec<Permit> = (0..3)
        .map(|_| breaker.try_acquire(Millis(10_000)).unwrap())
        .collect();
    breaker
        .on_failure(Millis(10_100), permits[0], Millis(10))
        .unwrap();
    breaker
        .on_failure(Millis(10_200), permits[1], Millis(10))
        .unwrap();
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "decide only once all 3 trials have an outcome"
    );
    breaker
        .on_success(Millis(10_300), permits[2], Millis(10))
        .unwrap();
    assert_eq!(
        breaker.state(),
        State::Open,
        "2 of 3 trials failed: 67 % >= 50 %"
    );
    assert_eq!(breaker.metrics().open_until, Some(Millis(20_300)));
}
// ANCHOR_END: trials_fail_test

// --- The edge cases that make it trustworthy ---------------------------------------------

// ANCHOR: cancelled_trial_test
#[test]
fn cancelled_trial_frees_its_slot() {
    let mut breaker = breaker(config());
    trip(&mut breaker, 0);
    let permits: Vec<Permit> = (0..3)
        .map(|_| breaker.try_acquire(Millis(10_000)).unwrap())
        .collect();
    breaker
        .release(Millis(10_050), permits[1])
        .expect("a trial permit can be released");
    let replacement = breaker
        .try_acquire(Millis(10_060))
        .expect("the released slot admits another trial");
    assert!(
        breaker.try_acquire(Millis(10_070)).is_err(),
        "still only 3 at a time"
    );
    for permit in [permits[0], permits[2], replacement] {
        breaker
            .on_success(Millis(10_100), permit, Millis(10))
            .unwrap();
    }
    assert_eq!(breaker.state(), State::Closed);
}
// ANCHOR_END: cancelled_trial_test

#[test]
fn ignored_outcomes_are_neither_success_nor_failure() {
    let mut breaker = breaker(config());
    for t in 0..10 {
        call(&mut breaker, t, Outcome::Ignored).unwrap();
    }
    assert_eq!(breaker.metrics().buffered_calls, 0);
    trip(&mut breaker, 20);
    let permit = breaker.try_acquire(Millis(10_020)).unwrap();
    for _ in 0..2 {
        breaker.try_acquire(Millis(10_020)).unwrap();
    }
    breaker
        .on_outcome(Millis(10_030), permit, Outcome::Ignored, Millis(10))
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
    trip(&mut breaker, 1);
    let before = breaker.metrics();
    let late = breaker.on_failure(Millis(2), slow_call, Millis(2));
    assert!(
        matches!(late, Err(BreakerError::StalePermit { .. })),
        "a permit from Closed returned in Open must be refused, got {late:?}"
    );
    assert_eq!(breaker.metrics(), before, "a stale outcome changes nothing");
    assert!(matches!(
        breaker.release(Millis(3), slow_call),
        Err(BreakerError::StalePermit { .. })
    ));
}
// ANCHOR_END: stale_permit_test

// ANCHOR: handed_back_once_test
#[test]
fn a_permit_is_handed_back_only_once() {
    let mut breaker = breaker(config());
    let permit = breaker.try_acquire(Millis(0)).unwrap();
    breaker.on_success(Millis(1), permit, Millis(1)).unwrap();
    assert_eq!(
        breaker.on_success(Millis(2), permit, Millis(1)),
        Err(BreakerError::UnknownPermit)
    );
    assert_eq!(breaker.metrics().buffered_calls, 1);

    trip(&mut breaker, 3);
    let trial = breaker.try_acquire(Millis(10_003)).unwrap();
    breaker
        .on_failure(Millis(10_004), trial, Millis(1))
        .unwrap();
    assert_eq!(
        breaker.on_failure(Millis(10_005), trial, Millis(1)),
        Err(BreakerError::UnknownPermit),
        "a trial counted twice would decide HalfOpen on fewer real trials"
    );
    assert_eq!(
        breaker.release(Millis(10_006), trial),
        Err(BreakerError::UnknownPermit)
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
    assert_eq!(breaker.metrics().buffered_calls, 3);
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
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(breaker.poll_timeout(), Some(Millis(15_000)));
    transitions(&mut breaker);
    breaker.handle_timeout(Millis(15_000));
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(
        transitions(&mut breaker),
        vec![(
            State::HalfOpen,
            State::Open,
            TransitionReason::HalfOpenTimedOut
        )]
    );
    assert_eq!(breaker.poll_timeout(), Some(Millis(25_000)));
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
        "10 s, ×2, then capped at 35 s"
    );
    call(&mut breaker, now, Outcome::Success).unwrap();
    assert_eq!(breaker.state(), State::Closed);
    trip(&mut breaker, now);
    assert_eq!(
        breaker.metrics().open_until,
        Some(Millis(now + 10_000)),
        "closing forgets the backoff"
    );
}
// ANCHOR_END: backoff_test

#[test]
fn jitter_spreads_the_wait_and_is_reproducible_from_the_seed() {
    let waits = |seed: u64| -> Vec<u64> {
        let mut breaker = breaker(Config {
            jitter: 0.5,
            seed,
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
    assert_eq!(breaker.state(), State::ForcedOpen);
    assert_eq!(
        breaker.try_acquire(Millis(1)).unwrap_err(),
        Rejected {
            state: State::ForcedOpen,
            retry_after: None
        }
    );
    assert_eq!(breaker.poll_timeout(), None, "no wait ends a forced open");
    breaker.handle_timeout(Millis(1_000_000));
    assert_eq!(breaker.state(), State::ForcedOpen);
    breaker.reset(Millis(1_000_001));
    assert_eq!(breaker.state(), State::Closed);
    assert!(breaker.try_acquire(Millis(1_000_002)).is_ok());
}

#[test]
fn disabled_admits_everything_and_records_nothing() {
    let mut breaker = breaker(config());
    breaker.disable(Millis(0));
    for t in 0..100 {
        call(&mut breaker, t, Outcome::Failure).expect("Disabled admits every call");
    }
    assert_eq!(breaker.state(), State::Disabled);
    assert_eq!(breaker.metrics().buffered_calls, 0);
    breaker.transition_to(Millis(200), State::Closed).unwrap();
    assert_eq!(breaker.metrics().buffered_calls, 0);
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
    assert_eq!(
        story.len(),
        6,
        "4 failures, a transition, a rejection: {story:#?}"
    );
    assert!(matches!(
        story[0],
        Event::Failure {
            at: Millis(0),
            duration: Millis(10)
        }
    ));
    assert!(matches!(
        story[4],
        Event::StateTransition {
            at: Millis(3),
            from: State::Closed,
            to: State::Open,
            ..
        }
    ));
    assert!(matches!(story[5], Event::Rejected { at: Millis(5), .. }));
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
    assert_eq!(breaker.metrics().buffered_calls, 1);
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
        })
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
    /// Let time pass.
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::Acquire),
        3 => (any::<usize>(), prop_oneof![
            Just(Outcome::Success), Just(Outcome::Failure), Just(Outcome::Ignored)
        ]).prop_map(|(n, outcome)| Step::Finish(n, outcome)),
        1 => any::<usize>().prop_map(Step::Cancel),
        2 => (0u64..15_000).prop_map(Step::Wait),
    ]
}

/// The seed of the property test: fixed, so every grading run is the same; set
/// `BREAKER_PROPTEST_SEED` to explore other workloads.
fn proptest_seed() -> u64 {
    std::env::var("BREAKER_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00b3_ea4e_5eed)
}

#[test]
fn half_open_never_admits_more_than_n_trial_calls() {
    let seed = proptest_seed();
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        ProptestConfig {
            cases: 200,
            // The seed below reproduces a failure; no regression files in the learner's tree.
            failure_persistence: None,
            ..ProptestConfig::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let result = runner.run(&proptest::collection::vec(step(), 1..120), |steps| {
        let mut breaker = breaker(config());
        let mut now = 0;
        let mut outstanding: Vec<Permit> = Vec::new();
        for (index, step) in steps.iter().enumerate() {
            match step {
                Step::Acquire => {
                    if let Ok(permit) = breaker.try_acquire(Millis(now)) {
                        outstanding.push(permit);
                    }
                }
                Step::Finish(n, outcome) if !outstanding.is_empty() => {
                    let permit = outstanding.remove(n % outstanding.len());
                    let _stale_is_fine =
                        breaker.on_outcome(Millis(now), permit, *outcome, Millis(10));
                }
                Step::Cancel(n) if !outstanding.is_empty() => {
                    let permit = outstanding.remove(n % outstanding.len());
                    let _stale_is_fine = breaker.release(Millis(now), permit);
                }
                Step::Wait(ms) => {
                    now += ms;
                    breaker.handle_timeout(Millis(now));
                }
                _ => {}
            }
            if breaker.state() == State::HalfOpen {
                let trials = outstanding
                    .iter()
                    .filter(|p| p.generation() == breaker.generation())
                    .count();
                prop_assert!(
                    trials <= 3,
                    "after step {index} ({step:?}) at {now} ms, HalfOpen has {trials} trial \
                     calls in flight; permitted_calls_in_half_open is 3"
                );
                prop_assert_eq!(breaker.metrics().in_flight as usize, trials);
            }
        }
        Ok(())
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, steps)) => panic!(
            "Test failed: {reason}\nminimal failing input: {steps:?}\n\
             seed: {seed} (replay with BREAKER_PROPTEST_SEED={seed})"
        ),
        Err(TestError::Abort(reason)) => panic!("property test aborted: {reason} (seed {seed})"),
    }
}
