//! A compensated saga is one trace: run against the tracing lab's collector (a real OTLP/HTTP
//! receiver), every service exporting with the OpenTelemetry SDK, the saga arrives as one
//! trace with the right parent links. Orchestrated over HTTP: the saga's root, a child per
//! step and per compensation, the call inside each and the participant's server span under
//! the call. Choreographed: from the order's creation to the last compensation, each event
//! published in the span of the work that wrote it and processed under that, the context
//! carried by the bus (in-process, or NATS message headers when `NATS_URL` is set) and kept
//! in the outbox row in between.
//!
//! Nothing sleeps: the exporters are flushed (which returns once the collector has stored
//! the spans), then the test waits for the collector's decision on the trace.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use lab_runtime::{Millis, Running, TokioClock};
use lab_saga::system::{Options, Place, Seed, System, order_line};
use lab_saga::telemetry::{SERVICES, SagaTelemetry};
use lab_tracing::collector::{CollectorHandle, router};
use lab_tracing::store::Store;
use saga_core::{OrderStatus, SagaOutcome};
use trace_context_core::{CollectorConfig, Decision, SamplingPolicy, TraceTree};

/// The tracing lab's collector on a free port, keeping every trace, deciding on one after
/// a second of quiet.
struct Collector {
    handle: CollectorHandle,
    url: String,
    _server: Running,
}

async fn collector() -> Collector {
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
    let store = Store::open(None).unwrap();
    let handle = CollectorHandle::start(config, store, TokioClock::new());
    let server = lab_runtime::spawn(router(handle.clone()), ([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    Collector {
        url: format!("http://{}", server.addr),
        handle,
        _server: server,
    }
}

/// The collector's next decision (the timeout only stops a hung test).
async fn next_decision(
    decisions: &mut tokio::sync::broadcast::Receiver<Arc<Decision>>,
) -> Arc<Decision> {
    tokio::time::timeout(Duration::from_secs(60), decisions.recv())
        .await
        .expect("a decision within a minute")
        .expect("the collector is running")
}

/// No courier: the saga fails at shipping and compensates inventory and payment.
fn no_courier() -> Seed {
    Seed {
        couriers: 0,
        ..Seed::default()
    }
}

/// The tree's spans by `service name`, for the messages.
fn names(tree: &TraceTree) -> Vec<String> {
    tree.nodes
        .iter()
        .map(|n| format!("{} {}", n.span.service, n.span.name))
        .collect()
}

/// The index of the one span `name` of `service`.
fn find(tree: &TraceTree, service: &str, name: &str) -> usize {
    let found: Vec<usize> = (0..tree.nodes.len())
        .filter(|&i| tree.nodes[i].span.service == service && tree.nodes[i].span.name == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one span {service} {name} in {:?}",
        names(tree)
    );
    found[0]
}

/// The whole of what the collector stored is this one trace: every span of the run, in
/// one tree with one root and no orphan.
async fn one_trace(collector: &Collector, decision: &Decision) {
    let tree = &decision.tree;
    let stored = collector.handle.store.span_count().unwrap();
    assert_eq!(
        stored,
        tree.nodes.len() as u64,
        "every span the services sent is in this one trace: {:?}",
        names(tree)
    );
    assert_eq!(tree.orphans(), 0, "every parent arrived: {:?}", names(tree));
    assert_eq!(
        tree.nodes.iter().filter(|n| n.parent.is_none()).count(),
        1,
        "one root: {:?}",
        names(tree)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compensated_orchestrated_saga_over_http_is_one_trace() {
    let collector = collector().await;
    let mut decisions = collector.handle.decisions();
    let telemetry = SagaTelemetry::start(&collector.url, &SERVICES)
        .await
        .unwrap();
    let (system, servers) = System::start_over_http(
        &Place::Memory,
        Some(&no_courier()),
        Options {
            telemetry: Some(telemetry.clone()),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let outcome = system
        .order
        .run_order(&order_line("o-traced", 1))
        .await
        .unwrap();
    assert_eq!(outcome, SagaOutcome::Compensated, "no courier: compensated");
    telemetry.flush().await.unwrap();
    let decision = next_decision(&mut decisions).await;
    one_trace(&collector, &decision).await;

    let tree = &decision.tree;
    let root = find(tree, "order", "saga order_fulfilment");
    assert_eq!(tree.nodes[root].parent, None, "the saga's span is the root");
    let view = collector
        .handle
        .store
        .trace(&decision.trace_id.to_string())
        .unwrap()
        .expect("the trace is kept");
    let root_view = view
        .spans
        .iter()
        .find(|s| s.name == "saga order_fulfilment")
        .unwrap();
    assert!(
        root_view
            .attributes
            .iter()
            .any(|(k, v)| k == "saga.id" && v == "o-traced"),
        "the saga's id is an attribute: {:?}",
        root_view.attributes
    );
    for step in ["create_order", "compensate create_order"] {
        let local = find(tree, "order", step);
        assert_eq!(
            tree.nodes[local].parent,
            Some(root),
            "{step} is the saga's child"
        );
    }
    for (step, participant, path) in [
        ("reserve_payment", "payment", "/reserve"),
        ("reserve_inventory", "inventory", "/reserve"),
        ("schedule_shipping", "shipping", "/schedule"),
        ("compensate reserve_inventory", "inventory", "/release"),
        ("compensate reserve_payment", "payment", "/refund"),
    ] {
        let step_span = find(tree, "order", step);
        assert_eq!(
            tree.nodes[step_span].parent,
            Some(root),
            "{step} is the saga's child"
        );
        let calls: Vec<usize> = (0..tree.nodes.len())
            .filter(|&i| tree.nodes[i].parent == Some(step_span))
            .collect();
        assert_eq!(calls.len(), 1, "{step} makes one call: {:?}", names(tree));
        let call = &tree.nodes[calls[0]];
        assert_eq!(
            (call.span.service.as_str(), call.span.name.as_str()),
            ("order", format!("POST {path}").as_str()),
            "{step}'s call"
        );
        let served: Vec<&str> = tree
            .nodes
            .iter()
            .filter(|n| n.parent == Some(calls[0]))
            .map(|n| n.span.service.as_str())
            .collect();
        assert_eq!(
            served,
            [participant],
            "{participant}'s server span continues {step}'s call"
        );
    }
    assert!(
        tree.nodes[find(tree, "order", "schedule_shipping")]
            .span
            .error,
        "the refused step is marked failed"
    );
    assert_eq!(
        system.balances("o-traced").unwrap().order_status,
        OrderStatus::Cancelled
    );
    drop(servers);
    telemetry.shutdown().await.unwrap();
}
