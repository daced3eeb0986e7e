//! The lab's propagator: W3C Trace Context by `trace-context-core`'s strict rules, as an
//! OpenTelemetry `TextMapPropagator`, plus the header adapters for `http::HeaderMap`.
//!
//! An invalid `traceparent` gives an empty context (the service starts a new trace) and its
//! `tracestate` is dropped; a valid one gives the caller's span as the remote parent, flags
//! (sampled and random) kept.

use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{
    SpanContext, TraceContextExt, TraceFlags as OtelFlags, TraceState as OtelState,
};
use opentelemetry::{Context, SpanId, TraceId};
use trace_context_core::{Incoming, extract, format_traceparent};

const FIELDS: [&str; 2] = ["traceparent", "tracestate"];

/// W3C Trace Context with the Recommendation's strict rules.
#[derive(Clone, Copy, Debug, Default)]
pub struct StrictPropagator;

/// Reads every value of a header (the OpenTelemetry extractor's `get_all`, or `get`).
fn all<'a>(extractor: &'a dyn Extractor, name: &str) -> Vec<&'a str> {
    extractor
        .get_all(name)
        .unwrap_or_else(|| extractor.get(name).into_iter().collect())
}

/// The core's reading of an extractor's trace headers.
pub fn incoming(extractor: &dyn Extractor) -> Incoming {
    extract(all(extractor, FIELDS[0]), all(extractor, FIELDS[1]))
}

// ANCHOR: remote_context
/// An OpenTelemetry context holding the caller's span, or an empty one for a new trace.
pub fn remote_context(incoming: &Incoming) -> Context {
    let Some(parent) = incoming.parent else {
        return Context::new();
    };
    let state = incoming.state.to_string();
    let state = state.parse::<OtelState>().unwrap_or_default();
    let flags = parent.flags.0 & trace_context_core::TraceFlags::KNOWN.0;
    Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from_bytes(parent.trace_id.0),
        SpanId::from_bytes(parent.parent_id.0),
        OtelFlags::new(flags),
        true,
        state,
    ))
}
// ANCHOR_END: remote_context

impl TextMapPropagator for StrictPropagator {
    // ANCHOR: propagate
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let context = span.span_context();
        if !context.is_valid() {
            return;
        }
        injector.set(
            FIELDS[0],
            format_traceparent(
                trace_context_core::TraceId(context.trace_id().to_bytes()),
                trace_context_core::SpanId(context.span_id().to_bytes()),
                trace_context_core::TraceFlags(context.trace_flags().to_u8()),
            ),
        );
        let state = context.trace_state().header();
        if !state.is_empty() {
            injector.set(FIELDS[1], state);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let incoming = incoming(extractor);
        match incoming.parent {
            Some(_) => {
                let remote = remote_context(&incoming);
                cx.with_remote_span_context(remote.span().span_context().clone())
            }
            None => cx.clone(),
        }
    }
    // ANCHOR_END: propagate

    fn fields(&self) -> FieldIter<'_> {
        static NAMES: OnceLock<[String; 2]> = OnceLock::new();
        FieldIter::new(NAMES.get_or_init(|| FIELDS.map(str::to_owned)))
    }
}

/// Reads an `http::HeaderMap` for a propagator.
pub struct HeaderExtractor<'a>(pub &'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self
            .0
            .get_all(key)
            .iter()
            .map(|v| v.to_str().unwrap_or("\u{0}"))
            .collect();
        (!values.is_empty()).then_some(values)
    }
}

/// Writes into an `http::HeaderMap` for a propagator.
pub struct HeaderInjector<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}
