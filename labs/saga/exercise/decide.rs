//! Exercise: write the saga's decision function.
//!
//! This is your copy of the graded module. `cargo xtask grade saga` compiles the crate
//! `saga-core` with this file in place of the reference and runs `tests/graded.rs` against
//! it, from `a_new_saga_runs_its_first_step` to the edge cases. Add `--watch` to re-grade on
//! save.
//!
//! The task: given a saga's definition and its log, say what the saga should do next.
//! - Forward: the first step without a success runs. When every step succeeded, finish.
//! - A business failure (out of stock) turns the saga around: the steps that succeeded are
//!   compensated, last to first. The refused step itself changed nothing.
//! - A retryable failure (a timeout) runs the same step again, one attempt number higher,
//!   after a backoff counted from the failure. A step up to the pivot that used all its
//!   tries turns the saga around too, and since its last try may have done the work, it is
//!   compensated as well. A step after the pivot is retried without limit.
//! - A compensation is retried the same way, but by time rather than count: it needs a human
//!   only once it has been failing for `compensation_retry_for`. A saga stopped that way is
//!   set going again by a `Resumed` entry, with a fresh window.
//!
//! Everything else is written for you in the other modules of the crate: `SagaDefinition`
//! (with `is_compensatable`), `RetryPolicy`, `SagaLog` and its `Event`s, `Action`, `Millis`,
//! and the `Saga` state machine, which calls your `next_action` after every input and turns
//! its answer into log entries and commands. The public signatures here must stay as they
//! are. The private helper is a suggested design; change it freely.
//!
//! Replace each `todo!()`, one test at a time, in the order of the scorecard.
//! Read: book chapter patterns/saga.md (the sequence diagram of the failure scenario first).

// The suggested helper is unused until you write the bodies.
#![allow(dead_code, unused_variables, unused_imports, unused_mut)]

use crate::action::Action;
use crate::definition::{RetryPolicy, SagaDefinition};
use crate::log::{Event, FailureKind, SagaLog};
use crate::time::Millis;

/// How long to wait after the `failures`-th retryable failure in a row (`failures >= 1`):
/// `initial_backoff × multiplier^(failures − 1)`, never more than `max_backoff`.
pub fn backoff_delay(policy: &RetryPolicy, failures: u32) -> Millis {
    // TODO: start from `policy.initial_backoff` and multiply `failures - 1` times.
    // The numbers can get big after many failures: use `saturating_mul`, or stop
    // multiplying once you reach `policy.max_backoff`.
    todo!("compute the wait before the next try")
}

/// Failures so far of one action or compensation, and when they happened.
/// (A suggestion: count these per step while you read the log.)
#[derive(Clone, Copy, Debug, Default)]
struct Tries {
    failures: u32,
    first_failure_at: Millis,
    last_failure_at: Millis,
}

/// The next thing the saga should do, given its definition and its log.
pub fn next_action(definition: &SagaDefinition, log: &SagaLog) -> Action {
    // TODO 1: read the log once, oldest entry first (`log.entries()`, each with `.at` and
    // `.event`). `SagaCompleted` or `SagaCompensated` means there is nothing left to do:
    // `Action::Done`. `NeedsAttention` stops the saga too (`Action::Done` once the whole log
    // is read), unless a later `Resumed` entry sets it going again: then the compensation
    // failures before the resume no longer count (nor those of steps after the pivot).
    //
    // TODO 2: while reading, remember per step: did its action succeed? how many retryable
    // failures, and when was the last? did its compensation succeed? how many compensation
    // failures, and when? And the first step that failed for a business reason.
    // `StepStarted` and `CompensationStarted` only say a command went out: a command with no
    // outcome is decided again (after a crash, the same try is simply sent again).
    //
    // TODO 3 (forward): the first step without a success runs. Its attempt is its failures
    // + 1; `not_before` is `Millis::ZERO` for a first try, otherwise the last failure's time
    // plus `backoff_delay(policy, failures)`. No such step: `Action::Finish`.
    // `definition.is_compensatable(step)` tells whether a step is at or before the pivot:
    // only those give up after `definition.retry.max_attempts` tries.
    //
    // TODO 4 (turn around): a business failure, or a compensatable step out of tries, sends
    // the saga backwards. A business failure after the pivot cannot be undone:
    // `Action::NeedsAttention`.
    //
    // TODO 5 (backward): from the failed step down to step 0, find the first step that
    // needs undoing (it succeeded, or it is the step that ran out of tries), has a
    // compensation (`definition.steps[step].compensation`), and is not compensated yet.
    // Compensate it, with the same attempt/backoff rule as steps, unless its failures have
    // gone on for `definition.retry.compensation_retry_for` (from the first to the latest):
    // then `Action::NeedsAttention`.
    // Nothing left to undo: `Action::Fail`.
    //
    // Read: book chapter patterns/saga.md (the failure scenario's sequence diagram, then
    // "Run the lab" and "Exercise" at the end of the chapter).
    todo!("decide the saga's next action from its log")
}
