//! One request through the guide's flow, gateway → order → user ∥ product, each service
//! exporting with the OpenTelemetry SDK over OTLP/HTTP, arrives at the collector as one
//! trace with the right parent links and the parallel calls overlapping.

mod support;

use lab_tracing::flow::{Flow, FlowConfig};
use lab_tracing::telemetry::Wire;
use lab_tracing::waterfall::TraceView;
use support::{collector, keep_all, next_decision};

async fn one_request(wire: Wire) -> (trace_context_core::Decision, TraceView) {
    let collector = collector(keep_all(5_000)).await;
    let mut decisions = collector.handle.decisions();
    let flow = Flow::start(
        &collector.url,
        // Latencies far apart (the guide's 20 and 50 ms, times ten), so a loaded machine's
        // scheduling cannot reorder the two calls' ends: the assertions are about structure.
        FlowConfig {
            wire,
            user_ms: 200,
            product_ms: 600,
            ..FlowConfig::default()
        },
    )
    .await
    .expect("the flow starts");
    let response = reqwest::get(format!("{}/order-details/123", flow.gateway_url))
        .await
        .expect("the gateway answers");
    assert_eq!(response.status(), 200, "the request succeeds");
    flow.flush().await.expect("the spans are exported");
    let decision = next_decision(&mut decisions).await;
    let view: TraceView = reqwest::get(format!(
        "{}/api/traces/{}",
        collector.url, decision.trace_id
    ))
    .await
    .expect("the query API answers")
    .json()
    .await
    .expect("a trace view");
    flow.stop().await;
    ((*decision).clone(), view)
}

fn check(decision: &trace_context_core::Decision, view: &TraceView) {
    let tree = &decision.tree;
    let names: Vec<String> = tree
        .nodes
        .iter()
        .map(|n| format!("{} {}", n.span.service, n.span.name))
        .collect();
    assert!(tree.nodes.len() >= 5, "at least five spans: {names:?}");
    assert_eq!(tree.orphans(), 0, "every parent arrived: {names:?}");
    assert_eq!(
        tree.nodes.iter().filter(|n| n.parent.is_none()).count(),
        1,
        "one root: {names:?}"
    );
    let find = |service: &str, name: &str| {
        tree.nodes
            .iter()
            .position(|n| n.span.service == service && n.span.name == name)
            .unwrap_or_else(|| panic!("no span {service} {name} in {names:?}"))
    };
    let gateway = find("gateway", "GET /order-details/{id}");
    let to_order = find("gateway", "GET /orders/123");
    let order = find("order", "GET /orders/{id}");
    let to_user = find("order", "GET /users/456");
    let to_product = find("order", "GET /products/789");
    let user = find("user", "GET /users/{id}");
    let product = find("product", "GET /products/{id}");
    assert_eq!(
        tree.nodes[gateway].parent, None,
        "the gateway's server span is the root"
    );
    assert_eq!(
        tree.nodes[to_order].parent,
        Some(gateway),
        "the gateway's call is inside its request"
    );
    assert_eq!(
        tree.nodes[order].parent,
        Some(to_order),
        "the order service continues the gateway's call"
    );
    assert_eq!(tree.nodes[to_user].parent, Some(order));
    assert_eq!(tree.nodes[to_product].parent, Some(order));
    assert_eq!(
        tree.nodes[user].parent,
        Some(to_user),
        "the user service continues the order's call"
    );
    assert_eq!(
        tree.nodes[product].parent,
        Some(to_product),
        "the product service continues the order's call"
    );
    let (u, p) = (&tree.nodes[user].span, &tree.nodes[product].span);
    assert!(
        u.start_ns < p.end_ns && p.start_ns < u.end_ns,
        "the parallel calls overlap: user {u:?} product {p:?}"
    );
    assert!(
        p.duration_ns() >= 600_000_000 && u.duration_ns() >= 200_000_000,
        "each leaf takes at least its configured latency"
    );
    assert!(
        decision.critical_path.contains(&product),
        "the slower product call is on the critical path"
    );
    let server = view
        .spans
        .iter()
        .find(|s| s.service == "order" && s.name == "GET /orders/{id}")
        .expect("the order span");
    for (key, value) in [
        ("http.request.method", "GET"),
        ("http.route", "/orders/{id}"),
        ("http.response.status_code", "200"),
        ("server.address", "127.0.0.1"),
    ] {
        assert!(
            server
                .attributes
                .iter()
                .any(|(k, v)| k == key && v == value),
            "semantic-convention attribute {key}={value} in {:?}",
            server.attributes
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_arrives_as_one_trace_with_the_right_parents_and_overlapping_calls() {
    let (decision, view) = one_request(Wire::Protobuf).await;
    check(&decision, &view);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_trace_arrives_over_otlp_json() {
    let (decision, view) = one_request(Wire::Json).await;
    check(&decision, &view);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leaf_services_behaviour_changes_at_runtime() {
    let collector = collector(keep_all(5_000)).await;
    let flow = Flow::start(&collector.url, FlowConfig::default())
        .await
        .expect("the flow starts");
    let product = &flow
        .urls
        .iter()
        .find(|(name, _)| *name == "product")
        .expect("a product service")
        .1;
    let client = reqwest::Client::new();
    let answer: lab_tracing::flow::BehaviourUpdate = client
        .put(format!("{product}/admin/behaviour"))
        .json(&serde_json::json!({ "latency_ms": 5, "failing": true }))
        .send()
        .await
        .expect("the product service answers")
        .json()
        .await
        .expect("its behaviour");
    assert_eq!(
        (answer.latency_ms, answer.failing),
        (Some(5), Some(true)),
        "the update is applied"
    );
    let response = client
        .get(format!("{}/order-details/123", flow.gateway_url))
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(
        response.status(),
        502,
        "a failing product service fails the order, and the gateway says so"
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    flow.stop().await;
}
