//! The byte stream a transport hands to HTTP/2: any async reader/writer, plus
//! the bytes an HTTP/1.1 upgrade read past the response head.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The `AsyncWrite` methods a wrapper passes to its `inner` stream unchanged:
/// `is_write_vectored`, `poll_flush` and `poll_shutdown`.
macro_rules! pass_flush_and_shutdown {
    () => {
        fn is_write_vectored(&self) -> bool {
            self.inner.is_write_vectored()
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    };
}

/// A connected, bidirectional byte stream.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// A boxed [`Stream`].
pub type BoxedStream = Box<dyn Stream>;

/// A stream whose first bytes were already read into a buffer.
pub struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    /// Serves `prefix` first, then reads from `inner`.
    pub fn new(prefix: Bytes, inner: S) -> Self {
        Prefixed { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.has_remaining() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    pass_flush_and_shutdown!();
}

/// What a fresh connection's first answer said, when it is not HTTP/2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoAnswer {
    /// Nothing came before the deadline.
    Silent,
    /// The peer answered in HTTP/1.x: a Docker API socket (or another web
    /// server), not BuildKit's gRPC.
    Http1,
}

/// Makes the read error of an [`AnswerBy`] stream.
pub(crate) type FailWith = Box<dyn Fn(NoAnswer) -> io::Error + Send + Sync>;

/// A fresh connection to a daemon that must answer by a deadline.
///
/// An HTTP/2 server sends its SETTINGS frame as soon as the connection is
/// open (and at the latest once it has read our preface), so a daemon that
/// is alive has said something long before any call returns. Until the first
/// bytes arrive, a read that would wait past `deadline` fails instead, and
/// so does an answer that starts like an HTTP/1.x response. Once the daemon
/// has answered, this is a plain pass-through.
pub(crate) struct AnswerBy<S> {
    inner: S,
    /// `None` once the daemon has answered.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Makes the error for a connection that did not answer as HTTP/2.
    fail: FailWith,
    /// Told how the first answer went, once.
    told: Option<tokio::sync::oneshot::Sender<Result<(), NoAnswer>>>,
}

impl<S> AnswerBy<S> {
    /// Wraps `inner`; `fail` makes the read error for a missing or foreign
    /// answer, and `told` (if given) learns how the first answer went.
    pub(crate) fn new(
        inner: S,
        deadline: tokio::time::Instant,
        fail: FailWith,
        told: Option<tokio::sync::oneshot::Sender<Result<(), NoAnswer>>>,
    ) -> Self {
        AnswerBy {
            inner,
            deadline: Some(Box::pin(tokio::time::sleep_until(deadline))),
            fail,
            told,
        }
    }

    fn tell(&mut self, answer: Result<(), NoAnswer>) {
        if let Some(told) = self.told.take() {
            let _ = told.send(answer);
        }
    }
}

/// Whether `first` (the first bytes read) begins an HTTP/1.x response line.
/// An HTTP/2 frame header cannot start with `H` (a 4.7 MB frame length).
pub(crate) fn looks_like_http1(first: &[u8]) -> bool {
    const START: &[u8] = b"HTTP/";
    if first.len() < START.len() {
        START.starts_with(first)
    } else {
        first.starts_with(START)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AnswerBy<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let first = &buf.filled()[before..];
                if self.deadline.is_some() && !first.is_empty() {
                    if looks_like_http1(first) {
                        self.tell(Err(NoAnswer::Http1));
                        return Poll::Ready(Err((self.fail)(NoAnswer::Http1)));
                    }
                    self.deadline = None;
                    self.tell(Ok(()));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if let Some(deadline) = self.deadline.as_mut() {
                    if deadline.as_mut().poll(cx).is_ready() {
                        self.tell(Err(NoAnswer::Silent));
                        return Poll::Ready(Err((self.fail)(NoAnswer::Silent)));
                    }
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<S: AsyncRead + Unpin> AnswerBy<S> {
    /// A write failed before the daemon answered: a peer that answered in
    /// HTTP/1.1 and closed (the Docker API does) breaks our writes, and its
    /// answer is still there to read. Says so rather than "broken pipe".
    fn write_failed(&mut self, cx: &mut Context<'_>, err: io::Error) -> io::Error {
        if self.deadline.is_none() {
            return err;
        }
        let mut first = [0u8; 8];
        let mut buf = ReadBuf::new(&mut first);
        match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) if looks_like_http1(buf.filled()) && !buf.filled().is_empty() => {
                self.tell(Err(NoAnswer::Http1));
                (self.fail)(NoAnswer::Http1)
            }
            _ => err,
        }
    }

    /// A write's outcome, its error explained by [`AnswerBy::write_failed`].
    fn explain_write(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Err(err)) => Poll::Ready(Err(self.write_failed(cx, err))),
            other => other,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for AnswerBy<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, data);
        self.explain_write(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.explain_write(cx, written)
    }

    pass_flush_and_shutdown!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http1_answers_are_told_from_http2_frames() {
        assert!(looks_like_http1(b"HTTP/1.1 301 Moved Permanently\r\n"));
        assert!(looks_like_http1(b"HT"));
        assert!(!looks_like_http1(b"\x00\x00\x12\x04\x00"));
        assert!(!looks_like_http1(b"HELLO"));
    }
}
