//! Each service's instrumentation, the way a production Rust service does it: `tracing` spans,
//! turned into OpenTelemetry spans by `tracing-opentelemetry`, batched by `opentelemetry_sdk`
//! and exported over OTLP/HTTP (protobuf or JSON) to the collector.
//!
//! Several services share the demo's process, so each has its own subscriber ([`Telemetry`]
//! holds it as a `Dispatch`) and its own `service.name`; [`Telemetry::instrument`] runs every request under
//! its service's subscriber, continues or restarts the trace by the strict propagator, and
//! records the semantic-convention attributes. [`traced_get`] makes an outgoing call in a
//! client span with the headers injected. Adding tracing to a router is one line:
//! `telemetry.instrument(router)`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{IdGenerator, SdkTracerProvider, SpanData, SpanExporter};
use trace_context_core::IdSource;
use tracing::field::Empty;
use tracing::instrument::WithSubscriber;
use tracing::{Dispatch, Instrument};
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};
use tracing_subscriber::layer::SubscriberExt;

use crate::propagator::{HeaderExtractor, incoming, remote_context};

/// How a service sends its spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// `application/x-protobuf`, OTLP's default over HTTP.
    Protobuf,
    /// `application/json`, OTLP's JSON mapping.
    Json,
}

/// One service's tracer and subscriber.
#[derive(Clone, Debug)]
pub struct Telemetry {
    /// The service's name (`service.name`).
    pub service: &'static str,
    dispatch: Dispatch,
    provider: SdkTracerProvider,
}

/// Moves every exported span by a fixed offset: a service whose clock is off.
#[derive(Debug)]
struct SkewedClock<E> {
    inner: E,
    skew_ms: i64,
}

fn shift(time: SystemTime, ms: i64) -> SystemTime {
    let by = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 { time + by } else { time - by }
}

impl<E: SpanExporter> SpanExporter for SkewedClock<E> {
    async fn export(&self, mut batch: Vec<SpanData>) -> OTelSdkResult {
        for span in &mut batch {
            span.start_time = shift(span.start_time, self.skew_ms);
            span.end_time = shift(span.end_time, self.skew_ms);
        }
        self.inner.export(batch).await
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Trace and span ids from a seed (the core's [`IdSource`]): a demo that replays.
#[derive(Debug)]
struct SeededIds(std::sync::Mutex<IdSource>);

impl IdGenerator for SeededIds {
    fn new_trace_id(&self) -> opentelemetry::TraceId {
        let mut ids = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        opentelemetry::TraceId::from_bytes(ids.trace_id().0)
    }

    fn new_span_id(&self) -> opentelemetry::SpanId {
        let mut ids = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        opentelemetry::SpanId::from_bytes(ids.span_id().0)
    }
}

// ANCHOR: layer
/// The `tracing` layer that turns a service's spans into OpenTelemetry spans, configured as a
/// production service runs it: no busy/idle times, thread, source location or target on
/// every span (the server and client spans all come from the same two functions, on whichever
/// worker thread polls them), only the fields the spans declare; and no OpenTelemetry
/// `Context` attached on every poll, since nothing here reads `Context::current()` (the
/// propagator takes a span's context from the `tracing` registry).
pub fn layer<S>(
    tracer: opentelemetry_sdk::trace::Tracer,
) -> OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_location(false)
        .with_target(false)
        .with_context_activation(false)
}
// ANCHOR_END: layer

impl Telemetry {
    /// A service exporting to the collector at `collector` (its base URL), its clock off by
    /// `skew_ms`, its ids from `seed` when given (random otherwise). Builds the exporter on a blocking thread: its HTTP client is the blocking
    /// one, which must not be made inside the async runtime.
    pub async fn new(
        service: &'static str,
        collector: &str,
        wire: Wire,
        skew_ms: i64,
        seed: Option<u64>,
    ) -> anyhow::Result<Telemetry> {
        let endpoint = format!("{collector}/v1/traces");
        tokio::task::spawn_blocking(move || {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(endpoint)
                .with_protocol(match wire {
                    Wire::Protobuf => Protocol::HttpBinary,
                    Wire::Json => Protocol::HttpJson,
                })
                .with_timeout(Duration::from_secs(5))
                .build()?;
            let mut provider = SdkTracerProvider::builder();
            if let Some(seed) = seed {
                provider = provider
                    .with_id_generator(SeededIds(std::sync::Mutex::new(IdSource::seeded(seed))));
            }
            let provider = provider
                .with_batch_exporter(SkewedClock {
                    inner: exporter,
                    skew_ms,
                })
                .with_resource(Resource::builder().with_service_name(service).build())
                .build();
            let layer = layer(provider.tracer(service));
            let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
            Ok(Telemetry {
                service,
                dispatch,
                provider,
            })
        })
        .await?
    }

    /// Sends every finished span now, and waits until the collector answered.
    pub async fn flush(&self) -> anyhow::Result<()> {
        let provider = self.provider.clone();
        tokio::task::spawn_blocking(move || provider.force_flush()).await??;
        Ok(())
    }

    /// Flushes and stops the exporter.
    pub async fn shutdown(&self) -> anyhow::Result<()> {
        let provider = self.provider.clone();
        tokio::task::spawn_blocking(move || provider.shutdown()).await??;
        Ok(())
    }

    /// The service's OpenTelemetry tracer, for spans made without `tracing`: a hand-written
    /// server's hook ([`crate::proxy`]) or a test's client span.
    pub fn tracer(&self) -> opentelemetry_sdk::trace::SdkTracer {
        self.provider.tracer(self.service)
    }

    /// Runs `work` with this service's subscriber as the current one.
    pub fn in_scope<T>(&self, work: impl FnOnce() -> T) -> T {
        tracing::dispatcher::with_default(&self.dispatch, work)
    }

    // ANCHOR: instrument
    /// Traces every request `router` serves: one line per service,
    /// `let router = telemetry.instrument(router);`.
    pub fn instrument(self: &Arc<Self>, router: axum::Router) -> axum::Router {
        router.route_layer(axum::middleware::from_fn_with_state(
            self.clone(),
            server_span,
        ))
    }
    // ANCHOR_END: instrument
}

// ANCHOR: server_span
/// One server span per request: the caller's trace continued when its `traceparent` is
/// valid, a new trace otherwise; OpenTelemetry's HTTP attribute names.
async fn server_span(
    State(telemetry): State<Arc<Telemetry>>,
    request: Request,
    next: Next,
) -> Response {
    let incoming = incoming(&HeaderExtractor(request.headers()));
    let method = request.method().to_string();
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (address, port) = host.rsplit_once(':').unwrap_or((host.as_str(), ""));
    let span = telemetry.in_scope(|| {
        tracing::info_span!(
            parent: None,
            "request",
            otel.name = format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = method,
            http.route = route,
            url.path = request.uri().path(),
            server.address = address,
            server.port = port,
            http.response.status_code = Empty,
            trace.restarted = incoming.restart.map(|r| format!("{r:?}")),
        )
    });
    let _ = span.set_parent(remote_context(&incoming));
    let response = next
        .run(request)
        .instrument(span.clone())
        .with_subscriber(telemetry.dispatch.clone())
        .await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    response
}
// ANCHOR_END: server_span

// ANCHOR: traced_get
/// A `GET` from inside a traced request: a client span, child of the current span, whose
/// context goes out as `traceparent` (and `tracestate`); [`crate::client::traced_execute`]
/// for any other request.
pub async fn traced_get(client: &reqwest::Client, url: &str) -> anyhow::Result<reqwest::Response> {
    let request = client.get(url).build()?;
    Ok(crate::client::traced_execute(client, request).await?)
}
// ANCHOR_END: traced_get
