//! The "order" client: calls payment through retry → breaker → timeout, and serves `/metrics`.
//!
//! The order of the layers is the lesson of this file. Read from the outside in:
//!
//! 1. **Retry** is outermost, so each *attempt* passes through the breaker: the breaker
//!    counts every failed attempt, and once it opens, the retry's next attempt is
//!    rejected at once instead of piling onto a dead service. (Retry inside the breaker
//!    would hide three failures behind one outcome and keep hammering during an outage.)
//!    The policy never retries a rejection: the breaker has just said the service is down.
//! 2. **Breaker** in the middle decides, per attempt, whether to call at all.
//! 3. **Timeout** is innermost, so a hung call ends as an *error the breaker sees* and
//!    counts as a failure. (A timeout outside the breaker would drop the breaker's future
//!    instead: the call would be released unrecorded, and a service that hangs rather
//!    than fails would never open the breaker.)
//!
//! A retry is safe only because every attempt carries the same `Idempotency-Key`, the
//! order id: an attempt that timed out may still have charged the card, and the payment
//! service answers the retry with that first payment instead of charging again.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use breaker_tower::Breaker;
use breaker_tower::layer::{BreakerLayer, rejection};
use http::Request;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use tower::retry::Policy;
use tower::timeout::error::Elapsed;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt};

use crate::fallback::Fallback;
use crate::payment::{IDEMPOTENCY_KEY, PaymentRequest, Receipt};
use crate::problem::Problem;
use crate::rejection::ServiceUnavailable;
use crate::transport::Transport;

/// The client stack, boxed: one type whatever layers it holds.
pub type PaymentStack = BoxCloneSyncService<PaymentRequest, http::Response<Body>, BoxError>;

/// Retries a failed attempt (5xx, timeout, transport error) a fixed number of times;
/// never a 4xx, never a breaker rejection. Safe for payments because each attempt carries
/// the order's `Idempotency-Key` (see `to_http`).
#[derive(Debug, Clone, Copy)]
pub struct RetryFailures {
    /// Attempts left after the current one.
    pub retries_left: u32,
}

impl Policy<PaymentRequest, http::Response<Body>, BoxError> for RetryFailures {
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        _request: &mut PaymentRequest,
        result: &mut Result<http::Response<Body>, BoxError>,
    ) -> Option<Self::Future> {
        let worth_retrying = match result {
            Ok(response) => response.status().is_server_error(),
            // The breaker said no: asking again right away cannot change its mind.
            Err(error) => rejection(error).is_none(),
        };
        if !worth_retrying || self.retries_left == 0 {
            return None;
        }
        self.retries_left -= 1;
        // Production retries wait with jittered backoff; the breaker is what this lab is
        // about, so the retry is immediate and the breaker has to do the protecting.
        Some(std::future::ready(()))
    }

    fn clone_request(&mut self, request: &PaymentRequest) -> Option<PaymentRequest> {
        Some(request.clone())
    }
}

// ANCHOR: to_http
/// Turns a payment request into the HTTP request the transport sends. The order id is
/// the idempotency key, so every attempt at one order's payment is one payment.
fn to_http(request: PaymentRequest) -> Request<Body> {
    let body = serde_json::to_vec(&request).unwrap_or_default();
    Request::post("/pay")
        .header(header::CONTENT_TYPE, "application/json")
        .header(IDEMPOTENCY_KEY, request.order_id)
        .body(Body::from(body))
        .unwrap_or_else(|_| Request::new(Body::empty()))
}
// ANCHOR_END: to_http

/// Builds the order client's stack over `transport`: with a breaker, or without one for
/// the comparison run.
pub fn payment_stack<T: Transport>(
    transport: T,
    breaker: Option<Arc<Breaker>>,
    timeout: Duration,
    retries: u32,
) -> PaymentStack {
    // ANCHOR: composition
    let stack = ServiceBuilder::new()
        // Outermost: retry sees each attempt's result, including the breaker's "no".
        .retry(RetryFailures {
            retries_left: retries,
        })
        .map_request(to_http)
        // Middle: the breaker counts every attempt and fails fast when Open.
        .option_layer(breaker.map(BreakerLayer::new))
        // Innermost: a hung call becomes an error the breaker records as a failure.
        .timeout(timeout)
        .service(transport);
    // ANCHOR_END: composition
    BoxCloneSyncService::new(stack)
}

/// What the order service ended up with for one payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PaymentAnswer {
    /// Paid: the receipt.
    Paid(Receipt),
    /// The card was declined (a 4xx: the request's fault, not the service's).
    Declined,
    /// The call failed (5xx, timeout, transport error) after the retries.
    Failed {
        /// What went wrong.
        reason: String,
    },
    /// The breaker rejected the call; this is the fallback's answer: take the order now,
    /// charge the card when payment is back.
    Deferred,
}

/// The order client: the stack, its breaker (if any) and the fallback.
#[derive(Debug, Clone)]
pub struct OrderClient {
    stack: PaymentStack,
    breaker: Option<Arc<Breaker>>,
    fallback: Arc<Fallback<PaymentAnswer>>,
}

impl OrderClient {
    /// A client over `transport`, protected by `breaker` when given.
    pub fn new<T: Transport>(
        transport: T,
        breaker: Option<Arc<Breaker>>,
        timeout: Duration,
        retries: u32,
    ) -> Self {
        Self {
            stack: payment_stack(transport, breaker.clone(), timeout, retries),
            breaker,
            fallback: Arc::new(Fallback::default_value(PaymentAnswer::Deferred)),
        }
    }

    /// The breaker guarding payment calls, if any.
    pub fn breaker(&self) -> Option<&Arc<Breaker>> {
        self.breaker.as_ref()
    }

    /// Sends one payment through the stack and returns the raw result.
    pub async fn send(&self, request: PaymentRequest) -> Result<http::Response<Body>, BoxError> {
        self.stack.clone().oneshot(request).await
    }

    // ANCHOR: pay
    /// Pays, using the fallback when the breaker rejects the call.
    pub async fn pay(&self, request: PaymentRequest) -> PaymentAnswer {
        let order_id = request.order_id;
        match self.send(request).await {
            Ok(response) if response.status().is_success() => {
                let body = response.into_body().collect().await;
                let receipt = body
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Receipt>(&b.to_bytes()).ok())
                    .unwrap_or(Receipt {
                        order_id,
                        payment_id: 0,
                    });
                PaymentAnswer::Paid(receipt)
            }
            Ok(response) if response.status().is_client_error() => PaymentAnswer::Declined,
            Ok(response) => PaymentAnswer::Failed {
                reason: format!("payment answered {}", response.status()),
            },
            Err(error) if rejection(&error).is_some() => self.fallback.value(),
            Err(error) if error.is::<Elapsed>() => PaymentAnswer::Failed {
                reason: "timed out".to_owned(),
            },
            Err(error) => PaymentAnswer::Failed {
                reason: error.to_string(),
            },
        }
    }
    // ANCHOR_END: pay
}

/// A new order as the order service's HTTP API takes it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct NewOrder {
    /// The order's identifier.
    pub order_id: u64,
    /// The amount to charge, in cents.
    pub amount_cents: u64,
}

/// The order service's routes: `/health`, `/metrics` (Prometheus text) and `POST /orders`.
pub fn router(client: OrderClient) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/orders", post(place_order))
        .fallback(crate::problem::not_found)
        .with_state(client)
}

async fn metrics(State(client): State<OrderClient>) -> Response {
    let body = client
        .breaker()
        .map(|b| crate::metrics::render("payment", &b.metrics()))
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn place_order(
    State(client): State<OrderClient>,
    order: Result<Json<NewOrder>, JsonRejection>,
) -> Response {
    let order = match order {
        Ok(Json(order)) => order,
        Err(rejection) => return Problem::from(rejection).into_response(),
    };
    let request = PaymentRequest {
        order_id: order.order_id,
        amount_cents: order.amount_cents,
    };
    match client.send(request).await {
        Ok(response) => {
            // Pass payment's answer through: a receipt, or its problem document.
            let (parts, body) = response.into_parts();
            Response::from_parts(parts, body)
        }
        // The breaker fronts payment here: a rejection is a 503 with Retry-After.
        Err(error) => match rejection(&error) {
            Some(rejected) => ServiceUnavailable(*rejected).into_response(),
            None => Problem::new(
                StatusCode::BAD_GATEWAY,
                "Payment failed",
                format!("order {}: the payment call failed: {error}", order.order_id),
            )
            .into_response(),
        },
    }
}
