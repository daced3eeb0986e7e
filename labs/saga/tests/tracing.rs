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
use lab_saga::bus::{Bus, Message, NatsSettings};
use lab_saga::choreography::{self, Choreography};
use lab_saga::system::{Options, Place, Seed, System, order_line};
use lab_saga::telemetry::{SERVICES, SagaTelemetry};
use lab_telemetry::messages::TraceHeaders;
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

/// NATS JetStream when `NATS_URL` is set (subjects and consumers of this run's own), the
/// in-process bus otherwise.
async fn bus(test: &str) -> Bus {
    match std::env::var("NATS_URL") {
        Ok(url) if !url.is_empty() => {
            let run = format!("{test}-{}-{}", std::process::id(), run_id());
            println!("{test}: using NATS JetStream at {url}");
            Bus::nats(&NatsSettings::lab(&url), &run)
                .await
                .expect("NATS_URL is set but NATS is not reachable")
        }
        _ => {
            println!("{test}: using the in-process bus (set NATS_URL to use NATS JetStream)");
            Bus::in_process()
        }
    }
}

fn run_id() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos())
}

/// The four services choreographed on `bus`, traced to `collector`.
async fn choreographed(collector: &Collector, bus: Bus) -> (System, Choreography, SagaTelemetry) {
    let telemetry = SagaTelemetry::start(&collector.url, &SERVICES)
        .await
        .unwrap();
    let system = System::start(
        &Place::Memory,
        Some(&no_courier()),
        Options {
            extra_schema: choreography::SCHEMA.to_owned(),
            telemetry: Some(telemetry.clone()),
            ..Options::default()
        },
    )
    .unwrap();
    let choreography = Choreography::start(&system, bus, None).await.unwrap();
    (system, choreography, telemetry)
}

/// Enough 5 ms checks for a slow machine: a saga that has not ended by then never will.
const MAX_CHECKS: u32 = 6_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compensated_choreographed_saga_is_one_trace_from_the_order_to_the_last_compensation() {
    let collector = collector().await;
    let mut decisions = collector.handle.decisions();
    let (system, choreography, telemetry) =
        choreographed(&collector, bus("choreography-traced").await).await;
    choreography.place(&order_line("c-traced", 1)).unwrap();
    assert_eq!(
        choreography.settle("c-traced", MAX_CHECKS).await,
        OrderStatus::Cancelled,
        "no courier: the saga compensates and the order is cancelled"
    );
    assert!(system.balances("c-traced").unwrap().is_consistent());
    telemetry.flush().await.unwrap();
    let decision = next_decision(&mut decisions).await;
    one_trace(&collector, &decision).await;

    let tree = &decision.tree;
    let mut parent = find(tree, "order", "place order");
    assert_eq!(
        tree.nodes[parent].parent, None,
        "the order's creation is the root"
    );
    // Each event: published by the service that wrote it, in the span of that write;
    // processed by the service that reacts, under the publish span.
    for (publisher, event, consumer) in [
        ("order", "OrderCreated", "payment"),
        ("payment", "PaymentReserved", "inventory"),
        ("inventory", "StockReserved", "shipping"),
        ("shipping", "ShippingFailed", "inventory"),
        ("inventory", "StockReleased", "payment"),
        ("payment", "PaymentRefunded", "order"),
    ] {
        let published = find(tree, publisher, &format!("publish {event}"));
        assert_eq!(
            tree.nodes[published].parent,
            Some(parent),
            "{publisher} publishes {event} in the span of the work that wrote it"
        );
        let processed = find(tree, consumer, &format!("process {event}"));
        assert_eq!(
            tree.nodes[processed].parent,
            Some(published),
            "{consumer} processes {event} under its publish span"
        );
        parent = processed;
    }
    assert_eq!(tree.nodes.len(), 13, "{:?}", names(tree));
    drop(choreography);
    telemetry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_an_invalid_traceparent_is_processed_in_a_new_trace() {
    let collector = collector().await;
    let mut decisions = collector.handle.decisions();
    let (system, choreography, telemetry) =
        choreographed(&collector, bus("invalid-traceparent").await).await;
    // Placed by hand (no outbox row, so no trace of the order's creation), and a message
    // whose traceparent has uppercase hex, which the Recommendation forbids.
    let line = order_line("c-invalid", 1);
    system
        .order
        .db()
        .lock()
        .execute(
            "INSERT INTO orders (id, customer, sku, quantity, amount, status)
             VALUES (?1, ?2, ?3, ?4, ?5, 'PENDING')",
            rusqlite::params![
                line.order_id,
                line.customer,
                line.sku,
                line.quantity,
                line.amount
            ],
        )
        .unwrap();
    let broken = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01";
    choreography
        .bus()
        .publish(Message {
            id: "c-invalid:PaymentFailed".to_owned(),
            event: "PaymentFailed".to_owned(),
            payload: serde_json::to_vec(&line).unwrap(),
            trace: TraceHeaders::stored(Some(broken.to_owned()), Some("lab=1".to_owned())),
        })
        .await
        .unwrap();
    assert_eq!(
        choreography.settle("c-invalid", MAX_CHECKS).await,
        OrderStatus::Cancelled
    );
    telemetry.flush().await.unwrap();
    let decision = next_decision(&mut decisions).await;
    let tree = &decision.tree;
    let processed = find(tree, "order", "process PaymentFailed");
    assert_eq!(
        tree.nodes[processed].parent, None,
        "an invalid traceparent is not continued: the span starts a trace"
    );
    assert_ne!(
        decision.trace_id.to_string(),
        broken.to_lowercase()[3..35],
        "not the broken header's trace id, read leniently"
    );
    let view = collector
        .handle
        .store
        .trace(&decision.trace_id.to_string())
        .unwrap()
        .expect("the trace is kept");
    let span = view
        .spans
        .iter()
        .find(|s| s.name == "process PaymentFailed")
        .unwrap();
    assert!(
        span.attributes.iter().any(|(k, _)| k == "trace.restarted"),
        "the span says why the trace restarted: {:?}",
        span.attributes
    );
    drop(choreography);
    telemetry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_from_before_trace_context_gains_its_columns_and_its_rows_still_go_out() {
    let dir = std::env::temp_dir().join(format!("saga-tracing-migrate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The order database as the lab wrote it before: an outbox without trace context, and
    // an event still waiting to be published.
    let line = order_line("c-old", 1);
    {
        let old = rusqlite::Connection::open(dir.join("order.db")).unwrap();
        old.execute_batch(
            "CREATE TABLE outbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL UNIQUE,
                event TEXT NOT NULL, payload TEXT NOT NULL, published INTEGER NOT NULL DEFAULT 0
             );",
        )
        .unwrap();
        old.execute(
            "INSERT INTO outbox (message_id, event, payload) VALUES ('c-old:OrderCreated', 'OrderCreated', ?1)",
            [serde_json::to_string(&line).unwrap()],
        )
        .unwrap();
    }
    let system = System::start(
        &Place::Dir(dir.clone()),
        Some(&Seed::default()),
        Options {
            extra_schema: choreography::SCHEMA.to_owned(),
            ..Options::default()
        },
    )
    .unwrap();
    let columns: Vec<String> = system
        .order
        .db()
        .lock()
        .prepare("SELECT name FROM pragma_table_info('outbox')")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        columns.iter().any(|c| c == "traceparent") && columns.iter().any(|c| c == "tracestate"),
        "the old outbox gains the trace context columns: {columns:?}"
    );
    system
        .order
        .db()
        .lock()
        .execute(
            "INSERT INTO orders (id, customer, sku, quantity, amount, status)
             VALUES (?1, ?2, ?3, ?4, ?5, 'PENDING')",
            rusqlite::params![
                line.order_id,
                line.customer,
                line.sku,
                line.quantity,
                line.amount
            ],
        )
        .unwrap();
    let choreography = Choreography::start(&system, Bus::in_process(), None)
        .await
        .unwrap();
    assert_eq!(
        choreography.settle("c-old", MAX_CHECKS).await,
        OrderStatus::Approved,
        "the old row, without a context, is relayed and the saga runs"
    );
    drop(choreography);
    drop(system);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_placed_over_http_continues_the_callers_trace_through_the_choreography() {
    let collector = collector().await;
    let mut decisions = collector.handle.decisions();
    let (system, choreography, telemetry) =
        choreographed(&collector, bus("choreography-http").await).await;
    let choreography = Arc::new(choreography);
    let router = lab_saga::telemetry::instrument(
        system.order.telemetry(),
        choreography::order_router(Arc::clone(&choreography)),
    );
    let server = lab_runtime::spawn(router, ([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let caller_trace = "0af7651916cd43dd8448eb211c80319c";
    let response = reqwest::Client::new()
        .post(format!("http://{}/orders", server.addr))
        .header(
            "traceparent",
            format!("00-{caller_trace}-b7ad6b7169203331-01"),
        )
        .json(&order_line("c-http", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(
        choreography.settle("c-http", MAX_CHECKS).await,
        OrderStatus::Cancelled
    );
    telemetry.flush().await.unwrap();
    let decision = next_decision(&mut decisions).await;
    assert_eq!(
        decision.trace_id.to_string(),
        caller_trace,
        "the saga continues the caller's trace"
    );
    let tree = &decision.tree;
    let request = find(tree, "order", "POST /orders");
    assert!(
        tree.nodes[request].orphan,
        "the order service's server span is the caller's child (the caller sent no span)"
    );
    let placed = find(tree, "order", "place order");
    assert_eq!(
        tree.nodes[placed].parent,
        Some(request),
        "the order's creation is inside the request"
    );
    let published = find(tree, "order", "publish OrderCreated");
    assert_eq!(tree.nodes[published].parent, Some(placed));
    let last = find(tree, "order", "process PaymentRefunded");
    assert_eq!(
        tree.nodes[last].span.trace_id, tree.nodes[request].span.trace_id,
        "down to the last compensation"
    );
    server.stop().await;
    telemetry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redriven_dead_letter_continues_its_messages_trace() {
    let collector = collector().await;
    let mut decisions = collector.handle.decisions();
    let (_system, choreography, telemetry) =
        choreographed(&collector, bus("dead-letter-traced").await).await;
    // Not an order line: payment parks it at once, and a re-drive fails the same way.
    let producer = "b7ad6b7169203331";
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    choreography
        .bus()
        .publish(Message {
            id: "garbage-traced".to_owned(),
            event: "OrderCreated".to_owned(),
            payload: b"not json".to_vec(),
            trace: TraceHeaders::stored(Some(format!("00-{trace_id}-{producer}-01")), None),
        })
        .await
        .unwrap();
    let parked = lab_test_support::wait_until_async("the dead letter", 6_000, || async {
        choreography
            .dead_letters()
            .into_iter()
            .find(|(_, id, _)| id == "garbage-traced")
    })
    .await;
    assert_eq!(parked.0, "payment");
    assert!(
        choreography
            .redrive("payment", "garbage-traced")
            .await
            .is_err(),
        "still not an order line"
    );
    telemetry.flush().await.unwrap();
    let decision = next_decision(&mut decisions).await;
    assert_eq!(decision.trace_id.to_string(), trace_id);
    let processed: Vec<_> = decision
        .tree
        .nodes
        .iter()
        .filter(|n| n.span.service == "payment" && n.span.name == "process OrderCreated")
        .collect();
    assert_eq!(
        processed.len(),
        2,
        "the delivery and the re-drive: {:?}",
        names(&decision.tree)
    );
    for node in processed {
        assert_eq!(
            node.span.parent.map(|id| id.to_string()).as_deref(),
            Some(producer),
            "both continue the message's producer"
        );
    }
    drop(choreography);
    telemetry.shutdown().await.unwrap();
}
