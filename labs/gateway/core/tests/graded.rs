//! Graded tests of the gateway's route matcher and rate limiter.
//!
//! `cargo xtask grade gateway` runs these against the learner's copies
//! (`labs/gateway/exercise/router.rs` and `rate_limit.rs`, swapped in by the `exercise`
//! feature); plain `cargo test -p gateway-core` runs them against the reference. They go
//! from a clean path to the hostile spellings, then from a first request to a flood of
//! clients. Each name is a sentence, and `labs/gateway/grading.toml` lists them in the
//! same order with a hint per test. Time is a number here: nothing sleeps.

#![allow(clippy::unwrap_used)]

use gateway_core::{
    Decision, LimitError, LimiterInput, LimiterOutput, MAX_PATH_LEN, Machine, Millis, PathError,
    RateLimitConfig, RateLimiter, Route, RouteError, RouteTable, normalize_path,
};
use lab_test_support::check_property;
use proptest::prelude::*;
use sansio_core::script::{Step, run};

// ANCHOR: guide_table
/// The guide's gateway: four services behind `/api/...`.
fn guide_table() -> RouteTable {
    RouteTable::new(vec![
        Route::new("/api/users", "user"),
        Route::new("/api/orders", "order"),
        Route::new("/api/products", "product"),
        Route::new("/api/payments", "payment"),
    ])
    .expect("the guide's routes are valid")
}
// ANCHOR_END: guide_table

fn upstream_for(table: &RouteTable, host: Option<&str>, path: &str) -> Result<String, RouteError> {
    table
        .resolve(host, path)
        .map(|found| found.route.upstream.clone())
}

/// Asserts that a request for `path` (with `Host: host`) is routed to `upstream`.
#[track_caller]
fn assert_routed(table: &RouteTable, host: Option<&str>, path: &str, upstream: &str) {
    assert_eq!(
        upstream_for(table, host, path),
        Ok(upstream.to_owned()),
        "the upstream chosen for {path:?} with host {host:?}"
    );
}

/// Asserts that `path` normalizes to `expected`.
#[track_caller]
fn assert_normalized(path: &str, expected: &str) {
    assert_eq!(
        normalize_path(path).as_deref(),
        Ok(expected),
        "normalizing {path:?}"
    );
}

/// Asserts that `path` is refused with `error`.
#[track_caller]
fn assert_refused(path: &str, error: PathError) {
    assert_eq!(normalize_path(path), Err(error), "normalizing {path:?}");
}

/// Asserts that `client`'s request at `now` is allowed (`what` says why it should be).
#[track_caller]
fn assert_allowed(limiter: &mut RateLimiter, client: &str, now: u64, what: &str) {
    let decision = limiter.check(client, Millis(now));
    assert!(
        decision.is_allowed(),
        "{client} at {now} ms must be allowed ({what}), got {decision:?}"
    );
}

/// Asserts that `client`'s request at `now` is limited (`what` says why it should be).
#[track_caller]
fn assert_limited(limiter: &mut RateLimiter, client: &str, now: u64, what: &str) {
    let decision = limiter.check(client, Millis(now));
    assert!(
        !decision.is_allowed(),
        "{client} at {now} ms must be limited ({what}), got {decision:?}"
    );
}

// ANCHOR: limiter_helper
/// 10 requests per second (one per 100 ms), bursts of 3, at most 1000 clients remembered.
fn limiter() -> RateLimiter {
    RateLimiter::new(RateLimitConfig {
        requests: 10,
        per: Millis::from_secs(1),
        burst: 3,
        max_clients: 1000,
    })
    .expect("the test's configuration is valid")
}
// ANCHOR_END: limiter_helper

// --- The route matcher -------------------------------------------------------------------

#[test]
fn a_clean_path_comes_back_unchanged() {
    for path in [
        "/",
        "/api/users",
        "/api/users/42",
        "/api/users/42/",
        "/a-b_c~d.e",
    ] {
        assert_normalized(path, path);
    }
}

#[test]
fn repeated_slashes_collapse_and_dot_segments_disappear() {
    assert_normalized("//api///users", "/api/users");
    assert_normalized("/api/./users/./42", "/api/users/42");
    assert_normalized("/./", "/");
}

#[test]
fn unreserved_escapes_are_decoded_and_others_are_upper_cased() {
    assert_normalized("/api/%75%73ers/%34%32", "/api/users/42");
    assert_normalized("/search/a%3fb%3Dc", "/search/a%3Fb%3Dc");
    assert_normalized("/caf%c3%a9", "/caf%C3%A9");
}

// ANCHOR: dot_dot_test
#[test]
fn dot_dot_segments_are_refused_in_every_spelling() {
    for path in [
        "/api/users/../payments",
        "/api/users/..",
        "/api/users/%2e%2e/payments",
        "/api/users/.%2E/payments",
        "/api/users/..;jsessionid=1/payments",
    ] {
        assert_refused(path, PathError::Traversal);
    }
}
// ANCHOR_END: dot_dot_test

// ANCHOR: structure_escapes_test
#[test]
fn escapes_that_change_the_path_structure_are_refused() {
    assert_refused(
        "/api/users/..%2fpayments",
        PathError::ForbiddenEscape { byte: b'/' },
    );
    assert_refused(
        "/api/users/..%5Cpayments",
        PathError::ForbiddenEscape { byte: b'\\' },
    );
    assert_refused(
        "/api/users/%252e%252e/payments",
        PathError::ForbiddenEscape { byte: b'%' },
    );
    assert_refused("/api/users%00.json", PathError::ForbiddenEscape { byte: 0 });
}
// ANCHOR_END: structure_escapes_test

#[test]
fn raw_control_bytes_backslashes_and_broken_escapes_are_refused() {
    assert_refused(
        "/a\r\nX-Injected: 1",
        PathError::ForbiddenByte { byte: b'\r' },
    );
    assert_refused("/a b", PathError::ForbiddenByte { byte: b' ' });
    assert_refused("/a\\b", PathError::ForbiddenByte { byte: b'\\' });
    assert_refused("/a/caf\u{e9}", PathError::ForbiddenByte { byte: 0xc3 });
    assert_refused("/a%zz", PathError::BadEscape { at: 2 });
    assert_refused("/a%4", PathError::BadEscape { at: 2 });
    assert_refused("api/users", PathError::NotAbsolute);
    assert_refused("", PathError::NotAbsolute);
    let long = format!("/{}", "a".repeat(5000));
    assert!(
        matches!(normalize_path(&long), Err(PathError::TooLong { .. })),
        "a path of {} bytes must be refused as TooLong, got {:?}",
        long.len(),
        normalize_path(&long)
    );
}

#[test]
fn a_prefix_matches_whole_segments_only() {
    let table = guide_table();
    assert_routed(&table, None, "/api/users", "user");
    assert_routed(&table, None, "/api/users/", "user");
    assert_routed(&table, None, "/api/users/42/orders", "user");
    let result = upstream_for(&table, None, "/api/usersettings");
    assert!(
        matches!(result, Err(RouteError::NoRoute { .. })),
        "/api/usersettings is not under /api/users: expected NoRoute, got {result:?}"
    );
}

// ANCHOR: longest_prefix_test
#[test]
fn the_longest_matching_prefix_wins() {
    let table = RouteTable::new(vec![
        Route::new("/", "fallback"),
        Route::new("/api", "monolith"),
        Route::new("/api/users", "user"),
        Route::new("/api/users/admin", "admin"),
    ])
    .expect("four distinct, normalized prefixes make a valid table");
    assert_routed(&table, None, "/api/users/admin/7", "admin");
    assert_routed(&table, None, "/api/users/7", "user");
    assert_routed(&table, None, "/api/orders", "monolith");
    assert_routed(&table, None, "/index.html", "fallback");
}
// ANCHOR_END: longest_prefix_test

// ANCHOR: matched_path_test
#[test]
fn the_matched_path_is_the_normalized_one() {
    let table = guide_table();
    let found = table
        .resolve(None, "//api/./users/%34%32")
        .expect("//api/./users/%34%32 normalizes to /api/users/42, which has a route");
    assert_eq!(
        (found.route.upstream.as_str(), found.path.as_str()),
        ("user", "/api/users/42"),
        "(upstream, forwarded path) for //api/./users/%34%32"
    );
    // A traversal never reaches the matcher, so it cannot pick a route at all.
    assert_eq!(
        table
            .resolve(None, "/api/users/../payments")
            .map(|found| found.path),
        Err(RouteError::Path(PathError::Traversal)),
        "resolving /api/users/../payments must refuse the path, not route it"
    );
}
// ANCHOR_END: matched_path_test

// ANCHOR: host_route_test
#[test]
fn a_route_for_the_request_host_beats_a_route_for_any_host() {
    let table = RouteTable::new(vec![
        Route::new("/api/users", "user"),
        Route::new("/", "partner-api").for_host("partners.example.com"),
    ])
    .expect("a route for any host and one for a host make a valid table");
    assert_routed(
        &table,
        Some("Partners.Example.COM:3000"),
        "/api/users/1",
        "partner-api",
    );
    assert_routed(&table, Some("www.example.com"), "/api/users/1", "user");
    assert_routed(&table, None, "/api/users/1", "user");
    let other = upstream_for(&table, Some("www.example.com"), "/other");
    assert!(
        other.is_err(),
        "/other on www.example.com matches no route (the '/' route is for partners only), got {other:?}"
    );
}
// ANCHOR_END: host_route_test

#[test]
fn the_table_refuses_unnormalized_and_duplicate_prefixes() {
    for prefix in ["api", "/api/../admin", "/api//users", "/api/%2e%2e"] {
        let result = RouteTable::new(vec![Route::new(prefix, "x")]);
        assert!(
            matches!(result, Err(RouteError::InvalidPrefix { .. })),
            "prefix {prefix:?} must be refused as InvalidPrefix, got {result:?}"
        );
    }
    let duplicate = RouteTable::new(vec![Route::new("/api", "a"), Route::new("/api/", "b")]);
    assert!(
        matches!(duplicate, Err(RouteError::Duplicate { .. })),
        "/api and /api/ are the same prefix: expected Duplicate, got {duplicate:?}"
    );
    // The same prefix for two different hosts is fine.
    let two_hosts = RouteTable::new(vec![
        Route::new("/api", "a"),
        Route::new("/api", "b").for_host("b.example"),
    ]);
    assert!(
        two_hosts.is_ok(),
        "the same prefix for any host and for b.example is not a duplicate, got {two_hosts:?}"
    );
}

// --- The rate limiter ----------------------------------------------------------------------

#[test]
fn a_new_client_gets_its_whole_burst() {
    let mut limiter = limiter();
    for expected_remaining in [2, 1, 0] {
        match limiter.check("alice", Millis(0)) {
            Decision::Allowed { remaining, .. } => assert_eq!(
                remaining,
                expected_remaining,
                "remaining after {} of alice's 3-request burst",
                3 - expected_remaining
            ),
            limited => panic!("request within the burst was refused: {limited:?}"),
        }
    }
}

// ANCHOR: over_burst_test
#[test]
fn a_client_over_its_burst_is_told_when_to_retry() {
    let mut limiter = limiter();
    for _ in 0..3 {
        assert_allowed(&mut limiter, "alice", 0, "within the burst of 3");
    }
    assert_eq!(
        limiter.check("alice", Millis(0)),
        Decision::Limited {
            retry_after: Millis(100),
            reset_after: Millis(300)
        },
        "the 4th request at 0 ms: one request comes back in 100 ms, the whole burst in 300 ms"
    );
    assert_eq!(
        limiter.check("alice", Millis(40)),
        Decision::Limited {
            retry_after: Millis(60),
            reset_after: Millis(260)
        },
        "the same client 40 ms later: 40 ms less to wait for both"
    );
}
// ANCHOR_END: over_burst_test

#[test]
fn requests_come_back_at_the_sustained_rate() {
    let mut limiter = limiter();
    for _ in 0..3 {
        assert_allowed(&mut limiter, "alice", 0, "within the burst of 3");
    }
    // One request's worth every 100 ms, no more.
    assert_allowed(&mut limiter, "alice", 100, "100 ms bought one request back");
    assert_limited(
        &mut limiter,
        "alice",
        150,
        "that request was spent at 100 ms",
    );
    assert_allowed(
        &mut limiter,
        "alice",
        200,
        "another 100 ms, another request",
    );
    // After a long pause the bucket is full again, but never fuller than the burst.
    let admitted = (0..10)
        .filter(|_| limiter.check("alice", Millis(60_000)).is_allowed())
        .count();
    assert_eq!(
        admitted, 3,
        "requests admitted after a minute of silence: the burst, not a minute's worth"
    );
}

// ANCHOR: refused_costs_nothing_test
#[test]
fn a_refused_request_costs_nothing() {
    let mut limiter = limiter();
    for _ in 0..3 {
        assert_allowed(&mut limiter, "alice", 0, "within the burst of 3");
    }
    // Hammering while limited must not push the next allowed moment further away.
    for _ in 0..50 {
        assert_limited(&mut limiter, "alice", 10, "the burst is spent");
    }
    assert_allowed(
        &mut limiter,
        "alice",
        100,
        "the 50 refused requests must not have cost anything",
    );
}
// ANCHOR_END: refused_costs_nothing_test

#[test]
fn clients_are_limited_independently() {
    let mut limiter = limiter();
    for _ in 0..3 {
        assert_allowed(&mut limiter, "alice", 0, "within alice's burst of 3");
    }
    assert_limited(&mut limiter, "alice", 0, "alice spent her burst");
    assert_allowed(&mut limiter, "bob", 0, "bob has his own bucket");
}

#[test]
fn reset_after_says_when_the_bucket_is_full_again() {
    let mut limiter = limiter();
    assert_eq!(
        limiter.check("alice", Millis(0)),
        Decision::Allowed {
            remaining: 2,
            reset_after: Millis(100)
        },
        "alice's first request at 0 ms"
    );
    assert_eq!(
        limiter.check("alice", Millis(50)),
        Decision::Allowed {
            remaining: 1,
            reset_after: Millis(150)
        },
        "alice's second request at 50 ms: two requests' worth (200 ms) minus the 50 ms gone"
    );
}

// ANCHOR: slow_rate_test
#[test]
fn a_slow_rate_is_not_rounded_to_whole_milliseconds() {
    // 3 per second is one every 333.33… ms: at 333 ms the next request is still early.
    let mut limiter = RateLimiter::new(RateLimitConfig {
        requests: 3,
        per: Millis::from_secs(1),
        burst: 1,
        max_clients: 10,
    })
    .expect("3 per second with a burst of 1 is a valid configuration");
    assert_allowed(&mut limiter, "alice", 0, "a new client with a burst of 1");
    assert_eq!(
        limiter.check("alice", Millis(333)),
        Decision::Limited {
            retry_after: Millis(1),
            reset_after: Millis(1)
        },
        "at 333 ms the next request is still 0.33 ms early, rounded up to 1 ms"
    );
    assert_allowed(&mut limiter, "alice", 334, "333.33 ms have passed");
}
// ANCHOR_END: slow_rate_test

// ANCHOR: forgetting_test
#[test]
fn forgetting_full_buckets_changes_no_decision() {
    let mut limiter = limiter();
    assert_allowed(&mut limiter, "alice", 0, "a new client");
    for _ in 0..3 {
        assert_allowed(&mut limiter, "bob", 0, "within bob's burst of 3");
    }
    assert_eq!(limiter.len(), 2, "clients remembered: alice and bob");
    // At 150 ms alice's bucket is full again; bob's is not.
    assert_eq!(
        limiter.handle_timeout(Millis(150)),
        1,
        "clients forgotten at 150 ms: alice, whose bucket was full at 100 ms"
    );
    assert_eq!(limiter.len(), 1, "clients remembered: bob");
    // Bob is remembered: 150 ms bought him back one request, not his whole burst.
    assert_allowed(
        &mut limiter,
        "bob",
        150,
        "150 ms bought bob one request back",
    );
    assert_limited(
        &mut limiter,
        "bob",
        150,
        "only one: bob is still remembered",
    );
    assert_allowed(&mut limiter, "alice", 150, "alice's bucket is full");
}
// ANCHOR_END: forgetting_test

#[test]
fn memory_stays_bounded_under_a_flood_of_new_clients() {
    let mut limiter = limiter();
    for i in 0..100_000u64 {
        let now = Millis(i / 100);
        let decision = limiter.check(&format!("203.0.113.{i}"), now);
        assert!(
            decision.is_allowed(),
            "new client {i} at {now:?} must be allowed, got {decision:?}"
        );
        assert!(
            limiter.len() <= 1000,
            "{} clients remembered at request {i}, more than max_clients = 1000",
            limiter.len()
        );
    }
    // A client in the middle of its burst is still limited after the flood.
    for _ in 0..3 {
        assert_allowed(&mut limiter, "alice", 1000, "within alice's burst of 3");
    }
    assert_limited(
        &mut limiter,
        "alice",
        1000,
        "alice is remembered: the flood must not forget an active client",
    );
}

#[test]
fn the_limiter_refuses_a_config_it_cannot_honour() {
    let base = RateLimitConfig::default();
    for (field, config) in [
        (
            "requests",
            RateLimitConfig {
                requests: 0,
                ..base.clone()
            },
        ),
        (
            "per",
            RateLimitConfig {
                per: Millis::ZERO,
                ..base.clone()
            },
        ),
        (
            "burst",
            RateLimitConfig {
                burst: 0,
                ..base.clone()
            },
        ),
        (
            "max_clients",
            RateLimitConfig {
                max_clients: 0,
                ..base.clone()
            },
        ),
    ] {
        assert_eq!(
            RateLimiter::new(config).err(),
            Some(LimitError::Zero { field }),
            "the error for a configuration with {field} = 0"
        );
    }
    let too_fast = RateLimiter::new(RateLimitConfig {
        requests: 5000,
        per: Millis(1),
        ..base
    });
    assert!(
        matches!(too_fast, Err(LimitError::TooFast { .. })),
        "5000 requests per millisecond is one per 0.2 µs: expected TooFast, got {:?}",
        too_fast.err()
    );
}

// --- A property: the limiter agrees with a token bucket -------------------------------------

/// The seed of the property tests: fixed, so every grading run is the same; set
/// `PROPTEST_SEED` to explore other workloads.
const PROPTEST_SEED: u64 = 0x0a7e_3a70;

/// The obviously-correct model: a bucket of credit in microseconds that refills with time
/// up to `burst × T` and pays `T` per admitted request.
struct TokenBucket {
    credit: u64,
    capacity: u64,
    cost: u64,
    last: u64,
}

impl TokenBucket {
    /// Refills the bucket up to `now_us`, then admits one request if a whole `cost` is there.
    fn admit(&mut self, now_us: u64) -> bool {
        self.credit = (self.credit + (now_us - self.last)).min(self.capacity);
        self.last = now_us;
        if self.credit >= self.cost {
            self.credit -= self.cost;
            true
        } else {
            false
        }
    }
}

#[test]
fn the_limiter_agrees_with_a_token_bucket_model() {
    let workload = (
        1u32..20,
        1u32..6,
        proptest::collection::vec((0u64..400, 0usize..3), 1..150),
    );
    check_property(200, PROPTEST_SEED, &workload, |(requests, burst, steps)| {
        let config = RateLimitConfig {
            requests,
            per: Millis::from_secs(1),
            burst,
            max_clients: 100,
        };
        let mut limiter = RateLimiter::new(config)
            .expect("1 to 19 requests per second, a burst of 1 to 5 and 100 clients is a valid configuration");
        let cost = 1_000_000 / u64::from(requests);
        let capacity = cost * u64::from(burst);
        let mut models: Vec<TokenBucket> = (0..3)
            .map(|_| TokenBucket {
                credit: capacity,
                capacity,
                cost,
                last: 0,
            })
            .collect();
        let mut now = 0u64;
        for (index, (wait, client)) in steps.iter().enumerate() {
            now += wait;
            let decision = limiter.check(&format!("client-{client}"), Millis(now));
            let model = &mut models[*client];
            let expected = model.admit(now * 1000);
            prop_assert_eq!(
                decision.is_allowed(),
                expected,
                "invariant: admits_like_a_token_bucket — step {} at {} ms, client-{}: limiter said \
                 {:?}, a token bucket of {} requests/s and burst {} says allowed = {}",
                index,
                now,
                client,
                decision,
                requests,
                burst,
                expected
            );
            match decision {
                Decision::Allowed { remaining, .. } => {
                    let whole = u32::try_from(model.credit / cost).unwrap();
                    prop_assert_eq!(
                        remaining,
                        whole,
                        "invariant: remaining_counts_whole_requests_left — step {} at {} ms, \
                         client-{}: the bucket holds {} µs of credit after this request, {} \
                         whole requests of {} µs",
                        index,
                        now,
                        client,
                        model.credit,
                        whole,
                        cost
                    );
                }
                Decision::Limited { retry_after, .. } => {
                    let wait_ms = (cost - model.credit).div_ceil(1000);
                    prop_assert_eq!(
                        retry_after,
                        Millis(wait_ms),
                        "invariant: retry_after_is_when_a_request_is_back — step {} at {} ms, \
                         client-{}: the bucket holds {} µs of credit and a request costs {} µs, \
                         so it is back in {} ms (rounded up)",
                        index,
                        now,
                        client,
                        model.credit,
                        cost,
                        wait_ms
                    );
                }
            }
        }
        Ok(())
    });
}

// --- Exact limits, stored state and eviction ------------------------------------------------

/// One path segment of a valid path, as sent and as the gateway must forward it.
#[derive(Clone, Debug)]
enum Segment {
    /// `.`, which disappears.
    Dot,
    /// A name: its spelling on the wire and its one canonical spelling.
    Name { sent: String, canonical: String },
}

/// A valid segment name: a letter or digit first (so it is never `.` or `..`), then
/// unreserved characters, sub-delimiters, and escapes of both, in either case.
fn segment_name() -> impl Strategy<Value = Segment> {
    let first = prop_oneof![Just('a'), Just('Z'), Just('7')];
    let piece = prop_oneof![
        // Unreserved, sent raw or escaped: canonically raw.
        (
            prop_oneof![
                Just('u'),
                Just('Q'),
                Just('0'),
                Just('-'),
                Just('.'),
                Just('_'),
                Just('~')
            ],
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(c, escaped, lower)| {
                let sent = if escaped {
                    escape(c as u8, lower)
                } else {
                    c.to_string()
                };
                (sent, c.to_string())
            }),
        // Reserved, sent raw: kept raw.
        prop_oneof![
            Just(';'),
            Just('='),
            Just(':'),
            Just('@'),
            Just('!'),
            Just('+'),
            Just(',')
        ]
        .prop_map(|c| (c.to_string(), c.to_string())),
        // Reserved or non-ASCII, sent escaped: kept escaped, in upper case.
        (
            prop_oneof![
                Just(b'?'),
                Just(b'#'),
                Just(b'='),
                Just(b' '),
                Just(0xc3u8),
                Just(0xa9u8)
            ],
            any::<bool>()
        )
            .prop_map(|(byte, lower)| (escape(byte, lower), escape(byte, false))),
    ];
    (first, proptest::collection::vec(piece, 0..6)).prop_map(|(first, pieces)| {
        let mut sent = first.to_string();
        let mut canonical = first.to_string();
        for (piece_sent, piece_canonical) in pieces {
            sent.push_str(&piece_sent);
            canonical.push_str(&piece_canonical);
        }
        Segment::Name { sent, canonical }
    })
}

/// `%XY` for `byte`, in lower or upper case hex.
fn escape(byte: u8, lower: bool) -> String {
    if lower {
        format!("%{byte:02x}")
    } else {
        format!("%{byte:02X}")
    }
}

/// A valid path as sent (repeated slashes, `.` segments, escapes) and its canonical form.
fn valid_path() -> impl Strategy<Value = (String, String)> {
    let segment = prop_oneof![1 => Just(Segment::Dot), 4 => segment_name()];
    (
        proptest::collection::vec((1usize..4, segment), 0..8),
        0usize..3,
    )
        .prop_map(|(segments, trailing_slashes)| {
            let mut sent = String::new();
            let mut names = Vec::new();
            for (slashes, segment) in &segments {
                sent.push_str(&"/".repeat(*slashes));
                match segment {
                    Segment::Dot => sent.push('.'),
                    Segment::Name {
                        sent: spelled,
                        canonical,
                    } => {
                        sent.push_str(spelled);
                        names.push(canonical.as_str());
                    }
                }
            }
            // A path that ends in a name keeps the trailing slash the client sent; one that
            // ends in `.` always sends one here, so whether `/a/.` means `/a` or `/a/` is
            // not asked.
            let ends_in_dot = matches!(segments.last(), Some((_, Segment::Dot)));
            let trailing = if ends_in_dot {
                trailing_slashes.max(1)
            } else {
                trailing_slashes
            };
            if sent.is_empty() {
                sent.push('/');
            }
            sent.push_str(&"/".repeat(trailing));
            let mut canonical = format!("/{}", names.join("/"));
            if !names.is_empty() && sent.ends_with('/') {
                canonical.push('/');
            }
            (sent, canonical)
        })
}

/// Paths built from the characters attackers like best.
fn hostile_path() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("/"),
            Just("."),
            Just(".."),
            Just("%2e"),
            Just("%2E"),
            Just("%2f"),
            Just("%5c"),
            Just("%25"),
            Just("%00"),
            Just(";"),
            Just("a"),
            Just("%41"),
            Just("%3f"),
            Just("\\"),
            Just("\r\n"),
            Just("%"),
        ],
        0..24,
    )
    .prop_map(|parts| format!("/{}", parts.concat()))
}

#[test]
fn every_valid_path_is_accepted_in_one_canonical_spelling() {
    check_property(300, PROPTEST_SEED, &valid_path(), |(sent, canonical)| {
        let normalized = normalize_path(&sent);
        prop_assert!(
            normalized.is_ok(),
            "invariant: accepts_valid_paths — {:?} holds no traversal, no forbidden byte and no \
             forbidden escape, so it must be accepted; got {:?}",
            sent,
            normalized
        );
        let normalized = normalized.unwrap();
        prop_assert_eq!(
            &normalized,
            &canonical,
            "invariant: canonical_spelling — normalizing {:?}: no empty or '.' segments, \
             unreserved escapes decoded, other escapes in upper case, the trailing slash kept",
            sent
        );
        let again = normalize_path(&normalized);
        prop_assert_eq!(
            again.as_deref(),
            Ok(normalized.as_str()),
            "invariant: idempotent — a normalized path must come back unchanged"
        );
        Ok(())
    });
    check_property(300, PROPTEST_SEED, &hostile_path(), |sent| {
        if let Ok(normalized) = normalize_path(&sent) {
            let again = normalize_path(&normalized);
            prop_assert_eq!(
                again.as_deref(),
                Ok(normalized.as_str()),
                "invariant: idempotent — {:?} normalized to {:?}, which must come back unchanged",
                sent,
                normalized
            );
            let lower = normalized.to_ascii_lowercase();
            let ambiguous = normalized.contains("//")
                || normalized.contains('\\')
                || normalized.split('/').any(|segment| {
                    let name = segment.split(';').next().unwrap_or(segment);
                    name == "." || name == ".."
                })
                || ["%2f", "%5c", "%25", "%2e", "%00"]
                    .iter()
                    .any(|escape| lower.contains(escape));
            prop_assert!(
                !ambiguous,
                "invariant: nothing_ambiguous — {:?} was accepted as {:?}, which still holds \
                 '//', a backslash, a '.' or '..' segment, or an escape that should have been \
                 decoded or refused",
                sent,
                normalized
            );
        }
        Ok(())
    });
}

#[test]
fn a_path_of_exactly_the_maximum_length_is_accepted() {
    let longest = format!("/{}", "a".repeat(MAX_PATH_LEN - 1));
    assert_eq!(
        normalize_path(&longest).map(|path| path.len()),
        Ok(MAX_PATH_LEN),
        "a path of exactly MAX_PATH_LEN ({MAX_PATH_LEN}) bytes is not too long"
    );
    let one_more = format!("{longest}a");
    assert_refused(
        &one_more,
        PathError::TooLong {
            len: MAX_PATH_LEN + 1,
            max: MAX_PATH_LEN,
        },
    );
}

#[test]
fn an_escaped_space_is_kept_but_escaped_control_bytes_are_refused() {
    // 0x20 is the first byte that is not a control character: reserved, so kept escaped.
    assert_normalized("/a%20b", "/a%20b");
    assert_refused("/a%1fb", PathError::ForbiddenEscape { byte: 0x1f });
    assert_refused("/a%7Fb", PathError::ForbiddenEscape { byte: 0x7f });
    // 0x7e ('~') is unreserved and 0x80 is the first non-ASCII byte: neither is refused.
    assert_normalized("/a%7eb", "/a~b");
    assert_normalized("/a%80b", "/a%80b");
}

#[test]
fn the_table_keeps_its_routes_normalized() {
    let table = RouteTable::new(vec![
        Route::new("/api/users/", "user"),
        Route::new("/", "fallback"),
        Route::new("/api", "admin").for_host("Admin.Example.COM.:8443"),
    ])
    .expect("three distinct, normalized prefixes make a valid table");
    let stored: Vec<(&str, Option<&str>, &str)> = table
        .routes()
        .iter()
        .map(|route| {
            (
                route.prefix.as_str(),
                route.host.as_deref(),
                route.upstream.as_str(),
            )
        })
        .collect();
    assert_eq!(
        stored,
        [
            ("/api/users", None, "user"),
            ("/", None, "fallback"),
            ("/api", Some("admin.example.com"), "admin"),
        ],
        "(prefix, host, upstream) of each route, in the order given: prefixes without their \
         trailing slash, hosts through normalize_host"
    );
}

#[test]
fn the_limiter_keeps_the_configuration_it_was_built_with() {
    let config = RateLimitConfig {
        requests: 7,
        per: Millis::from_secs(3),
        burst: 4,
        max_clients: 12,
    };
    let limiter = RateLimiter::new(config.clone())
        .expect("7 requests per 3 s, burst 4, 12 clients is a valid configuration");
    assert_eq!(
        limiter.config(),
        &config,
        "config() returns the configuration given to new()"
    );
}

#[test]
fn a_bucket_that_is_full_exactly_now_is_forgotten() {
    let mut limiter = limiter();
    assert!(limiter.is_empty(), "a new limiter remembers no client");
    assert_allowed(&mut limiter, "alice", 0, "a new client");
    assert!(
        !limiter.is_empty(),
        "after alice's request the limiter remembers her"
    );
    assert_eq!(
        limiter.handle_timeout(Millis(99)),
        0,
        "clients forgotten at 99 ms: none, alice's bucket is full only at 100 ms"
    );
    assert_eq!(
        limiter.handle_timeout(Millis(100)),
        1,
        "clients forgotten at 100 ms: alice, whose bucket is full again exactly then"
    );
    assert!(
        limiter.is_empty(),
        "after forgetting alice the limiter remembers no client (len = {})",
        limiter.len()
    );
}

#[test]
fn a_full_table_forgets_the_quarter_closest_to_a_full_bucket() {
    // One request per 1000 s and a burst of 2: nobody's bucket refills during the test.
    let mut limiter = RateLimiter::new(RateLimitConfig {
        requests: 1,
        per: Millis::from_secs(1000),
        burst: 2,
        max_clients: 8,
    })
    .expect("1 request per 1000 s, burst 2, 8 clients is a valid configuration");
    // c0 … c7 arrive 1 ms apart, so c0 is the closest to a full bucket, then c1, …
    for i in 0..8 {
        assert_allowed(&mut limiter, &format!("c{i}"), i, "a new client");
        assert_eq!(
            limiter.len(),
            usize::try_from(i + 1).unwrap(),
            "clients remembered after c{i}: the table holds 8 before it forgets anyone"
        );
    }
    // The table is full: c8 makes room by forgetting a quarter of it (2 of 8), c0 and c1.
    assert_allowed(&mut limiter, "c8", 8, "a new client");
    assert_eq!(
        limiter.len(),
        7,
        "clients remembered after c8: 8 − a quarter (2) + c8"
    );
    for i in 2..=8 {
        assert_eq!(
            limiter.check(&format!("c{i}"), Millis(9)),
            Decision::Allowed {
                remaining: 0,
                reset_after: Millis(2_000_000 - 9 + i),
            },
            "c{i} is still remembered, so its second request spends the rest of its burst"
        );
    }
    for forgotten in ["c1", "c0"] {
        assert_eq!(
            limiter.check(forgotten, Millis(9)),
            Decision::Allowed {
                remaining: 1,
                reset_after: Millis(1_000_000),
            },
            "{forgotten} was forgotten, so it is a new client with its whole burst again"
        );
    }
}

#[test]
fn making_room_first_forgets_the_buckets_full_by_now() {
    // 10 per second (T = 100 ms), bursts of 3, at most 4 clients remembered.
    let mut limiter = RateLimiter::new(RateLimitConfig {
        requests: 10,
        per: Millis::from_secs(1),
        burst: 3,
        max_clients: 4,
    })
    .expect("10 per second, burst 3, 4 clients is a valid configuration");
    assert_allowed(
        &mut limiter,
        "a",
        0,
        "a new client; its bucket is full at 100 ms",
    );
    assert_allowed(
        &mut limiter,
        "b",
        50,
        "a new client; its bucket is full at 150 ms",
    );
    assert_allowed(
        &mut limiter,
        "c",
        60,
        "a new client; its bucket is full at 160 ms",
    );
    assert_allowed(
        &mut limiter,
        "d",
        60,
        "a new client; its bucket is full at 160 ms",
    );
    assert_eq!(limiter.len(), 4, "clients remembered: the table is full");
    // At 150 ms a's bucket has been full for 50 ms and b's is full exactly now: both go,
    // which frees more than a quarter, so c and d stay.
    assert_allowed(&mut limiter, "e", 150, "a new client");
    assert_eq!(
        limiter.len(),
        3,
        "clients remembered after e at 150 ms: c, d and e (a and b have full buckets)"
    );
    for (client, reset_after) in [("c", 110), ("d", 110)] {
        assert_eq!(
            limiter.check(client, Millis(150)),
            Decision::Allowed {
                remaining: 1,
                reset_after: Millis(reset_after),
            },
            "{client} is still remembered: its first request (bucket full at 160 ms) and this one leave 1 of 3"
        );
    }
}

// ANCHOR: poll_timeout_test
#[test]
fn the_limiter_asks_for_the_clock_when_the_next_bucket_is_full() {
    // 3 per second (T = 333.33 ms), a burst of 1: each request fills the bucket for one T.
    let config = RateLimitConfig {
        requests: 3,
        per: Millis::from_secs(1),
        burst: 1,
        max_clients: 100,
    };
    let mut limiter = RateLimiter::new(config.clone())
        .expect("3 per second, burst 1, 100 clients is a valid configuration");
    assert_eq!(
        limiter.poll_timeout(),
        None,
        "a limiter that remembers nobody waits for nothing"
    );
    assert_allowed(&mut limiter, "alice", 0, "a new client");
    assert_allowed(&mut limiter, "bob", 100, "a new client");
    assert_eq!(
        limiter.poll_timeout(),
        Some(Millis(334)),
        "the earliest full bucket is alice's, at 333.33 ms, rounded up: at 333 ms it is not full yet"
    );
    // Early is harmless: nobody is forgotten, and the limiter says nothing.
    Machine::handle_timeout(&mut limiter, Millis(333));
    assert_eq!(
        (limiter.len(), limiter.poll_output()),
        (2, None),
        "(clients remembered, output) after a timeout at 333 ms, before any bucket is full"
    );

    // The same, driven as a Machine over a script: the driver wakes it exactly when asked.
    let mut limiter = RateLimiter::new(config).expect("the same configuration");
    let check = |client: &str| LimiterInput::Check {
        client: client.to_owned(),
    };
    let timeline = run(
        &mut limiter,
        [
            Step::Input(Millis(0), check("alice")),
            Step::Input(Millis(100), check("bob")),
            Step::AdvanceTo(Millis(10_000)),
        ],
    );
    let full_for = |client: &str| LimiterOutput::Decided {
        client: client.to_owned(),
        decision: Decision::Allowed {
            remaining: 0,
            reset_after: Millis(334),
        },
    };
    assert_eq!(
        timeline.outputs,
        [
            (Millis(0), full_for("alice")),
            (Millis(100), full_for("bob")),
            (Millis(334), LimiterOutput::Forgotten { clients: 1 }),
            (Millis(434), LimiterOutput::Forgotten { clients: 1 }),
        ],
        "(time, output): each client is forgotten when poll_timeout names its full bucket"
    );
    assert_eq!(
        (limiter.len(), limiter.poll_timeout()),
        (0, None),
        "(clients remembered, poll_timeout) once every bucket is full"
    );
}
// ANCHOR_END: poll_timeout_test
