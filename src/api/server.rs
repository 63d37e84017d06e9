//! The server loop: accepts TCP connections and serves HTTP/1.1 on each through hyper, with the
//! limits `axum::serve` lacks: a header timeout, a body timeout, an idle timeout, and a cap on
//! open connections (from config and from the process's open-file limit) that makes room for a
//! new connection by closing the oldest idle one, the way nginx reuses keep-alive connections,
//! so health checks and `/checkpoint` keep answering under a flood of idle sockets. An accept
//! error (EMFILE included) is logged, makes room, and is retried after a short back-off; it
//! never ends the loop. Not the place for routes or refusals (the rest of `crate::api`).

use axum::body::Body;
use axum::Router;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Timeouts and the connection cap of a server.
#[derive(Debug, Clone, Copy)]
pub struct ServerConfig {
    /// From a request head's first byte to its end (slow-header clients are closed).
    pub header_timeout: Duration,
    /// From a request's start to its body's end (slow-body clients are answered `body_timeout`
    /// and closed).
    pub body_timeout: Duration,
    /// How long a connection may sit with no request in progress and no head arriving, before
    /// its first request or between keep-alive requests.
    pub idle_timeout: Duration,
    /// How long one response write may wait on a client that does not read (a feed left unread
    /// would otherwise hold its connection, and its place under the cap, for ever).
    pub write_timeout: Duration,
    /// Most open connections; lowered to fit the open-file limit (see [`connections_cap`]).
    pub connections_max: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            connections_max: 4096,
        }
    }
}

/// File descriptors kept free of connections: the store's files (sled's, the log files, or a
/// PostgreSQL pool of 24), rayon and tokio internals, logs.
pub const FD_HEADROOM: u64 = 256;

/// Fewest connections a cap is lowered to, however tight the open-file limit.
const CONNECTIONS_MIN: usize = 16;

/// Back-off after an accept error, so that a persistent one (EMFILE) never spins.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// How long a shutdown waits for connections to finish their requests (feeds never do).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The connection cap for `wanted` under this process's soft open-file limit (RLIMIT_NOFILE,
/// read from `/proc/self/limits`), leaving [`FD_HEADROOM`] descriptors for everything else.
pub fn connections_cap(wanted: usize) -> usize {
    match open_files_limit() {
        Some(n) => wanted.min((n.saturating_sub(FD_HEADROOM) as usize).max(CONNECTIONS_MIN)),
        None => wanted,
    }
}

fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Whether a body error is the server's body timeout (for the handler's refusal).
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if c.is::<BodyTimedOut>() {
            return true;
        }
        cur = c.source();
    }
    false
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within the body timeout")]
struct BodyTimedOut;

/// What the watchdog of one connection needs to know.
struct Conn {
    times: Mutex<Times>,
    /// Wakes the connection's task: its times changed, or it is asked to close.
    wake: Notify,
}

struct Times {
    /// Requests in progress (until their response body is done).
    active: usize,
    /// Since when no request is in progress.
    idle_since: Instant,
    /// When the first byte of the next request head arrived, while idle.
    head_at: Option<Instant>,
    /// Asked to close when idle (to make room, or at shutdown).
    evict: bool,
}

impl Conn {
    /// When the connection times out if nothing changes: `None` while a request is in progress.
    fn deadline(&self, cfg: &ServerConfig) -> Option<Instant> {
        let t = self.times.lock().expect("conn times lock");
        match (t.active, t.head_at) {
            (0, Some(at)) => Some(at + cfg.header_timeout),
            (0, None) => Some(t.idle_since + cfg.idle_timeout),
            _ => None,
        }
    }

    fn bytes_read(&self) {
        let mut t = self.times.lock().expect("conn times lock");
        if t.active == 0 && t.head_at.is_none() {
            t.head_at = Some(Instant::now());
            drop(t);
            self.wake.notify_one();
        }
    }

    fn begin_request(self: &Arc<Self>) -> RequestGuard {
        let mut t = self.times.lock().expect("conn times lock");
        t.active += 1;
        t.head_at = None;
        RequestGuard(self.clone())
    }

    fn take_evict(&self) -> bool {
        std::mem::take(&mut self.times.lock().expect("conn times lock").evict)
    }
}

/// Held from a request's start until its response body is done (or dropped).
struct RequestGuard(Arc<Conn>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let mut t = self.0.times.lock().expect("conn times lock");
        t.active -= 1;
        if t.active == 0 {
            t.idle_since = Instant::now();
            t.head_at = None;
        }
        drop(t);
        self.0.wake.notify_one();
    }
}

/// The open connections, for the cap and for shutdown.
#[derive(Default)]
struct Registry {
    conns: Mutex<HashMap<u64, (Arc<Conn>, bool)>>,
    next_id: AtomicU64,
    closed: Notify,
}

impl Registry {
    fn len(&self) -> usize {
        self.conns.lock().expect("registry lock").len()
    }

    fn add(&self) -> (u64, Arc<Conn>) {
        let conn = Arc::new(Conn {
            times: Mutex::new(Times { active: 0, idle_since: Instant::now(), head_at: None, evict: false }),
            wake: Notify::new(),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.conns.lock().expect("registry lock").insert(id, (conn.clone(), false));
        (id, conn)
    }

    fn remove(&self, id: u64) {
        self.conns.lock().expect("registry lock").remove(&id);
        self.closed.notify_waiters();
    }

    /// Asks the connection idle for longest (no request in progress) to close, unless it was
    /// asked already; false if every connection is busy.
    fn evict_oldest_idle(&self) -> bool {
        let mut conns = self.conns.lock().expect("registry lock");
        let oldest = conns
            .iter_mut()
            .filter(|(_, (_, evicting))| !*evicting)
            .filter_map(|(_, entry)| {
                let (active, since) = {
                    let t = entry.0.times.lock().expect("conn times lock");
                    (t.active, t.idle_since)
                };
                (active == 0).then_some((since, entry))
            })
            .min_by_key(|(since, _)| *since);
        let Some((_, entry)) = oldest else { return false };
        entry.1 = true;
        entry.0.times.lock().expect("conn times lock").evict = true;
        entry.0.wake.notify_one();
        true
    }

    fn evict_all(&self) {
        for (conn, evicting) in self.conns.lock().expect("registry lock").values_mut() {
            *evicting = true;
            conn.times.lock().expect("conn times lock").evict = true;
            conn.wake.notify_one();
        }
    }

    async fn all_closed(&self) {
        loop {
            let closed = self.closed.notified();
            if self.len() == 0 {
                return;
            }
            closed.await;
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, lets every
/// connection finish its request in progress (within a few seconds), and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let cap = connections_cap(config.connections_max);
    tracing::info!(
        connections_max = cap,
        header_timeout_ms = config.header_timeout.as_millis() as u64,
        body_timeout_ms = config.body_timeout.as_millis() as u64,
        idle_timeout_ms = config.idle_timeout.as_millis() as u64,
        write_timeout_ms = config.write_timeout.as_millis() as u64,
        "serving"
    );
    let registry = Arc::new(Registry::default());
    let mut last_warning: Option<Instant> = None;
    // At most one line a second: a flood must not become a flood of logs.
    let mut may_warn = move || {
        let due = last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        if due {
            last_warning = Some(Instant::now());
        }
        due
    };
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS or an aborted handshake: never fatal. Free a
                // descriptor if we hold an idle one, and back off so a persistent error does not
                // spin (the pending connection stays in the kernel's backlog meanwhile).
                if may_warn() {
                    tracing::warn!(error = %e, connections = registry.len(), "accept error; closing the oldest idle connection and retrying");
                }
                registry.evict_oldest_idle();
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if registry.len() >= cap && !registry.evict_oldest_idle() {
            if may_warn() {
                tracing::warn!(
                    connections = registry.len(),
                    connections_max = cap,
                    "every connection is busy at the cap; closing a new one"
                );
            }
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (id, conn) = registry.add();
        let (registry, router) = (registry.clone(), router.clone());
        tokio::spawn(async move {
            serve_connection(stream, conn, router, config).await;
            registry.remove(id);
        });
    }
    drop(listener);
    registry.evict_all();
    if tokio::time::timeout(SHUTDOWN_GRACE, registry.all_closed()).await.is_err() {
        tracing::info!(connections = registry.len(), "closing connections still open after the grace period");
    }
    Ok(())
}

/// One connection: hyper's HTTP/1 state machine, watched for the header and idle timeouts and
/// for a request to close.
async fn serve_connection(stream: TcpStream, conn: Arc<Conn>, router: Router, cfg: ServerConfig) {
    let io = TokioIo::new(Watched { inner: stream, conn: conn.clone(), write_timeout: cfg.write_timeout, stall: None });
    let requests = conn.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let guard = requests.begin_request();
        let deadline = Instant::now() + cfg.body_timeout;
        let req = req.map(|b| Body::new(TimedBody { inner: b, deadline, sleep: None }));
        let mut router = router.clone();
        async move {
            let resp = tower_service::Service::call(&mut router, req).await?;
            Ok::<_, Infallible>(resp.map(|b| Body::new(GuardedBody { inner: b, _guard: guard })))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Our watchdog times heads (hyper's timer would also cut idle keep-alive at the header
    // timeout).
    builder.header_read_timeout(None);
    let http = builder.serve_connection(io, service);
    tokio::pin!(http);
    loop {
        let deadline = conn.deadline(&cfg);
        tokio::select! {
            result = http.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = conn.wake.notified() => {
                if conn.take_evict() {
                    // Closes at once when idle; otherwise after the request in progress.
                    http.as_mut().graceful_shutdown();
                }
            }
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                if conn.deadline(&cfg).is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!("closing a connection after its header or idle timeout");
                    return;
                }
            }
        }
    }
}

/// A socket that tells its connection's watchdog when bytes arrive, and fails a write that has
/// waited the write timeout on a client that does not read.
struct Watched {
    inner: TcpStream,
    conn: Arc<Conn>,
    write_timeout: Duration,
    /// Armed while a write waits; cleared whenever one makes progress.
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Watched {
    /// What a write that returned `r` answers: progress disarms the stall timer; waiting arms
    /// it, and a wait past the write timeout is an error that ends the connection.
    fn written<T>(&mut self, cx: &mut Context<'_>, r: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        if r.is_ready() {
            self.stall = None;
            return r;
        }
        let timeout = self.write_timeout;
        let stall = self.stall.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => {
                tracing::debug!("closing a connection whose client stopped reading");
                Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the client stopped reading")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.conn.bytes_read();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.written(cx, r)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.written(cx, r)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.written(cx, r)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A request body that fails with [`BodyTimedOut`] once its request is older than the body
/// timeout and the rest has not arrived.
struct TimedBody {
    inner: Incoming,
    deadline: Instant,
    /// Armed at the first wait, so a request without a body costs no timer.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl http_body::Body for TimedBody {
    type Data = axum::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => Poll::Ready(r.map(|r| r.map_err(Into::into))),
            Poll::Pending => {
                let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(this.deadline)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request counted as in progress until it is done.
struct GuardedBody {
    inner: Body,
    _guard: RequestGuard,
}

impl http_body::Body for GuardedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
