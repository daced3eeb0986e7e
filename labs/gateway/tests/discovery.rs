//! The gateway as a discovery client: an upstream named as a service in the discovery lab's
//! registry, instances that register with TTL checks and heartbeat, and what the gateway does
//! when one of them dies, when a new one comes, and when the registry itself goes away.
//!
//! Everything runs on real sockets and the real clock (TTLs of 2 s), and the tests wait on
//! events (the instance set the gateway's `/health` shows), never for a fixed time.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use lab_discovery::{RegistryService, Settings};
use lab_gateway::config::{Config, UpstreamConfig};
use lab_runtime::TokioClock;
use lab_test_support::wait_until_async;
use serde_json::{Value, json};
use support::*;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// How long an instance's TTL check stays passing without a heartbeat.
const TTL: &str = "2s";
/// How often an instance heartbeats: well inside the TTL, even on a busy machine.
const HEARTBEAT: Duration = Duration::from_millis(200);
/// Tries of `wait_until_async` (100 ms apart): room for a TTL to run out, many times over.
const TRIES: u32 = 300;

/// Serves `router` until aborted; aborting ends every connection too (axum's `serve` would
/// leave open connections served, which is not what a killed process does).
fn serve_killable(listener: TcpListener, router: axum::Router) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            let service = TowerToHyperService::new(router.clone());
            connections.spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// The discovery lab's registry on a free port.
struct Registry {
    url: String,
    server: JoinHandle<()>,
}

impl Registry {
    async fn start() -> Registry {
        let settings = Settings::default();
        let service = RegistryService::start(&settings, TokioClock::new()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = serve_killable(listener, service.router(&settings));
        Registry { url, server }
    }

    /// The registry's index for `user` now.
    async fn index(&self, client: &TestClient) -> u64 {
        let answer = call(
            client,
            get(&format!("{}/v1/health/service/user", self.url), None),
        )
        .await;
        answer.header("x-consul-index").unwrap().parse().unwrap()
    }
}

/// One instance of `user`: an echo server that counts its hits, registered in the registry
/// with a TTL check that it heartbeats.
struct Instance {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    server: JoinHandle<()>,
    heartbeat: JoinHandle<()>,
}

impl Instance {
    async fn start(registry: &Registry, id: &str) -> Instance {
        let hits = Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = serve_killable(listener, echo_router(Arc::clone(&hits)));
        let client = client();
        let registration = json!({
            "Name": "user", "ID": id, "Address": "127.0.0.1", "Port": addr.port(),
            "Check": {"TTL": TTL, "Status": "passing"}
        });
        let answer = call(
            &client,
            put(
                &format!("{}/v1/agent/service/register", registry.url),
                registration.to_string(),
            ),
        )
        .await;
        assert_eq!(answer.status, 200, "register {id}: {:?}", answer.body);
        let pass = format!("{}/v1/agent/check/pass/service:{id}", registry.url);
        let heartbeat = tokio::spawn(async move {
            loop {
                let _ = client.request(put(&pass, String::new())).await;
                tokio::time::sleep(HEARTBEAT).await;
            }
        });
        Instance {
            addr,
            hits,
            server,
            heartbeat,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// What a crash does: the process, its connections and its heartbeats stop at once.
    fn kill(&self) {
        self.server.abort();
        self.heartbeat.abort();
    }
}

fn put(url: &str, body: String) -> http::Request<Full<Bytes>> {
    http::Request::put(url)
        .header("content-type", "application/json")
        .body(Full::from(body))
        .unwrap()
}

fn post(url: &str) -> http::Request<Full<Bytes>> {
    http::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::from(r#"{"order":7}"#))
        .unwrap()
}

/// A gateway whose upstream `echo` is the service `user` in `registry`, read from TOML as
/// an operator would write it.
async fn gateway_for(registry: &Registry, balance: &str) -> RunningGateway {
    let upstream: UpstreamConfig = toml::from_str(&format!(
        "service = \"user\"\nregistry = \"{}\"\n{balance}",
        registry.url
    ))
    .expect("an upstream may name a registry service");
    let mut config: Config = echo_config("http://127.0.0.1:9");
    config.upstreams.insert("echo".to_owned(), upstream);
    RunningGateway::start(config).await
}

/// The instances the gateway routes `echo` to now, as its `/health` lists them.
async fn instances(gateway: &RunningGateway, client: &TestClient) -> Vec<String> {
    let health = call(client, get(&gateway.url("/health"), None))
        .await
        .json();
    health["connections"]["echo"]["instances"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_for_instances(
    gateway: &RunningGateway,
    client: &TestClient,
    what: &str,
    wanted: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    wait_until_async(what, TRIES, || async {
        let now = instances(gateway, client).await;
        wanted(&now).then_some(now)
    })
    .await
}

fn addresses(instances: &[&Instance]) -> Vec<String> {
    let mut all: Vec<String> = instances.iter().map(|i| i.addr.to_string()).collect();
    all.sort();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_moves_off_a_killed_instance_once_its_ttl_runs_out() {
    let registry = Registry::start().await;
    let a = Instance::start(&registry, "user-a").await;
    let b = Instance::start(&registry, "user-b").await;
    let c = Instance::start(&registry, "user-c").await;
    let gateway = gateway_for(&registry, "").await;
    let client = client();
    let all = addresses(&[&a, &b, &c]);
    wait_for_instances(&gateway, &client, "the three instances", |now| now == all).await;

    // Round-robin: the traffic spreads over all three.
    for _ in 0..30 {
        let answer = call(&client, get(&gateway.url("/open/users/7"), None)).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    assert_eq!((a.hits(), b.hits(), c.hits()), (10, 10, 10));

    a.kill();
    // Until its TTL runs out the registry still lists it: a request that picks it finds
    // the connection refused, nothing sent, and goes to another instance, POST included.
    // Three POSTs (never retried as such): round-robin sends one of them to user-a.
    for _ in 0..3 {
        let answer = call(&client, post(&gateway.url("/open/orders"))).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    assert_eq!(a.hits(), 10, "a killed instance serves nothing");
    assert_eq!(b.hits() + c.hits(), 23, "the other two took all three");

    let survivors = addresses(&[&b, &c]);
    wait_for_instances(&gateway, &client, "the watch to drop user-a", |now| {
        now == survivors
    })
    .await;
    let (b_before, c_before) = (b.hits(), c.hits());
    for _ in 0..40 {
        let answer = call(&client, get(&gateway.url("/open/users/7"), None)).await;
        assert_eq!(answer.status, 200, "no request fails after the eviction");
    }
    assert_eq!(a.hits(), 10, "the evicted instance gets no more traffic");
    assert_eq!(
        (b.hits() - b_before, c.hits() - c_before),
        (20, 20),
        "every later request goes to the other two, in turn"
    );
    registry.server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_instance_is_used_after_one_watch_wake() {
    let registry = Registry::start().await;
    let a = Instance::start(&registry, "user-a").await;
    let gateway = gateway_for(&registry, "").await;
    let client = client();
    let one = addresses(&[&a]);
    wait_for_instances(&gateway, &client, "user-a", |now| now == one).await;

    let b = Instance::start(&registry, "user-b").await;
    let registered_at = registry.index(&client).await;
    let both = addresses(&[&a, &b]);
    let seen = wait_for_instances(&gateway, &client, "a wake listing user-b", |now| {
        now.len() == 2
    })
    .await;
    assert_eq!(seen, both);
    // Heartbeats that change no status move no index: the registration moved it once, and
    // the one answer to the watch's parked query at that index brought user-b.
    assert_eq!(
        gateway.gateway.upstreams["echo"].endpoints.index(),
        registered_at
    );
    for _ in 0..10 {
        assert_eq!(
            call(&client, get(&gateway.url("/open/users/7"), None))
                .await
                .status,
            200
        );
    }
    assert_eq!(b.hits(), 5, "the new instance takes its turn at once");
    registry.server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_known_instances_are_kept_while_the_registry_is_down() {
    let registry = Registry::start().await;
    let a = Instance::start(&registry, "user-a").await;
    let b = Instance::start(&registry, "user-b").await;
    let gateway = gateway_for(&registry, "balance = \"p2c\"").await;
    let client = client();
    let both = addresses(&[&a, &b]);
    wait_for_instances(&gateway, &client, "both instances", |now| now == both).await;

    // The registry dies, its blocking queries with it; the instances live on.
    registry.server.abort();
    for _ in 0..20 {
        let answer = call(&client, get(&gateway.url("/open/users/7"), None)).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    assert_eq!(a.hits() + b.hits(), 20);
    assert_eq!(instances(&gateway, &client).await, both);
}

#[test]
fn an_upstream_names_a_url_or_a_registry_service_never_both() {
    let parse = |upstream: &str| {
        Config::from_toml(&format!(
            "[upstreams.user]\n{upstream}\n[[routes]]\nprefix = \"/u\"\nupstream = \"user\"\nauth = false\n"
        ))
        .map(|_| ())
        .map_err(|error| error.to_string())
    };
    assert_eq!(parse("url = \"http://127.0.0.1:4001\""), Ok(()));
    assert_eq!(
        parse("service = \"user\"\nregistry = \"http://127.0.0.1:8500\""),
        Ok(())
    );
    assert_eq!(
        parse("service = \"user\"\nregistry = \"http://127.0.0.1:8500\"\nbalance = \"p2c\""),
        Ok(())
    );
    for (upstream, says) in [
        (
            "url = \"http://127.0.0.1:4001\"\nservice = \"user\"\nregistry = \"http://127.0.0.1:8500\"",
            "both url and service",
        ),
        ("timeout_ms = 100", "neither url nor service"),
        ("service = \"user\"", "no registry"),
        (
            "url = \"http://127.0.0.1:4001\"\nregistry = \"http://127.0.0.1:8500\"",
            "a url needs no registry",
        ),
        (
            "url = \"http://127.0.0.1:4001\"\nbalance = \"p2c\"",
            "balance applies only",
        ),
        (
            "service = \"user\"\nregistry = \"http://127.0.0.1:8500\"\nbalance = \"fastest\"",
            "unknown variant",
        ),
    ] {
        let error = parse(upstream).expect_err(upstream);
        assert!(error.contains(says), "{upstream}: {error}");
    }
}
