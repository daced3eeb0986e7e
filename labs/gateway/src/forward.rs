//! What changes when a request crosses the gateway: headers and the request body's guard.
//!
//! The rules themselves (which headers are hop-by-hop, whose `X-Forwarded-For` counts)
//! are pure functions in `gateway_core::headers`; this module applies them to `http`
//! types, and wraps the client's body so it enforces a size limit and a deadline, says when a
//! failure was the client's, and is read ahead up to a small buffer before the upstream is
//! called ([`buffer_body`]), so that a short body reaches the upstream whole or not at all.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use gateway_core::headers::{Cidr, connection_named, forwarded_for_upstream, is_hop_by_hop};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use pin_project_lite::pin_project;
use thiserror::Error;
use tokio::time::Sleep;

/// What the gateway adds to `Via` (RFC 9110 §7.6.3).
pub const VIA: &str = "1.1 lab-gateway";

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

fn connection_named_in(headers: &HeaderMap) -> Vec<String> {
    connection_named(
        headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok()),
    )
}

// ANCHOR: request_headers
/// Rewrites a request's headers, in place, into the ones to send upstream for `peer`.
///
/// Hop-by-hop headers (and any the client named in `Connection`) stop here. The
/// `X-Forwarded-*` headers say who asked and how; a client's own copies are believed only
/// if `peer` is a trusted proxy. The subject header is *always* removed from what the
/// client sent and set only from a verified token: the services trust it blindly.
///
/// Editing the client's map instead of building a new one saves hashing every header a
/// second time, which a benchmark of the gateway shows on every request.
pub fn prepare_upstream_headers(
    headers: &mut HeaderMap,
    peer: IpAddr,
    trusted: &[Cidr],
    subject_header: &HeaderName,
    subject: Option<&str>,
) {
    let named = connection_named_in(headers);
    let peer_is_trusted = trusted.iter().any(|cidr| cidr.contains(peer));
    // Read what the previous hops wrote before any of it is removed. From a peer we do not
    // trust (every direct client) the chain is the peer alone: no string to build.
    let forwarded_for = if peer_is_trusted {
        HeaderValue::from_str(&forwarded_for_upstream(
            peer,
            headers
                .get_all(&X_FORWARDED_FOR)
                .iter()
                .filter_map(|value| value.to_str().ok()),
            trusted,
        ))
        .ok()
    } else {
        Some(ip_header_value(peer))
    };
    let via = via_after(headers.get_all(header::VIA).iter());
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            is_hop_by_hop(name.as_str(), &named)
                || (!peer_is_trusted && (*name == X_FORWARDED_PROTO || *name == X_FORWARDED_HOST))
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(&name);
    }
    let host = headers.remove(header::HOST);
    headers.remove(subject_header);
    // `insert` replaces every earlier value of the name.
    match forwarded_for {
        Some(value) => headers.insert(X_FORWARDED_FOR.clone(), value),
        None => headers.remove(&X_FORWARDED_FOR),
    };
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    }
    if !headers.contains_key(&X_FORWARDED_HOST)
        && let Some(host) = host
    {
        headers.insert(X_FORWARDED_HOST.clone(), host);
    }
    headers.insert(header::VIA, via);
    if let Some(subject) = subject.and_then(|s| HeaderValue::from_str(s).ok()) {
        headers.insert(subject_header.clone(), subject);
    }
}
// ANCHOR_END: request_headers

/// [`prepare_upstream_headers`] on a copy, for a request the gateway makes itself from a
/// client's headers (the aggregated route's calls). The gateway records no span for those, so
/// the client's trace context goes on only when valid, as with tracing off
/// ([`lab_telemetry::proxy::pass_through`]).
pub fn upstream_request_headers(
    incoming: &HeaderMap,
    peer: IpAddr,
    trusted: &[Cidr],
    subject_header: &HeaderName,
    subject: Option<&str>,
) -> HeaderMap {
    let mut headers = incoming.clone();
    prepare_upstream_headers(&mut headers, peer, trusted, subject_header, subject);
    lab_telemetry::proxy::pass_through(&mut headers);
    headers
}

/// An address as a header value. An IPv4 address is spelled digit by digit: this runs for
/// every request, and `Display` (built for padding and alignment) costs more than the rest of
/// the `X-Forwarded-For` handling together.
pub fn ip_header_value(ip: IpAddr) -> HeaderValue {
    let IpAddr::V4(v4) = ip else {
        return HeaderValue::from_str(&ip.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
    };
    let mut text = Vec::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text.push(b'.');
        }
        if octet >= 100 {
            text.push(b'0' + octet / 100);
        }
        if octet >= 10 {
            text.push(b'0' + octet / 10 % 10);
        }
        text.push(b'0' + octet % 10);
    }
    HeaderValue::from_maybe_shared(Bytes::from(text))
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// Strips hop-by-hop headers from an upstream response and adds our `Via`.
pub fn clean_response_headers(headers: &mut HeaderMap) {
    let named = connection_named_in(headers);
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_hop_by_hop(name.as_str(), &named))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(&name);
    }
    let via = via_after(headers.get_all(header::VIA).iter());
    headers.insert(header::VIA, via);
}

fn via_after<'a>(previous: impl Iterator<Item = &'a HeaderValue>) -> HeaderValue {
    let mut chain: Vec<&str> = previous.filter_map(|v| v.to_str().ok()).collect();
    if chain.is_empty() {
        // The usual case, and no allocation.
        return HeaderValue::from_static(VIA);
    }
    chain.push(VIA);
    HeaderValue::from_str(&chain.join(", ")).unwrap_or(HeaderValue::from_static(VIA))
}

/// Why the client's body was cut off: always the client's doing, never the upstream's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum BodyGuardError {
    /// More bytes than the limit (413).
    #[error("the request body exceeds {limit} bytes")]
    TooLarge {
        /// The most body bytes a request may send (`max_body_bytes` in the configuration).
        limit: u64,
    },
    /// The client did not finish its body in time (408).
    #[error("the client did not send its whole body within {0:?}")]
    TimedOut(Duration),
    /// The client's body stopped before its end: it hung up or reset the connection (400).
    #[error("the request body ended before it was complete (the client hung up)")]
    Incomplete,
    /// The body's framing is broken, a malformed chunk for instance (400).
    #[error("the request body is malformed: {0}")]
    Malformed(&'static str),
}

impl BodyGuardError {
    /// The status that answers it.
    pub fn status(self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            BodyGuardError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyGuardError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
            BodyGuardError::Incomplete | BodyGuardError::Malformed(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// What a failure of the client's body stream was: hyper reports a broken chunk as an
    /// I/O error of kind `InvalidInput` or `InvalidData`; anything else (an early end, a
    /// reset) means the client went away.
    fn of_client(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut current = Some(error);
        while let Some(error) = current {
            if let Some(io) = error.downcast_ref::<std::io::Error>()
                && matches!(
                    io.kind(),
                    std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
                )
            {
                return BodyGuardError::Malformed("its chunked framing is invalid");
            }
            current = error.source();
        }
        BodyGuardError::Incomplete
    }
}

pin_project! {
    // ANCHOR: guarded_body
    /// The client's body, passed through frame by frame (never buffered whole), with a size
    /// limit and a deadline. A client that declares a small `Content-Length` and sends more,
    /// or sends chunked bytes forever, or stops sending halfway, is cut off here instead of
    /// holding an upstream connection hostage.
    pub struct GuardedBody {
        #[pin]
        inner: Body,
        read: u64,
        limit: u64,
        timeout: Duration,
        #[pin]
        deadline: Sleep,
    }
    // ANCHOR_END: guarded_body
}

impl GuardedBody {
    /// Guards `inner` with a byte `limit` and a `timeout` for the whole body.
    pub fn new(inner: Body, limit: u64, timeout: Duration) -> Self {
        Self {
            inner,
            read: 0,
            limit,
            timeout,
            deadline: tokio::time::sleep(timeout),
        }
    }
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.read += data.len() as u64;
                    if *this.read > *this.limit {
                        let limit = *this.limit;
                        return Poll::Ready(Some(Err(Box::new(BodyGuardError::TooLarge {
                            limit,
                        }))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            // The client's side of the body broke: say so, so nobody blames the upstream.
            Poll::Ready(Some(Err(error))) => {
                tracing::debug!(%error, "the client's request body failed");
                Poll::Ready(Some(Err(Box::new(BodyGuardError::of_client(&error)))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.deadline.poll(cx) {
                Poll::Ready(()) => {
                    Poll::Ready(Some(Err(Box::new(BodyGuardError::TimedOut(*this.timeout)))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

// ANCHOR: buffer_body
/// Reads the guarded body ahead, up to `buffer` bytes, before the upstream is called.
///
/// A body that ends within the buffer comes back whole: the upstream gets it complete or,
/// if the client fails first, not at all. A longer one comes back as the frames read so far
/// followed by the rest, streamed; if it then breaks, the upstream's connection is dropped
/// mid-body, so the upstream sees an aborted request, never a complete one.
pub async fn buffer_body(body: GuardedBody, buffer: u64) -> Result<Body, BodyGuardError> {
    let mut body = Box::pin(body);
    let mut read: VecDeque<Frame<Bytes>> = VecDeque::new();
    let mut size = 0u64;
    loop {
        match body.frame().await {
            None => {
                let mut whole = bytes::BytesMut::with_capacity(size as usize);
                for frame in read {
                    if let Ok(data) = Frame::into_data(frame) {
                        whole.extend_from_slice(&data);
                    }
                }
                return Ok(Body::from(whole.freeze()));
            }
            Some(Err(error)) => {
                return Err(body_guard_error(error.as_ref()).unwrap_or(BodyGuardError::Incomplete));
            }
            Some(Ok(frame)) => {
                let trailers = frame.is_trailers();
                size += frame.data_ref().map_or(0, |data| data.len() as u64);
                read.push_back(frame);
                if size > buffer || trailers {
                    return Ok(Body::new(Prefixed { read, rest: body }));
                }
            }
        }
    }
}
// ANCHOR_END: buffer_body

/// Frames already read, then the rest of the body.
struct Prefixed {
    read: VecDeque<Frame<Bytes>>,
    rest: Pin<Box<GuardedBody>>,
}

impl http_body::Body for Prefixed {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(frame) = self.read.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        self.rest.as_mut().poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_empty() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let read: u64 = self
            .read
            .iter()
            .map(|frame| frame.data_ref().map_or(0, |data| data.len() as u64))
            .sum();
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + read);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + read);
        }
        hint
    }
}

/// Finds a [`BodyGuardError`] anywhere in an error's chain of causes.
pub fn body_guard_error(error: &(dyn std::error::Error + 'static)) -> Option<BodyGuardError> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(guard) = error.downcast_ref::<BodyGuardError>() {
            return Some(*guard);
        }
        current = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses_are_spelled_as_display_spells_them() {
        for text in [
            "0.0.0.0",
            "9.10.99.100",
            "127.0.0.1",
            "203.0.113.5",
            "255.255.255.255",
            "::1",
            "2001:db8::7",
        ] {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(ip_header_value(ip), text);
        }
        for octet in 0..=255u8 {
            let ip = IpAddr::from([octet, 255 - octet, octet / 2, 7]);
            assert_eq!(ip_header_value(ip), ip.to_string().as_str());
        }
    }

    #[test]
    fn hop_by_hop_and_forged_headers_stop_at_the_gateway() {
        let mut incoming = HeaderMap::new();
        incoming.insert(header::HOST, HeaderValue::from_static("gw.example"));
        incoming.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret"),
        );
        incoming.insert("x-secret", HeaderValue::from_static("s"));
        incoming.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        incoming.insert("upgrade", HeaderValue::from_static("websocket"));
        incoming.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        incoming.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        incoming.insert("x-authenticated-subject", HeaderValue::from_static("admin"));
        incoming.insert("accept", HeaderValue::from_static("application/json"));
        let subject = HeaderName::from_static("x-authenticated-subject");
        let out = upstream_request_headers(
            &incoming,
            "203.0.113.5".parse().unwrap(),
            &[],
            &subject,
            None,
        );
        for gone in [
            "connection",
            "x-secret",
            "keep-alive",
            "upgrade",
            "host",
            "x-authenticated-subject",
        ] {
            assert!(!out.contains_key(gone), "{gone} must not be forwarded");
        }
        assert_eq!(out["x-forwarded-for"], "203.0.113.5");
        assert_eq!(out["x-forwarded-proto"], "http");
        assert_eq!(out["x-forwarded-host"], "gw.example");
        assert_eq!(out["via"], VIA);
        assert_eq!(out["accept"], "application/json");
    }
}
