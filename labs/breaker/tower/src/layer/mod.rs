//! A `tower` middleware that puts a [`Breaker`](crate::Breaker) in front of any service.
//!
//! Shaped like tower's own `timeout` module, because that is the shape a reader of tower
//! already knows: [`BreakerLayer`] (`layer.rs`) wraps a service in a [`BreakerService`]
//! (`service.rs`), whose calls return a [`ResponseFuture`] (`future.rs`) that records the
//! outcome when it completes, or releases the permit when it is dropped; rejections are
//! [`Rejected`] errors (`error.rs`) and a [`classify`] rule decides what counts as failure.
//!
//! Because it is plain `tower`, it wraps a hyper client, an axum `Router`, a tonic channel,
//! or (through `tower::ServiceBuilder`) a whole stack with retries and timeouts.

pub mod classify;
mod error;
mod future;
#[allow(clippy::module_inception)]
mod layer;
mod service;

pub use classify::HttpClassifier;
pub use error::{Rejected, rejection};
pub use future::ResponseFuture;
pub use layer::BreakerLayer;
pub use service::BreakerService;
pub use service::result_classifier;
