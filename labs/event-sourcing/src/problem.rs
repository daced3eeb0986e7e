//! The store service's kinds of problem: every refusal as `application/problem+json`.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use event_sourcing_core::{AppendError, Conflict};
use event_sourcing_store::{LoadError, StoreError};
use lab_http::Problem;

/// The header a conflict carries: the stream's version now, to reload from.
pub const STREAM_VERSION: HeaderName = HeaderName::from_static("stream-version");

/// 400: the request cannot be read.
pub fn bad_request(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "Bad request", detail)
}

/// 413: the request or one of its events is over a limit.
pub fn too_large(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "Too large", detail)
}

/// 422: the events or command read fine but break the order's rules.
pub fn unprocessable(detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Breaks the order's rules",
        detail,
    )
}

/// 409: the stream is not at the expected version; the detail and `Stream-Version` name it.
pub fn conflict(conflict: Conflict) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "Wrong expected version",
        format!(
            "{conflict}: reload the stream at version {} and decide again",
            conflict.current
        ),
    )
    .with_kind("/problems/wrong-expected-version")
    .with_header(STREAM_VERSION, HeaderValue::from(conflict.current))
}

impl From<AppendErrorProblem> for Problem {
    fn from(AppendErrorProblem(error): AppendErrorProblem) -> Problem {
        match error {
            AppendError::Conflict(found) => conflict(found),
            AppendError::PartlyAppended { .. } => Problem::new(
                StatusCode::CONFLICT,
                "Batch partly in the stream",
                error.to_string(),
            ),
            AppendError::EmptyBatch | AppendError::DuplicateIdInBatch(_) => {
                bad_request(error.to_string())
            }
        }
    }
}

/// An append error on its way to becoming a problem.
pub struct AppendErrorProblem(pub AppendError);

/// A store or load failure as a problem: the append's own errors as 4xx, the backend's as 503.
pub fn from_store(error: StoreError) -> Problem {
    match error {
        StoreError::Append(error) => AppendErrorProblem(error).into(),
        StoreError::Backend(detail) => {
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Store unavailable", detail)
        }
    }
}

/// A load failure as a problem.
pub fn from_load(error: LoadError) -> Problem {
    match error {
        LoadError::Store(error) => from_store(error),
        decode @ LoadError::Decode { .. } => Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Stored event unreadable",
            decode.to_string(),
        ),
    }
}
