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

/// Every service of the lab, by the name its spans carry (`service.name`).
pub const SERVICES: [&str; 4] = ["order", "payment", "inventory", "shipping"];

/// The services' tracers, shared by whatever runs them in this process.
pub type SagaTelemetry = lab_telemetry::env::Tracers;

/// `router` with a server span per request when its service is traced, unchanged otherwise.
pub use lab_telemetry::env::instrument;
