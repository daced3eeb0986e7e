//! Errors as `application/problem+json` (RFC 9457), the one error format of every lab.
//!
//! The document is `lab-http`'s [`Problem`], shared by every lab. The gateway fronts many
//! services and names no kinds of its own, so a problem's title is its status's reason phrase
//! ([`problem`]). Its errors turn into problems here: an [`AuthError`] is a 401 that says how
//! to authenticate (`WWW-Authenticate`), an [`UpstreamError`] carries its status, and an open
//! breaker's also says when to come back (`Retry-After`).

use axum::http::{HeaderValue, StatusCode, header};

use crate::auth::AuthError;
use crate::upstream::UpstreamError;

pub use lab_http::Problem;

/// A problem with `status`, titled by its reason phrase, and a `detail` explaining this
/// occurrence.
pub fn problem(status: StatusCode, detail: impl Into<String>) -> Problem {
    Problem::new(status, status.canonical_reason().unwrap_or("Error"), detail)
}

/// The wait suggested when an open breaker cannot say (full HalfOpen, ForcedOpen).
const DEFAULT_RETRY_AFTER: breaker_core::Millis = breaker_core::Millis(1000);

impl From<AuthError> for Problem {
    /// 401, with the scheme the gateway accepts.
    fn from(error: AuthError) -> Self {
        problem(StatusCode::UNAUTHORIZED, error.to_string()).with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"gateway\""),
        )
    }
}

impl From<UpstreamError> for Problem {
    /// The error's own status; an open breaker's 503 also says when to come back.
    fn from(error: UpstreamError) -> Self {
        let wait = match &error {
            UpstreamError::BreakerOpen { rejected, .. } => {
                Some(rejected.retry_after.unwrap_or(DEFAULT_RETRY_AFTER))
            }
            _ => None,
        };
        let problem = problem(error.status(), error.to_string());
        match wait {
            Some(wait) => problem.retry_after(wait),
            None => problem,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use axum::response::IntoResponse;
    use breaker_core::{Millis, Rejected, State};

    #[test]
    fn an_open_breaker_is_a_503_titled_by_its_status_with_retry_after() {
        let problem = Problem::from(UpstreamError::BreakerOpen {
            upstream: "payment".to_owned(),
            rejected: Rejected {
                state: State::Open,
                retry_after: Some(Millis(2001)),
            },
        });
        assert_eq!(
            serde_json::to_value(&problem).unwrap(),
            serde_json::json!({
                "type": "about:blank",
                "title": "Service Unavailable",
                "status": 503,
                "detail": "upstream payment is unavailable: its circuit breaker is open",
            })
        );
        let response = problem.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            lab_http::PROBLEM_JSON
        );
    }

    #[test]
    fn a_breaker_that_cannot_say_suggests_one_second() {
        let response = Problem::from(UpstreamError::BreakerOpen {
            upstream: "payment".to_owned(),
            rejected: Rejected {
                state: State::HalfOpen,
                retry_after: None,
            },
        })
        .into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn a_401_says_how_to_authenticate_and_has_no_retry_after() {
        let response = Problem::from(AuthError::Missing).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"gateway\""
        );
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
    }
}
