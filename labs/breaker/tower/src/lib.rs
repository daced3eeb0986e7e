//! The circuit breaker for services: the pure core ([`breaker_core`]) made shareable and
//! put in front of real calls.
//!
//! - [`clock`] — where "now" comes from: `lab-runtime`'s clock, re-exported (tokio's clock,
//!   so paused-clock tests work, and a manual one for threaded tests);
//! - [`handle`] — [`Breaker`], a thread-safe handle with a lock-free healthy path;
//! - [`layer`] — a `tower::Layer` that wraps any client with a breaker.
//!
//! The breaker lab's demo services and the gateway's upstreams are both built on it.

/// The clock every lab shares, re-exported so `breaker_tower::clock::TokioClock` still names it.
pub use lab_runtime::clock;
pub mod handle;
pub mod layer;

pub use handle::{Admission, Breaker, BreakerMetrics};
pub use layer::{BreakerLayer, BreakerService};
