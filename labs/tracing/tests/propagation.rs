//! The invalid-header table at a service: a request with each broken `traceparent` starts a
//! new trace there, and the call the service makes carries the new trace, never the broken
//! header or its `tracestate`. Then the same table through the OpenTelemetry SDK's own
//! `TraceContextPropagator`, pinning down where it is more lenient than the Recommendation.

mod support;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use lab_tracing::propagator::{HeaderExtractor, StrictPropagator};
use lab_tracing::telemetry::{Telemetry, Wire, traced_get};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use support::{collector, keep_all};
use trace_context_core::parse_traceparent;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// Each invalid case by the rule it breaks, as the services receive it.
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

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Received>>>);

/// The `traceparent` and `tracestate` a downstream call carried.
type Received = (Option<String>, Option<String>);

async fn record(State(seen): State<Seen>, headers: HeaderMap) -> &'static str {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    seen.0
        .lock()
        .expect("not poisoned")
        .push((text("traceparent"), text("tracestate")));
    "ok"
}

#[derive(Clone)]
struct Next(String, reqwest::Client);

async fn call_on(State(next): State<Next>) -> &'static str {
    let _ = traced_get(&next.1, &next.0).await;
    "called"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invalid_traceparent_restarts_the_trace_and_none_is_forwarded() {
    let collector = collector(keep_all(60_000)).await;
    let seen = Seen::default();
    let downstream = lab_runtime::spawn(
        Router::new()
            .route("/", get(record))
            .with_state(seen.clone()),
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .expect("listens");
    let telemetry = Arc::new(
        Telemetry::new("order", &collector.url, Wire::Protobuf, 0, None)
            .await
            .expect("telemetry"),
    );
    let service = telemetry.instrument(Router::new().route("/", get(call_on)).with_state(Next(
        format!("http://{}/", downstream.addr),
        reqwest::Client::new(),
    )));
    let service = lab_runtime::spawn(service, ([127, 0, 0, 1], 0).into())
        .await
        .expect("listens");
    let client = reqwest::Client::new();
    let send = |headers: Vec<String>, state: &'static str| {
        let mut request = client
            .get(format!("http://{}/", service.addr))
            .header("tracestate", state);
        for header in headers {
            request = request.header("traceparent", header);
        }
        request.send()
    };
    send(vec![format!("00-{TRACE}-{PARENT}-03")], "rojo=1")
        .await
        .expect("answers");
    let (control, control_state) = seen
        .0
        .lock()
        .expect("not poisoned")
        .pop()
        .expect("the call came");
    let control = parse_traceparent(&control.expect("a traceparent")).expect("valid");
    assert_eq!(
        control.trace_id.to_string(),
        TRACE,
        "the control: a valid header is continued"
    );
    assert_eq!(control.flags.0, 0x03, "sampled and random survive the hop");
    assert_eq!(
        control_state.as_deref(),
        Some("rojo=1"),
        "and its tracestate is forwarded"
    );
    for (rule, headers) in invalid_cases() {
        send(headers.clone(), "rojo=1").await.expect("answers");
        let (forwarded, state) = seen
            .0
            .lock()
            .expect("not poisoned")
            .pop()
            .expect("the call came");
        let forwarded =
            forwarded.unwrap_or_else(|| panic!("{rule}: the call carries a new traceparent"));
        assert!(
            !headers.contains(&forwarded),
            "{rule}: the broken header is not forwarded"
        );
        let parsed = parse_traceparent(&forwarded)
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
            state, None,
            "{rule}: the tracestate is dropped with the trace"
        );
    }
    service.stop().await;
    downstream.stop().await;
    let _ = telemetry.shutdown().await;
}

fn sdk_accepts(propagator: &dyn TextMapPropagator, headers: &[String]) -> bool {
    let mut map = HeaderMap::new();
    for header in headers {
        map.append("traceparent", header.parse().expect("a header value"));
    }
    propagator
        .extract(&HeaderExtractor(&map))
        .span()
        .span_context()
        .is_valid()
}

// ANCHOR: sdk_comparison
#[test]
fn the_sdk_propagator_is_more_lenient_than_the_recommendation() {
    let lenient: Vec<&str> = invalid_cases()
        .into_iter()
        .filter(|(_, headers)| sdk_accepts(&TraceContextPropagator::new(), headers))
        .map(|(rule, _)| rule)
        .collect();
    assert_eq!(
        lenient,
        [
            "too_short",
            "trace_id_31_digits",
            "flags_one_digit",
            "uppercase_version",
            "plus_sign_in_trace_id",
            "duplicated_header"
        ],
        "the cases opentelemetry_sdk 0.33 continues although the Recommendation says restart"
    );
    let strict: Vec<&str> = invalid_cases()
        .into_iter()
        .filter(|(_, headers)| sdk_accepts(&StrictPropagator, headers))
        .map(|(rule, _)| rule)
        .collect();
    assert!(
        strict.is_empty(),
        "the lab's propagator restarts on every one: {strict:?}"
    );
}
// ANCHOR_END: sdk_comparison

#[test]
fn the_sdk_propagator_drops_the_random_flag() {
    let mut map = HeaderMap::new();
    map.insert(
        "traceparent",
        format!("00-{TRACE}-{PARENT}-03")
            .parse()
            .expect("a header value"),
    );
    let flags = |p: &dyn TextMapPropagator| {
        p.extract(&HeaderExtractor(&map))
            .span()
            .span_context()
            .trace_flags()
            .to_u8()
    };
    assert_eq!(
        flags(&TraceContextPropagator::new()),
        0x01,
        "the SDK keeps only sampled"
    );
    assert_eq!(
        flags(&StrictPropagator),
        0x03,
        "the lab keeps Level 2's random flag too"
    );
}
