//! The proxy handler: what happens to every request that is not the gateway's own.
//!
//! Route it (400 for a hostile path, 404 for no route) → limit its address (429) →
//! authenticate (401/403) → rate-limit its subject (429) → check the declared size (413) →
//! read the body ahead into a small buffer (400/408/413) → forward through the upstream's
//! breaker with retries (502/503/504) → stream the answer back. Each refusal is a
//! problem+json with a `detail` saying why. With tracing on, all of it runs inside the
//! request's span (`trace.rs`), which the route names and the upstream's request carries.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::Request;
use axum::http::uri::{InvalidUri, PathAndQuery};
use axum::http::{Method, Response, StatusCode, Uri, header};
use axum::response::IntoResponse;
use bytes::{BufMut, BytesMut};
use gateway_core::RouteError;
use opentelemetry::context::FutureExt as _;

use crate::forward::{GuardedBody, buffer_body, clean_response_headers, prepare_upstream_headers};
use crate::problem::{Problem, problem};
use crate::state::Gateway;
use crate::trace::{Hook, TraceOf};
use crate::upstream::{Outgoing, UpstreamError};

/// What happens to every proxied request: [`forward`], inside the gateway's span when tracing
/// is on (`trace.rs`), with the incoming trace context checked when it is off.
pub async fn proxy_request(
    gateway: &Gateway,
    peer: SocketAddr,
    request: Request,
) -> Response<Body> {
    traced(gateway, peer, request).await
}

// ANCHOR: hook
/// The tracing around one proxied request: start the span from the client's headers, run the
/// proxy with the span attached (so a retry deep in the upstream's loop can add its event),
/// end it with the status, and leave the trace id for the access log. Without tracing, only
/// the incoming trace context is checked.
pub(crate) async fn traced(
    gateway: &Gateway,
    peer: SocketAddr,
    mut request: Request,
) -> Response<Body> {
    let Some(tracing) = &gateway.tracing else {
        lab_telemetry::proxy::pass_through(request.headers_mut());
        return forward(gateway, peer, request, None).await;
    };
    let span = tracing.span_for(&request);
    let hook = Hook {
        tracing,
        span: &span,
    };
    let mut response = forward(gateway, peer, request, Some(hook))
        .with_context(span.context().clone())
        .await;
    let trace_id = span.trace_id();
    span.end(response.status().as_u16());
    response.extensions_mut().insert(TraceOf(trace_id));
    response
}
// ANCHOR_END: hook

// ANCHOR: proxy
/// Route, admit, forward, stream back; `hook` is the request's span, when tracing is on.
pub(crate) async fn forward(
    gateway: &Gateway,
    peer: SocketAddr,
    request: Request,
    hook: Option<Hook<'_>>,
) -> Response<Body> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    let found = match gateway.table.resolve(host, request.uri().path()) {
        Ok(found) => found,
        Err(RouteError::Path(error)) => {
            return problem(StatusCode::BAD_REQUEST, format!("refused path: {error}"))
                .into_response();
        }
        Err(error) => {
            return problem(StatusCode::NOT_FOUND, error.to_string()).into_response();
        }
    };
    let Some(route) = gateway.target(found.index) else {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "route table out of sync")
            .into_response();
    };
    if let Some(hook) = hook {
        hook.routed(found.index, request.method());
    }
    let admitted = match gateway
        .admit(
            request.headers(),
            peer,
            route.auth,
            route.required_scope.as_deref(),
        )
        .await
    {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal,
    };

    let limit = gateway.config.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is {} bytes; this gateway accepts at most {limit}",
                declared.unwrap_or_default()
            ),
        )
        .into_response();
    }
    // HTTP/1 says "body" with Content-Length or Transfer-Encoding; HTTP/2 by not ending the
    // stream with the headers. `is_end_stream` knows both.
    let has_body = declared.is_some_and(|length| length > 0)
        || request.headers().contains_key(header::TRANSFER_ENCODING)
        || !http_body::Body::is_end_stream(request.body());
    let idempotent = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    );

    let uri = match upstream_uri(request.uri(), found.path) {
        Ok(uri) => uri,
        Err(error) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("the normalized path is not a valid URI: {error}"),
            )
            .into_response();
        }
    };
    let (mut parts, body) = request.into_parts();
    prepare_upstream_headers(
        &mut parts.headers,
        peer.ip(),
        gateway.trusted(),
        gateway.subject_header(),
        admitted.claims.as_ref().map(|claims| claims.sub.as_str()),
    );
    if let Some(hook) = hook {
        hook.inject(&mut parts.headers);
    }
    // A request without a body needs no guard (and no timer): the common GET stays cheap.
    let body = if has_body {
        let guarded = GuardedBody::new(body, limit, gateway.body_timeout);
        let buffer = gateway.config.request_buffer_bytes;
        if buffer == 0 || declared.is_some_and(|length| length > buffer) {
            // Buffering is off, or the body is too long to wait for: it streams from the start.
            Body::new(guarded)
        } else {
            // Read ahead before the upstream hears of the request; a client that fails
            // within the buffer is answered here and the upstream never sees it.
            match buffer_body(guarded, buffer).await {
                Ok(body) => body,
                Err(error) => {
                    let mut response = problem(error.status(), error.to_string()).into_response();
                    gateway.finish(&admitted, &mut response);
                    return response;
                }
            }
        }
    } else {
        Body::empty()
    };
    let outgoing = Outgoing {
        method: parts.method,
        uri,
        headers: parts.headers,
        body,
        retryable: idempotent && !has_body,
        timeout: route.timeout,
        within: gateway.retry_deadline,
    };
    let mut response = match route.upstream.send(outgoing).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            clean_response_headers(&mut parts.headers);
            // The upstream's body streams straight through: no buffering, no copy.
            Response::from_parts(parts, Body::new(body))
        }
        Err(error) => {
            if let (Some(hook), UpstreamError::BreakerOpen { upstream, rejected }) = (hook, &error)
            {
                hook.breaker_rejected(upstream, &rejected.state);
            }
            Problem::from(error).into_response()
        }
    };
    gateway.finish(&admitted, &mut response);
    response
}
// ANCHOR_END: proxy

/// The origin-form URI sent upstream: the normalized path and the request's own query.
///
/// A path that normalizing left alone (nearly all of them) keeps the request's
/// `PathAndQuery` as it is, a reference-counted clone; only a rewritten path is put
/// together, in one buffer, with the query appended.
pub fn upstream_uri(request: &Uri, normalized: String) -> Result<Uri, InvalidUri> {
    if let Some(original) = request.path_and_query()
        && original.path() == normalized
    {
        return Ok(Uri::from(original.clone()));
    }
    let path_and_query = match request.query() {
        None => PathAndQuery::try_from(normalized)?,
        Some(query) => {
            let mut joined = BytesMut::with_capacity(normalized.len() + 1 + query.len());
            joined.put_slice(normalized.as_bytes());
            joined.put_u8(b'?');
            joined.put_slice(query.as_bytes());
            PathAndQuery::from_maybe_shared(joined.freeze())?
        }
    };
    Ok(Uri::from(path_and_query))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_left_alone_keeps_the_request_uri_and_its_query() {
        let request: Uri = "/api/users/7?verbose=1".parse().expect("uri");
        let uri = upstream_uri(&request, "/api/users/7".to_owned()).expect("valid");
        assert_eq!(uri, "/api/users/7?verbose=1");
    }

    #[test]
    fn a_normalized_path_takes_the_query_along() {
        let request: Uri = "/api//users/./7?verbose=1&x=%20".parse().expect("uri");
        let uri = upstream_uri(&request, "/api/users/7".to_owned()).expect("valid");
        assert_eq!(uri, "/api/users/7?verbose=1&x=%20");
        let bare: Uri = "/api//users".parse().expect("uri");
        let uri = upstream_uri(&bare, "/api/users".to_owned()).expect("valid");
        assert_eq!(uri, "/api/users");
    }
}
