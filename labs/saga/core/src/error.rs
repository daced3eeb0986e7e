//! What can go wrong when talking to a saga: an outcome it did not ask for, a saga that is
//! already over, a log or definition it cannot use. All are values, never panics: a
//! message bus delivers duplicates and late replies, and that must not crash a service.

use serde::{Deserialize, Serialize};

use crate::definition::DefinitionError;
use crate::log::{CommandKind, SagaOutcome};

/// An input or a stored log the saga cannot accept. The saga is unchanged after any of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SagaError {
    /// An outcome for a command that is not the one in flight: a duplicate delivery, a late
    /// reply to an earlier try, or a reply nobody asked for. Drivers may ignore it; the saga
    /// records nothing, which is what makes duplicates harmless.
    #[error("unexpected outcome for {kind:?} of step {step} (try {attempt}): {expected}")]
    UnexpectedOutcome {
        /// The step the outcome is about.
        step: usize,
        /// Action or compensation.
        kind: CommandKind,
        /// The try it answers.
        attempt: u32,
        /// What the saga was waiting for instead.
        expected: String,
    },
    /// The saga is over; nothing more can happen to it.
    #[error("the saga has already ended ({outcome:?})")]
    AlreadyEnded {
        /// How it ended.
        outcome: SagaOutcome,
    },
    /// [`Saga::retry`](crate::Saga::retry) on a saga that is not stopped in
    /// `NeedsAttention`: it is still running (`None`) or over.
    #[error("only a saga that needs attention can be retried; this one is {}", match outcome {
        None => "still running".to_owned(),
        Some(outcome) => format!("over ({outcome:?})"),
    })]
    NotStopped {
        /// How it ended, or `None` while it runs.
        outcome: Option<SagaOutcome>,
    },
    /// A stored log does not start with `SagaStarted` or its `seq` numbers are not 0, 1, 2…
    #[error("the stored saga log is corrupt: {detail}")]
    CorruptLog {
        /// What is wrong.
        detail: String,
    },
    /// The definition cannot run.
    #[error(transparent)]
    Definition(#[from] DefinitionError),
}
