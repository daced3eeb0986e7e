//! The CQRS lab's tracing: one `lab-telemetry` [`Telemetry`] per service (the write API and
//! the read API), each exporting OTLP/HTTP to the collector given by `--otlp` or the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT`. Without an endpoint there is none, and nothing is traced:
//! no spans, no headers, no collector needed.
//!
//! Each request gets a server span, continuing the caller's trace when its `traceparent` is
//! valid; a client that sends its write and the read after it in one trace sees both there.
//! The command's context goes on to the projections: the write API records it per event
//! (stream and version) in a [`TraceLog`] before it appends, the publisher carries it in the message, and each projection applies
//! the event in a span under it ([`project_span`]).

use std::path::Path;

use axum::Router;
use lab_telemetry::Telemetry;
use lab_telemetry::messages::{self, TraceHeaders};
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, params};
use tracing::Span;

/// The write API's service name (`service.name` on its spans).
pub const WRITE: &str = "cqrs-write";
/// The read API's service name.
pub const READ: &str = "cqrs-read";
/// Every service of the lab that traces.
pub const SERVICES: [&str; 3] = [WRITE, READ, PROJECT];

/// The services' tracers, shared by whatever runs them in this process.
pub type CqrsTelemetry = lab_telemetry::env::Tracers;

// ANCHOR: instrument
/// `router` with a server span per request when `service` is traced, unchanged otherwise.
pub fn instrument(telemetry: Option<&CqrsTelemetry>, service: &str, router: Router) -> Router {
    let traced = telemetry.and_then(|telemetry| telemetry.of(service));
    lab_telemetry::env::instrument(traced.as_ref(), router)
}
// ANCHOR_END: instrument

/// The projections' service name: a span per event applied, under the command's span.
pub const PROJECT: &str = "cqrs-projection";

/// The trace context of the commands that wrote each event, by stream and version, in a table
/// beside the events (`trace_context` in the store's file): the event store keeps no context
/// with an event, so the write API records it here before it appends (the publisher may see
/// the event the moment it is committed) and the publisher puts it in the message.
pub struct TraceLog {
    connection: Mutex<Connection>,
}

impl std::fmt::Debug for TraceLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TraceLog")
    }
}

impl TraceLog {
    /// Opens (or creates) the table in the SQLite file at `path`.
    pub fn open(path: &Path) -> anyhow::Result<TraceLog> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(std::time::Duration::from_secs(10))?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS trace_context (stream TEXT NOT NULL, version INTEGER NOT NULL, \
             traceparent TEXT NOT NULL, tracestate TEXT, PRIMARY KEY (stream, version))",
        )?;
        Ok(TraceLog {
            connection: Mutex::new(connection),
        })
    }

    /// Records `trace` as the context of versions `first..=last` of `stream`; nothing when it
    /// is empty.
    pub fn record(
        &self,
        stream: &str,
        first: u64,
        last: u64,
        trace: &TraceHeaders,
    ) -> anyhow::Result<()> {
        let Some(traceparent) = trace.traceparent() else {
            return Ok(());
        };
        let mut connection = self.connection.lock();
        let tx = connection.transaction()?;
        for version in first..=last {
            tx.execute(
                "INSERT OR REPLACE INTO trace_context VALUES (?1, ?2, ?3, ?4)",
                params![stream, version, traceparent, trace.tracestate()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets versions `first..=last` of `stream`: the append they were recorded for failed.
    pub fn forget(&self, stream: &str, first: u64, last: u64) -> anyhow::Result<()> {
        self.connection.lock().execute(
            "DELETE FROM trace_context WHERE stream = ?1 AND version BETWEEN ?2 AND ?3",
            params![stream, first, last],
        )?;
        Ok(())
    }

    /// The context recorded for version `version` of `stream`; empty when none was.
    pub fn get(&self, stream: &str, version: u64) -> anyhow::Result<TraceHeaders> {
        let connection = self.connection.lock();
        let row = connection
            .prepare_cached(
                "SELECT traceparent, tracestate FROM trace_context WHERE stream = ?1 AND version = ?2",
            )?
            .query_row(params![stream, version], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        Ok(row.map_or_else(TraceHeaders::default, |(parent, state)| {
            TraceHeaders::stored(Some(parent), state)
        }))
    }
}

/// The span an event is applied in by the projection `name` (a consumer span), continuing
/// the command's context the message carries; `Span::none()` when it carries none.
pub fn project_span(
    telemetry: &Telemetry,
    name: &str,
    position: u64,
    trace: &TraceHeaders,
) -> Span {
    if trace.is_empty() {
        return Span::none();
    }
    let span = telemetry.in_scope(|| {
        tracing::info_span!(
            parent: None,
            "project",
            otel.name = format!("project {name}"),
            otel.kind = "consumer",
            messaging.operation.type = "process",
            cqrs.position = position,
        )
    });
    messages::continue_from(&span, trace);
    span
}
