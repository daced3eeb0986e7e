//! What independent clients tried against the gateway: raw-socket uploads that hang up or
//! garble their framing, oversized and malformed request heads, unauthenticated floods, key
//! removals and unreachable upstreams. Each test is named after the behaviour it pins down.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use http_body_util::BodyExt;
use lab_gateway::config::{BreakerSection, Config, RetryConfig, UpstreamConfig};
use lab_gateway::services;
use lab_gateway::tokens::sign_rs256;
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sets configuration keys by their TOML path (`"breaker.window"`), the way a reader edits
/// `gateway.toml`: a key the gateway does not know makes the configuration invalid.
fn edit(config: Config, keys: &[(&str, Value)]) -> Config {
    let mut tree = serde_json::to_value(&config).unwrap();
    for (path, value) in keys {
        let mut node = &mut tree;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                node[part] = value.clone();
            } else {
                if node[part].is_null() {
                    node[part] = json!({});
                }
                node = &mut node[part];
            }
        }
    }
    serde_json::from_value(tree).unwrap_or_else(|error| panic!("{keys:?}: {error}"))
}

/// Writes `bytes` on a new connection, optionally hangs up its sending side (the client
/// gives up mid-upload), and returns everything the gateway sent before it closed.
async fn exchange(addr: SocketAddr, bytes: &[u8], hang_up: bool) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The gateway may answer (and close) before it has read everything: that is fine.
    let _ = stream.write_all(bytes).await;
    if hang_up {
        let _ = stream.shutdown().await;
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status codes of every response in a raw answer (pipelined requests get several).
fn statuses(answer: &str) -> Vec<u16> {
    answer
        .match_indices("HTTP/1.")
        .filter_map(|(at, _)| answer.get(at + 9..at + 12)?.parse().ok())
        .collect()
}

fn chunked_head(path: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
}

fn chunks(total: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let chunk = vec![b'x'; 8192];
    for _ in 0..total / chunk.len() {
        body.extend_from_slice(b"2000\r\n");
        body.extend_from_slice(&chunk);
        body.extend_from_slice(b"\r\n");
    }
    body
}

/// Waits until the breaker has seen `calls` outcomes (successes, failures, ignored or
/// released), so the test reads its state after the gateway has judged every request.
async fn outcomes(gateway: &RunningGateway, upstream: &str, calls: u64) -> u64 {
    let breaker = &gateway.gateway.upstreams[upstream].breaker;
    let seen = || {
        let metrics = breaker.metrics();
        metrics.successes + metrics.failures + metrics.ignored + metrics.released
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while seen() < calls {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    seen()
}

fn strict_breaker() -> BreakerSection {
    BreakerSection {
        window: 4,
        minimum_calls: 2,
        failure_rate_threshold: 50.0,
        wait_in_open_ms: 60_000,
        ..BreakerSection::default()
    }
}

// --- Client-caused body errors ---------------------------------------------------------------

#[tokio::test]
async fn uploads_the_client_abandons_or_garbles_leave_a_healthy_upstreams_breaker_closed() {
    let upstream = Upstream::start().await;
    let mut config = echo_config(&upstream.url());
    config.breaker = strict_breaker();
    config.max_body_bytes = 4 * 1024 * 1024;
    let gateway = RunningGateway::start(config).await;
    let token = token("alice");
    let big = vec![b'x'; 512 * 1024];
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "hangs up after 100 of 1000 bytes",
            [
                b"POST /open/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n".as_slice(),
                &big[..100],
            ]
            .concat(),
            true,
        ),
        (
            "hangs up after 512 KiB of 2 MiB, with a token",
            [
                format!(
                    "POST /api/echo/upload HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\nContent-Length: 2000000\r\n\r\n"
                )
                .as_bytes(),
                &big,
            ]
            .concat(),
            true,
        ),
        (
            "hangs up in the middle of a chunk",
            [chunked_head("/open/upload").as_bytes(), &chunks(256 * 1024), b"2000\r\nxx"].concat(),
            true,
        ),
        (
            "sends a malformed chunk size",
            [chunked_head("/open/upload").as_bytes(), b"5\r\nhello\r\nzz\r\n"].concat(),
            false,
        ),
        (
            "sends a malformed chunk after 256 KiB",
            [chunked_head("/open/upload").as_bytes(), &chunks(256 * 1024), b"zz\r\n"].concat(),
            false,
        ),
        (
            "sends a chunked body past the limit",
            [chunked_head("/open/upload").as_bytes(), &chunks(5 * 1024 * 1024)].concat(),
            false,
        ),
    ];
    for (what, bytes, hang_up) in &cases {
        let answer = exchange(gateway.addr, bytes, *hang_up).await;
        for status in statuses(&answer) {
            assert!(
                [400, 408, 413].contains(&status),
                "a client that {what} got {status}: {answer}"
            );
        }
        if !*hang_up {
            assert!(
                answer.contains("application/problem+json"),
                "a client that {what}: {answer}"
            );
        }
    }
    // Whatever reached the upstream has been judged by now.
    outcomes(&gateway, "echo", upstream.hits() as u64).await;
    let breaker = &gateway.gateway.upstreams["echo"].breaker;
    assert_eq!(
        breaker.metrics().failures,
        0,
        "the client's faults are not the upstream's: {:?}",
        breaker.metrics()
    );
    assert_eq!(format!("{:?}", breaker.state()), "Closed");
    for _ in 0..3 {
        let answer = call(&client(), get(&gateway.url("/open/ok"), None)).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
}

#[tokio::test]
async fn twenty_unauthenticated_uploads_paced_under_the_rate_limit_leave_the_breaker_closed() {
    let upstream = Upstream::start().await;
    let mut config = with_rate_limit(echo_config(&upstream.url()), 1000, 100);
    config.breaker = strict_breaker();
    let gateway = RunningGateway::start(config).await;
    for _ in 0..20 {
        let upload = [
            b"POST /open/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n".as_slice(),
            &[b'x'; 5000],
        ]
        .concat();
        exchange(gateway.addr, &upload, true).await;
    }
    // Refused by authentication: never sent anywhere, so never judged.
    for _ in 0..20 {
        let answer = exchange(
            gateway.addr,
            b"POST /api/echo/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            false,
        )
        .await;
        assert_eq!(statuses(&answer), [401], "{answer}");
    }
    outcomes(&gateway, "echo", upstream.hits() as u64).await;
    let metrics = gateway.gateway.upstreams["echo"].breaker.metrics();
    assert_eq!(metrics.failures, 0, "{metrics:?}");
    assert_eq!(
        metrics.successes + metrics.ignored + metrics.released,
        upstream.hits() as u64,
        "only requests that reached the upstream were judged: {metrics:?}"
    );
    let answer = call(&client(), get(&gateway.url("/open/ok"), None)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
}

#[tokio::test]
async fn requests_refused_by_the_rate_limiter_never_touch_the_breaker() {
    let upstream = Upstream::start().await;
    let mut config = with_rate_limit(echo_config(&upstream.url()), 1, 2);
    config.breaker = strict_breaker();
    let gateway = RunningGateway::start(config).await;
    let client = client();
    let mut limited = 0;
    for _ in 0..20 {
        let answer = call(&client, get(&gateway.url("/open/ok"), None)).await;
        limited += usize::from(answer.status == 429);
    }
    assert!(limited >= 17, "{limited} of 20 limited");
    let metrics = gateway.gateway.upstreams["echo"].breaker.metrics();
    assert_eq!(
        metrics.successes + metrics.failures + metrics.ignored + metrics.released,
        upstream.hits() as u64,
        "{metrics:?}"
    );
}

// --- Request heads -------------------------------------------------------------------------

#[tokio::test]
async fn a_header_section_over_the_limits_gets_a_problem_json_431() {
    let upstream = Upstream::start().await;
    let gateway = RunningGateway::start(echo_config(&upstream.url())).await;
    let head = |extra: &str| {
        format!("GET /open/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n{extra}\r\n")
    };
    let cases = [
        (
            "one 64 KiB header",
            head(&format!("X-Big: {}\r\n", "a".repeat(64 * 1024))),
            431,
        ),
        (
            "a 9 KiB header line",
            head(&format!("X-Big: {}\r\n", "a".repeat(9 * 1024))),
            431,
        ),
        (
            "40 headers of 1 KiB",
            head(
                &(0..40)
                    .map(|i| format!("X-{i}: {}\r\n", "a".repeat(1024)))
                    .collect::<String>(),
            ),
            431,
        ),
        (
            "150 header fields",
            head(
                &(0..150)
                    .map(|i| format!("X-{i}: a\r\n"))
                    .collect::<String>(),
            ),
            431,
        ),
        (
            "a 9 KiB request line",
            format!(
                "GET /open/{} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                "a".repeat(9 * 1024)
            ),
            414,
        ),
    ];
    for (what, request, expected) in &cases {
        let answer = exchange(gateway.addr, request.as_bytes(), false).await;
        assert_eq!(statuses(&answer), [*expected], "{what}: {answer:.300}");
        assert!(
            answer.contains("application/problem+json") && answer.contains("\"detail\""),
            "{what}: {answer:.300}"
        );
    }
    let fine = head(&format!("X-Big: {}\r\n", "a".repeat(7 * 1024)));
    assert_eq!(
        statuses(&exchange(gateway.addr, fine.as_bytes(), false).await),
        [200],
        "a 7 KiB header is within nginx's limits"
    );
    assert_eq!(upstream.hits(), 1, "no refused head reached the upstream");

    // The limits are configuration.
    let config = edit(
        echo_config(&upstream.url()),
        &[
            ("max_header_line_bytes", json!(1024)),
            ("max_header_bytes", json!(4096)),
        ],
    );
    let gateway = RunningGateway::start(config).await;
    let line = head(&format!("X-Big: {}\r\n", "a".repeat(2000)));
    let answer = exchange(gateway.addr, line.as_bytes(), false).await;
    assert_eq!(statuses(&answer), [431], "{answer:.300}");
    assert!(answer.contains("1024 bytes"), "{answer:.300}");
}

#[tokio::test]
async fn a_request_without_a_host_or_with_two_gets_400() {
    let upstream = Upstream::start().await;
    let gateway = RunningGateway::start(echo_config(&upstream.url())).await;
    for (what, request) in [
        (
            "no Host",
            "GET /open/x HTTP/1.1\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        ),
        (
            "two Host headers",
            "GET /open/x HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
        ),
        (
            "two Host headers in HTTP/1.0",
            "GET /open/x HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
        ),
    ] {
        let answer = exchange(gateway.addr, request.as_bytes(), false).await;
        assert_eq!(statuses(&answer), [400], "{what}: {answer}");
        assert!(
            answer.contains("application/problem+json"),
            "{what}: {answer}"
        );
        assert!(
            answer.contains("Host"),
            "{what}: the detail names the header: {answer}"
        );
    }
    assert_eq!(upstream.hits(), 0);
    let answer = exchange(gateway.addr, b"GET /open/x HTTP/1.0\r\n\r\n", false).await;
    assert_eq!(statuses(&answer), [200], "HTTP/1.0 needs no Host: {answer}");
}

#[tokio::test]
async fn a_bare_lf_in_the_header_section_gets_400() {
    let upstream = Upstream::start().await;
    let gateway = RunningGateway::start(echo_config(&upstream.url())).await;
    for (what, request) in [
        (
            "between two fields",
            &b"GET /open/x HTTP/1.1\r\nHost: a\nX-Injected: yes\r\nConnection: close\r\n\r\n"[..],
        ),
        (
            "after the request line",
            b"GET /open/x HTTP/1.1\nHost: a\r\nConnection: close\r\n\r\n",
        ),
        (
            "as the end of the head",
            b"GET /open/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\n",
        ),
    ] {
        let answer = exchange(gateway.addr, request, false).await;
        assert_eq!(statuses(&answer), [400], "{what}: {answer}");
        assert!(answer.contains("bare LF"), "{what}: {answer}");
    }
    assert_eq!(upstream.hits(), 0);
    // A pipelined request is checked like the first, after a body of either framing.
    let pipelined = [
        b"POST /open/a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab\ncd".as_slice(),
        b"POST /open/b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na\nb\r\n0\r\n\r\n",
        b"GET /open/c HTTP/1.1\r\nHost: a\nX-Injected: yes\r\nConnection: close\r\n\r\n",
    ]
    .concat();
    let answer = exchange(gateway.addr, &pipelined, false).await;
    assert_eq!(statuses(&answer), [200, 200, 400], "{answer}");
    assert_eq!(upstream.hits(), 2);
}

// --- Request buffering ---------------------------------------------------------------------

/// An upstream that records each request's body: its length if it arrived whole, or the
/// error that cut it off.
async fn recording_upstream() -> (
    services::Running,
    Arc<parking_lot::Mutex<Vec<Result<usize, String>>>>,
) {
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let router = axum::Router::new().fallback(move |request: Request| {
        let record = Arc::clone(&record);
        async move {
            let body = request.into_body().collect().await;
            record
                .lock()
                .push(body.map(|b| b.to_bytes().len()).map_err(|e| e.to_string()));
            "recorded"
        }
    });
    let running = services::spawn(router, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (running, seen)
}

async fn until_recorded(seen: &parking_lot::Mutex<Vec<Result<usize, String>>>, n: usize) {
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while seen.lock().len() < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_small_body_over_the_limit_never_reaches_the_upstream() {
    let (running, seen) = recording_upstream().await;
    let mut config = echo_config(&format!("http://{}", running.addr));
    config.max_body_bytes = 64 * 1024;
    let gateway = RunningGateway::start(config).await;
    let request = [
        chunked_head("/open/upload").as_bytes(),
        &chunks(96 * 1024),
        b"0\r\n\r\n",
    ]
    .concat();
    let answer = exchange(gateway.addr, &request, false).await;
    assert_eq!(statuses(&answer), [413], "{answer:.300}");
    let answer = call(&client(), get(&gateway.url("/open/after"), None)).await;
    assert_eq!(answer.status, 200);
    until_recorded(&seen, 1).await;
    assert_eq!(
        *seen.lock(),
        [Ok(0)],
        "only the request after it reached the upstream"
    );
}

#[tokio::test]
async fn a_streamed_body_the_client_abandons_reaches_the_upstream_as_aborted() {
    let (running, seen) = recording_upstream().await;
    let config = edit(
        echo_config(&format!("http://{}", running.addr)),
        &[
            ("max_body_bytes", json!(128 * 1024)),
            ("request_buffer_bytes", json!(16 * 1024)),
        ],
    );
    let gateway = RunningGateway::start(config).await;
    // Past the buffer, then the client hangs up.
    let upload = [
        b"POST /open/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n".as_slice(),
        &[b'x'; 40 * 1024],
    ]
    .concat();
    exchange(gateway.addr, &upload, true).await;
    // The same, chunked: the upstream gets it chunked too, and must not see its last chunk.
    let chunked = [chunked_head("/open/upload").as_bytes(), &chunks(40 * 1024)].concat();
    exchange(gateway.addr, &chunked, true).await;
    // Past the buffer, then past the limit.
    let over = [
        chunked_head("/open/upload").as_bytes(),
        &chunks(256 * 1024),
        b"0\r\n\r\n",
    ]
    .concat();
    let answer = exchange(gateway.addr, &over, false).await;
    assert_eq!(statuses(&answer), [413], "{answer:.300}");
    // Within the buffer: sent whole, once complete.
    let small = [
        b"POST /open/upload HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".as_slice(),
        &chunks(8 * 1024),
        b"0\r\n\r\n",
    ]
    .concat();
    let answer = exchange(gateway.addr, &small, false).await;
    assert_eq!(statuses(&answer), [200], "{answer:.300}");
    until_recorded(&seen, 4).await;
    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(
        seen.iter().filter(|body| body.is_err()).count(),
        3,
        "the upstream never takes a cut-off body for a whole one: {seen:?}"
    );
    assert!(seen.contains(&Ok(8 * 1024)), "{seen:?}");
}

// --- Breaker settings ----------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn the_half_open_trial_call_count_comes_from_the_breaker_section() {
    let section: BreakerSection = toml::from_str(
        "window = 4\nminimum_calls = 2\nfailure_rate_threshold = 50.0\nwait_in_open_ms = 1000\npermitted_calls_in_half_open = 3",
    )
    .unwrap();
    let upstream = lab_gateway::upstream::Upstream::new(
        "echo",
        &UpstreamConfig::fixed("http://127.0.0.1:9", 1_000),
        &section,
        &RetryConfig::default(),
    )
    .unwrap();
    let breaker = &upstream.breaker;
    for _ in 0..2 {
        breaker
            .try_acquire()
            .unwrap()
            .record(breaker_core::Outcome::Failure, breaker_core::Millis(1));
    }
    assert!(breaker.try_acquire().is_err(), "open");
    tokio::time::advance(Duration::from_millis(1_001)).await;
    let trials: Vec<_> = (0..3).map(|_| breaker.try_acquire()).collect();
    assert!(
        trials.iter().all(Result::is_ok),
        "three trial calls, not one: {:?}",
        trials.iter().map(Result::is_ok).collect::<Vec<_>>()
    );
    assert!(breaker.try_acquire().is_err(), "and no fourth");
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.toml"),
    )
    .unwrap();
    assert!(
        text.contains("permitted_calls_in_half_open"),
        "gateway.toml shows the key"
    );
}

// --- Per-address limit ---------------------------------------------------------------------

#[tokio::test]
async fn unauthenticated_requests_are_limited_per_client_address_before_authentication() {
    let upstream = Upstream::start().await;
    let config = edit(
        with_rate_limit(echo_config(&upstream.url()), 1000, 1000),
        &[
            (
                "address_rate_limit",
                json!({ "requests": 1, "per_ms": 60000, "burst": 5 }),
            ),
            ("trusted_proxies", json!(["127.0.0.1"])),
        ],
    );
    let gateway = RunningGateway::start(config).await;
    let client = client();
    let from = |ip: &str, token: Option<&str>| {
        let mut request = get(&gateway.url("/api/echo"), token);
        request
            .headers_mut()
            .insert("x-forwarded-for", ip.parse().unwrap());
        request
    };
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(
            call(&client, from("2001:db8:1:2::1", Some("bad.token.here")))
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
    // The same /64 shares the budget, token or not; the next /64 has its own.
    let good = token("alice");
    let same_64 = call(&client, from("2001:db8:1:2:ffff::9", Some(&good))).await;
    assert_eq!(same_64.status, 429, "{:?}", same_64.body);
    assert!(
        same_64.json()["detail"]
            .as_str()
            .unwrap()
            .contains("2001:db8:1:2::/64"),
        "{:?}",
        same_64.json()
    );
    assert!(same_64.header("retry-after").is_some());
    let next_64 = call(&client, from("2001:db8:1:3::1", Some(&good))).await;
    assert_eq!(next_64.status, 200);
    assert_eq!(
        upstream.hits(),
        1,
        "the upstream saw only the admitted request"
    );
}

// --- Keys ----------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_jwks_reload_that_drops_a_kid_evicts_the_tokens_it_verified() {
    let upstream = Upstream::start().await;
    let dir = std::env::temp_dir().join(format!("lab-gateway-evict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks_path = dir.join("jwks.json");
    let jwk = |name: &str| -> Value {
        serde_json::from_slice(&std::fs::read(keys_dir().join(format!("jwk-{name}.json"))).unwrap())
            .unwrap()
    };
    let private = |name: &str| std::fs::read(keys_dir().join(format!("rsa-{name}.pem"))).unwrap();
    std::fs::write(
        &jwks_path,
        json!({ "keys": [jwk("a"), jwk("b")] }).to_string(),
    )
    .unwrap();
    let mut config = echo_config(&upstream.url());
    let auth = config.auth.as_mut().unwrap();
    auth.jwks_file = Some(jwks_path.clone());
    auth.rs256_public_key_file = None;
    let gateway = RunningGateway::start(config).await;
    let client = client();
    let echo = gateway.url("/api/echo");
    let with_a = sign_rs256(&claims("rita"), &private("a"), Some("demo-a")).unwrap();
    let with_b = sign_rs256(&claims("rita"), &private("b"), Some("demo-b")).unwrap();
    let unknown = sign_rs256(&claims("rita"), &private("b"), Some("demo-c")).unwrap();
    assert_eq!(call(&client, get(&echo, Some(&with_a))).await.status, 200);
    assert_eq!(call(&client, get(&echo, Some(&with_b))).await.status, 200);
    // Key a is withdrawn (it leaked, say); a token naming an unknown kid makes the gateway
    // re-read the set.
    std::fs::write(&jwks_path, json!({ "keys": [jwk("b")] }).to_string()).unwrap();
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(call(&client, get(&echo, Some(&unknown))).await.status, 401);
    assert_eq!(gateway.gateway.authenticator().unwrap().jwks_reloads(), 1);
    let answer = call(&client, get(&echo, Some(&with_a))).await;
    assert_eq!(
        answer.status, 401,
        "a token of the removed key: {:?}",
        answer.body
    );
    assert_eq!(call(&client, get(&echo, Some(&with_b))).await.status, 200);
    let _ = std::fs::remove_dir_all(&dir);
}

// --- Errors ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_502_names_the_upstream_not_its_address() {
    let (captured, _log) = capture_logs("warn");
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = echo_config(&format!("http://{dead}"));
    config.retry.max_attempts = 1;
    let gateway = RunningGateway::start(config).await;
    let answer = call(&client(), get(&gateway.url("/open/x"), None)).await;
    assert_eq!(answer.status, 502);
    let detail = answer.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("echo"), "{detail}");
    assert!(
        !detail.contains(&dead.to_string()) && !detail.contains("127.0.0.1"),
        "the client learns no internal address: {detail}"
    );
    let log = captured.text();
    assert!(
        log.contains(&dead.to_string()),
        "the operator does, in the log:\n{log}"
    );
}
