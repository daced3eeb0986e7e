//! The saga lab: order, payment, inventory and shipping services driven by `saga-core`.
//!
//! - [`payment`], [`inventory`], [`shipping`]: the participants' business rules, each behind
//!   the shared idempotent [`participant`] machinery and its own SQLite database;
//! - [`order`]: the order service, its database (orders + saga log) and the orchestrator that
//!   drives `saga_core::Saga`, persisting each log entry with the order's state change;
//! - [`choreography`]: the same saga as events, with a transactional outbox, an idempotent
//!   inbox and a dead-letter table an operator re-drives, over an in-process bus or NATS
//!   JetStream ([`bus`]); a message is acknowledged only once its effect or its dead letter
//!   is committed;
//! - [`db`]: each service's SQLite file, and write transactions that take the lock up front;
//! - [`narration`]: the demo's live sequence diagram, painted only for a terminal;
//! - [`system`]: all four services in one process, for the demo, the tests and the bench;
//! - [`telemetry`]: each service's tracing, on when an OTLP endpoint is given.

pub mod bus;
pub mod choreography;
pub mod db;
pub mod inventory;
pub mod line;
pub mod narration;
pub mod order;
pub mod participant;
pub mod payment;
pub mod problem;
pub mod shipping;
pub mod system;
pub mod telemetry;
pub mod transport;
