//! Tracing switched on by the environment, the way OpenTelemetry's SDKs read it: a service
//! traces when `OTEL_EXPORTER_OTLP_ENDPOINT` names a collector (its base URL; spans go to
//! `/v1/traces`), over the wire `OTEL_EXPORTER_OTLP_PROTOCOL` names (`http/protobuf`, the
//! default, or `http/json`), and traces nothing otherwise: no spans, no headers, no collector
//! needed. With [`instrument`], a lab service's tracing is one line.

use std::sync::Arc;

use anyhow::bail;

use crate::telemetry::{Telemetry, Wire};

/// The collector's base URL, as every OpenTelemetry SDK reads it.
pub const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The OTLP transport, as every OpenTelemetry SDK reads it.
pub const PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";

/// The wire `OTEL_EXPORTER_OTLP_PROTOCOL`'s value names (unset or empty: protobuf).
pub fn wire(protocol: Option<&str>) -> anyhow::Result<Wire> {
    match protocol.map(str::trim) {
        None | Some("" | "http/protobuf") => Ok(Wire::Protobuf),
        Some("http/json") => Ok(Wire::Json),
        Some("grpc") => bail!(
            "{PROTOCOL}=grpc: the lab's services export over OTLP/HTTP only (http/protobuf or http/json)"
        ),
        Some(other) => bail!("{PROTOCOL}={other:?}: expected http/protobuf or http/json"),
    }
}

/// `service`'s tracer when `endpoint` (the value of `OTEL_EXPORTER_OTLP_ENDPOINT`) names a
/// collector, `None` when it is unset or empty.
pub async fn telemetry_for(
    service: &'static str,
    endpoint: Option<&str>,
    protocol: Option<&str>,
) -> anyhow::Result<Option<Arc<Telemetry>>> {
    let Some(endpoint) = endpoint.map(str::trim).filter(|e| !e.is_empty()) else {
        return Ok(None);
    };
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        bail!("{ENDPOINT}={endpoint:?}: expected a base URL such as http://127.0.0.1:4318");
    }
    let wire = wire(protocol)?;
    let telemetry = Telemetry::new(service, endpoint.trim_end_matches('/'), wire, 0, None).await?;
    Ok(Some(Arc::new(telemetry)))
}

/// `service`'s tracer, from this process's environment.
pub async fn from_env(service: &'static str) -> anyhow::Result<Option<Arc<Telemetry>>> {
    let endpoint = std::env::var(ENDPOINT).ok();
    let protocol = std::env::var(PROTOCOL).ok();
    telemetry_for(service, endpoint.as_deref(), protocol.as_deref()).await
}

/// Several services' tracers in one process (a lab that runs its services together), found by
/// service name.
#[derive(Clone, Debug, Default)]
pub struct Tracers {
    services: Vec<Arc<Telemetry>>,
}

impl Tracers {
    /// Tracers for `services`, exporting to the collector whose base URL is `endpoint`
    /// (`http://127.0.0.1:4318`; spans go to `/v1/traces`).
    pub async fn start(endpoint: &str, services: &[&'static str]) -> anyhow::Result<Tracers> {
        let endpoint = endpoint.trim_end_matches('/');
        let mut started = Vec::new();
        for service in services {
            started.push(Arc::new(
                Telemetry::new(service, endpoint, Wire::Protobuf, 0, None).await?,
            ));
        }
        Ok(Tracers { services: started })
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

// ANCHOR: instrument_if
/// `router` with a server span per request when `telemetry` is given, unchanged otherwise.
pub fn instrument(telemetry: Option<&Arc<Telemetry>>, router: axum::Router) -> axum::Router {
    match telemetry {
        Some(telemetry) => telemetry.instrument(router),
        None => router,
    }
}
// ANCHOR_END: instrument_if

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_variable_names_the_wire_and_grpc_is_refused_plainly() {
        assert_eq!(wire(None).ok(), Some(Wire::Protobuf));
        assert_eq!(wire(Some("")).ok(), Some(Wire::Protobuf));
        assert_eq!(wire(Some("http/protobuf")).ok(), Some(Wire::Protobuf));
        assert_eq!(wire(Some(" http/json ")).ok(), Some(Wire::Json));
        let grpc = wire(Some("grpc"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(grpc.contains("OTLP/HTTP only"), "{grpc}");
        assert!(wire(Some("http/xml")).is_err());
    }

    #[tokio::test]
    async fn no_endpoint_means_no_tracer_and_a_bad_one_is_an_error() {
        assert!(matches!(telemetry_for("svc", None, None).await, Ok(None)));
        assert!(matches!(
            telemetry_for("svc", Some("  "), None).await,
            Ok(None)
        ));
        let bad = telemetry_for("svc", Some("localhost:4318"), None).await;
        assert!(
            bad.err()
                .is_some_and(|e| e.to_string().contains("base URL"))
        );
        let on = telemetry_for("svc", Some("http://127.0.0.1:9/"), None).await;
        assert!(matches!(on, Ok(Some(t)) if t.service == "svc"));
    }
}
