//! The choreographed services' HTTP faces: the order service's `POST /orders` and
//! `GET /orders/{id}`, a participant's `GET /state`, and on every one the operator's
//! dead-letter routes and problem+json for unknown routes.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path as AxumPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::{Choreography, DeadLetter, RedriveError, dead_letters_of};
use crate::line::OrderLine;
use crate::participant::{Domain, Participant};
use crate::problem;

/// `GET /dead-letters` and `POST /dead-letters/{message_id}/redrive` for the services this
/// process runs, and `GET /health`. The routers below finish with
/// [`problem::with_problem_fallbacks`], as the orchestrated services do: problem+json for
/// unknown routes and methods, and for bodies over the limit.
fn operator_routes(router: Router<Arc<Choreography>>) -> Router<Arc<Choreography>> {
    router
        .route("/health", get(|| async { "ok" }))
        .route(
            "/dead-letters",
            get(|State(choreography): State<Arc<Choreography>>| async move {
                let letters: Vec<DeadLetter> = choreography
                    .services
                    .iter()
                    .filter_map(|service| dead_letters_of(service).ok())
                    .flatten()
                    .collect();
                Json(letters)
            }),
        )
        .route("/dead-letters/{message_id}/redrive", post(redrive_route))
}

async fn redrive_route(
    State(choreography): State<Arc<Choreography>>,
    AxumPath(message_id): AxumPath<String>,
) -> Response {
    let Some(service) = choreography
        .services
        .iter()
        .find(|service| {
            dead_letters_of(service)
                .is_ok_and(|letters| letters.iter().any(|l| l.message_id == message_id))
        })
        .map(|service| service.name)
    else {
        return problem::not_found(format!("no dead letter `{message_id}` here")).into_response();
    };
    match choreography.redrive(service, &message_id).await {
        Ok(()) => {
            Json(serde_json::json!({ "service": service, "redriven": message_id })).into_response()
        }
        Err(RedriveError::NotFound { .. }) => {
            problem::not_found(format!("no dead letter `{message_id}` here")).into_response()
        }
        Err(error) => problem::unavailable(error.to_string()).into_response(),
    }
}

/// The choreographed order service's HTTP face: `POST /orders` (the PENDING row and
/// `OrderCreated`), `GET /orders/{id}`, and the operator's routes.
pub fn order_router(choreography: Arc<Choreography>) -> Router {
    problem::with_problem_fallbacks(operator_routes(
        Router::new()
            .route("/orders", post(create_order))
            .route("/orders/{id}", get(show_order)),
    ))
    .with_state(choreography)
}

async fn create_order(
    State(choreography): State<Arc<Choreography>>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return problem::body_rejected(rejection).into_response(),
    };
    let line: OrderLine = match serde_json::from_slice(&body) {
        Ok(line) => line,
        Err(error) => {
            return problem::bad_request(format!("the body is not an order: {error}"))
                .into_response();
        }
    };
    let placing = Arc::clone(&choreography);
    // The request's span goes along: the order's creation is its child when it is traced.
    let request = tracing::Span::current();
    let placed = tokio::task::spawn_blocking(move || {
        lab_telemetry::client::within(&request, || placing.place(&line).map(|()| line))
    })
    .await
    .unwrap_or_else(|_| Err(problem::unavailable("placing the order panicked")));
    match placed {
        Ok(line) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "order_id": line.order_id, "status": "PENDING" })),
        )
            .into_response(),
        Err(problem) => problem.into_response(),
    }
}

async fn show_order(
    State(choreography): State<Arc<Choreography>>,
    AxumPath(id): AxumPath<String>,
) -> Response {
    let Some(order) = choreography.order() else {
        return problem::unavailable("this process does not run the order service").into_response();
    };
    match order.view(&id) {
        Ok(Some(view)) => Json(view).into_response(),
        Ok(None) => problem::not_found(format!("no order `{id}`")).into_response(),
        Err(error) => problem::unavailable(error.to_string()).into_response(),
    }
}

/// A choreographed participant's HTTP face: `GET /state` (its books) and the operator's
/// routes. It takes no commands: it reacts to events.
pub fn participant_router<D: Domain>(
    participant: Arc<Participant<D>>,
    choreography: Arc<Choreography>,
) -> Router {
    problem::with_problem_fallbacks(operator_routes(Router::new().route(
        "/state",
        get(move || {
            let participant = Arc::clone(&participant);
            async move { Json(participant.holdings()) }
        }),
    )))
    .with_state(choreography)
}
