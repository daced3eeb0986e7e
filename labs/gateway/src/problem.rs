//! Errors as `application/problem+json` (RFC 9457), the one error format of every lab.
//!
//! The document itself is `lab-http`'s, shared by every lab. A gateway's errors are read by
//! programs first, so it adds two things of its own: a client that gets a 429 or a 503 wants to
//! know when to come back (`retry_after`, in the body and as `Retry-After`), and one that gets
//! a 401 is told how to authenticate (`WWW-Authenticate`). The title is always the status's
//! own reason phrase: the gateway fronts many services and names no kinds of its own.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;

/// One problem report: the shared document plus the gateway's `retry_after`.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    /// `type`, `title`, `status` and `detail`, as every lab writes them.
    #[serde(flatten)]
    pub document: lab_http::Problem,
    /// Seconds until a retry may succeed, when known (also sent as `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem with `status` and a `detail` explaining this occurrence.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            document: lab_http::Problem::new(
                status,
                status.canonical_reason().unwrap_or("Error"),
                detail,
            ),
            retry_after: None,
        }
    }

    /// Adds a `Retry-After` in whole seconds.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The HTTP response.
    pub fn into_response(self) -> Response<Body> {
        let status =
            StatusCode::from_u16(self.document.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(lab_http::PROBLEM_JSON),
        );
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"gateway\""),
            );
        }
        response
    }
}

impl axum::response::IntoResponse for Problem {
    fn into_response(self) -> axum::response::Response {
        Problem::into_response(self)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_body_is_the_shared_document_plus_retry_after() {
        let problem =
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "payment is open").retry_after(3);
        assert_eq!(
            serde_json::to_value(&problem).unwrap(),
            serde_json::json!({
                "type": "about:blank",
                "title": "Service Unavailable",
                "status": 503,
                "detail": "payment is open",
                "retry_after": 3,
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
    fn a_401_says_how_to_authenticate_and_has_no_retry_after() {
        let problem = Problem::new(StatusCode::UNAUTHORIZED, "no token");
        assert!(
            serde_json::to_value(&problem)
                .unwrap()
                .get("retry_after")
                .is_none(),
            "retry_after is left out when unknown"
        );
        let response = problem.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"gateway\""
        );
    }
}
