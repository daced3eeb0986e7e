//! Trace context in a message instead of an HTTP request: the headers a message carries
//! (`traceparent`, `tracestate`) as [`TraceHeaders`], which a bus copies into its own headers
//! (NATS) or carries as they are (an in-process channel), and an outbox row keeps until the
//! message is published.
//!
//! A producer writes the current span's context ([`TraceHeaders::current`]); a consumer's
//! span continues it ([`continue_from`]) by `trace-context-core`'s strict rules: a valid
//! `traceparent` makes the producer's span the remote parent, an invalid or duplicated one
//! starts a new trace and its `tracestate` is dropped.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use trace_context_core::Incoming;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::propagator::{StrictPropagator, incoming, remote_context};

/// The trace headers of one message, every value as it was received (two `traceparent`
/// values are kept as two, so the strict rules can refuse them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceHeaders {
    /// Every `traceparent` value.
    pub traceparent: Vec<String>,
    /// Every `tracestate` value.
    pub tracestate: Vec<String>,
}

impl TraceHeaders {
    /// The context to send on from `span`: empty when the span is not traced.
    pub fn of(span: &Span) -> TraceHeaders {
        let mut headers = TraceHeaders::default();
        StrictPropagator.inject_context(&span.context(), &mut headers);
        headers
    }

    /// The context of the current span (see [`of`](Self::of)).
    pub fn current() -> TraceHeaders {
        TraceHeaders::of(&Span::current())
    }

    /// Headers read back from storage (an outbox row's columns).
    pub fn stored(traceparent: Option<String>, tracestate: Option<String>) -> TraceHeaders {
        TraceHeaders {
            traceparent: traceparent.into_iter().collect(),
            tracestate: tracestate.into_iter().collect(),
        }
    }

    /// The first `traceparent`, for storage.
    pub fn traceparent(&self) -> Option<&str> {
        self.traceparent.first().map(String::as_str)
    }

    /// The first `tracestate`, for storage.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.first().map(String::as_str)
    }

    /// Whether the message carries no context at all (tracing was off where it was written).
    pub fn is_empty(&self) -> bool {
        self.traceparent.is_empty() && self.tracestate.is_empty()
    }

    /// The core's reading of these headers: the parent to continue, or why the trace restarts.
    pub fn incoming(&self) -> Incoming {
        incoming(self)
    }

    fn values(&self, key: &str) -> Option<&Vec<String>> {
        if key.eq_ignore_ascii_case("traceparent") {
            Some(&self.traceparent)
        } else if key.eq_ignore_ascii_case("tracestate") {
            Some(&self.tracestate)
        } else {
            None
        }
    }
}

impl Injector for TraceHeaders {
    fn set(&mut self, key: &str, value: String) {
        if key.eq_ignore_ascii_case("traceparent") {
            self.traceparent = vec![value];
        } else if key.eq_ignore_ascii_case("tracestate") {
            self.tracestate = vec![value];
        }
    }
}

impl Extractor for TraceHeaders {
    fn get(&self, key: &str) -> Option<&str> {
        self.values(key)?.first().map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        let mut keys = Vec::new();
        if !self.traceparent.is_empty() {
            keys.push("traceparent");
        }
        if !self.tracestate.is_empty() {
            keys.push("tracestate");
        }
        keys
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values = self.values(key)?;
        (!values.is_empty()).then(|| values.iter().map(String::as_str).collect())
    }
}

// ANCHOR: continue_from
/// Makes `span` (not entered yet) continue the trace whose context `headers` carry: the
/// producer's span becomes its remote parent when the `traceparent` is valid; otherwise
/// `span` starts a new trace. Returns the core's reading, so the caller can record why a
/// trace restarted.
pub fn continue_from(span: &Span, headers: &dyn Extractor) -> Incoming {
    let incoming = incoming(headers);
    let _ = span.set_parent(remote_context(&incoming));
    incoming
}
// ANCHOR_END: continue_from

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_is_the_parent_and_an_invalid_one_restarts() {
        let valid = TraceHeaders::stored(
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
            Some("lab=1".to_owned()),
        );
        let reading = valid.incoming();
        assert!(reading.parent.is_some(), "a valid header is continued");
        assert!(reading.restart.is_none());

        let uppercase = TraceHeaders::stored(
            Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01".to_owned()),
            Some("lab=1".to_owned()),
        );
        let reading = uppercase.incoming();
        assert!(reading.parent.is_none(), "uppercase hex restarts the trace");
        assert!(reading.restart.is_some(), "and says why");
        assert!(
            reading.state.to_string().is_empty(),
            "its tracestate is dropped"
        );
    }

    #[test]
    fn two_traceparent_values_restart_the_trace() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned();
        let twice = TraceHeaders {
            traceparent: vec![header.clone(), header],
            tracestate: Vec::new(),
        };
        assert!(twice.incoming().parent.is_none());
    }

    #[test]
    fn an_untraced_span_gives_no_headers() {
        assert!(TraceHeaders::of(&Span::none()).is_empty());
    }
}
