//! Tracing for a server that is not an axum router, a proxy's hand-written handler say: a server
//! span started from a request's `http::HeaderMap` by the strict propagator's rules, its context
//! put on the request sent on, and, for a proxy that does not trace, [`pass_through`].
//!
//! The spans are the OpenTelemetry SDK's own, made without `tracing` in between: a proxy makes
//! one per request on its hot path, and the SDK alone costs a fraction of `tracing` +
//! `tracing-opentelemetry` (the tracing lab's benchmark). They go through the same provider and
//! exporter as the service's `tracing` spans.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, TraceId, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;
use trace_context_core::Restart;

use crate::propagator::{
    HeaderExtractor, HeaderInjector, StrictPropagator, incoming, remote_context,
};
use crate::telemetry::Telemetry;

static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Starts one service's server spans by hand.
#[derive(Clone, Debug)]
pub struct SpanSource {
    tracer: SdkTracer,
}

/// A request's server span, started by [`SpanSource::server_span`], ended by
/// [`ServerSpan::end`] (or when dropped).
#[derive(Debug)]
pub struct ServerSpan {
    context: Context,
}

impl SpanSource {
    /// Spans of `telemetry`'s service, through its provider and exporter.
    pub fn new(telemetry: &Telemetry) -> SpanSource {
        SpanSource {
            tracer: telemetry.tracer(),
        }
    }

    // ANCHOR: server_span_from_headers
    /// Starts the server span of a request known by its headers: a child of the caller's span
    /// when its one `traceparent` is valid (its `tracestate` kept), the root of a new trace
    /// otherwise, with `trace.restarted` saying why. `attributes` are built only when the
    /// sampler kept the span: an unsampled request allocates none of them.
    pub fn server_span(
        &self,
        name: impl Into<Cow<'static, str>>,
        headers: &HeaderMap,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> ServerSpan {
        let incoming = incoming(&HeaderExtractor(headers));
        let mut span = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .start_with_context(&self.tracer, &remote_context(&incoming));
        if span.is_recording() {
            let mut attributes = attributes();
            if let Some(restart) = incoming.restart {
                attributes.push(KeyValue::new("trace.restarted", restart_reason(restart)));
            }
            span.set_attributes(attributes);
        }
        ServerSpan {
            context: Context::new().with_span(span),
        }
    }
    // ANCHOR_END: server_span_from_headers
}

/// Why a trace restarted, as the attribute's value (no allocation for the common cases).
fn restart_reason(restart: Restart) -> opentelemetry::Value {
    match restart {
        Restart::Missing => "Missing".into(),
        Restart::Duplicated => "Duplicated".into(),
        Restart::Invalid(error) => format!("Invalid({error:?})").into(),
    }
}

impl ServerSpan {
    /// The OpenTelemetry context holding the span, to attach while the request is handled
    /// (`opentelemetry::context::FutureExt::with_context`) so code below can add events.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Whether the span is sampled, so its attributes and events are kept: what is worth
    /// building only for a recorded span can wait on this.
    pub fn is_recording(&self) -> bool {
        self.context.span().is_recording()
    }

    /// The trace the span belongs to (its `Display` is the 32 lowercase hex digits).
    pub fn trace_id(&self) -> TraceId {
        self.context.span().span_context().trace_id()
    }

    /// Sets an attribute learnt after the start (a proxy's matched route, say).
    pub fn set_attribute(&self, attribute: KeyValue) {
        self.context.span().set_attribute(attribute);
    }

    /// Renames the span (`{method} {route}` once the route is known).
    pub fn update_name(&self, name: impl Into<Cow<'static, str>>) {
        self.context.span().update_name(name);
    }

    /// Records an event on the span, now.
    pub fn add_event(&self, name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>) {
        self.context.span().add_event(name, attributes);
    }

    // ANCHOR: inject_into_headers
    /// Replaces a request's trace headers with this span's context: whatever `traceparent`
    /// and `tracestate` came in, the next hop sees this span as its parent.
    pub fn inject(&self, headers: &mut HeaderMap) {
        headers.remove(&TRACEPARENT);
        headers.remove(&TRACESTATE);
        StrictPropagator.inject_context(&self.context, &mut HeaderInjector(headers));
    }
    // ANCHOR_END: inject_into_headers

    /// Ends the span with the response's status: `http.response.status_code`, and the error
    /// status on a 5xx, as OpenTelemetry's HTTP conventions say for a server.
    pub fn end(self, status: u16) {
        let span = self.context.span();
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        if status >= 500 {
            span.set_status(Status::error(""));
        }
        span.end();
    }
}

/// An event on the span of the context attached to the running code, if it records: how code
/// deep below a request's handler (a retry loop, say) adds to the request's span without being
/// handed it. Nothing happens, and nothing is built, when no recording span is attached.
pub fn add_event_to_current(name: &'static str, attributes: impl FnOnce() -> Vec<KeyValue>) {
    Context::map_current(|cx| {
        let span = cx.span();
        if span.is_recording() {
            span.add_event(name, attributes());
        }
    });
}

// ANCHOR: pass_through
/// For a proxy that does not trace: a valid `traceparent` goes on untouched, its `tracestate`
/// with it (as Envoy and nginx pass them on with their tracing off), and its trace id is
/// returned; an invalid, duplicated or missing one is removed together with any `tracestate`,
/// so the next service starts a new trace instead of continuing a broken one.
pub fn pass_through(headers: &mut HeaderMap) -> Option<TraceId> {
    if !headers.contains_key(&TRACEPARENT) && !headers.contains_key(&TRACESTATE) {
        return None;
    }
    let trace_id = incoming_trace_id(headers);
    if trace_id.is_none() {
        headers.remove(&TRACEPARENT);
        headers.remove(&TRACESTATE);
    }
    trace_id
}
// ANCHOR_END: pass_through

/// The trace id of the request's `traceparent` when it is one valid header, leaving the
/// headers as they are.
pub fn incoming_trace_id(headers: &HeaderMap) -> Option<TraceId> {
    if !headers.contains_key(&TRACEPARENT) {
        return None;
    }
    incoming(&HeaderExtractor(headers))
        .parent
        .map(|parent| TraceId::from_bytes(parent.trace_id.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("a header value"));
        }
        map
    }

    #[test]
    fn pass_through_keeps_a_valid_context_as_it_came() {
        let mut map = headers(&[("traceparent", VALID), ("tracestate", "rojo=1")]);
        let id = pass_through(&mut map).expect("valid");
        assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(map["traceparent"], VALID);
        assert_eq!(map["tracestate"], "rojo=1");
    }

    #[test]
    fn pass_through_removes_an_invalid_context_and_its_tracestate() {
        for bad in [
            vec![("traceparent", "00-xyz"), ("tracestate", "rojo=1")],
            vec![("traceparent", VALID), ("traceparent", VALID)],
            vec![("tracestate", "rojo=1")],
        ] {
            let mut map = headers(&bad);
            assert_eq!(pass_through(&mut map), None, "{bad:?}");
            assert!(!map.contains_key("traceparent"), "{bad:?}");
            assert!(!map.contains_key("tracestate"), "{bad:?}");
        }
        let mut untouched = headers(&[("accept", "*/*")]);
        assert_eq!(pass_through(&mut untouched), None);
        assert_eq!(untouched.len(), 1);
    }
}
