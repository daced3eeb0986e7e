//! What the decision function answers: the one thing a saga should do next.
//!
//! [`next_action`](crate::next_action) turns a log into an [`Action`];
//! [`Saga`](crate::Saga) turns the action into log entries and commands for its driver.

use serde::{Deserialize, Serialize};

use crate::log::SagaOutcome;
use crate::time::Millis;

// ANCHOR: action
/// The next thing a saga should do, decided from its log alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Run step `step`'s action, try number `attempt`, not before `not_before`.
    /// A first try has `attempt: 1` and `not_before: Millis::ZERO` (at once); a retry after a
    /// retryable failure has the next attempt number and waits the backoff after that failure.
    Run {
        /// The step's index.
        step: usize,
        /// 1 for the first try.
        attempt: u32,
        /// The earliest time to send it.
        not_before: Millis,
    },
    /// Run step `step`'s compensation, try number `attempt`, not before `not_before`.
    Compensate {
        /// The step's index.
        step: usize,
        /// 1 for the first try.
        attempt: u32,
        /// The earliest time to send it.
        not_before: Millis,
    },
    /// Every step succeeded: record `SagaCompleted`.
    Finish,
    /// Every step that needed undoing is undone: record `SagaCompensated`.
    Fail,
    /// Step `step` can neither be undone nor finished automatically: record `NeedsAttention`.
    NeedsAttention {
        /// The step that needs a human.
        step: usize,
    },
    /// The log already ends the saga: nothing to do.
    Done {
        /// How it ended.
        outcome: SagaOutcome,
    },
}
// ANCHOR_END: action
