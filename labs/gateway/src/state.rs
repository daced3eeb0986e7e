//! What every request handler shares, built once from a [`Config`], and the admission every
//! request passes before it goes anywhere.
//!
//! [`Gateway::new`] resolves each route to its upstream and its timeout at build time, so a
//! request that matched route `i` of the table finds its [`RouteTarget`] at index `i`: no
//! lookup by name, no conversion of milliseconds, per request. [`Gateway::admit`] is the
//! per-address limit, the token and the per-subject limit, shared by proxied and aggregated
//! routes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{self, HeaderName};
use axum::http::{HeaderMap, Response, StatusCode};
use axum::response::IntoResponse;
use gateway_core::headers::{Cidr, client_ip};
use gateway_core::{Decision, Millis, RouteTable};

use crate::auth::{AuthError, Authenticator, Claims};
use crate::config::Config;
use crate::limiter::{SharedLimiter, address_group};
use crate::problem::{Problem, problem};
use crate::upstream::Upstream;

/// Where a route sends its requests and what it asks of them, resolved from the
/// configuration once.
#[derive(Debug)]
pub struct RouteTarget {
    /// The upstream the route names.
    pub upstream: Arc<Upstream>,
    /// Whether a valid bearer token is required.
    pub auth: bool,
    /// A scope the token must carry.
    pub required_scope: Option<String>,
    /// How long each attempt may wait for the response headers: the route's own timeout,
    /// else its upstream's.
    pub timeout: Duration,
}

/// Everything the handlers share, built once from a [`Config`].
#[derive(Debug)]
pub struct Gateway {
    /// The configuration it was built from.
    pub config: Config,
    pub(crate) table: RouteTable,
    /// The route table's targets, in the table's order: route `i` of a match is `targets[i]`.
    targets: Vec<RouteTarget>,
    /// Upstreams by name.
    pub upstreams: HashMap<String, Arc<Upstream>>,
    auth: Option<Authenticator>,
    /// The rate limiter, when configured.
    pub limiter: Option<SharedLimiter>,
    /// The per-address limiter checked before authentication, when configured.
    pub address_limiter: Option<SharedLimiter>,
    subject_header: HeaderName,
    /// How long a client may take to send its body.
    pub(crate) body_timeout: Duration,
    /// How long one exchange, retries included, may last.
    pub(crate) retry_deadline: Millis,
    /// The span per proxied request, when `[tracing]` is on (`Gateway::start_tracing`).
    pub(crate) tracing: Option<crate::trace::Tracing>,
}

impl Gateway {
    /// Builds the gateway: routing table, upstreams with breakers, keys, limiter.
    pub fn new(config: Config) -> anyhow::Result<Self> {
        config.check()?;
        let table = RouteTable::new(
            config
                .routes
                .iter()
                .map(|route| gateway_core::Route {
                    prefix: route.prefix.clone(),
                    host: route.host.clone(),
                    upstream: route.upstream.clone(),
                })
                .collect(),
        )?;
        let upstreams: HashMap<String, Arc<Upstream>> = config
            .upstreams
            .iter()
            .map(|(name, upstream)| {
                Upstream::new(name, upstream, &config.breaker, &config.retry)
                    .map(|built| (name.clone(), Arc::new(built)))
                    .map_err(|reason| anyhow::anyhow!("upstream {name}: {reason}"))
            })
            .collect::<anyhow::Result<_>>()?;
        // The table keeps the configuration's order, so target `i` is route `i`.
        let targets = config
            .routes
            .iter()
            .map(|route| {
                let upstream = upstreams.get(&route.upstream).cloned().ok_or_else(|| {
                    anyhow::anyhow!(
                        "route {} names no upstream {}",
                        route.prefix,
                        route.upstream
                    )
                })?;
                Ok(RouteTarget {
                    timeout: route
                        .timeout_ms
                        .map_or(upstream.timeout, Duration::from_millis),
                    upstream,
                    auth: route.auth,
                    required_scope: route.required_scope.clone(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let auth = config.auth.clone().map(Authenticator::new).transpose()?;
        let subject_header = HeaderName::try_from(
            config
                .auth
                .as_ref()
                .map_or("x-authenticated-subject", |auth| {
                    auth.subject_header.as_str()
                }),
        )?;
        let limiter = config
            .rate_limit
            .as_ref()
            .map(SharedLimiter::new)
            .transpose()?;
        let address_limiter = config
            .address_rate_limit
            .as_ref()
            .map(SharedLimiter::new)
            .transpose()?;
        Ok(Self {
            table,
            targets,
            upstreams,
            auth,
            limiter,
            address_limiter,
            subject_header,
            body_timeout: Duration::from_millis(config.client_body_timeout_ms),
            retry_deadline: Millis(config.retry.deadline_ms),
            tracing: None,
            config,
        })
    }

    /// The authenticator, when `[auth]` is configured.
    pub fn authenticator(&self) -> Option<&Authenticator> {
        self.auth.as_ref()
    }

    /// The header that carries the verified subject upstream.
    pub(crate) fn subject_header(&self) -> &HeaderName {
        &self.subject_header
    }

    /// The proxies whose `X-Forwarded-For` entries are believed.
    pub(crate) fn trusted(&self) -> &[Cidr] {
        &self.config.trusted_proxies
    }

    /// The target of the table's route number `index` (a [`gateway_core::RouteMatch`]'s).
    pub(crate) fn target(&self, index: usize) -> Option<&RouteTarget> {
        self.targets.get(index)
    }

    // ANCHOR: admit
    /// Authentication and rate limiting, shared by proxied and aggregated routes.
    ///
    /// First a coarse limit per client address, so that requests with bad tokens are
    /// limited too (verifying an RS256 signature costs far more than refusing a request).
    /// Then the token; then the finer limit, keyed by the token's subject when there is one
    /// (a user behind a shared NAT is not limited with strangers) and by the client IP
    /// otherwise — the IP from `X-Forwarded-For` only when the connection comes from a
    /// trusted proxy.
    pub async fn admit(
        &self,
        headers: &HeaderMap,
        peer: SocketAddr,
        needs_token: bool,
        required_scope: Option<&str>,
    ) -> Result<Admitted, Response<Body>> {
        let client = || {
            let forwarded = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|value| value.to_str().ok());
            client_ip(peer.ip(), forwarded, self.trusted())
        };
        if let Some(limiter) = &self.address_limiter {
            let ip = client();
            let decision = limiter.check_address(ip);
            if let Decision::Limited { retry_after, .. } = decision {
                let mut response = problem(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "the address {} is over its rate limit; retry in {retry_after}",
                        address_group(ip)
                    ),
                )
                .into_response();
                limiter.write_headers(&decision, response.headers_mut());
                return Err(response);
            }
        }
        let claims = match (&self.auth, needs_token) {
            (Some(auth), true) => {
                let authorization = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|value| value.to_str().ok());
                let claims = auth
                    .authenticate(authorization)
                    .await
                    .map_err(unauthorized)?;
                if let Some(scope) = required_scope
                    && !claims.has_scope(scope)
                {
                    return Err(problem(
                        StatusCode::FORBIDDEN,
                        format!(
                            "the token of {:?} lacks the scope {scope:?} this route requires",
                            claims.sub
                        ),
                    )
                    .into_response());
                }
                Some(claims)
            }
            _ => None,
        };
        let decision = self.limiter.as_ref().map(|limiter| {
            let key = match &claims {
                Some(claims) => format!("sub:{}", claims.sub),
                None => format!("ip:{}", client()),
            };
            (limiter.check(&key), key)
        });
        if let (Some(limiter), Some((decision @ Decision::Limited { retry_after, .. }, key))) =
            (&self.limiter, &decision)
        {
            let mut response = problem(
                StatusCode::TOO_MANY_REQUESTS,
                format!("{key} is over its rate limit; retry in {retry_after}"),
            )
            .into_response();
            limiter.write_headers(decision, response.headers_mut());
            return Err(response);
        }
        Ok(Admitted {
            claims,
            decision: decision.map(|(decision, _)| decision),
        })
    }
    // ANCHOR_END: admit

    /// Adds the rate-limit headers of an admitted request to its response.
    pub fn finish(&self, admitted: &Admitted, response: &mut Response<Body>) {
        if let (Some(limiter), Some(decision)) = (&self.limiter, &admitted.decision) {
            limiter.write_headers(decision, response.headers_mut());
        }
    }
}

/// What `admit` learned about a request it let through.
#[derive(Debug)]
pub struct Admitted {
    /// The verified token's claims, if the route needed one.
    pub claims: Option<Claims>,
    /// The rate limiter's decision, if limiting is on.
    pub decision: Option<Decision>,
}

fn unauthorized(error: AuthError) -> Response<Body> {
    Problem::from(error).into_response()
}

impl Gateway {
    /// Starts tracing when the configuration has a `[tracing]` section; without one, returns
    /// the gateway as it is.
    pub async fn start_tracing(mut self) -> anyhow::Result<Gateway> {
        if let Some(config) = &self.config.tracing {
            let prefixes = self.config.routes.iter().map(|route| route.prefix.clone());
            self.tracing = Some(crate::trace::Tracing::start(config, prefixes).await?);
        }
        Ok(self)
    }

    /// The gateway's telemetry, when tracing is on.
    pub fn telemetry(&self) -> Option<&Arc<lab_telemetry::Telemetry>> {
        self.tracing.as_ref().map(crate::trace::Tracing::telemetry)
    }
}
