//! [`ResponseFuture`]: records the outcome when the call completes, releases it when dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use breaker_core::{Classify, Millis, Rejected};
use pin_project_lite::pin_project;
use tower::BoxError;

use crate::handle::{Admission, Breaker};

pin_project! {
    // ANCHOR: drop_guard
    /// The future of a [`BreakerService`](super::BreakerService) call.
    ///
    /// An admitted call owns its [`Admission`]. If the future completes, the result is
    /// classified and recorded. If it is dropped first (the caller gave up, an outer
    /// timeout fired, the task was aborted) the admission's `Drop` hands the permit back.
    /// Without that, a HalfOpen trial abandoned mid-flight would hold its slot forever:
    /// with every slot held and no outcome coming, the breaker would be stuck in HalfOpen,
    /// rejecting everything long after the upstream had recovered.
    #[derive(Debug)]
    pub struct ResponseFuture<F, C> {
        #[pin]
        kind: Kind<F, C>,
    }
    // ANCHOR_END: drop_guard
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<F, C> {
        Admitted {
            #[pin]
            call: F,
            admission: Option<Admission<Arc<Breaker>>>,
            started: Millis,
            classifier: C,
        },
        Rejected {
            rejected: Option<Rejected>,
        },
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(crate) fn admitted(
        call: F,
        admission: Admission<Arc<Breaker>>,
        started: Millis,
        classifier: C,
    ) -> Self {
        Self {
            kind: Kind::Admitted {
                call,
                admission: Some(admission),
                started,
                classifier,
            },
        }
    }

    pub(crate) fn rejected(rejected: Rejected) -> Self {
        Self {
            kind: Kind::Rejected {
                rejected: Some(rejected),
            },
        }
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classify<Result<T, E>>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Rejected { rejected } => match rejected.take() {
                Some(rejected) => Poll::Ready(Err(Box::new(rejected))),
                None => panic!("ResponseFuture polled after completion"),
            },
            KindProj::Admitted {
                call,
                admission,
                started,
                classifier,
            } => {
                let result = std::task::ready!(call.poll(cx));
                if let Some(admission) = admission.take() {
                    let outcome = classifier.classify(&result);
                    let duration = admission.breaker().now() - *started;
                    admission.record(outcome, duration);
                }
                Poll::Ready(result.map_err(Into::into))
            }
        }
    }
}
