//! The event sourcing lab's store service: the event store of `event-sourcing-store` behind
//! an HTTP API, checking every appended event against the order aggregate's rules.
//!
//! - [`api`] — the routes: append with an expected version, commands, reads of a stream and
//!   of `$all`, time travel, a live subscription as server-sent events;
//! - [`wire`] — the request's JSON read by hand, the limits, events as the API shows them;
//! - [`problem`] — every refusal as problem+json;
//! - [`writer`] — a process that appends batches straight to the SQLite file, for the demo's
//!   and the tests' crash.

pub mod api;
pub mod problem;
pub mod wire;
pub mod writer;

pub use api::{AppState, router};
