//! Calling an upstream: pooled connections, a breaker per upstream, and careful retries.
//!
//! Three habits keep a gateway from making an outage worse:
//! - **Reuse connections.** Each upstream keeps idle keep-alive connections in its
//!   [`Pool`], so a warm gateway opens no new TCP connection per request.
//! - **Fail fast when the upstream is down.** Each upstream has a circuit breaker (the
//!   breaker lab's [`Breaker`]); while it is open, requests get a 503 with `Retry-After`
//!   at once instead of waiting for a timeout.
//! - **Retry only what is safe, only within budget.** An idempotent request without a body
//!   may be sent again; a `POST` may not (the first try may have charged the card). And
//!   retries draw from a budget that refills at 20 % of the request rate, so when an
//!   upstream is failing, the gateway adds at most 20 % load instead of doubling it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use breaker_core::{Config as BreakerConfig, Millis, Outcome, Rejected, WindowKind};
use breaker_tower::Breaker;
use lab_runtime::{Clock, TokioClock};
use thiserror::Error;

use crate::config::{BreakerSection, RetryConfig, UpstreamConfig};
use crate::forward::{BodyGuardError, body_guard_error};
use crate::pool::{Pool, PoolError, PooledBody, SendFailure};
use crate::registry::{Discovered, Endpoints};

/// Idle connections kept per upstream: enough for a busy gateway's concurrency, few enough
/// that a quiet one does not hold hundreds of sockets open on the upstream.
const MAX_IDLE_PER_UPSTREAM: usize = 256;

/// Why a call to an upstream did not produce a response.
#[derive(Debug, Error)]
pub enum UpstreamError {
    /// The upstream's breaker is open (503).
    #[error("upstream {upstream} is unavailable: its circuit breaker is {}", rejected.state)]
    BreakerOpen {
        /// The name of the upstream that was called.
        upstream: String,
        /// The breaker's refusal (with the time left in Open).
        rejected: Rejected,
    },
    /// No response headers within the timeout (504).
    #[error("upstream {upstream} did not answer within {timeout:?}")]
    Timeout {
        /// The name of the upstream that was called.
        upstream: String,
        /// The time allowed.
        timeout: Duration,
    },
    /// The connection failed or broke (502). The client is told which upstream, not where
    /// it lives: the address is for the log.
    #[error("upstream {upstream} is unreachable: {reason}")]
    Unreachable {
        /// The upstream's name.
        upstream: String,
        /// What went wrong, without the upstream's address.
        reason: String,
    },
    /// The upstream is a registry service with no passing instance (503).
    #[error("upstream {upstream} has no passing instance in the registry")]
    NoInstance {
        /// The upstream's name.
        upstream: String,
    },
    /// The client's body broke a rule, or broke off (400, 408 or 413).
    #[error(transparent)]
    Body(#[from] BodyGuardError),
}

impl UpstreamError {
    /// The status the gateway answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            UpstreamError::BreakerOpen { .. } | UpstreamError::NoInstance { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            UpstreamError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            UpstreamError::Unreachable { .. } => StatusCode::BAD_GATEWAY,
            UpstreamError::Body(error) => error.status(),
        }
    }
}

// ANCHOR: retry_budget
/// Retries allowed as a fraction of requests (Finagle's and gRPC's retry budget).
///
/// Each request deposits `ratio` of a token; each retry withdraws a whole one. A floor of
/// `min_retries` tokens lets a quiet gateway retry at all; a ceiling stops a long healthy
/// spell from saving up a retry storm.
#[derive(Debug)]
pub struct RetryBudget {
    /// Thousandths of a token.
    balance: AtomicI64,
    deposit: i64,
    ceiling: i64,
}

impl RetryBudget {
    /// A budget of `ratio` retries per request, starting with `min_retries` in hand.
    pub fn new(ratio: f64, min_retries: u32) -> Self {
        let floor = i64::from(min_retries) * 1000;
        Self {
            balance: AtomicI64::new(floor),
            deposit: (ratio.clamp(0.0, 1.0) * 1000.0) as i64,
            ceiling: floor.max(10_000),
        }
    }

    /// Called once per request.
    pub fn deposit(&self) {
        let _ = self
            .balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |balance| {
                Some((balance + self.deposit).min(self.ceiling))
            });
    }

    /// Takes one retry from the budget, if there is one.
    pub fn try_withdraw(&self) -> bool {
        self.balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |balance| {
                (balance >= 1000).then_some(balance - 1000)
            })
            .is_ok()
    }
}
// ANCHOR_END: retry_budget

/// One upstream service: where it is, how long it may take, and its breaker.
#[derive(Debug)]
pub struct Upstream {
    /// The name routes refer to.
    pub name: String,
    /// Its instances (one fixed address, or a registry service's) and their keep-alive
    /// connections, a pool per instance.
    pub endpoints: Endpoints,
    /// The default timeout for response headers.
    pub timeout: Duration,
    /// The breaker in front of it: one for all its instances (see the chapter for why not
    /// one per instance, as Envoy's outlier detection has).
    pub breaker: Arc<Breaker>,
    budget: RetryBudget,
    max_attempts: u32,
    /// The clock its attempts and deadlines are measured by.
    clock: TokioClock,
}

/// A request to send upstream.
#[derive(Debug)]
pub struct Outgoing {
    /// The method to send: the client's own, or `GET` for an aggregate's sub-request.
    pub method: Method,
    /// The origin-form URI: the normalized path plus the original query.
    pub uri: Uri,
    /// Headers already cleaned by `forward::upstream_request_headers`.
    pub headers: HeaderMap,
    /// The body (guarded), or empty.
    pub body: Body,
    /// Whether sending it twice is harmless: an idempotent method and no body.
    pub retryable: bool,
    /// Timeout for each attempt's response headers.
    pub timeout: Duration,
    /// How long the whole exchange, retries included, may last from when it is sent.
    pub within: Millis,
}

impl Upstream {
    /// An upstream from its config, with a breaker and a retry budget. A registry service's
    /// watch starts here, so it needs a tokio runtime.
    pub fn new(
        name: &str,
        config: &UpstreamConfig,
        breaker: &BreakerSection,
        retry: &RetryConfig,
    ) -> Result<Self, String> {
        let endpoints = match (&config.url, &config.service, &config.registry) {
            (Some(url), None, None) => {
                let uri: Uri = url.parse().map_err(|e| format!("{e}"))?;
                if uri.scheme_str() != Some("http") || uri.authority().is_none() {
                    return Err("only http://host:port upstreams are supported".to_owned());
                }
                Endpoints::Fixed(Arc::new(Pool::new(
                    uri.authority().map(|a| a.as_str()).unwrap_or_default(),
                    MAX_IDLE_PER_UPSTREAM,
                )?))
            }
            (None, Some(service), Some(registry)) => Endpoints::Discovered(Discovered::start(
                name,
                service,
                registry,
                config.balance,
                MAX_IDLE_PER_UPSTREAM,
            )?),
            _ => return Err("give either url, or service and registry".to_owned()),
        };
        let breaker = Breaker::new(
            BreakerConfig {
                window: WindowKind::CountBased {
                    size: breaker.window,
                },
                minimum_calls: breaker.minimum_calls,
                failure_rate_threshold: breaker.failure_rate_threshold,
                wait_in_open: Millis(breaker.wait_in_open_ms),
                permitted_calls_in_half_open: breaker.permitted_calls_in_half_open,
                ..BreakerConfig::default()
            },
            lab_runtime::TokioClock::new(),
        )
        .map_err(|e| e.to_string())?;
        Ok(Self {
            name: name.to_owned(),
            endpoints,
            timeout: Duration::from_millis(config.timeout_ms),
            breaker: Arc::new(breaker),
            budget: RetryBudget::new(retry.budget_ratio, retry.min_retries),
            max_attempts: retry.max_attempts.max(1),
            clock: TokioClock::new(),
        })
    }

    // ANCHOR: send
    /// Sends a request through the breaker, retrying when that is safe and affordable.
    pub async fn send(&self, outgoing: Outgoing) -> Result<Response<PooledBody>, UpstreamError> {
        let Outgoing {
            method,
            uri,
            mut headers,
            body,
            retryable,
            timeout,
            within,
        } = outgoing;
        // One clock reading starts the exchange and its first attempt.
        let mut started = self.clock.now();
        let deadline = started + within;
        let attempts = if retryable { self.max_attempts } else { 1 };
        self.budget.deposit();
        let mut body = Some(body);
        let mut attempt = 0;
        // The instance that failed last, which the next attempt avoids if it can.
        let mut avoid: Option<String> = None;
        // A request that never left, kept for its one try on another instance.
        let mut unsent: Option<Request<Body>> = None;
        let mut rerouted = false;
        loop {
            attempt += 1;
            let may_retry = || attempt < attempts && self.budget.try_withdraw();
            let Some(pool) = self.endpoints.pick(avoid.as_deref()) else {
                return Err(UpstreamError::NoInstance {
                    upstream: self.name.clone(),
                });
            };
            // An open breaker is an answer, not a failure to retry: retrying it is exactly
            // the hammering the breaker exists to prevent.
            let admission =
                self.breaker
                    .try_acquire()
                    .map_err(|rejected| UpstreamError::BreakerOpen {
                        upstream: self.name.clone(),
                        rejected,
                    })?;
            if attempt > 1 || rerouted {
                started = self.clock.now();
            }
            // One clock reading serves the deadline, the timer and the breaker's duration.
            let per_try = timeout.min(self.clock.real(deadline.saturating_sub(started)));
            let request = unsent.take().unwrap_or_else(|| {
                let mut request = Request::new(body.take().unwrap_or_else(Body::empty));
                *request.method_mut() = method.clone();
                // The last attempt takes the headers; an earlier one sends a copy.
                *request.headers_mut() = if attempt < attempts {
                    headers.clone()
                } else {
                    std::mem::take(&mut headers)
                };
                *request.uri_mut() = uri.clone();
                request
            });
            let took = || self.clock.now().saturating_sub(started);
            let error = match tokio::time::timeout(per_try, pool.try_send(request)).await {
                Ok(Ok(response)) => {
                    let status = response.status();
                    let outcome = if status.is_server_error() {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    };
                    let took = took();
                    admission.record(outcome, took);
                    self.endpoints.record(pool.authority(), took);
                    let worth_retrying = matches!(
                        status,
                        StatusCode::BAD_GATEWAY
                            | StatusCode::SERVICE_UNAVAILABLE
                            | StatusCode::GATEWAY_TIMEOUT
                    );
                    if worth_retrying && may_retry() {
                        tracing::debug!(upstream = %self.name, %status, attempt, "retrying");
                        crate::trace::retrying(&self.name, attempt, &status);
                        avoid = Some(pool.authority().to_owned());
                        continue;
                    }
                    return Ok(response);
                }
                Ok(Err(SendFailure {
                    error,
                    unsent: returned,
                })) => {
                    if let PoolError::Http(http) = &error
                        && let Some(guard) = body_guard_error(http)
                    {
                        // The client's fault, not the upstream's: says nothing about its health.
                        admission.record(Outcome::Ignored, took());
                        return Err(UpstreamError::Body(guard));
                    }
                    admission.record(Outcome::Failure, took());
                    tracing::warn!(
                        upstream = %self.name,
                        address = %pool.authority(),
                        error = %error_chain(&error),
                        "upstream unreachable"
                    );
                    // ANCHOR: reroute
                    // Refused, or reset before a byte was written: the instance never saw
                    // the request, so it may go to another one once, POST or not, if the
                    // budget allows. The registry will drop a dead instance after its TTL;
                    // until then this keeps its death from reaching the clients.
                    if let Some(request) = returned
                        && !rerouted
                        && self.endpoints.len() > 1
                        && self.clock.now() < deadline
                        && self.budget.try_withdraw()
                    {
                        tracing::debug!(upstream = %self.name, address = %pool.authority(),
                            "not sent; trying another instance");
                        crate::trace::retrying(
                            &self.name,
                            attempt,
                            &format_args!("{} never saw the request", pool.authority()),
                        );
                        rerouted = true;
                        unsent = Some(request);
                        avoid = Some(pool.authority().to_owned());
                        attempt -= 1;
                        continue;
                    }
                    // ANCHOR_END: reroute
                    UpstreamError::Unreachable {
                        upstream: self.name.clone(),
                        reason: match &error {
                            PoolError::Connect { source, .. } => {
                                format!("cannot connect: {source}")
                            }
                            // hyper's messages name no address.
                            PoolError::Http(http) => error_chain(http),
                        },
                    }
                }
                Err(_elapsed) => {
                    admission.record(Outcome::Failure, took());
                    UpstreamError::Timeout {
                        upstream: self.name.clone(),
                        timeout: per_try,
                    }
                }
            };
            if self.clock.now() >= deadline || !may_retry() {
                return Err(error);
            }
            avoid = Some(pool.authority().to_owned());
            tracing::debug!(upstream = %self.name, %error, attempt, "retrying");
            crate::trace::retrying(&self.name, attempt, &error);
        }
    }
    // ANCHOR_END: send
}

/// An error and its causes on one line (hyper's top-level message alone is vague).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_budget_allows_about_a_fifth_of_the_load() {
        let budget = RetryBudget::new(0.2, 0);
        let mut retries = 0;
        for _ in 0..100 {
            budget.deposit();
            if budget.try_withdraw() {
                retries += 1;
            }
        }
        assert_eq!(retries, 20);
        let floor = RetryBudget::new(0.2, 3);
        assert!((0..3).all(|_| floor.try_withdraw()));
        assert!(!floor.try_withdraw());
    }
}
