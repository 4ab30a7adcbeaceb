//! A connection's socket as hyper sees it. It closes a connection that stays idle too long,
//! answers 408 to one whose request head does not arrive in time (a trickling client), closes
//! one whose client stopped reading (a write that makes no progress for the dispatch timeout:
//! a slow SSE reader is cut and resumes with `Last-Event-ID`), and gives hyper's own bodiless
//! error responses the JSON envelope. Timing lives here rather than
//! in hyper because hyper's header timeout also counts the idle time before a request.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::conn_state::ConnState;
use super::reply;

/// How long a connection may wait.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    /// Without any request (a new connection, or between keep-alive requests).
    pub idle: Duration,
    /// From the first byte of a request head to its end.
    pub header: Duration,
    /// A response write that makes no progress (the client does not read).
    pub dispatch: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request: the idle deadline runs.
    Idle,
    /// A request head has begun: the header deadline runs.
    Head,
    /// A request is being served: its body has its own deadline, the response none.
    Busy,
}

/// The wrapped socket.
pub(super) struct ConnIo {
    inner: TcpStream,
    state: Arc<ConnState>,
    timeouts: Timeouts,
    phase: Phase,
    deadline: Pin<Box<Sleep>>,
    /// Requests started when the phase was last updated.
    seen: u64,
    /// Bytes written in place of what hyper gave us, not yet all sent.
    pending: Vec<u8>,
    /// The 408 was queued: reading fails once it is sent.
    timed_out: bool,
    /// Runs while a write waits for the client to read; reset by any progress.
    stall: Pin<Box<Sleep>>,
    stalled: bool,
}

impl ConnIo {
    pub(super) fn new(inner: TcpStream, state: Arc<ConnState>, timeouts: Timeouts) -> Self {
        Self {
            inner,
            state,
            timeouts,
            phase: Phase::Idle,
            deadline: Box::pin(tokio::time::sleep(timeouts.idle)),
            seen: 0,
            pending: Vec::new(),
            timed_out: false,
            stall: Box::pin(tokio::time::sleep(timeouts.dispatch)),
            stalled: false,
        }
    }

    /// A write's outcome, failed once it has waited for the client longer than the dispatch
    /// timeout: hyper then drops the connection, and with it the response being written.
    fn guard_write<T>(&mut self, cx: &mut Context<'_>, outcome: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if outcome.is_ready() {
            self.stalled = false;
            return outcome;
        }
        if !self.stalled {
            self.stalled = true;
            self.stall.as_mut().reset(Instant::now() + self.timeouts.dispatch);
        }
        ready!(self.stall.as_mut().poll(cx));
        tracing::debug!("connection closed: the client stopped reading");
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client did not read within the dispatch timeout",
        )))
    }

    fn enter(&mut self, phase: Phase, limit: Duration) {
        self.phase = phase;
        self.deadline.as_mut().reset(Instant::now() + limit);
    }

    /// Follows the requests the service has started and finished since the last look.
    fn observe(&mut self) {
        let (started, finished) = self.state.requests();
        if started != finished {
            self.phase = Phase::Busy;
            self.seen = started;
        } else if started != self.seen || self.phase == Phase::Busy {
            self.seen = started;
            self.enter(Phase::Idle, self.timeouts.idle);
        }
    }

    /// Sends what is pending; ready once nothing is.
    fn flush_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..n);
        }
        Poll::Ready(Ok(()))
    }

    /// Takes the place of a write of hyper's if it is one of its bodiless error responses.
    fn substitute(&mut self, written: &[u8]) -> bool {
        match reply::rewrite_hyper_error(written) {
            Some(reply) => {
                self.pending = reply;
                true
            }
            None => false,
        }
    }

    /// The wait for a request or its head is over: an idle connection ends (end of file to
    /// hyper, which closes quietly); a begun head is answered 408 first.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.phase == Phase::Head && !self.timed_out {
            self.timed_out = true;
            self.pending = reply::header_timeout();
        }
        if !self.timed_out {
            return Poll::Ready(Ok(()));
        }
        ready!(self.flush_pending(cx))?;
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "request head not received in time",
        )))
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.timed_out {
            return this.poll_expired(cx);
        }
        this.observe();
        let before = buf.filled().len();
        if let Poll::Ready(result) = Pin::new(&mut this.inner).poll_read(cx, buf) {
            if buf.filled().len() > before && this.phase == Phase::Idle {
                this.state.head_begun();
                this.enter(Phase::Head, this.timeouts.header);
            }
            return Poll::Ready(result);
        }
        if this.phase == Phase::Busy {
            this.state.wake_when_finished(cx.waker());
            // The request may have finished before the waker was in place.
            let (started, finished) = this.state.requests();
            if started == finished {
                cx.waker().wake_by_ref();
            }
            return Poll::Pending;
        }
        if this.deadline.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.poll_expired(cx)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.flush_pending(cx))?;
        if this.substitute(buf) {
            // Reported as written; the substitute goes out on the flush that follows.
            return Poll::Ready(Ok(buf.len()));
        }
        let outcome = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.guard_write(cx, outcome)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.flush_pending(cx))?;
        let mut written = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (written.next(), written.next())
            && this.substitute(only)
        {
            return Poll::Ready(Ok(only.len()));
        }
        let outcome = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.guard_write(cx, outcome)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.flush_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.flush_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
