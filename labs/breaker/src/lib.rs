//! The circuit breaker lab: the service side of the pattern.
//!
//! The decisions live in the pure core, [`breaker_core`]; the shared handle, the tower
//! layer and the clock that put them on real sockets live in [`breaker_tower`]. This crate
//! is the lab around them:
//!
//! - [`fallback`] — a cached-or-default answer for rejected calls;
//! - [`rejection`] — a rejected call as `503` + `Retry-After` + problem JSON;
//! - [`metrics`] — Prometheus text for `/metrics`;
//! - [`payment`] — the upstream we break on purpose; [`order`] — the client that calls it;
//! - [`scenario`] — the scripted outage, generic over the [`transport`];
//! - [`narration`] — the timeline the demo prints.

pub mod fallback;
pub mod metrics;
pub mod narration;
pub mod order;
pub mod payment;
pub mod problem;
pub mod rejection;
pub mod scenario;
pub mod transport;

pub use breaker_core;
