//! The trace the book draws (`book/src/challenges/tracing-trace.json`) is captured from the lab
//! and regenerated here: the guide's flow (gateway → order → user ∥ product) runs for real, with
//! the demo's seed, through the OpenTelemetry SDK's exporter into the lab's collector, which
//! gives the trace's ids, parents, services, span names and attributes.
//!
//! A real run's timings vary, so they are not what is compared. Instead the captured spans are
//! laid on a fixed, simulated timeline built from the flow's default latencies (user 20 ms,
//! product 50 ms) and half a millisecond per hop, siblings in the order the run started them,
//! and that trace goes through the collector's core (`trace_context_core::Collector`, with the
//! demo's sampling policy), which decides it and finds its self times and critical path. The
//! ephemeral ports in the attributes are replaced by fixed ones (gateway 8080, order 8081,
//! user 8082, product 8083). What remains is deterministic, so the test compares it with the
//! snapshot exactly: a span more or less, a changed parent, name, id or attribute fails it.
//!
//! `UPDATE_SNAPSHOTS=1` (or insta's `INSTA_UPDATE=always`, which rewrites the lab's other
//! snapshots) writes the new trace instead of comparing.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;

use lab_runtime::Millis;
use lab_tracing::demo::{SEED, demo_config};
use lab_tracing::flow::{Flow, FlowConfig};
use lab_tracing::waterfall::{SpanView, TraceView};
use support::{collector, keep_all, next_decision};
use trace_context_core::ids::lower_hex;
use trace_context_core::{Collector, Input, Machine, Output, SpanId, SpanRecord, TraceId};

/// Half a millisecond for a call's way there, and as much for its way back.
const HOP_NS: u64 = 500_000;
/// Calls a span makes at once start this far apart, in the order the run started them.
const STAGGER_NS: u64 = 100_000;
/// The port each service shows in the book, in place of the run's ephemeral one.
const BOOK_PORTS: [(&str, &str); 4] = [
    ("gateway", "8080"),
    ("order", "8081"),
    ("user", "8082"),
    ("product", "8083"),
];

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../book/src/challenges/tracing-trace.json")
}

fn updating() -> bool {
    std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1")
        || std::env::var("INSTA_UPDATE").is_ok_and(|v| v == "always")
}

/// One request through the flow with the demo's seed, as the collector's API returns it.
async fn captured() -> (TraceView, Vec<(&'static str, String)>) {
    let collector = collector(keep_all(1_000)).await;
    let mut decisions = collector.handle.decisions();
    let flow = Flow::start(
        &collector.url,
        FlowConfig {
            seed: Some(SEED),
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
    let urls = flow.urls.clone();
    flow.stop().await;
    (view, urls)
}

fn span_id(hex: &str) -> SpanId {
    SpanId(lower_hex(hex.as_bytes()).unwrap_or_else(|| panic!("a span id, not {hex:?}")))
}

/// Start and end of every span on the simulated timeline: a span without children takes its
/// service's latency; one with children starts them a hop after its own start and ends a hop
/// after the last of them.
fn timeline(spans: &[SpanView], latency_ms: &HashMap<&str, u64>) -> HashMap<String, (u64, u64)> {
    fn place(
        index: usize,
        start: u64,
        spans: &[SpanView],
        latency_ms: &HashMap<&str, u64>,
        out: &mut HashMap<String, (u64, u64)>,
    ) -> u64 {
        let span = &spans[index];
        let mut children: Vec<usize> = (0..spans.len())
            .filter(|&i| spans[i].parent.as_deref() == Some(span.span_id.as_str()))
            .collect();
        children.sort_by(|&a, &b| spans[a].offset_ms.total_cmp(&spans[b].offset_ms));
        let end = if children.is_empty() {
            start + latency_ms.get(span.service.as_str()).copied().unwrap_or(0) * 1_000_000
        } else {
            children
                .iter()
                .enumerate()
                .map(|(rank, &child)| {
                    let from = start + HOP_NS + rank as u64 * STAGGER_NS;
                    place(child, from, spans, latency_ms, out)
                })
                .max()
                .unwrap_or(start)
                + HOP_NS
        };
        out.insert(span.span_id.clone(), (start, end));
        end
    }
    let mut out = HashMap::new();
    for root in (0..spans.len()).filter(|&i| spans[i].parent.is_none()) {
        place(root, 0, spans, latency_ms, &mut out);
    }
    out
}

/// The captured trace on the simulated timeline, decided by the collector's core.
fn book_trace(view: &TraceView, urls: &[(&'static str, String)]) -> TraceView {
    let defaults = FlowConfig::default();
    let latency_ms = HashMap::from([("user", defaults.user_ms), ("product", defaults.product_ms)]);
    let times = timeline(&view.spans, &latency_ms);
    let trace_id = TraceId(
        lower_hex(view.trace_id.as_bytes()).unwrap_or_else(|| panic!("a trace id: {view:?}")),
    );
    let mut core = Collector::new(demo_config());
    for span in &view.spans {
        let (start_ns, end_ns) = times[&span.span_id];
        core.handle_input(
            Millis(0),
            Input::Span(SpanRecord {
                trace_id,
                span_id: span_id(&span.span_id),
                parent: span.parent.as_deref().map(span_id),
                service: span.service.clone(),
                name: span.name.clone(),
                start_ns,
                end_ns,
                error: span.error,
            }),
        )
        .expect("the core takes the span");
    }
    core.handle_timeout(Millis(60_000));
    let decision = std::iter::from_fn(|| core.poll_output())
        .find_map(|output| match output {
            Output::Decided(decision) => Some(decision),
            Output::Dropped { .. } => None,
        })
        .expect("the core decides the trace");
    let ports: Vec<(String, &str)> = urls
        .iter()
        .filter_map(|(service, url)| {
            let port = url.rsplit_once(':')?.1.to_owned();
            let book = BOOK_PORTS.iter().find(|(s, _)| s == service)?.1;
            Some((port, book))
        })
        .collect();
    let attributes: Vec<(String, Vec<(String, String)>)> = view
        .spans
        .iter()
        .map(|span| {
            let attributes = span
                .attributes
                .iter()
                .map(|(key, value)| {
                    let value = ports.iter().fold(value.clone(), |value, (port, book)| {
                        value.replace(&format!(":{port}"), &format!(":{book}"))
                    });
                    let value = match ports.iter().find(|(port, _)| *port == value) {
                        Some((_, book)) => (*book).to_owned(),
                        None => value,
                    };
                    (key.clone(), value)
                })
                .collect();
            (span.span_id.clone(), attributes)
        })
        .collect();
    TraceView::of(&decision, &attributes)
}

/// The first line where two texts differ, for a failure a person can read.
fn first_difference(expected: &str, actual: &str) -> String {
    let (mut e, mut a) = (expected.lines(), actual.lines());
    for line in 1.. {
        match (e.next(), a.next()) {
            (None, None) => break,
            (x, y) if x == y => {}
            (x, y) => {
                return format!(
                    "line {line}: the snapshot has {:?}, the lab gives {:?}",
                    x.unwrap_or("(the end)"),
                    y.unwrap_or("(the end)")
                );
            }
        }
    }
    "no line differs".to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_books_trace_snapshot_is_the_trace_the_lab_gives() {
    let (view, urls) = captured().await;
    let trace = book_trace(&view, &urls);
    let rows: Vec<String> = trace
        .spans
        .iter()
        .map(|s| {
            format!(
                "{}{} {}{}",
                "  ".repeat(s.depth),
                s.service,
                s.name,
                if s.critical { " ◆" } else { "" }
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            "gateway GET /order-details/{id} ◆",
            "  gateway GET /orders/123 ◆",
            "    order GET /orders/{id} ◆",
            "      order GET /users/456",
            "        user GET /users/{id}",
            "      order GET /products/789 ◆",
            "        product GET /products/{id} ◆",
        ],
        "the guide's flow, the product call on the critical path"
    );
    let product = trace
        .spans
        .iter()
        .find(|s| s.service == "product")
        .expect("a product span");
    assert!(
        (product.duration_ms - 50.0).abs() < 1e-9,
        "the product service takes the flow's default 50 ms: {product:?}"
    );
    let json = serde_json::to_string_pretty(&trace).expect("JSON") + "\n";
    let path = snapshot_path();
    if updating() {
        std::fs::write(&path, &json).expect("the snapshot is written");
        return;
    }
    let snapshot = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "no snapshot at {} ({e}); write it with \
             `UPDATE_SNAPSHOTS=1 cargo test -p lab-tracing --test book_trace`",
            path.display()
        )
    });
    assert!(
        snapshot == json,
        "the book's trace is not the lab's: {}\nIf the change is meant, rewrite it with \
         `UPDATE_SNAPSHOTS=1 cargo test -p lab-tracing --test book_trace` and read the diff.",
        first_difference(&snapshot, &json)
    );
}
