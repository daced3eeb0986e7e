//! The gateway itself: an HTTP server that routes, authenticates, limits and forwards.
//!
//! Before any of it, the connection's [`CheckedIo`] has checked the request head (400 for a
//! bare LF, 414/431 beyond the size limits) and the dispatcher its `Host` (400 for none or
//! two). Every proxied request then takes the same path through [`proxy_request`]: route it
//! (400 for a hostile path, 404 for no route) → limit its address (429) → authenticate
//! (401/403) → rate-limit its subject (429) → check the declared size (413) → read the body
//! ahead into a small buffer (400/408/413) → forward through the upstream's breaker with
//! retries (502/503/504) → stream the answer back. Each refusal is a problem+json with a
//! `detail` saying why. `/health`, the aggregated view and the access log live in an axum
//! [`router`]; [`serve`] sends a request there only when it needs them.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderName};
use axum::http::{HeaderMap, Method, Response, StatusCode};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::future::BoxFuture;
use gateway_core::headers::{Cidr, client_ip};
use gateway_core::{Decision, RouteError, RouteTable};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::aggregate;
use crate::auth::{AuthError, Authenticator, Claims};
use crate::config::{Config, RouteConfig};
use crate::connection::{CheckedIo, Refusals};
use crate::forward::{GuardedBody, buffer_body, clean_response_headers, prepare_upstream_headers};
use crate::limiter::{SharedLimiter, address_group};
use crate::problem::{Problem, problem};
use crate::upstream::{Outgoing, Upstream};

/// Everything the handlers share, built once from a [`Config`].
#[derive(Debug)]
pub struct Gateway {
    /// The configuration it was built from.
    pub config: Config,
    table: RouteTable,
    /// Upstreams by name.
    pub upstreams: HashMap<String, Arc<Upstream>>,
    auth: Option<Authenticator>,
    /// The rate limiter, when configured.
    pub limiter: Option<SharedLimiter>,
    /// The per-address limiter checked before authentication, when configured.
    pub address_limiter: Option<SharedLimiter>,
    subject_header: HeaderName,
}

impl Gateway {
    /// Builds the gateway: routing table, upstreams with breakers, keys, limiter.
    pub fn new(config: Config) -> anyhow::Result<Self> {
        config.check()?;
        let table = RouteTable::new(
            config
                .routes
                .iter()
                .map(|route| gateway_core::Route {
                    prefix: route.prefix.clone(),
                    host: route.host.clone(),
                    upstream: route.upstream.clone(),
                })
                .collect(),
        )?;
        let upstreams = config
            .upstreams
            .iter()
            .map(|(name, upstream)| {
                Upstream::new(name, upstream, &config.breaker, &config.retry)
                    .map(|built| (name.clone(), Arc::new(built)))
                    .map_err(|reason| anyhow::anyhow!("upstream {name}: {reason}"))
            })
            .collect::<anyhow::Result<_>>()?;
        let auth = config.auth.clone().map(Authenticator::new).transpose()?;
        let subject_header = HeaderName::try_from(
            config
                .auth
                .as_ref()
                .map_or("x-authenticated-subject", |auth| {
                    auth.subject_header.as_str()
                }),
        )?;
        let limiter = config
            .rate_limit
            .as_ref()
            .map(SharedLimiter::new)
            .transpose()?;
        let address_limiter = config
            .address_rate_limit
            .as_ref()
            .map(SharedLimiter::new)
            .transpose()?;
        Ok(Self {
            table,
            upstreams,
            auth,
            limiter,
            address_limiter,
            subject_header,
            config,
        })
    }

    /// The authenticator, when `[auth]` is configured.
    pub fn authenticator(&self) -> Option<&Authenticator> {
        self.auth.as_ref()
    }

    /// The header that carries the verified subject upstream.
    pub(crate) fn subject_header(&self) -> &HeaderName {
        &self.subject_header
    }

    /// The proxies whose `X-Forwarded-For` entries are believed.
    pub(crate) fn trusted(&self) -> &[Cidr] {
        &self.config.trusted_proxies
    }

    fn route_config(&self, found: &gateway_core::RouteMatch<'_>) -> Option<&RouteConfig> {
        let index = self
            .table
            .routes()
            .iter()
            .position(|route| std::ptr::eq(route, found.route))?;
        self.config.routes.get(index)
    }

    // ANCHOR: admit
    /// Authentication and rate limiting, shared by proxied and aggregated routes.
    ///
    /// First a coarse limit per client address, so that requests with bad tokens are
    /// limited too (verifying an RS256 signature costs far more than refusing a request).
    /// Then the token; then the finer limit, keyed by the token's subject when there is one
    /// (a user behind a shared NAT is not limited with strangers) and by the client IP
    /// otherwise — the IP from `X-Forwarded-For` only when the connection comes from a
    /// trusted proxy.
    pub async fn admit(
        &self,
        headers: &HeaderMap,
        peer: SocketAddr,
        needs_token: bool,
        required_scope: Option<&str>,
    ) -> Result<Admitted, Response<Body>> {
        let client = || {
            let forwarded = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|value| value.to_str().ok());
            client_ip(peer.ip(), forwarded, self.trusted())
        };
        if let Some(limiter) = &self.address_limiter {
            let ip = client();
            let decision = limiter.check_address(ip);
            if let Decision::Limited { retry_after, .. } = decision {
                let mut response = problem(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "the address {} is over its rate limit; retry in {retry_after}",
                        address_group(ip)
                    ),
                )
                .into_response();
                limiter.write_headers(&decision, response.headers_mut());
                return Err(response);
            }
        }
        let claims = match (&self.auth, needs_token) {
            (Some(auth), true) => {
                let authorization = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|value| value.to_str().ok());
                let claims = auth
                    .authenticate(authorization)
                    .await
                    .map_err(unauthorized)?;
                if let Some(scope) = required_scope
                    && !claims.has_scope(scope)
                {
                    return Err(problem(
                        StatusCode::FORBIDDEN,
                        format!(
                            "the token of {:?} lacks the scope {scope:?} this route requires",
                            claims.sub
                        ),
                    )
                    .into_response());
                }
                Some(claims)
            }
            _ => None,
        };
        let decision = self.limiter.as_ref().map(|limiter| {
            let key = match &claims {
                Some(claims) => format!("sub:{}", claims.sub),
                None => format!("ip:{}", client()),
            };
            (limiter.check(&key), key)
        });
        if let (Some(limiter), Some((decision @ Decision::Limited { retry_after, .. }, key))) =
            (&self.limiter, &decision)
        {
            let mut response = problem(
                StatusCode::TOO_MANY_REQUESTS,
                format!("{key} is over its rate limit; retry in {retry_after}"),
            )
            .into_response();
            limiter.write_headers(decision, response.headers_mut());
            return Err(response);
        }
        Ok(Admitted {
            claims,
            decision: decision.map(|(decision, _)| decision),
        })
    }
    // ANCHOR_END: admit

    /// Adds the rate-limit headers of an admitted request to its response.
    pub fn finish(&self, admitted: &Admitted, response: &mut Response<Body>) {
        if let (Some(limiter), Some(decision)) = (&self.limiter, &admitted.decision) {
            limiter.write_headers(decision, response.headers_mut());
        }
    }
}

/// What `admit` learned about a request it let through.
#[derive(Debug)]
pub struct Admitted {
    /// The verified token's claims, if the route needed one.
    pub claims: Option<Claims>,
    /// The rate limiter's decision, if limiting is on.
    pub decision: Option<Decision>,
}

fn unauthorized(error: AuthError) -> Response<Body> {
    Problem::from(error).into_response()
}

/// The router's catch-all handler: [`proxy_request`].
pub async fn proxy(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response<Body> {
    proxy_request(&gateway, peer, request).await
}

// ANCHOR: proxy
/// Route, admit, forward, stream back: what happens to every proxied request.
pub async fn proxy_request(
    gateway: &Gateway,
    peer: SocketAddr,
    request: Request,
) -> Response<Body> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    let found = match gateway.table.resolve(host, request.uri().path()) {
        Ok(found) => found,
        Err(RouteError::Path(error)) => {
            return problem(StatusCode::BAD_REQUEST, format!("refused path: {error}"))
                .into_response();
        }
        Err(error) => {
            return problem(StatusCode::NOT_FOUND, error.to_string()).into_response();
        }
    };
    let Some(route) = gateway.route_config(&found) else {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "route table out of sync")
            .into_response();
    };
    let Some(upstream) = gateway.upstreams.get(&route.upstream).cloned() else {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "route names no upstream")
            .into_response();
    };
    let admitted = match gateway
        .admit(
            request.headers(),
            peer,
            route.auth,
            route.required_scope.as_deref(),
        )
        .await
    {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal,
    };

    let limit = gateway.config.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is {} bytes; this gateway accepts at most {limit}",
                declared.unwrap_or_default()
            ),
        )
        .into_response();
    }
    // HTTP/1 says "body" with Content-Length or Transfer-Encoding; HTTP/2 by not ending the
    // stream with the headers. `is_end_stream` knows both.
    let has_body = declared.is_some_and(|length| length > 0)
        || request.headers().contains_key(header::TRANSFER_ENCODING)
        || !http_body::Body::is_end_stream(request.body());
    let idempotent = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    );

    let path_and_query = match request.uri().query() {
        Some(query) => format!("{}?{query}", found.path),
        None => found.path.clone(),
    };
    let (mut parts, body) = request.into_parts();
    prepare_upstream_headers(
        &mut parts.headers,
        peer.ip(),
        gateway.trusted(),
        &gateway.subject_header,
        admitted.claims.as_ref().map(|claims| claims.sub.as_str()),
    );
    // A request without a body needs no guard (and no timer): the common GET stays cheap.
    let body = if has_body {
        let guarded = GuardedBody::new(
            body,
            limit,
            Duration::from_millis(gateway.config.client_body_timeout_ms),
        );
        let buffer = gateway.config.request_buffer_bytes;
        if buffer == 0 || declared.is_some_and(|length| length > buffer) {
            // Buffering is off, or the body is too long to wait for: it streams from the start.
            Body::new(guarded)
        } else {
            // Read ahead before the upstream hears of the request; a client that fails
            // within the buffer is answered here and the upstream never sees it.
            match buffer_body(guarded, buffer).await {
                Ok(body) => body,
                Err(error) => {
                    let mut response = problem(error.status(), error.to_string()).into_response();
                    gateway.finish(&admitted, &mut response);
                    return response;
                }
            }
        }
    } else {
        Body::empty()
    };
    let timeout = Duration::from_millis(
        route
            .timeout_ms
            .unwrap_or(upstream.timeout.as_millis() as u64),
    );
    let outgoing = Outgoing {
        method: parts.method,
        path_and_query,
        headers: parts.headers,
        body,
        retryable: idempotent && !has_body,
        timeout,
        deadline: Instant::now() + Duration::from_millis(gateway.config.retry.deadline_ms),
    };
    let mut response = match upstream.send(outgoing).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            clean_response_headers(&mut parts.headers);
            // The upstream's body streams straight through: no buffering, no copy.
            Response::from_parts(parts, Body::new(body))
        }
        Err(error) => Problem::from(error).into_response(),
    };
    gateway.finish(&admitted, &mut response);
    response
}
// ANCHOR_END: proxy

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
                "opened": upstream.pool.connections_opened(),
                "idle": upstream.pool.idle(),
            }),
        );
    }
    axum::Json(serde_json::json!({
        "status": "ok",
        "upstreams": upstreams,
        "connections": connections,
    }))
}

/// Where the aggregated view lives: `/api/order-details/{id}`.
const ORDER_DETAILS: &str = "/api/order-details/";

/// Whether the access log is on. `tracing`'s filter is fixed at start-up, so the answer is
/// too, and the router and [`serve`] decide once.
fn access_log_on() -> bool {
    tracing::enabled!(target: "access", tracing::Level::INFO)
}

/// The access log: one `tracing` line per request, after it is answered.
async fn access_log(request: Request, next: Next) -> Response<Body> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.to_string())
        .unwrap_or_default();
    let response = next.run(request).await;
    tracing::info!(
        target: "access",
        %peer,
        %method,
        %path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
    );
    response
}

// ANCHOR: router
/// The gateway's axum router.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let mut app = Router::new().route("/health", get(health));
    if gateway.config.aggregation.is_some() {
        app = app.route(
            &format!("{ORDER_DETAILS}{{id}}"),
            get(aggregate::order_details),
        );
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
    let dispatch = Dispatch {
        direct: !access_log_on(),
        aggregation: gateway.config.aggregation.is_some(),
        router: router(Arc::clone(&gateway)),
        gateway,
        peer: SocketAddr::from(([0, 0, 0, 0], 0)),
        refusals: Arc::default(),
    };
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
/// The paths the router has routes for (`/health`, the aggregated view) go through it, and so
/// does everything while the access log is on (the log is a router layer). Any other request
/// goes straight to [`proxy_request`]: the router would only send it to its fallback, and
/// the trip through axum's routing, extractors and response mapping costs more per request
/// than the gateway's own route lookup.
#[derive(Clone)]
struct Dispatch {
    gateway: Arc<Gateway>,
    router: Router,
    peer: SocketAddr,
    direct: bool,
    aggregation: bool,
    /// What the connection's [`CheckedIo`] refused, answered in place of the next request.
    refusals: Arc<Refusals>,
}

impl Dispatch {
    fn needs_router(&self, path: &str) -> bool {
        !self.direct || path == "/health" || (self.aggregation && path.starts_with(ORDER_DETAILS))
    }
}

impl Dispatch {
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
