//! RFC 9457 "problem details": the one error shape every service in the lab speaks.
//!
//! A client that talks to several services should not have to learn one error
//! format per service. `application/problem+json` gives every error the same
//! fields (`type`, `title`, `status`, `detail`), and `detail` is where we say
//! something useful to the human reading a log line at 3 a.m.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem document (RFC 9457).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// A URI naming the kind of problem; `about:blank` when the status says it all.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short, human-readable summary of the kind of problem.
    pub title: String,
    /// The HTTP status code, repeated so the body stands on its own in a log.
    pub status: u16,
    /// What went wrong with *this* request, in words.
    pub detail: String,
}

impl Problem {
    /// A problem with the given status, title and detail.
    pub fn new(status: StatusCode, title: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank".to_owned(),
            title: title.into(),
            status: status.as_u16(),
            detail: detail.into(),
        }
    }

    /// Sets the `type` URI.
    pub fn with_kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = kind.into();
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self)).into_response();
        // `Json` sets `application/json`; a problem document announces itself.
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

impl From<JsonRejection> for Problem {
    /// A body that is not the JSON we expect: axum's own message, as a problem document.
    fn from(rejection: JsonRejection) -> Self {
        Problem::new(
            rejection.status(),
            "Invalid request body",
            rejection.body_text(),
        )
    }
}

/// The fallback route of every service: unknown paths get a 404 problem, not an empty body.
pub async fn not_found(uri: Uri) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "Not found",
        format!("no route for {}", uri.path()),
    )
}
