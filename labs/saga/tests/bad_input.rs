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

#[tokio::test]
async fn an_amount_that_is_not_the_catalogue_price_is_refused_with_a_422() {
    let system = system();
    let router = lab_saga::order::router(Arc::clone(&system.order));
    // Two books for one cent.
    let cheap = serde_json::to_string(&order_line("o-5", 2))
        .unwrap()
        .replace("\"amount\":5000", "\"amount\":1");
    let (status, content_type, problem) = call(router.clone(), post("/orders", None, &cheap)).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "application/problem+json"),
        "{problem}"
    );
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("5000") && detail.contains("rust-book") && detail.contains('1'),
        "the detail says what the price is: {detail}"
    );
    let unknown = serde_json::to_string(&order_line("o-6", 1))
        .unwrap()
        .replace("rust-book", "no-such-book");
    let (status, _, problem) = call(router.clone(), post("/orders", None, &unknown)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("no-such-book"));
    assert!(
        system.order.view("o-5").unwrap().is_none(),
        "nothing written"
    );
    assert!(
        system.order.view("o-6").unwrap().is_none(),
        "nothing written"
    );
    // The catalogue's price is accepted.
    let (status, _, _) = call(
        router,
        post(
            "/orders",
            None,
            &serde_json::to_string(&order_line("o-7", 2)).unwrap(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

/// A body of 3 MB, more than any route accepts.
fn huge_body() -> String {
    format!("{{\"pad\":\"{}\"}}", "x".repeat(3 << 20))
}

#[tokio::test]
async fn a_body_over_the_limit_gets_a_413_problem_not_plain_text() {
    let system = system();
    for (name, router, path) in [
        (
            "order",
            lab_saga::order::router(Arc::clone(&system.order)),
            "/orders",
        ),
        (
            "payment",
            participant::router(Arc::clone(&system.payment)),
            "/reserve",
        ),
    ] {
        let (status, content_type, problem) =
            call(router, post(path, Some("k-huge"), &huge_body())).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{name}");
        assert_eq!(content_type, "application/problem+json", "{name}");
        assert!(
            problem["detail"].as_str().unwrap().contains("bytes"),
            "{name}: the detail names the limit: {problem}"
        );
    }
    assert_eq!(system.payment.stored_keys(), 0, "nothing was written");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_a_problem_404_and_405() {
    let system = system();
    for (name, router) in [
        ("order", lab_saga::order::router(Arc::clone(&system.order))),
        (
            "inventory",
            participant::router(Arc::clone(&system.inventory)),
        ),
    ] {
        let nowhere = Request::get("/nowhere").body(Body::empty()).unwrap();
        let (status, content_type, problem) = call(router.clone(), nowhere).await;
        assert_eq!(
            (status, content_type.as_str()),
            (StatusCode::NOT_FOUND, "application/problem+json"),
            "{name}"
        );
        assert!(problem["detail"].as_str().unwrap().contains("/nowhere"));
        let wrong_method = Request::delete("/health").body(Body::empty()).unwrap();
        let (status, content_type, problem) = call(router, wrong_method).await;
        assert_eq!(
            (status, content_type.as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, "application/problem+json"),
            "{name}"
        );
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("DELETE") && detail.contains("/health"),
            "{name}: {detail}"
        );
    }
}

#[tokio::test]
async fn a_reserve_with_a_new_key_for_an_order_already_held_is_a_409_that_says_so() {
    let system = system();
    for (name, router) in [
        ("payment", participant::router(Arc::clone(&system.payment))),
        (
            "inventory",
            participant::router(Arc::clone(&system.inventory)),
        ),
    ] {
        let body = serde_json::to_string(&order_line("o-9", 1)).unwrap();
        let (status, _, _) = call(router.clone(), post("/reserve", Some("first-key"), &body)).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        let (status, content_type, problem) =
            call(router, post("/reserve", Some("second-key"), &body)).await;
        assert_eq!(
            (status, content_type.as_str()),
            (StatusCode::CONFLICT, "application/problem+json"),
            "{name}: {problem}"
        );
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("o-9") && detail.contains("another idempotency key"),
            "{name}: {detail}"
        );
    }
    assert_eq!(system.payment.holdings()["held"], 2_500, "held once");
    assert_eq!(system.inventory.holdings()["reserved"], 1, "reserved once");
}

#[tokio::test]
async fn the_choreographed_routers_answer_every_error_with_a_problem() {
    use lab_saga::bus::Bus;
    use lab_saga::choreography::{self, Choreography};
    let system = System::start(
        &Place::Memory,
        Some(&Seed::default()),
        Options {
            extra_schema: choreography::SCHEMA.to_owned(),
            ..Options::default()
        },
    )
    .unwrap();
    let choreography = Arc::new(
        Choreography::start(&system, Bus::in_process(), None)
            .await
            .unwrap(),
    );
    let order = choreography::order_router(Arc::clone(&choreography));
    let (status, content_type, problem) =
        call(order.clone(), post("/orders", None, &huge_body())).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "application/problem+json"),
        "a body over the limit on the choreographed POST /orders: {problem}"
    );
    let wrong_method = Request::delete("/orders").body(Body::empty()).unwrap();
    let (status, content_type, _) = call(order, wrong_method).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "application/problem+json"),
        "a method the choreographed order service does not take"
    );
    let payment =
        choreography::participant_router(Arc::clone(&system.payment), Arc::clone(&choreography));
    let wrong_method = Request::post("/state").body(Body::empty()).unwrap();
    let (status, content_type, _) = call(payment.clone(), wrong_method).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "application/problem+json"),
        "a method a choreographed participant does not take"
    );
    let nowhere = Request::get("/nowhere").body(Body::empty()).unwrap();
    let (status, content_type, _) = call(payment, nowhere).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::NOT_FOUND, "application/problem+json"),
        "an unknown route on a choreographed participant"
    );
}
