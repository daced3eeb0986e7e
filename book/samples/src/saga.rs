//! The order saga, retold from the guide: an orchestrator's decision loop and a choreography.
//!
//! The orchestrator is written sans-IO: [`OrderSaga`] only decides what must happen next
//! ([`SagaCommand`]) and is told how it went; a driver ([`run_saga`]) performs the calls. The
//! decision logic can then be tested step by step, logged, persisted after every step (so a
//! crashed orchestrator resumes where it stopped) and replayed. The choreography at the end has
//! no coordinator at all: each service reacts to the events it subscribes to.

use std::collections::VecDeque;
use std::future::Future;

use serde::Serialize;

// ANCHOR: steps
/// The saga's forward steps, in order; each one is a local transaction in one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Step {
    /// Order service: create the order (status pending).
    CreateOrder,
    /// Payment service: reserve (not yet capture) the amount.
    ReservePayment,
    /// Inventory service: reserve the items.
    ReserveInventory,
    /// Shipping service: book a delivery slot.
    ScheduleShipping,
}

impl Step {
    /// The forward steps in the order the orchestrator runs them.
    pub const ALL: [Step; 4] = [
        Step::CreateOrder,
        Step::ReservePayment,
        Step::ReserveInventory,
        Step::ScheduleShipping,
    ];

    /// The compensating action that semantically undoes this step once it has succeeded.
    pub fn compensation(self) -> &'static str {
        match self {
            Step::CreateOrder => "cancel order",
            Step::ReservePayment => "refund payment",
            Step::ReserveInventory => "release inventory",
            Step::ScheduleShipping => "cancel shipping",
        }
    }
}
// ANCHOR_END: steps

// ANCHOR: orchestrator
/// What the orchestrator wants the driver to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SagaCommand {
    /// Run a forward step.
    Execute(Step),
    /// Undo a step that succeeded earlier.
    Compensate(Step),
    /// Every reservation succeeded: capture payment, commit inventory, confirm shipping.
    Commit,
}

/// How the saga ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SagaOutcome {
    /// All steps and the commit succeeded: the order is confirmed.
    Completed,
    /// A step failed and every earlier step was compensated: the order failed cleanly.
    Compensated {
        /// The step that failed.
        failed_step: Step,
        /// Why it failed (`Out of stock!`).
        reason: String,
    },
    /// A step failed and some compensations failed too: a person must finish the cleanup.
    NeedsManualIntervention {
        /// The step that failed.
        failed_step: Step,
        /// Compensations that could not be applied.
        stuck: Vec<Step>,
    },
    /// The commit kept failing after every reservation succeeded. Compensating now would undo
    /// a confirmed order, so the commit is the saga's pivot: it is retried, then escalated.
    CommitStalled {
        /// How many commit attempts were made.
        attempts: u32,
    },
}

/// Reported back to the saga when it is told about a result it did not ask for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the saga has already finished: {0:?}")]
pub struct SagaFinished(pub SagaOutcome);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
enum Phase {
    /// Running forward step `next` (an index into `Step::ALL`).
    Forward {
        next: usize,
    },
    /// Committing, after `attempts` failed tries.
    Committing {
        attempts: u32,
    },
    /// Undoing `done` from the back, because `failed_step` failed.
    Compensating {
        failed_step: Step,
        reason: String,
        stuck: Vec<Step>,
    },
    Finished(SagaOutcome),
}

/// The orchestrator's state: which steps are done and what comes next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderSaga {
    phase: Phase,
    /// Steps that succeeded and would need compensating, oldest first (the guide's `compensations`).
    done: Vec<Step>,
    max_commit_attempts: u32,
}

impl Default for OrderSaga {
    fn default() -> Self {
        Self::new()
    }
}

impl OrderSaga {
    /// A saga about to create the order; the commit is tried up to three times.
    pub fn new() -> Self {
        Self {
            phase: Phase::Forward { next: 0 },
            done: Vec::new(),
            max_commit_attempts: 3,
        }
    }

    /// The next thing to do, or `None` once the saga has an outcome.
    pub fn next_command(&self) -> Option<SagaCommand> {
        match &self.phase {
            Phase::Forward { next } => Step::ALL.get(*next).copied().map(SagaCommand::Execute),
            Phase::Committing { .. } => Some(SagaCommand::Commit),
            Phase::Compensating { .. } => self.done.last().copied().map(SagaCommand::Compensate),
            Phase::Finished(_) => None,
        }
    }

    /// The outcome, once there is one.
    pub fn outcome(&self) -> Option<&SagaOutcome> {
        match &self.phase {
            Phase::Finished(outcome) => Some(outcome),
            _ => None,
        }
    }

    /// Consumes the saga, returning its outcome if it has finished.
    pub fn into_outcome(self) -> Option<SagaOutcome> {
        match self.phase {
            Phase::Finished(outcome) => Some(outcome),
            _ => None,
        }
    }

    /// The command returned by [`next_command`](Self::next_command) succeeded.
    pub fn on_success(&mut self) -> Result<(), SagaFinished> {
        match &mut self.phase {
            Phase::Forward { next } => {
                self.done.push(Step::ALL[*next]);
                *next += 1;
                if *next == Step::ALL.len() {
                    self.phase = Phase::Committing { attempts: 0 };
                }
            }
            Phase::Committing { .. } => self.phase = Phase::Finished(SagaOutcome::Completed),
            Phase::Compensating { .. } => {
                self.done.pop();
                self.finish_compensation_if_done();
            }
            Phase::Finished(outcome) => return Err(SagaFinished(outcome.clone())),
        }
        Ok(())
    }

    /// The command returned by [`next_command`](Self::next_command) failed with `reason`.
    pub fn on_failure(&mut self, reason: &str) -> Result<(), SagaFinished> {
        match &mut self.phase {
            Phase::Forward { next } => {
                // The failed step did not happen, so only the steps before it are undone,
                // newest first: the reverse order keeps every intermediate state meaningful.
                self.phase = Phase::Compensating {
                    failed_step: Step::ALL[*next],
                    reason: reason.to_owned(),
                    stuck: Vec::new(),
                };
                self.finish_compensation_if_done();
            }
            Phase::Committing { attempts } => {
                *attempts += 1;
                if *attempts >= self.max_commit_attempts {
                    self.phase = Phase::Finished(SagaOutcome::CommitStalled {
                        attempts: *attempts,
                    });
                }
            }
            Phase::Compensating { stuck, .. } => {
                // "Log for manual intervention" and carry on undoing the rest: one stuck
                // refund must not leave the inventory reserved forever.
                if let Some(step) = self.done.pop() {
                    stuck.push(step);
                }
                self.finish_compensation_if_done();
            }
            Phase::Finished(outcome) => return Err(SagaFinished(outcome.clone())),
        }
        Ok(())
    }

    fn finish_compensation_if_done(&mut self) {
        if let Phase::Compensating {
            failed_step,
            reason,
            stuck,
        } = &mut self.phase
            && self.done.is_empty()
        {
            let outcome = if stuck.is_empty() {
                SagaOutcome::Compensated {
                    failed_step: *failed_step,
                    reason: std::mem::take(reason),
                }
            } else {
                SagaOutcome::NeedsManualIntervention {
                    failed_step: *failed_step,
                    stuck: std::mem::take(stuck),
                }
            };
            self.phase = Phase::Finished(outcome);
        }
    }
}
// ANCHOR_END: orchestrator

// ANCHOR: run
/// The services the orchestrator calls; in a lab each method is an HTTP call or a message.
pub trait SagaParticipants {
    /// Runs a forward step; `Err` carries the reason (`Out of stock!`).
    fn execute(&self, step: Step) -> impl Future<Output = Result<(), String>> + Send;
    /// Runs the compensation of a step that succeeded earlier.
    fn compensate(&self, step: Step) -> impl Future<Output = Result<(), String>> + Send;
    /// Captures the payment, commits the inventory and confirms the shipping.
    fn commit(&self) -> impl Future<Output = Result<(), String>> + Send;
}

/// The driver: ask the saga what to do, do it, report back, until there is an outcome.
pub async fn run_saga(participants: &impl SagaParticipants) -> SagaOutcome {
    let mut saga = OrderSaga::new();
    while let Some(command) = saga.next_command() {
        let result = match command {
            SagaCommand::Execute(step) => participants.execute(step).await,
            SagaCommand::Compensate(step) => participants.compensate(step).await,
            SagaCommand::Commit => participants.commit().await,
        };
        // A real orchestrator persists `saga` here (the saga log) before its next call.
        let reported = match result {
            Ok(()) => saga.on_success(),
            Err(reason) => saga.on_failure(&reason),
        };
        if let Err(SagaFinished(outcome)) = reported {
            return outcome;
        }
    }
    saga.into_outcome()
        .expect("next_command returns None only once the saga has an outcome")
}
// ANCHOR_END: run

// ANCHOR: choreography
/// The events of the choreographed saga (interview question 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum OrderEvent {
    /// The order service created an order.
    OrderCreated,
    /// The payment service reserved the amount.
    PaymentReserved,
    /// The inventory service reserved the stock.
    StockReserved,
    /// The inventory service had no stock: the failure event that starts compensation.
    StockUnavailable,
    /// The payment service refunded the reservation, reacting to `StockUnavailable`.
    PaymentRefunded,
    /// The order service cancelled the order, reacting to `PaymentRefunded`.
    OrderCancelled,
    /// The shipping service scheduled the delivery: the happy path's last event.
    DeliveryScheduled,
}

/// A service in a choreography: it knows which events it cares about, not who sent them.
pub trait Subscriber {
    /// Reacts to one event from the bus, returning the events it publishes in turn.
    fn on_event(&mut self, event: &OrderEvent) -> Vec<OrderEvent>;
}

/// The payment service: reserves on `OrderCreated`, refunds on `StockUnavailable`.
pub struct PaymentService;
impl Subscriber for PaymentService {
    fn on_event(&mut self, event: &OrderEvent) -> Vec<OrderEvent> {
        match event {
            OrderEvent::OrderCreated => vec![OrderEvent::PaymentReserved],
            OrderEvent::StockUnavailable => vec![OrderEvent::PaymentRefunded],
            _ => vec![],
        }
    }
}

/// The inventory service, with a stock level.
pub struct InventoryService {
    /// Units in stock.
    pub stock: u32,
}
impl Subscriber for InventoryService {
    fn on_event(&mut self, event: &OrderEvent) -> Vec<OrderEvent> {
        match event {
            OrderEvent::PaymentReserved if self.stock > 0 => {
                self.stock -= 1;
                vec![OrderEvent::StockReserved]
            }
            OrderEvent::PaymentReserved => vec![OrderEvent::StockUnavailable],
            _ => vec![],
        }
    }
}

/// The shipping service: schedules a delivery once stock is reserved.
pub struct ShippingService;
impl Subscriber for ShippingService {
    fn on_event(&mut self, event: &OrderEvent) -> Vec<OrderEvent> {
        match event {
            OrderEvent::StockReserved => vec![OrderEvent::DeliveryScheduled],
            _ => vec![],
        }
    }
}

/// The order service: cancels its order when the payment was refunded.
pub struct OrderService;
impl Subscriber for OrderService {
    fn on_event(&mut self, event: &OrderEvent) -> Vec<OrderEvent> {
        match event {
            OrderEvent::PaymentRefunded => vec![OrderEvent::OrderCancelled],
            _ => vec![],
        }
    }
}

/// An in-process event bus: delivers every event to every subscriber, in publish order, and
/// returns the event log. Nobody decides the flow; it emerges from the subscriptions.
pub fn run_choreography(subscribers: &mut [&mut dyn Subscriber]) -> Vec<OrderEvent> {
    let mut log = Vec::new();
    let mut bus = VecDeque::from([OrderEvent::OrderCreated]);
    while let Some(event) = bus.pop_front() {
        for subscriber in subscribers.iter_mut() {
            bus.extend(subscriber.on_event(&event));
        }
        log.push(event);
    }
    log
}
// ANCHOR_END: choreography

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Participants that fail where told to and record every call.
    struct Scripted {
        fail_step: Option<Step>,
        fail_compensation: Option<Step>,
        commit_failures: u32,
        calls: Mutex<Vec<String>>,
    }

    impl Scripted {
        fn new() -> Self {
            Self {
                fail_step: None,
                fail_compensation: None,
                commit_failures: 0,
                calls: Mutex::new(Vec::new()),
            }
        }
        fn record(&self, call: String) {
            self.calls.lock().expect("not poisoned").push(call);
        }
        fn calls(&self) -> Vec<String> {
            self.calls.lock().expect("not poisoned").clone()
        }
    }

    impl SagaParticipants for Scripted {
        async fn execute(&self, step: Step) -> Result<(), String> {
            self.record(format!("{step:?}"));
            if self.fail_step == Some(step) {
                return Err("Out of stock!".into());
            }
            Ok(())
        }
        async fn compensate(&self, step: Step) -> Result<(), String> {
            self.record(step.compensation().to_owned());
            if self.fail_compensation == Some(step) {
                return Err("payment service down".into());
            }
            Ok(())
        }
        async fn commit(&self) -> Result<(), String> {
            let failed_so_far = self.calls().iter().filter(|c| *c == "commit").count() as u32;
            self.record("commit".into());
            if failed_so_far < self.commit_failures {
                return Err("capture timed out".into());
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn happy_path_runs_every_step_then_commits() {
        let participants = Scripted::new();
        assert_eq!(run_saga(&participants).await, SagaOutcome::Completed);
        assert_eq!(
            participants.calls(),
            [
                "CreateOrder",
                "ReservePayment",
                "ReserveInventory",
                "ScheduleShipping",
                "commit"
            ]
        );
    }

    #[tokio::test]
    async fn out_of_stock_refunds_payment_then_cancels_order() {
        let participants = Scripted {
            fail_step: Some(Step::ReserveInventory),
            ..Scripted::new()
        };
        assert_eq!(
            run_saga(&participants).await,
            SagaOutcome::Compensated {
                failed_step: Step::ReserveInventory,
                reason: "Out of stock!".into()
            }
        );
        assert_eq!(
            participants.calls(),
            [
                "CreateOrder",
                "ReservePayment",
                "ReserveInventory",
                "refund payment",
                "cancel order"
            ]
        );
    }

    #[tokio::test]
    async fn failed_compensation_is_escalated_but_the_rest_still_runs() {
        let participants = Scripted {
            fail_step: Some(Step::ScheduleShipping),
            fail_compensation: Some(Step::ReservePayment),
            ..Scripted::new()
        };
        assert_eq!(
            run_saga(&participants).await,
            SagaOutcome::NeedsManualIntervention {
                failed_step: Step::ScheduleShipping,
                stuck: vec![Step::ReservePayment]
            }
        );
        assert!(participants.calls().ends_with(&[
            "release inventory".to_owned(),
            "refund payment".to_owned(),
            "cancel order".to_owned()
        ]));
    }

    #[tokio::test]
    async fn commit_is_retried_forward_never_compensated() {
        let participants = Scripted {
            commit_failures: 2,
            ..Scripted::new()
        };
        assert_eq!(run_saga(&participants).await, SagaOutcome::Completed);
        let stalled = Scripted {
            commit_failures: 10,
            ..Scripted::new()
        };
        assert_eq!(
            run_saga(&stalled).await,
            SagaOutcome::CommitStalled { attempts: 3 }
        );
        assert!(!stalled.calls().iter().any(|c| c.contains("refund")));
    }

    #[test]
    fn first_step_failure_needs_no_compensation() {
        let mut saga = OrderSaga::new();
        saga.on_failure("database down").expect("running");
        assert_eq!(saga.next_command(), None);
        assert_eq!(
            saga.outcome(),
            Some(&SagaOutcome::Compensated {
                failed_step: Step::CreateOrder,
                reason: "database down".into()
            })
        );
        assert!(saga.on_success().is_err());
    }

    #[test]
    fn choreography_happy_path_and_compensation() {
        let (mut payment, mut shipping, mut order) =
            (PaymentService, ShippingService, OrderService);
        let mut inventory = InventoryService { stock: 1 };
        let mut services: [&mut dyn Subscriber; 4] =
            [&mut order, &mut payment, &mut inventory, &mut shipping];
        assert_eq!(
            run_choreography(&mut services),
            [
                OrderEvent::OrderCreated,
                OrderEvent::PaymentReserved,
                OrderEvent::StockReserved,
                OrderEvent::DeliveryScheduled
            ]
        );
        // The single unit is gone: the second order is compensated by the same subscriptions.
        assert_eq!(
            run_choreography(&mut services),
            [
                OrderEvent::OrderCreated,
                OrderEvent::PaymentReserved,
                OrderEvent::StockUnavailable,
                OrderEvent::PaymentRefunded,
                OrderEvent::OrderCancelled
            ]
        );
    }
}
