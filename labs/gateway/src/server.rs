//! The gateway's HTTP server: accepting connections, checking request heads, and deciding,
//! once per request, whether the gateway answers it itself or proxies it.
//!
//! Before anything else, the connection's [`CheckedIo`] has checked the request head (400
//! for a bare LF, 414/431 beyond the size limits) and the dispatcher its `Host` (400 for none
//! or two). The gateway's own paths (`/health`, the aggregated view) and, while it is on, the
//! access log live in an axum [`router`]; every other request goes straight to
//! [`proxy_request`]. Which paths are the gateway's own is said in one list,
//! [`own_routes`], which both the router and the dispatcher read, so the two cannot
//! disagree.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::http::{Response, StatusCode};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get};
use futures::future::BoxFuture;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::aggregate;
use crate::config::Config;
use crate::connection::{CheckedIo, Refusals};
use crate::limiter::SharedLimiter;
use crate::problem::problem;
use crate::proxy::proxy_request;
use crate::state::Gateway;
use crate::trace::TraceOf;

/// A path the gateway answers itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnPath {
    /// Exactly this path.
    Exact(&'static str),
    /// This prefix followed by one path parameter (axum's `{id}`).
    Param(&'static str),
}

impl OwnPath {
    /// Whether a request for `path` is one of this route's.
    pub fn matches(self, path: &str) -> bool {
        match self {
            OwnPath::Exact(exact) => path == exact,
            OwnPath::Param(prefix) => path
                .strip_prefix(prefix)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/')),
        }
    }

    /// The route as axum's router writes it.
    pub fn pattern(self) -> String {
        match self {
            OwnPath::Exact(exact) => exact.to_owned(),
            OwnPath::Param(prefix) => format!("{prefix}{{id}}"),
        }
    }
}

/// `/health`.
const HEALTH: OwnPath = OwnPath::Exact("/health");
/// Where the aggregated view lives: `/api/order-details/{id}`.
const ORDER_DETAILS: OwnPath = OwnPath::Param("/api/order-details/");

/// The gateway's own routes for `config`: the one list the router is built from and the
/// dispatcher decides by.
pub fn own_routes(config: &Config) -> Vec<(OwnPath, MethodRouter<Arc<Gateway>>)> {
    let mut routes = vec![(HEALTH, get(health))];
    if config.aggregation.is_some() {
        routes.push((ORDER_DETAILS, get(aggregate::order_details)));
    }
    routes
}

/// `/health`: the gateway is up; the breakers say how each upstream looks from here, and
/// the pools how many connections each has needed (a number that grows with traffic means
/// connections are not being reused).
async fn health(State(gateway): State<Arc<Gateway>>) -> axum::Json<serde_json::Value> {
    let mut upstreams = serde_json::Map::new();
    let mut connections = serde_json::Map::new();
    for (name, upstream) in &gateway.upstreams {
        upstreams.insert(
            name.clone(),
            format!("{:?}", upstream.breaker.state()).into(),
        );
        connections.insert(
            name.clone(),
            serde_json::json!({
                "opened": upstream.endpoints.connections_opened(),
                "idle": upstream.endpoints.idle(),
                "instances": upstream.endpoints.instances(),
            }),
        );
    }
    axum::Json(serde_json::json!({
        "status": "ok",
        "upstreams": upstreams,
        "connections": connections,
    }))
}

/// Whether the access log is on. `tracing`'s filter is fixed at start-up, so the answer is
/// too, and the router and [`serve`] decide once.
fn access_log_on() -> bool {
    tracing::enabled!(target: "access", tracing::Level::INFO)
}

// ANCHOR: access_log
/// The access log: one `tracing` line per request, after it is answered, naming its trace:
/// the gateway's span's when tracing is on, else the client's valid `traceparent`'s (`-` for
/// none).
async fn access_log(request: Request, next: Next) -> Response<Body> {
    let started = Instant::now();
    let incoming = lab_telemetry::proxy::incoming_trace_id(request.headers());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.to_string())
        .unwrap_or_default();
    let response = next.run(request).await;
    let trace_id = response
        .extensions()
        .get::<TraceOf>()
        .map(|trace| trace.0)
        .or(incoming)
        .map_or_else(|| "-".to_owned(), |id| id.to_string());
    tracing::info!(
        target: "access",
        %peer,
        %method,
        %path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        %trace_id,
    );
    response
}
// ANCHOR_END: access_log

/// The router's catch-all handler: [`proxy_request`].
pub async fn proxy(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response<Body> {
    proxy_request(&gateway, peer, request).await
}

// ANCHOR: router
/// The gateway's axum router: its [`own_routes`], and the proxy for everything else.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let mut app = Router::new();
    for (path, handler) in own_routes(&gateway.config) {
        app = app.route(&path.pattern(), handler);
    }
    app = app.fallback(proxy);
    // With the log off, leave the layer out altogether: it would cost more than the routing.
    if access_log_on() {
        app = app.layer(middleware::from_fn(access_log));
    }
    app.with_state(gateway)
}
// ANCHOR_END: router

// ANCHOR: serve
/// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests
/// finish (graceful shutdown).
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Forget full buckets when they are due: memory for clients that went quiet comes back.
    let limited = gateway.limiter.is_some() || gateway.address_limiter.is_some();
    let purger = limited.then(|| {
        let gateway = Arc::clone(&gateway);
        tokio::spawn(async move {
            let gateway = &*gateway;
            tokio::join!(
                forget_when_due(gateway.limiter.as_ref()),
                forget_when_due(gateway.address_limiter.as_ref())
            );
        })
    });
    let dispatch = Dispatch::new(gateway, !access_log_on());
    let header_timeout = Duration::from_millis(dispatch.gateway.config.client_header_timeout_ms);
    let head_limits = dispatch.gateway.config.head_limits();
    let connections = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait a little instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // A response is written in one go; Nagle's algorithm would only hold it back.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let mut dispatch = dispatch.clone();
        dispatch.peer = peer;
        dispatch.refusals = Arc::new(Refusals::default());
        // The head is checked on the raw bytes, before hyper parses it.
        let stream = CheckedIo::new(stream, head_limits, Arc::clone(&dispatch.refusals));
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            dispatch.handle(request.map(Body::new))
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "client connection ended with an error");
            }
        });
    }
    // Stop accepting, then wait for the requests in flight.
    drop(listener);
    connections.shutdown().await;
    if let Some(purger) = purger {
        purger.abort();
    }
    Ok(())
}
// ANCHOR_END: serve

/// Runs a limiter's sweeper, if the limiter is configured; else waits for nothing, forever.
async fn forget_when_due(limiter: Option<&SharedLimiter>) {
    match limiter {
        Some(limiter) => limiter.forget_when_due().await,
        None => std::future::pending().await,
    }
}

/// The service for one client connection.
///
/// The gateway's own paths ([`own_routes`]) go through the router, and so does everything
/// while the access log is on (the log is a router layer). Any other request goes straight
/// to [`proxy_request`]: the router would only send it to its fallback, and the trip through
/// axum's routing, extractors and response mapping costs more per request than the
/// gateway's own route lookup.
#[derive(Clone)]
struct Dispatch {
    gateway: Arc<Gateway>,
    router: Router,
    /// The paths of [`own_routes`], the same list the router was built from.
    own: Arc<[OwnPath]>,
    peer: SocketAddr,
    direct: bool,
    /// What the connection's [`CheckedIo`] refused, answered in place of the next request.
    refusals: Arc<Refusals>,
}

impl Dispatch {
    /// The dispatcher of `gateway`'s connections; `direct`: proxied requests skip the router.
    fn new(gateway: Arc<Gateway>, direct: bool) -> Self {
        let own = own_routes(&gateway.config)
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        Self {
            router: router(Arc::clone(&gateway)),
            own,
            gateway,
            peer: SocketAddr::from(([0, 0, 0, 0], 0)),
            direct,
            refusals: Arc::default(),
        }
    }

    /// Whether a request for `path` goes through the router rather than straight to the proxy.
    fn needs_router(&self, path: &str) -> bool {
        !self.direct || self.own.iter().any(|own| own.matches(path))
    }

    /// Answers one request: through the router when it needs it, straight to the proxy if not.
    fn handle(
        &self,
        mut request: Request,
    ) -> BoxFuture<'static, Result<Response<Body>, Infallible>> {
        if let Some(refused) = self
            .refusals
            .take()
            .map(refused_head)
            .or_else(|| host_problem(&request))
        {
            return Box::pin(std::future::ready(Ok(refused)));
        }
        if self.needs_router(request.uri().path()) {
            request.extensions_mut().insert(ConnectInfo(self.peer));
            return Box::pin(tower::Service::call(&mut self.router.clone(), request));
        }
        let gateway = Arc::clone(&self.gateway);
        let peer = self.peer;
        Box::pin(async move { Ok(proxy_request(&gateway, peer, request).await) })
    }
}

// ANCHOR: head_checks
/// The answer to a head the connection refused; the connection closes after it.
fn refused_head(refusal: gateway_core::framing::HeadRefusal) -> Response<Body> {
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = problem(status, refusal.to_string()).into_response();
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

/// RFC 9112 §3.2: an HTTP/1.1 request without `Host`, or any request with two, is a 400. Two
/// hosts are a classic of request smuggling: the gateway and the upstream might each pick
/// another.
fn host_problem(request: &Request) -> Option<Response<Body>> {
    let mut hosts = request.headers().get_all(header::HOST).iter();
    let detail = match (hosts.next(), hosts.next()) {
        (Some(_), None) => return None,
        (None, _) if request.version() < axum::http::Version::HTTP_11 => return None,
        (None, _) => "an HTTP/1.1 request must have a Host header",
        (Some(_), Some(_)) => "the request has more than one Host header",
    };
    let mut response = problem(StatusCode::BAD_REQUEST, detail).into_response();
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    Some(response)
}
// ANCHOR_END: head_checks

#[cfg(test)]
mod tests {
    use super::*;

    /// A path each own route serves, for the test below.
    fn sample(path: OwnPath) -> String {
        match path {
            OwnPath::Exact(exact) => exact.to_owned(),
            OwnPath::Param(prefix) => format!("{prefix}1001"),
        }
    }

    #[tokio::test]
    async fn every_path_the_router_serves_is_dispatched_to_it() {
        // Upstreams nobody listens on: the proxy could only answer 404 (no route) or 502.
        let nowhere = SocketAddr::from(([127, 0, 0, 1], 9));
        let config = Config::demo(nowhere, nowhere, nowhere, nowhere);
        let gateway = Arc::new(Gateway::new(config).expect("demo config"));
        let dispatch = Dispatch::new(Arc::clone(&gateway), true);
        let routes = own_routes(&gateway.config);
        assert!(
            routes.len() >= 2,
            "the demo has /health and the aggregated view"
        );
        for (path, _) in routes {
            let sample = sample(path);
            assert!(
                dispatch.needs_router(&sample),
                "{sample} is a route of the router but would be proxied"
            );
            // The router answers it itself, not through its proxy fallback.
            let mut request = Request::get(sample.as_str())
                .header(header::HOST, "gateway")
                .body(Body::empty())
                .expect("request");
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 1))));
            let answer = tower::ServiceExt::oneshot(router(Arc::clone(&gateway)), request)
                .await
                .expect("infallible");
            assert_ne!(
                answer.status(),
                StatusCode::NOT_FOUND,
                "{sample} fell through to the proxy"
            );
        }
        assert!(!dispatch.needs_router("/api/users/7"));
        assert!(!dispatch.needs_router("/api/order-details/1/2"));
    }
}
