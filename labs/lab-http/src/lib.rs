//! RFC 9457 "problem details": the one error shape every service in every lab speaks.
//!
//! A client that talks to several services should not have to learn one error format per
//! service. `application/problem+json` gives every error the same fields (`type`, `title`,
//! `status`, `detail`), and `detail` is where we say something useful to the human reading a
//! log line at 3 a.m. This crate holds the shape once, with the one constructor
//! [`Problem::new`], the `Retry-After` every refusal worth a retry carries
//! ([`Problem::retry_after`]) and any other header a kind of problem needs
//! ([`Problem::with_header`]). Each lab adds only its own kinds of problem (the saga's semantic
//! lock, the gateway's conversions from its errors) in its `problem.rs`; the breaker's
//! open-circuit refusal converts in its `rejection.rs`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use sansio_core::Millis;
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
    /// Headers the response carries besides its content type (`Retry-After`,
    /// `WWW-Authenticate`); not part of the document.
    /// (A list, not a `HeaderMap`: a problem travels in `Err`, which should stay small.)
    #[serde(skip)]
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Problem {
    /// A problem with the given status, title and detail.
    pub fn new(status: StatusCode, title: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank".to_owned(),
            title: title.into(),
            status: status.as_u16(),
            detail: detail.into(),
            headers: Vec::new(),
        }
    }

    /// Tells the client when asking again could work: `Retry-After` in whole seconds, rounded
    /// up (the header has no fractions, and rounding down would invite the client back too
    /// early), and never 0, which would invite it back at once.
    pub fn retry_after(self, wait: Millis) -> Self {
        self.with_header(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after_secs(wait)),
        )
    }

    /// Adds a header to the response (replacing one of the same name).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.retain(|(held, _)| *held != name);
        self.headers.push((name, value));
        self
    }

    /// Sets the `type` URI.
    pub fn with_kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = kind.into();
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(mut self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let extra = std::mem::take(&mut self.headers);
        let mut response = (status, Json(self)).into_response();
        let headers = response.headers_mut();
        // `Json` sets `application/json`; a problem document announces itself.
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in extra {
            headers.insert(name, value);
        }
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

/// A wait as `Retry-After` says it: whole seconds, rounded up, at least 1 (what
/// [`Problem::retry_after`] sends, for a `detail` that names the same number).
pub fn retry_after_secs(wait: Millis) -> u64 {
    wait.as_secs_ceil().max(1)
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
    fn retry_after_is_whole_seconds_rounded_up_on_the_response() {
        for (wait, secs) in [(0, "1"), (1, "1"), (1000, "1"), (1001, "2"), (2500, "3")] {
            let response = Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", "later")
                .retry_after(Millis(wait))
                .into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[header::RETRY_AFTER], secs, "{wait} ms");
            assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        }
    }

    #[tokio::test]
    async fn retry_after_leaves_the_body_as_it_was() {
        let plain = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests",
            "slow down",
        );
        let (_, _, before) = parts(plain.clone().into_response()).await;
        let (_, _, after) = parts(plain.retry_after(Millis(1200)).into_response()).await;
        assert_eq!(before, after);
    }

    #[test]
    fn a_header_set_on_a_problem_is_on_its_response() {
        let response = Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized", "no token")
            .with_header(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"gateway\""),
            )
            .into_response();
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"gateway\""
        );
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }

    #[test]
    fn a_problem_reads_back_from_its_json() {
        let problem = Problem::new(StatusCode::BAD_REQUEST, "Bad request", "no body");
        let json = serde_json::to_string(&problem).unwrap();
        assert_eq!(serde_json::from_str::<Problem>(&json).unwrap(), problem);
    }
}
