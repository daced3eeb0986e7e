//! A rejected call, answered the HTTP way: `503`, `Retry-After`, and a problem document.
//!
//! When a breaker fronts a service (our order endpoint calls payment), a rejection must
//! still answer the *caller* honestly: 503 says "not you, us", and `Retry-After` tells a
//! well-behaved client when asking again could work, instead of hammering us in a loop.
//! The core knows that moment in Open (the rest of the wait); in a full HalfOpen or a
//! ForcedOpen it does not, and we then suggest one second rather than inventing precision.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use breaker_core::Rejected;

use crate::problem::Problem;

/// The `Retry-After` we send when the core cannot say (full HalfOpen, ForcedOpen).
const DEFAULT_RETRY_AFTER_SECS: u64 = 1;

/// A [`Rejected`] as an axum response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceUnavailable(pub Rejected);

impl ServiceUnavailable {
    /// Whole seconds to wait, rounded up (`Retry-After` has no fractions, and rounding
    /// down would invite the client back while we are still Open).
    pub fn retry_after_secs(&self) -> u64 {
        self.0.retry_after.map_or(DEFAULT_RETRY_AFTER_SECS, |wait| {
            wait.0.div_ceil(1000).max(1)
        })
    }
}

impl IntoResponse for ServiceUnavailable {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after_secs();
        let mut response = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Dependency unavailable",
            format!(
                "{}; the call was not attempted. Retry in {retry_after} s.",
                self.0
            ),
        )
        .with_kind("https://microservices-in-motion.dev/problems/circuit-open")
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        response
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use breaker_core::{Millis, State};

    #[test]
    fn open_rejection_is_a_503_with_retry_after_rounded_up() {
        let response = ServiceUnavailable(Rejected {
            state: State::Open,
            retry_after: Some(Millis(1200)),
        })
        .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            crate::problem::PROBLEM_JSON
        );
    }

    #[test]
    fn unknown_wait_suggests_one_second() {
        let unavailable = ServiceUnavailable(Rejected {
            state: State::HalfOpen,
            retry_after: None,
        });
        assert_eq!(unavailable.retry_after_secs(), 1);
    }
}
