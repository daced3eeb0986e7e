//! The collector under bad input: every case a clear problem+json 4xx or a counted drop in
//! OTLP's `partial_success`, never a crash, never a 5xx; and its query API.

mod support;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use support::{collector, keep_all, next_decision};
use trace_context_core::{CollectorConfig, SpanId, SpanRecord, TraceId};

const PROTOBUF: &str = "application/x-protobuf";

fn span(trace: u8, id: u64, parent: Option<u64>) -> SpanRecord {
    SpanRecord {
        trace_id: TraceId([trace; 16]),
        span_id: SpanId(id.to_be_bytes()),
        parent: parent.map(|p| SpanId(p.to_be_bytes())),
        service: "svc".into(),
        name: format!("span {id}"),
        start_ns: 1_000_000_000 + id,
        end_ns: 1_000_000_000 + id + 1_000,
        error: false,
    }
}

fn body(spans: &[SpanRecord]) -> Vec<u8> {
    lab_tracing::otlp::request("svc", spans).encode_to_vec()
}

async fn post(url: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}/v1/traces"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("the collector answers")
}

async fn problem(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status, "the status");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "a problem"
    );
    let problem: serde_json::Value = response.json().await.expect("JSON");
    problem["detail"].as_str().expect("a detail").to_owned()
}

async fn partial(response: reqwest::Response) -> (i64, String) {
    assert_eq!(response.status(), 200, "an OTLP answer");
    let answer = ExportTraceServiceResponse::decode(response.bytes().await.expect("a body"))
        .expect("OTLP protobuf");
    answer
        .partial_success
        .map(|p| (p.rejected_spans, p.error_message))
        .unwrap_or_default()
}

#[tokio::test]
async fn a_truncated_protobuf_is_a_400_problem() {
    let c = collector(keep_all(100)).await;
    let mut bytes = body(&[span(1, 1, None), span(1, 2, Some(1))]);
    bytes.truncate(bytes.len() - 7);
    let detail = problem(post(&c.url, PROTOBUF, bytes).await, 400).await;
    assert!(
        detail.contains("protobuf"),
        "the detail says what was wrong: {detail}"
    );
    assert_eq!(
        c.handle.store.span_count().expect("the store"),
        0,
        "nothing half-written"
    );
}

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    let c = collector(keep_all(100)).await;
    let detail = problem(
        post(
            &c.url,
            "application/json",
            b"{\"resourceSpans\": [".to_vec(),
        )
        .await,
        400,
    )
    .await;
    assert!(detail.contains("JSON"), "{detail}");
}

#[tokio::test]
async fn a_wrong_content_type_is_a_415_problem() {
    let c = collector(keep_all(100)).await;
    let detail = problem(
        post(&c.url, "text/plain", body(&[span(1, 1, None)])).await,
        415,
    )
    .await;
    assert!(
        detail.contains("application/x-protobuf"),
        "the detail names what is accepted: {detail}"
    );
}

#[tokio::test]
async fn a_10_mb_batch_is_a_413_problem() {
    let c = collector(keep_all(100)).await;
    let detail = problem(
        post(&c.url, PROTOBUF, vec![0u8; 10 * 1024 * 1024]).await,
        413,
    )
    .await;
    assert!(detail.contains("smaller batches"), "{detail}");
}

#[tokio::test]
async fn spans_with_ids_of_the_wrong_length_are_rejected_and_counted() {
    let c = collector(keep_all(100)).await;
    let mut request = lab_tracing::otlp::request("svc", &[span(1, 1, None), span(1, 2, Some(1))]);
    request.resource_spans[0].scope_spans[0].spans[1].span_id = vec![1, 2, 3];
    let (rejected, why) = partial(post(&c.url, PROTOBUF, request.encode_to_vec()).await).await;
    assert_eq!(rejected, 1, "one span refused, the other kept");
    assert!(why.contains("8"), "{why}");
    assert_eq!(c.handle.store.span_count().expect("the store"), 1);
}

#[tokio::test]
async fn a_hundred_thousand_spans_of_one_trace_stay_bounded() {
    let c = collector(CollectorConfig {
        max_spans_per_trace: 10_000,
        ..keep_all(60_000)
    })
    .await;
    let mut rejected = 0;
    for batch in 0..10u64 {
        let spans: Vec<_> = (0..10_000u64)
            .map(|i| span(1, batch * 10_000 + i + 1, None))
            .collect();
        rejected += partial(post(&c.url, PROTOBUF, body(&spans)).await).await.0;
    }
    assert_eq!(
        rejected, 90_000,
        "past the per-trace limit every span is a counted drop"
    );
    assert_eq!(
        c.handle.store.span_count().expect("the store"),
        10_000,
        "only the held spans are stored"
    );
    let stats = c.handle.stats().await.expect("stats");
    assert_eq!(
        (stats.spans_accepted, stats.spans_dropped),
        (10_000, 90_000)
    );
}

#[tokio::test]
async fn spans_for_an_already_decided_trace_are_a_counted_drop() {
    let c = collector(keep_all(50)).await;
    let mut decisions = c.handle.decisions();
    assert_eq!(
        partial(post(&c.url, PROTOBUF, body(&[span(1, 1, None)])).await)
            .await
            .0,
        0
    );
    let decision = next_decision(&mut decisions).await;
    assert_eq!(decision.trace_id, TraceId([1; 16]));
    let (rejected, why) = partial(post(&c.url, PROTOBUF, body(&[span(1, 2, Some(1))])).await).await;
    assert_eq!(rejected, 1, "the late span is dropped");
    assert!(
        why.contains("AlreadyDecided"),
        "and the answer says why: {why}"
    );
}

async fn get(url: &str, path: impl AsRef<str>) -> reqwest::Response {
    reqwest::get(format!("{url}{}", path.as_ref()))
        .await
        .expect("an answer")
}

#[tokio::test]
async fn the_query_api_finds_kept_traces_and_refuses_bad_ids() {
    let c = collector(keep_all(50)).await;
    let mut decisions = c.handle.decisions();
    let mut failing = span(2, 1, None);
    failing.error = true;
    failing.end_ns = failing.start_ns + 80_000_000;
    post(&c.url, PROTOBUF, body(&[span(1, 1, None)])).await;
    post(&c.url, PROTOBUF, body(&[failing])).await;
    next_decision(&mut decisions).await;
    next_decision(&mut decisions).await;
    let all: Vec<lab_tracing::store::TraceSummary> = get(&c.url, "/api/traces")
        .await
        .json()
        .await
        .expect("a list");
    assert_eq!(all.len(), 2);
    let errors: Vec<lab_tracing::store::TraceSummary> = get(&c.url, "/api/traces?error=true")
        .await
        .json()
        .await
        .expect("a list");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].trace_id, TraceId([2; 16]).to_string());
    let slow: Vec<lab_tracing::store::TraceSummary> =
        get(&c.url, "/api/traces?min_duration_ms=50&service=svc")
            .await
            .json()
            .await
            .expect("a list");
    assert_eq!(slow.len(), 1, "only the 80 ms trace is at least 50 ms");
    let other: Vec<lab_tracing::store::TraceSummary> = get(&c.url, "/api/traces?service=nobody")
        .await
        .json()
        .await
        .expect("a list");
    assert!(other.is_empty());
    let page = get(&c.url, format!("/traces/{}", TraceId([2; 16])))
        .await
        .text()
        .await
        .expect("HTML");
    assert!(
        page.contains("span 1") && page.contains("critical"),
        "the waterfall page draws the span"
    );
    problem(get(&c.url, "/api/traces/NOT-AN-ID").await, 400).await;
    problem(
        get(&c.url, format!("/api/traces/{}", TraceId([9; 16]))).await,
        404,
    )
    .await;
    problem(get(&c.url, "/api/traces?min_duration_ms=abc").await, 400).await;
    problem(get(&c.url, "/nowhere").await, 404).await;
}
