//! Property tests of the gateway core: invariants that must hold for any input, not just
//! the ones we thought of. (The graded tests hold the model-based limiter property.)

#![allow(clippy::unwrap_used)]

use std::net::IpAddr;

use gateway_core::headers::{Cidr, client_ip, forwarded_for_upstream};
use gateway_core::{Millis, RateLimitConfig, RateLimiter, Route, RouteTable, normalize_path};
use proptest::prelude::*;

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
            Just("users"),
            Just("%41"),
            Just("%3f"),
            Just("\\"),
            Just("\r\n"),
            Just("%"),
            Just("%c3%a9"),
            Just("~"),
        ],
        0..24,
    )
    .prop_map(|parts| format!("/{}", parts.concat()))
}

/// Paths built only from pieces that hide nothing: every one of them must be accepted. This is
/// what keeps the property below from holding for a `normalize_path` that refuses everything.
fn harmless_path() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("/"),
            Just("a"),
            Just("users"),
            Just("%41"),
            Just("~"),
            Just("-"),
        ],
        0..24,
    )
    .prop_map(|parts| format!("/{}", parts.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn harmless_paths_are_accepted(path in harmless_path()) {
        let normalized = normalize_path(&path);
        prop_assert!(normalized.is_ok(), "{:?} hides nothing, yet was refused: {:?}", path, normalized);
    }

    #[test]
    fn normalizing_is_idempotent_and_leaves_nothing_ambiguous(path in hostile_path()) {
        if let Ok(normalized) = normalize_path(&path) {
            let again = normalize_path(&normalized);
            prop_assert_eq!(again.as_deref(), Ok(normalized.as_str()));
            prop_assert!(normalized.starts_with('/'));
            prop_assert!(!normalized.contains("//"));
            prop_assert!(!normalized.split('/').any(|segment| segment == ".." || segment == "."));
            prop_assert!(!normalized.contains('\\'));
            let lower = normalized.to_ascii_lowercase();
            for forbidden in ["%2f", "%5c", "%25", "%2e", "%00"] {
                prop_assert!(!lower.contains(forbidden), "{} in {}", forbidden, normalized);
            }
        }
    }

    #[test]
    fn any_string_is_normalized_or_refused_without_panicking(path in ".{0,64}") {
        let _ = normalize_path(&path);
    }

    #[test]
    fn resolution_agrees_with_a_naive_longest_prefix_scan(
        prefixes in proptest::collection::btree_set("(/[a-c]{1,2}){1,3}", 1..6),
        path in "(/[a-c]{1,2}){0,4}",
    ) {
        let routes: Vec<Route> = prefixes.iter().map(|p| Route::new(p.clone(), p.clone())).collect();
        let table = RouteTable::new(routes).unwrap();
        let path = if path.is_empty() { "/".to_owned() } else { path };
        let naive = prefixes
            .iter()
            .filter(|prefix| path == **prefix || path.starts_with(&format!("{prefix}/")))
            .max_by_key(|prefix| prefix.len());
        let resolved = table.resolve(None, &path).ok().map(|found| found.route.upstream.clone());
        prop_assert_eq!(resolved.as_ref(), naive);
    }

    #[test]
    fn a_match_names_its_route_by_its_place_in_the_table(
        prefixes in proptest::collection::btree_set("(/[a-c]{1,2}){1,3}", 1..6),
        path in "(/[a-c]{1,2}){0,4}",
    ) {
        let routes: Vec<Route> = prefixes.iter().map(|p| Route::new(p.clone(), p.clone())).collect();
        let table = RouteTable::new(routes.clone()).unwrap();
        let path = if path.is_empty() { "/".to_owned() } else { path };
        if let Ok(found) = table.resolve(None, &path) {
            prop_assert_eq!(&table.routes()[found.index], found.route);
            prop_assert_eq!(&routes[found.index].upstream, &found.route.upstream);
        }
    }

    #[test]
    fn the_limiter_never_remembers_more_than_max_clients(
        max_clients in 1usize..50,
        steps in proptest::collection::vec((0u64..50, 0u32..200), 1..400),
    ) {
        let mut limiter = RateLimiter::new(RateLimitConfig {
            requests: 5, per: Millis::from_secs(1), burst: 2, max_clients,
        }).unwrap();
        let mut now = 0;
        for (wait, client) in steps {
            now += wait;
            limiter.check(&client.to_string(), Millis(now));
            prop_assert!(limiter.len() <= max_clients);
        }
    }

    #[test]
    fn an_untrusted_peer_is_always_the_client(
        peer in any::<[u8; 4]>(),
        forwarded in ".{0,40}",
    ) {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let peer = IpAddr::from(peer);
        let client = client_ip(peer, [forwarded.as_str()], &trusted);
        if !trusted[0].contains(peer) {
            prop_assert_eq!(client, peer);
            prop_assert_eq!(forwarded_for_upstream(peer, [forwarded.as_str()], &trusted), peer.to_string());
        }
    }
}

/// Connection bytes built from the pieces of HTTP/1.1 framing, so that heads, lengths, chunks
/// and stray line breaks meet in every order.
fn connection_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            Just(&b"GET / HTTP/1.1\r\n"[..]),
            Just(&b"POST /a HTTP/1.1\r\n"[..]),
            Just(&b"Host: a\r\n"[..]),
            Just(&b"Content-Length: 3\r\n"[..]),
            Just(&b"Transfer-Encoding: chunked\r\n"[..]),
            Just(&b"\r\n"[..]),
            Just(&b"\n"[..]),
            Just(&b"\r"[..]),
            Just(&b"3\r\nabc\r\n"[..]),
            Just(&b"0\r\n\r\n"[..]),
            Just(&b"x"[..]),
            Just(&b"X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"[..]),
        ],
        0..40,
    )
    .prop_map(|pieces| pieces.concat())
}

/// What a scanner passes on and refuses when the bytes arrive in pieces of `piece` bytes.
fn framed(bytes: &[u8], piece: usize) -> (Vec<u8>, Option<gateway_core::framing::HeadRefusal>) {
    use gateway_core::framing::{Framing, HeadLimits, Scanned};
    let mut framing = Framing::new(HeadLimits {
        max_line_bytes: 32,
        max_head_bytes: 128,
        max_fields: 3,
    });
    let (mut pending, mut passed) = (Vec::new(), Vec::new());
    for part in bytes.chunks(piece.max(1)) {
        pending.extend_from_slice(part);
        loop {
            match framing.scan(&pending) {
                Scanned::Pass(0) | Scanned::Hold => break,
                Scanned::Pass(n) => passed.extend(pending.drain(..n)),
                Scanned::Refuse(refusal) => return (passed, Some(refusal)),
            }
        }
    }
    (passed, None)
}

proptest! {
    /// However the network splits a connection's bytes, the scanner passes on the same bytes
    /// and refuses the same head: a client cannot slip a head past it by timing its writes.
    #[test]
    fn request_framing_does_not_depend_on_how_the_bytes_arrive(
        bytes in connection_bytes(),
        piece in 1usize..64,
    ) {
        let whole = framed(&bytes, bytes.len());
        prop_assert_eq!(framed(&bytes, piece), whole.clone());
        // What it passes on is a prefix of the input: nothing invented, nothing reordered.
        prop_assert!(bytes.starts_with(&whole.0));
    }
}
