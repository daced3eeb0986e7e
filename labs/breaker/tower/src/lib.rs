//! The circuit breaker for services: the pure core ([`breaker_core`]) made shareable and
//! put in front of real calls.
//!
//! - [`clock`] — where "now" comes from (tokio's clock, so paused-clock tests work);
//! - [`handle`] — [`Breaker`], a thread-safe handle with a lock-free healthy path;
//! - [`layer`] — a `tower::Layer` that wraps any client with a breaker.
//!
//! The breaker lab's demo services and the gateway's upstreams are both built on it.

pub mod clock;
pub mod handle;
pub mod layer;

pub use handle::{Admission, Breaker, BreakerMetrics};
pub use layer::{BreakerLayer, BreakerService};
