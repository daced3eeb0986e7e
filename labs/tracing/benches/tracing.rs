//! The cost of tracing, in one run: a span made through the lab's instrumentation (`tracing`,
//! `tracing-opentelemetry` and `opentelemetry_sdk`, with the layer the services use,
//! `lab_telemetry::telemetry::layer`), through the OpenTelemetry SDK directly, and through
//! `fastrace`, each sampled and not. Like with like: every side makes the same server span (its
//! name, kind and three attributes), makes it current (entered, attached) and ends it, and the
//! two OpenTelemetry sides hand it to the same batch processor and no-op exporter. Then the
//! collector's ingest rate for OTLP protobuf batches (decode, the core, the SQLite store), in
//! spans per second.

use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lab_runtime::TokioClock;
use lab_tracing::collector::CollectorHandle;
use lab_tracing::store::Store;
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
use prost::Message;
use trace_context_core::{CollectorConfig, SpanId, SpanRecord, TraceId};
use tracing_subscriber::layer::SubscriberExt;

/// Takes every batch and does nothing: the benchmark measures making spans, not sending them.
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        Ok(())
    }
}

struct DiscardReporter;

impl fastrace::collector::Reporter for DiscardReporter {
    fn report(&mut self, _spans: Vec<fastrace::prelude::SpanRecord>) {}
}

fn provider(sampled: bool) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_sampler(if sampled {
            Sampler::AlwaysOn
        } else {
            Sampler::AlwaysOff
        })
        .with_batch_exporter(Discard)
        .build()
}

fn spans(c: &mut Criterion) {
    fastrace::set_reporter(DiscardReporter, fastrace::collector::Config::default());
    let mut group = c.benchmark_group("span");
    for sampled in [true, false] {
        let label = if sampled { "sampled" } else { "unsampled" };
        // The services' layer, and `tracing-opentelemetry`'s defaults for comparison.
        let lab = provider(sampled);
        let defaults = provider(sampled);
        for (name, dispatch) in [
            (
                "lab (tracing + tracing-opentelemetry)",
                tracing::Dispatch::new(
                    tracing_subscriber::registry()
                        .with(lab_telemetry::telemetry::layer(lab.tracer("bench"))),
                ),
            ),
            (
                "lab with tracing-opentelemetry's defaults",
                tracing::Dispatch::new(
                    tracing_subscriber::registry()
                        .with(tracing_opentelemetry::layer().with_tracer(defaults.tracer("bench"))),
                ),
            ),
        ] {
            group.bench_function(BenchmarkId::new(name, label), |b| {
                tracing::dispatcher::with_default(&dispatch, || {
                    b.iter(|| {
                        let span = tracing::info_span!(
                            "request",
                            otel.name = "GET /orders/{id}",
                            otel.kind = "server",
                            http.request.method = "GET",
                            http.route = "/orders/{id}",
                            http.response.status_code = 200u16,
                        );
                        let _entered = span.enter();
                    })
                })
            });
        }
        let sdk = provider(sampled);
        let tracer = sdk.tracer("bench");
        group.bench_function(BenchmarkId::new("opentelemetry_sdk", label), |b| {
            b.iter(|| {
                let span = tracer
                    .span_builder("GET /orders/{id}")
                    .with_kind(SpanKind::Server)
                    .with_attributes([
                        KeyValue::new("http.request.method", "GET"),
                        KeyValue::new("http.route", "/orders/{id}"),
                        KeyValue::new("http.response.status_code", 200),
                    ])
                    .start(&tracer);
                let cx = opentelemetry::Context::current_with_span(span);
                drop(cx.clone().attach());
                cx.span().end();
            })
        });
        group.bench_function(BenchmarkId::new("fastrace", label), |b| {
            b.iter(|| {
                let context = fastrace::prelude::SpanContext::random().sampled(sampled);
                let span =
                    fastrace::Span::root("GET /orders/{id}", context).with_properties(|| {
                        [
                            ("http.request.method", "GET"),
                            ("http.route", "/orders/{id}"),
                            ("http.response.status_code", "200"),
                        ]
                    });
                drop(span);
            })
        });
        let _ = lab.shutdown();
        let _ = defaults.shutdown();
        let _ = sdk.shutdown();
    }
    group.finish();
}

fn ingest(c: &mut Criterion) {
    const SPANS: u64 = 1_000;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let handle = runtime.block_on(async {
        CollectorHandle::start(
            CollectorConfig::default(),
            Store::open(None).expect("a store"),
            TokioClock::new(),
        )
    });
    let next = AtomicU64::new(1);
    let batch = || {
        let base = next.fetch_add(1, Ordering::Relaxed);
        let spans: Vec<SpanRecord> = (0..SPANS)
            .map(|i| {
                let trace = u128::from(base * 100 + i / 10 + 1);
                SpanRecord {
                    trace_id: TraceId(trace.to_be_bytes()),
                    span_id: SpanId((i + 1).to_be_bytes()),
                    parent: (i % 10 != 0).then(|| SpanId((i - i % 10 + 1).to_be_bytes())),
                    service: "bench".into(),
                    name: "GET /orders/{id}".into(),
                    start_ns: 1_000_000 + i,
                    end_ns: 2_000_000 + i,
                    error: false,
                }
            })
            .collect();
        lab_tracing::otlp::request("bench", &spans).encode_to_vec()
    };
    let mut group = c.benchmark_group("collector ingest");
    group.throughput(Throughput::Elements(SPANS));
    group.sample_size(20);
    group.bench_function(
        "OTLP protobuf batch of 1000 spans (decode, core, SQLite)",
        |b| {
            b.iter_batched(
                batch,
                |body| {
                    let request =
                        lab_tracing::otlp::decode(lab_tracing::otlp::Encoding::Protobuf, &body)
                            .expect("OTLP");
                    let (spans, _, _) = lab_tracing::otlp::spans(request);
                    runtime.block_on(handle.ingest(spans)).expect("stored")
                },
                criterion::BatchSize::SmallInput,
            )
        },
    );
    group.finish();
}

criterion_group!(benches, spans, ingest);
criterion_main!(benches);
