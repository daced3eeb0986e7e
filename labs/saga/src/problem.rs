//! RFC 9457 "problem details": the one error shape every service in the lab speaks.
//!
//! The shape itself lives in `lab-http`, shared by every lab. What is the saga's own is the
//! vocabulary of its refusals: a 409 for an order its running saga holds (the semantic lock),
//! a 422 for a business refusal not worth a retry, a 503 for a transient failure that is.
//! A participant's reply is judged by these statuses, so they are named once, here.

use axum::http::StatusCode;

pub use lab_http::Problem;

/// The saga's kinds of problem, as constructors on [`Problem`]
/// (`Problem::locked(..)`, with this trait in scope).
pub trait SagaProblem {
    /// 400: the request body or a header is malformed.
    fn bad_request(detail: impl Into<String>) -> Self;
    /// 404: no such order.
    fn not_found(detail: impl Into<String>) -> Self;
    /// 409: the order is locked by its running saga (the semantic lock).
    fn locked(detail: impl Into<String>) -> Self;
    /// 422: a business refusal (insufficient funds, out of stock). Not worth a retry.
    fn refused(detail: impl Into<String>) -> Self;
    /// 503: a transient failure (injected, or the database is busy). Worth a retry.
    fn unavailable(detail: impl Into<String>) -> Self;
}

impl SagaProblem for Problem {
    fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "Bad request", detail)
    }

    fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "Not found", detail)
    }

    fn locked(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::CONFLICT, "Order is locked by its saga", detail)
            .with_kind("https://microservices-in-motion.dev/problems/semantic-lock")
    }

    fn refused(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Refused", detail)
            .with_kind("https://microservices-in-motion.dev/problems/business-refusal")
    }

    fn unavailable(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", detail)
    }
}
