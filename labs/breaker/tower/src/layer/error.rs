//! The error a rejected call returns, and how to find it in a boxed error.
//!
//! Like tower's `timeout::error::Elapsed`, a rejection travels as a `BoxError` so
//! layers stack without error-type gymnastics; [`rejection`] downcasts it back.

use tower::BoxError;

/// The core's rejection: the state that refused the call and, in Open, how long until
/// trial calls are let through.
pub use breaker_core::Rejected;

/// The [`Rejected`] inside a boxed error, if that is what it is.
pub fn rejection(error: &BoxError) -> Option<&Rejected> {
    error.downcast_ref::<Rejected>()
}
