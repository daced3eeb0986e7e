//! A retried payment is charged once: the order client sends an `Idempotency-Key` and the
//! payment service answers a repeated key with the first answer.
//!
//! In-process (the payment router is the transport) on tokio's paused clock, so the
//! client's timeout and the service's latency are exact and nothing waits for real.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use lab_breaker::order::{OrderClient, PaymentAnswer};
use lab_breaker::payment::{self, Behaviour, PaymentRequest, PaymentState, Receipt};
use lab_breaker::problem::{PROBLEM_JSON, Problem};
use tower::ServiceExt;

/// A payment service that charges every card and answers after `latency_ms`.
fn slow_payment(latency_ms: u64) -> PaymentState {
    PaymentState::with_behaviour(
        1,
        Behaviour {
            failure_rate_percent: 0,
            latency_ms,
        },
    )
}

/// `POST /pay` with `body`, and an `Idempotency-Key` when `key` is given.
async fn pay(state: &PaymentState, key: Option<&str>, body: &str) -> (StatusCode, String, String) {
    let mut request = Request::post("/pay").header(header::CONTENT_TYPE, "application/json");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let request = request.body(Body::from(body.to_owned())).unwrap();
    let response = payment::router(state.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_a_timeout_that_charged_charges_the_card_once() {
    // The service charges on arrival and answers after 500 ms; the client gives up after
    // 100 ms and retries once: the first attempt charged the card, and its caller never heard.
    let payment = slow_payment(500);
    let client = OrderClient::new(
        payment::router(payment.clone()),
        None,
        Duration::from_millis(100),
        1,
    );
    let answer = client
        .pay(PaymentRequest {
            order_id: 7,
            amount_cents: 4_200,
        })
        .await;
    let charges = payment.charges().await;
    assert_eq!(
        charges,
        vec![Receipt {
            order_id: 7,
            payment_id: 1
        }],
        "the first attempt charged order 7 before the client timed out; the retry carries \
         the same Idempotency-Key and must not charge it again"
    );
    assert_eq!(
        answer,
        PaymentAnswer::Paid(charges[0].clone()),
        "the retry is answered with the first attempt's receipt"
    );
}

#[tokio::test(start_paused = true)]
async fn the_same_key_and_body_get_the_same_payment_and_response() {
    let payment = slow_payment(20);
    let body = r#"{"order_id":3,"amount_cents":100}"#;
    let first = pay(&payment, Some("3"), body).await;
    let again = pay(&payment, Some("3"), body).await;
    assert_eq!(
        first.0,
        StatusCode::OK,
        "the first request pays: {}",
        first.2
    );
    assert_eq!(
        again, first,
        "a repeated key with the same body gets the first response: status, type and body"
    );
    assert_eq!(
        payment.charges().await.len(),
        1,
        "one key, one charge, however often it is sent"
    );

    // A declined card is an answer too: repeated, it is declined again, and nothing is charged.
    let over_limit = r#"{"order_id":4,"amount_cents":999999}"#;
    let declined = pay(&payment, Some("4"), over_limit).await;
    assert_eq!(declined.0, StatusCode::PAYMENT_REQUIRED, "{}", declined.2);
    assert_eq!(pay(&payment, Some("4"), over_limit).await, declined);

    // Without a key every request is a new payment.
    let unkeyed = r#"{"order_id":5,"amount_cents":100}"#;
    pay(&payment, None, unkeyed).await;
    pay(&payment, None, unkeyed).await;
    assert_eq!(
        payment.charges().await.len(),
        3,
        "order 3 once, order 5 twice (it carried no key)"
    );
}

#[tokio::test(start_paused = true)]
async fn the_same_key_with_another_body_is_refused_with_a_409_problem() {
    let payment = slow_payment(20);
    let (status, _, _) = pay(&payment, Some("8"), r#"{"order_id":8,"amount_cents":100}"#).await;
    assert_eq!(status, StatusCode::OK);
    let (status, content_type, body) =
        pay(&payment, Some("8"), r#"{"order_id":8,"amount_cents":250}"#).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a key already used for another payment: {body}"
    );
    assert_eq!(content_type, PROBLEM_JSON);
    let problem: Problem = serde_json::from_str(&body).unwrap();
    assert!(
        problem.detail.contains("\"8\"") && problem.detail.contains("250"),
        "the detail names the key and the new amount: {problem:?}"
    );
    assert_eq!(
        payment.charges().await.len(),
        1,
        "the conflicting request charged nothing"
    );

    // A key the service cannot store is a 400, not a silent new payment.
    let long_key = "k".repeat(300);
    let (status, content_type, body) = pay(
        &payment,
        Some(&long_key),
        r#"{"order_id":9,"amount_cents":100}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(content_type, PROBLEM_JSON);
}
