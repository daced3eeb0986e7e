//! The store's HTTP API through its router (no socket): appends with expected versions,
//! conflicts, retries, reads, time travel, the live subscription, and hostile input, which
//! gets a 4xx problem+json and writes nothing.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use event_sourcing_core::SnapshotPolicy;
use event_sourcing_store::{EventStore, InMemory};
use http_body_util::BodyExt;
use lab_event_sourcing::{AppState, router};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Api {
    store: Arc<InMemory>,
    router: Router,
}

fn api() -> Api {
    let store = Arc::new(InMemory::new());
    let router = router(AppState {
        store: Arc::clone(&store) as Arc<dyn EventStore>,
        snapshots: SnapshotPolicy { every: 3 },
    });
    Api { store, router }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

impl Api {
    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn post(&self, path: &str, body: impl Into<Body>) -> Answer {
        self.send(
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.into())
                .unwrap(),
        )
        .await
    }

    async fn append(&self, stream: &str, expected: Value, events: Value) -> Answer {
        let body = json!({ "expected_version": expected, "events": events }).to_string();
        self.post(&format!("/streams/{stream}"), body).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    async fn head(&self) -> usize {
        self.store.read_all(0, 100_000).await.unwrap().len()
    }
}

fn created(id: &str) -> Value {
    json!({ "event_id": id, "type": "OrderCreated", "data": { "order_id": "42", "customer": "ada" } })
}

fn added(id: &str, sku: &str) -> Value {
    json!({ "event_id": id, "type": "ItemAdded", "data": { "sku": sku, "quantity": 2, "unit_price_cents": 150 } })
}

fn assert_problem(answer: &Answer, status: StatusCode, detail_has: &str) {
    assert_eq!(answer.status, status, "{:?}", answer.body);
    assert_eq!(
        answer.headers[header::CONTENT_TYPE],
        "application/problem+json",
        "every refusal is problem+json"
    );
    let detail = answer.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(detail_has),
        "the detail {detail:?} should say {detail_has:?}"
    );
}

#[tokio::test]
async fn an_append_answers_201_with_the_new_version_and_position() {
    let api = api();
    let answer = api
        .append(
            "order-42",
            json!("no-stream"),
            json!([created("e1"), added("e2", "A")]),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.body["version"], 2);
    assert_eq!(answer.body["position"], 2);
    let next = api
        .append("order-42", json!(2), json!([added("e3", "B")]))
        .await;
    assert_eq!(next.status, StatusCode::CREATED);
    assert_eq!(
        (
            next.body["version"].as_u64(),
            next.body["position"].as_u64()
        ),
        (Some(3), Some(3))
    );
}

#[tokio::test]
async fn a_conflict_answers_409_naming_the_current_version_and_writes_nothing() {
    let api = api();
    api.append(
        "order-42",
        json!("no-stream"),
        json!([created("e1"), added("e2", "A")]),
    )
    .await;
    let answer = api
        .append("order-42", json!(1), json!([added("e3", "B")]))
        .await;
    assert_problem(&answer, StatusCode::CONFLICT, "stream is at version 2");
    assert_eq!(answer.headers["stream-version"], "2");
    let exists = api
        .append("order-9", json!("stream-exists"), json!([created("x")]))
        .await;
    assert_problem(&exists, StatusCode::CONFLICT, "at version 0");
    assert_eq!(api.head().await, 2, "nothing written");
}

#[tokio::test]
async fn a_retried_append_answers_200_and_is_not_written_twice() {
    let api = api();
    let events = json!([created("e1"), added("e2", "A")]);
    let first = api
        .append("order-42", json!("no-stream"), events.clone())
        .await;
    let retry = api.append("order-42", json!("no-stream"), events).await;
    assert_eq!(retry.status, StatusCode::OK, "{:?}", retry.body);
    assert_eq!(retry.body["already_appended"], true);
    assert_eq!(retry.body["position"], first.body["position"]);
    assert_eq!(api.head().await, 2);
}

#[tokio::test]
async fn commands_are_decided_against_the_order_and_refusals_are_422() {
    let api = api();
    let create = api
        .post(
            "/streams/order-42/commands",
            r#"{"type":"CreateOrder","order_id":"42","customer":"ada"}"#,
        )
        .await;
    assert_eq!(create.status, StatusCode::CREATED, "{:?}", create.body);
    let place = api
        .post("/streams/order-42/commands", r#"{"type":"PlaceOrder"}"#)
        .await;
    assert_problem(
        &place,
        StatusCode::UNPROCESSABLE_ENTITY,
        "without items cannot be placed",
    );
    let stale = api
        .send(
            Request::post("/streams/order-42/commands")
                .header("expected-version", "0")
                .body(Body::from(
                    r#"{"type":"AddItem","sku":"A","quantity":1,"unit_price_cents":5}"#,
                ))
                .unwrap(),
        )
        .await;
    assert_problem(&stale, StatusCode::CONFLICT, "stream is at version 1");
    assert_eq!(api.head().await, 1);
}

#[tokio::test]
async fn reads_time_travel_and_snapshots_agree() {
    let api = api();
    api.append(
        "order-42",
        json!("no-stream"),
        json!([
            created("e1"),
            added("e2", "A"),
            added("e3", "B"),
            added("e4", "C")
        ]),
    )
    .await;
    let stream = api.get("/streams/order-42?from=2&limit=2").await;
    assert_eq!(stream.status, StatusCode::OK);
    let versions: Vec<u64> = stream.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, vec![2, 3]);
    let at_two = api.get("/streams/order-42/state?version=2").await;
    assert_eq!(at_two.body["version"], 2);
    assert_eq!(
        at_two.body["total_cents"], 300,
        "one line of 2 × 150 at version 2"
    );
    let now = api.get("/streams/order-42/state").await;
    assert_eq!(
        (
            now.body["version"].as_u64(),
            now.body["current_version"].as_u64()
        ),
        (Some(4), Some(4))
    );
    assert_eq!(now.body["total_cents"], 900);
    assert_eq!(
        api.store
            .snapshot("order-42")
            .await
            .unwrap()
            .map(|s| s.version),
        Some(4),
        "an append crossing a multiple of 3 saved a snapshot"
    );
    let future = api.get("/streams/order-42/state?version=9").await;
    assert_problem(&future, StatusCode::BAD_REQUEST, "no version 9");
    let all = api.get("/all?after=3").await;
    assert_eq!(all.body["events"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_old_schema_is_upcast_on_read() {
    let api = api();
    let answer = api
        .append(
            "order-42",
            json!("no-stream"),
            json!([created("e1"), added("e2", "A"),
                   { "event_id": "e3", "type": "QuantityUpdated", "schema": 1, "data": { "product": "A", "qty": 5 } }]),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    let read = api.get("/streams/order-42?from=3").await;
    let event = &read.body["events"][0];
    assert_eq!(event["schema"], 2);
    assert_eq!(event["written_schema"], 1);
    assert_eq!(event["data"], json!({ "sku": "A", "quantity": 5 }));
}

#[tokio::test]
async fn the_subscription_streams_events_as_server_sent_events() {
    let api = api();
    api.append(
        "order-42",
        json!("no-stream"),
        json!([created("e1"), added("e2", "A")]),
    )
    .await;
    let response = api
        .router
        .clone()
        .oneshot(
            Request::get("/subscribe?after=1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body();
    let mut text = String::new();
    while !text.contains("live after 2") {
        let frame = body.frame().await.unwrap().unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(text.contains("id: 2"), "{text}");
    assert!(
        !text.contains("id: 1\n"),
        "position 1 is before the subscription's start: {text}"
    );
    api.append("order-42", json!(2), json!([added("e3", "B")]))
        .await;
    while !text.contains("id: 3") {
        let frame = body.frame().await.unwrap().unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(text.contains("event: ItemAdded"), "{text}");
}

// ANCHOR: hostile_input
#[tokio::test]
async fn hostile_input_gets_a_4xx_problem_and_writes_nothing() {
    let api = api();
    api.append("order-42", json!("no-stream"), json!([created("e1")]))
        .await;
    let cases: Vec<(&str, Answer, StatusCode, &str)> = vec![
        (
            "an unknown event type",
            api.append("order-42", json!(1), json!([{ "event_id": "x", "type": "OrderShipped", "data": {} }])).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown event type \"OrderShipped\"",
        ),
        (
            "an event that breaks the rules",
            api.append("order-42", json!(1), json!([{ "event_id": "x", "type": "ItemAdded", "data": { "sku": "A", "quantity": 0, "unit_price_cents": 1 } }])).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "quantity must be at least 1",
        ),
        (
            "a total that is not the lines' sum",
            api.append("order-42", json!(1), json!([added("y", "A"), { "event_id": "z", "type": "OrderPlaced", "data": { "total_cents": 1 } }])).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "not the sum of the lines",
        ),
        (
            "a malformed expected version",
            api.append("order-42", json!("latest"), json!([added("x", "A")])).await,
            StatusCode::BAD_REQUEST,
            "neither `any`",
        ),
        (
            "a negative expected version",
            api.append("order-42", json!(-1), json!([added("x", "A")])).await,
            StatusCode::BAD_REQUEST,
            "versions are 0 or more",
        ),
        (
            "a huge batch",
            api.append("order-42", json!(1), Value::Array((0..1_001).map(|n| added(&format!("h{n}"), &format!("S{n}"))).collect())).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "the limit is 1000",
        ),
        (
            "a 1 MB event",
            api.append("order-42", json!(1), json!([{ "event_id": "x", "type": "OrderCancelled", "data": { "reason": "x".repeat(1 << 20) } }])).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "the limit is 65536",
        ),
        (
            "a body over the limit",
            api.post("/streams/order-42", vec![b' '; 9 * 1024 * 1024]).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "the limit is",
        ),
        (
            "a non-UTF-8 stream name",
            api.post("/streams/order-%FF", json!({ "expected_version": "any", "events": [created("x")] }).to_string()).await,
            StatusCode::BAD_REQUEST,
            "not valid UTF-8",
        ),
        (
            "a stream name with a space",
            api.post("/streams/order%2042", json!({ "expected_version": "any", "events": [created("x")] }).to_string()).await,
            StatusCode::BAD_REQUEST,
            "is not allowed",
        ),
        (
            "a body that is not JSON",
            api.post("/streams/order-42", "{not json").await,
            StatusCode::BAD_REQUEST,
            "not JSON",
        ),
        (
            "an event without an id",
            api.append("order-42", json!(1), json!([{ "type": "ItemAdded", "data": {} }])).await,
            StatusCode::BAD_REQUEST,
            "event_id",
        ),
        (
            "a schema from the future",
            api.append("order-42", json!(1), json!([{ "event_id": "x", "type": "QuantityUpdated", "schema": 9, "data": {} }])).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "no schema 9",
        ),
        (
            "an empty batch",
            api.append("order-42", json!(1), json!([])).await,
            StatusCode::BAD_REQUEST,
            "at least one event",
        ),
        (
            "a limit that is not a number",
            api.get("/all?limit=lots").await,
            StatusCode::BAD_REQUEST,
            "not a number",
        ),
        (
            "an unknown route",
            api.get("/streams").await,
            StatusCode::NOT_FOUND,
            "no route",
        ),
    ];
    for (what, answer, status, detail) in &cases {
        assert!(answer.status.is_client_error(), "{what}: {}", answer.status);
        assert_eq!(answer.status, *status, "{what}: {:?}", answer.body);
        assert_problem(answer, *status, detail);
    }
    assert_eq!(api.head().await, 1, "none of them wrote anything");
}
// ANCHOR_END: hostile_input
