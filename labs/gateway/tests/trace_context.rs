//! W3C trace context through the gateway: the invalid-header table (each case restarts the
//! trace, the upstream never sees the broken header or its `tracestate`, with tracing on and
//! off), a valid header continued with the gateway's span as the parent, client → gateway →
//! service arriving at the tracing lab's collector as one trace, and the access log naming
//! the trace. No sleeps: the spans are flushed and the collector's query API waited on.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use lab_gateway::config::{Config, TracingConfig, TracingProtocol};
use lab_gateway::{Gateway, serve};
use lab_runtime::{Millis, Running, TokioClock};
use lab_telemetry::{HeaderInjector, StrictPropagator, Telemetry, Wire};
use lab_test_support::wait_until_async;
use lab_tracing::collector::{CollectorHandle, router};
use lab_tracing::store::Store;
use lab_tracing::waterfall::{SpanView, TraceView};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
use serde_json::Value;
use support::{Answer, Upstream, call, capture_logs, client, echo_config};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use trace_context_core::{CollectorConfig, SamplingPolicy, parse_traceparent};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// Each invalid case by the rule it breaks: the same fifteen as the tracing lab's
/// `tests/propagation.rs`, at a service there and at the gateway here.
fn invalid_cases() -> Vec<(&'static str, Vec<String>)> {
    let valid = format!("00-{TRACE}-{PARENT}-01");
    vec![
        ("too_short", vec![valid[..54].to_owned()]),
        (
            "trace_id_31_digits",
            vec![format!("00-{}-{PARENT}-01", &TRACE[1..])],
        ),
        ("flags_one_digit", vec![format!("00-{TRACE}-{PARENT}-1")]),
        (
            "uppercase_trace_id",
            vec![format!("00-{}-{PARENT}-01", TRACE.to_uppercase())],
        ),
        ("uppercase_version", vec![format!("0A-{TRACE}-{PARENT}-01")]),
        (
            "plus_sign_in_trace_id",
            vec![format!("00-+{}-{PARENT}-01", &TRACE[1..])],
        ),
        ("version_ff", vec![format!("ff-{TRACE}-{PARENT}-01")]),
        ("missing_dash", vec![format!("00_{TRACE}-{PARENT}-01")]),
        (
            "parent_id_not_hex",
            vec![format!("00-{TRACE}-{}z-01", &PARENT[..15])],
        ),
        ("flags_not_hex", vec![format!("00-{TRACE}-{PARENT}-0x")]),
        (
            "all_zero_trace_id",
            vec![format!("00-{}-{PARENT}-01", "0".repeat(32))],
        ),
        (
            "all_zero_parent_id",
            vec![format!("00-{TRACE}-{}-01", "0".repeat(16))],
        ),
        ("extra_fields_on_version_00", vec![format!("{valid}-extra")]),
        (
            "malformed_future_version",
            vec![format!("cc-{TRACE}-{PARENT}-01.extra")],
        ),
        (
            "duplicated_header",
            vec![valid.clone(), format!("00-{}-{PARENT}-01", "1".repeat(32))],
        ),
    ]
}

/// The lab's collector, keeping every trace, deciding after 2 s of quiet: long enough for
/// every service's flush to land on a loaded machine (a span after the decision is dropped).
struct TestCollector {
    url: String,
    server: Running,
}

async fn collector() -> TestCollector {
    let config = CollectorConfig {
        decision_wait: Millis(2_000),
        orphan_window: Millis(4_000),
        policy: SamplingPolicy {
            slow_ns: u64::MAX,
            keep_per_mille: 1000,
            seed: 7,
        },
        ..CollectorConfig::default()
    };
    let store = Store::open(None).expect("an in-memory store");
    let handle = CollectorHandle::start(config, store, TokioClock::new());
    let server = lab_runtime::spawn(router(handle), ([127, 0, 0, 1], 0).into())
        .await
        .expect("the collector listens");
    TestCollector {
        url: format!("http://{}", server.addr),
        server,
    }
}

/// A gateway serving `config`, tracing started when it has `[tracing]`.
struct TracedGateway {
    addr: SocketAddr,
    gateway: Arc<Gateway>,
    stop: oneshot::Sender<()>,
}

async fn start_gateway(config: Config) -> TracedGateway {
    let gateway = Arc::new(
        Gateway::new(config)
            .expect("a valid config")
            .start_tracing()
            .await
            .expect("tracing starts"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("an address");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, Arc::clone(&gateway), async move {
        let _ = stopped.await;
    }));
    TracedGateway {
        addr,
        gateway,
        stop,
    }
}

fn traced(config: Config, collector: &str) -> Config {
    Config {
        tracing: Some(TracingConfig {
            collector: collector.to_owned(),
            service_name: "gateway".to_owned(),
            protocol: TracingProtocol::Protobuf,
        }),
        ..config
    }
}

/// `GET /open/ok` with these `traceparent` fields and a `tracestate`.
fn request(
    addr: SocketAddr,
    traceparents: &[String],
) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    let mut builder =
        http::Request::get(format!("http://{addr}/open/ok")).header("tracestate", "rojo=1");
    for header in traceparents {
        builder = builder.header("traceparent", header);
    }
    builder.body(Default::default()).expect("a request")
}

/// The values of a header the echo upstream received.
fn seen(answer: &Answer, name: &str) -> Vec<String> {
    answer.json()["headers"][name]
        .as_array()
        .map(|values| {
            values
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

// ANCHOR: invalid_off
#[tokio::test]
async fn with_tracing_off_an_invalid_traceparent_is_never_forwarded_and_a_valid_one_passes_untouched()
 {
    let upstream = Upstream::start().await;
    let gateway = start_gateway(echo_config(&upstream.url())).await;
    let client = client();
    let valid = format!("00-{TRACE}-{PARENT}-03");
    let answer = call(&client, request(gateway.addr, std::slice::from_ref(&valid))).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        seen(&answer, "traceparent"),
        [valid],
        "a valid header passes untouched"
    );
    assert_eq!(
        seen(&answer, "tracestate"),
        ["rojo=1"],
        "and its tracestate with it"
    );
    for (rule, headers) in invalid_cases() {
        let answer = call(&client, request(gateway.addr, &headers)).await;
        assert_eq!(answer.status, 200, "{rule}: still served");
        assert_eq!(
            seen(&answer, "traceparent"),
            Vec::<String>::new(),
            "{rule}: the broken header is not forwarded: the upstream starts a new trace"
        );
        assert_eq!(
            seen(&answer, "tracestate"),
            Vec::<String>::new(),
            "{rule}: the tracestate is dropped with it"
        );
    }
    let _ = gateway.stop.send(());
}
// ANCHOR_END: invalid_off

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tracing_on_every_invalid_traceparent_restarts_the_trace_and_none_is_forwarded() {
    let collector = collector().await;
    let upstream = Upstream::start().await;
    let gateway = start_gateway(traced(echo_config(&upstream.url()), &collector.url)).await;
    let client = client();
    for (rule, headers) in invalid_cases() {
        let answer = call(&client, request(gateway.addr, &headers)).await;
        assert_eq!(answer.status, 200, "{rule}: still served");
        let forwarded = seen(&answer, "traceparent");
        let [forwarded] = forwarded.as_slice() else {
            panic!("{rule}: one new traceparent goes upstream, not {forwarded:?}");
        };
        assert!(
            !headers.contains(forwarded),
            "{rule}: the broken header is not forwarded"
        );
        let parsed = parse_traceparent(forwarded)
            .unwrap_or_else(|e| panic!("{rule}: forwarded {forwarded}: {e}"));
        assert_ne!(
            parsed.trace_id.to_string(),
            TRACE,
            "{rule}: a new trace, not the broken one"
        );
        assert_ne!(
            parsed.trace_id.to_string(),
            "1".repeat(32),
            "{rule}: not the second header's either"
        );
        assert_eq!(
            seen(&answer, "tracestate"),
            Vec::<String>::new(),
            "{rule}: the tracestate is dropped with the trace"
        );
    }
    let _ = gateway.stop.send(());
    collector.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tracing_on_a_valid_traceparent_is_continued_with_the_gateways_span_as_parent() {
    let collector = collector().await;
    let upstream = Upstream::start().await;
    let gateway = start_gateway(traced(echo_config(&upstream.url()), &collector.url)).await;
    let answer = call(
        &client(),
        request(gateway.addr, &[format!("00-{TRACE}-{PARENT}-03")]),
    )
    .await;
    assert_eq!(answer.status, 200);
    let forwarded = seen(&answer, "traceparent");
    let [forwarded] = forwarded.as_slice() else {
        panic!("one traceparent goes upstream, not {forwarded:?}");
    };
    let parsed = parse_traceparent(forwarded).expect("a valid traceparent");
    assert_eq!(
        parsed.trace_id.to_string(),
        TRACE,
        "the client's trace continues"
    );
    assert_ne!(
        parsed.parent_id.to_string(),
        PARENT,
        "the upstream's parent is the gateway's span, not the client's"
    );
    assert!(parsed.flags.sampled(), "the sampled flag survives the hop");
    assert_eq!(
        seen(&answer, "tracestate"),
        ["rojo=1"],
        "the tracestate goes on"
    );
    let telemetry = gateway.gateway.telemetry().expect("tracing is on");
    telemetry.flush().await.expect("the spans are exported");
    let view = trace_at(&collector.url, TRACE, 1).await;
    let span = span_of(&view, "gateway");
    assert_eq!(
        span.span_id,
        parsed.parent_id.to_string(),
        "the parent the upstream was told is the gateway's span"
    );
    assert_eq!(
        span.parent.as_deref(),
        Some(PARENT),
        "whose parent is the client's"
    );
    let _ = gateway.stop.send(());
    collector.server.stop().await;
}

/// Waits until the collector has decided `trace_id` with at least `spans` spans.
async fn trace_at(collector: &str, trace_id: &str, spans: usize) -> TraceView {
    let http = reqwest::Client::new();
    let url = format!("{collector}/api/traces/{trace_id}");
    wait_until_async("the trace at the collector", 1500, || {
        let request = http.get(&url).send();
        async move {
            let response = request.await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            let view: TraceView = response.json().await.ok()?;
            (view.spans.len() >= spans).then_some(view)
        }
    })
    .await
}

fn span_of<'a>(view: &'a TraceView, service: &str) -> &'a SpanView {
    view.spans
        .iter()
        .find(|span| span.service == service)
        .unwrap_or_else(|| panic!("no {service} span in {:?}", view.spans))
}

fn attribute<'a>(span: &'a SpanView, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The instrumented service behind the gateway: answers with the trace headers it got.
async fn traced_service(telemetry: &Arc<Telemetry>) -> Running {
    async fn answer(headers: HeaderMap) -> String {
        headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
    let router = telemetry.instrument(Router::new().route("/open/{*rest}", get(answer)));
    lab_runtime::spawn(router, ([127, 0, 0, 1], 0).into())
        .await
        .expect("the service listens")
}

// ANCHOR: one_trace
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_gateway_and_service_spans_arrive_at_the_collector_as_one_trace() {
    let collector = collector().await;
    let new_telemetry = |name| Telemetry::new(name, &collector.url, Wire::Protobuf, 0, None);
    let caller = Arc::new(new_telemetry("client").await.expect("telemetry"));
    let service = Arc::new(new_telemetry("orders").await.expect("telemetry"));
    let behind = traced_service(&service).await;
    let gateway = start_gateway(traced(
        echo_config(&format!("http://{}", behind.addr)),
        &collector.url,
    ))
    .await;

    // The client's own span, its context sent as `traceparent`.
    let tracer = caller.tracer();
    let span = tracer
        .span_builder("GET /open/ok")
        .with_kind(SpanKind::Client)
        .start(&tracer);
    let context = opentelemetry::Context::new().with_span(span);
    let mut headers = HeaderMap::new();
    StrictPropagator.inject_context(&context, &mut HeaderInjector(&mut headers));
    let client_span = context.span().span_context().clone();
    let mut outgoing = request(gateway.addr, &[]);
    outgoing.headers_mut().extend(headers);
    let answer = call(&client(), outgoing).await;
    assert_eq!(answer.status, 200);
    context.span().end();

    // All three at once: one trace's spans arrive together, well within the decision wait.
    let at_gateway = gateway.gateway.telemetry().expect("tracing is on");
    let (a, b, c) = tokio::join!(caller.flush(), at_gateway.flush(), service.flush());
    for flushed in [a, b, c] {
        flushed.expect("the spans are exported");
    }
    let trace_id = client_span.trace_id().to_string();
    let view = trace_at(&collector.url, &trace_id, 3).await;
    let (client, at_gateway, at_service) = (
        span_of(&view, "client"),
        span_of(&view, "gateway"),
        span_of(&view, "orders"),
    );
    assert_eq!(client.parent, None, "the client's span is the root");
    assert_eq!(
        at_gateway.parent.as_deref(),
        Some(client.span_id.as_str()),
        "the gateway's span is the client's child"
    );
    assert_eq!(
        at_service.parent.as_deref(),
        Some(at_gateway.span_id.as_str()),
        "the service's span is the gateway's child"
    );
    assert_eq!(at_gateway.name, "GET /open");
    for (key, value) in [
        ("http.request.method", "GET"),
        ("http.route", "/open"),
        ("url.path", "/open/ok"),
        ("server.address", "127.0.0.1"),
        ("http.response.status_code", "200"),
    ] {
        assert_eq!(
            attribute(at_gateway, key),
            Some(value),
            "the gateway span's {key}: {:?}",
            at_gateway.attributes
        );
    }
    assert_eq!(
        attribute(at_gateway, "server.port"),
        Some(gateway.addr.port().to_string().as_str())
    );
    assert!(!at_gateway.error, "a 200 is no error");
    let _ = gateway.stop.send(());
    behind.stop().await;
    collector.server.stop().await;
}
// ANCHOR_END: one_trace

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_5xx_marks_the_gateways_span_as_an_error() {
    let collector = collector().await;
    let upstream = Upstream::start().await;
    let gateway = start_gateway(traced(echo_config(&upstream.url()), &collector.url)).await;
    let answer = call(
        &client(),
        http::Request::get(format!("http://{}/open/status/500", gateway.addr))
            .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
            .body(Default::default())
            .expect("a request"),
    )
    .await;
    assert_eq!(answer.status, 500);
    let telemetry = gateway.gateway.telemetry().expect("tracing is on");
    telemetry.flush().await.expect("the spans are exported");
    let view = trace_at(&collector.url, TRACE, 1).await;
    let span = span_of(&view, "gateway");
    assert!(span.error, "a 5xx is the server span's error");
    assert_eq!(attribute(span, "http.response.status_code"), Some("500"));
    let _ = gateway.stop.send(());
    collector.server.stop().await;
}

/// The `trace_id=` of the access log's line for `path`.
fn logged_trace_id(log: &str, path: &str) -> String {
    let line = log
        .lines()
        .find(|line| line.contains(&format!("path={path} ")))
        .unwrap_or_else(|| panic!("no access line for {path} in:\n{log}"));
    line.split_whitespace()
        .find_map(|field| field.strip_prefix("trace_id="))
        .unwrap_or_else(|| panic!("no trace_id in {line}"))
        .to_owned()
}

#[tokio::test]
async fn the_access_log_names_the_trace_of_each_request() {
    let (captured, _log) = capture_logs("access=info");
    let collector = collector().await;
    let upstream = Upstream::start().await;
    let client = client();
    let get = |addr: SocketAddr, path: &str, traceparent: &str| {
        http::Request::get(format!("http://{addr}{path}"))
            .header("traceparent", traceparent)
            .body(Default::default())
            .expect("a request")
    };
    let valid = format!("00-{TRACE}-{PARENT}-01");

    // Tracing off: the client's valid trace, or none.
    let off = start_gateway(echo_config(&upstream.url())).await;
    call(&client, get(off.addr, "/open/off-valid", &valid)).await;
    call(&client, get(off.addr, "/open/off-invalid", "00-xyz")).await;
    let _ = off.stop.send(());

    // Tracing on: the gateway's span's trace, the one the upstream was told.
    let on = start_gateway(traced(echo_config(&upstream.url()), &collector.url)).await;
    call(&client, get(on.addr, "/open/on-valid", &valid)).await;
    let restarted = call(&client, get(on.addr, "/open/on-invalid", "00-xyz")).await;
    let told = parse_traceparent(&seen(&restarted, "traceparent")[0]).expect("valid");
    let _ = on.stop.send(());

    let log = captured.text();
    assert_eq!(logged_trace_id(&log, "/open/off-valid"), TRACE);
    assert_eq!(logged_trace_id(&log, "/open/off-invalid"), "-");
    assert_eq!(logged_trace_id(&log, "/open/on-valid"), TRACE);
    assert_eq!(
        logged_trace_id(&log, "/open/on-invalid"),
        told.trace_id.to_string(),
        "the new trace the gateway started"
    );
    collector.server.stop().await;
}

/// One span as a minimal OTLP receiver saw it: its trace, service, name and events, each event
/// with its attributes spelled by `Debug`.
#[derive(Clone, Debug)]
struct Exported {
    trace_id: String,
    name: String,
    events: Vec<(String, String)>,
}

/// An OTLP/HTTP receiver keeping every span it is sent, events included (the lab's collector
/// keeps no events).
async fn events_receiver() -> (Running, Arc<std::sync::Mutex<Vec<Exported>>>) {
    let kept = Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = Arc::clone(&kept);
    let receive = move |body: bytes::Bytes| {
        let store = Arc::clone(&store);
        async move {
            let request = lab_tracing::otlp::decode(lab_tracing::otlp::Encoding::Protobuf, &body)
                .expect("an OTLP protobuf request");
            let spans = request
                .resource_spans
                .into_iter()
                .flat_map(|resource| resource.scope_spans)
                .flat_map(|scope| scope.spans);
            let mut store = store.lock().expect("not poisoned");
            for span in spans {
                store.push(Exported {
                    trace_id: span.trace_id.iter().map(|b| format!("{b:02x}")).collect(),
                    name: span.name,
                    events: span
                        .events
                        .into_iter()
                        .map(|event| (event.name, format!("{:?}", event.attributes)))
                        .collect(),
                });
            }
            "ok"
        }
    };
    let router = Router::new().route("/v1/traces", axum::routing::post(receive));
    let server = lab_runtime::spawn(router, ([127, 0, 0, 1], 0).into())
        .await
        .expect("the receiver listens");
    (server, kept)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breakers_rejection_and_each_retry_are_events_on_the_gateways_span() {
    let (receiver, kept) = events_receiver().await;
    let upstream = Upstream::start().await;
    let mut config = traced(
        echo_config(&upstream.url()),
        &format!("http://{}", receiver.addr),
    );
    // Four calls judged, opened at half of them failing.
    config.breaker.window = 4;
    config.breaker.minimum_calls = 4;
    let gateway = start_gateway(config).await;
    let client = client();
    let send = |path: &str, trace: char| {
        let request = http::Request::get(format!("http://{}{path}", gateway.addr))
            .header(
                "traceparent",
                format!("00-{}-{PARENT}-01", trace.to_string().repeat(32)),
            )
            .body(Default::default())
            .expect("a request");
        call(&client, request)
    };
    // `/flaky` answers 503 on its first hit: retried once, then 200.
    assert_eq!(send("/open/flaky", 'a').await.status, 200);
    // Two 500s: with the 503 that is three failures in four calls, and the breaker opens.
    assert_eq!(send("/open/status/500", 'b').await.status, 500);
    assert_eq!(send("/open/status/500", 'b').await.status, 500);
    assert_eq!(
        send("/open/ok", 'c').await.status,
        503,
        "the breaker refuses"
    );
    gateway
        .gateway
        .telemetry()
        .expect("tracing is on")
        .flush()
        .await
        .expect("the spans are exported");
    let spans = kept.lock().expect("not poisoned").clone();
    let events = |trace: char| {
        let id = trace.to_string().repeat(32);
        spans
            .iter()
            .find(|span| span.trace_id == id)
            .unwrap_or_else(|| panic!("no span of trace {id} in {spans:?}"))
            .events
            .clone()
    };
    let retried = events('a');
    assert_eq!(retried.len(), 1, "one retry, one event: {retried:?}");
    assert_eq!(retried[0].0, "retry");
    assert!(
        retried[0].1.contains("503") && retried[0].1.contains("attempt"),
        "the retry says after which attempt and why: {}",
        retried[0].1
    );
    let refused = events('c');
    assert_eq!(refused.len(), 1, "one rejection, one event: {refused:?}");
    assert_eq!(refused[0].0, "breaker.rejected");
    assert!(
        refused[0].1.contains("StringValue(\"open\")"),
        "the event names the breaker's state: {}",
        refused[0].1
    );
    let span = spans
        .iter()
        .find(|span| span.trace_id == "c".repeat(32))
        .expect("the refused request's span");
    assert_eq!(span.name, "GET /open");
    let _ = gateway.stop.send(());
    receiver.stop().await;
}

#[tokio::test]
async fn the_aggregated_view_never_forwards_an_invalid_traceparent_either() {
    let upstream = Upstream::start().await;
    let mut config = echo_config(&upstream.url());
    config.aggregation = Some(lab_gateway::config::AggregationConfig {
        order_upstream: "echo".to_owned(),
        user_upstream: "echo".to_owned(),
        product_upstream: "echo".to_owned(),
        part_timeout_ms: 5_000,
        auth: false,
    });
    let gateway = start_gateway(config).await;
    let client = client();
    let ask = |traceparent: String| {
        http::Request::get(format!("http://{}/api/order-details/7", gateway.addr))
            .header("traceparent", traceparent)
            .header("tracestate", "rojo=1")
            .body(Default::default())
            .expect("a request")
    };
    let order_saw = |answer: &Answer, name: &str| answer.json()["order"]["headers"][name].clone();
    let valid = format!("00-{TRACE}-{PARENT}-01");
    let answer = call(&client, ask(valid.clone())).await;
    assert_eq!(answer.status, 200, "{:?}", answer.json());
    assert_eq!(
        order_saw(&answer, "traceparent"),
        serde_json::json!([valid])
    );
    for (rule, headers) in invalid_cases().into_iter().filter(|(_, h)| h.len() == 1) {
        let answer = call(&client, ask(headers[0].clone())).await;
        assert_eq!(answer.status, 200, "{rule}");
        assert_eq!(
            order_saw(&answer, "traceparent"),
            Value::Null,
            "{rule}: the order service never sees the broken header"
        );
        assert_eq!(
            order_saw(&answer, "tracestate"),
            Value::Null,
            "{rule}: nor its tracestate"
        );
    }
    let _ = gateway.stop.send(());
}
