//! The API gateway's decisions, retold from the guide's Express sample.
//!
//! A gateway does four things before a request reaches a service: it finds the upstream for the
//! path (the route table), checks who is calling (authentication), checks how often they call
//! (rate limiting) and, for some endpoints, calls several services and merges the answers
//! (aggregation). Each is a small piece of logic here; a real gateway wraps them around a proxy
//! (an axum `Router` with `tower` layers, or Envoy/Pingora filters). Time is passed in as
//! milliseconds so the rate limiter can be tested without sleeping.

use std::collections::HashMap;
use std::future::Future;

use serde::Serialize;

// ANCHOR: route-table
/// One row of the route table: requests under `prefix` are forwarded to `upstream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Path prefix the route owns, such as `/api/users`.
    pub prefix: String,
    /// Base URL of the service behind it, such as `http://user-service:3001`.
    pub upstream: String,
}

/// The gateway's routing table (`app.use('/api/users', proxy(...))` in the guide).
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// An empty table: every path is a 404 until a route claims it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route; the builder style keeps the table readable where it is declared.
    pub fn route(mut self, prefix: &str, upstream: &str) -> Self {
        self.routes.push(Route {
            prefix: prefix.trim_end_matches('/').to_owned(),
            upstream: upstream.trim_end_matches('/').to_owned(),
        });
        self
    }

    /// The URL to forward `path` to, or `None` when no service owns it.
    ///
    /// The longest matching prefix wins, so a more specific route can be added later without
    /// reordering the table, and a prefix only matches whole path segments: `/api/users` owns
    /// `/api/users/42` but not `/api/usersettings`.
    pub fn resolve(&self, path: &str) -> Option<String> {
        self.routes
            .iter()
            .filter(|route| {
                path.strip_prefix(&route.prefix)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
            .max_by_key(|route| route.prefix.len())
            .map(|route| format!("{}{}", route.upstream, path))
    }
}

/// The table from the guide's diagram: one prefix per service.
pub fn guide_routes() -> RouteTable {
    RouteTable::new()
        .route("/api/users", "http://user-service:3001")
        .route("/api/orders", "http://order-service:3002")
        .route("/api/products", "http://product-service:3003")
        .route("/api/payments", "http://payment-service:3004")
}
// ANCHOR_END: route-table

// ANCHOR: authenticate
/// Who the gateway decided the caller is; forwarded to services so they need not re-check tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The authenticated user's id.
    pub user_id: String,
}

/// Why a request was turned away with `401 Unauthorized`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header at all.
    #[error("missing Authorization header")]
    MissingHeader,
    /// A header that is not of the form `Bearer <token>`.
    #[error("Authorization header must be `Bearer <token>`")]
    NotBearer,
    /// A well-formed token that the validator does not accept.
    #[error("unknown or expired token")]
    InvalidToken,
}

/// Checks a bearer token: a JWT verifier, an OAuth 2.0 introspection call or, in tests, a map.
pub trait TokenValidator {
    /// The principal the token stands for, if it is valid.
    fn validate(&self, token: &str) -> Option<Principal>;
}

/// The gateway's authentication step (the guide's first `app.use` middleware).
///
/// It runs once, at the edge, so the services behind the gateway receive a verified identity
/// instead of each re-implementing token checks.
pub fn authenticate(
    authorization: Option<&str>,
    validator: &impl TokenValidator,
) -> Result<Principal, AuthError> {
    let header = authorization.ok_or(AuthError::MissingHeader)?;
    let token = header
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or(AuthError::NotBearer)?;
    validator.validate(token).ok_or(AuthError::InvalidToken)
}
// ANCHOR_END: authenticate

// ANCHOR: rate-limit
/// What the rate limiter says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Let it through; `remaining` requests are left in this window (the `RateLimit-Remaining` header).
    Allowed {
        /// Requests still allowed in the current window.
        remaining: u32,
    },
    /// Answer `429 Too Many Requests`; the window resets in `retry_after_ms` (the `Retry-After` header).
    Limited {
        /// Milliseconds until the caller may try again.
        retry_after_ms: u64,
    },
}

/// A fixed-window limiter: at most `max` requests per client per `window_ms`
/// (`rateLimiter({ max: 100, windowMs: 60000 })` in the guide).
#[derive(Debug, Clone)]
pub struct FixedWindowLimiter {
    max: u32,
    window_ms: u64,
    // client key -> (window start, requests counted in it)
    windows: HashMap<String, (u64, u32)>,
}

impl FixedWindowLimiter {
    /// A limiter allowing `max` requests per `window_ms` milliseconds for each client.
    pub fn new(max: u32, window_ms: u64) -> Self {
        Self {
            max,
            window_ms,
            windows: HashMap::new(),
        }
    }

    /// Counts one request from `client` at time `now_ms` and decides.
    ///
    /// Fixed windows are the simplest limiter and the guide's choice; their known weakness is a
    /// burst of up to `2 * max` across a window boundary, which sliding windows or token buckets
    /// smooth out.
    pub fn check(&mut self, client: &str, now_ms: u64) -> RateDecision {
        let window_ms = self.window_ms.max(1);
        let window_start = now_ms - now_ms % window_ms;
        let (start, count) = self
            .windows
            .entry(client.to_owned())
            .or_insert((window_start, 0));
        if *start != window_start {
            // A new window: the old count no longer matters.
            *start = window_start;
            *count = 0;
        }
        if *count >= self.max {
            return RateDecision::Limited {
                retry_after_ms: window_start + window_ms - now_ms,
            };
        }
        *count += 1;
        RateDecision::Allowed {
            remaining: self.max - *count,
        }
    }
}
// ANCHOR_END: rate-limit

/// A failure of one backend call made by the gateway.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The service answered that the resource does not exist.
    #[error("{service}: {id} not found")]
    NotFound {
        /// The service that answered.
        service: &'static str,
        /// The id that was asked for.
        id: String,
    },
    /// The service could not be reached or failed.
    #[error("{service} unavailable: {reason}")]
    Unavailable {
        /// The service that failed.
        service: &'static str,
        /// What went wrong, for the problem+json `detail`.
        reason: String,
    },
}

/// An order as the order service returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Order {
    /// Order id.
    pub id: String,
    /// The customer who placed it.
    pub user_id: String,
    /// The product ordered.
    pub product_id: String,
}

/// A user as the user service returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    /// User id.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// A product as the product service returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Product {
    /// Product id.
    pub id: String,
    /// Product name.
    pub name: String,
}

// ANCHOR: aggregate
/// The three services behind `/api/order-details/:id`. In a running gateway each method is one
/// `reqwest` GET to the upstream from the route table; the trait lets the logic be tested alone.
pub trait OrderBackends {
    /// `GET http://order-service:3002/orders/{id}`
    fn order(&self, id: &str) -> impl Future<Output = Result<Order, BackendError>> + Send;
    /// `GET http://user-service:3001/users/{id}`
    fn user(&self, id: &str) -> impl Future<Output = Result<User, BackendError>> + Send;
    /// `GET http://product-service:3003/products/{id}`
    fn product(&self, id: &str) -> impl Future<Output = Result<Product, BackendError>> + Send;
}

/// The aggregated response: one client request, three backend calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderDetails {
    /// The order itself.
    pub order: Order,
    /// Who placed it.
    pub user: User,
    /// What was ordered.
    pub product: Product,
}

/// `GET /api/order-details/:id`: fetch the order, then its user and product in parallel.
///
/// The user and product ids come *from* the order, so the order call must finish first; only the
/// two calls that do not depend on each other run concurrently (`try_join!` also cancels the
/// other call as soon as one fails, so the client gets its error without waiting).
pub async fn order_details(
    backends: &impl OrderBackends,
    order_id: &str,
) -> Result<OrderDetails, BackendError> {
    let order = backends.order(order_id).await?;
    let (user, product) = tokio::try_join!(
        backends.user(&order.user_id),
        backends.product(&order.product_id)
    )?;
    Ok(OrderDetails {
        order,
        user,
        product,
    })
}
// ANCHOR_END: aggregate

// ANCHOR: dashboard
/// The services behind the dashboard endpoint of interview question 3.
pub trait DashboardBackends {
    /// The user's profile.
    fn user(&self, user_id: &str) -> impl Future<Output = Result<User, BackendError>> + Send;
    /// The user's orders.
    fn orders(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<Order>, BackendError>> + Send;
    /// Product recommendations for the user.
    fn recommendations(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<Product>, BackendError>> + Send;
}

/// The dashboard: three independent calls, so all three run at once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dashboard {
    /// The user's profile.
    pub user: User,
    /// The user's orders.
    pub orders: Vec<Order>,
    /// Recommended products.
    pub recommendations: Vec<Product>,
}

/// `GET /api/dashboard`: single client request → multiple backend calls, for the authenticated user.
pub async fn dashboard(
    backends: &impl DashboardBackends,
    caller: &Principal,
) -> Result<Dashboard, BackendError> {
    let user_id = caller.user_id.as_str();
    let (user, orders, recommendations) = tokio::try_join!(
        backends.user(user_id),
        backends.orders(user_id),
        backends.recommendations(user_id)
    )?;
    Ok(Dashboard {
        user,
        orders,
        recommendations,
    })
}
// ANCHOR_END: dashboard

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_longest_whole_segment_prefix() {
        let table = guide_routes().route("/api/orders/export", "http://export-service:3009");
        assert_eq!(
            table.resolve("/api/users/42").as_deref(),
            Some("http://user-service:3001/api/users/42")
        );
        assert_eq!(
            table.resolve("/api/orders/export/7").as_deref(),
            Some("http://export-service:3009/api/orders/export/7")
        );
        assert_eq!(
            table.resolve("/api/orders").as_deref(),
            Some("http://order-service:3002/api/orders")
        );
        assert_eq!(table.resolve("/api/usersettings"), None);
        assert_eq!(table.resolve("/health"), None);
    }

    struct Tokens;
    impl TokenValidator for Tokens {
        fn validate(&self, token: &str) -> Option<Principal> {
            (token == "good").then(|| Principal {
                user_id: "456".into(),
            })
        }
    }

    #[test]
    fn authentication_distinguishes_missing_malformed_and_invalid_tokens() {
        assert_eq!(authenticate(None, &Tokens), Err(AuthError::MissingHeader));
        assert_eq!(
            authenticate(Some("Basic abc"), &Tokens),
            Err(AuthError::NotBearer)
        );
        assert_eq!(
            authenticate(Some("Bearer "), &Tokens),
            Err(AuthError::NotBearer)
        );
        assert_eq!(
            authenticate(Some("Bearer bad"), &Tokens),
            Err(AuthError::InvalidToken)
        );
        assert_eq!(
            authenticate(Some("Bearer good"), &Tokens).map(|p| p.user_id),
            Ok("456".to_owned())
        );
    }

    #[test]
    fn limiter_allows_max_per_window_then_resets() {
        let mut limiter = FixedWindowLimiter::new(2, 60_000);
        assert_eq!(
            limiter.check("alice", 1_000),
            RateDecision::Allowed { remaining: 1 }
        );
        assert_eq!(
            limiter.check("alice", 2_000),
            RateDecision::Allowed { remaining: 0 }
        );
        assert_eq!(
            limiter.check("alice", 50_000),
            RateDecision::Limited {
                retry_after_ms: 10_000
            }
        );
        // Other clients have their own budget.
        assert_eq!(
            limiter.check("bob", 50_000),
            RateDecision::Allowed { remaining: 1 }
        );
        // The next window starts fresh.
        assert_eq!(
            limiter.check("alice", 60_000),
            RateDecision::Allowed { remaining: 1 }
        );
    }

    struct Fake {
        product_down: bool,
    }

    impl OrderBackends for Fake {
        async fn order(&self, id: &str) -> Result<Order, BackendError> {
            if id != "123" {
                return Err(BackendError::NotFound {
                    service: "order-service",
                    id: id.into(),
                });
            }
            Ok(Order {
                id: id.into(),
                user_id: "456".into(),
                product_id: "789".into(),
            })
        }
        async fn user(&self, id: &str) -> Result<User, BackendError> {
            Ok(User {
                id: id.into(),
                name: "Alice".into(),
            })
        }
        async fn product(&self, id: &str) -> Result<Product, BackendError> {
            if self.product_down {
                return Err(BackendError::Unavailable {
                    service: "product-service",
                    reason: "connection refused".into(),
                });
            }
            Ok(Product {
                id: id.into(),
                name: "Keyboard".into(),
            })
        }
    }

    impl DashboardBackends for Fake {
        async fn user(&self, user_id: &str) -> Result<User, BackendError> {
            OrderBackends::user(self, user_id).await
        }
        async fn orders(&self, user_id: &str) -> Result<Vec<Order>, BackendError> {
            Ok(vec![Order {
                id: "123".into(),
                user_id: user_id.into(),
                product_id: "789".into(),
            }])
        }
        async fn recommendations(&self, _user_id: &str) -> Result<Vec<Product>, BackendError> {
            Ok(vec![OrderBackends::product(self, "42").await?])
        }
    }

    #[tokio::test]
    async fn aggregates_order_user_and_product() {
        let details = order_details(
            &Fake {
                product_down: false,
            },
            "123",
        )
        .await
        .expect("all backends up");
        assert_eq!(details.user.name, "Alice");
        assert_eq!(details.product.id, "789");
        let json = serde_json::to_value(&details).expect("serializable");
        assert_eq!(json["order"]["user_id"], "456");
    }

    #[tokio::test]
    async fn aggregation_fails_when_one_backend_fails() {
        let error = order_details(&Fake { product_down: true }, "123")
            .await
            .expect_err("product service is down");
        assert!(matches!(
            error,
            BackendError::Unavailable {
                service: "product-service",
                ..
            }
        ));
        let missing = order_details(
            &Fake {
                product_down: false,
            },
            "999",
        )
        .await;
        assert!(matches!(missing, Err(BackendError::NotFound { .. })));
    }

    #[tokio::test]
    async fn dashboard_combines_three_calls_for_the_caller() {
        let caller = Principal {
            user_id: "456".into(),
        };
        let board = dashboard(
            &Fake {
                product_down: false,
            },
            &caller,
        )
        .await
        .expect("all backends up");
        assert_eq!(board.user.id, "456");
        assert_eq!(board.orders.len(), 1);
        assert_eq!(board.recommendations[0].name, "Keyboard");
    }
}
