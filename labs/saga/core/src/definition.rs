//! What a saga is made of: ordered steps, each with an action and (usually) a compensation,
//! a pivot after which the saga only moves forward, and the retry policy.
//!
//! A definition is data, not code: the orchestrator, the playground and the tests read the
//! same value, and the decision function ([`next_action`](crate::next_action)) never needs to
//! know what "reserve payment" means, only where it sits in the list.

use serde::{Deserialize, Serialize};

use crate::time::Millis;

// ANCHOR: step_definition
/// One step of a saga: who does it, what the action is called, and how to undo it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepDefinition {
    /// A short name, unique in the saga (`reserve_payment`); part of every idempotency key.
    pub name: String,
    /// The service that performs it (`payment`).
    pub participant: String,
    /// The action's name as the participant knows it (`reserve`).
    pub action: String,
    /// The compensating action (`refund`), or `None` for a step that needs no undo: the pivot
    /// and the steps after it, which only move forward, and read-only steps.
    pub compensation: Option<String>,
}
// ANCHOR_END: step_definition

impl StepDefinition {
    /// A step with a compensation.
    pub fn compensatable(name: &str, participant: &str, action: &str, compensation: &str) -> Self {
        StepDefinition {
            name: name.to_owned(),
            participant: participant.to_owned(),
            action: action.to_owned(),
            compensation: Some(compensation.to_owned()),
        }
    }

    /// A step with nothing to undo.
    pub fn forward_only(name: &str, participant: &str, action: &str) -> Self {
        StepDefinition {
            name: name.to_owned(),
            participant: participant.to_owned(),
            action: action.to_owned(),
            compensation: None,
        }
    }
}

// ANCHOR: retry_policy
/// How hard to try before giving up, and how long to wait between tries.
///
/// A step up to and including the pivot gets `max_attempts` tries; after that its outcome
/// is unknown (the last timeout may have reserved the money), so the saga compensates it
/// too. A step after the pivot is retried without limit: the saga has promised to finish.
/// A compensation must not fail for good: it is retried, with the same backoff, for
/// `compensation_retry_for` counted from its first failure (minutes, not a few tries, so a
/// participant that is down for a while gets its compensation once it is back). Only a
/// compensation still failing after that stops the saga in `NeedsAttention`, where an
/// operator (or the participant coming back) resumes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Tries of a step up to the pivot (at least 1).
    pub max_attempts: u32,
    /// How long a compensation is retried, from its first failure to its latest, before
    /// the saga asks for a human.
    pub compensation_retry_for: Millis,
    /// The wait after the first retryable failure.
    pub initial_backoff: Millis,
    /// Each further failure multiplies the wait by this (1 keeps it constant).
    pub multiplier: u32,
    /// The wait never grows beyond this.
    pub max_backoff: Millis,
}
// ANCHOR_END: retry_policy

impl RetryPolicy {
    /// `minutes` minutes as a [`Millis`] duration, for `compensation_retry_for`.
    pub const fn minutes(minutes: u64) -> Millis {
        Millis(minutes * 60_000)
    }
}

impl Default for RetryPolicy {
    /// Three tries per step, compensations retried for 15 minutes, waits of 100, 200,
    /// 400 ms… up to 2 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            compensation_retry_for: RetryPolicy::minutes(15),
            initial_backoff: Millis(100),
            multiplier: 2,
            max_backoff: Millis(2_000),
        }
    }
}

// ANCHOR: saga_definition
/// A saga's shape: the steps in order, the pivot and the retry policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaDefinition {
    /// The saga's name (`order_fulfilment`).
    pub name: String,
    /// The steps, run first to last and compensated last to first.
    pub steps: Vec<StepDefinition>,
    /// The go/no-go step: once it succeeds the saga only moves forward. `None` means every
    /// step can be compensated.
    pub pivot: Option<usize>,
    /// Retries and backoff.
    pub retry: RetryPolicy,
}
// ANCHOR_END: saga_definition

/// A definition that cannot run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum DefinitionError {
    /// A saga needs at least one step.
    #[error("a saga needs at least one step")]
    NoSteps,
    /// Two steps share a name, so their idempotency keys would collide.
    #[error("two steps are named `{name}`: step names make idempotency keys and must be unique")]
    DuplicateStepName {
        /// The repeated name.
        name: String,
    },
    /// The pivot points past the last step.
    #[error("the pivot is step {pivot} but the saga has only {steps} steps")]
    PivotOutOfRange {
        /// The pivot's index.
        pivot: usize,
        /// The number of steps.
        steps: usize,
    },
    /// `max_attempts` or `multiplier` is zero.
    #[error("retry policy: {field} must be at least 1")]
    ZeroInRetryPolicy {
        /// The offending field.
        field: String,
    },
}

impl SagaDefinition {
    // ANCHOR: order_fulfilment
    /// The guide's saga: create the order, reserve the payment, reserve the stock, schedule
    /// the shipping (the pivot: once a courier is booked the order goes through), then
    /// capture the reserved payment and approve the order, which only move forward.
    /// Everything before the pivot reserves; the capture after it commits.
    pub fn order_fulfilment() -> SagaDefinition {
        SagaDefinition {
            name: "order_fulfilment".to_owned(),
            steps: vec![
                StepDefinition::compensatable("create_order", "order", "create", "cancel"),
                StepDefinition::compensatable("reserve_payment", "payment", "reserve", "refund"),
                StepDefinition::compensatable(
                    "reserve_inventory",
                    "inventory",
                    "reserve",
                    "release",
                ),
                StepDefinition::compensatable(
                    "schedule_shipping",
                    "shipping",
                    "schedule",
                    "cancel",
                ),
                StepDefinition::forward_only("capture_payment", "payment", "capture"),
                StepDefinition::forward_only("approve_order", "order", "approve"),
            ],
            pivot: Some(3),
            retry: RetryPolicy::default(),
        }
    }
    // ANCHOR_END: order_fulfilment

    /// Checks that the definition can run (see [`DefinitionError`]).
    pub fn validate(&self) -> Result<(), DefinitionError> {
        if self.steps.is_empty() {
            return Err(DefinitionError::NoSteps);
        }
        for (index, step) in self.steps.iter().enumerate() {
            if self.steps[..index]
                .iter()
                .any(|earlier| earlier.name == step.name)
            {
                return Err(DefinitionError::DuplicateStepName {
                    name: step.name.clone(),
                });
            }
        }
        if let Some(pivot) = self.pivot
            && pivot >= self.steps.len()
        {
            return Err(DefinitionError::PivotOutOfRange {
                pivot,
                steps: self.steps.len(),
            });
        }
        for (field, value) in [
            ("max_attempts", self.retry.max_attempts),
            ("multiplier", self.retry.multiplier),
        ] {
            if value == 0 {
                return Err(DefinitionError::ZeroInRetryPolicy {
                    field: field.to_owned(),
                });
            }
        }
        Ok(())
    }

    // ANCHOR: is_compensatable
    /// Whether a failure of `step` can still be undone: true up to and including the pivot.
    pub fn is_compensatable(&self, step: usize) -> bool {
        self.pivot.is_none_or(|pivot| step <= pivot)
    }
    // ANCHOR_END: is_compensatable

    /// The idempotency key of a step's action or compensation in one saga.
    ///
    /// It does not contain the attempt number: a retry must carry the same key as the first
    /// try, so that a participant that did the work but lost the reply answers with the first
    /// result instead of doing it twice.
    pub fn idempotency_key(&self, saga_id: &str, step: usize, kind: crate::CommandKind) -> String {
        let name = self.steps.get(step).map_or("?", |s| s.name.as_str());
        match kind {
            crate::CommandKind::Action => format!("{saga_id}:{name}"),
            crate::CommandKind::Compensation => format!("{saga_id}:{name}:undo"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_fulfilment_saga_is_valid() {
        assert_eq!(SagaDefinition::order_fulfilment().validate(), Ok(()));
    }

    #[test]
    fn rejects_shapes_that_cannot_run() {
        let mut saga = SagaDefinition::order_fulfilment();
        saga.pivot = Some(9);
        assert!(matches!(
            saga.validate(),
            Err(DefinitionError::PivotOutOfRange { .. })
        ));
        saga.pivot = None;
        saga.steps.push(saga.steps[0].clone());
        assert!(matches!(
            saga.validate(),
            Err(DefinitionError::DuplicateStepName { .. })
        ));
        saga.steps.clear();
        assert_eq!(saga.validate(), Err(DefinitionError::NoSteps));
    }
}
