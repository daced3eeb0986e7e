//! The lab's APIs traced against the tracing lab's collector (a real OTLP/HTTP receiver):
//! a client that sends a command and then the read after it, both in its own trace (one
//! `traceparent`), finds the write API's and the read API's server spans in that one trace,
//! and under the command's span each projection's span applying the event it wrote: over the
//! in-process bus, or over NATS JetStream when `NATS_URL` is set.
//!
//! Nothing sleeps: the exporters are flushed (which returns once the collector has stored
//! the spans), then the test waits for the collector's decision on the trace.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use lab_cqrs::projection::{Admin, Settings};
use lab_cqrs::system::{self, Pieces};
use lab_cqrs::telemetry::{CqrsTelemetry, PROJECT, READ, SERVICES, WRITE};
use lab_cqrs::write::TOKEN_HEADER;
use lab_runtime::{Millis, TokioClock};
use lab_tracing::collector::{CollectorHandle, router};
use lab_tracing::store::Store;
use trace_context_core::{CollectorConfig, Decision, SamplingPolicy};

/// The caller's trace, as its `traceparent` names it.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_its_projections_and_the_read_after_it_are_in_the_callers_trace() {
    let config = CollectorConfig {
        decision_wait: Millis(1_000),
        orphan_window: Millis(2_000),
        policy: SamplingPolicy {
            slow_ns: u64::MAX,
            keep_per_mille: 1000,
            seed: 7,
        },
        ..CollectorConfig::default()
    };
    let handle = CollectorHandle::start(config, Store::open(None).unwrap(), TokioClock::new());
    let mut decisions = handle.decisions();
    let collector = lab_runtime::spawn(router(handle.clone()), ([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let telemetry = CqrsTelemetry::start(&format!("http://{}", collector.addr), &SERVICES)
        .await
        .unwrap();

    let dir = std::env::temp_dir().join(format!("cqrs-tracing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let nats = std::env::var("NATS_URL").ok();
    let started = system::start_traced(
        &dir,
        Pieces::ALL,
        nats.as_deref(),
        Settings::default(),
        Some(&telemetry),
    )
    .await
    .unwrap();
    let listener = lab_runtime::serve::bind_loopback(0).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let _server = lab_runtime::serve::spawn_on(listener, started.router.clone()).unwrap();

    let client = reqwest::Client::new();
    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    let written = client
        .post(format!("{base}/orders/o-traced"))
        .header("traceparent", &traceparent)
        .json(
            &serde_json::json!({ "type": "CreateOrder", "order_id": "o-traced", "customer": "c1" }),
        )
        .send()
        .await
        .unwrap();
    assert!(written.status().is_success(), "{}", written.status());
    let token = written.headers()[TOKEN_HEADER].to_str().unwrap().to_owned();
    let read = client
        .get(format!("{base}/orders/o-traced"))
        .header("traceparent", &traceparent)
        .header(TOKEN_HEADER, &token)
        .send()
        .await
        .unwrap();
    assert!(read.status().is_success(), "{}", read.status());

    // Each projection ends an event's span before its checkpoint passes the event.
    let position: u64 = token.parse().unwrap();
    for mut checkpoints in [
        started.details.as_ref().unwrap().checkpoints(),
        started.summary.as_ref().unwrap().checkpoints(),
    ] {
        checkpoints.wait_for(|at| *at >= position).await.unwrap();
    }
    telemetry.flush().await.unwrap();
    let decision: Arc<Decision> = tokio::time::timeout(Duration::from_secs(60), decisions.recv())
        .await
        .expect("a decision within a minute")
        .expect("the collector is running");
    assert_eq!(
        decision.trace_id.to_string(),
        TRACE_ID,
        "the caller's trace"
    );
    let spans: Vec<(String, String)> = decision
        .tree
        .nodes
        .iter()
        .map(|node| (node.span.service.clone(), node.span.name.clone()))
        .collect();
    for (service, name) in [(WRITE, "POST /orders/{id}"), (READ, "GET /orders/{id}")] {
        assert!(
            spans.iter().any(|(s, n)| s == service && n == name),
            "a {service} span {name} in the caller's trace: {spans:?}"
        );
    }
    let write = decision
        .tree
        .nodes
        .iter()
        .position(|node| node.span.service == WRITE)
        .unwrap();
    for projection in ["order-details", "customer-summary"] {
        let name = format!("project {projection}");
        let applied: Vec<_> = decision
            .tree
            .nodes
            .iter()
            .filter(|node| node.span.service == PROJECT && node.span.name == name)
            .collect();
        assert_eq!(
            applied.len(),
            1,
            "one {name} span in the caller's trace: {spans:?}"
        );
        assert_eq!(
            applied[0].parent,
            Some(write),
            "{name} is the command's child: {spans:?}"
        );
    }
    drop(started);
    let _ = std::fs::remove_dir_all(&dir);
}
