//! RFC 9457 "problem details": the one error shape every service in the lab speaks.
//!
//! The shape itself lives in `lab-http`, shared by every lab. What is the saga's own is the
//! vocabulary of its refusals: a 409 for an order its running saga holds (the semantic lock),
//! a 422 for a business refusal not worth a retry, a 503 for a transient failure that is.
//! A participant's reply is judged by these statuses, so they are named once, here, as
//! functions returning `lab-http`'s [`Problem`]. So are the answers to requests no route
//! takes: a body over the limit, an unknown path or method.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::http::{Method, StatusCode, Uri};

pub use lab_http::Problem;

/// The largest request body any saga service reads: an order line is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

// The saga's kinds of problem, each a `lab-http` problem with its status and title.

/// 400: the request body or a header is malformed.
pub fn bad_request(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "Bad request", detail)
}

/// 404: no such order.
pub fn not_found(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "Not found", detail)
}

/// 409: the order is locked by its running saga (the semantic lock).
pub fn locked(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::CONFLICT, "Order is locked by its saga", detail)
        .with_kind("https://microservices-in-motion.dev/problems/semantic-lock")
}

/// 409: the request contradicts what the service already holds (the same order under
/// another idempotency key). Worth a retry once the other one is undone.
pub fn conflict(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::CONFLICT, "Conflict", detail)
}

/// 422: a business refusal (insufficient funds, out of stock). Not worth a retry.
pub fn refused(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Refused", detail)
        .with_kind("https://microservices-in-motion.dev/problems/business-refusal")
}

/// 503: a transient failure (injected, or the database is busy). Worth a retry.
pub fn unavailable(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", detail)
}

/// A body the service could not read, as a problem: 413 with the limit when it is too
/// large, axum's own status and words otherwise.
pub fn body_rejected(rejection: BytesRejection) -> Problem {
    let status = rejection.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(
            status,
            "Payload too large",
            format!("the body is larger than the {MAX_BODY_BYTES} bytes this service accepts"),
        )
    } else {
        Problem::new(status, "Unreadable body", rejection.body_text())
    }
}

/// The answer to a known path asked with a method it does not take: a 405 problem.
pub async fn method_not_allowed(method: Method, uri: Uri) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        format!("{} does not take {method}", uri.path()),
    )
}

/// Finishes a service's router (call it after the last route): unknown paths get
/// `lab-http`'s 404 problem, unknown methods a 405 problem, and bodies are read up to
/// [`MAX_BODY_BYTES`].
pub fn with_problem_fallbacks<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(lab_http::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}
