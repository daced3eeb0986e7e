//! The guide's flow: client → gateway → order service → user ∥ product services, each a real
//! HTTP service on loopback, each instrumented with [`Telemetry`] and exporting to the
//! collector. The user and product services' latency (20 ms and 50 ms by default) and the
//! product service's failing are changeable at runtime (`PUT /admin/behaviour`, or
//! [`Behaviour`] directly), and one service's clock can be set off to show skew correction.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use lab_http::Problem;
use lab_runtime::Running;
use serde::{Deserialize, Serialize};

use crate::telemetry::{Telemetry, Wire, traced_get};

/// How a leaf service behaves, changeable while it runs.
#[derive(Debug)]
pub struct Behaviour {
    latency_ms: AtomicU64,
    failing: AtomicBool,
}

/// The body of `PUT /admin/behaviour`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BehaviourUpdate {
    /// How long each request takes, in ms.
    pub latency_ms: Option<u64>,
    /// Whether requests fail with 503.
    pub failing: Option<bool>,
}

impl Behaviour {
    /// A healthy service taking `latency_ms` per request.
    pub fn new(latency_ms: u64) -> Arc<Behaviour> {
        Arc::new(Behaviour {
            latency_ms: AtomicU64::new(latency_ms),
            failing: AtomicBool::new(false),
        })
    }

    /// Sets the latency.
    pub fn set_latency(&self, ms: u64) {
        self.latency_ms.store(ms, Ordering::Relaxed);
    }

    /// Makes requests fail (503) or succeed.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
    }
}

/// The flow's settings.
#[derive(Clone, Debug)]
pub struct FlowConfig {
    /// The user service's latency (the guide: 20 ms).
    pub user_ms: u64,
    /// The product service's latency (the guide: 50 ms).
    pub product_ms: u64,
    /// How the services send their spans.
    pub wire: Wire,
    /// A service whose clock is off, and by how many ms.
    pub skew: Option<(&'static str, i64)>,
    /// Seeds every service's ids (each its own stream), for a run that replays.
    pub seed: Option<u64>,
}

impl Default for FlowConfig {
    fn default() -> FlowConfig {
        FlowConfig {
            user_ms: 20,
            product_ms: 50,
            wire: Wire::Protobuf,
            skew: None,
            seed: None,
        }
    }
}

/// The four services, running.
#[derive(Debug)]
pub struct Flow {
    /// Where the client sends `GET /order-details/{id}`.
    pub gateway_url: String,
    /// Each service's base URL, by name.
    pub urls: Vec<(&'static str, String)>,
    /// The user service's behaviour.
    pub user: Arc<Behaviour>,
    /// The product service's behaviour.
    pub product: Arc<Behaviour>,
    telemetry: Vec<Arc<Telemetry>>,
    servers: Vec<Running>,
}

#[derive(Clone)]
struct Leaf {
    behaviour: Arc<Behaviour>,
    kind: &'static str,
}

async fn leaf(State(leaf): State<Leaf>, Path(id): Path<String>) -> Response {
    let ms = leaf.behaviour.latency_ms.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    if leaf.behaviour.failing.load(Ordering::Relaxed) {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            format!("the {} service is failing", leaf.kind),
        )
        .into_response();
    }
    Json(serde_json::json!({ "kind": leaf.kind, "id": id })).into_response()
}

async fn admin(
    State(leaf): State<Leaf>,
    Json(update): Json<BehaviourUpdate>,
) -> Json<BehaviourUpdate> {
    if let Some(ms) = update.latency_ms {
        leaf.behaviour.set_latency(ms);
    }
    if let Some(failing) = update.failing {
        leaf.behaviour.set_failing(failing);
    }
    Json(BehaviourUpdate {
        latency_ms: Some(leaf.behaviour.latency_ms.load(Ordering::Relaxed)),
        failing: Some(leaf.behaviour.failing.load(Ordering::Relaxed)),
    })
}

fn leaf_router(
    telemetry: &Arc<Telemetry>,
    behaviour: Arc<Behaviour>,
    kind: &'static str,
    route: &str,
) -> Router {
    let state = Leaf { behaviour, kind };
    telemetry
        .instrument(
            Router::new()
                .route(route, get(leaf))
                .with_state(state.clone()),
        )
        .merge(
            Router::new()
                .route("/admin/behaviour", put(admin))
                .with_state(state),
        )
        .fallback(lab_http::not_found)
}

#[derive(Clone)]
struct Upstreams {
    client: reqwest::Client,
    next: Vec<String>,
}

async fn relay(
    response: anyhow::Result<reqwest::Response>,
    what: &str,
) -> Result<serde_json::Value, Response> {
    let failed = |detail: String| {
        Problem::new(StatusCode::BAD_GATEWAY, "Upstream failed", detail).into_response()
    };
    let response = response.map_err(|e| failed(format!("{what}: {e}")))?;
    if !response.status().is_success() {
        return Err(failed(format!("{what} answered {}", response.status())));
    }
    response
        .json()
        .await
        .map_err(|e| failed(format!("{what}: {e}")))
}

// ANCHOR: order
async fn order(State(up): State<Upstreams>, Path(id): Path<String>) -> Response {
    let (user_url, product_url) = (
        format!("{}/users/456", up.next[0]),
        format!("{}/products/789", up.next[1]),
    );
    let (user, product) = tokio::join!(
        traced_get(&up.client, &user_url),
        traced_get(&up.client, &product_url)
    );
    let (user, product) = (
        relay(user, "user service").await,
        relay(product, "product service").await,
    );
    match (user, product) {
        (Ok(user), Ok(product)) => {
            Json(serde_json::json!({ "order": id, "user": user, "product": product }))
                .into_response()
        }
        (Err(problem), _) | (_, Err(problem)) => problem,
    }
}
// ANCHOR_END: order

async fn gateway(State(up): State<Upstreams>, Path(id): Path<String>) -> Response {
    match relay(
        traced_get(&up.client, &format!("{}/orders/{id}", up.next[0])).await,
        "order service",
    )
    .await
    {
        Ok(order) => Json(order).into_response(),
        Err(problem) => problem,
    }
}

impl Flow {
    /// Starts the four services on free loopback ports, exporting to `collector_url`.
    pub async fn start(collector_url: &str, config: FlowConfig) -> anyhow::Result<Flow> {
        let skew = |name: &str| {
            config
                .skew
                .filter(|(s, _)| *s == name)
                .map_or(0, |(_, ms)| ms)
        };
        let mut telemetry = Vec::new();
        for (i, name) in ["gateway", "order", "user", "product"]
            .into_iter()
            .enumerate()
        {
            let seed = config
                .seed
                .map(|s| s.wrapping_mul(16).wrapping_add(i as u64));
            telemetry.push(Arc::new(
                Telemetry::new(name, collector_url, config.wire, skew(name), seed).await?,
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let user = Behaviour::new(config.user_ms);
        let product = Behaviour::new(config.product_ms);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let user_server = lab_runtime::spawn(
            leaf_router(&telemetry[2], user.clone(), "user", "/users/{id}"),
            addr,
        )
        .await?;
        let product_server = lab_runtime::spawn(
            leaf_router(&telemetry[3], product.clone(), "product", "/products/{id}"),
            addr,
        )
        .await?;
        let url = |r: &Running| format!("http://{}", r.addr);
        let order_router = telemetry[1]
            .instrument(
                Router::new()
                    .route("/orders/{id}", get(order))
                    .with_state(Upstreams {
                        client: client.clone(),
                        next: vec![url(&user_server), url(&product_server)],
                    }),
            )
            .fallback(lab_http::not_found);
        let order_server = lab_runtime::spawn(order_router, addr).await?;
        let gateway_router = telemetry[0]
            .instrument(
                Router::new()
                    .route("/order-details/{id}", get(gateway))
                    .with_state(Upstreams {
                        client,
                        next: vec![url(&order_server)],
                    }),
            )
            .fallback(lab_http::not_found);
        let gateway_server = lab_runtime::spawn(gateway_router, addr).await?;
        Ok(Flow {
            gateway_url: url(&gateway_server),
            urls: vec![
                ("gateway", url(&gateway_server)),
                ("order", url(&order_server)),
                ("user", url(&user_server)),
                ("product", url(&product_server)),
            ],
            user,
            product,
            telemetry,
            servers: vec![gateway_server, order_server, user_server, product_server],
        })
    }

    /// Exports every finished span of every service now.
    pub async fn flush(&self) -> anyhow::Result<()> {
        for telemetry in &self.telemetry {
            telemetry.flush().await?;
        }
        Ok(())
    }

    /// Stops the services and their exporters.
    pub async fn stop(self) {
        for server in self.servers {
            server.stop().await;
        }
        for telemetry in &self.telemetry {
            let _ = telemetry.shutdown().await;
        }
    }
}
