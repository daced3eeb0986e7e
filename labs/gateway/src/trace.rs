//! W3C trace context through the gateway, and a span per proxied request.
//!
//! With `[tracing]` configured, every proxied request gets a server span (`lab-telemetry`'s
//! [`SpanSource`]: the OpenTelemetry SDK, exported over OTLP/HTTP): the child of the client's
//! span when its `traceparent` is valid, the root of a new trace when it is missing or invalid.
//! The request goes upstream with the gateway's span as its parent, never with the client's
//! header. The span carries OpenTelemetry's HTTP server attributes, the error status on a 5xx,
//! and an event for the breaker's rejection and for each retry; it ends when the upstream's
//! response headers are back (the body then streams through untraced).
//!
//! Without `[tracing]`, the gateway still never forwards an invalid `traceparent`: a valid one
//! (with its `tracestate`) passes through untouched, as Envoy and nginx pass it with their
//! tracing off, and an invalid one is removed with its `tracestate`
//! ([`lab_telemetry::proxy::pass_through`]).
//!
//! Either way the access log names the trace: the gateway's span's, or the valid incoming one's.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{Method, header};
use lab_telemetry::Telemetry;
use lab_telemetry::proxy::{ServerSpan, SpanSource, add_event_to_current};
use lab_telemetry::telemetry::Wire;
use opentelemetry::trace::TraceId;
use opentelemetry::{KeyValue, Value};

use crate::config::{TracingConfig, TracingProtocol};

/// The gateway's tracer, built from `[tracing]`.
#[derive(Debug)]
pub struct Tracing {
    telemetry: Arc<Telemetry>,
    spans: SpanSource,
    /// Each route's prefix as an attribute value, in the route table's order: no copy of the
    /// string per request.
    routes: Vec<Value>,
}

/// The trace a response belonged to, left in its extensions for the access log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceOf(pub TraceId);

impl Tracing {
    /// Starts the exporter to the configured collector; `prefixes` are the routes' prefixes, in
    /// the table's order.
    pub async fn start(
        config: &TracingConfig,
        prefixes: impl IntoIterator<Item = String>,
    ) -> anyhow::Result<Tracing> {
        // `Telemetry` names its service with a `&'static str`: one small string per gateway
        // started, for the life of the process.
        let service: &'static str = Box::leak(config.service_name.clone().into_boxed_str());
        let wire = match config.protocol {
            TracingProtocol::Protobuf => Wire::Protobuf,
            TracingProtocol::Json => Wire::Json,
        };
        let telemetry = Arc::new(Telemetry::new(service, &config.collector, wire, 0, None).await?);
        Ok(Tracing {
            spans: SpanSource::new(&telemetry),
            telemetry,
            routes: prefixes.into_iter().map(Value::from).collect(),
        })
    }

    /// The service's telemetry: `flush` it to send the finished spans now.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// Starts the span of one proxied request, from its headers.
    pub(crate) fn span_for(&self, request: &Request) -> ServerSpan {
        let method = method_name(request.method());
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let (address, port) = match host.rsplit_once(':') {
            Some((address, port)) => (address, port.parse::<i64>().ok()),
            None => (host, None),
        };
        // Built only for a sampled span.
        let attributes = || {
            let mut attributes = Vec::with_capacity(6);
            attributes.push(KeyValue::new("http.request.method", method.clone()));
            attributes.push(KeyValue::new("url.path", request.uri().path().to_owned()));
            attributes.push(KeyValue::new("server.address", address.to_owned()));
            if let Some(port) = port {
                attributes.push(KeyValue::new("server.port", port));
            }
            attributes
        };
        self.spans
            .server_span(method.clone(), request.headers(), attributes)
    }
}

/// A method's name without an allocation for the standard ones.
fn method_name(method: &Method) -> Cow<'static, str> {
    let name: &'static str = match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => return Cow::Owned(method.as_str().to_owned()),
    };
    Cow::Borrowed(name)
}

/// What the proxy's handler is told about the request's span, when there is one.
#[derive(Clone, Copy)]
pub(crate) struct Hook<'a> {
    /// The gateway's tracer.
    pub(crate) tracing: &'a Tracing,
    /// The request's span.
    pub(crate) span: &'a ServerSpan,
}

impl Hook<'_> {
    /// The request matched route `index`: `http.route` and the span's final name.
    pub(crate) fn routed(self, index: usize, method: &Method) {
        if !self.span.is_recording() {
            return;
        }
        if let Some(route) = self.tracing.routes.get(index) {
            self.span
                .update_name(format!("{} {}", method.as_str(), route.as_str()));
            self.span
                .set_attribute(KeyValue::new("http.route", route.clone()));
        }
    }

    /// The headers going upstream: the gateway's span becomes their parent.
    pub(crate) fn inject(self, headers: &mut axum::http::HeaderMap) {
        self.span.inject(headers);
    }

    /// The upstream's breaker refused the call.
    pub(crate) fn breaker_rejected(self, upstream: &str, state: &dyn std::fmt::Display) {
        self.span.add_event(
            "breaker.rejected",
            vec![
                KeyValue::new("upstream", upstream.to_owned()),
                KeyValue::new("breaker.state", state.to_string()),
            ],
        );
    }
}

/// An attempt failed and the upstream's loop tries again: an event on the request's span.
pub(crate) fn retrying(upstream: &str, attempt: u32, reason: &dyn std::fmt::Display) {
    add_event_to_current("retry", || {
        vec![
            KeyValue::new("upstream", upstream.to_owned()),
            KeyValue::new("attempt", i64::from(attempt)),
            KeyValue::new("reason", reason.to_string()),
        ]
    });
}
