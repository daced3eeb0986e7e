//! Shared scaffolding for the gateway's integration tests: upstreams on ephemeral ports,
//! a gateway in front of them, a plain HTTP client, and tokens good and bad.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Response, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lab_gateway::config::{
    AuthConfig, BreakerSection, Config, RateLimitSection, RetryConfig, RouteConfig, UpstreamConfig,
};
use lab_gateway::services::{self, Running};
use lab_gateway::tokens::{TokenClaims, sign_hs256};
use lab_gateway::{Gateway, serve};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const ISSUER: &str = "test-issuer";
pub const AUDIENCE: &str = "test-gateway";
pub const SECRET: &str = "test-secret-of-sufficient-length-0123456789";

pub fn keys_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("keys")
}

/// An upstream that answers every request with a description of it, and counts hits.
/// Paths with special meaning: `/sleep/<ms>` waits, `/status/<code>` answers that status,
/// `/flaky` answers 503 on odd hits, `/echo` streams the request body straight back.
pub fn echo_router(hits: Arc<AtomicUsize>) -> Router {
    Router::new().fallback(move |request: Request| {
        let hits = Arc::clone(&hits);
        async move {
            let hit = hits.fetch_add(1, Ordering::SeqCst) + 1;
            let path = request.uri().path().to_owned();
            if path.ends_with("/echo") {
                let mut response = Response::new(Body::new(request.into_body()));
                response.headers_mut().insert("connection", "keep-alive, x-upstream-secret".parse().unwrap());
                response.headers_mut().insert("x-upstream-secret", "s".parse().unwrap());
                return response;
            }
            if let Some(ms) = path.rsplit("/sleep/").next().filter(|_| path.contains("/sleep/")) {
                tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
            }
            let mut status = StatusCode::OK;
            if let Some(code) = path.rsplit("/status/").next().filter(|_| path.contains("/status/")) {
                status = StatusCode::from_u16(code.parse().unwrap_or(500)).unwrap();
            }
            if path.ends_with("/flaky") && hit % 2 == 1 {
                status = StatusCode::SERVICE_UNAVAILABLE;
            }
            let headers: BTreeMap<String, Vec<String>> =
                request.headers().keys().map(|name| {
                    (
                        name.to_string(),
                        request.headers().get_all(name).iter().map(|v| v.to_str().unwrap_or("?").to_owned()).collect(),
                    )
                }).collect();
            let method = request.method().to_string();
            let uri = request.uri().to_string();
            let body = request.into_body().collect().await.map(|b| b.to_bytes().len()).unwrap_or(0);
            let mut response = Response::new(Body::from(
                json!({ "method": method, "uri": uri, "headers": headers, "body_len": body, "hit": hit }).to_string(),
            ));
            *response.status_mut() = status;
            response
        }
    })
}

pub struct Upstream {
    pub running: Running,
    pub hits: Arc<AtomicUsize>,
}

impl Upstream {
    pub async fn start() -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let running = services::spawn(
            echo_router(Arc::clone(&hits)),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        Self { running, hits }
    }
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
    pub fn url(&self) -> String {
        format!("http://{}", self.running.addr)
    }
}

pub fn route(prefix: &str, upstream: &str) -> RouteConfig {
    RouteConfig::new(prefix, upstream)
}

pub fn auth_config() -> AuthConfig {
    AuthConfig {
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
        hs256_secret: Some(SECRET.to_owned()),
        rs256_public_key_file: Some(keys_dir().join("rsa-a.pub.pem")),
        jwks_file: None,
        jwks_min_reload_ms: 10_000,
        leeway_secs: 0,
        subject_header: "x-authenticated-subject".to_owned(),
    }
}

/// A config with one upstream `echo` at `url`, `/api/echo` needing a token and `/open`
/// not, no rate limit, permissive breaker.
pub fn echo_config(url: &str) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        max_body_bytes: 1024 * 1024,
        client_body_timeout_ms: 10_000,
        client_header_timeout_ms: 30_000,
        max_header_line_bytes: 8 * 1024,
        max_header_bytes: 32 * 1024,
        request_buffer_bytes: 64 * 1024,
        trusted_proxies: Vec::new(),
        upstreams: BTreeMap::from([("echo".to_owned(), UpstreamConfig::fixed(url, 5_000))]),
        routes: vec![
            route("/api/echo", "echo"),
            RouteConfig {
                auth: false,
                ..route("/open", "echo")
            },
            RouteConfig {
                required_scope: Some("admin".to_owned()),
                ..route("/admin", "echo")
            },
        ],
        auth: Some(auth_config()),
        rate_limit: None,
        address_rate_limit: None,
        retry: RetryConfig {
            max_attempts: 2,
            budget_ratio: 0.2,
            min_retries: 3,
            deadline_ms: 10_000,
        },
        breaker: BreakerSection {
            window: 100,
            minimum_calls: 100,
            failure_rate_threshold: 50.0,
            wait_in_open_ms: 10_000,
            ..BreakerSection::default()
        },
        aggregation: None,
        tracing: None,
    }
}

pub struct RunningGateway {
    pub addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningGateway {
    pub async fn start(config: Config) -> Self {
        let gateway = Arc::new(Gateway::new(config).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, Arc::clone(&gateway), async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            gateway,
            stop: Some(stop),
            task,
        }
    }

    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn call(client: &TestClient, request: http::Request<Full<Bytes>>) -> Answer {
    let response = client.request(request).await.expect("the gateway answers");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("a whole body").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub fn get(url: &str, token: Option<&str>) -> http::Request<Full<Bytes>> {
    let mut builder = http::Request::get(url);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Full::default()).unwrap()
}

pub fn token(sub: &str) -> String {
    sign_hs256(&TokenClaims::new(sub, ISSUER, AUDIENCE, 600), SECRET).unwrap()
}

pub fn claims(sub: &str) -> TokenClaims {
    TokenClaims::new(sub, ISSUER, AUDIENCE, 600)
}

/// Sends raw bytes on a fresh connection and returns what came back before the server
/// closed it (or the first response, if it keeps the connection open).
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut buffer = vec![0u8; 64 * 1024];
    let read = stream.read(&mut buffer).await.unwrap_or(0);
    String::from_utf8_lossy(&buffer[..read]).into_owned()
}

pub fn status_of(raw_response: &str) -> u16 {
    raw_response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

pub fn with_rate_limit(mut config: Config, requests: u32, burst: u32) -> Config {
    config.rate_limit = Some(RateLimitSection {
        requests,
        per_ms: 1_000,
        burst,
        max_clients: 10_000,
    });
    config
}

/// A `tracing` writer that keeps what it is given, for tests that read the gateway's log.
#[derive(Clone, Default)]
pub struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Everything logged so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Sends this thread's `tracing` events at `filter` (no colours) to a [`Captured`] buffer until
/// the guard drops. The tests' runtime has one thread, so the gateway's tasks log there too.
pub fn capture_logs(filter: &str) -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    // `tracing` caches each callsite's interest across every live subscriber. A callsite that
    // another test's thread registered while this subscriber was being registered can keep a
    // stale "never" and stay silent here; asking again now that this subscriber is live closes
    // that window (tests run in parallel threads of one process).
    tracing::callsite::rebuild_interest_cache();
    (captured, guard)
}
