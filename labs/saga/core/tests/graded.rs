//! Graded tests of the saga's decision function.
//!
//! `cargo xtask grade saga` runs these against the learner's copy
//! (`labs/saga/exercise/decide.rs`, swapped in by the `exercise` feature); plain
//! `cargo test -p saga-core` runs them against the reference. They are ordered like the
//! chapter: first the happy path, then compensation, then retries and backoff, then the pivot
//! and the edge cases that make a saga trustworthy after crashes and duplicate deliveries.
//! Each name is a sentence, and `labs/saga/grading.toml` lists them in the same order with a
//! hint per test. Time is a number here: nothing sleeps.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, TestRng, TestRunner};
use saga_core::{
    Action, Event, FailureKind, Input, Millis, Output, RetryPolicy, Saga, SagaDefinition, SagaLog,
    SagaOutcome, backoff_delay, next_action,
};

/// The guide's saga: 0 create order, 1 reserve payment, 2 reserve inventory,
/// 3 schedule shipping (the pivot), 4 capture payment and 5 approve order (forward only).
/// Three tries per step, compensations retried for 15 minutes, backoff 100 ms doubling up
/// to 2 s.
fn order_saga() -> SagaDefinition {
    SagaDefinition::order_fulfilment()
}

// ANCHOR: log_helper
/// A log with these events, each at its given millisecond.
fn log(events: &[(u64, Event)]) -> SagaLog {
    let mut log = SagaLog::new();
    log.append(Millis(0), Event::SagaStarted);
    for (at, event) in events {
        log.append(Millis(*at), event.clone());
    }
    log
}
// ANCHOR_END: log_helper

fn succeeded(step: usize) -> Event {
    Event::StepSucceeded { step }
}

fn business_failure(step: usize) -> Event {
    Event::StepFailed {
        step,
        kind: FailureKind::Business,
        reason: "refused".to_owned(),
    }
}

fn timeout(step: usize) -> Event {
    Event::StepFailed {
        step,
        kind: FailureKind::Retryable,
        reason: "timed out".to_owned(),
    }
}

fn compensated(step: usize) -> Event {
    Event::CompensationSucceeded { step }
}

fn compensation_failed(step: usize) -> Event {
    Event::CompensationFailed {
        step,
        reason: "503".to_owned(),
    }
}

fn run(step: usize) -> Action {
    Action::Run {
        step,
        attempt: 1,
        not_before: Millis::ZERO,
    }
}

fn compensate(step: usize) -> Action {
    Action::Compensate {
        step,
        attempt: 1,
        not_before: Millis::ZERO,
    }
}

#[test]
fn a_new_saga_runs_its_first_step() {
    assert_eq!(next_action(&order_saga(), &log(&[])), run(0));
}

#[test]
fn each_success_moves_on_to_the_next_step() {
    let saga = order_saga();
    assert_eq!(next_action(&saga, &log(&[(1, succeeded(0))])), run(1));
    assert_eq!(
        next_action(&saga, &log(&[(1, succeeded(0)), (2, succeeded(1))])),
        run(2)
    );
}

#[test]
fn finishes_when_every_step_succeeded() {
    let steps = order_saga().steps.len();
    let events: Vec<_> = (0..steps)
        .map(|step| (step as u64, succeeded(step)))
        .collect();
    assert_eq!(next_action(&order_saga(), &log(&events)), Action::Finish);
}

// ANCHOR: business_failure_test
#[test]
fn a_business_failure_compensates_the_previous_step_first() {
    // Out of stock at step 2: the payment (step 1) is refunded first, not the order.
    let events = [
        (1, succeeded(0)),
        (2, succeeded(1)),
        (3, business_failure(2)),
    ];
    assert_eq!(next_action(&order_saga(), &log(&events)), compensate(1));
}
// ANCHOR_END: business_failure_test

// ANCHOR: reverse_order_test
#[test]
fn compensations_run_in_reverse_order_then_the_saga_fails() {
    let saga = order_saga();
    let mut events = vec![
        (1, succeeded(0)),
        (2, succeeded(1)),
        (3, succeeded(2)),
        (4, business_failure(3)),
    ];
    let mut order = Vec::new();
    for at in 5..10 {
        match next_action(&saga, &log(&events)) {
            Action::Compensate { step, .. } => {
                order.push(step);
                events.push((at, compensated(step)));
            }
            Action::Fail => break,
            other => panic!("expected a compensation or Fail, got {other:?}"),
        }
    }
    assert_eq!(order, vec![2, 1, 0]);
    assert_eq!(next_action(&saga, &log(&events)), Action::Fail);
}
// ANCHOR_END: reverse_order_test

#[test]
fn a_step_refused_for_business_reasons_is_not_compensated_itself() {
    // The participant said no and changed nothing: there is nothing of step 0 to undo.
    assert_eq!(
        next_action(&order_saga(), &log(&[(1, business_failure(0))])),
        Action::Fail
    );
}

// ANCHOR: retry_test
#[test]
fn a_retryable_failure_runs_the_same_step_again_after_the_backoff() {
    assert_eq!(
        next_action(&order_saga(), &log(&[(1, succeeded(0)), (50, timeout(1))])),
        Action::Run {
            step: 1,
            attempt: 2,
            not_before: Millis(150),
        }
    );
}
// ANCHOR_END: retry_test

// ANCHOR: backoff_test
#[test]
fn the_backoff_doubles_and_is_capped() {
    let policy = RetryPolicy::default();
    let delays: Vec<u64> = (1..=7).map(|n| backoff_delay(&policy, n).0).collect();
    assert_eq!(delays, vec![100, 200, 400, 800, 1600, 2000, 2000]);
    let constant = RetryPolicy {
        multiplier: 1,
        ..policy
    };
    assert_eq!(backoff_delay(&constant, 5), Millis(100));
}
// ANCHOR_END: backoff_test

#[test]
fn the_backoff_counts_from_the_latest_failure() {
    let events = [(1, succeeded(0)), (10, timeout(1)), (500, timeout(1))];
    assert_eq!(
        next_action(&order_saga(), &log(&events)),
        Action::Run {
            step: 1,
            attempt: 3,
            not_before: Millis(700),
        }
    );
}

// ANCHOR: out_of_tries_test
#[test]
fn a_step_out_of_tries_is_compensated_too_because_its_outcome_is_unknown() {
    // Three timeouts on the payment: the money may be reserved. Refund it, then cancel.
    let saga = order_saga();
    let events = [
        (1, succeeded(0)),
        (10, timeout(1)),
        (200, timeout(1)),
        (600, timeout(1)),
    ];
    assert_eq!(next_action(&saga, &log(&events)), compensate(1));
    let mut events = events.to_vec();
    events.push((700, compensated(1)));
    assert_eq!(next_action(&saga, &log(&events)), compensate(0));
}
// ANCHOR_END: out_of_tries_test

#[test]
fn steps_without_a_compensation_are_skipped_when_undoing() {
    let mut saga = order_saga();
    saga.steps[1].compensation = None; // e.g. a read-only credit check
    let events = [
        (1, succeeded(0)),
        (2, succeeded(1)),
        (3, business_failure(2)),
    ];
    assert_eq!(next_action(&saga, &log(&events)), compensate(0));
}

#[test]
fn a_failed_compensation_is_retried_after_the_backoff() {
    let events = [
        (1, succeeded(0)),
        (2, business_failure(1)),
        (10, compensation_failed(0)),
    ];
    assert_eq!(
        next_action(&order_saga(), &log(&events)),
        Action::Compensate {
            step: 0,
            attempt: 2,
            not_before: Millis(110),
        }
    );
}

// ANCHOR: needs_attention_test
#[test]
fn a_compensation_that_keeps_failing_needs_attention() {
    // Failing from 10 ms on, every 2 s: still retried until it has failed for 15 minutes.
    let window = RetryPolicy::default().compensation_retry_for.0;
    let mut events = vec![(1, succeeded(0)), (2, business_failure(1))];
    let mut at = 10;
    while at < 10 + window {
        events.push((at, compensation_failed(0)));
        at += 2_000;
    }
    assert!(matches!(
        next_action(&order_saga(), &log(&events)),
        Action::Compensate { step: 0, .. }
    ));
    events.push((10 + window, compensation_failed(0)));
    assert_eq!(
        next_action(&order_saga(), &log(&events)),
        Action::NeedsAttention { step: 0 }
    );
}
// ANCHOR_END: needs_attention_test

// ANCHOR: after_pivot_test
#[test]
fn a_failed_compensation_is_retried_for_minutes_not_a_few_tries() {
    // Five failures in three seconds (a participant restarting) are no reason to give up.
    let mut events = vec![(1, succeeded(0)), (2, business_failure(1))];
    for at in [10, 110, 310, 710, 1_510] {
        events.push((at, compensation_failed(0)));
    }
    assert_eq!(
        next_action(&order_saga(), &log(&events)),
        Action::Compensate {
            step: 0,
            attempt: 6,
            not_before: Millis(1_510 + 1_600),
        }
    );
}

#[test]
fn a_saga_resumed_after_needing_attention_compensates_again_at_once() {
    let window = RetryPolicy::default().compensation_retry_for.0;
    let mut events = vec![
        (1, succeeded(0)),
        (2, business_failure(1)),
        (10, compensation_failed(0)),
        (10 + window, compensation_failed(0)),
        (10 + window, Event::NeedsAttention { step: 0 }),
    ];
    assert_eq!(
        next_action(&order_saga(), &log(&events)),
        Action::Done {
            outcome: SagaOutcome::NeedsAttention
        },
        "stopped until someone resumes it"
    );
    events.push((20 + window, Event::Resumed));
    assert_eq!(
        next_action(&order_saga(), &log(&events)),
        Action::Compensate {
            step: 0,
            attempt: 3,
            not_before: Millis::ZERO,
        },
        "the next try, at once, with a fresh window"
    );
    let mut saga = Saga::resume("order-9", order_saga(), log(&events[..5]), Millis(0)).unwrap();
    assert_eq!(saga.outcome(), Some(SagaOutcome::NeedsAttention));
    saga.retry(Millis(20 + window)).unwrap();
    assert_eq!(saga.outcome(), None, "running again");
    let sent = last_sent(&mut saga);
    assert_eq!((sent.step, sent.attempt), (0, 3));
    assert!(
        saga.retry(Millis(30 + window)).is_err(),
        "only a stopped saga"
    );
}

#[test]
fn steps_after_the_pivot_are_retried_without_limit() {
    let mut events: Vec<_> = (0..4).map(|step| (step as u64, succeeded(step))).collect();
    for at in 0..20 {
        events.push((100 + at, timeout(4)));
    }
    assert_eq!(
        next_action(&order_saga(), &log(&events)),
        Action::Run {
            step: 4,
            attempt: 21,
            not_before: Millis(119 + 2_000),
        }
    );
}
// ANCHOR_END: after_pivot_test

#[test]
fn the_pivot_itself_can_still_be_compensated() {
    let events = [
        (1, succeeded(0)),
        (2, succeeded(1)),
        (3, succeeded(2)),
        (4, timeout(3)),
        (5, timeout(3)),
        (6, timeout(3)),
    ];
    assert_eq!(next_action(&order_saga(), &log(&events)), compensate(3));
}

#[test]
fn a_business_failure_after_the_pivot_needs_attention() {
    let mut events: Vec<_> = (0..4).map(|step| (step as u64, succeeded(step))).collect();
    events.push((10, business_failure(4)));
    assert_eq!(
        next_action(&order_saga(), &log(&events)),
        Action::NeedsAttention { step: 4 }
    );
}

#[test]
fn a_log_that_ended_the_saga_is_done() {
    let events = [(1, business_failure(0)), (2, Event::SagaCompensated)];
    assert_eq!(
        next_action(&order_saga(), &log(&events)),
        Action::Done {
            outcome: SagaOutcome::Compensated
        }
    );
}

// ANCHOR: unanswered_test
#[test]
fn a_command_sent_but_unanswered_is_decided_again() {
    // The orchestrator crashed after sending step 1: on restart the same try goes out again.
    let events = [
        (1, succeeded(0)),
        (
            2,
            Event::StepStarted {
                step: 1,
                attempt: 1,
            },
        ),
    ];
    assert_eq!(next_action(&order_saga(), &log(&events)), run(1));
}
// ANCHOR_END: unanswered_test

#[test]
fn a_saga_resumed_from_its_log_resends_with_the_same_idempotency_key() {
    let mut saga = Saga::start("order-7", order_saga(), Millis(0)).unwrap();
    saga.handle_input(
        Millis(1),
        Input::StepSucceeded {
            step: 0,
            attempt: 1,
        },
    )
    .unwrap();
    let sent_before = last_sent(&mut saga);
    let mut resumed = Saga::resume("order-7", order_saga(), saga.log().clone(), Millis(99))
        .expect("a log written by a saga resumes");
    let sent_after = last_sent(&mut resumed);
    assert_eq!(sent_before.idempotency_key, sent_after.idempotency_key);
    assert_eq!((sent_after.step, sent_after.attempt), (1, 1));
}

#[test]
fn a_duplicate_outcome_is_refused_and_changes_nothing() {
    let mut saga = Saga::start("order-8", order_saga(), Millis(0)).unwrap();
    saga.handle_input(
        Millis(1),
        Input::StepSucceeded {
            step: 0,
            attempt: 1,
        },
    )
    .unwrap();
    let before = saga.log().clone();
    assert!(
        saga.handle_input(
            Millis(2),
            Input::StepSucceeded {
                step: 0,
                attempt: 1
            }
        )
        .is_err()
    );
    assert_eq!(saga.log(), &before);
}

fn last_sent(saga: &mut Saga) -> saga_core::Command {
    std::iter::from_fn(|| saga.poll_output())
        .filter_map(|output| match output {
            Output::Send(command) => Some(command),
            _ => None,
        })
        .last()
        .expect("the saga sent a command")
}

/// One random saga driven to its end; returns the log. Outcomes are drawn from `fates`.
fn drive(fates: &[u8]) -> SagaLog {
    // A short compensation window, so that a compensation failing for ever stops within the
    // 400 deliveries below.
    let mut definition = order_saga();
    definition.retry.compensation_retry_for = Millis(20_000);
    let mut saga = Saga::start("random", definition, Millis(0)).unwrap();
    let mut now = 0;
    for fate in fates.iter().cycle().take(400) {
        if saga.outcome().is_some() {
            break;
        }
        now += 1;
        if let Some(wake) = saga.poll_timeout() {
            now = now.max(wake.0);
            saga.handle_timeout(Millis(now));
        }
        while saga.poll_output().is_some() {}
        let Some(command) = saga.in_flight().cloned() else {
            continue;
        };
        let (step, attempt) = (command.step, command.attempt);
        let input = match (command.kind, fate % 4) {
            (saga_core::CommandKind::Action, 0) if step <= 3 => Input::StepFailed {
                step,
                attempt,
                kind: FailureKind::Business,
                reason: "no".to_owned(),
            },
            (saga_core::CommandKind::Action, 1) => Input::StepFailed {
                step,
                attempt,
                kind: FailureKind::Retryable,
                reason: "timeout".to_owned(),
            },
            (saga_core::CommandKind::Action, _) => Input::StepSucceeded { step, attempt },
            (saga_core::CommandKind::Compensation, 1) => Input::CompensationFailed {
                step,
                attempt,
                reason: "503".to_owned(),
            },
            (saga_core::CommandKind::Compensation, _) => {
                Input::CompensationSucceeded { step, attempt }
            }
        };
        saga.handle_input(Millis(now), input.clone()).unwrap();
        // A duplicate delivery of the same outcome must be refused.
        assert!(saga.handle_input(Millis(now), input).is_err());
    }
    saga.log().clone()
}

#[test]
fn random_sagas_end_and_undo_in_reverse_order() {
    let mut runner = TestRunner::new_with_rng(
        ProptestConfig {
            cases: 256,
            ..ProptestConfig::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let result = runner.run(&proptest::collection::vec(0u8..8, 1..40), |fates| {
        let log = drive(&fates);
        prop_assert!(log.outcome().is_some(), "the saga did not end: {log:?}");
        let undone: Vec<usize> = log
            .entries()
            .iter()
            .filter_map(|entry| match entry.event {
                Event::CompensationSucceeded { step } => Some(step),
                _ => None,
            })
            .collect();
        prop_assert!(
            undone.windows(2).all(|pair| pair[0] > pair[1]),
            "compensations out of order: {undone:?}"
        );
        let done: Vec<usize> = log
            .entries()
            .iter()
            .filter_map(|entry| match entry.event {
                Event::StepSucceeded { step } => Some(step),
                _ => None,
            })
            .collect();
        prop_assert!(
            done.windows(2).all(|pair| pair[0] < pair[1]),
            "a step succeeded twice or out of order: {done:?}"
        );
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
