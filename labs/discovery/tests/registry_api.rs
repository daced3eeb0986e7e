//! The registry's Consul API through its router, on tokio's paused clock: response shapes and
//! headers, TTL expiry, blocking queries, a restart from SQLite, and hostile input answered
//! with Consul's status and message, never a 5xx, leaving nothing half-registered.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use lab_discovery::{RegistryService, Settings};
use lab_runtime::TokioClock;
use serde_json::{Value, json};
use tower::ServiceExt;

struct Answer {
    status: StatusCode,
    index: Option<u64>,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

async fn call(router: &Router, method: &str, uri: &str, body: impl Into<Body>) -> Answer {
    let response = router
        .clone()
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(body.into())
                .expect("a request"),
        )
        .await
        .expect("the router answers");
    let status = response.status();
    let index = response
        .headers()
        .get("X-Consul-Index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    Answer {
        status,
        index,
        content_type,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn registry(settings: &Settings) -> Router {
    RegistryService::start(settings, TokioClock::new())
        .expect("a registry")
        .router(settings)
}

fn web(id: &str) -> String {
    json!({
        "name": "web", "ID": id, "Address": "127.0.0.1", "Port": 9000,
        "Tags": ["v1"], "Meta": {"Version": "1.2"},
        "Check": {"TTL": "10s", "deregister_critical_service_after": "1m"}
    })
    .to_string()
}

async fn register(router: &Router, body: String) -> Answer {
    call(router, "PUT", "/v1/agent/service/register", body).await
}

#[tokio::test(start_paused = true)]
async fn registration_reads_back_in_consuls_shapes_with_its_headers() {
    let router = registry(&Settings::default());
    let answer = register(&router, web("web-1")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    let services = call(&router, "GET", "/v1/agent/services", Body::empty()).await;
    assert!(
        services.index.is_some(),
        "every read carries X-Consul-Index"
    );
    let service = &services.json()["web-1"];
    assert_eq!(
        service["Service"], "web",
        "lower-case `name` was read as Name"
    );
    assert_eq!(
        service["Meta"]["Version"], "1.2",
        "Meta keeps its keys' case"
    );

    let checks = call(&router, "GET", "/v1/agent/checks", Body::empty()).await;
    assert_eq!(
        checks.json()["service:web-1"]["Status"],
        "critical",
        "one check gets the id service:<id> and starts critical"
    );

    let empty = call(&router, "GET", "/v1/health/service/nobody", Body::empty()).await;
    assert_eq!(empty.body, "[]", "an unknown service is [], never null");

    call(
        &router,
        "PUT",
        "/v1/agent/check/pass/service:web-1",
        Body::empty(),
    )
    .await;
    let health = call(
        &router,
        "GET",
        "/v1/health/service/web?passing",
        Body::empty(),
    )
    .await;
    let entries = health.json();
    assert_eq!(entries.as_array().map(Vec::len), Some(1), "{entries}");
    assert_eq!(entries[0]["Service"]["Port"], 9000);
    assert_eq!(
        entries[0]["Checks"][1]["Status"], "passing",
        "the node's serfHealth check first, then the service's"
    );
    let catalog = call(&router, "GET", "/v1/catalog/service/web", Body::empty()).await;
    assert_eq!(catalog.json()[0]["ServiceID"], "web-1");
    let names = call(&router, "GET", "/v1/catalog/services", Body::empty()).await;
    assert_eq!(names.json(), json!({"web": ["v1"]}));
}

#[tokio::test(start_paused = true)]
async fn several_checks_are_numbered_and_a_stale_ttl_drops_out_of_passing() {
    let router = registry(&Settings::default());
    let body = json!({
        "Name": "web", "ID": "web-1",
        "Checks": [{"TTL": "10s", "Status": "passing"}, {"ttl": 5_000_000_000u64, "status": "passing"}]
    });
    assert_eq!(
        register(&router, body.to_string()).await.status,
        StatusCode::OK
    );
    let checks = call(&router, "GET", "/v1/agent/checks", Body::empty())
        .await
        .json();
    assert!(
        checks.get("service:web-1:1").is_some() && checks.get("service:web-1:2").is_some(),
        "several checks are service:<id>:1..n: {checks}"
    );
    let passing = call(
        &router,
        "GET",
        "/v1/health/service/web?passing",
        Body::empty(),
    )
    .await;
    assert_eq!(passing.json().as_array().map(Vec::len), Some(1));
    tokio::time::advance(Duration::from_millis(5_001)).await;
    let stale = call(
        &router,
        "GET",
        "/v1/health/service/web?passing=true",
        Body::empty(),
    )
    .await;
    assert_eq!(
        stale.body, "[]",
        "5 s (given as nanoseconds) without a heartbeat: the instance is not passing"
    );
}

#[tokio::test(start_paused = true)]
async fn a_blocking_query_waits_for_its_service_and_returns_when_the_wait_ends() {
    let router = registry(&Settings::default());
    register(
        &router,
        json!({"Name": "web", "ID": "web-1", "Check": {"TTL": "1m"}}).to_string(),
    )
    .await;
    let first = call(&router, "GET", "/v1/health/service/web", Body::empty()).await;
    let index = first.index.expect("an index");

    let blocked = {
        let router = router.clone();
        tokio::spawn(async move {
            call(
                &router,
                "GET",
                &format!("/v1/health/service/web?index={index}&wait=30s"),
                Body::empty(),
            )
            .await
        })
    };
    // Churn in another service does not answer it.
    register(
        &router,
        json!({"Name": "db", "Check": {"TTL": "1m"}}).to_string(),
    )
    .await;
    tokio::task::yield_now().await;
    assert!(
        !blocked.is_finished(),
        "another service's churn does not wake it"
    );
    call(
        &router,
        "PUT",
        "/v1/agent/check/pass/service:web-1",
        Body::empty(),
    )
    .await;
    let woken = blocked.await.expect("the query");
    assert!(
        woken.index > Some(index),
        "the heartbeat changed web's status: answered with a newer index"
    );

    let start = tokio::time::Instant::now();
    let index = woken.index.expect("an index");
    let timed_out = call(
        &router,
        "GET",
        &format!("/v1/health/service/web?index={index}&wait=16s"),
        Body::empty(),
    )
    .await;
    let waited = start.elapsed();
    assert_eq!(
        timed_out.index,
        Some(index),
        "nothing changed: the same index"
    );
    assert!(
        waited >= Duration::from_secs(16) && waited <= Duration::from_secs(17),
        "answered when the wait ended, plus at most a sixteenth: {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn one_change_is_rendered_once_for_all_the_watchers_it_wakes() {
    let settings = Settings::default();
    let service = RegistryService::start(&settings, TokioClock::new()).expect("a registry");
    let router = service.router(&settings);
    register(
        &router,
        json!({"Name": "web", "ID": "web-1", "Check": {"TTL": "1m"}}).to_string(),
    )
    .await;
    let index = call(&router, "GET", "/v1/health/service/web", Body::empty())
        .await
        .index
        .expect("an index");
    let watchers: Vec<_> = (0..200)
        .map(|n| {
            let router = router.clone();
            // Half want only the passing instances: two views, two renders.
            let passing = if n % 2 == 0 { "&passing" } else { "" };
            tokio::spawn(async move {
                call(
                    &router,
                    "GET",
                    &format!("/v1/health/service/web?index={index}&wait=5m{passing}"),
                    Body::empty(),
                )
                .await
            })
        })
        .collect();
    lab_test_support::wait_until_async("200 parked watchers", 100, || async {
        // Each parked query is one waiting watch; the registry's own read below is not.
        (service.watching() == 200).then_some(())
    })
    .await;
    let before = service.renders();
    call(
        &router,
        "PUT",
        "/v1/agent/check/pass/service:web-1",
        Body::empty(),
    )
    .await;
    let mut bodies = std::collections::BTreeSet::new();
    for watcher in watchers {
        let answer = watcher.await.expect("a watcher");
        assert_eq!(answer.status, StatusCode::OK);
        assert!(answer.index > Some(index), "woken by the change");
        assert_eq!(answer.json()[0]["Checks"][0]["Status"], "passing");
        bodies.insert(answer.body);
    }
    assert_eq!(bodies.len(), 1, "both views list the one passing instance");
    assert_eq!(
        service.renders() - before,
        2,
        "one render per view of the change, shared by its 200 watchers"
    );
}

#[tokio::test(start_paused = true)]
async fn registrations_survive_a_restart_with_their_checks_critical() {
    let path = std::env::temp_dir().join(format!("discovery-restart-{}.db", std::process::id()));
    let settings = Settings {
        data: Some(path.clone()),
        ..Settings::default()
    };
    {
        let router = registry(&settings);
        register(&router, web("web-1")).await;
        call(
            &router,
            "PUT",
            "/v1/agent/check/pass/service:web-1",
            Body::empty(),
        )
        .await;
        let passing = call(
            &router,
            "GET",
            "/v1/health/service/web?passing",
            Body::empty(),
        )
        .await;
        assert_eq!(passing.json().as_array().map(Vec::len), Some(1));
    }
    let router = registry(&settings);
    let all = call(&router, "GET", "/v1/health/service/web", Body::empty()).await;
    assert_eq!(
        all.json().as_array().map(Vec::len),
        Some(1),
        "the registration came back from SQLite"
    );
    let passing = call(
        &router,
        "GET",
        "/v1/health/service/web?passing",
        Body::empty(),
    )
    .await;
    assert_eq!(passing.body, "[]", "restored checks start critical");
    call(
        &router,
        "PUT",
        "/v1/agent/check/pass/service:web-1",
        Body::empty(),
    )
    .await;
    let passing = call(
        &router,
        "GET",
        "/v1/health/service/web?passing",
        Body::empty(),
    )
    .await;
    assert_eq!(
        passing.json().as_array().map(Vec::len),
        Some(1),
        "until a heartbeat proves them"
    );
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

// ANCHOR: hostile
#[tokio::test(start_paused = true)]
async fn bad_input_gets_consuls_answer_and_registers_nothing() {
    let router = registry(&Settings {
        max_body: 64 * 1024,
        ..Settings::default()
    });
    let cases: Vec<(&str, &str, String, StatusCode, &str)> = vec![
        (
            "PUT",
            "/v1/agent/service/register",
            json!({"ID": "x"}).to_string(),
            StatusCode::BAD_REQUEST,
            "Missing service name",
        ),
        (
            "PUT",
            "/v1/agent/service/register",
            json!({"Name": "x", "Address": "0.0.0.0"}).to_string(),
            StatusCode::BAD_REQUEST,
            "Invalid service address",
        ),
        (
            "PUT",
            "/v1/agent/service/register",
            json!({"Name": "x", "Check": {"TTL": "ten"}}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid duration",
        ),
        (
            "PUT",
            "/v1/agent/service/register",
            json!({"Name": "x", "Check": {"HTTP": "http://127.0.0.1:1/"}}).to_string(),
            StatusCode::BAD_REQUEST,
            "Interval",
        ),
        (
            "PUT",
            "/v1/agent/service/register",
            json!({"Name": "x", "Checks": [{"TTL": "1s"}, {"TTL": -5}]}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid duration",
        ),
        (
            "PUT",
            "/v1/agent/service/register",
            json!({"Name": "x", "Port": 70000}).to_string(),
            StatusCode::BAD_REQUEST,
            "Port",
        ),
        (
            "PUT",
            "/v1/agent/service/register",
            "{not json".to_owned(),
            StatusCode::BAD_REQUEST,
            "Request decode failed",
        ),
        (
            "PUT",
            "/v1/agent/service/register",
            "x".repeat(1024 * 1024),
            StatusCode::PAYLOAD_TOO_LARGE,
            "",
        ),
        (
            "GET",
            "/v1/health/service/web?passing=yes",
            String::new(),
            StatusCode::BAD_REQUEST,
            "Invalid value for ?passing",
        ),
        (
            "GET",
            "/v1/health/service/web?index=1&wait=5",
            String::new(),
            StatusCode::BAD_REQUEST,
            "Invalid wait time",
        ),
        (
            "GET",
            "/v1/health/service/web?index=-1",
            String::new(),
            StatusCode::BAD_REQUEST,
            "Invalid index",
        ),
        (
            "PUT",
            "/v1/agent/check/pass/nope",
            String::new(),
            StatusCode::NOT_FOUND,
            "Unknown check ID",
        ),
        (
            "PUT",
            "/v1/agent/check/update/nope",
            json!({"Status": "passing"}).to_string(),
            StatusCode::NOT_FOUND,
            "Unknown check ID",
        ),
        (
            "PUT",
            "/v1/agent/check/update/nope",
            json!({"Status": "fine"}).to_string(),
            StatusCode::BAD_REQUEST,
            "Invalid check status",
        ),
        (
            "PUT",
            "/v1/agent/service/deregister/nope",
            String::new(),
            StatusCode::NOT_FOUND,
            "Unknown service ID",
        ),
        (
            "PUT",
            "/v1/catalog/register",
            json!({"Service": {"Service": "x"}}).to_string(),
            StatusCode::BAD_REQUEST,
            "Must provide node",
        ),
    ];
    for (method, uri, body, status, message) in cases {
        let answer = call(&router, method, uri, body).await;
        assert_eq!(answer.status, status, "{method} {uri}: {}", answer.body);
        assert!(
            answer.body.contains(message),
            "{method} {uri}: {:?} says {message:?}",
            answer.body
        );
        if status != StatusCode::PAYLOAD_TOO_LARGE {
            assert!(
                answer.content_type.starts_with("text/plain"),
                "Consul's errors are plain text"
            );
        }
    }
    let services = call(&router, "GET", "/v1/agent/services", Body::empty()).await;
    assert_eq!(services.body, "{}", "nothing was half-registered");
    let missing = call(&router, "GET", "/nowhere", Body::empty()).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.content_type, "application/problem+json",
        "the lab's own routes speak problem+json"
    );
}
// ANCHOR_END: hostile

#[tokio::test(start_paused = true)]
async fn a_flood_of_100k_registrations_stops_at_the_configured_limit() {
    // A small limit keeps the debug build quick: every input first catches the core up
    // with the clock, a walk of its checks.
    const LIMIT: usize = 100;
    const FLOOD: usize = 100_000;
    let settings = Settings {
        max_instances: LIMIT,
        ..Settings::default()
    };
    let service = RegistryService::start(&settings, TokioClock::new()).expect("a registry");
    let router = service.router(&settings);
    let mut refused = 0;
    for n in 0..FLOOD {
        let answer = register(
            &router,
            json!({"Name": "flood", "ID": format!("f-{n}"), "Port": 9000,
                   "Check": {"TTL": "1m"}})
            .to_string(),
        )
        .await;
        match answer.status {
            StatusCode::OK => {}
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(answer.body.contains("at most 100 "), "{}", answer.body);
                refused += 1;
            }
            other => panic!("registration {n} got {other}: {}", answer.body),
        }
        // Memory stays bounded: the registry never holds more than its limit.
        if n % 1_000 == 0 {
            assert!(service.instance_count() <= LIMIT, "after {n}");
        }
    }
    assert_eq!(
        refused,
        FLOOD - LIMIT,
        "every registration past the limit is refused, clearly"
    );
    assert_eq!(service.instance_count(), LIMIT);
    let services = call(&router, "GET", "/v1/agent/services", Body::empty()).await;
    assert_eq!(
        services.json().as_object().map(|m| m.len()),
        Some(LIMIT),
        "and none of them is stored"
    );
    let checks = call(&router, "GET", "/v1/agent/checks", Body::empty()).await;
    assert_eq!(
        checks.json().as_object().map(|m| m.len()),
        Some(LIMIT),
        "nor any of their checks: nothing half-registered"
    );
    let refused_check = call(
        &router,
        "PUT",
        &format!("/v1/agent/check/pass/service:f-{}", FLOOD - 1),
        Body::empty(),
    )
    .await;
    assert_eq!(
        refused_check.status,
        StatusCode::NOT_FOUND,
        "{}",
        refused_check.body
    );
    let replace = register(
        &router,
        json!({"Name": "flood", "ID": "f-0", "Port": 1}).to_string(),
    )
    .await;
    assert_eq!(
        replace.status,
        StatusCode::OK,
        "re-registering a known instance still works at the limit"
    );
}
