//! Graded tests of the saga's decision function.
//!
//! `cargo xtask grade saga` runs these against the learner's copy
//! (`labs/saga/exercise/decide.rs`, swapped in by the `exercise` feature); plain
//! `cargo test -p saga-core` runs them against the reference. They are ordered like the
//! chapter: first the happy path, then compensation, then retries and backoff, then the pivot
//! and the edge cases that make a saga trustworthy after crashes and duplicate deliveries.
//! Each name is a sentence, and `labs/saga/grading.toml` lists them in the same order with a
//! hint per test. Time is a number here: nothing sleeps.
//!
//! Every assertion says what it expects and why: actions are compared whole (their fields
//! are named), and each carries a message. The property test's assertions name the invariant
//! they check (`invariant: <name>` in the message), so the grader can pick the hint for the
//! invariant that failed.

#![allow(clippy::unwrap_used)]

use lab_test_support::check_property;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
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
    assert_eq!(
        next_action(&order_saga(), &log(&[])),
        run(0),
        "a log with only SagaStarted runs step 0, first try, at once"
    );
}

#[test]
fn each_success_moves_on_to_the_next_step() {
    let saga = order_saga();
    assert_eq!(
        next_action(&saga, &log(&[(1, succeeded(0))])),
        run(1),
        "step 0 succeeded: step 1 runs next, first try, at once"
    );
    assert_eq!(
        next_action(&saga, &log(&[(1, succeeded(0)), (2, succeeded(1))])),
        run(2),
        "steps 0 and 1 succeeded: step 2 runs next, first try, at once"
    );
}

#[test]
fn finishes_when_every_step_succeeded() {
    let steps = order_saga().steps.len();
    let events: Vec<_> = (0..steps)
        .map(|step| (step as u64, succeeded(step)))
        .collect();
    assert_eq!(
        next_action(&order_saga(), &log(&events)),
        Action::Finish,
        "every one of the {steps} steps succeeded: nothing is left but to finish"
    );
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
    assert_eq!(
        next_action(&order_saga(), &log(&events)),
        compensate(1),
        "step 2 refused: undo the latest step that succeeded (1) first, first try, at once"
    );
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
    assert_eq!(
        order,
        vec![2, 1, 0],
        "step 3 refused: the steps that succeeded are undone last to first"
    );
    assert_eq!(
        next_action(&saga, &log(&events)),
        Action::Fail,
        "every succeeded step is compensated: the saga has failed cleanly"
    );
}
// ANCHOR_END: reverse_order_test

#[test]
fn a_step_refused_for_business_reasons_is_not_compensated_itself() {
    // The participant said no and changed nothing: there is nothing of step 0 to undo.
    assert_eq!(
        next_action(&order_saga(), &log(&[(1, business_failure(0))])),
        Action::Fail,
        "step 0 refused and nothing succeeded: nothing to undo, the saga fails"
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
        },
        "step 1 timed out at 50 ms: try 2 of step 1, after the first backoff (100 ms)"
    );
}
// ANCHOR_END: retry_test

// ANCHOR: backoff_test
#[test]
fn the_backoff_doubles_and_is_capped() {
    let policy = RetryPolicy::default();
    let delays: Vec<u64> = (1..=7).map(|n| backoff_delay(&policy, n).0).collect();
    assert_eq!(
        delays,
        vec![100, 200, 400, 800, 1600, 2000, 2000],
        "backoff_delay after 1 to 7 failures: 100 ms doubling, never more than 2 s"
    );
    let constant = RetryPolicy {
        multiplier: 1,
        ..policy
    };
    assert_eq!(
        backoff_delay(&constant, 5),
        Millis(100),
        "a multiplier of 1 keeps the wait at initial_backoff"
    );
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
        },
        "timeouts at 10 and 500 ms: try 3, 200 ms (the second backoff) after the latest"
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
    assert_eq!(
        next_action(&saga, &log(&events)),
        compensate(1),
        "step 1 used its 3 tries and may have done its work: compensate it first"
    );
    let mut events = events.to_vec();
    events.push((700, compensated(1)));
    assert_eq!(
        next_action(&saga, &log(&events)),
        compensate(0),
        "step 1 undone: step 0 is next"
    );
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
    assert_eq!(
        next_action(&saga, &log(&events)),
        compensate(0),
        "step 2 refused and step 1 has no compensation: skip it, undo step 0"
    );
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
        },
        "step 0's compensation failed at 10 ms: try 2, after the first backoff (100 ms)"
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
    let action = next_action(&order_saga(), &log(&events));
    assert!(
        matches!(action, Action::Compensate { step: 0, .. }),
        "failing for less than compensation_retry_for: compensate step 0 again, got {action:?}"
    );
    events.push((10 + window, compensation_failed(0)));
    assert_eq!(
        next_action(&order_saga(), &log(&events)),
        Action::NeedsAttention { step: 0 },
        "failing for exactly compensation_retry_for (first to latest failure): ask for a human"
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
        },
        "five failures in 1.5 s are far from the 15-minute window: try 6, after the fifth \
         backoff (1.6 s)"
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
    let mut saga = Saga::resume("order-9", order_saga(), log(&events[..5]), Millis(0))
        .expect("a log that starts with SagaStarted resumes");
    assert_eq!(
        saga.outcome(),
        Some(SagaOutcome::NeedsAttention),
        "a saga resumed from a log that stopped it is still stopped"
    );
    saga.retry(Millis(20 + window))
        .expect("a stopped saga can be set going again");
    assert_eq!(saga.outcome(), None, "running again");
    let sent = last_sent(&mut saga);
    assert_eq!(
        (sent.step, sent.attempt),
        (0, 3),
        "(step, attempt) of the command sent on retry: step 0's compensation, try 3"
    );
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
        },
        "step 4 is after the pivot: 20 timeouts give try 21, with the wait capped at 2 s"
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
    assert_eq!(
        next_action(&order_saga(), &log(&events)),
        compensate(3),
        "the pivot (step 3) used its 3 tries: it gives up and is compensated first"
    );
}

#[test]
fn a_business_failure_after_the_pivot_needs_attention() {
    let mut events: Vec<_> = (0..4).map(|step| (step as u64, succeeded(step))).collect();
    events.push((10, business_failure(4)));
    assert_eq!(
        next_action(&order_saga(), &log(&events)),
        Action::NeedsAttention { step: 4 },
        "step 4 (after the pivot) refused: it cannot be undone, ask for a human"
    );
}

#[test]
fn a_log_that_ended_the_saga_is_done() {
    let events = [(1, business_failure(0)), (2, Event::SagaCompensated)];
    assert_eq!(
        next_action(&order_saga(), &log(&events)),
        Action::Done {
            outcome: SagaOutcome::Compensated
        },
        "a log with SagaCompensated is over"
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
    assert_eq!(
        next_action(&order_saga(), &log(&events)),
        run(1),
        "step 1 was sent but never answered: the same try goes out again"
    );
}
// ANCHOR_END: unanswered_test

#[test]
fn a_saga_resumed_from_its_log_resends_with_the_same_idempotency_key() {
    let mut saga =
        Saga::start("order-7", order_saga(), Millis(0)).expect("the order saga is valid");
    saga.handle_input(
        Millis(1),
        Input::StepSucceeded {
            step: 0,
            attempt: 1,
        },
    )
    .expect("the saga sent step 0, try 1, and accepts its success");
    let sent_before = last_sent(&mut saga);
    let mut resumed = Saga::resume("order-7", order_saga(), saga.log().clone(), Millis(99))
        .expect("a log written by a saga resumes");
    let sent_after = last_sent(&mut resumed);
    assert_eq!(
        sent_before.idempotency_key, sent_after.idempotency_key,
        "the command re-sent after the restart carries the key of the one sent before"
    );
    assert_eq!(
        (sent_after.step, sent_after.attempt),
        (1, 1),
        "(step, attempt) re-sent after the restart: step 1, try 1, as before the crash"
    );
}

#[test]
fn a_duplicate_outcome_is_refused_and_changes_nothing() {
    let mut saga =
        Saga::start("order-8", order_saga(), Millis(0)).expect("the order saga is valid");
    saga.handle_input(
        Millis(1),
        Input::StepSucceeded {
            step: 0,
            attempt: 1,
        },
    )
    .expect("the saga sent step 0, try 1, and accepts its success");
    let before = saga.log().clone();
    let duplicate = saga.handle_input(
        Millis(2),
        Input::StepSucceeded {
            step: 0,
            attempt: 1,
        },
    );
    assert!(
        duplicate.is_err(),
        "a second success of step 0, try 1, answers nothing in flight and is refused"
    );
    assert_eq!(
        saga.log(),
        &before,
        "a refused outcome leaves the log as it was"
    );
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
fn drive(fates: &[u8]) -> Result<SagaLog, TestCaseError> {
    // A short compensation window, so that a compensation failing for ever stops within the
    // 400 deliveries below.
    let mut definition = order_saga();
    definition.retry.compensation_retry_for = Millis(20_000);
    let mut saga = Saga::start("random", definition, Millis(0)).expect("the order saga is valid");
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
        if let Err(error) = saga.handle_input(Millis(now), input.clone()) {
            return Err(TestCaseError::fail(format!(
                "the saga refused the answer to its own command in flight ({input:?}): {error}"
            )));
        }
        prop_assert!(
            saga.handle_input(Millis(now), input.clone()).is_err(),
            "invariant: a_duplicate_is_refused: {input:?} was delivered twice and accepted \
             twice; the decision after it sent the very same try again"
        );
    }
    Ok(saga.log().clone())
}

/// The last few entries of a log, one per line, for a failure message that fits a screen.
fn tail(log: &SagaLog) -> String {
    let entries = log.entries();
    let shown = &entries[entries.len().saturating_sub(8)..];
    let lines: Vec<String> = shown
        .iter()
        .map(|entry| format!("  #{} at {} ms: {:?}", entry.seq, entry.at.0, entry.event))
        .collect();
    format!(
        "{} entries, the last {}:\n{}",
        entries.len(),
        shown.len(),
        lines.join("\n")
    )
}

/// The seed of the property test: fixed, so every grading run is the same; set
/// `PROPTEST_SEED` to explore other workloads.
const PROPTEST_SEED: u64 = 0x05a6_a5eed;

#[test]
fn random_sagas_end_and_undo_in_reverse_order() {
    check_property(
        256,
        PROPTEST_SEED,
        &proptest::collection::vec(0u8..8, 1..40),
        |fates| {
            let log = drive(&fates)?;
            prop_assert!(
                log.outcome().is_some(),
                "invariant: every_saga_ends: after 400 deliveries the saga is neither completed, \
             compensated nor stopped in NeedsAttention; its log has {}",
                tail(&log)
            );
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
                "invariant: compensations_run_last_to_first: steps compensated, in log order: \
             {undone:?}; each must be an earlier step than the one before it"
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
                "invariant: steps_succeed_once_in_order: steps that succeeded, in log order: \
             {done:?}; each step runs after the one before it, and succeeds once"
            );
            Ok(())
        },
    );
}

#[test]
fn outcomes_for_a_step_the_definition_does_not_have_are_ignored() {
    // A log read back from storage may hold a reply for a step this definition has not got
    // (one written under a longer definition, a corrupt row): it is no outcome of this saga.
    // The order saga has 6 steps, 0 to 5; step 6 is the first index past the last.
    let saga = order_saga();
    let steps = saga.steps.len();
    let strays = |step: usize| {
        [
            ("StepSucceeded", succeeded(step)),
            ("StepFailed (business)", business_failure(step)),
            ("StepFailed (retryable)", timeout(step)),
            ("CompensationSucceeded", compensated(step)),
            ("CompensationFailed", compensation_failed(step)),
        ]
    };
    for stray_step in [steps, steps + 1, 99] {
        for (kind, stray) in strays(stray_step) {
            assert_eq!(
                next_action(&saga, &log(&[(1, succeeded(0)), (2, stray.clone())])),
                run(1),
                "going forward: a {kind} entry for step {stray_step} of a saga with {steps} \
                 steps (0 to {}) is ignored, so step 1 still runs next",
                steps - 1
            );
            assert_eq!(
                next_action(
                    &saga,
                    &log(&[(1, succeeded(0)), (2, business_failure(1)), (3, stray)])
                ),
                compensate(0),
                "turned around: a {kind} entry for step {stray_step} of a saga with {steps} \
                 steps (0 to {}) is ignored, so step 0 is still compensated next",
                steps - 1
            );
        }
    }
}

#[test]
fn a_step_that_ran_out_of_tries_stays_given_up_after_a_resume() {
    // Step 1 timed out three times, so the saga turned around; its compensation then failed
    // for the whole window and the saga stopped. A resume gives the compensation a fresh
    // window, not step 1 fresh tries: the saga goes on undoing, it does not go forward again.
    let window = RetryPolicy::default().compensation_retry_for.0;
    let mut events = vec![
        (1, succeeded(0)),
        (10, timeout(1)),
        (200, timeout(1)),
        (600, timeout(1)),
        (700, compensation_failed(1)),
        (700 + window, compensation_failed(1)),
        (700 + window, Event::NeedsAttention { step: 1 }),
    ];
    assert_eq!(
        next_action(&order_saga(), &log(&events)),
        Action::Done {
            outcome: SagaOutcome::NeedsAttention
        },
        "stopped until someone resumes it"
    );
    events.push((800 + window, Event::Resumed));
    assert_eq!(
        next_action(&order_saga(), &log(&events)),
        Action::Compensate {
            step: 1,
            attempt: 3,
            not_before: Millis::ZERO,
        },
        "resumed: step 1 (before the pivot) keeps its 3 used tries, so the saga keeps \
         compensating it: try 3 of the compensation, at once, not a 4th try of the action"
    );
}

#[test]
fn a_step_refused_after_the_pivot_runs_again_at_once_after_a_resume() {
    // After the pivot a refusal stops the saga; once the cause is fixed the operator
    // resumes it, and the refused step runs again, the next try, with a fresh window: no
    // backoff left over from the failure before the resume.
    let mut events: Vec<_> = (0..4).map(|step| (step as u64, succeeded(step))).collect();
    events.push((10, business_failure(4)));
    events.push((10, Event::NeedsAttention { step: 4 }));
    assert_eq!(
        next_action(&order_saga(), &log(&events)),
        Action::Done {
            outcome: SagaOutcome::NeedsAttention
        },
        "stopped until someone resumes it"
    );
    events.push((50, Event::Resumed));
    assert_eq!(
        next_action(&order_saga(), &log(&events)),
        Action::Run {
            step: 4,
            attempt: 2,
            not_before: Millis::ZERO,
        },
        "resumed: step 4 (after the pivot) runs again, try 2, at once (the failure before \
         the resume no longer counts towards the backoff)"
    );
}
