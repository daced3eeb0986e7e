//! How the orchestrator reaches a participant: over HTTP, or by calling its router in-process.
//!
//! Both send the same request (`POST /<operation>` with an `Idempotency-Key` header and the
//! order line as JSON) and get the same [`Reply`]. The in-process transport skips the socket,
//! which lets tests run with tokio's paused clock (a real socket and a paused clock do not
//! mix: the clock jumps ahead while the kernel delivers bytes).
//!
//! Inside a traced step, both make the call in a client span and send its context as
//! `traceparent`, so the participant's server span is its child.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use lab_telemetry::client;
use saga_core::Command;
use tower::ServiceExt;
use tracing::{Instrument, Span};

use crate::line::{OrderLine, Reply};
use crate::participant::{IDEMPOTENCY_KEY, problem_reply};
use crate::problem;

/// A way to deliver commands to participants, by participant name.
#[derive(Clone, Debug)]
pub enum Transport {
    /// Call each participant's router directly.
    InProcess(HashMap<String, Router>),
    /// Call each participant's base URL (`http://127.0.0.1:4001`).
    Http {
        /// The HTTP client (connection pool shared by all calls).
        client: reqwest::Client,
        /// Base URL per participant.
        base_urls: HashMap<String, String>,
        /// How long to wait for a reply before calling it a (retryable) failure.
        timeout: Duration,
    },
}

impl Transport {
    // ANCHOR: send
    /// Sends `command` for `line` and returns the participant's reply. Transport failures
    /// (connection refused, timeout) come back as a 503 reply: their outcome is unknown, so
    /// they are retryable, never a business refusal.
    pub async fn send(&self, command: &Command, line: &OrderLine) -> Reply {
        let body = match serde_json::to_vec(line) {
            Ok(body) => body,
            Err(error) => return problem_reply(problem::bad_request(error.to_string())),
        };
        let path = format!("/{}", command.operation);
        // Traced only inside a traced step: with tracing off, no span and no header.
        let traced = !Span::current().is_disabled();
        match self {
            Transport::InProcess(routers) => {
                let Some(router) = routers.get(&command.participant) else {
                    return unknown(&command.participant);
                };
                let request = Request::post(&path)
                    .header("content-type", "application/json")
                    .header(IDEMPOTENCY_KEY, &command.idempotency_key)
                    .body(Body::from(body));
                let Ok(mut request) = request else {
                    return problem_reply(problem::bad_request("unrepresentable request"));
                };
                let span =
                    match reqwest::Url::parse(&format!("http://{}{path}", command.participant)) {
                        Ok(url) if traced => client::client_span("POST", &url),
                        _ => Span::none(),
                    };
                client::inject(&span, request.headers_mut());
                match router
                    .clone()
                    .oneshot(request)
                    .instrument(span.clone())
                    .await
                {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        client::record_status(&span, Some(status));
                        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                            .await
                            .unwrap_or_default();
                        Reply {
                            status,
                            body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
                        }
                    }
                    Err(infallible) => match infallible {},
                }
            }
            Transport::Http {
                client,
                base_urls,
                timeout,
            } => {
                let Some(base) = base_urls.get(&command.participant) else {
                    return unknown(&command.participant);
                };
                let request = client
                    .post(format!("{base}{path}"))
                    .header(IDEMPOTENCY_KEY, &command.idempotency_key)
                    .header("content-type", "application/json")
                    .body(body)
                    .timeout(*timeout)
                    .build();
                let response = match request {
                    Ok(request) if traced => client::traced_execute(client, request).await,
                    Ok(request) => client.execute(request).await,
                    Err(error) => Err(error),
                };
                match response {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let body = response.json().await.unwrap_or(serde_json::Value::Null);
                        Reply { status, body }
                    }
                    Err(error) => problem_reply(problem::unavailable(format!(
                        "{} did not answer: {error}",
                        command.participant
                    ))),
                }
            }
        }
    }
    // ANCHOR_END: send

    /// Whether `participant` answers `GET /health` with a 2xx: the orchestrator's way to
    /// see that a participant it gave up on is back.
    pub async fn is_up(&self, participant: &str) -> bool {
        match self {
            Transport::InProcess(routers) => {
                let Some(router) = routers.get(participant) else {
                    return false;
                };
                let Ok(request) = Request::get("/health").body(Body::empty()) else {
                    return false;
                };
                match router.clone().oneshot(request).await {
                    Ok(response) => response.status().is_success(),
                    Err(infallible) => match infallible {},
                }
            }
            Transport::Http {
                client,
                base_urls,
                timeout,
            } => {
                let Some(base) = base_urls.get(participant) else {
                    return false;
                };
                client
                    .get(format!("{base}/health"))
                    .timeout(*timeout)
                    .send()
                    .await
                    .is_ok_and(|response| response.status().is_success())
            }
        }
    }
}

fn unknown(participant: &str) -> Reply {
    problem_reply(problem::unavailable(format!(
        "no route to participant `{participant}`"
    )))
}
