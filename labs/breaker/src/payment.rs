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
//!
//! A payment is decided, and the card charged, on arrival too; the latency comes
//! after. So a caller that gives up while it waits (a timeout) may have been charged,
//! and its retry must not charge again. A request carries an `Idempotency-Key` (the
//! order client sends the order id): the first answer for a key is remembered, a
//! repeated key with the same body gets that answer again at once without touching the
//! card, and a repeated key with another body is a `409`. A `503` is not remembered:
//! nothing was charged, so a retry may try again.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
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

/// The request header that makes a retried payment safe: requests with the same key are
/// one payment. Its value is an opaque string of at most [`MAX_IDEMPOTENCY_KEY_LEN`]
/// visible ASCII characters (the order client sends the order id).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The response header set on an answer repeated for a known key (Stripe's name for it).
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The longest idempotency key the service accepts.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// How many keys the service remembers; past that, the oldest is forgotten, so memory
/// stays bounded (a real service keeps keys for a day or so).
pub const REMEMBERED_KEYS: usize = 10_000;

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
    /// Every charge made, oldest first.
    charges: Vec<Receipt>,
    /// The first answer given for each idempotency key, with the request it answered.
    answered: HashMap<String, Remembered>,
    /// The remembered keys, oldest first, so the oldest can be forgotten.
    key_order: VecDeque<String>,
}

/// What the service remembers about one idempotency key.
#[derive(Debug)]
struct Remembered {
    request: PaymentRequest,
    answer: Answer,
}

impl Dials {
    /// Remembers the answer for `key`, forgetting the oldest key when full.
    fn remember(&mut self, key: String, request: PaymentRequest, answer: Answer) {
        if self.key_order.len() == REMEMBERED_KEYS
            && let Some(oldest) = self.key_order.pop_front()
        {
            self.answered.remove(&oldest);
        }
        self.key_order.push_back(key.clone());
        self.answered.insert(key, Remembered { request, answer });
    }
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
                charges: Vec::new(),
                answered: HashMap::new(),
                key_order: VecDeque::new(),
            })),
        }
    }

    /// The current behaviour.
    pub async fn behaviour(&self) -> Behaviour {
        self.inner.lock().await.behaviour
    }

    /// Every charge made so far, oldest first.
    pub async fn charges(&self) -> Vec<Receipt> {
        self.inner.lock().await.charges.clone()
    }

    /// Changes the behaviour; requests already waiting keep the latency they drew.
    pub async fn set_behaviour(&self, behaviour: Behaviour) {
        self.inner.lock().await.behaviour = behaviour;
    }
}

/// The payment service's routes: `/health`, `POST /pay` (with an optional
/// [`IDEMPOTENCY_KEY`] header), `GET|POST /admin/behaviour`.
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
    headers: HeaderMap,
    request: Result<Json<PaymentRequest>, JsonRejection>,
) -> Response {
    let request = match request {
        Ok(Json(request)) => request,
        Err(rejection) => return Problem::from(rejection).into_response(),
    };
    let key = match idempotency_key(&headers) {
        Ok(key) => key,
        Err(problem) => return problem.into_response(),
    };
    // Decide everything on arrival, under the lock, so the answers depend only
    // on the seed and the arrival order, not on how the sleeps interleave, and so
    // two requests with one key cannot both be charged.
    let (latency, answer) = {
        let mut dials = state.inner.lock().await;
        if let Some(key) = &key
            && let Some(seen) = dials.answered.get(key)
        {
            if seen.request != request {
                return key_reused(key, &seen.request, &request).into_response();
            }
            // The same payment again: the same answer, at once, and no new charge.
            let mut response = seen.answer.clone().into_response(&request);
            response
                .headers_mut()
                .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
            return response;
        }
        let fails = dials.rng.u8(0..100) < dials.behaviour.failure_rate_percent;
        let answer = if fails {
            Answer::Unavailable
        } else if request.amount_cents > DECLINE_ABOVE_CENTS {
            Answer::Declined
        } else {
            // The card is charged now, whether or not the caller is still there to hear it.
            let receipt = Receipt {
                order_id: request.order_id,
                payment_id: dials.next_payment_id,
            };
            dials.next_payment_id += 1;
            dials.charges.push(receipt.clone());
            Answer::Paid(receipt)
        };
        // A 503 charged nothing, so it is not remembered: a retry may try again.
        if let Some(key) = key
            && answer != Answer::Unavailable
        {
            dials.remember(key, request.clone(), answer.clone());
        }
        (Duration::from_millis(dials.behaviour.latency_ms), answer)
    };
    tokio::time::sleep(latency).await;
    answer.into_response(&request)
}

/// The request's `Idempotency-Key`, if it has one, or the 400 for a key the service
/// cannot keep (empty, too long, not visible ASCII, or sent twice).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let invalid = |why: &str| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "Invalid Idempotency-Key",
            format!(
                "the Idempotency-Key header {why}; send one key per payment, such as the order id"
            ),
        )
    };
    if values.next().is_some() {
        return Err(invalid("appears more than once"));
    }
    let key = value
        .to_str()
        .ok()
        .filter(|key| key.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| invalid("must be visible ASCII characters"))?;
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(invalid(&format!(
            "must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters long, got {}",
            key.len()
        )));
    }
    Ok(Some(key.to_owned()))
}

/// The 409 for a key that already paid for another request.
fn key_reused(key: &str, first: &PaymentRequest, again: &PaymentRequest) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "Idempotency-Key reused",
        format!(
            "the Idempotency-Key \"{key}\" was first sent for order {} of {} cents; this \
             request is for order {} of {} cents. A new payment needs a new key",
            first.order_id, first.amount_cents, again.order_id, again.amount_cents
        ),
    )
}

/// What `/pay` decided for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// Charged: the receipt.
    Paid(Receipt),
    /// The amount is above the card's limit: a 402.
    Declined,
    /// The card network did not answer: a 503, nothing charged.
    Unavailable,
}

impl Answer {
    fn into_response(self, request: &PaymentRequest) -> Response {
        match self {
            Answer::Paid(receipt) => Json(receipt).into_response(),
            Answer::Declined => Problem::new(
                StatusCode::PAYMENT_REQUIRED,
                "Card declined",
                format!(
                    "order {}: {} cents is above the card's limit of {DECLINE_ABOVE_CENTS}",
                    request.order_id, request.amount_cents
                ),
            )
            .into_response(),
            Answer::Unavailable => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Payment processor unavailable",
                format!(
                    "the card network did not answer for order {}; try again later",
                    request.order_id
                ),
            )
            .into_response(),
        }
    }
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
