//! Connection guards against slow and idle clients (slowloris): a cap on open connections, a
//! header-read deadline, an idle keep-alive deadline and a body-progress deadline.
//!
//! [`Guard`] is the listener's acceptor (under TLS when TLS is on): it refuses connections past
//! `MOJO_MAX_CONNECTIONS` (closed at once) and wraps each stream and its service so that:
//! - between requests (no request in flight), a connection that has started sending a request
//!   head must complete it within the header-read timeout, and one that sends nothing is
//!   closed after the idle timeout (counted from the end of the last answer, or from the last
//!   byte written while an answer body is still streaming);
//! - while a request is in flight, its body must make progress: each chunk must arrive within
//!   the body-progress timeout (an upload of any size is fine as long as it keeps moving);
//!   a stalled body fails the read and the request is answered 408 or 400.
//!
//! Handlers themselves are bounded by the request deadline layer in [`super`].

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::http::{Request, Response};
use futures::future::BoxFuture;
use futures::task::AtomicWaker;
use http_body::Frame;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// The deadlines and the cap.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// A started request head must be complete within this.
    pub header_read: Duration,
    /// Each chunk of a request body must arrive within this.
    pub body_progress: Duration,
    /// A connection with nothing in flight and nothing sent is closed after this.
    pub idle: Duration,
}

/// The acceptor: caps connections and guards each one.
#[derive(Clone)]
pub struct Guard {
    limits: Limits,
    open: Arc<Semaphore>,
}

impl Guard {
    /// A guard with these limits.
    pub fn new(limits: Limits) -> Guard {
        Guard {
            limits,
            open: Arc::new(Semaphore::new(limits.max_connections.max(1))),
        }
    }
}

/// What a connection's stream and its service share.
struct ConnState {
    started: Instant,
    /// Requests whose answer head is not yet produced.
    in_flight: AtomicUsize,
    /// Milliseconds after `started` when the connection last had nothing in flight.
    quiet_since: AtomicU64,
    /// Milliseconds after `started` of the last byte read or written.
    last_io: AtomicU64,
    /// Bytes arrived since the connection went quiet (a request head is being sent).
    head_started: AtomicBool,
    /// Milliseconds after `started` of the first byte of the head being sent: the header-read
    /// deadline runs from there (a keep-alive connection may rest before its next request).
    head_since: AtomicU64,
    /// The connection task, woken when the last request in flight is answered.
    waker: AtomicWaker,
}

impl ConnState {
    fn millis(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, millis: u64) -> Instant {
        self.started + Duration::from_millis(millis)
    }
}

impl<S> axum_server::accept::Accept<tokio::net::TcpStream, S> for Guard
where
    S: Send + 'static,
{
    type Stream = GuardedIo<tokio::net::TcpStream>;
    type Service = Tracked<S>;
    type Future = std::future::Ready<io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        let Ok(permit) = self.open.clone().try_acquire_owned() else {
            tracing::warn!(
                limit = self.limits.max_connections,
                "connection refused: MOJO_MAX_CONNECTIONS reached"
            );
            return std::future::ready(Err(io::Error::other("too many connections")));
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::new(ConnState {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            quiet_since: AtomicU64::new(0),
            last_io: AtomicU64::new(0),
            head_started: AtomicBool::new(false),
            head_since: AtomicU64::new(0),
            waker: AtomicWaker::new(),
        });
        let io = GuardedIo {
            inner: stream,
            state: state.clone(),
            limits: self.limits,
            sleep: Box::pin(tokio::time::sleep(self.limits.idle)),
            _permit: permit,
        };
        let service = Tracked {
            inner: service,
            state,
            body_progress: self.limits.body_progress,
        };
        std::future::ready(Ok((io, service)))
    }
}

/// A connection's stream under the header-read and idle deadlines.
pub struct GuardedIo<T> {
    inner: T,
    state: Arc<ConnState>,
    limits: Limits,
    sleep: Pin<Box<Sleep>>,
    _permit: OwnedSemaphorePermit,
}

impl<T> GuardedIo<T> {
    /// Err(TimedOut) when the connection is past its deadline; otherwise arms the timer.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let s = &self.state;
        s.waker.register(cx.waker());
        if s.in_flight.load(Ordering::SeqCst) > 0 {
            return Ok(());
        }
        let quiet = s.quiet_since.load(Ordering::SeqCst);
        let deadline = if s.head_started.load(Ordering::SeqCst) {
            s.at(s.head_since.load(Ordering::SeqCst)) + self.limits.header_read
        } else {
            s.at(quiet.max(s.last_io.load(Ordering::SeqCst))) + self.limits.idle
        };
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle or request head too slow",
            ));
        }
        self.sleep.as_mut().reset(deadline);
        if self.sleep.as_mut().poll(cx).is_ready() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection timed out",
            ));
        }
        Ok(())
    }

    fn progressed(&self, read: bool) {
        let s = &self.state;
        let now = s.millis();
        s.last_io.store(now, Ordering::SeqCst);
        if read
            && s.in_flight.load(Ordering::SeqCst) == 0
            && !s.head_started.swap(true, Ordering::SeqCst)
        {
            s.head_since.store(now, Ordering::SeqCst);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GuardedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.progressed(true);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match self.check(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GuardedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.progressed(false);
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match self.check(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
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
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.progressed(false);
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match self.check(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A connection's service: counts requests in flight and puts each request body under the
/// body-progress deadline.
#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    state: Arc<ConnState>,
    body_progress: Duration,
}

/// Marks a request answered (also when its future is dropped).
struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let s = &self.0;
        if s.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            s.quiet_since.store(s.millis(), Ordering::SeqCst);
            s.head_started.store(false, Ordering::SeqCst);
            s.waker.wake();
        }
    }
}

impl<S, B> tower::Service<Request<hyper::body::Incoming>> for Tracked<S>
where
    S: tower::Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<B>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<hyper::body::Incoming>) -> Self::Future {
        self.state.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(self.state.clone());
        let progress = self.body_progress;
        let req = req.map(|b| Body::new(ProgressBody::new(b, progress)));
        let fut = self.inner.call(req);
        Box::pin(async move {
            let out = fut.await;
            drop(guard);
            out
        })
    }
}

/// The error of a request body that stopped arriving.
#[derive(Debug, thiserror::Error)]
#[error("the request body made no progress within {0:?}")]
pub struct BodyStalled(pub Duration);

/// A request body whose every frame must arrive within a deadline.
pub struct ProgressBody<B> {
    inner: B,
    every: Duration,
    sleep: Pin<Box<Sleep>>,
    /// The deadline runs from the first read (a handler may start reading late).
    armed: bool,
}

impl<B> ProgressBody<B> {
    fn new(inner: B, every: Duration) -> ProgressBody<B> {
        ProgressBody {
            inner,
            every,
            sleep: Box::pin(tokio::time::sleep(every)),
            armed: false,
        }
    }
}

impl<B> HttpBody for ProgressBody<B>
where
    B: HttpBody + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = B::Data;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let every = self.every;
                self.sleep.as_mut().reset(Instant::now() + every);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                if !self.armed {
                    self.armed = true;
                    let every = self.every;
                    self.sleep.as_mut().reset(Instant::now() + every);
                }
                if self.sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err(Box::new(BodyStalled(self.every)))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
