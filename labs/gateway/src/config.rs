//! The gateway's configuration: one TOML file, read once at startup.
//!
//! Everything a route needs is declared here, so the gateway's code holds no policy of its
//! own: which prefixes go where, which need a token, how fast a client may go, how long an
//! upstream may take. `Config::demo` builds the same shape in code for the demo and tests.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use gateway_core::headers::Cidr;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The whole gateway configuration (see `labs/gateway/gateway.toml` for an example).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the gateway listens (`--port` overrides the port).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The largest request body accepted, in bytes (413 beyond it).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    /// How long a client may take to send its whole body (408 beyond it).
    #[serde(default = "default_client_body_timeout_ms")]
    pub client_body_timeout_ms: u64,
    /// How long a client may take to send a request's headers, counted from the end of the
    /// previous exchange (so it is also how long an idle keep-alive connection is kept). The
    /// connection is closed beyond it: a slow-loris client cannot hold it open byte by byte.
    #[serde(default = "default_client_header_timeout_ms")]
    pub client_header_timeout_ms: u64,
    /// The longest line of a request head, request line or header field, in bytes (414 for
    /// a longer request line, 431 for a longer field line; nginx: 8 KiB).
    #[serde(default = "default_max_header_line_bytes")]
    pub max_header_line_bytes: usize,
    /// The largest request head, all lines together, in bytes (431 beyond it; nginx: 32 KiB).
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// How much of a request body is read before the upstream is called (nginx's
    /// `proxy_request_buffering`): a body that ends within it goes upstream whole or not at
    /// all; a longer one streams, and reaches the upstream cut off if the client stops.
    /// 0 turns buffering off: every body streams from its first byte.
    #[serde(default = "default_request_buffer_bytes")]
    pub request_buffer_bytes: u64,
    /// Proxies whose `X-Forwarded-For` entries are believed (CIDRs or addresses).
    #[serde(default)]
    pub trusted_proxies: Vec<Cidr>,
    /// The upstream pools by name.
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// The routing table, matched by host, then longest prefix.
    pub routes: Vec<RouteConfig>,
    /// Token validation; without it no route may require a token.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// Per-client rate limiting (token subject, else client address), checked after
    /// authentication; without it nothing is limited there.
    #[serde(default)]
    pub rate_limit: Option<RateLimitSection>,
    /// A coarse limit per client address (an IPv6 client by its /64), checked *before*
    /// authentication, so requests with bad tokens cannot make the gateway verify signatures
    /// without end. Set it well above `rate_limit`: many users may share one address.
    #[serde(default)]
    pub address_rate_limit: Option<RateLimitSection>,
    /// Retry policy for idempotent requests.
    #[serde(default)]
    pub retry: RetryConfig,
    /// The circuit breaker put in front of every upstream.
    #[serde(default)]
    pub breaker: BreakerSection,
    /// `/api/order-details/{id}`; absent: no aggregation endpoint.
    #[serde(default)]
    pub aggregation: Option<AggregationConfig>,
    /// Where the gateway sends a span per proxied request; absent: no spans, and trace context
    /// only passed on when valid.
    #[serde(default)]
    pub tracing: Option<TracingConfig>,
}

/// 4000, next to the demo services' 4001 to 4004 (3000 is where `cargo xtask serve` serves
/// the book).
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4000))
}
fn default_max_body_bytes() -> u64 {
    1024 * 1024
}
fn default_client_body_timeout_ms() -> u64 {
    10_000
}
fn default_client_header_timeout_ms() -> u64 {
    30_000
}
fn default_max_header_line_bytes() -> usize {
    8 * 1024
}
fn default_max_header_bytes() -> usize {
    32 * 1024
}
fn default_request_buffer_bytes() -> u64 {
    64 * 1024
}

/// The largest `max_header_bytes` allowed: hyper's own read buffer (about 400 KiB) must stay
/// the larger, or hyper would refuse first, without a problem+json body.
pub const MAX_HEADER_BYTES_LIMIT: usize = 256 * 1024;

/// One upstream: a fixed address (`url`), or a service found in a registry (`service` and
/// `registry`), never both.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `http://host:port` of the service, when it lives at one fixed address.
    #[serde(default)]
    pub url: Option<String>,
    // ANCHOR: discovered_upstream
    /// The service's name in a registry (Consul's API): the gateway watches its passing
    /// instances with blocking queries and balances across them.
    #[serde(default)]
    pub service: Option<String>,
    /// `http://host:port` of that registry (a Consul agent, or the discovery lab's registry).
    #[serde(default)]
    pub registry: Option<String>,
    /// How a registry service's instances share the calls: `round-robin` (the default) or
    /// `p2c`, the faster of two drawn at random by the latency of the calls proxied to them.
    #[serde(default)]
    pub balance: Balance,
    // ANCHOR_END: discovered_upstream
    /// How long to wait for the response headers, unless the route says otherwise.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

impl UpstreamConfig {
    /// An upstream at one fixed `url`.
    pub fn fixed(url: &str, timeout_ms: u64) -> Self {
        Self {
            url: Some(url.to_owned()),
            timeout_ms,
            ..Self::default()
        }
    }

    /// An upstream found as `service` in the registry at `registry`, balanced by `balance`.
    pub fn discovered(service: &str, registry: &str, balance: Balance, timeout_ms: u64) -> Self {
        Self {
            service: Some(service.to_owned()),
            registry: Some(registry.to_owned()),
            balance,
            timeout_ms,
            ..Self::default()
        }
    }

    /// Exactly one of `url` and `service`, and `registry` (and `balance`) only with `service`.
    fn check(&self, name: &str) -> Result<(), ConfigError> {
        let problem = match (&self.url, &self.service, &self.registry) {
            (Some(_), None, None) if self.balance == Balance::RoundRobin => return Ok(()),
            (Some(_), None, None) => "balance applies only to a registry service",
            (None, Some(_), Some(_)) => return Ok(()),
            (Some(_), Some(_), _) => "has both url and service; give exactly one",
            (None, None, _) => "has neither url nor service; give exactly one",
            (None, Some(_), None) => {
                "names a service but no registry (registry = \"http://127.0.0.1:8500\")"
            }
            (Some(_), None, Some(_)) => "has a registry but no service; a url needs no registry",
        };
        Err(ConfigError::UpstreamTarget {
            name: name.to_owned(),
            reason: problem.to_owned(),
        })
    }
}

/// How calls are spread over a registry service's passing instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Balance {
    /// Each instance in turn.
    #[default]
    #[serde(rename = "round-robin")]
    RoundRobin,
    /// Power of two choices: the faster of two random instances, by latency average.
    #[serde(rename = "p2c")]
    TwoChoices,
}

fn default_timeout_ms() -> u64 {
    5_000
}

/// One route: a prefix (and optional host) and what applies to it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The path prefix, matched on whole segments.
    pub prefix: String,
    /// Only for this `Host`.
    #[serde(default)]
    pub host: Option<String>,
    /// The upstream's name in `[upstreams]`.
    pub upstream: String,
    /// Whether a valid bearer token is required (default: yes).
    #[serde(default = "yes")]
    pub auth: bool,
    /// A scope the token must carry in its `scope` claim (403 otherwise).
    #[serde(default)]
    pub required_scope: Option<String>,
    /// Overrides the upstream's timeout for this route.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

impl RouteConfig {
    /// A route for any host from `prefix` to `upstream`, needing a token, with no scope and
    /// the upstream's own timeout: what a TOML route with only those two keys reads as.
    pub fn new(prefix: &str, upstream: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            host: None,
            upstream: upstream.to_owned(),
            auth: true,
            required_scope: None,
            timeout_ms: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// How tokens are checked.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` every token must carry.
    pub audience: String,
    /// Shared secret for HS256 tokens; absent: HS256 is refused.
    #[serde(default)]
    pub hs256_secret: Option<String>,
    /// PEM file with the RSA public key for RS256 tokens without a known `kid`.
    #[serde(default)]
    pub rs256_public_key_file: Option<PathBuf>,
    /// A JWKS file (`{"keys": [...]}`), re-read when a token names an unknown `kid`.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// The least time between two JWKS reloads, so unknown `kid`s cannot make us re-read
    /// the file (or, in production, call the identity provider) on every request.
    #[serde(default = "default_jwks_min_reload_ms")]
    pub jwks_min_reload_ms: u64,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway_secs")]
    pub leeway_secs: u64,
    /// The header that carries the authenticated subject upstream.
    #[serde(default = "default_subject_header")]
    pub subject_header: String,
}

fn default_jwks_min_reload_ms() -> u64 {
    10_000
}
fn default_leeway_secs() -> u64 {
    5
}
fn default_subject_header() -> String {
    "x-authenticated-subject".to_owned()
}

/// Rate limiting per client (token subject, else trusted client IP).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    /// Requests per `per_ms`, sustained.
    pub requests: u32,
    /// The period, in milliseconds.
    pub per_ms: u64,
    /// Requests a quiet client may send at once.
    pub burst: u32,
    /// The most clients remembered (memory bound).
    #[serde(default = "default_max_clients")]
    pub max_clients: usize,
}

fn default_max_clients() -> usize {
    100_000
}

/// When a failed call may be tried again.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts per request, the first included (1: never retry).
    pub max_attempts: u32,
    /// Retries may add at most this fraction of the request load (0.2: 20 %).
    pub budget_ratio: f64,
    /// Retries always allowed per upstream, so a quiet gateway can still retry.
    pub min_retries: u32,
    /// The whole request, all attempts included, must answer within this.
    pub deadline_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 2,
            budget_ratio: 0.2,
            min_retries: 3,
            deadline_ms: 10_000,
        }
    }
}

/// The breaker in front of each upstream (the breaker lab's semantics).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerSection {
    /// Calls judged (count-based window).
    pub window: u32,
    /// Calls needed before the breaker judges at all.
    pub minimum_calls: u32,
    /// Failure percentage that opens it.
    pub failure_rate_threshold: f32,
    /// How long it stays open, in milliseconds.
    pub wait_in_open_ms: u64,
    /// Trial calls let through in HalfOpen before it decides (one trial is a coin toss).
    #[serde(default = "default_permitted_calls_in_half_open")]
    pub permitted_calls_in_half_open: u32,
}

fn default_permitted_calls_in_half_open() -> u32 {
    3
}

impl Default for BreakerSection {
    fn default() -> Self {
        Self {
            window: 20,
            minimum_calls: 5,
            failure_rate_threshold: 50.0,
            wait_in_open_ms: 10_000,
            permitted_calls_in_half_open: default_permitted_calls_in_half_open(),
        }
    }
}

/// The aggregated `/api/order-details/{id}` endpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregationConfig {
    /// Upstream holding orders (required part).
    pub order_upstream: String,
    /// Upstream holding users (optional part).
    pub user_upstream: String,
    /// Upstream holding products (optional part).
    pub product_upstream: String,
    /// Timeout of each call.
    #[serde(default = "default_part_timeout_ms")]
    pub part_timeout_ms: u64,
    /// Whether the endpoint needs a token (default: yes).
    #[serde(default = "yes")]
    pub auth: bool,
}

fn default_part_timeout_ms() -> u64 {
    1_000
}

/// `[tracing]`: the gateway's spans, exported over OTLP/HTTP.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// The collector's base URL, `http://host:port`: spans go to `{collector}/v1/traces`.
    pub collector: String,
    /// The gateway's `service.name`.
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// How spans are encoded: `"protobuf"` (OTLP's default) or `"json"`.
    #[serde(default)]
    pub protocol: TracingProtocol,
}

/// OTLP/HTTP's two encodings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TracingProtocol {
    /// `application/x-protobuf`.
    #[default]
    Protobuf,
    /// `application/json`.
    Json,
}

fn default_service_name() -> String {
    "gateway".to_owned()
}

/// A configuration that cannot work.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The TOML does not parse or has unknown fields.
    #[error("invalid gateway configuration: {0}")]
    Toml(#[from] toml::de::Error),
    /// A route names an upstream that is not declared.
    #[error("route {prefix:?} names unknown upstream {upstream:?}")]
    UnknownUpstream {
        /// The prefix of the route that names it.
        prefix: String,
        /// The missing upstream.
        upstream: String,
    },
    /// A route needs tokens but `[auth]` is missing.
    #[error("route {0:?} requires authentication but there is no [auth] section")]
    AuthMissing(String),
    /// An upstream URL is not `http://host:port`.
    #[error("upstream {name:?} has an invalid url {url:?}: {reason}")]
    BadUpstreamUrl {
        /// The upstream's name in the configuration.
        name: String,
        /// Its URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// An upstream does not say where it is in exactly one way.
    #[error("upstream {name:?} {reason}")]
    UpstreamTarget {
        /// The upstream's name in the configuration.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Some other part refused the configuration.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Parses and checks a TOML configuration.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text)?;
        config.check()?;
        Ok(config)
    }

    /// Cross-field checks that serde cannot express.
    pub fn check(&self) -> Result<(), ConfigError> {
        for (name, upstream) in &self.upstreams {
            upstream.check(name)?;
        }
        for route in &self.routes {
            if !self.upstreams.contains_key(&route.upstream) {
                return Err(ConfigError::UnknownUpstream {
                    prefix: route.prefix.clone(),
                    upstream: route.upstream.clone(),
                });
            }
            if route.auth && self.auth.is_none() {
                return Err(ConfigError::AuthMissing(route.prefix.clone()));
            }
        }
        if self.max_header_line_bytes < 256 || self.max_header_line_bytes > self.max_header_bytes {
            return Err(ConfigError::Invalid(format!(
                "max_header_line_bytes must be at least 256 and at most max_header_bytes ({}), got {}",
                self.max_header_bytes, self.max_header_line_bytes
            )));
        }
        if self.max_header_bytes > MAX_HEADER_BYTES_LIMIT {
            return Err(ConfigError::Invalid(format!(
                "max_header_bytes must be at most {MAX_HEADER_BYTES_LIMIT}, got {}",
                self.max_header_bytes
            )));
        }
        if let Some(aggregation) = &self.aggregation {
            for upstream in [
                &aggregation.order_upstream,
                &aggregation.user_upstream,
                &aggregation.product_upstream,
            ] {
                if !self.upstreams.contains_key(upstream) {
                    return Err(ConfigError::UnknownUpstream {
                        prefix: "/api/order-details".to_owned(),
                        upstream: upstream.clone(),
                    });
                }
            }
        }
        if let Some(tracing) = &self.tracing {
            let authority = tracing
                .collector
                .strip_prefix("http://")
                .unwrap_or_default();
            if authority.is_empty() || authority.contains('/') {
                return Err(ConfigError::Invalid(format!(
                    "tracing.collector must be a base URL http://host:port (spans go to its /v1/traces), got {:?}",
                    tracing.collector
                )));
            }
            if tracing.service_name.is_empty() {
                return Err(ConfigError::Invalid(
                    "tracing.service_name must not be empty".to_owned(),
                ));
            }
        }
        Ok(())
    }

    /// The limits on request heads, for the connection's scanner.
    pub fn head_limits(&self) -> gateway_core::framing::HeadLimits {
        gateway_core::framing::HeadLimits {
            max_line_bytes: self.max_header_line_bytes,
            max_head_bytes: self.max_header_bytes,
            ..gateway_core::framing::HeadLimits::default()
        }
    }

    // ANCHOR: demo_config
    /// The guide's gateway in front of the four demo services at the given addresses.
    pub fn demo(
        users: SocketAddr,
        orders: SocketAddr,
        products: SocketAddr,
        payments: SocketAddr,
    ) -> Self {
        let upstream = |addr: SocketAddr| UpstreamConfig::fixed(&format!("http://{addr}"), 2_000);
        let route = RouteConfig::new;
        Config {
            listen: default_listen(),
            max_body_bytes: default_max_body_bytes(),
            client_body_timeout_ms: default_client_body_timeout_ms(),
            client_header_timeout_ms: default_client_header_timeout_ms(),
            max_header_line_bytes: default_max_header_line_bytes(),
            max_header_bytes: default_max_header_bytes(),
            request_buffer_bytes: default_request_buffer_bytes(),
            trusted_proxies: Vec::new(),
            upstreams: BTreeMap::from([
                ("user".to_owned(), upstream(users)),
                ("order".to_owned(), upstream(orders)),
                ("product".to_owned(), upstream(products)),
                ("payment".to_owned(), upstream(payments)),
            ]),
            routes: vec![
                route("/api/users", "user"),
                route("/api/orders", "order"),
                route("/api/products", "product"),
                RouteConfig {
                    required_scope: Some("payments".to_owned()),
                    ..route("/api/payments", "payment")
                },
            ],
            auth: Some(AuthConfig {
                issuer: "microservices-in-motion".to_owned(),
                audience: "demo-gateway".to_owned(),
                hs256_secret: Some(DEMO_SECRET.to_owned()),
                rs256_public_key_file: None,
                jwks_file: None,
                jwks_min_reload_ms: default_jwks_min_reload_ms(),
                leeway_secs: default_leeway_secs(),
                subject_header: default_subject_header(),
            }),
            rate_limit: Some(RateLimitSection {
                requests: 20,
                per_ms: 1_000,
                burst: 10,
                max_clients: default_max_clients(),
            }),
            // Five times the per-subject rate: a few users behind one NAT still fit.
            address_rate_limit: Some(RateLimitSection {
                requests: 100,
                per_ms: 1_000,
                burst: 50,
                max_clients: default_max_clients(),
            }),
            retry: RetryConfig::default(),
            breaker: BreakerSection {
                window: 4,
                minimum_calls: 2,
                ..BreakerSection::default()
            },
            aggregation: Some(AggregationConfig {
                order_upstream: "order".to_owned(),
                user_upstream: "user".to_owned(),
                product_upstream: "product".to_owned(),
                part_timeout_ms: default_part_timeout_ms(),
                auth: true,
            }),
            tracing: None,
        }
    }
    // ANCHOR_END: demo_config
}

/// The demo's HS256 secret. Public by design: it signs demo tokens only.
pub const DEMO_SECRET: &str = "demo-secret-for-the-lab-only-change-me";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_made_in_code_reads_like_a_toml_route_with_only_prefix_and_upstream() {
        let from_toml: RouteConfig =
            toml::from_str("prefix = \"/api/users\"\nupstream = \"user\"").expect("route");
        assert_eq!(
            format!("{:?}", RouteConfig::new("/api/users", "user")),
            format!("{from_toml:?}")
        );
    }
}
