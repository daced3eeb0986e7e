//! The semantic lock: the order's status says a saga is still working on it.
//!
//! A saga has no isolation: between "payment reserved" and "stock reserved" other requests
//! can see the order. The countermeasure is a status that means "in progress, do not touch":
//! the order stays `Pending` until the saga ends, and the order service refuses changes to
//! a pending order (409). The status is a function of the saga's outcome, so the orchestrator
//! writes it in the same transaction as the log entry that ends the saga.

use serde::{Deserialize, Serialize};

use crate::log::SagaOutcome;

// ANCHOR: order_status
/// The status an order shows while and after its saga runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// The saga is running: the order is locked.
    Pending,
    /// The saga completed: money taken, stock reserved, courier booked.
    Approved,
    /// The saga compensated: nothing is held for this order.
    Cancelled,
    /// A compensation kept failing: still locked, an operator must look.
    NeedsAttention,
}
// ANCHOR_END: order_status

impl OrderStatus {
    /// The status for a saga that ended this way, or is still running (`None`).
    pub fn from_outcome(outcome: Option<SagaOutcome>) -> OrderStatus {
        match outcome {
            None => OrderStatus::Pending,
            Some(SagaOutcome::Completed) => OrderStatus::Approved,
            Some(SagaOutcome::Compensated) => OrderStatus::Cancelled,
            Some(SagaOutcome::NeedsAttention) => OrderStatus::NeedsAttention,
        }
    }

    /// Whether the order must not be changed by anything but its saga.
    pub fn is_locked(self) -> bool {
        matches!(self, OrderStatus::Pending | OrderStatus::NeedsAttention)
    }

    /// The name stored in databases and shown in the demo (`PENDING`).
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Approved => "APPROVED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::NeedsAttention => "NEEDS_ATTENTION",
        }
    }

    /// Parses [`as_str`](Self::as_str)'s names back.
    pub fn parse(text: &str) -> Option<OrderStatus> {
        [
            OrderStatus::Pending,
            OrderStatus::Approved,
            OrderStatus::Cancelled,
            OrderStatus::NeedsAttention,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

impl core::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}
