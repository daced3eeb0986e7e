//! The Discovery lab's service, through its router (no socket needed).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

#[tokio::test]
async fn health_answers_and_unknown_routes_get_a_problem() {
    let health = lab_discovery::router()
        .oneshot(
            Request::get("/health")
                .body(Body::empty())
                .expect("a request"),
        )
        .await
        .expect("the router answers");
    assert_eq!(
        health.status(),
        StatusCode::OK,
        "GET /health is the liveness check"
    );
    let missing = lab_discovery::router()
        .oneshot(
            Request::get("/nowhere")
                .body(Body::empty())
                .expect("a request"),
        )
        .await
        .expect("the router answers");
    assert_eq!(
        missing.status(),
        StatusCode::NOT_FOUND,
        "an unknown route is a 404"
    );
    assert_eq!(
        missing.headers()[header::CONTENT_TYPE],
        "application/problem+json",
        "every error is problem+json"
    );
    let body = missing
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    assert!(
        String::from_utf8_lossy(&body).contains("/nowhere"),
        "the problem's detail names the path"
    );
}
