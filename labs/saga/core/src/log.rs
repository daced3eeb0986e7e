//! The saga log: every transition of one saga, in order, as plain serde data.
//!
//! The log is the saga's memory. The orchestrator writes each entry to its database in the
//! same transaction as the order's state change, so after a crash it reads the log back and
//! the decision function ([`next_action`](crate::next_action)) says where to carry on. No
//! other state is needed: whatever the saga "is" can be recomputed from the log.

use serde::{Deserialize, Serialize};

use crate::time::Millis;

// ANCHOR: failure_kind
/// Whether a failure is worth another try.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The participant said no for a business reason (insufficient funds, out of stock).
    /// Trying again gives the same answer, and the participant changed nothing: compensate
    /// the steps before it.
    Business,
    /// A timeout, a refused connection, a 5xx: the outcome is unknown and may change on a
    /// retry (with the same idempotency key, so work done once is not done twice).
    Retryable,
}
// ANCHOR_END: failure_kind

/// An action or its compensation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    /// The step's forward action (`reserve`).
    Action,
    /// The step's compensation (`refund`).
    Compensation,
}

/// How a saga ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SagaOutcome {
    /// Every step succeeded.
    Completed,
    /// A step failed and every earlier step was compensated: consistent, but no order.
    Compensated,
    /// A compensation kept failing (or a step after the pivot was refused): the saga stopped
    /// and an operator must look. Unlike the other two it can be resumed.
    NeedsAttention,
}

// ANCHOR: event
/// One transition of a saga, as recorded in its log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The saga began.
    SagaStarted,
    /// The command for step `step`'s action was sent (try number `attempt`).
    StepStarted {
        /// The step's index.
        step: usize,
        /// 1 for the first try.
        attempt: u32,
    },
    /// Step `step`'s action succeeded.
    StepSucceeded {
        /// The step's index.
        step: usize,
    },
    /// Step `step`'s action failed.
    StepFailed {
        /// The step's index.
        step: usize,
        /// Business (compensate) or retryable (try again).
        kind: FailureKind,
        /// What the participant or the transport said.
        reason: String,
    },
    /// The command for step `step`'s compensation was sent.
    CompensationStarted {
        /// The step's index.
        step: usize,
        /// 1 for the first try.
        attempt: u32,
    },
    /// Step `step` is undone.
    CompensationSucceeded {
        /// The step's index.
        step: usize,
    },
    /// Step `step`'s compensation failed (always worth another try).
    CompensationFailed {
        /// The step's index.
        step: usize,
        /// What went wrong.
        reason: String,
    },
    /// Every step succeeded: the saga is over.
    SagaCompleted,
    /// Every completed step is compensated: the saga is over.
    SagaCompensated,
    /// Step `step` cannot be undone or finished automatically: the saga stops here until
    /// it is resumed.
    NeedsAttention {
        /// The step that needs a human.
        step: usize,
    },
    /// A saga stopped in `NeedsAttention` was asked to try again (by an operator, or by the
    /// orchestrator once the participant answers again): the saga runs once more, and the
    /// stuck step gets a fresh retry window.
    Resumed,
}
// ANCHOR_END: event

impl Event {
    /// The outcome if this event ends a saga.
    pub fn outcome(&self) -> Option<SagaOutcome> {
        match self {
            Event::SagaCompleted => Some(SagaOutcome::Completed),
            Event::SagaCompensated => Some(SagaOutcome::Compensated),
            Event::NeedsAttention { .. } => Some(SagaOutcome::NeedsAttention),
            _ => None,
        }
    }
}

// ANCHOR: log_entry
/// An event with its position and time in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// 0, 1, 2…: the entry's position, also its primary key in the orchestrator's table.
    pub seq: u64,
    /// When it was recorded, on the driver's clock.
    pub at: Millis,
    /// What happened.
    pub event: Event,
}
// ANCHOR_END: log_entry

/// The ordered list of a saga's transitions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SagaLog {
    entries: Vec<LogEntry>,
}

impl SagaLog {
    /// An empty log.
    pub fn new() -> SagaLog {
        SagaLog::default()
    }

    /// A log read back from storage. Entries must be in `seq` order starting at 0;
    /// [`Saga::resume`](crate::Saga::resume) checks that.
    pub fn from_entries(entries: Vec<LogEntry>) -> SagaLog {
        SagaLog { entries }
    }

    /// Appends `event` at `at` and returns the new entry.
    pub fn append(&mut self, at: Millis, event: Event) -> &LogEntry {
        let seq = self.entries.len() as u64;
        self.entries.push(LogEntry { seq, at, event });
        &self.entries[self.entries.len() - 1]
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[LogEntry] {
        &self.entries
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The saga's outcome, if the log ends it. `Completed` and `Compensated` are final;
    /// `NeedsAttention` holds until a later `Resumed` entry sets the saga running again.
    pub fn outcome(&self) -> Option<SagaOutcome> {
        let mut outcome = None;
        for entry in &self.entries {
            match entry.event.outcome() {
                Some(SagaOutcome::NeedsAttention) => outcome = Some(SagaOutcome::NeedsAttention),
                Some(last) => return Some(last),
                None if entry.event == Event::Resumed => outcome = None,
                None => {}
            }
        }
        outcome
    }
}
