//! The graded part: the decision function (reference solution).
//!
//! This file is the worked example of the lab. The learner's copy,
//! `labs/saga/exercise/decide.rs`, has the same public API with `todo!()` bodies; the crate's
//! `exercise` feature swaps it in and `tests/graded.rs` checks either one.
//!
//! How it fits: [`Saga`](crate::Saga) (the state machine a driver talks to) calls
//! [`next_action`] after every input and turns its answer into log entries and commands. The
//! decision reads nothing but the definition and the log, so the same function decides in
//! a running orchestrator, in one that just restarted after a crash, and in the playground.

use crate::action::Action;
use crate::definition::{RetryPolicy, SagaDefinition};
use crate::log::{Event, FailureKind, SagaLog, SagaOutcome};
use crate::time::Millis;

// ANCHOR: backoff_delay
/// How long to wait after the `failures`-th retryable failure in a row (`failures >= 1`):
/// `initial_backoff × multiplier^(failures − 1)`, never more than `max_backoff`.
pub fn backoff_delay(policy: &RetryPolicy, failures: u32) -> Millis {
    let mut delay = policy.initial_backoff;
    for _ in 1..failures {
        delay = Millis(delay.0.saturating_mul(u64::from(policy.multiplier)));
        if delay >= policy.max_backoff {
            break;
        }
    }
    delay.min(policy.max_backoff)
}
// ANCHOR_END: backoff_delay

/// Failures so far of one action or compensation, and when they happened.
#[derive(Clone, Copy, Debug, Default)]
struct Tries {
    /// Every failure in the log: the next try's number follows them.
    failures: u32,
    /// Failures since the saga was last resumed: these count against the limits.
    recent: u32,
    /// When the first of the recent failures happened.
    first_failure_at: Millis,
    last_failure_at: Millis,
}

impl Tries {
    fn fail(&mut self, at: Millis) {
        if self.recent == 0 {
            self.first_failure_at = at;
        }
        self.failures += 1;
        self.recent += 1;
        self.last_failure_at = at;
    }

    /// A resumed saga starts a fresh window: earlier failures no longer count.
    fn resume(&mut self) {
        self.recent = 0;
    }

    /// How long the recent failures have been going on, first to latest.
    fn failing_for(&self) -> Millis {
        self.last_failure_at.saturating_sub(self.first_failure_at)
    }

    /// The next try's number and earliest time: at once the first time (and right after a
    /// resume), after the backoff once something failed.
    fn next(&self, policy: &RetryPolicy) -> (u32, Millis) {
        if self.recent == 0 {
            (self.failures + 1, Millis::ZERO)
        } else {
            (
                self.failures + 1,
                self.last_failure_at + backoff_delay(policy, self.recent),
            )
        }
    }
}

/// Why the saga turned around.
#[derive(Clone, Copy, Debug)]
struct TurnedAround {
    /// The step that failed.
    step: usize,
    /// Whether that step must be compensated too: yes when it gave up after retries (the
    /// last timeout may have done the work), no after a business failure (the participant
    /// refused and changed nothing).
    compensate_failed_step: bool,
}

// ANCHOR: next_action
/// The next thing the saga should do, given its definition and its log.
///
/// The rules, in the order they apply:
/// 1. a log that completed or compensated the saga → [`Action::Done`]; one that stopped it
///    in `NeedsAttention` is done too, unless a later `Resumed` entry set it going again
///    (then the failures before the resume no longer count);
/// 2. going forward, the first step without success runs (again, after a backoff, if it
///    failed retryably); when none is left → [`Action::Finish`];
/// 3. a business failure, or a step up to the pivot that used all its tries, turns the saga
///    around; a business failure after the pivot cannot be undone → [`Action::NeedsAttention`];
/// 4. turned around, the completed steps (and a step that gave up with an unknown outcome)
///    are compensated last to first, skipping steps without a compensation; a compensation
///    is retried with the backoff until it has been failing for
///    `compensation_retry_for` → [`Action::NeedsAttention`]; when none is left →
///    [`Action::Fail`].
pub fn next_action(definition: &SagaDefinition, log: &SagaLog) -> Action {
    let steps = definition.steps.len();
    let policy = &definition.retry;
    let mut succeeded = vec![false; steps];
    let mut step_tries = vec![Tries::default(); steps];
    let mut compensated = vec![false; steps];
    let mut compensation_tries = vec![Tries::default(); steps];
    let mut turned_around: Option<TurnedAround> = None;
    // A step after the pivot that was refused: the saga cannot move until it is resumed.
    let mut refused_after_pivot: Option<usize> = None;
    let mut stopped = false;

    // Replay the log. Only outcomes matter: `StepStarted` says a command went out, and a
    // command without an outcome is simply decided again (and re-sent, with the same key).
    for entry in log.entries() {
        match entry.event {
            Event::SagaCompleted | Event::SagaCompensated => {
                if let Some(outcome) = entry.event.outcome() {
                    return Action::Done { outcome };
                }
            }
            Event::NeedsAttention { .. } => stopped = true,
            Event::Resumed => {
                stopped = false;
                refused_after_pivot = None;
                // Fresh windows for compensations and for steps after the pivot; a step
                // before the pivot keeps its count, so one that ran out of tries stays so.
                for (step, tries) in step_tries.iter_mut().enumerate() {
                    if !definition.is_compensatable(step) {
                        tries.resume();
                    }
                }
                for tries in &mut compensation_tries {
                    tries.resume();
                }
            }
            Event::StepSucceeded { step } if step < steps => succeeded[step] = true,
            Event::StepFailed {
                step,
                kind: FailureKind::Business,
                ..
            } if step < steps => {
                if definition.is_compensatable(step) {
                    turned_around.get_or_insert(TurnedAround {
                        step,
                        compensate_failed_step: false,
                    });
                } else {
                    refused_after_pivot = Some(step);
                    step_tries[step].fail(entry.at);
                }
            }
            Event::StepFailed {
                step,
                kind: FailureKind::Retryable,
                ..
            } if step < steps => step_tries[step].fail(entry.at),
            Event::CompensationSucceeded { step } if step < steps => compensated[step] = true,
            Event::CompensationFailed { step, .. } if step < steps => {
                compensation_tries[step].fail(entry.at);
            }
            _ => {}
        }
    }
    if stopped {
        return Action::Done {
            outcome: SagaOutcome::NeedsAttention,
        };
    }
    if let Some(step) = refused_after_pivot {
        return Action::NeedsAttention { step };
    }

    // Forward, while nothing has turned the saga around.
    if turned_around.is_none() {
        let Some(step) = succeeded.iter().position(|done| !done) else {
            return Action::Finish;
        };
        let tries = step_tries[step];
        if definition.is_compensatable(step) && tries.recent >= policy.max_attempts {
            turned_around = Some(TurnedAround {
                step,
                compensate_failed_step: true,
            });
        } else {
            let (attempt, not_before) = tries.next(policy);
            return Action::Run {
                step,
                attempt,
                not_before,
            };
        }
    }

    // Backward: undo, last to first.
    let Some(TurnedAround {
        step: failed,
        compensate_failed_step,
    }) = turned_around
    else {
        return Action::Fail;
    };
    for step in (0..=failed).rev() {
        let needs_undo = if step == failed {
            compensate_failed_step
        } else {
            succeeded[step]
        };
        if !needs_undo || compensated[step] || definition.steps[step].compensation.is_none() {
            continue;
        }
        let tries = compensation_tries[step];
        if tries.recent > 0 && tries.failing_for() >= policy.compensation_retry_for {
            return Action::NeedsAttention { step };
        }
        let (attempt, not_before) = tries.next(policy);
        return Action::Compensate {
            step,
            attempt,
            not_before,
        };
    }
    Action::Fail
}
// ANCHOR_END: next_action
