//! Why this lab counts HalfOpen's trial calls: the `failsafe` crate does not.
//!
//! failsafe's state machine (failsafe 1.3, `src/state_machine.rs`) answers
//! `is_call_permitted()` with `true` for *every* call in HalfOpen: the first outcome
//! decides, and until it arrives all the traffic goes through. After an outage that is
//! exactly the wrong moment: the whole backlog lands on a service that has just come
//! back. resilience4j, and the core this lab is built on, admit exactly
//! `permitted_calls_in_half_open` trial calls and reject the rest until they report.
//!
//! failsafe reads time through a thread-local mock clock in its (hidden but public)
//! `failsafe::clock` module; `freeze` lets the test move it without sleeping.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use breaker_core::{Config, Millis, Outcome, State, WindowKind};
use breaker_tower::Breaker;
use breaker_tower::clock::ManualClock;
use failsafe::{StateMachine, backoff, failure_policy};

const TRIALS: u32 = 3;
const CALLS_AFTER_THE_WAIT: usize = 100;

// ANCHOR: failsafe
#[test]
fn failsafe_admits_every_call_in_half_open_ours_admits_exactly_n() {
    // failsafe: open after one failure, wait one second.
    let failsafe_admitted = failsafe::clock::freeze(|clock| {
        let policy =
            failure_policy::consecutive_failures(1, backoff::constant(Duration::from_secs(1)));
        let breaker = StateMachine::new(policy, ());
        assert!(breaker.is_call_permitted());
        breaker.on_error();
        assert!(!breaker.is_call_permitted(), "open: rejected");
        clock.advance(Duration::from_secs(2));
        // Nobody reports an outcome yet: the trial calls are still running.
        (0..CALLS_AFTER_THE_WAIT)
            .filter(|_| breaker.is_call_permitted())
            .count()
    });

    // Ours: the same situation with 3 trial calls.
    let clock = std::sync::Arc::new(ManualClock::default());
    let ours = Breaker::new(
        Config {
            window: WindowKind::CountBased { size: 1 },
            minimum_calls: 1,
            permitted_calls_in_half_open: TRIALS,
            wait_in_open: Millis(1_000),
            ..Config::default()
        },
        std::sync::Arc::clone(&clock),
    )
    .unwrap();
    ours.try_acquire()
        .unwrap()
        .record(Outcome::Failure, Millis(1));
    assert!(ours.try_acquire().is_err(), "open: rejected");
    clock.advance(Millis(2_000));
    let mut running = Vec::new();
    for _ in 0..CALLS_AFTER_THE_WAIT {
        if let Ok(admission) = ours.try_acquire() {
            running.push(admission);
        }
    }

    assert_eq!(
        failsafe_admitted, CALLS_AFTER_THE_WAIT,
        "failsafe: all of them"
    );
    assert_eq!(
        running.len(),
        TRIALS as usize,
        "ours: exactly the trial calls"
    );
    assert_eq!(ours.state(), State::HalfOpen);
}
// ANCHOR_END: failsafe
