//! Keep-alive connections to one upstream, reused request after request.
//!
//! Opening a TCP connection costs a round trip and a little kernel work on both sides; a
//! gateway that dialled once per request would spend more on that than on proxying. So each
//! upstream keeps a stack of idle HTTP/1.1 connections:
//!
//! - **Checkout** pops the most recently used idle connection (it is the likeliest to still be
//!   open and warm in every cache) and dials a new one only when none is left. A connection
//!   idle for more than 30 s is closed instead of used.
//! - **Check-in** happens when the response body has been read to its end: only then is an
//!   HTTP/1.1 connection free for the next request. A body abandoned halfway (the client hung
//!   up) leaves the connection mid-message: if the rest is small (64 KiB at most) it is read
//!   and thrown away in the background to save the connection; otherwise the connection is
//!   closed.
//! - **A stale connection is not an error.** The upstream may close an idle connection at any
//!   moment (its keep-alive timeout). hyper hands a request back untouched when the connection
//!   died before any byte was written, and then it goes out on another connection, POST or
//!   not: nothing was sent, so nothing can happen twice.
//!
//! hyper-util's general-purpose client does the same and more (any host, TLS, HTTP/2), but it
//! pays for that on every request: a hash lookup by scheme and authority, an absolute URI to
//! build and parse, and a task spawned per request to notice when the connection is free
//! again. A gateway knows its upstreams up front, so it keeps one small pool per upstream
//! instead; the benchmark appendix shows what that bought.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{self, HeaderValue};
use axum::http::{Request, Response};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Why a request found no connection or lost it.
#[derive(Debug, Error)]
pub enum PoolError {
    /// Dialling the upstream failed.
    #[error("cannot connect to {authority}")]
    Connect {
        /// `host:port` of the upstream.
        authority: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The HTTP exchange failed (connection reset, malformed response, body error...).
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

/// Why [`Pool::try_send`] failed, and the request itself when none of it was sent.
#[derive(Debug)]
pub struct SendFailure {
    /// What went wrong.
    pub error: PoolError,
    /// The request, untouched, when not one byte of it reached the upstream.
    pub unsent: Option<Request<Body>>,
}

// ANCHOR: pool
/// How long a connection may sit idle before the pool closes it. Shorter than the keep-alive
/// timeout of most servers (nginx 75 s, Node 5 s being the odd one out), so that usually the
/// gateway, not the upstream, closes an idle connection: an upstream closing one just as a
/// request is written on it is the one stale-connection race that cannot be retried safely.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// An idle connection and since when it has been idle.
#[derive(Debug)]
struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

/// The idle connections to one upstream.
#[derive(Debug)]
pub struct Pool {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    authority: String,
    host: HeaderValue,
    /// Oldest at the front, most recently used at the back.
    idle: Mutex<VecDeque<Idle>>,
    max_idle: usize,
    opened: AtomicU64,
}

impl Pool {
    /// A pool for `authority` (`host:port`) keeping at most `max_idle` idle connections.
    pub fn new(authority: &str, max_idle: usize) -> Result<Self, String> {
        let host = HeaderValue::from_str(authority)
            .map_err(|_| format!("{authority:?} is not a valid Host header"))?;
        Ok(Self {
            shared: Arc::new(Shared {
                authority: authority.to_owned(),
                host,
                idle: Mutex::new(VecDeque::new()),
                max_idle,
                opened: AtomicU64::new(0),
            }),
        })
    }

    /// The `host:port` it connects to.
    pub fn authority(&self) -> &str {
        &self.shared.authority
    }

    /// How many connections this pool has opened since it started.
    pub fn connections_opened(&self) -> u64 {
        self.shared.opened.load(Ordering::Relaxed)
    }

    /// How many connections sit idle right now.
    pub fn idle(&self) -> usize {
        self.shared.idle.lock().len()
    }

    /// Sends `request` (origin-form URI) on a pooled connection, dialling one if none is idle.
    ///
    /// The response body hands the connection back to the pool once it has been read to the
    /// end. A `Host` header naming the upstream is added when the request has none.
    pub async fn send(&self, request: Request<Body>) -> Result<Response<PooledBody>, PoolError> {
        self.try_send(request)
            .await
            .map_err(|failure| failure.error)
    }

    /// [`Pool::send`], handing the request back when not one byte of it left: the upstream
    /// refused the connection, or a connection dialled for it broke before the request was
    /// written. Such a request may go to another instance, whatever its method.
    pub async fn try_send(
        &self,
        mut request: Request<Body>,
    ) -> Result<Response<PooledBody>, SendFailure> {
        if !request.headers().contains_key(header::HOST) {
            request
                .headers_mut()
                .insert(header::HOST, self.shared.host.clone());
        }
        loop {
            let (mut sender, fresh) = match self.checkout().await {
                Some(sender) => (sender, false),
                None => match self.dial().await {
                    Ok(sender) => (sender, true),
                    Err(error) => {
                        // A refused connection: the request is untouched.
                        let unsent = matches!(error, PoolError::Connect { .. }).then_some(request);
                        return Err(SendFailure { error, unsent });
                    }
                },
            };
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let body = PooledBody::new(body, sender, Arc::clone(&self.shared));
                    return Ok(Response::from_parts(parts, body));
                }
                Err(mut failed) => match failed.take_message() {
                    // Not a byte was written: the connection was already dead. Try another;
                    // a connection dialled for this very request failing is a real error.
                    Some(unsent) if !fresh => request = unsent,
                    unsent => {
                        return Err(SendFailure {
                            error: PoolError::Http(failed.into_error()),
                            unsent,
                        });
                    }
                },
            }
        }
    }

    /// The most recently used idle connection that is still open and ready.
    async fn checkout(&self) -> Option<SendRequest<Body>> {
        loop {
            let Idle { mut sender, since } = self.shared.idle.lock().pop_back()?;
            if since.elapsed() > IDLE_TIMEOUT {
                continue; // dropping the handle closes the connection
            }
            // Usually ready at once; a connection checked in as its last body frame was read
            // may need its task to run once more before it takes the next request.
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    async fn dial(&self) -> Result<SendRequest<Body>, PoolError> {
        let connect_error = |source| PoolError::Connect {
            authority: self.shared.authority.clone(),
            source,
        };
        let stream = TcpStream::connect(self.shared.authority.as_str())
            .await
            .map_err(connect_error)?;
        // Small requests should not wait for Nagle's algorithm.
        stream.set_nodelay(true).map_err(connect_error)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        self.shared.opened.fetch_add(1, Ordering::Relaxed);
        // The connection's own task reads and writes the socket; it ends when the upstream
        // closes the connection or every handle to it is dropped.
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "upstream connection ended");
            }
        });
        Ok(sender)
    }
}
// ANCHOR_END: pool

impl Shared {
    fn check_in(&self, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.idle.lock();
        // Close what has waited too long: the front is the oldest.
        while idle
            .front()
            .is_some_and(|oldest| now.duration_since(oldest.since) > IDLE_TIMEOUT)
        {
            idle.pop_front();
        }
        if idle.len() < self.max_idle {
            idle.push_back(Idle { sender, since: now });
        }
    }
}

/// An upstream response body that returns its connection to the pool when read to the end.
pub struct PooledBody {
    /// Always `Some` until the body is dropped mid-message and handed to the drain.
    inner: Option<Incoming>,
    lease: Option<(SendRequest<Body>, Arc<Shared>)>,
}

impl std::fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledBody")
            .field("holds_connection", &self.lease.is_some())
            .finish()
    }
}

impl PooledBody {
    fn new(inner: Incoming, sender: SendRequest<Body>, shared: Arc<Shared>) -> Self {
        let mut body = Self {
            inner: Some(inner),
            lease: Some((sender, shared)),
        };
        // A 204, a 304 or a HEAD answer has no body to wait for.
        body.release_if_done();
        body
    }

    /// Gives the connection back: the response has been read to its end.
    fn release(&mut self) {
        if let Some((sender, shared)) = self.lease.take() {
            shared.check_in(sender);
        }
    }

    /// Gives the connection back if the body says nothing more is coming (a known length
    /// fully read, or no body at all).
    fn release_if_done(&mut self) {
        if self
            .inner
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
        {
            self.release();
        }
    }
}

impl http_body::Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        match &polled {
            // The end of a chunked body: its length was never known, but it is over.
            Poll::Ready(None) => self.release(),
            Poll::Ready(Some(Ok(_))) => self.release_if_done(),
            // A broken body means a broken connection: let it go.
            Poll::Ready(Some(Err(_))) => self.lease = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), http_body::Body::size_hint)
    }
}

/// The most of an abandoned response the pool reads, and how long it waits for it, to save
/// the connection: a small rest of a body costs less to read and throw away than a new
/// connection costs to open; a large or endless one does not.
const DRAIN_LIMIT: u64 = 64 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(1);

impl Drop for PooledBody {
    fn drop(&mut self) {
        // Read to the end but never polled past it (a body with a known length): still fine.
        self.release_if_done();
        let (Some((sender, shared)), Some(inner)) = (self.lease.take(), self.inner.take()) else {
            return;
        };
        // Abandoned mid-message: the client hung up. If what is left is small and of known
        // length, read it in the background and keep the connection; otherwise dropping the
        // handle closes it.
        let small = http_body::Body::size_hint(&inner)
            .upper()
            .is_some_and(|left| left <= DRAIN_LIMIT);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if small {
            runtime.spawn(async move {
                let drained = tokio::time::timeout(DRAIN_TIME, inner.collect()).await;
                if matches!(drained, Ok(Ok(_))) {
                    shared.check_in(sender);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use std::convert::Infallible;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use http_body_util::{BodyExt, Full, StreamBody};
    use hyper::server::conn::http1 as server;
    use hyper::service::service_fn;
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    /// An upstream that counts its connections and can drop them all at once.
    /// `/small` answers 2 bytes with a length, `/chunked` three chunks without one,
    /// `/big` a megabyte in 1 KiB chunks, `/pause` 10 bytes in two halves, `/empty` a 204.
    struct Upstream {
        authority: String,
        accepted: Arc<AtomicUsize>,
        connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    }

    type TestBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

    fn answer(path: &str) -> Response<TestBody> {
        let chunks = |n: usize, size: usize| {
            let frames = (0..n).map(move |_| Ok(Frame::data(Bytes::from(vec![b'x'; size]))));
            StreamBody::new(futures::stream::iter(frames)).boxed()
        };
        match path {
            "/chunked" => Response::new(chunks(3, 5)),
            "/pause" => {
                // Ten bytes in two halves, the second a moment after the first.
                use futures::StreamExt;
                let halves = futures::stream::iter([0u64, 50]).then(|wait| async move {
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    Ok(Frame::data(Bytes::from_static(b"12345")))
                });
                let mut response = Response::new(BodyExt::boxed(StreamBody::new(halves)));
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
                response
            }
            "/big" => Response::new(chunks(1024, 1024)),
            "/empty" => {
                let mut response = Response::new(Full::new(Bytes::new()).boxed());
                *response.status_mut() = axum::http::StatusCode::NO_CONTENT;
                response
            }
            _ => Response::new(Full::new(Bytes::from_static(b"ok")).boxed()),
        }
    }

    impl Upstream {
        async fn start() -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let authority = listener.local_addr().unwrap().to_string();
            let accepted = Arc::new(AtomicUsize::new(0));
            let connections = Arc::new(Mutex::new(Vec::new()));
            let (count, keep) = (Arc::clone(&accepted), Arc::clone(&connections));
            tokio::spawn(async move {
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    count.fetch_add(1, Ordering::SeqCst);
                    let service = service_fn(|request: Request<Incoming>| async move {
                        Ok::<_, Infallible>(answer(request.uri().path()))
                    });
                    keep.lock().push(tokio::spawn(async move {
                        let _ = server::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }));
                }
            });
            Self {
                authority,
                accepted,
                connections,
            }
        }

        fn accepted(&self) -> usize {
            self.accepted.load(Ordering::SeqCst)
        }

        /// Closes every connection, as an upstream's keep-alive timeout would.
        fn drop_connections(&self) {
            for connection in self.connections.lock().drain(..) {
                connection.abort();
            }
        }
    }

    fn request(method: &str, path: &str) -> Request<Body> {
        Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap()
    }

    async fn read_all(pool: &Pool, method: &str, path: &str) -> usize {
        let response = pool.send(request(method, path)).await.unwrap();
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .len()
    }

    /// Waits until the pool's connection tasks have seen the upstream hang up.
    async fn until_no_open_idle(pool: &Pool) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while pool
                .shared
                .idle
                .lock()
                .iter()
                .any(|idle| !idle.sender.is_closed())
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_warm_pool_sends_every_request_on_the_same_connection() {
        let upstream = Upstream::start().await;
        let pool = Pool::new(&upstream.authority, 8).unwrap();
        for _ in 0..50 {
            assert_eq!(read_all(&pool, "GET", "/small").await, 2);
        }
        assert_eq!(pool.connections_opened(), 1);
        assert_eq!(upstream.accepted(), 1);
        assert_eq!(pool.idle(), 1);
    }

    #[tokio::test]
    async fn bodies_without_a_length_and_without_a_body_give_the_connection_back() {
        let upstream = Upstream::start().await;
        let pool = Pool::new(&upstream.authority, 8).unwrap();
        for _ in 0..5 {
            assert_eq!(read_all(&pool, "GET", "/chunked").await, 15);
            assert_eq!(read_all(&pool, "GET", "/empty").await, 0);
            assert_eq!(read_all(&pool, "HEAD", "/small").await, 0);
        }
        assert_eq!(upstream.accepted(), 1);
    }

    #[tokio::test]
    async fn concurrent_requests_get_a_connection_each_and_all_come_back() {
        let upstream = Upstream::start().await;
        let pool = Pool::new(&upstream.authority, 8).unwrap();
        let first: Vec<_> =
            futures::future::join_all((0..4).map(|_| pool.send(request("GET", "/big"))))
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
        assert_eq!(
            upstream.accepted(),
            4,
            "four bodies in flight need four connections"
        );
        for response in first {
            assert_eq!(
                response
                    .into_body()
                    .collect()
                    .await
                    .unwrap()
                    .to_bytes()
                    .len(),
                1 << 20
            );
        }
        assert_eq!(pool.idle(), 4);
        for _ in 0..8 {
            read_all(&pool, "GET", "/small").await;
        }
        assert_eq!(upstream.accepted(), 4, "later requests reuse them");
    }

    #[tokio::test]
    async fn a_large_abandoned_body_closes_its_connection_instead_of_reusing_it() {
        let upstream = Upstream::start().await;
        let pool = Pool::new(&upstream.authority, 8).unwrap();
        let response = pool.send(request("GET", "/big")).await.unwrap();
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert!(first.is_data());
        drop(body); // the client hung up halfway
        assert_eq!(
            pool.idle(),
            0,
            "a connection mid-message must not be reused"
        );
        assert_eq!(read_all(&pool, "GET", "/small").await, 2);
        assert_eq!(upstream.accepted(), 2);
    }

    #[tokio::test]
    async fn a_small_abandoned_body_is_read_out_and_its_connection_kept() {
        let upstream = Upstream::start().await;
        let pool = Pool::new(&upstream.authority, 8).unwrap();
        let response = pool.send(request("GET", "/pause")).await.unwrap();
        let mut body = response.into_body();
        assert!(body.frame().await.unwrap().unwrap().is_data());
        drop(body); // the client hung up with five bytes still to come
        tokio::time::timeout(Duration::from_secs(10), async {
            while pool.idle() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the drained connection comes back to the pool");
        assert_eq!(read_all(&pool, "GET", "/small").await, 2);
        assert_eq!(upstream.accepted(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_idle_for_too_long_is_closed_instead_of_used() {
        let upstream = Upstream::start().await;
        let pool = Pool::new(&upstream.authority, 8).unwrap();
        read_all(&pool, "GET", "/small").await;
        tokio::time::advance(IDLE_TIMEOUT - Duration::from_secs(1)).await;
        read_all(&pool, "GET", "/small").await;
        assert_eq!(
            upstream.accepted(),
            1,
            "idle for less than the timeout: reused"
        );
        tokio::time::advance(IDLE_TIMEOUT + Duration::from_secs(1)).await;
        read_all(&pool, "GET", "/small").await;
        assert_eq!(upstream.accepted(), 2, "idle for longer: a new connection");
        assert_eq!(pool.idle(), 1, "and the old one is gone");
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_is_replaced_even_for_a_post() {
        let upstream = Upstream::start().await;
        let pool = Pool::new(&upstream.authority, 8).unwrap();
        assert_eq!(read_all(&pool, "GET", "/small").await, 2);
        upstream.drop_connections();
        until_no_open_idle(&pool).await;
        // Nothing was sent on the dead connection, so even a POST may go out on a new one.
        assert_eq!(read_all(&pool, "POST", "/small").await, 2);
        assert_eq!(pool.connections_opened(), 2);
    }

    #[tokio::test]
    async fn an_upstream_that_is_not_listening_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        drop(listener);
        let pool = Pool::new(&authority, 8).unwrap();
        let error = pool.send(request("GET", "/")).await.unwrap_err();
        assert!(matches!(error, PoolError::Connect { .. }), "{error}");
        assert!(error.to_string().contains(&authority));
    }

    #[test]
    fn an_authority_that_is_no_host_header_is_refused() {
        assert!(Pool::new("bad\nhost:80", 8).is_err());
    }
}
