//! A rejected call, answered the HTTP way: `503`, `Retry-After`, and a problem document.
//!
//! When a breaker fronts a service (our order endpoint calls payment), a rejection must
//! still answer the *caller* honestly: 503 says "not you, us", and `Retry-After` tells a
//! well-behaved client when asking again could work, instead of hammering us in a loop.
//! The core knows that moment in Open (the rest of the wait); in a full HalfOpen or a
//! ForcedOpen it does not, and we then suggest one second rather than inventing precision.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use breaker_core::{Millis, Rejected};

use crate::problem::Problem;

/// The wait we suggest when the core cannot say (full HalfOpen, ForcedOpen).
const DEFAULT_RETRY_AFTER: Millis = Millis(1000);

/// A [`Rejected`] as an axum response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceUnavailable(pub Rejected);

impl ServiceUnavailable {
    /// How long to wait before asking again: the rest of the Open wait, or one second.
    pub fn wait(&self) -> Millis {
        self.0.retry_after.unwrap_or(DEFAULT_RETRY_AFTER)
    }

    /// Whole seconds to wait, rounded up, as `Retry-After` says them.
    pub fn retry_after_secs(&self) -> u64 {
        lab_http::retry_after_secs(self.wait())
    }
}

impl From<ServiceUnavailable> for Problem {
    /// 503 with `Retry-After`: the circuit is open, the call was not attempted.
    fn from(unavailable: ServiceUnavailable) -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Dependency unavailable",
            format!(
                "{}; the call was not attempted. Retry in {} s.",
                unavailable.0,
                unavailable.retry_after_secs()
            ),
        )
        .with_kind("https://microservices-in-motion.dev/problems/circuit-open")
        .retry_after(unavailable.wait())
    }
}

impl IntoResponse for ServiceUnavailable {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::header;
    use breaker_core::State;

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
