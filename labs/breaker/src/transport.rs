//! Transports: how the order client's requests reach the payment service.
//!
//! Everything above this module speaks `tower::Service<Request<Body>>`, and so
//! does an axum `Router`. That is the seam the tests use: the scenario driver
//! runs over real sockets in the demo ([`HttpTransport`]) and over the router
//! itself, in-process and on a paused clock, in the snapshot test. Same code,
//! two transports, no mocks.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use http::{Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{BoxError, Service};

/// Any tower service that can carry an HTTP request to the payment service.
///
/// A blanket trait alias so the bounds are written once.
pub trait Transport:
    Service<
        Request<Body>,
        Response = Response<Body>,
        Error: Into<BoxError> + Send + 'static,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<T> Transport for T where
    T: Service<
            Request<Body>,
            Response = Response<Body>,
            Error: Into<BoxError> + Send + 'static,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

/// An HTTP/1 client (hyper) aimed at one upstream address.
///
/// Requests carry only a path (`/pay`); this transport fills in the authority,
/// the way a service-discovery layer would in production.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: Client<HttpConnector, Body>,
    upstream: SocketAddr,
}

impl HttpTransport {
    /// A transport that sends every request to `upstream`.
    pub fn new(upstream: SocketAddr) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self { client, upstream }
    }
}

impl Service<Request<Body>> for HttpTransport {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The pooled client accepts requests at any time; back-pressure, if
        // any, shows up as latency, which is exactly what the timeout bounds.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let upstream = self.upstream;
        let client = self.client.clone();
        Box::pin(async move {
            let uri: Uri = format!("http://{upstream}{path}").parse()?;
            *request.uri_mut() = uri;
            let response = client.request(request).await?;
            Ok(response.map(Body::new))
        })
    }
}
