//! `/api/order-details/{id}`: one request in, three upstream calls out, one answer back.
//!
//! The order is required (without it there is nothing to detail); the user and the
//! product are optional decorations. So the order is fetched first, then user and product
//! *in parallel*, each with its own timeout, and if one of them fails the answer still
//! comes — with that part `null` and named in `missing` — instead of failing whole. A
//! slow product service costs the caller at most one part timeout, not its whole page.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri, header};
use axum::response::IntoResponse;
use gateway_core::Millis;
use http_body_util::{BodyExt, Limited};
use serde_json::{Value, json};

use crate::forward::upstream_request_headers;
use crate::problem::problem;
use crate::state::Gateway;
use crate::upstream::{Outgoing, UpstreamError};

/// The largest part body read (parts are small JSON documents).
const MAX_PART_BYTES: usize = 256 * 1024;

/// Why a part could not be fetched.
#[derive(Debug)]
enum PartError {
    Upstream(UpstreamError),
    Status(StatusCode),
    Body(String),
}

impl std::fmt::Display for PartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PartError::Upstream(error) => write!(f, "{error}"),
            PartError::Status(status) => write!(f, "answered {status}"),
            PartError::Body(reason) => write!(f, "sent an unreadable body: {reason}"),
        }
    }
}

// ANCHOR: aggregate
/// The aggregated order view.
pub async fn order_details(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    request: Request,
) -> Response<Body> {
    let Some(config) = gateway.config.aggregation.clone() else {
        return problem(StatusCode::NOT_FOUND, "aggregation is not configured").into_response();
    };
    // The id goes into three upstream URLs: it must be a plain identifier.
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not an order id"),
        )
        .into_response();
    }
    let admitted = match gateway
        .admit(request.headers(), peer, config.auth, None)
        .await
    {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal,
    };
    let headers = upstream_request_headers(
        request.headers(),
        peer.ip(),
        gateway.trusted(),
        gateway.subject_header(),
        admitted.claims.as_ref().map(|claims| claims.sub.as_str()),
    );
    let timeout = Duration::from_millis(config.part_timeout_ms);
    let within = Millis(config.part_timeout_ms);
    let fetch = |upstream: String, path: String| {
        let gateway = Arc::clone(&gateway);
        let headers = headers.clone();
        async move { fetch_part(&gateway, &upstream, path, headers, timeout, within).await }
    };

    // ANCHOR: parts
    let order = match fetch(config.order_upstream.clone(), format!("/api/orders/{id}")).await {
        Ok(order) => order,
        Err(PartError::Status(StatusCode::NOT_FOUND)) => {
            return problem(StatusCode::NOT_FOUND, format!("no order {id}")).into_response();
        }
        Err(PartError::Upstream(error)) => {
            return problem(error.status(), format!("the order is required: {error}"))
                .into_response();
        }
        Err(error) => {
            return problem(
                StatusCode::BAD_GATEWAY,
                format!("the order is required: the order service {error}"),
            )
            .into_response();
        }
    };
    let user_id = order
        .get("user_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let product_id = order
        .get("product_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let (user, product) = tokio::join!(
        fetch(
            config.user_upstream.clone(),
            format!("/api/users/{user_id}")
        ),
        fetch(
            config.product_upstream.clone(),
            format!("/api/products/{product_id}")
        ),
    );
    let mut missing = Vec::new();
    let mut part = |name: &str, result: Result<Value, PartError>| match result {
        Ok(value) => value,
        Err(error) => {
            missing.push(json!({ "part": name, "reason": error.to_string() }));
            Value::Null
        }
    };
    let user = part("user", user);
    let product = part("product", product);
    let partial = !missing.is_empty();
    let body = json!({ "order": order, "user": user, "product": product, "missing": missing, "partial": partial });
    // ANCHOR_END: parts
    let mut response = Response::new(Body::from(body.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    gateway.finish(&admitted, &mut response);
    response
}
// ANCHOR_END: aggregate

/// GETs one JSON document through the upstream's breaker, with its own timeout.
async fn fetch_part(
    gateway: &Gateway,
    upstream: &str,
    path: String,
    headers: HeaderMap,
    timeout: Duration,
    within: Millis,
) -> Result<Value, PartError> {
    let Some(target) = gateway.upstreams.get(upstream) else {
        return Err(PartError::Body(format!("no upstream {upstream}")));
    };
    let uri = Uri::try_from(path).map_err(|error| PartError::Body(error.to_string()))?;
    let outgoing = Outgoing {
        method: Method::GET,
        uri,
        headers,
        body: Body::empty(),
        retryable: true,
        timeout,
        within,
    };
    let response = target.send(outgoing).await.map_err(PartError::Upstream)?;
    if !response.status().is_success() {
        return Err(PartError::Status(response.status()));
    }
    let bytes = tokio::time::timeout(
        timeout,
        Limited::new(response.into_body(), MAX_PART_BYTES).collect(),
    )
    .await
    .map_err(|_| PartError::Body("timed out".to_owned()))?
    .map_err(|error| PartError::Body(error.to_string()))?
    .to_bytes();
    serde_json::from_slice(&bytes).map_err(|error| PartError::Body(error.to_string()))
}
