//! A finished span as the collector receives it: ids, service, name, times, outcome.

use serde::{Deserialize, Serialize};

use crate::ids::{SpanId, TraceId};

// ANCHOR: span
/// One finished span, as any exporter reports it (times in nanoseconds of the sending
/// service's own clock, which may be skewed against the others').
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanRecord {
    /// The trace it belongs to.
    pub trace_id: TraceId,
    /// Its own id.
    pub span_id: SpanId,
    /// The span that caused it; `None` for a trace's root.
    pub parent: Option<SpanId>,
    /// The service that recorded it (OpenTelemetry's `service.name`).
    pub service: String,
    /// What it did, such as `GET /orders/{id}`.
    pub name: String,
    /// When it started, in nanoseconds since the Unix epoch by its service's clock.
    pub start_ns: u64,
    /// When it ended, by the same clock.
    pub end_ns: u64,
    /// Whether it ended in error.
    pub error: bool,
}
// ANCHOR_END: span

impl SpanRecord {
    /// How long it took (zero if its end is before its start).
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}
