//! [`BreakerService`]: asks the breaker before every call.

use std::sync::Arc;
use std::task::{Context, Poll};

use breaker_core::{Classify, Outcome};
use tower::{BoxError, Service};

use super::future::ResponseFuture;
use crate::handle::Breaker;

/// A service guarded by a circuit breaker. Its error is a `BoxError`: the inner service's
/// error, or a [`Rejected`](super::Rejected) when the breaker refused the call.
#[derive(Debug, Clone)]
pub struct BreakerService<S, C> {
    inner: S,
    breaker: Arc<Breaker>,
    classifier: C,
}

impl<S, C> BreakerService<S, C> {
    /// Guards `inner` with `breaker`, judging results with `classifier`.
    pub fn new(inner: S, breaker: Arc<Breaker>, classifier: C) -> Self {
        Self {
            inner,
            breaker,
            classifier,
        }
    }

    /// The breaker in front of the inner service.
    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.breaker
    }
}

// ANCHOR: call
impl<S, C, Request> Service<Request> for BreakerService<S, C>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
    C: Classify<Result<S::Response, S::Error>> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is the inner service's: a rejection is decided per call, in `call`,
        // at the moment the call would start, not when the caller got ready.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.breaker.try_acquire_owned() {
            // Admitted: start the call and the stopwatch; the future records the outcome.
            Ok(admission) => ResponseFuture::admitted(
                self.inner.call(request),
                admission,
                self.breaker.now(),
                self.classifier.clone(),
            ),
            // Rejected: the inner service is never called. That is the whole point: no
            // socket, no thread, no waiting on a service we believe is down.
            Err(rejected) => ResponseFuture::rejected(rejected),
        }
    }
}
// ANCHOR_END: call

/// A classifier that only looks at `Ok`/`Err`, for non-HTTP services.
pub fn result_classifier<T, E>(result: &Result<T, E>) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Failure,
    }
}
