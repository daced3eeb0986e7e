//! Tracing for every lab service, the way a production Rust service does it: `tracing` spans,
//! turned into OpenTelemetry spans by `tracing-opentelemetry`, exported over OTLP/HTTP, and
//! W3C trace context on every hop by `trace-context-core`'s strict rules.
//!
//! - [`propagator`] — the strict W3C propagator and the `http::HeaderMap` adapters;
//! - [`proxy`] — the same for a hand-written server (a proxy): a server span from a request's
//!   headers, its context injected into the request sent on, and a valid context passed
//!   through (an invalid one removed) when tracing is off;
//! - [`telemetry`] — a service's tracer, exporter and request middleware
//!   (`telemetry.instrument(router)`), and [`telemetry::traced_get`] for outgoing calls;
//! - [`client`] — any outgoing request in a client span ([`client::traced_execute`]), and
//!   work run under a service's subscriber;
//! - [`messages`] — trace context in a message's headers and an outbox row;
//! - [`env`] — tracing switched on by `OTEL_EXPORTER_OTLP_ENDPOINT`, and [`env::instrument`],
//!   a router traced when it is set: one line per service.

pub mod client;
pub mod env;
pub mod messages;
pub mod propagator;
pub mod proxy;
pub mod telemetry;

pub use propagator::{HeaderExtractor, HeaderInjector, StrictPropagator};
pub use telemetry::{Telemetry, Wire, traced_get};
