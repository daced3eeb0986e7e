//! The "payment" upstream: a small axum service whose health we can break on purpose.
//!
//! A circuit breaker only earns its keep when the thing behind it misbehaves,
//! so this service has two dials, changeable at runtime through
//! `POST /admin/behaviour`: the share of requests that fail (with a 503) and
//! the latency every request waits before answering. The scenario driver turns
//! these dials to script an outage; a learner can turn them by hand with curl.
//!
//! Randomness is seeded, and the die is rolled when a request *arrives* (not
//! after its latency), so the same seed and the same arrival order always give
//! the same answers: that is what makes the narrated timeline snapshot-testable.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::problem::Problem;

/// How the payment service behaves right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Behaviour {
    /// Percentage (0..=100) of `/pay` requests answered with a 503.
    pub failure_rate_percent: u8,
    /// How long every `/pay` request waits before it is answered, in milliseconds.
    pub latency_ms: u64,
}

impl Behaviour {
    /// A healthy service: no failures, a little latency.
    pub const HEALTHY: Self = Self {
        failure_rate_percent: 0,
        latency_ms: 20,
    };
}

impl Default for Behaviour {
    fn default() -> Self {
        Self::HEALTHY
    }
}

/// A payment request as the order service sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRequest {
    /// The order being paid for.
    pub order_id: u64,
    /// The amount, in cents.
    pub amount_cents: u64,
}

/// The receipt for a successful payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The order that was paid for.
    pub order_id: u64,
    /// The payment's identifier, issued by this service.
    pub payment_id: u64,
}

/// Above this amount a card is declined with a 402: a *client* error, which a
/// circuit breaker must not count against the service's health.
pub const DECLINE_ABOVE_CENTS: u64 = 100_000;

/// The service's shared state: the dials and the seeded die.
#[derive(Debug, Clone)]
pub struct PaymentState {
    inner: Arc<Mutex<Dials>>,
}

#[derive(Debug)]
struct Dials {
    behaviour: Behaviour,
    rng: fastrand::Rng,
    next_payment_id: u64,
}

impl PaymentState {
    /// A healthy service whose failures are drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Self::with_behaviour(seed, Behaviour::HEALTHY)
    }

    /// A service that starts with the given behaviour.
    pub fn with_behaviour(seed: u64, behaviour: Behaviour) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Dials {
                behaviour,
                rng: fastrand::Rng::with_seed(seed),
                next_payment_id: 1,
            })),
        }
    }

    /// The current behaviour.
    pub async fn behaviour(&self) -> Behaviour {
        self.inner.lock().await.behaviour
    }

    /// Changes the behaviour; requests already waiting keep the latency they drew.
    pub async fn set_behaviour(&self, behaviour: Behaviour) {
        self.inner.lock().await.behaviour = behaviour;
    }
}

/// The payment service's routes: `/health`, `POST /pay`, `GET|POST /admin/behaviour`.
pub fn router(state: PaymentState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/pay", post(pay))
        .route("/admin/behaviour", get(get_behaviour).post(set_behaviour))
        .fallback(crate::problem::not_found)
        .with_state(state)
}

async fn health() -> &'static str {
    "ok"
}

async fn pay(
    State(state): State<PaymentState>,
    request: Result<Json<PaymentRequest>, JsonRejection>,
) -> Response {
    let request = match request {
        Ok(Json(request)) => request,
        Err(rejection) => return Problem::from(rejection).into_response(),
    };
    // Decide everything on arrival, under the lock, so the answers depend only
    // on the seed and the arrival order, not on how the sleeps interleave.
    let (latency, fails, payment_id) = {
        let mut dials = state.inner.lock().await;
        let fails = dials.rng.u8(0..100) < dials.behaviour.failure_rate_percent;
        let payment_id = dials.next_payment_id;
        dials.next_payment_id += 1;
        (
            Duration::from_millis(dials.behaviour.latency_ms),
            fails,
            payment_id,
        )
    };
    tokio::time::sleep(latency).await;

    if fails {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Payment processor unavailable",
            format!(
                "the card network did not answer for order {}; try again later",
                request.order_id
            ),
        )
        .into_response();
    }
    if request.amount_cents > DECLINE_ABOVE_CENTS {
        return Problem::new(
            StatusCode::PAYMENT_REQUIRED,
            "Card declined",
            format!(
                "order {}: {} cents is above the card's limit of {DECLINE_ABOVE_CENTS}",
                request.order_id, request.amount_cents
            ),
        )
        .into_response();
    }
    Json(Receipt {
        order_id: request.order_id,
        payment_id,
    })
    .into_response()
}

async fn get_behaviour(State(state): State<PaymentState>) -> Json<Behaviour> {
    Json(state.behaviour().await)
}

async fn set_behaviour(
    State(state): State<PaymentState>,
    behaviour: Result<Json<Behaviour>, JsonRejection>,
) -> Response {
    let behaviour = match behaviour {
        Ok(Json(behaviour)) => behaviour,
        Err(rejection) => return Problem::from(rejection).into_response(),
    };
    if behaviour.failure_rate_percent > 100 {
        return Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid behaviour",
            format!(
                "failure_rate_percent is a percentage (0..=100), got {}",
                behaviour.failure_rate_percent
            ),
        )
        .into_response();
    }
    state.set_behaviour(behaviour).await;
    Json(behaviour).into_response()
}
