//! The demo's services on real sockets (127.0.0.1, ephemeral ports).
//!
//! These use real time, not the paused clock: with a paused clock tokio jumps to the next
//! timer whenever it would wait, and waiting on a socket would fire the client's timeout at
//! once. So nothing here depends on timing: the upstream answers with no latency, the
//! client's timeout is generous, and the breaker's wait in Open is a minute long.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use breaker_core::{Config, Millis, WindowKind};
use breaker_tower::Breaker;
use breaker_tower::clock::TokioClock;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use lab_breaker::order::{self, OrderClient};
use lab_breaker::payment::{self, Behaviour, PaymentState};
use lab_breaker::problem::{PROBLEM_JSON, Problem};
use lab_breaker::scenario::set_behaviour;
use lab_breaker::transport::HttpTransport;
use tokio::net::TcpListener;
use tower::ServiceExt;

async fn serve(router: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    address
}

async fn send(to: SocketAddr, request: Request<Body>) -> (StatusCode, http::HeaderMap, String) {
    let response = HttpTransport::new(to).oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn post_json(path: &str, json: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn payment_health_pay_and_the_admin_dials() {
    let payment = serve(payment::router(PaymentState::new(1))).await;
    let (status, _, body) = send(
        payment,
        Request::get("/health").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));

    let (status, _, body) = send(
        payment,
        post_json("/pay", r#"{"order_id":1,"amount_cents":100}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"payment_id\""), "{body}");

    // A declined card is a 402 problem: the client's fault, not the service's.
    let (status, headers, _) = send(
        payment,
        post_json("/pay", r#"{"order_id":2,"amount_cents":999999}"#),
    )
    .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);

    set_behaviour(
        HttpTransport::new(payment),
        Behaviour {
            failure_rate_percent: 100,
            latency_ms: 0,
        },
    )
    .await
    .unwrap();
    let (status, headers, body) = send(
        payment,
        post_json("/pay", r#"{"order_id":3,"amount_cents":100}"#),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
    let problem: Problem = serde_json::from_str(&body).unwrap();
    assert!(problem.detail.contains("order 3"), "{problem:?}");

    let (status, _, body) = send(
        payment,
        post_json(
            "/admin/behaviour",
            r#"{"failure_rate_percent":101,"latency_ms":0}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Malformed bodies and unknown paths answer with problem documents too.
    let (status, headers, body) = send(payment, post_json("/pay", "{not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
    let (status, headers, _) =
        send(payment, Request::get("/nope").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
}

#[tokio::test]
async fn order_answers_503_with_retry_after_once_the_breaker_opens_and_says_so_on_metrics() {
    let payment = serve(payment::router(PaymentState::with_behaviour(
        1,
        Behaviour {
            failure_rate_percent: 100,
            latency_ms: 0,
        },
    )))
    .await;
    let breaker = std::sync::Arc::new(
        Breaker::new(
            Config {
                window: WindowKind::CountBased { size: 4 },
                minimum_calls: 4,
                wait_in_open: Millis::from_secs(60),
                ..Config::default()
            },
            TokioClock::new(),
        )
        .unwrap(),
    );
    let client = OrderClient::new(
        HttpTransport::new(payment),
        Some(breaker),
        Duration::from_secs(10),
        0,
    );
    let order = serve(order::router(client)).await;

    for id in 0..4 {
        let (status, _, body) = send(
            order,
            post_json(
                "/orders",
                &format!(r#"{{"order_id":{id},"amount_cents":100}}"#),
            ),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "payment's own 503 passes through: {body}"
        );
    }
    let (status, headers, body) = send(
        order,
        post_json("/orders", r#"{"order_id":9,"amount_cents":100}"#),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
    let retry_after: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let problem: Problem = serde_json::from_str(&body).unwrap();
    assert!(problem.detail.contains("not attempted"), "{problem:?}");

    let (status, headers, metrics) =
        send(order, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        metrics.contains("breaker_state{name=\"payment\",state=\"open\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("breaker_not_permitted_calls_total{name=\"payment\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("kind=\"failed\"} 4"), "{metrics}");
}
