//! The route matcher: normalize the request path, then pick the most specific route.
//!
//! This is one of the lab's two graded parts (the learner's copy is
//! `labs/gateway/exercise/router.rs`). It is the gateway's first line of defence: every
//! later decision (which upstream, whether a token is needed, which rate limit applies)
//! trusts the route chosen here. So the path is normalized *once*, strictly, and the
//! normalized form is both what is matched and what is forwarded. A gateway that matches
//! one spelling and forwards another lets `/api/users/..%2fpayments` reach payments
//! through the users route.

use crate::route::{PathError, Route, RouteError};

/// The longest path the gateway accepts (nginx's default large header buffer is 8 KiB for
/// the whole request line; 2 KiB of path is plenty for an API).
pub const MAX_PATH_LEN: usize = 2048;

// ANCHOR: normalize
/// Normalizes a request path, refusing anything ambiguous.
///
/// - decodes percent-escapes of unreserved characters (`%41` → `A`, `%2e` → `.`), keeps
///   other escapes in upper case (`%3f` → `%3F`), refuses escapes that change the structure
///   (`%2F`, `%5C`, `%25`, control bytes) and malformed ones;
/// - refuses raw control bytes, spaces, backslashes and non-ASCII bytes;
/// - collapses repeated slashes, drops `.` segments, refuses `..` segments (also `..;x`,
///   the Tomcat spelling);
/// - keeps a trailing slash, since upstreams may tell `/a/` from `/a`.
pub fn normalize_path(raw: &str) -> Result<String, PathError> {
    if raw.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong {
            len: raw.len(),
            max: MAX_PATH_LEN,
        });
    }
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }

    // Pass 1: decode exactly once. Decoding twice (or letting the upstream decode what we
    // did not) is how double-encoding attacks work, so `%25` is refused outright.
    let mut decoded = String::with_capacity(raw.len());
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        match byte {
            b'%' => {
                let high = bytes.get(at + 1).copied().and_then(hex_value);
                let low = bytes.get(at + 2).copied().and_then(hex_value);
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(PathError::BadEscape { at });
                };
                let value = high * 16 + low;
                if is_unreserved(value) {
                    decoded.push(char::from(value));
                } else if matches!(value, b'/' | b'\\' | b'%') || value < 0x20 || value == 0x7f {
                    return Err(PathError::ForbiddenEscape { byte: value });
                } else {
                    // Reserved or non-ASCII: keep it encoded, in one canonical spelling.
                    decoded.push('%');
                    decoded.push(char::from(HEX_UPPER[usize::from(high)]));
                    decoded.push(char::from(HEX_UPPER[usize::from(low)]));
                }
                at += 3;
            }
            b'\\' | 0..=0x20 | 0x7f.. => return Err(PathError::ForbiddenByte { byte }),
            _ => {
                decoded.push(char::from(byte));
                at += 1;
            }
        }
    }

    // Pass 2: segments. Empty segments (`//`) and `.` disappear; `..` is refused rather than
    // resolved, because a client that sends it is either confused or probing.
    let mut normalized = String::with_capacity(decoded.len());
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        if segment == "." {
            continue;
        }
        // `..;jsessionid=x` is `..` to a Java servlet container behind us.
        let name = segment.split(';').next().unwrap_or(segment);
        if name == ".." || name == "." {
            return Err(PathError::Traversal);
        }
        normalized.push('/');
        normalized.push_str(segment);
    }
    if normalized.is_empty() || (decoded.ends_with('/') && decoded.len() > 1) {
        normalized.push('/');
    }
    Ok(normalized)
}
// ANCHOR_END: normalize

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

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

/// Lower-cases a `Host` header value and strips its port and a trailing dot, so
/// `API.Example.com.:3000` and `api.example.com` are the same host.
pub fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let without_port = if let Some(rest) = host.strip_prefix('[') {
        // An IPv6 literal: `[::1]:3000`.
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(name, _port)| name)
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
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

// ANCHOR: table
/// The routing table: routes checked for conflicts once, at startup.
#[derive(Clone, Debug)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Builds a table, refusing prefixes that are not normalized and duplicate rules.
    ///
    /// A trailing slash on a prefix is dropped (`/api/users/` means `/api/users`); hosts
    /// are stored normalized.
    pub fn new(routes: Vec<Route>) -> Result<Self, RouteError> {
        let mut table: Vec<Route> = Vec::with_capacity(routes.len());
        for mut route in routes {
            let as_given = without_trailing_slash(&route.prefix).to_owned();
            let expected = normalize_path(&route.prefix)
                .map(|path| without_trailing_slash(&path).to_owned())
                .unwrap_or_default();
            if expected != as_given {
                return Err(RouteError::InvalidPrefix {
                    prefix: route.prefix,
                    expected,
                });
            }
            route.prefix = expected;
            route.host = route.host.as_deref().map(normalize_host);
            if table
                .iter()
                .any(|other| other.prefix == route.prefix && other.host == route.host)
            {
                return Err(RouteError::Duplicate {
                    prefix: route.prefix,
                    host: route.host,
                });
            }
            table.push(route);
        }
        Ok(Self { routes: table })
    }

    /// The routes, as stored (normalized).
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    // ANCHOR: resolve
    /// Finds the route for a request.
    ///
    /// A route for the request's host beats a route for any host (a virtual host is chosen
    /// before its paths, as in nginx and Envoy); among those, the longest prefix wins.
    pub fn resolve(
        &self,
        host: Option<&str>,
        raw_path: &str,
    ) -> Result<RouteMatch<'_>, RouteError> {
        let path = normalize_path(raw_path)?;
        let host = host.map(normalize_host);
        let best = self
            .routes
            .iter()
            .enumerate()
            .filter(|(_, route)| match &route.host {
                Some(wanted) => host.as_deref() == Some(wanted.as_str()),
                None => true,
            })
            .filter(|(_, route)| prefix_matches(&route.prefix, &path))
            .max_by_key(|(_, route)| (route.host.is_some(), route.prefix.len()));
        match best {
            Some((index, route)) => Ok(RouteMatch { route, index, path }),
            None => Err(RouteError::NoRoute { path }),
        }
    }
    // ANCHOR_END: resolve
}

/// `/api/users/` → `/api/users`; `/` stays `/`.
fn without_trailing_slash(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() { "/" } else { trimmed }
}

/// Whole-segment prefix match: `/api/users` covers `/api/users` and `/api/users/…`.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}
// ANCHOR_END: table

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_the_usual_spellings() {
        assert_eq!(normalize_path("/").as_deref(), Ok("/"));
        assert_eq!(normalize_path("//api///users").as_deref(), Ok("/api/users"));
        assert_eq!(
            normalize_path("/api/./users/").as_deref(),
            Ok("/api/users/")
        );
        assert_eq!(normalize_path("/api/%75sers").as_deref(), Ok("/api/users"));
        assert_eq!(normalize_path("/a%3fb").as_deref(), Ok("/a%3Fb"));
        assert_eq!(normalize_path("/caf%c3%a9").as_deref(), Ok("/caf%C3%A9"));
    }

    #[test]
    fn refuses_the_tricks() {
        assert_eq!(
            normalize_path("/api/users/../payments"),
            Err(PathError::Traversal)
        );
        assert_eq!(
            normalize_path("/api/users/%2e%2e/payments"),
            Err(PathError::Traversal)
        );
        assert_eq!(
            normalize_path("/api/users/..;/payments"),
            Err(PathError::Traversal)
        );
        assert_eq!(
            normalize_path("/api/users/..%2fpayments"),
            Err(PathError::ForbiddenEscape { byte: b'/' })
        );
        assert_eq!(
            normalize_path("/api/%252e%252e/x"),
            Err(PathError::ForbiddenEscape { byte: b'%' })
        );
        assert_eq!(
            normalize_path("/a%00"),
            Err(PathError::ForbiddenEscape { byte: 0 })
        );
        assert_eq!(normalize_path("/a%zz"), Err(PathError::BadEscape { at: 2 }));
        assert_eq!(normalize_path("/a%4"), Err(PathError::BadEscape { at: 2 }));
        assert_eq!(
            normalize_path("/a\\..\\b"),
            Err(PathError::ForbiddenByte { byte: b'\\' })
        );
        assert_eq!(
            normalize_path("/a\r\nb"),
            Err(PathError::ForbiddenByte { byte: b'\r' })
        );
        assert_eq!(normalize_path("api"), Err(PathError::NotAbsolute));
        assert!(matches!(
            normalize_path(&"/a".repeat(2000)),
            Err(PathError::TooLong { .. })
        ));
    }

    #[test]
    fn hosts_compare_without_case_port_or_trailing_dot() {
        assert_eq!(normalize_host("API.Example.com.:3000"), "api.example.com");
        assert_eq!(normalize_host("[::1]:3000"), "::1");
        assert_eq!(normalize_host("localhost"), "localhost");
    }

    #[test]
    fn longest_prefix_then_host_wins() {
        let table = RouteTable::new(vec![
            Route::new("/", "default"),
            Route::new("/api", "api"),
            Route::new("/api/users/", "users"),
            Route::new("/api", "admin-api").for_host("Admin.Example.com"),
        ])
        .expect("valid table");
        let upstream = |host, path| {
            table
                .resolve(host, path)
                .map(|m| m.route.upstream.clone())
                .expect("routed")
        };
        assert_eq!(upstream(None, "/api/users/7"), "users");
        assert_eq!(upstream(None, "/api/usersettings"), "api");
        assert_eq!(upstream(None, "/other"), "default");
        assert_eq!(
            upstream(Some("admin.example.com:443"), "/api/users/7"),
            "admin-api"
        );
    }

    #[test]
    fn refuses_bad_tables() {
        assert!(matches!(
            RouteTable::new(vec![Route::new("api", "x")]),
            Err(RouteError::InvalidPrefix { .. })
        ));
        assert!(matches!(
            RouteTable::new(vec![Route::new("/a/../b", "x")]),
            Err(RouteError::InvalidPrefix { .. })
        ));
        assert!(matches!(
            RouteTable::new(vec![Route::new("/a", "x"), Route::new("/a/", "y")]),
            Err(RouteError::Duplicate { .. })
        ));
    }
}
