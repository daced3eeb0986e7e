//! RFC 9457 "problem details": the one error shape every service in every lab speaks.
//!
//! A client that talks to several services should not have to learn one error format per
//! service. `application/problem+json` gives every error the same fields (`type`, `title`,
//! `status`, `detail`), and `detail` is where we say something useful to the human reading a
//! log line at 3 a.m. This crate holds the shape once; each lab adds only its own kinds of
//! problem (the saga's semantic lock, the gateway's `Retry-After`) in its `problem.rs`.

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use http_body_util::BodyExt;

    async fn parts(response: Response) -> (StatusCode, String, serde_json::Value) {
        let status = response.status();
        let content_type = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_problem_is_served_as_problem_json_with_its_status() {
        let problem = Problem::new(StatusCode::CONFLICT, "Locked", "order 7 is locked")
            .with_kind("https://example.test/problems/lock");
        let (status, content_type, body) = parts(problem.into_response()).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(content_type, PROBLEM_JSON);
        assert_eq!(
            body,
            serde_json::json!({
                "type": "https://example.test/problems/lock",
                "title": "Locked",
                "status": 409,
                "detail": "order 7 is locked",
            })
        );
    }

    #[tokio::test]
    async fn an_unknown_path_gets_a_404_problem_naming_it() {
        let problem = not_found(Uri::from_static("/nowhere?x=1")).await;
        assert_eq!(problem.kind, "about:blank");
        let (status, _, body) = parts(problem.into_response()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["detail"], "no route for /nowhere");
    }

    #[test]
    fn a_problem_reads_back_from_its_json() {
        let problem = Problem::new(StatusCode::BAD_REQUEST, "Bad request", "no body");
        let json = serde_json::to_string(&problem).unwrap();
        assert_eq!(serde_json::from_str::<Problem>(&json).unwrap(), problem);
    }
}
