//! The Discovery lab's services: the core behind real sockets.
//!
//! [`router`] is the service every process of the lab serves: `GET /health`, and a
//! problem+json 404 for anything else (`lab-http`'s fallback). Replace the placeholder with the
//! lab's services, each in its own module with its own SQLite file where it keeps state.

use axum::Router;
use axum::routing::get;

/// The lab's HTTP service.
pub fn router() -> Router {
    Router::new()
        .route("/health", get(health))
        .fallback(lab_http::not_found)
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok", "lab": "discovery" }))
}
