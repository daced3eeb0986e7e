//! A client connection whose request heads are checked before hyper parses them.
//!
//! [`CheckedIo`] sits between the socket and hyper's HTTP/1 server and runs the core's
//! [`Framing`] over the bytes read: it holds each request head back until it is complete and
//! acceptable, then hands it on; body bytes go through as they come (a large body is read
//! straight into hyper's buffer, unexamined). A head it refuses never reaches hyper: hyper gets
//! a stand-in request instead, and the connection's [`Refusals`] slot says why, so the gateway's
//! service answers it with a problem+json 400, 414 or 431 and closes the connection.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use gateway_core::framing::{Framing, HeadLimits, HeadRefusal, Scanned};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What hyper parses in place of a refused head: a request the gateway answers from the
/// [`Refusals`] slot, asking hyper to close the connection afterwards.
const STAND_IN: &[u8] = b"GET / HTTP/1.1\r\nhost: refused.invalid\r\nconnection: close\r\n\r\n";

/// How much is read from the socket at a time while a head is being looked at.
const READ_CHUNK: usize = 8 * 1024;

/// The refusal of a connection's last head, shared by its [`CheckedIo`] and its service.
///
/// One word: the service looks at it for every request, and a relaxed load is all that costs.
#[derive(Debug, Default)]
pub struct Refusals(AtomicU64);

impl Refusals {
    fn set(&self, refusal: HeadRefusal) {
        let (kind, limit) = match refusal {
            HeadRefusal::RequestLineTooLong { limit } => (1, limit),
            HeadRefusal::FieldLineTooLong { limit } => (2, limit),
            HeadRefusal::HeadTooLarge { limit } => (3, limit),
            HeadRefusal::TooManyFields { limit } => (4, limit),
            HeadRefusal::BareLf => (5, 0),
        };
        self.0
            .store(kind | ((limit as u64) << 8), Ordering::Relaxed);
    }

    /// The refusal waiting to be answered, if any (taking it).
    #[inline]
    pub fn take(&self) -> Option<HeadRefusal> {
        if self.0.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let word = self.0.swap(0, Ordering::Relaxed);
        let limit = usize::try_from(word >> 8).unwrap_or(usize::MAX);
        Some(match word & 0xff {
            1 => HeadRefusal::RequestLineTooLong { limit },
            2 => HeadRefusal::FieldLineTooLong { limit },
            3 => HeadRefusal::HeadTooLarge { limit },
            4 => HeadRefusal::TooManyFields { limit },
            _ => HeadRefusal::BareLf,
        })
    }
}

/// A socket whose request heads go through [`Framing`] on their way to hyper.
#[derive(Debug)]
pub struct CheckedIo<T> {
    io: T,
    framing: Framing,
    /// Bytes read from `io`: `buf[start..ready]` may go to hyper, `buf[ready..end]` wait for
    /// the scanner (a head held back, or bytes not scanned yet).
    buf: Vec<u8>,
    start: usize,
    ready: usize,
    end: usize,
    /// A head was refused: after the stand-in, hyper reads nothing more.
    refused: bool,
    refusals: Arc<Refusals>,
}

impl<T> CheckedIo<T> {
    /// Wraps `io`, applying `limits` and reporting refusals to `refusals`.
    pub fn new(io: T, limits: HeadLimits, refusals: Arc<Refusals>) -> Self {
        Self {
            io,
            framing: Framing::new(limits),
            buf: Vec::new(),
            start: 0,
            ready: 0,
            end: 0,
            refused: false,
            refusals,
        }
    }

    /// Scans what is waiting; afterwards `buf[start..ready]` is what hyper may have.
    fn scan(&mut self) {
        while self.ready < self.end && self.start == self.ready {
            match self.framing.scan(&self.buf[self.ready..self.end]) {
                Scanned::Pass(n) => {
                    if n == 0 {
                        return;
                    }
                    self.ready += n;
                }
                Scanned::Hold => return,
                Scanned::Refuse(refusal) => {
                    tracing::debug!(%refusal, "request head refused");
                    self.refusals.set(refusal);
                    self.refused = true;
                    self.buf.truncate(self.ready);
                    self.buf.extend_from_slice(STAND_IN);
                    self.end = self.buf.len();
                    self.ready = self.end;
                    return;
                }
            }
        }
    }

    /// Room for at least `READ_CHUNK` more bytes after `end`.
    fn make_room(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.ready = 0;
            self.end = 0;
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.ready -= self.start;
            self.start = 0;
        }
        if self.buf.len() < self.end + READ_CHUNK {
            self.buf.resize(self.end + READ_CHUNK, 0);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CheckedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.start < this.ready {
                let n = (this.ready - this.start).min(out.remaining());
                out.put_slice(&this.buf[this.start..this.start + n]);
                this.start += n;
                return Poll::Ready(Ok(()));
            }
            if this.refused {
                // Nothing more for hyper: it answers the stand-in and closes the connection.
                // (An end of stream here would make it close before answering.)
                return Poll::Pending;
            }
            // Nothing waiting and a body hyper may read unexamined: straight into its buffer.
            if this.ready == this.end && this.framing.opaque_body_bytes() >= out.remaining() as u64
            {
                let before = out.filled().len();
                std::task::ready!(Pin::new(&mut this.io).poll_read(cx, out))?;
                this.framing
                    .skip_opaque((out.filled().len() - before) as u64);
                return Poll::Ready(Ok(()));
            }
            if this.ready < this.end {
                this.scan();
                if this.start < this.ready || this.refused {
                    continue;
                }
                // Otherwise a head is held back and needs more bytes.
            }
            this.make_room();
            let mut read = ReadBuf::new(&mut this.buf[this.end..]);
            std::task::ready!(Pin::new(&mut this.io).poll_read(cx, &mut read))?;
            let n = read.filled().len();
            if n == 0 {
                // The client closed: what is held is an unfinished head, which hyper would
                // only call incomplete. Hand it on so hyper sees what it would have seen.
                this.ready = this.end;
                if this.start == this.ready {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            this.end += n;
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CheckedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A connection whose client has written `bytes` and closed, read through [`CheckedIo`].
    async fn checked(bytes: &[u8]) -> (CheckedIo<tokio::io::DuplexStream>, Arc<Refusals>) {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        client.write_all(bytes).await.unwrap();
        drop(client);
        let refusals = Arc::new(Refusals::default());
        let io = CheckedIo::new(server, HeadLimits::default(), Arc::clone(&refusals));
        (io, refusals)
    }

    #[tokio::test]
    async fn acceptable_heads_and_their_bodies_pass_unchanged() {
        let mut bytes = b"PUT /a HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'\n', 100_000));
        bytes.extend_from_slice(b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n");
        let (mut io, refusals) = checked(&bytes).await;
        let mut read = Vec::new();
        io.read_to_end(&mut read).await.unwrap();
        assert_eq!(read, bytes);
        assert_eq!(refusals.take(), None);
    }

    #[tokio::test]
    async fn a_refused_head_reaches_hyper_as_the_stand_in_and_nothing_follows() {
        let (mut io, refusals) =
            checked(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\nX: b\r\n\r\nGET /c HTTP/1.1\r\n\r\n").await;
        let mut read = vec![0u8; 4096];
        let n = io.read(&mut read).await.unwrap();
        assert_eq!(&read[..n], b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(refusals.take(), None, "the first request is not refused");
        let n = io.read(&mut read).await.unwrap();
        assert_eq!(&read[..n], STAND_IN);
        assert_eq!(refusals.take(), Some(HeadRefusal::BareLf));
        let more = std::future::poll_fn(|cx| {
            let mut buf = ReadBuf::new(&mut read);
            Poll::Ready(Pin::new(&mut io).poll_read(cx, &mut buf).is_pending())
        })
        .await;
        assert!(
            more,
            "after the stand-in hyper reads nothing, not even an end of stream"
        );
    }
}
