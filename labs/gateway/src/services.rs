//! The four demo services behind the gateway: user, order, product and payment.
//!
//! They are deliberately tiny — fixed JSON from memory — because the lesson is the
//! gateway. Each one echoes the subject the gateway vouched for (`seen_subject`), which
//! is how the demo shows that a service can trust that header: only the gateway can set it.
//! They run on lab-runtime's [`spawn`]: any router on an ephemeral port, with a
//! [`Running`] handle whose `stop` drains it, which is how the demo takes a backend down
//! mid-run.

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

pub use lab_runtime::serve::{Running, spawn};

fn seen_subject(headers: &HeaderMap) -> Value {
    headers
        .get("x-authenticated-subject")
        .and_then(|value| value.to_str().ok())
        .map_or(Value::Null, Value::from)
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The user service: `GET /api/users/{id}`.
pub fn user_router() -> Router {
    Router::new().route("/health", get(health)).route(
        "/api/users/{id}",
        get(|Path(id): Path<String>, headers: HeaderMap| async move {
            Json(json!({ "id": id, "name": format!("User {id}"), "seen_subject": seen_subject(&headers) }))
        }),
    )
}

/// The order service: `GET /api/orders/{id}` (orders name a user and a product) and
/// `POST /api/orders`.
pub fn order_router() -> Router {
    Router::new()
        .route("/health", get(health))
        .route(
            "/api/orders/{id}",
            get(|Path(id): Path<String>, headers: HeaderMap| async move {
                if id == "404" {
                    return (
                        StatusCode::NOT_FOUND,
                        Json(json!({ "error": "no such order" })),
                    )
                        .into_response();
                }
                Json(json!({
                    "id": id, "user_id": "u-7", "product_id": "p-42", "quantity": 2,
                    "seen_subject": seen_subject(&headers),
                }))
                .into_response()
            }),
        )
        .route(
            "/api/orders",
            post(|headers: HeaderMap, Json(order): Json<Value>| async move {
                (
                    StatusCode::CREATED,
                    Json(json!({ "created": order, "seen_subject": seen_subject(&headers) })),
                )
            }),
        )
}

/// The product service: `GET /api/products/{id}`.
pub fn product_router() -> Router {
    Router::new().route("/health", get(health)).route(
        "/api/products/{id}",
        get(|Path(id): Path<String>| async move {
            Json(json!({ "id": id, "name": "Mechanical keyboard", "price_cents": 8900 }))
        }),
    )
}

/// The payment service: `POST /api/payments`.
pub fn payment_router() -> Router {
    Router::new().route("/health", get(health)).route(
        "/api/payments",
        post(
            |headers: HeaderMap, Json(payment): Json<Value>| async move {
                (
                    StatusCode::CREATED,
                    Json(json!({ "accepted": payment, "seen_subject": seen_subject(&headers) })),
                )
            },
        ),
    )
}
