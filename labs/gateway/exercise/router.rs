//! Exercise: build the gateway's route matcher.
//!
//! This is your copy of the graded module. `cargo xtask grade gateway` compiles the crate
//! `gateway-core` with this file (and `rate_limit.rs`) in place of the reference and runs
//! `labs/gateway/core/tests/graded.rs` against them. Add `--watch` to re-grade on save.
//!
//! The task, in two steps:
//! 1. `normalize_path`: turn a raw request path into one canonical spelling, or refuse it.
//!    The gateway matches the normalized path *and forwards it*, so the upstream never sees
//!    a spelling the gateway did not check.
//! 2. `RouteTable`: pick the route for a request. Prefixes match whole segments, a route
//!    for the request's host beats a route for any host, then the longest prefix wins.
//!
//! `Route`, `PathError` and `RouteError` are written for you (in `route.rs`), and so are
//! the small helpers at the bottom of this file. The public signatures must stay as they
//! are: the lab's gateway calls them.
//!
//! Replace each `todo!()`, one test at a time, in the order of the scorecard.
//! Read: book chapter patterns/api-gateway.md (section "The route matcher" under "Exercise").

// The helpers are unused until you write the bodies.
#![allow(dead_code, unused_variables, unused_imports, unused_mut)]

use crate::route::{PathError, Route, RouteError};

/// The longest path the gateway accepts.
pub const MAX_PATH_LEN: usize = 2048;

/// Normalizes a request path, refusing anything ambiguous.
pub fn normalize_path(raw: &str) -> Result<String, PathError> {
    // TODO 1: refuse paths longer than MAX_PATH_LEN, and paths that do not start with '/'.
    //
    // TODO 2: walk the bytes once, building the decoded path:
    //   - `%XY`: both X and Y must be hex digits (`hex_value`), else `BadEscape { at }`.
    //     Decode it if the byte is unreserved (`is_unreserved`): `%41` is just `A`.
    //     Refuse it if it would change the path's structure once decoded by someone else:
    //     '/', '\\', '%' (double encoding) and control bytes (< 0x20, 0x7f).
    //     Otherwise keep it encoded, with upper-case hex, so there is one spelling.
    //   - a raw '\\', control byte, space or non-ASCII byte: `ForbiddenByte`.
    //   Why decode only once? Ask what `%252e%252e` becomes after two decodings.
    //
    // TODO 3: split the decoded path on '/', skip empty segments and ".", refuse "..".
    //   A servlet container treats `..;x` as `..`: look at the part before any ';'.
    //   Keep a trailing slash; the root is "/".
    todo!("normalize the path")
}

/// A request that found its route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    /// The chosen route.
    pub route: &'a Route,
    /// Its place in the table (and in the list the table was built from), so that a caller
    /// keeping something per route finds it by index.
    pub index: usize,
    /// The normalized path: what the gateway forwards upstream.
    pub path: String,
}

/// The routing table: routes checked for conflicts once, at startup.
#[derive(Clone, Debug)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Builds a table, refusing prefixes that are not normalized and duplicate rules.
    pub fn new(routes: Vec<Route>) -> Result<Self, RouteError> {
        // TODO: a prefix is valid when normalizing it changes nothing (ignore a trailing
        // slash: `/api/users/` means `/api/users`). Store prefixes without the trailing
        // slash and hosts through `normalize_host`. Two routes with the same prefix and
        // host are a `Duplicate`: one of them could never be chosen.
        todo!("validate and store the routes")
    }

    /// The routes, as stored (normalized).
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Finds the route for a request.
    pub fn resolve(
        &self,
        host: Option<&str>,
        raw_path: &str,
    ) -> Result<RouteMatch<'_>, RouteError> {
        // TODO: normalize the path first (a refused path is `RouteError::Path`, and the `?`
        // operator converts it for you). Keep the routes whose host is absent or equal to
        // the request's normalized host and whose prefix matches on whole segments:
        // `/api/users` covers `/api/users/42` but not `/api/usersettings`.
        // Prefer a host-specific route, then the longest prefix, and say where it sits in the
        // table (`RouteMatch::index`). Nothing left: `NoRoute`.
        todo!("pick the most specific route")
    }
}

/// Lower-cases a `Host` header value and strips its port and a trailing dot.
pub fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let without_port = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(name, _port)| name)
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
}

/// The value of one hex digit, if it is one.
fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986's unreserved characters: decoding them never changes what a URI means.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}
