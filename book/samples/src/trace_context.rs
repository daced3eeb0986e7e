//! Distributed tracing by hand: the W3C `traceparent` header, spans, and the trace tree.
//!
//! The guide's sample passes `span.spanContext()` in a made-up `trace-context` header; the
//! standard that OpenTelemetry, Jaeger and Zipkin agree on is W3C Trace Context:
//! `traceparent: 00-<trace-id>-<parent-span-id>-<flags>`. Each service extracts the header from
//! the incoming request, starts a child span with a new span id in the same trace, and injects
//! its own span id into every outgoing request. A collector then joins the finished spans into one
//! tree. Ids come from a seeded generator and time is passed in, so traces are reproducible.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Serialize;

// ANCHOR: traceparent
/// The propagated part of a span: what travels in the `traceparent` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TraceParent {
    /// 16 bytes shared by every span of one request's journey.
    pub trace_id: u128,
    /// 8 bytes naming the span that made the call (the parent of the receiver's span).
    pub parent_id: u64,
    /// The `sampled` flag: whether the caller records this trace.
    pub sampled: bool,
}

/// Why a `traceparent` header was rejected (the receiver then starts a new trace).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceParentError {
    /// Not four dash-separated lowercase hex fields of lengths 2, 32, 16, 2.
    #[error("malformed traceparent")]
    Malformed,
    /// Version `ff` is forbidden; this parser knows version `00`.
    #[error("unsupported traceparent version {0}")]
    UnsupportedVersion(String),
    /// An all-zero trace id or span id is invalid by the specification.
    #[error("all-zero id in traceparent")]
    ZeroId,
}

impl TraceParent {
    /// The header value, e.g. `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`.
    pub fn to_header(&self) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.parent_id,
            u8::from(self.sampled)
        )
    }

    /// Parses a header value, strictly: a bad header must not poison the trace.
    pub fn parse(header: &str) -> Result<Self, TraceParentError> {
        let fields: Vec<&str> = header.trim().split('-').collect();
        let [version, trace_id, parent_id, flags] = fields[..] else {
            return Err(TraceParentError::Malformed);
        };
        let is_hex = |field: &str, len: usize| {
            field.len() == len
                && field
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        if !(is_hex(version, 2)
            && is_hex(trace_id, 32)
            && is_hex(parent_id, 16)
            && is_hex(flags, 2))
        {
            return Err(TraceParentError::Malformed);
        }
        if version != "00" {
            return Err(TraceParentError::UnsupportedVersion(version.to_owned()));
        }
        let trace_id =
            u128::from_str_radix(trace_id, 16).map_err(|_| TraceParentError::Malformed)?;
        let parent_id =
            u64::from_str_radix(parent_id, 16).map_err(|_| TraceParentError::Malformed)?;
        let flags = u8::from_str_radix(flags, 16).map_err(|_| TraceParentError::Malformed)?;
        if trace_id == 0 || parent_id == 0 {
            return Err(TraceParentError::ZeroId);
        }
        Ok(Self {
            trace_id,
            parent_id,
            sampled: flags & 1 == 1,
        })
    }
}
// ANCHOR_END: traceparent

// ANCHOR: spans
/// Whether the work a span measured succeeded (`SpanStatusCode.OK` / `ERROR`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SpanStatus {
    /// It worked.
    Ok,
    /// It failed, with the error message (`span.recordException(error)`).
    Error(String),
}

/// A finished span, as a collector like Jaeger stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpanRecord {
    /// What was measured (`getOrderDetails`, `GET /users/{id}`, a service name …).
    pub name: String,
    /// The trace it belongs to.
    pub trace_id: u128,
    /// This span's id.
    pub span_id: u64,
    /// The caller's span, `None` for the root.
    pub parent_id: Option<u64>,
    /// Start time, milliseconds.
    pub start_ms: u64,
    /// End time, milliseconds.
    pub end_ms: u64,
    /// Whether the measured work succeeded, with the error if it failed.
    pub status: SpanStatus,
    /// Key-value details (`order.id = 123`).
    pub attributes: Vec<(String, String)>,
}

/// A span that has started and not yet ended.
#[derive(Debug, Clone)]
pub struct ActiveSpan {
    record: SpanRecord,
    sampled: bool,
}

impl ActiveSpan {
    /// The context to propagate to calls made inside this span.
    pub fn context(&self) -> TraceParent {
        TraceParent {
            trace_id: self.record.trace_id,
            parent_id: self.record.span_id,
            sampled: self.sampled,
        }
    }

    /// `span.setAttribute(key, value)`.
    pub fn set_attribute(&mut self, key: &str, value: impl ToString) {
        self.record
            .attributes
            .push((key.to_owned(), value.to_string()));
    }
}

/// Starts and collects spans. One per process in a real service (exporting to a collector);
/// one shared by all the simulated services in the tests below.
#[derive(Debug, Clone)]
pub struct Tracer {
    rng_state: u64,
    finished: Vec<SpanRecord>,
}

impl Tracer {
    /// A tracer whose ids come from `seed`, so the same run yields the same ids.
    pub fn with_seed(seed: u64) -> Self {
        Self {
            rng_state: seed.max(1),
            finished: Vec::new(),
        }
    }

    // xorshift64: never zero once seeded with a non-zero state, as the spec requires of ids.
    fn next_id(&mut self) -> u64 {
        let mut x = self.rng_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng_state = x;
        x
    }

    /// Starts a span: a child of `parent` (same trace) or, without one, the root of a new trace.
    pub fn start_span(
        &mut self,
        name: &str,
        parent: Option<TraceParent>,
        now_ms: u64,
    ) -> ActiveSpan {
        let (trace_id, parent_id, sampled) = match parent {
            Some(parent) => (parent.trace_id, Some(parent.parent_id), parent.sampled),
            None => {
                let trace_id = (u128::from(self.next_id()) << 64) | u128::from(self.next_id());
                (trace_id, None, true)
            }
        };
        ActiveSpan {
            record: SpanRecord {
                name: name.to_owned(),
                trace_id,
                span_id: self.next_id(),
                parent_id,
                start_ms: now_ms,
                end_ms: now_ms,
                status: SpanStatus::Ok,
                attributes: Vec::new(),
            },
            sampled,
        }
    }

    /// `span.end()`: records the span if its trace is sampled.
    pub fn end_span(&mut self, span: ActiveSpan, now_ms: u64, status: SpanStatus) {
        if span.sampled {
            self.finished.push(SpanRecord {
                end_ms: now_ms,
                status,
                ..span.record
            });
        }
    }

    /// The spans finished so far.
    pub fn finished(&self) -> &[SpanRecord] {
        &self.finished
    }
}
// ANCHOR_END: spans

// ANCHOR: propagate
/// Outgoing side: put the current span's context on the request headers.
pub fn inject(span: &ActiveSpan, headers: &mut HashMap<String, String>) {
    headers.insert("traceparent".to_owned(), span.context().to_header());
}

/// Incoming side: read the caller's context, if it sent a valid one. An invalid header is
/// dropped, not an error: tracing must never fail a request.
pub fn extract(headers: &HashMap<String, String>) -> Option<TraceParent> {
    headers
        .get("traceparent")
        .and_then(|value| TraceParent::parse(value).ok())
}
// ANCHOR_END: propagate

// ANCHOR: trace-tree
/// Renders one trace as an indented tree with durations, the way a trace viewer lays it out.
pub fn render_tree(spans: &[SpanRecord]) -> String {
    fn render(spans: &[SpanRecord], parent: Option<u64>, prefix: &str, out: &mut String) {
        let mut children: Vec<&SpanRecord> =
            spans.iter().filter(|s| s.parent_id == parent).collect();
        children.sort_by_key(|s| (s.start_ms, s.name.clone()));
        for (i, span) in children.iter().enumerate() {
            let last = i + 1 == children.len();
            let (branch, indent) = match (parent, last) {
                (None, _) => ("", ""),
                (Some(_), false) => ("├─ ", "│  "),
                (Some(_), true) => ("└─ ", "   "),
            };
            let status = match &span.status {
                SpanStatus::Ok => String::new(),
                SpanStatus::Error(message) => format!(" ERROR: {message}"),
            };
            let _ = writeln!(
                out,
                "{prefix}{branch}{} {}ms{status}",
                span.name,
                span.end_ms - span.start_ms
            );
            render(spans, Some(span.span_id), &format!("{prefix}{indent}"), out);
        }
    }
    let mut out = String::new();
    render(spans, None, "", &mut out);
    out
}
// ANCHOR_END: trace-tree

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_rejects_bad_headers() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = TraceParent::parse(header).expect("spec example");
        assert_eq!(parsed.parent_id, 0x00f0_67aa_0ba9_02b7);
        assert!(parsed.sampled);
        assert_eq!(parsed.to_header(), header);

        assert_eq!(
            TraceParent::parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            Err(TraceParentError::Malformed),
            "uppercase hex is not allowed"
        );
        assert_eq!(
            TraceParent::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            Err(TraceParentError::ZeroId)
        );
        assert_eq!(
            TraceParent::parse("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Err(TraceParentError::UnsupportedVersion("ff".into()))
        );
        assert_eq!(
            TraceParent::parse("trace-id: ABC123"),
            Err(TraceParentError::Malformed)
        );
    }

    /// The guide's request: gateway → order service → user and product services in parallel.
    #[test]
    fn one_trace_id_flows_through_every_service_and_forms_a_tree() {
        let mut tracer = Tracer::with_seed(42);

        let mut gateway = tracer.start_span("gateway", None, 0);
        let mut to_order = HashMap::new();
        inject(&gateway, &mut to_order);

        let mut order = tracer.start_span("order-service", extract(&to_order), 2);
        order.set_attribute("order.id", 123);
        let mut to_user = HashMap::new();
        let mut to_product = HashMap::new();
        inject(&order, &mut to_user);
        inject(&order, &mut to_product);

        let user = tracer.start_span("user-service", extract(&to_user), 5);
        let product = tracer.start_span("product-service", extract(&to_product), 6);
        tracer.end_span(user, 25, SpanStatus::Ok);
        tracer.end_span(product, 56, SpanStatus::Ok);
        tracer.end_span(order, 72, SpanStatus::Ok);
        gateway.set_attribute("http.route", "/order-details/{id}");
        tracer.end_span(gateway, 75, SpanStatus::Ok);

        let spans = tracer.finished();
        assert_eq!(spans.len(), 4);
        assert!(spans.iter().all(|s| s.trace_id == spans[0].trace_id));
        assert_eq!(
            render_tree(spans),
            "gateway 75ms\n\
             └─ order-service 70ms\n\
             \x20  ├─ user-service 20ms\n\
             \x20  └─ product-service 50ms\n"
        );
    }

    #[test]
    fn invalid_incoming_header_starts_a_new_trace_and_unsampled_traces_are_not_recorded() {
        let mut tracer = Tracer::with_seed(7);
        let headers = HashMap::from([("traceparent".to_owned(), "garbage".to_owned())]);
        let span = tracer.start_span("user-service", extract(&headers), 0);
        assert_eq!(span.record.parent_id, None);
        tracer.end_span(span, 1, SpanStatus::Error("boom".into()));
        assert_eq!(
            render_tree(tracer.finished()),
            "user-service 1ms ERROR: boom\n"
        );

        let unsampled = TraceParent {
            trace_id: 1,
            parent_id: 2,
            sampled: false,
        };
        let span = tracer.start_span("quiet", Some(unsampled), 0);
        tracer.end_span(span, 1, SpanStatus::Ok);
        assert_eq!(tracer.finished().len(), 1);
    }
}
