//! [`BreakerLayer`]: the `tower::Layer` that builds a [`BreakerService`].

use std::sync::Arc;

use tower::Layer;

use super::classify::HttpClassifier;
use super::service::BreakerService;
use crate::handle::Breaker;

/// Wraps services with one shared [`Breaker`].
///
/// Clone the layer (or the `Arc<Breaker>`) to put the same breaker in front of several
/// services; build a new `Breaker` per upstream, so one failing dependency does not cut
/// you off from the others.
#[derive(Debug, Clone)]
pub struct BreakerLayer<C = HttpClassifier> {
    breaker: Arc<Breaker>,
    classifier: C,
}

impl BreakerLayer {
    /// A layer that counts 5xx and errors as failures ([`HttpClassifier`]).
    pub fn new(breaker: Arc<Breaker>) -> Self {
        Self {
            breaker,
            classifier: HttpClassifier,
        }
    }
}

impl<C> BreakerLayer<C> {
    /// The same layer with another rule for what counts as a failure.
    pub fn with_classifier<C2>(self, classifier: C2) -> BreakerLayer<C2> {
        BreakerLayer {
            breaker: self.breaker,
            classifier,
        }
    }
}

impl<S, C: Clone> Layer<S> for BreakerLayer<C> {
    type Service = BreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        BreakerService::new(inner, Arc::clone(&self.breaker), self.classifier.clone())
    }
}
