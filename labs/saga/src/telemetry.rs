//! The saga lab's tracing: one `lab-telemetry` [`Telemetry`] per service (order, payment,
//! inventory, shipping), each exporting OTLP/HTTP to the collector given by `--otlp` or the
//! standard `OTEL_EXPORTER_OTLP_ENDPOINT`. Without an endpoint there is none, and nothing
//! is traced: no spans, no headers, no collector needed.
//!
//! What a saga looks like then: in orchestration, a root span per run (`saga
//! order_fulfilment`, its id as `saga.id`), a child per step and per compensation, the
//! call to the participant inside it and the participant's server span under that; in
//! choreography, the order's creation, then for every event a `publish` span by the
//! service that wrote it and a `process` span by each service that reacts, the context
//! carried in the message (and kept in the outbox row until the relay publishes it).

use std::sync::Arc;

use lab_telemetry::{Telemetry, Wire};

/// Every service of the lab, by the name its spans carry (`service.name`).
pub const SERVICES: [&str; 4] = ["order", "payment", "inventory", "shipping"];

/// The services' tracers, shared by whatever runs them in this process.
#[derive(Clone, Debug, Default)]
pub struct SagaTelemetry {
    services: Vec<Arc<Telemetry>>,
}

impl SagaTelemetry {
    /// Tracers for `services` (names from [`SERVICES`]), exporting to the collector whose
    /// base URL is `endpoint` (`http://127.0.0.1:4318`; spans go to `/v1/traces`).
    pub async fn start(endpoint: &str, services: &[&'static str]) -> anyhow::Result<SagaTelemetry> {
        let endpoint = endpoint.trim_end_matches('/');
        let mut started = Vec::new();
        for service in services {
            started.push(Arc::new(
                Telemetry::new(service, endpoint, Wire::Protobuf, 0, None).await?,
            ));
        }
        Ok(SagaTelemetry { services: started })
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

/// `router` with a server span per request when its service is traced, unchanged otherwise.
pub use lab_telemetry::env::instrument;
