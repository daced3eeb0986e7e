//! Integration tests of the gateway over real HTTP on ephemeral ports.
//!
//! Bad input is the point: most tests here send something a gateway must refuse and check
//! both the status and that the gateway is still standing afterwards. Where time matters
//! (timeouts, slow clients, key reloads, the breaker's wait) the tokio clock is paused, so
//! nothing here sleeps for real or asserts on durations.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use lab_gateway::config::{AggregationConfig, Config, RouteConfig, UpstreamConfig};
use lab_gateway::limiter::SharedLimiter;
use lab_gateway::services::{self, order_router, payment_router, product_router, user_router};
use lab_gateway::tokens::{sign_hs256, sign_rs256};
use support::*;

fn rsa_private(name: &str) -> Vec<u8> {
    std::fs::read(keys_dir().join(format!("rsa-{name}.pem"))).unwrap()
}

// --- Routing -------------------------------------------------------------------------------

#[tokio::test]
async fn every_route_of_the_guide_reaches_its_service() {
    let addr = "127.0.0.1:0".parse().unwrap();
    let users = services::spawn(user_router(), addr).await.unwrap();
    let orders = services::spawn(order_router(), addr).await.unwrap();
    let products = services::spawn(product_router(), addr).await.unwrap();
    let payments = services::spawn(payment_router(), addr).await.unwrap();
    let config = Config::demo(users.addr, orders.addr, products.addr, payments.addr);
    let secret = config.auth.as_ref().unwrap().hs256_secret.clone().unwrap();
    let gateway = RunningGateway::start(config).await;
    let mut claims = lab_gateway::tokens::TokenClaims::new(
        "alice",
        "microservices-in-motion",
        "demo-gateway",
        600,
    );
    let plain = sign_hs256(&claims, &secret).unwrap();
    claims.scope = Some("payments".to_owned());
    let payer = sign_hs256(&claims, &secret).unwrap();
    let client = client();

    for (path, id) in [
        ("/api/users/7", "7"),
        ("/api/orders/9", "9"),
        ("/api/products/p-1", "p-1"),
    ] {
        let answer = call(&client, get(&gateway.url(path), Some(&plain))).await;
        assert_eq!(answer.status, 200, "{path}: {:?}", answer.body);
        assert_eq!(answer.json()["id"], id, "{path}");
    }
    // The subject reaches the service, set by the gateway.
    assert_eq!(
        call(&client, get(&gateway.url("/api/users/7"), Some(&plain)))
            .await
            .json()["seen_subject"],
        "alice"
    );

    let pay = |token: &str| {
        http::Request::post(gateway.url("/api/payments"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Full::from(r#"{"amount_cents":8900}"#))
            .unwrap()
    };
    assert_eq!(
        call(&client, pay(&plain)).await.status,
        403,
        "payments need the payments scope"
    );
    let paid = call(&client, pay(&payer)).await;
    assert_eq!(paid.status, 201);
    assert_eq!(paid.json()["accepted"]["amount_cents"], 8900);

    let details = call(
        &client,
        get(&gateway.url("/api/order-details/9"), Some(&plain)),
    )
    .await;
    assert_eq!(details.status, 200);
    let details = details.json();
    assert_eq!(details["order"]["id"], "9");
    assert_eq!(details["user"]["id"], "u-7");
    assert_eq!(details["product"]["id"], "p-42");
    assert_eq!(details["partial"], false);

    let health = call(&client, get(&gateway.url("/health"), None)).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["upstreams"]["payment"], "Closed");
    // One request at a time: each upstream needed one connection, reused since.
    for service in ["user", "order", "product", "payment"] {
        assert_eq!(
            health.json()["connections"][service]["opened"],
            1,
            "{service}: {:?}",
            health.body
        );
    }
    assert_eq!(
        call(&client, get(&gateway.url("/nowhere"), Some(&plain)))
            .await
            .status,
        404
    );
}

// --- The hostile request table -------------------------------------------------------------

fn token_with(edit: impl FnOnce(&mut lab_gateway::tokens::TokenClaims)) -> String {
    let mut claims = claims("mallory");
    edit(&mut claims);
    sign_hs256(&claims, SECRET).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    // Base64url without padding, written out so the test depends on nothing else.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[tokio::test]
async fn hostile_requests_get_the_right_status_and_never_a_crash() {
    let upstream = Upstream::start().await;
    let gateway = RunningGateway::start(echo_config(&upstream.url())).await;
    let client = client();
    let now = jsonwebtoken::get_current_timestamp();
    let claims_json = serde_json::to_vec(&claims("mallory")).unwrap();

    let good = token("alice");
    let mut tampered = good.clone();
    // Flip the subject in the payload, keep the signature.
    let parts: Vec<&str> = good.split('.').collect();
    let forged_payload = b64(&serde_json::to_vec(&claims("admin")).unwrap());
    tampered =
        format!("{}.{}.{}", parts[0], forged_payload, parts[2]).replace(&tampered, &tampered);
    let alg_none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(&claims_json)
    );
    // Algorithm confusion: HS256 "signed" with the RSA public key as the HMAC secret.
    let public_pem = std::fs::read(keys_dir().join("rsa-a.pub.pem")).unwrap();
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &claims("mallory"),
        &EncodingKey::from_secret(&public_pem),
    )
    .unwrap();
    let rs_good = sign_rs256(&claims("rita"), &rsa_private("a"), None).unwrap();
    let rs_wrong_key = sign_rs256(&claims("rita"), &rsa_private("b"), None).unwrap();
    let hs384 = encode(
        &Header::new(Algorithm::HS384),
        &claims("mallory"),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let no_sub = encode(
        &Header::new(Algorithm::HS256),
        &serde_json::json!({ "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600 }),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();

    let echo = gateway.url("/api/echo");
    let cases: Vec<(&str, http::Request<Full<Bytes>>, u16)> = vec![
        ("a valid HS256 token", get(&echo, Some(&good)), 200),
        ("a valid RS256 token", get(&echo, Some(&rs_good)), 200),
        ("no token", get(&echo, None), 401),
        (
            "not a bearer token",
            http::Request::get(&echo)
                .header("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")
                .body(Full::default())
                .unwrap(),
            401,
        ),
        ("garbage for a token", get(&echo, Some("not.a.jwt")), 401),
        (
            "an empty bearer",
            http::Request::get(&echo)
                .header("authorization", "Bearer ")
                .body(Full::default())
                .unwrap(),
            401,
        ),
        (
            "an expired token",
            get(&echo, Some(&token_with(|c| c.exp = now - 3600))),
            401,
        ),
        (
            "a not-yet-valid token",
            get(&echo, Some(&token_with(|c| c.nbf = now + 3600))),
            401,
        ),
        (
            "the wrong issuer",
            get(&echo, Some(&token_with(|c| c.iss = "evil".to_owned()))),
            401,
        ),
        (
            "the wrong audience",
            get(&echo, Some(&token_with(|c| c.aud = "other-api".to_owned()))),
            401,
        ),
        ("a tampered payload", get(&echo, Some(&tampered)), 401),
        ("alg: none", get(&echo, Some(&alg_none)), 401),
        (
            "HS256 signed with the RSA public key",
            get(&echo, Some(&confused)),
            401,
        ),
        (
            "RS256 signed with another key",
            get(&echo, Some(&rs_wrong_key)),
            401,
        ),
        (
            "an algorithm we do not accept",
            get(&echo, Some(&hs384)),
            401,
        ),
        ("a token without a subject", get(&echo, Some(&no_sub)), 401),
        (
            "a token without the route's scope",
            get(&gateway.url("/admin/x"), Some(&good)),
            403,
        ),
        (
            "path traversal",
            get(&gateway.url("/api/echo/../../admin"), Some(&good)),
            400,
        ),
        (
            "encoded traversal",
            get(&gateway.url("/api/echo/%2e%2e/%2e%2e/admin"), Some(&good)),
            400,
        ),
        (
            "an encoded slash",
            get(&gateway.url("/api/echo/..%2f..%2fadmin"), Some(&good)),
            400,
        ),
        (
            "double encoding",
            get(&gateway.url("/api/echo/%252e%252e/admin"), Some(&good)),
            400,
        ),
        (
            "an encoded NUL",
            get(&gateway.url("/api/echo/file%00.json"), Some(&good)),
            400,
        ),
        (
            "a servlet-style traversal",
            get(&gateway.url("/api/echo/..;/admin"), Some(&good)),
            400,
        ),
        (
            "a malformed escape",
            get(&gateway.url("/api/echo/%zz"), Some(&good)),
            400,
        ),
        (
            "no route",
            get(&gateway.url("/api/echoes"), Some(&good)),
            404,
        ),
        (
            "a body over the limit",
            http::Request::post(&echo)
                .header("authorization", format!("Bearer {good}"))
                .body(Full::from(vec![b'x'; 2 * 1024 * 1024]))
                .unwrap(),
            413,
        ),
    ];
    let count = cases.len();
    for (what, request, expected) in cases {
        let answer = call(&client, request).await;
        assert_eq!(
            answer.status.as_u16(),
            expected,
            "{what}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        if expected >= 400 {
            assert_eq!(
                answer.header("content-type"),
                Some("application/problem+json"),
                "{what}"
            );
            assert!(
                !answer.json()["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .is_empty(),
                "{what} has a detail"
            );
        }
    }
    // Only the two valid requests reached the upstream, and the gateway is still fine.
    assert_eq!(upstream.hits(), 2, "after {count} cases");
    assert_eq!(
        call(&client, get(&gateway.url("/health"), None))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_cut_off_with_413() {
    let upstream = Upstream::start().await;
    let mut config = echo_config(&upstream.url());
    config.max_body_bytes = 64 * 1024;
    let gateway = RunningGateway::start(config).await;
    // No Content-Length: the limit can only be enforced while streaming.
    let chunks = (0..32).map(|_| {
        Ok::<_, std::io::Error>(http_body::Frame::data(Bytes::from(vec![b'x'; 8 * 1024])))
    });
    let body = StreamBody::new(futures::stream::iter(chunks));
    let request = http::Request::post(gateway.url("/open/upload"))
        .body(body)
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn crlf_and_garbage_in_the_request_head_get_a_400_and_the_gateway_survives() {
    let upstream = Upstream::start().await;
    let gateway = RunningGateway::start(echo_config(&upstream.url())).await;
    for head in [
        &b"GET /open/x HTTP/1.1\r\nHost: a\r\nX-Evil: one\rX-Injected: two\r\n\r\n"[..],
        b"GET /open/x HTTP/1.1\r\nHost: a\r\nX-Evil: \x00\r\n\r\n",
        b"GET /open/x\r\nHTTP/1.1\r\n\r\n",
        b"GET /open/\r\n/x HTTP/1.1\r\nHost: a\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
    ] {
        let answer = raw(gateway.addr, head).await;
        let status = status_of(&answer);
        assert!(
            status == 400 || answer.is_empty(),
            "{:?} got {answer:?}",
            String::from_utf8_lossy(head)
        );
    }
    assert_eq!(upstream.hits(), 0);
    assert_eq!(
        call(&client(), get(&gateway.url("/open/ok"), None))
            .await
            .status,
        200
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_finishes_its_body_times_out() {
    let upstream = Upstream::start().await;
    let mut config = echo_config(&upstream.url());
    config.client_body_timeout_ms = 1_000;
    let gateway = RunningGateway::start(config).await;
    let answer = raw(
        gateway.addr,
        b"POST /open/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nonly the beginning",
    )
    .await;
    assert_eq!(status_of(&answer), 408, "{answer}");
    assert_eq!(
        call(&client(), get(&gateway.url("/open/ok"), None))
            .await
            .status,
        200
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let upstream = Upstream::start().await;
    let mut config = echo_config(&upstream.url());
    config.client_header_timeout_ms = 2_000;
    let gateway = RunningGateway::start(config).await;
    // A slow-loris client: a request head that never ends. The read below waits until the
    // gateway gives up; the paused clock jumps to its deadline.
    let started = tokio::time::Instant::now();
    let slow = raw(
        gateway.addr,
        b"GET /open/ok HTTP/1.1\r\nHost: a\r\nX-Slow: 1",
    );
    let answer = tokio::time::timeout(Duration::from_secs(60), slow)
        .await
        .expect("the gateway closes the connection");
    assert!(!answer.contains("200"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(2_000));
    assert_eq!(
        upstream.hits(),
        0,
        "an unfinished request never reaches the upstream"
    );
    assert_eq!(
        call(&client(), get(&gateway.url("/open/ok"), None))
            .await
            .status,
        200
    );
}

// --- Streaming -----------------------------------------------------------------------------

#[tokio::test]
async fn bodies_stream_through_in_both_directions_without_buffering() {
    let upstream = Upstream::start().await;
    let mut config = echo_config(&upstream.url());
    config.max_body_bytes = 16 * 1024 * 1024;
    // With request buffering off (nginx's `proxy_request_buffering off`): a body of unknown
    // length would otherwise be read ahead up to the buffer before the upstream is called.
    config.request_buffer_bytes = 0;
    let gateway = RunningGateway::start(config).await;
    // The upstream echoes the body back as it arrives. If the gateway buffered either
    // direction, the first chunk could not come back before the second is sent: deadlock.
    let (sender, receiver) =
        tokio::sync::mpsc::channel::<Result<http_body::Frame<Bytes>, std::io::Error>>(1);
    let body = StreamBody::new(Box::pin(futures::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|frame| (frame, receiver)) },
    )));
    let request = http::Request::post(gateway.url("/open/echo"))
        .body(body)
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let responding = tokio::spawn(client.request(request));
    sender
        .send(Ok(http_body::Frame::data(Bytes::from_static(b"first"))))
        .await
        .unwrap();
    let response = responding.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("x-upstream-secret").is_none(),
        "named in Connection: hop-by-hop"
    );
    assert_eq!(response.headers()["via"], "1.1 lab-gateway");
    let mut body = response.into_body();
    let mut echoed = Vec::new();
    while echoed.len() < 5 {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        echoed.extend_from_slice(frame.data_ref().unwrap());
    }
    assert_eq!(
        echoed, b"first",
        "the first chunk came back before the second was sent"
    );
    // Now a large tail: 8 MiB in 64 KiB chunks, still streamed.
    let chunk = Bytes::from(vec![b'y'; 64 * 1024]);
    let sending = tokio::spawn(async move {
        for _ in 0..128 {
            sender
                .send(Ok(http_body::Frame::data(chunk.clone())))
                .await
                .unwrap();
        }
    });
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        total += frame.unwrap().data_ref().map_or(0, |data| data.len());
    }
    sending.await.unwrap();
    assert_eq!(total, 128 * 64 * 1024);
}

// --- Headers -------------------------------------------------------------------------------

#[tokio::test]
async fn proxy_headers_follow_the_rules() {
    let upstream = Upstream::start().await;
    let gateway = RunningGateway::start(echo_config(&upstream.url())).await;
    let request = http::Request::get(gateway.url("/api/echo/headers?x=1&y=%2F"))
        .header("authorization", format!("Bearer {}", token("alice")))
        .header("connection", "X-Secret")
        .header("x-secret", "hop")
        .header("proxy-authorization", "Basic abc")
        .header("te", "trailers")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-host", "evil.example")
        .header("x-authenticated-subject", "root")
        .header("via", "1.0 client-proxy")
        .header("x-request-id", "abc-123")
        .body(Full::default())
        .unwrap();
    let answer = call(&client(), request).await;
    assert_eq!(answer.status, 200);
    let seen = answer.json();
    let header = |name: &str| seen["headers"][name].clone();
    for gone in ["x-secret", "proxy-authorization", "te", "connection"] {
        assert!(header(gone).is_null(), "{gone} must not reach the upstream");
    }
    assert_eq!(
        header("x-forwarded-for")[0],
        "127.0.0.1",
        "an untrusted client's X-Forwarded-For is dropped"
    );
    assert_eq!(header("x-forwarded-host")[0], gateway.addr.to_string());
    assert_eq!(header("x-forwarded-proto")[0], "http");
    assert_eq!(
        header("x-authenticated-subject"),
        serde_json::json!(["alice"]),
        "set by the gateway only"
    );
    assert_eq!(header("via")[0], "1.0 client-proxy, 1.1 lab-gateway");
    assert_eq!(
        header("x-request-id")[0],
        "abc-123",
        "end-to-end headers pass"
    );
    assert_eq!(
        seen["uri"], "/api/echo/headers?x=1&y=%2F",
        "the query passes untouched"
    );
    assert_eq!(answer.header("via"), Some("1.1 lab-gateway"));
}

#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_trusted_proxies() {
    let upstream = Upstream::start().await;
    let mut config = with_rate_limit(echo_config(&upstream.url()), 1, 1);
    config.trusted_proxies = vec![gateway_core::headers::Cidr::parse("127.0.0.1").unwrap()];
    let gateway = RunningGateway::start(config).await;
    let client = client();
    let from = |client_ip: &str| {
        http::Request::get(gateway.url("/open/whoami"))
            .header("x-forwarded-for", client_ip)
            .body(Full::default())
            .unwrap()
    };
    // Through a trusted proxy, each client IP has its own bucket...
    let first = call(&client, from("198.51.100.1")).await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.json()["headers"]["x-forwarded-for"][0],
        "198.51.100.1, 127.0.0.1"
    );
    assert_eq!(call(&client, from("198.51.100.2")).await.status, 200);
    // ...and the same client is limited, whatever it prepends.
    assert_eq!(
        call(&client, from("10.9.9.9, 198.51.100.1")).await.status,
        429
    );
}

// --- Rate limiting -------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_burst_beyond_the_limit_gets_429_with_retry_after_and_ratelimit_headers() {
    let upstream = Upstream::start().await;
    let gateway = RunningGateway::start(with_rate_limit(echo_config(&upstream.url()), 2, 5)).await;
    let client = client();
    let alice = token("alice");
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..8 {
        let answer = call(&client, get(&gateway.url("/api/echo"), Some(&alice))).await;
        statuses.push(answer.status.as_u16());
        last = Some(answer);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    let limited = last.unwrap();
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(limited.header("ratelimit-limit"), Some("5"));
    assert_eq!(limited.header("ratelimit-remaining"), Some("0"));
    assert_eq!(limited.header("ratelimit-reset"), Some("3"));
    assert_eq!(
        limited.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(
        upstream.hits(),
        5,
        "refused requests never reach the upstream"
    );
    // Another subject has its own bucket; and after the wait alice may go again.
    assert_eq!(
        call(&client, get(&gateway.url("/api/echo"), Some(&token("bob"))))
            .await
            .status,
        200
    );
    tokio::time::advance(Duration::from_millis(500)).await;
    let again = call(&client, get(&gateway.url("/api/echo"), Some(&alice))).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.header("ratelimit-remaining"), Some("0"));
}

#[tokio::test]
async fn a_hundred_thousand_distinct_clients_keep_the_limiter_bounded() {
    let limiter = SharedLimiter::new(&lab_gateway::config::RateLimitSection {
        requests: 1,
        per_ms: 60_000,
        burst: 1,
        max_clients: 4_096,
    })
    .unwrap();
    for i in 0..100_000u32 {
        assert!(
            limiter
                .check(&format!("ip:{}", std::net::Ipv4Addr::from(i)))
                .is_allowed()
        );
    }
    assert!(
        limiter.remembered() <= 4_096,
        "{} remembered",
        limiter.remembered()
    );
    // A client seen just now is still limited: eviction took the oldest, not the newest.
    assert!(limiter.check("ip:victim").is_allowed());
    assert!(!limiter.check("ip:victim").is_allowed());
}

// --- Upstream failures ---------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_slow_upstream_gets_504_after_the_route_timeout() {
    let upstream = Upstream::start().await;
    let mut config = echo_config(&upstream.url());
    config.routes.push(RouteConfig {
        auth: false,
        timeout_ms: Some(500),
        ..route("/fast", "echo")
    });
    let gateway = RunningGateway::start(config).await;
    let answer = call(
        &client(),
        http::Request::post(gateway.url("/fast/sleep/60000"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 504, "{:?}", answer.body);
    assert!(
        answer.json()["detail"]
            .as_str()
            .unwrap()
            .contains("did not answer")
    );
}

#[tokio::test(start_paused = true)]
async fn a_dead_upstream_gets_502_then_503_from_its_open_breaker() {
    // Bind and drop: a port where nobody listens.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = echo_config(&format!("http://{dead}"));
    config.breaker = lab_gateway::config::BreakerSection {
        window: 4,
        minimum_calls: 2,
        failure_rate_threshold: 50.0,
        wait_in_open_ms: 5_000,
        ..lab_gateway::config::BreakerSection::default()
    };
    config.retry.max_attempts = 1;
    let gateway = RunningGateway::start(config).await;
    let client = client();
    let post = || {
        http::Request::post(gateway.url("/open/x"))
            .body(Full::default())
            .unwrap()
    };
    assert_eq!(call(&client, post()).await.status, 502);
    assert_eq!(call(&client, post()).await.status, 502);
    let open = call(&client, post()).await;
    assert_eq!(open.status, 503, "{:?}", open.body);
    assert_eq!(open.header("retry-after"), Some("5"));
    assert!(
        open.json()["detail"]
            .as_str()
            .unwrap()
            .contains("circuit breaker")
    );
    let health = call(&client, get(&gateway.url("/health"), None)).await;
    assert_eq!(health.json()["upstreams"]["echo"], "Open");
}

#[tokio::test]
async fn only_idempotent_requests_are_retried() {
    let upstream = Upstream::start().await;
    let gateway = RunningGateway::start(echo_config(&upstream.url())).await;
    let client = client();
    // `/flaky` fails every odd hit: a GET is retried and succeeds...
    let answer = call(&client, get(&gateway.url("/open/flaky"), None)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(upstream.hits(), 2);
    // ...a POST is not: the first attempt may have had an effect.
    let answer = call(
        &client,
        http::Request::post(gateway.url("/open/flaky"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 503);
    assert_eq!(upstream.hits(), 3);
}

#[tokio::test]
async fn retries_stay_within_the_budget_when_an_upstream_keeps_failing() {
    let upstream = Upstream::start().await;
    let mut config = echo_config(&upstream.url());
    config.retry = lab_gateway::config::RetryConfig {
        max_attempts: 3,
        budget_ratio: 0.2,
        min_retries: 0,
        deadline_ms: 10_000,
    };
    let gateway = RunningGateway::start(config).await;
    let client = client();
    for _ in 0..50 {
        assert_eq!(
            call(&client, get(&gateway.url("/open/status/503"), None))
                .await
                .status,
            503
        );
    }
    // 50 requests, and at most 20 % more attempts: not 150.
    assert!(
        upstream.hits() <= 60,
        "{} attempts for 50 requests",
        upstream.hits()
    );
    assert!(
        upstream.hits() >= 55,
        "the budget allows some retries: {}",
        upstream.hits()
    );
}

// --- Aggregation ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn order_details_come_back_partial_when_an_optional_part_fails() {
    let addr = "127.0.0.1:0".parse().unwrap();
    let users = services::spawn(user_router(), addr).await.unwrap();
    let orders = services::spawn(order_router(), addr).await.unwrap();
    let products = services::spawn(product_router(), addr).await.unwrap();
    let payments = services::spawn(payment_router(), addr).await.unwrap();
    let mut config = Config::demo(users.addr, orders.addr, products.addr, payments.addr);
    config.rate_limit = None;
    // The product service hangs: its part must time out, not the whole answer.
    let hanging = axum::Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        "too late"
    });
    let hanging = services::spawn(hanging, addr).await.unwrap();
    config.upstreams.insert(
        "hanging".to_owned(),
        UpstreamConfig::fixed(&format!("http://{}", hanging.addr), 60_000),
    );
    let secret = config.auth.as_ref().unwrap().hs256_secret.clone().unwrap();
    let token = sign_hs256(
        &lab_gateway::tokens::TokenClaims::new(
            "alice",
            "microservices-in-motion",
            "demo-gateway",
            600,
        ),
        &secret,
    )
    .unwrap();
    let aggregation = |product_upstream: &str| AggregationConfig {
        order_upstream: "order".to_owned(),
        user_upstream: "user".to_owned(),
        product_upstream: product_upstream.to_owned(),
        part_timeout_ms: 300,
        auth: true,
    };
    config.aggregation = Some(aggregation("product"));
    let whole = RunningGateway::start(config.clone()).await;
    config.aggregation = Some(aggregation("hanging"));
    let gateway = RunningGateway::start(config).await;
    let client = client();
    let details = call(
        &client,
        get(&whole.url("/api/order-details/1"), Some(&token)),
    )
    .await;
    assert_eq!(details.status, 200);
    assert_eq!(details.json()["partial"], false);

    users.stop().await;
    let partial = call(
        &client,
        get(&gateway.url("/api/order-details/1"), Some(&token)),
    )
    .await;
    assert_eq!(partial.status, 200, "{:?}", partial.body);
    let partial = partial.json();
    assert_eq!(partial["partial"], true);
    assert!(partial["user"].is_null());
    assert!(partial["product"].is_null());
    assert_eq!(partial["missing"][0]["part"], "user");
    assert_eq!(partial["missing"][1]["part"], "product");
    assert!(
        partial["missing"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("did not answer"),
        "{partial}"
    );
    assert_eq!(partial["order"]["id"], "1");

    let missing = call(
        &client,
        get(&gateway.url("/api/order-details/404"), Some(&token)),
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        call(&client, get(&gateway.url("/api/order-details/1"), None))
            .await
            .status,
        401
    );
    assert_eq!(
        call(
            &client,
            get(&gateway.url("/api/order-details/a%2Fb"), Some(&token))
        )
        .await
        .status,
        400
    );
    orders.stop().await;
    let failed = call(
        &client,
        get(&gateway.url("/api/order-details/1"), Some(&token)),
    )
    .await;
    assert_eq!(failed.status, 502, "the order is the one required part");
    drop((products, payments));
}

// --- Keys ----------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_rotated_key_is_picked_up_from_the_jwks_without_a_restart() {
    let upstream = Upstream::start().await;
    let dir = std::env::temp_dir().join(format!("lab-gateway-jwks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks_path = dir.join("jwks.json");
    let jwk = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(keys_dir().join(format!("jwk-{name}.json"))).unwrap())
            .unwrap()
    };
    std::fs::write(
        &jwks_path,
        serde_json::json!({ "keys": [jwk("a")] }).to_string(),
    )
    .unwrap();
    let mut config = echo_config(&upstream.url());
    let auth = config.auth.as_mut().unwrap();
    auth.jwks_file = Some(jwks_path.clone());
    auth.rs256_public_key_file = None;
    let gateway = RunningGateway::start(config).await;
    let client = client();
    let with_a = sign_rs256(&claims("rita"), &rsa_private("a"), Some("demo-a")).unwrap();
    let with_b = sign_rs256(&claims("rita"), &rsa_private("b"), Some("demo-b")).unwrap();
    let echo = gateway.url("/api/echo");

    assert_eq!(call(&client, get(&echo, Some(&with_a))).await.status, 200);
    assert_eq!(
        call(&client, get(&echo, Some(&with_b))).await.status,
        401,
        "demo-b is not published yet"
    );
    let auth = gateway.gateway.authenticator().unwrap();
    assert_eq!(auth.jwks_reloads(), 1);
    // The identity provider publishes key b.
    std::fs::write(
        &jwks_path,
        serde_json::json!({ "keys": [jwk("a"), jwk("b")] }).to_string(),
    )
    .unwrap();
    // Reloads are rate-limited: a flood of unknown kids does not re-read the set each time.
    for _ in 0..5 {
        assert_eq!(call(&client, get(&echo, Some(&with_b))).await.status, 401);
    }
    assert_eq!(auth.jwks_reloads(), 1);
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(call(&client, get(&echo, Some(&with_b))).await.status, 200);
    assert_eq!(auth.jwks_reloads(), 2);
    assert_eq!(call(&client, get(&echo, Some(&with_a))).await.status, 200);
    let _ = std::fs::remove_dir_all(&dir);
}

// --- Lifecycle -----------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn graceful_shutdown_lets_in_flight_requests_finish() {
    let upstream = Upstream::start().await;
    let mut gateway = RunningGateway::start(echo_config(&upstream.url())).await;
    let client = client();
    let in_flight = tokio::spawn({
        let client = client.clone();
        let url = gateway.url("/open/sleep/2000");
        async move { call(&client, get(&url, None)).await.status }
    });
    // Let the request reach the upstream, then ask the gateway to stop.
    while upstream.hits() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gateway.shutdown();
    assert_eq!(
        in_flight.await.unwrap(),
        200,
        "the in-flight request finished"
    );
    gateway.task.await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(gateway.addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn with_the_access_log_on_each_request_gets_a_line_and_is_still_served() {
    let (captured, _log) = capture_logs("access=info");
    let upstream = Upstream::start().await;
    let gateway = RunningGateway::start(echo_config(&upstream.url())).await;
    let client = client();
    assert_eq!(
        call(&client, get(&gateway.url("/open/ok"), None))
            .await
            .status,
        200
    );
    assert_eq!(
        call(&client, get(&gateway.url("/health"), None))
            .await
            .status,
        200
    );
    assert_eq!(
        call(&client, get(&gateway.url("/nowhere"), None))
            .await
            .status,
        404
    );
    let log = captured.text();
    for (path, status) in [("/open/ok", 200), ("/health", 200), ("/nowhere", 404)] {
        assert!(
            log.lines()
                .any(|line| line.contains(&format!("path={path} "))
                    && line.contains(&format!("status={status}"))),
            "no access line for {path} -> {status} in:\n{log}"
        );
    }
    assert_eq!(upstream.hits(), 1);
}

#[test]
fn the_gateway_does_not_listen_on_the_books_port() {
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.toml"),
    )
    .unwrap();
    let example = Config::from_toml(&example).unwrap();
    let default = Config::from_toml("routes = []\n[upstreams]\n").unwrap();
    for (what, config) in [("gateway.toml", example), ("the default", default)] {
        assert_ne!(
            config.listen.port(),
            3000,
            "{what}: `cargo xtask serve` serves the book on 3000"
        );
    }
    let chapter = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../book/src/patterns/api-gateway-lab.md"),
    )
    .unwrap();
    assert!(
        !chapter.contains("127.0.0.1:3000"),
        "nor do the chapter's commands"
    );
}

#[test]
fn the_example_configuration_parses() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.toml"),
    )
    .unwrap();
    let config = Config::from_toml(&text).unwrap();
    assert_eq!(config.routes.len(), 4);
    assert!(
        Config::from_toml("routes = []\nupstreams = {}\nbogus = 1").is_err(),
        "unknown fields are refused"
    );
    let unknown_upstream =
        "[upstreams]\n[[routes]]\nprefix = \"/a\"\nupstream = \"nope\"\nauth = false\n";
    assert!(matches!(
        Config::from_toml(unknown_upstream),
        Err(lab_gateway::config::ConfigError::UnknownUpstream { .. })
    ));
}
