//! Outgoing calls of any method in a client span, and work run under a service's subscriber.
//!
//! [`traced_get`](crate::traced_get) covers a `GET` by URL; [`traced_execute`] sends any
//! `reqwest::Request` (a `POST` with a body and an idempotency key, say) the same way: a
//! client span, child of the current span, with OpenTelemetry's HTTP attribute names, and
//! its context injected as `traceparent`. [`client_span`], [`inject`] and [`record_status`]
//! are the pieces, for a call that is no `reqwest` request (an in-process router).
//! [`Telemetry::run`] drives a future, and [`within`] a closure, with a service's subscriber
//! as the current one, so the spans they open belong to that service.

use std::future::Future;

use opentelemetry::propagation::TextMapPropagator;
use tracing::instrument::{WithDispatch, WithSubscriber};
use tracing::{Dispatch, Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::propagator::{HeaderInjector, StrictPropagator};
use crate::telemetry::Telemetry;

// ANCHOR: client_span
/// A client span for `method url`, child of the current span.
pub fn client_span(method: &str, url: &reqwest::Url) -> Span {
    tracing::info_span!(
        "call",
        otel.name = format!("{method} {}", url.path()),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = method,
        url.full = url.as_str(),
        server.address = url.host_str().unwrap_or_default(),
        server.port = url.port_or_known_default().unwrap_or_default(),
        http.response.status_code = tracing::field::Empty,
    )
}
// ANCHOR_END: client_span

/// Writes `span`'s context into `headers` (`traceparent`, and `tracestate` when there is
/// one); nothing when the span is not traced.
pub fn inject(span: &Span, headers: &mut http::HeaderMap) {
    StrictPropagator.inject_context(&span.context(), &mut HeaderInjector(headers));
}

/// Records the answer's status on a client span (`None`: no answer), a 5xx or no answer
/// as an error.
pub fn record_status(span: &Span, status: Option<u16>) {
    match status {
        Some(status) => {
            span.record("http.response.status_code", status);
            if status >= 500 {
                span.record("otel.status_code", "ERROR");
            }
        }
        None => {
            span.record("otel.status_code", "ERROR");
        }
    }
}

// ANCHOR: traced_execute
/// Sends `request` from inside a traced span: a client span, child of the current span,
/// whose context goes out as `traceparent` (and `tracestate`).
pub async fn traced_execute(
    client: &reqwest::Client,
    mut request: reqwest::Request,
) -> reqwest::Result<reqwest::Response> {
    let span = client_span(request.method().as_str(), request.url());
    inject(&span, request.headers_mut());
    let response = client.execute(request).instrument(span.clone()).await;
    record_status(&span, response.as_ref().ok().map(|r| r.status().as_u16()));
    response
}
// ANCHOR_END: traced_execute

impl Telemetry {
    /// This service's subscriber.
    pub fn subscriber(&self) -> Dispatch {
        self.in_scope(|| tracing::dispatcher::get_default(Dispatch::clone))
    }

    /// Drives `work` with this service's subscriber as the current one: the spans it opens
    /// are this service's.
    pub fn run<F: Future>(&self, work: F) -> WithDispatch<F> {
        work.with_subscriber(self.subscriber())
    }
}

/// Runs `work` inside `span`, with the span's own subscriber as the current one: what a
/// blocking thread (`spawn_blocking`) needs, since it starts with no subscriber and no span.
pub fn within<T>(span: &Span, work: impl FnOnce() -> T) -> T {
    match span.with_subscriber(|(_, dispatch)| dispatch.clone()) {
        Some(dispatch) => tracing::dispatcher::with_default(&dispatch, || span.in_scope(work)),
        None => work(),
    }
}
