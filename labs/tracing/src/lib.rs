//! The Tracing lab's services: W3C trace context on every hop, OpenTelemetry's SDK in every
//! service, and an OTLP/HTTP collector of the lab's own around `trace-context-core`.
//!
//! - [`propagator`], [`telemetry`] — re-exported from `lab-telemetry`, the instrumentation every
//!   lab's services share;
//! - [`otlp`] — OTLP/HTTP requests (protobuf and JSON) to the core's spans;
//! - [`store`] — the collector's SQLite span store and its queries;
//! - [`collector`] — the collector service: `POST /v1/traces`, the query API, the waterfall page;
//! - [`flow`] — the guide's services: gateway → order → user ∥ product;
//! - [`waterfall`] — a decided trace drawn as text and as HTML;
//! - [`demo`] — the narrated demo.

pub mod collector;
pub mod demo;
pub mod flow;
pub mod otlp;
pub mod store;
pub mod waterfall;

pub use lab_telemetry::{propagator, telemetry};
