//! Bad input: malformed bodies, missing idempotency keys, unknown orders and changes to a
//! locked order get a problem+json 4xx, and nothing is written.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use lab_saga::participant;
use lab_saga::system::{Options, Place, Seed, System, order_line};
use saga_core::OrderStatus;
use tower::ServiceExt;

async fn call(
    router: axum::Router,
    request: Request<Body>,
) -> (StatusCode, String, serde_json::Value) {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        content_type,
        serde_json::from_slice(&bytes).unwrap_or_default(),
    )
}

fn post(path: &str, key: Option<&str>, body: &str) -> Request<Body> {
    let mut request = Request::post(path).header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.body(Body::from(body.to_owned())).unwrap()
}

fn system() -> System {
    System::start(&Place::Memory, Some(&Seed::default()), Options::default()).unwrap()
}

#[tokio::test]
async fn a_participant_refuses_malformed_requests_without_writing() {
    let system = system();
    let router = participant::router(Arc::clone(&system.payment));
    let good = serde_json::to_string(&order_line("o-1", 1)).unwrap();
    let negative = good.replace("\"quantity\":1", "\"quantity\":-3");
    for (key, body, why) in [
        (None, good.as_str(), "no idempotency key"),
        (Some("k1"), "{not json", "malformed JSON"),
        (Some("k2"), "{\"order_id\":\"o-1\"}", "missing fields"),
        (Some("k3"), negative.as_str(), "negative quantity"),
    ] {
        let (status, content_type, problem) =
            call(router.clone(), post("/reserve", key, body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}");
        assert_eq!(content_type, "application/problem+json", "{why}");
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{why}");
    }
    assert_eq!(system.payment.stored_keys(), 0, "nothing was written");
    assert_eq!(system.payment.holdings()["held"], 0);
}

#[tokio::test]
async fn a_business_refusal_is_a_422_and_a_retry_gets_the_same_answer() {
    let system = System::start(
        &Place::Memory,
        Some(&Seed {
            stock: 0,
            ..Seed::default()
        }),
        Options::default(),
    )
    .unwrap();
    let router = participant::router(Arc::clone(&system.inventory));
    let body = serde_json::to_string(&order_line("o-2", 1)).unwrap();
    let first = call(
        router.clone(),
        post("/reserve", Some("o-2:reserve_inventory"), &body),
    )
    .await;
    // The shelf is restocked, but the same key must still get the first answer.
    lab_saga::inventory::stock(&system.inventory.db().lock(), "rust-book", 5).unwrap();
    let retry = call(
        router,
        post("/reserve", Some("o-2:reserve_inventory"), &body),
    )
    .await;
    assert_eq!(first.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(first, retry);
}

#[tokio::test]
async fn the_order_service_refuses_bad_orders_and_unknown_ids() {
    let system = system();
    let router = lab_saga::order::router(Arc::clone(&system.order));
    let (status, content_type, _) = call(router.clone(), post("/orders", None, "[]")).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::BAD_REQUEST, "application/problem+json")
    );
    let zero = serde_json::to_string(&order_line("o-3", 1))
        .unwrap()
        .replace("\"amount\":2500", "\"amount\":0");
    let (status, _, _) = call(router.clone(), post("/orders", None, &zero)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let unknown = Request::get("/orders/nope").body(Body::empty()).unwrap();
    let (status, content_type, _) = call(router.clone(), unknown).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::NOT_FOUND, "application/problem+json")
    );
    let (status, _, _) = call(router, post("/orders/nope/address", None, "{}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        system.order.count_by_status(OrderStatus::Pending),
        0,
        "nothing was written"
    );
}

#[tokio::test]
async fn a_pending_order_is_locked_by_its_saga() {
    let system = system();
    system.order.place_order(&order_line("o-4", 1)).unwrap();
    let router = lab_saga::order::router(Arc::clone(&system.order));
    let (status, _, problem) = call(router.clone(), post("/orders/o-4/address", None, "{}")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(problem["detail"].as_str().unwrap().contains("PENDING"));
    system.order.run_saga("o-4").await.unwrap();
    let (status, _, _) = call(router, post("/orders/o-4/address", None, "{}")).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "decided orders are final, not locked"
    );
}
