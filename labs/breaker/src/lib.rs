//! The circuit breaker lab: the service side of the pattern.
//!
//! The decisions live in the pure core, [`breaker_core`]; this crate puts them to work
//! on real sockets:
//!
//! - [`clock`] — where "now" comes from (tokio's clock, so paused-clock tests work);
//! - [`handle`] — [`Breaker`], a thread-safe handle with a lock-free healthy path;
//! - [`layer`] — a `tower::Layer` that wraps any client with a breaker;
//! - [`fallback`] — a cached-or-default answer for rejected calls;
//! - [`rejection`] — a rejected call as `503` + `Retry-After` + problem JSON;
//! - [`metrics`] — Prometheus text for `/metrics`;
//! - [`payment`] — the upstream we break on purpose; [`order`] — the client that calls it;
//! - [`scenario`] — the scripted outage, generic over the [`transport`];
//! - [`narration`] — the timeline the demo prints.

pub mod clock;
pub mod fallback;
pub mod handle;
pub mod layer;
pub mod metrics;
pub mod narration;
pub mod order;
pub mod payment;
pub mod problem;
pub mod rejection;
pub mod scenario;
pub mod transport;

pub use breaker_core;
pub use handle::{Admission, Breaker, BreakerMetrics};
pub use layer::{BreakerLayer, BreakerService};
