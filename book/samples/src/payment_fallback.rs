//! What the order service does when the payment call is refused or fails (interview question 4).
//!
//! The circuit breaker itself lives in the breaker lab; this module is the caller's half of the
//! guide's `processPayment`: a call through a breaker ends in one of three ways, and two of them
//! must still give the customer an answer. "Mark as pending, process later" is made concrete:
//! the payment goes into a queue that a worker drains once the breaker closes again.

use std::collections::VecDeque;
use std::future::Future;

// ANCHOR: fallback
/// How a call through a circuit breaker can fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardedError {
    /// The breaker is open: the call was not even attempted (fails in well under a millisecond).
    #[error("circuit open: payment service not called")]
    CircuitOpen,
    /// The call was made and failed (the breaker counted it).
    #[error("payment failed: {0}")]
    Failed(String),
}

/// What the customer is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// Paid now.
    Processed {
        /// The payment service's reference.
        payment_id: String,
    },
    /// `{ status: 'pending', message: 'Payment processing delayed' }`.
    Pending {
        /// Shown to the customer.
        message: &'static str,
    },
}

/// A payment to retry once the payment service is back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPayment {
    /// The order to charge.
    pub order_id: String,
    /// Amount in cents.
    pub amount: u64,
}

/// Calls the payment service through `breaker_call`, degrading to "pending" instead of failing
/// the order: the order service stays healthy while payment is down.
pub async fn process_payment<F, Fut>(
    breaker_call: F,
    order_id: &str,
    amount: u64,
    pending: &mut VecDeque<PendingPayment>,
) -> PaymentOutcome
where
    F: FnOnce(String, u64) -> Fut,
    Fut: Future<Output = Result<String, GuardedError>>,
{
    match breaker_call(order_id.to_owned(), amount).await {
        Ok(payment_id) => PaymentOutcome::Processed { payment_id },
        // Both failures get the same answer, but only a refused call is certain not to have
        // charged: after `Failed` the worker must ask the payment service before retrying,
        // or send an idempotency key so a repeated charge is ignored.
        Err(GuardedError::CircuitOpen | GuardedError::Failed(_)) => {
            pending.push_back(PendingPayment {
                order_id: order_id.to_owned(),
                amount,
            });
            PaymentOutcome::Pending {
                message: "Payment processing delayed",
            }
        }
    }
}
// ANCHOR_END: fallback

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn successful_call_is_processed_and_nothing_is_queued() {
        let mut pending = VecDeque::new();
        let outcome = process_payment(
            |order_id, _amount| async move { Ok(format!("pay-{order_id}")) },
            "123",
            100,
            &mut pending,
        )
        .await;
        assert_eq!(
            outcome,
            PaymentOutcome::Processed {
                payment_id: "pay-123".into()
            }
        );
        assert!(pending.is_empty());
    }

    #[tokio::test]
    async fn open_circuit_and_failures_degrade_to_pending_and_queue_the_payment() {
        let mut pending = VecDeque::new();
        for result in [
            Err(GuardedError::CircuitOpen),
            Err(GuardedError::Failed("timeout".into())),
        ] {
            let outcome = process_payment(|_, _| async { result }, "123", 100, &mut pending).await;
            assert_eq!(
                outcome,
                PaymentOutcome::Pending {
                    message: "Payment processing delayed"
                }
            );
        }
        assert_eq!(pending.len(), 2);
        assert_eq!(
            pending.front(),
            Some(&PendingPayment {
                order_id: "123".into(),
                amount: 100
            })
        );
    }
}
