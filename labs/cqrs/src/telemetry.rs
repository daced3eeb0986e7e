//! The CQRS lab's tracing: one `lab-telemetry` [`Telemetry`] per service (the write API and
//! the read API), each exporting OTLP/HTTP to the collector given by `--otlp` or the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT`. Without an endpoint there is none, and nothing is traced:
//! no spans, no headers, no collector needed.
//!
//! Each request gets a server span, continuing the caller's trace when its `traceparent` is
//! valid; a client that sends its write and the read after it in one trace sees both there.

use std::sync::Arc;

use axum::Router;
use lab_telemetry::{Telemetry, Wire};

/// The write API's service name (`service.name` on its spans).
pub const WRITE: &str = "cqrs-write";
/// The read API's service name.
pub const READ: &str = "cqrs-read";
/// Every service of the lab that traces.
pub const SERVICES: [&str; 2] = [WRITE, READ];

/// The services' tracers, shared by whatever runs them in this process.
#[derive(Clone, Debug, Default)]
pub struct CqrsTelemetry {
    services: Vec<Arc<Telemetry>>,
}

impl CqrsTelemetry {
    /// Tracers for `services` (names from [`SERVICES`]), exporting to the collector whose
    /// base URL is `endpoint` (`http://127.0.0.1:4318`; spans go to `/v1/traces`).
    pub async fn start(endpoint: &str, services: &[&'static str]) -> anyhow::Result<CqrsTelemetry> {
        let endpoint = endpoint.trim_end_matches('/');
        let mut started = Vec::new();
        for service in services {
            started.push(Arc::new(
                Telemetry::new(service, endpoint, Wire::Protobuf, 0, None).await?,
            ));
        }
        Ok(CqrsTelemetry { services: started })
    }

    /// The tracer of `service`, if this process traces it.
    pub fn of(&self, service: &str) -> Option<Arc<Telemetry>> {
        self.services
            .iter()
            .find(|telemetry| telemetry.service == service)
            .cloned()
    }

    /// Sends every finished span now, and waits until the collector has them.
    pub async fn flush(&self) -> anyhow::Result<()> {
        for telemetry in &self.services {
            telemetry.flush().await?;
        }
        Ok(())
    }

    /// Flushes and stops every exporter.
    pub async fn shutdown(&self) -> anyhow::Result<()> {
        for telemetry in &self.services {
            telemetry.shutdown().await?;
        }
        Ok(())
    }
}

// ANCHOR: instrument
/// `router` with a server span per request when `service` is traced, unchanged otherwise.
pub fn instrument(telemetry: Option<&CqrsTelemetry>, service: &str, router: Router) -> Router {
    match telemetry.and_then(|telemetry| telemetry.of(service)) {
        Some(traced) => traced.instrument(router),
        None => router,
    }
}
// ANCHOR_END: instrument
