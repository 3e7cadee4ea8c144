//! [`Watched`]: a connection that counts the bytes it has read, so that [`run`](super::run) can
//! close one that never completes the HTTP/2 handshake. hyper starts keepalive pings only after
//! the handshake, so without this a client that connects and stays silent (or sends half the
//! preface) holds a connection slot forever: a thousand of them lock everyone else out.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The client's part of the handshake: the 24-byte preface and a SETTINGS frame header.
const HANDSHAKE_BYTES: usize = 24 + 9;

/// An I/O stream that counts what it reads.
pub(super) struct Watched<T> {
    inner: T,
    read: Arc<AtomicUsize>,
}

impl<T> Watched<T> {
    /// `inner`, and a resolver of whether the handshake arrived in time.
    pub(super) fn new(inner: T) -> (Self, Handshake) {
        let read = Arc::new(AtomicUsize::new(0));
        (Self { inner, read: Arc::clone(&read) }, Handshake { read })
    }
}

/// Tells whether the client sent its handshake.
pub(super) struct Handshake {
    read: Arc<AtomicUsize>,
}

impl Handshake {
    /// Resolves after `timeout` if the client has not sent its handshake by then; otherwise
    /// never.
    pub(super) async fn missed(self, timeout: Duration) {
        tokio::time::sleep(timeout).await;
        if self.read.load(Ordering::Relaxed) >= HANDSHAKE_BYTES {
            std::future::pending::<()>().await;
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        // Only the first bytes matter; stop counting (and touching the atomic) after them.
        if read > 0 && self.read.load(Ordering::Relaxed) < HANDSHAKE_BYTES {
            self.read.fetch_add(read, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
