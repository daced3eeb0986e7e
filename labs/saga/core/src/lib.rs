//! The saga core: a pure, deterministic state machine for distributed transactions.
//!
//! A saga replaces one ACID transaction spanning several databases with a sequence of local
//! transactions, each with a compensation that undoes it. This crate is the part that
//! decides: given the saga's definition ([`SagaDefinition`]: ordered steps, a pivot, a retry
//! policy) and its log ([`SagaLog`]: every transition so far), [`next_action`] says what to do
//! next — run step k, compensate step k, retry after a backoff, finish, fail, or stop and ask
//! for a human. [`Saga`] wraps it for drivers with the book's sans-IO vocabulary, the
//! [`Machine`] trait every core shares: [`Saga::handle_input`], [`Saga::handle_timeout`],
//! [`Saga::poll_output`], [`Saga::poll_timeout`].
//!
//! It does no I/O, starts no threads and reads no clock, so the lab's orchestrator (tokio,
//! SQLite, HTTP), the WASM playground and the graded tests run exactly the same logic.
//!
//! ```
//! use saga_core::{FailureKind, Input, Millis, OrderStatus, Output, Saga, SagaDefinition, SagaOutcome};
//!
//! let mut saga = Saga::start("order-1", SagaDefinition::order_fulfilment(), Millis(0))?;
//! // Steps 0 and 1 (create order, reserve payment) succeed; the stock is gone.
//! saga.handle_input(Millis(1), Input::StepSucceeded { step: 0, attempt: 1 })?;
//! saga.handle_input(Millis(2), Input::StepSucceeded { step: 1, attempt: 1 })?;
//! assert_eq!(saga.order_status(), OrderStatus::Pending);
//! saga.handle_input(Millis(3), Input::StepFailed {
//!     step: 2, attempt: 1, kind: FailureKind::Business, reason: "out of stock".into(),
//! })?;
//! // The saga now compensates step 1 (refund) first, then step 0 (cancel the order).
//! let sent: Vec<_> = std::iter::from_fn(|| saga.poll_output())
//!     .filter_map(|output| match output { Output::Send(command) => Some(command), _ => None })
//!     .collect();
//! assert_eq!(sent.last().map(|command| command.operation.as_str()), Some("refund"));
//! saga.handle_input(Millis(4), Input::CompensationSucceeded { step: 1, attempt: 1 })?;
//! saga.handle_input(Millis(5), Input::CompensationSucceeded { step: 0, attempt: 1 })?;
//! assert_eq!(saga.outcome(), Some(SagaOutcome::Compensated));
//! assert_eq!(saga.order_status(), OrderStatus::Cancelled);
//! # Ok::<(), saga_core::SagaError>(())
//! ```
//!
//! The graded part of the lab is the [`decide`](crate::next_action) module; with the
//! `exercise` feature the learner's copy in `labs/saga/exercise/decide.rs` replaces it.

mod action;
mod definition;
mod error;
mod lock;
mod log;
mod machine;
mod saga;

// The modules, the graded one and its learner's copy among them, name time
// `crate::time::Millis`. Time lives in `sansio-core`, so that path leads there.
use sansio_core as time;

// The graded module: the reference solution, or the learner's copy with `--features exercise`.
#[cfg_attr(feature = "exercise", path = "../../exercise/decide.rs")]
mod decide;

pub use action::Action;
pub use decide::{backoff_delay, next_action};
pub use definition::{DefinitionError, RetryPolicy, SagaDefinition, StepDefinition};
pub use error::SagaError;
pub use lock::OrderStatus;
pub use log::{CommandKind, Event, FailureKind, LogEntry, SagaLog, SagaOutcome};
pub use saga::{Command, Input, Output, Saga};
pub use sansio_core::{Machine, Millis};
