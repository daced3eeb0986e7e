//! The vocabulary of routing: what a route is and every way a request path can be refused.
//!
//! These types are shared by the reference matcher (`router.rs`) and the learner's copy
//! (`labs/gateway/exercise/router.rs`), so both have exactly the same API and the graded
//! tests compile against either.

use serde::{Deserialize, Serialize};
use thiserror::Error;

// ANCHOR: route
/// One routing rule: requests under `prefix` (and for `host`, when set) go to `upstream`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// A path prefix matched on whole segments: `/api/users` matches `/api/users` and
    /// `/api/users/42`, never `/api/usersettings`.
    pub prefix: String,
    /// Only requests whose `Host` is this name (case-insensitive, port ignored).
    #[serde(default)]
    pub host: Option<String>,
    /// The name of the upstream pool that serves this route.
    pub upstream: String,
}
// ANCHOR_END: route

impl Route {
    /// A route for any host.
    pub fn new(prefix: impl Into<String>, upstream: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            host: None,
            upstream: upstream.into(),
        }
    }

    /// The same route, restricted to one host.
    pub fn for_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }
}

// ANCHOR: path_error
/// Why a request path was refused before any route was looked at.
///
/// Each variant is an attack or an accident that must not reach an upstream: the upstream
/// may decode and resolve the path differently from the gateway, and then a request the
/// gateway routed to `users` is served as `payments`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PathError {
    /// The path is not in origin form (it must start with `/`).
    #[error("the path must start with '/'")]
    NotAbsolute,
    /// Longer than the gateway accepts.
    #[error("the path is {len} bytes long; at most {max} are accepted")]
    TooLong {
        /// The length of the refused path.
        len: usize,
        /// The longest path accepted, in bytes.
        max: usize,
    },
    /// A `%` not followed by two hex digits.
    #[error("malformed percent-encoding at byte {at}")]
    BadEscape {
        /// Where the `%` was.
        at: usize,
    },
    /// A percent-encoded byte that changes the path's structure once decoded: `%2F` (`/`),
    /// `%5C` (`\`), `%25` (`%`, double encoding) or a control character such as `%00`.
    #[error("the percent-encoded byte 0x{byte:02X} is not allowed in a path")]
    ForbiddenEscape {
        /// The decoded byte.
        byte: u8,
    },
    /// A raw byte that has no business in a path: a control character (CR, LF, NUL…),
    /// a space, a backslash or a non-ASCII byte.
    #[error("the byte 0x{byte:02X} is not allowed in a path")]
    ForbiddenByte {
        /// The offending byte.
        byte: u8,
    },
    /// A `..` segment (also spelled `%2e%2e` or `..;`): the path tries to climb out of its
    /// route.
    #[error("the path contains a '..' segment")]
    Traversal,
}
// ANCHOR_END: path_error

// ANCHOR: route_error
/// Why a route table could not be built or a request could not be routed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RouteError {
    /// The request path was refused.
    #[error(transparent)]
    Path(#[from] PathError),
    /// No route's prefix (and host) matches the path.
    #[error("no route for {path}")]
    NoRoute {
        /// The normalized path that matched nothing.
        path: String,
    },
    /// A route's prefix is not a normalized absolute path.
    #[error("route prefix {prefix:?} is not a normalized path (expected {expected:?})")]
    InvalidPrefix {
        /// The prefix as configured.
        prefix: String,
        /// What it normalizes to, or an empty string if it cannot be normalized.
        expected: String,
    },
    /// Two routes have the same prefix and host, so one could never be chosen.
    #[error("two routes share prefix {prefix:?} and host {host:?}")]
    Duplicate {
        /// The shared prefix.
        prefix: String,
        /// The shared host (none: any host).
        host: Option<String>,
    },
}
// ANCHOR_END: route_error
