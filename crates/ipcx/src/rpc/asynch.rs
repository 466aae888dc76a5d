//! Async (tokio) RPC servers, and the tokio streams the async client runs over.
//!
//! The user-facing documentation is on [`AsyncService`].

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::thread::JoinHandle as ThreadHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::{CallContext, Handler, Outcome, Service, reply_of};
use crate::framing::{self, FrameDecoder};
use crate::pattern::reqrep::{self, Authorize, Frame, Peer, Server, ServerOptions, Status};
use crate::pattern::{self, LinkAddr, LinkListener};
use crate::socket::tokio::AsyncUnixListener;
use crate::trust::Trust;

/// How long a connecting client has to send its hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes asked for per socket read.
const READ_CHUNK: usize = 64 * 1024;

/// The reading half of a tokio connection (Unix socket or TCP).
pub(super) type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
/// The writing half of a tokio connection (Unix socket or TCP).
pub(super) type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// Connects a tokio stream to a Unix or TCP address (`TCP_NODELAY` set) and splits it.
pub(super) async fn connect_stream(addr: &LinkAddr) -> Result<(BoxRead, BoxWrite), pattern::Error> {
    match addr {
        LinkAddr::Unix(a) => {
            let (r, w) = crate::socket::tokio::connect_unix(a).await?.into_split();
            Ok((Box::new(r), Box::new(w)))
        }
        LinkAddr::Tcp(a) => {
            let (r, w) = crate::socket::tokio::connect_tcp(a.as_str())
                .await?
                .into_split();
            Ok((Box::new(r), Box::new(w)))
        }
        LinkAddr::Shm(_) => Err(pattern::Error::InvalidAddress {
            addr: addr.to_string(),
            reason: "shared-memory rings have no tokio stream".into(),
        }),
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;
type AsyncHandler = Arc<dyn Fn(CallContext, Vec<u8>) -> BoxFuture + Send + Sync>;

/// A service with sync and async handlers, served from inside a tokio runtime (feature
/// `tokio`). Build it with [`AsyncService::new`], or from a [`Service`] (`From`,
/// [`Service::method_async`]) to add async handlers to an existing definition.
///
/// It holds sync handlers (as [`Service`] does) and async ones
/// ([`AsyncService::method_async`]); [`AsyncService::serve_async`] serves it from inside a tokio
/// runtime. The wire protocol is the one of [`crate::pattern::reqrep`], so sync clients call
/// async servers and async clients call sync servers.
///
/// * **Unix sockets, TCP and TLS** ([`AsyncService::serve_tls_async`], tokio-rustls) are
///   served natively: a tokio listener, one task per connection (running the TLS handshake
///   first, then reading requests), one task per call, one task writing replies; nothing
///   blocks the runtime. Calls on one connection run concurrently and their replies go out as
///   they finish, each carrying its request's id.
/// * **`shm:/NAME`** goes through a bridge: the thread-based
///   [`crate::pattern::reqrep::Server`] accepts and reads (a thread per connection, plus its
///   accept thread), one more thread hands each request to the runtime, and each reply is
///   written from tokio's blocking pool. Handlers still run as tasks; the cost is two thread
///   hand-offs per call and those threads.
/// * **Sync handlers** ([`AsyncService::method`], [`AsyncService::method_ctx`]) run on tokio's
///   blocking pool: they may block, and they cannot be cancelled. Cheap handlers that never
///   block are better registered with [`AsyncService::method_async`], which runs them on the
///   runtime's own threads.
/// * **Deadlines**: a call whose deadline has passed is not started (it is answered
///   [`Status::DeadlineExceeded`]); an async handler sees the deadline in its
///   [`CallContext`], and its future is dropped when the deadline passes (the caller has
///   stopped waiting; the reply is [`Status::DeadlineExceeded`]). Async handlers in progress
///   are also dropped when their caller's connection ends.
/// * **Panics**: a panicking handler (sync or async, while building its future or polling it)
///   answers [`Status::Panicked`]; the server goes on.
///
/// ```no_run
/// use ipcx::rpc::{AsyncService, CallContext};
/// use std::time::Duration;
/// # #[allow(dead_code)]
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let server = AsyncService::new("calc", 1)
///     .method("add", |a: (i32, i32)| Ok::<_, String>(a.0 + a.1))
///     .method_async("slow_add", |a: (i32, i32), ctx: CallContext| async move {
///         tokio::time::sleep(Duration::from_millis(10)).await;
///         if ctx.expired() { return Err("too late".to_string()); }
///         Ok(a.0 + a.1)
///     })
///     .serve_async("tcp:127.0.0.1:7000")
///     .await?;
/// // ... later: stop accepting, let the calls in progress finish, close.
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AsyncService {
    base: Service,
    async_methods: HashMap<String, AsyncHandler>,
    max_in_flight: usize,
}

impl fmt::Debug for AsyncService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m: Vec<_> = self.async_methods.keys().collect();
        m.sort();
        f.debug_struct("AsyncService")
            .field("base", &self.base)
            .field("async_methods", &m)
            .field("max_in_flight", &self.max_in_flight)
            .finish()
    }
}

impl From<Service> for AsyncService {
    fn from(base: Service) -> AsyncService {
        AsyncService {
            base,
            async_methods: HashMap::new(),
            max_in_flight: 1024,
        }
    }
}

impl Service {
    /// Adds an async method, turning the definition into an [`AsyncService`] (served with
    /// [`AsyncService::serve_async`]); see [`AsyncService::method_async`].
    pub fn method_async<A, R, E, F, Fut>(self, name: &str, f: F) -> AsyncService
    where
        A: DeserializeOwned,
        R: Serialize,
        E: fmt::Display,
        F: Fn(A, CallContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        AsyncService::from(self).method_async(name, f)
    }

    /// Serves this service from inside a tokio runtime (see [`AsyncService::serve_async`]):
    /// its sync handlers run on tokio's blocking pool.
    pub async fn serve_async(self, addr: &str) -> Result<AsyncRunningService, pattern::Error> {
        AsyncService::from(self).serve_async(addr).await
    }
}

impl AsyncService {
    /// A service with no methods yet.
    pub fn new(name: &str, version: u32) -> AsyncService {
        AsyncService::from(Service::new(name, version))
    }

    /// Adds a sync method taking `A` and returning `R` or an application error `E`; it runs on
    /// tokio's blocking pool (see [`AsyncService`]).
    pub fn method<A, R, E, F>(mut self, name: &str, f: F) -> AsyncService
    where
        A: DeserializeOwned,
        R: Serialize,
        E: fmt::Display,
        F: Fn(A) -> Result<R, E> + Send + Sync + 'static,
    {
        self.async_methods.remove(name);
        self.base = self.base.method(name, f);
        self
    }

    /// Adds a sync method whose handler also sees the [`CallContext`].
    pub fn method_ctx<A, R, E, F>(mut self, name: &str, f: F) -> AsyncService
    where
        A: DeserializeOwned,
        R: Serialize,
        E: fmt::Display,
        F: Fn(&CallContext, A) -> Result<R, E> + Send + Sync + 'static,
    {
        self.async_methods.remove(name);
        self.base = self.base.method_ctx(name, f);
        self
    }

    /// Adds an async method: `f(args, ctx)` returns the future computing the result. The
    /// future runs as a task on the runtime serving the service (it must not block); it is
    /// dropped when the call's deadline passes or the caller's connection ends.
    pub fn method_async<A, R, E, F, Fut>(mut self, name: &str, f: F) -> AsyncService
    where
        A: DeserializeOwned,
        R: Serialize,
        E: fmt::Display,
        F: Fn(A, CallContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        let h: AsyncHandler = Arc::new(move |ctx, bytes| {
            let args: A = match postcard::from_bytes(&bytes) {
                Ok(a) => a,
                Err(e) => return Box::pin(std::future::ready(Outcome::BadArgs(e.to_string()))),
            };
            let fut = f(args, ctx);
            Box::pin(async move {
                match fut.await {
                    Ok(r) => match postcard::to_allocvec(&r) {
                        Ok(b) => Outcome::Ok(b),
                        Err(e) => {
                            Outcome::App(format!("the server could not encode the result: {e}"))
                        }
                    },
                    Err(e) => Outcome::App(e.to_string()),
                }
            })
        });
        self.base.methods.remove(name);
        self.async_methods.insert(name.to_owned(), h);
        self
    }

    /// Sets the authorisation hook (see [`Service::authorize`]).
    pub fn authorize(mut self, f: impl Fn(&Peer) -> bool + Send + Sync + 'static) -> AsyncService {
        self.base = self.base.authorize(f);
        self
    }

    /// Which users may call over Unix sockets (default: our own uid only; see
    /// [`crate::trust`]): another user's client is refused in the handshake
    /// ([`super::RpcError::Denied`] on its side, saying why).
    pub fn trust(mut self, trust: Trust) -> AsyncService {
        self.base = self.base.trust(trust);
        self
    }

    /// The largest request accepted (default 16 MiB).
    pub fn max_request_len(mut self, n: usize) -> AsyncService {
        self.base = self.base.max_request_len(n);
        self
    }

    /// How many calls of one connection run at once (default 1024); past it the server stops
    /// reading that connection until a call finishes.
    pub fn max_in_flight(mut self, n: usize) -> AsyncService {
        self.max_in_flight = n.max(1);
        self
    }

    /// Starts serving at `addr` (`unix:@NAME`, `unix:PATH`, `tcp:HOST:PORT`, `shm:/NAME`) on
    /// the current tokio runtime: natively over Unix sockets and TCP, through a bridge thread
    /// over shared memory (see [`AsyncService`]). Must be called from inside a
    /// runtime. The returned handle stops the server when dropped, or gracefully with
    /// [`AsyncRunningService::shutdown`].
    pub async fn serve_async(self, addr: &str) -> Result<AsyncRunningService, pattern::Error> {
        let parsed = LinkAddr::parse(addr)?;
        if matches!(parsed, LinkAddr::Shm(_)) {
            return self.serve_bridge(addr);
        }
        let shared = self.shared();
        serve_native(addr, &parsed, shared)
    }

    /// Starts serving over TLS at `addr` (`tcp:HOST:PORT`) with the server configuration
    /// `config`, natively on tokio (tokio-rustls; needs the `tls` and `tokio` features): the
    /// same policy as [`Service::serve_tls`] with the same configuration (see
    /// [`crate::pattern::tls::server_config`]): the server presents its certificate, and
    /// clients must present one signed by the client roots when the configuration has them.
    /// Each handshake runs in its connection's task (at most
    /// [`crate::pattern::tls::HANDSHAKE_TIMEOUT`]); a client that fails it is dropped alone.
    /// Sync clients ([`super::RpcClient::connect_tls`]) and async ones
    /// ([`super::AsyncRpcClient::connect_tls`]) both call it.
    #[cfg(feature = "tls")]
    pub async fn serve_tls_async(
        self,
        addr: &str,
        config: Arc<rustls::ServerConfig>,
    ) -> Result<AsyncRunningService, pattern::Error> {
        let parsed = LinkAddr::parse(addr)?;
        if !matches!(parsed, LinkAddr::Tcp(_)) {
            return Err(pattern::Error::InvalidAddress {
                addr: addr.to_owned(),
                reason: "TLS runs over TCP: use tcp:HOST:PORT".into(),
            });
        }
        let mut shared = self.shared();
        shared.tls = Some(tokio_rustls::TlsAcceptor::from(config));
        serve_native(addr, &parsed, shared)
    }

    fn shared(self) -> Shared {
        let mut methods: HashMap<String, Method> = self
            .base
            .methods
            .iter()
            .map(|(k, h)| (k.clone(), Method::Sync(h.handler.clone())))
            .collect();
        for (k, h) in self.async_methods {
            methods.insert(k, Method::Async(h));
        }
        Shared {
            service: self.base.name,
            version: self.base.version,
            methods,
            authorize: self.base.authorize,
            trust: self.base.trust,
            max_request_len: self.base.max_request_len,
            max_in_flight: self.max_in_flight,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    fn serve_bridge(self, addr: &str) -> Result<AsyncRunningService, pattern::Error> {
        let mut opts = ServerOptions::new(&self.base.name, self.base.version);
        opts.authorize = self.base.authorize.clone();
        opts.trust = self.base.trust.clone();
        opts.max_request_len = self.base.max_request_len;
        opts.queue_len = self.max_in_flight;
        let server = Server::bind(addr, opts)?;
        let addr = server.addr().clone();
        let shared = Arc::new(self.shared());
        let (tx, rx) = mpsc::channel(shared.max_in_flight);
        let bridge_stop = Arc::new(AtomicBool::new(false));
        let s = bridge_stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("ipcx-rpc-bridge-{}", shared.service))
            .spawn(move || {
                while !s.load(Ordering::SeqCst) {
                    match server.recv_timeout(Duration::from_millis(100)) {
                        Ok(req) => {
                            if tx.blocking_send(req).is_err() {
                                return;
                            }
                        }
                        Err(pattern::Error::Timeout) => {}
                        Err(_) => return,
                    }
                }
            })
            .map_err(|source| pattern::Error::Io {
                context: "spawning the RPC bridge thread".into(),
                source,
            })?;
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(bridge_loop(
            rx,
            shared,
            stop_rx,
            bridge_stop.clone(),
            thread,
        ));
        Ok(AsyncRunningService {
            addr,
            stop,
            task: Some(task),
            bridge_stop: Some(bridge_stop),
        })
    }
}

/// Binds `addr` (Unix socket or TCP) and serves it natively on the current runtime.
fn serve_native(
    addr: &str,
    parsed: &LinkAddr,
    shared: Shared,
) -> Result<AsyncRunningService, pattern::Error> {
    // The handshake applies the service's trust and tells a refused client why.
    let listener = match parsed.bind_with_trust(Trust::any_user())? {
        LinkListener::Unix(l) => Listener::Unix(AsyncUnixListener::from_listener(l)?),
        LinkListener::Tcp(l) => {
            let l = std::net::TcpListener::from(std::os::fd::OwnedFd::from(l));
            let io = |source| pattern::Error::Io {
                context: "registering a TCP listener with tokio".into(),
                source,
            };
            l.set_nonblocking(true).map_err(io)?;
            Listener::Tcp(tokio::net::TcpListener::from_std(l).map_err(io)?)
        }
        other => {
            return Err(pattern::Error::InvalidAddress {
                addr: addr.to_owned(),
                reason: format!("no native async listener for {other:?}"),
            });
        }
    };
    let addr = listener.local_addr()?;
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, Arc::new(shared), stop_rx));
    Ok(AsyncRunningService {
        addr,
        stop,
        task: Some(task),
        bridge_stop: None,
    })
}

/// An async service being served. Dropping it stops the server at once (calls in progress
/// are abandoned); [`AsyncRunningService::shutdown`] stops it gracefully.
#[derive(Debug)]
pub struct AsyncRunningService {
    addr: LinkAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    bridge_stop: Option<Arc<AtomicBool>>,
}

impl AsyncRunningService {
    /// The address served (for TCP, with the port the kernel chose for port 0).
    pub fn addr(&self) -> &LinkAddr {
        &self.addr
    }

    /// Whether connections are served natively on tokio sockets (Unix sockets, TCP, TLS),
    /// rather than through the bridge thread (shared memory).
    pub fn is_native(&self) -> bool {
        self.bridge_stop.is_none()
    }

    /// Stops gracefully: stops accepting connections (the address is freed) and reading
    /// requests, lets the calls in progress finish and send their replies, then closes every
    /// connection (clients see it end). Calls without a deadline may keep it waiting: see
    /// [`AsyncRunningService::shutdown_timeout`].
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// Stops gracefully, as [`AsyncRunningService::shutdown`] does, but abandons the calls
    /// still running after `grace`. Returns whether everything finished in time.
    pub async fn shutdown_timeout(mut self, grace: Duration) -> bool {
        let _ = self.stop.send(true);
        let Some(mut t) = self.task.take() else {
            return true;
        };
        match tokio::time::timeout(grace, &mut t).await {
            Ok(_) => true,
            Err(_) => {
                t.abort();
                let _ = t.await;
                false
            }
        }
    }
}

impl Drop for AsyncRunningService {
    fn drop(&mut self) {
        if let Some(s) = &self.bridge_stop {
            s.store(true, Ordering::SeqCst);
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

#[derive(Clone)]
enum Method {
    Sync(Handler),
    Async(AsyncHandler),
}

struct Shared {
    service: String,
    version: u32,
    methods: HashMap<String, Method>,
    authorize: Option<Authorize>,
    /// Whose Unix connections the handshake accepts.
    trust: Trust,
    max_request_len: usize,
    max_in_flight: usize,
    /// Set: every TCP connection starts with a TLS handshake.
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// An accepted connection, before any TLS handshake.
enum Accepted {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

impl Accepted {
    /// Runs the TLS handshake when the server speaks TLS, and splits the stream.
    async fn open(self, shared: &Shared, peer: &mut Peer) -> Option<(BoxRead, BoxWrite)> {
        match self {
            Accepted::Unix(s) => {
                let (r, w) = s.into_split();
                Some((Box::new(r), Box::new(w)))
            }
            Accepted::Tcp(s) => {
                #[cfg(feature = "tls")]
                if let Some(acceptor) = &shared.tls {
                    peer.name = peer.name.replacen("tcp peer", "tls peer", 1);
                    // A client that fails the handshake is dropped alone (rustls has sent it
                    // the alert saying why).
                    let s = crate::pattern::tls::accept_async(s, acceptor, &peer.name)
                        .await
                        .ok()?;
                    let (r, w) = tokio::io::split(s);
                    return Some((Box::new(r), Box::new(w)));
                }
                let _ = (shared, peer);
                let (r, w) = s.into_split();
                Some((Box::new(r), Box::new(w)))
            }
        }
    }
}

enum Listener {
    Unix(AsyncUnixListener),
    Tcp(tokio::net::TcpListener),
}

impl Listener {
    fn local_addr(&self) -> Result<LinkAddr, pattern::Error> {
        match self {
            Listener::Unix(l) => Ok(LinkAddr::Unix(l.local_addr().clone())),
            Listener::Tcp(l) => {
                let a = l.local_addr().map_err(|source| pattern::Error::Io {
                    context: "reading the TCP listener's address".into(),
                    source,
                })?;
                Ok(LinkAddr::Tcp(a.to_string()))
            }
        }
    }

    async fn accept(&self) -> Result<(Accepted, Peer), pattern::Error> {
        match self {
            Listener::Unix(l) => {
                let (s, cred) = l.accept().await?;
                let peer = Peer {
                    credentials: Some(cred),
                    name: format!("unix peer pid {} uid {}", cred.pid, cred.uid),
                };
                Ok((Accepted::Unix(s), peer))
            }
            Listener::Tcp(l) => {
                let (s, a) = l.accept().await.map_err(|source| pattern::Error::Io {
                    context: "accepting a TCP connection".into(),
                    source,
                })?;
                let _ = s.set_nodelay(true);
                let peer = Peer {
                    credentials: None,
                    name: format!("tcp peer {a}"),
                };
                Ok((Accepted::Tcp(s), peer))
            }
        }
    }
}

/// Resolves when the server is told to stop (or its handle is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The first pause after a failed accept (out of descriptors and the like); each further
/// failure doubles it, up to [`MAX_ACCEPT_PAUSE`], and a successful accept resets it.
const MIN_ACCEPT_PAUSE: Duration = Duration::from_millis(10);
const MAX_ACCEPT_PAUSE: Duration = Duration::from_secs(1);

async fn accept_loop(listener: Listener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    let mut pause = MIN_ACCEPT_PAUSE;
    loop {
        tokio::select! {
            got = listener.accept() => match got {
                Ok((conn, peer)) => {
                    pause = MIN_ACCEPT_PAUSE;
                    conns.spawn(serve_conn(conn, peer, shared.clone(), stop.clone()));
                }
                // Out of descriptors and the like: do not spin, keep serving the connections
                // there are, and try again after a pause that grows while it lasts.
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_ACCEPT_PAUSE);
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = stopped(&mut stop) => break,
        }
    }
    // Free the address first, then let the connections finish their calls.
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// Encodes a frame with its length prefix. Replies larger than a client accepts are turned
/// into an application error saying so, rather than breaking the connection.
fn frame_bytes(f: &Frame) -> Vec<u8> {
    let body = f.encode();
    match framing::encode_frame(&body, framing::DEFAULT_MAX_FRAME_LEN) {
        Ok(b) => b,
        Err(_) => {
            let id = match f {
                Frame::Reply { id, .. } => *id,
                _ => 0,
            };
            let msg = format!(
                "the result of {} bytes is larger than a client accepts ({} bytes)",
                body.len(),
                framing::DEFAULT_MAX_FRAME_LEN
            );
            let f = Frame::Reply {
                id,
                status: Status::AppError,
                payload: msg.into_bytes(),
            };
            framing::encode_frame(&f.encode(), framing::DEFAULT_MAX_FRAME_LEN).unwrap_or_default()
        }
    }
}

/// Reads until the decoder holds a whole frame: `Ok(None)` at end of stream.
async fn read_frame(
    r: &mut BoxRead,
    dec: &mut FrameDecoder,
    buf: &mut [u8],
) -> Result<Option<Vec<u8>>, ()> {
    loop {
        if let Some(f) = dec.next_frame().map_err(|_| ())? {
            return Ok(Some(f));
        }
        match r.read(buf).await {
            Ok(0) => return Ok(None),
            Ok(n) => dec.extend(&buf[..n]),
            Err(_) => return Err(()),
        }
    }
}

/// Serves one connection: handshake, then requests until the client leaves or the server
/// stops.
async fn serve_conn(
    conn: Accepted,
    mut peer: Peer,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let Some((mut r, mut w)) = conn.open(&shared, &mut peer).await else {
        return;
    };
    let mut dec = FrameDecoder::new(shared.max_request_len);
    let mut buf = vec![0u8; READ_CHUNK];
    let hello =
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, read_frame(&mut r, &mut dec, &mut buf)).await
        {
            Ok(Ok(Some(f))) => match Frame::decode(&f) {
                Ok(Frame::Hello(h)) => h,
                _ => return,
            },
            _ => return,
        };
    let answer = match reqrep::check_hello(
        &hello,
        &shared.service,
        shared.version,
        shared.authorize.as_ref(),
        &shared.trust,
        &peer,
    ) {
        Ok(()) => Frame::Welcome {
            max_frame: u32::try_from(shared.max_request_len).unwrap_or(u32::MAX),
        },
        Err((reason, message)) => Frame::Refused {
            reason,
            protocol: reqrep::PROTOCOL_VERSION,
            version: shared.version,
            message,
        },
    };
    let refused = matches!(answer, Frame::Refused { .. });
    let sent = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        w.write_all(&frame_bytes(&answer)).await?;
        // A TLS stream may hold the record until flushed.
        w.flush().await
    })
    .await;
    if refused || !matches!(sent, Ok(Ok(()))) {
        return;
    }

    // Replies go through one writer task, so that each is written whole. A call counts as in
    // flight until its reply is queued, so a client that does not read its replies stops
    // being read (rather than making the server buffer without bound).
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(shared.max_in_flight);
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if w.write_all(&b).await.is_err() {
                return;
            }
            // Replies queued meanwhile go out before the flush (which TLS needs).
            if rx.is_empty() && w.flush().await.is_err() {
                return;
            }
        }
        let _ = w.shutdown().await;
    });
    let gone = Arc::new(AtomicBool::new(false));
    let mut calls = JoinSet::new();
    let graceful = loop {
        match dec.next_frame() {
            Ok(Some(f)) => {
                let Ok(Frame::Request {
                    id,
                    deadline_ms,
                    method,
                    payload,
                }) = Frame::decode(&f)
                else {
                    // Garbage: this connection ends, the rest of the server is unaffected.
                    break false;
                };
                let deadline = (deadline_ms > 0)
                    .then(|| {
                        Instant::now().checked_add(Duration::from_millis(u64::from(deadline_ms)))
                    })
                    .flatten();
                let (shared, tx) = (shared.clone(), tx.clone());
                let call = Call {
                    method,
                    payload,
                    deadline,
                    credentials: peer.credentials,
                    gone: gone.clone(),
                };
                calls.spawn(async move {
                    let (status, payload) = call.run(&shared).await;
                    let reply = frame_bytes(&Frame::Reply {
                        id,
                        status,
                        payload,
                    });
                    let _ = tx.send(reply).await;
                });
                continue;
            }
            Ok(None) => {}
            Err(_) => break false,
        }
        if calls.len() >= shared.max_in_flight {
            tokio::select! {
                _ = calls.join_next() => continue,
                _ = stopped(&mut stop) => break true,
            }
        }
        tokio::select! {
            n = r.read(&mut buf) => match n {
                Ok(0) | Err(_) => break false,
                Ok(n) => dec.extend(&buf[..n]),
            },
            Some(_) = calls.join_next(), if !calls.is_empty() => {}
            _ = stopped(&mut stop) => break true,
        }
    };
    if graceful {
        while calls.join_next().await.is_some() {}
    } else {
        // The caller is gone (or spoke garbage): nobody reads the results.
        gone.store(true, Ordering::Relaxed);
        calls.abort_all();
        while calls.join_next().await.is_some() {}
    }
    drop(tx);
    let _ = writer.await;
}

/// One call, ready to run.
struct Call {
    method: String,
    payload: Vec<u8>,
    deadline: Option<Instant>,
    credentials: Option<crate::socket::Credentials>,
    gone: Arc<AtomicBool>,
}

impl Call {
    /// Runs the call to its reply: status and payload.
    async fn run(self, shared: &Shared) -> (Status, Vec<u8>) {
        let Some(m) = shared.methods.get(&self.method).cloned() else {
            return (Status::UnknownMethod, Vec::new());
        };
        let ctx = CallContext {
            method: self.method,
            deadline: self.deadline,
            credentials: self.credentials,
            gone: self.gone,
        };
        if ctx.expired() {
            return (Status::DeadlineExceeded, Vec::new());
        }
        let payload = self.payload;
        let out = match m {
            Method::Sync(h) => {
                let c = ctx.clone();
                match tokio::task::spawn_blocking(move || {
                    // It may have waited for a blocking thread: a call whose deadline passed
                    // meanwhile is not started.
                    if c.expired() {
                        return None;
                    }
                    Some(catch_unwind(AssertUnwindSafe(|| h(&c, &payload))))
                })
                .await
                {
                    Ok(Some(out)) => out,
                    Ok(None) => return (Status::DeadlineExceeded, Vec::new()),
                    // The runtime is shutting down.
                    Err(_) => return (Status::Unavailable, Vec::new()),
                }
            }
            Method::Async(h) => match catch_unwind(AssertUnwindSafe(|| h(ctx.clone(), payload))) {
                Err(p) => Err(p),
                Ok(fut) => {
                    let fut = CatchUnwind(fut);
                    match ctx.deadline {
                        None => fut.await,
                        Some(d) => {
                            let d = tokio::time::Instant::from_std(d);
                            match tokio::time::timeout_at(d, fut).await {
                                Ok(out) => out,
                                Err(_) => return (Status::DeadlineExceeded, Vec::new()),
                            }
                        }
                    }
                }
            },
        };
        reply_of(out, &ctx)
    }
}

/// Polls a handler's future, turning a panic into an `Err` with the panic's payload.
struct CatchUnwind(BoxFuture);

impl Future for CatchUnwind {
    type Output = Result<Outcome, Box<dyn std::any::Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(o)) => Poll::Ready(Ok(o)),
            Err(p) => Poll::Ready(Err(p)),
        }
    }
}

/// Runs the requests the bridge thread hands over (shared memory).
async fn bridge_loop(
    mut rx: mpsc::Receiver<reqrep::Request>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    bridge_stop: Arc<AtomicBool>,
    thread: ThreadHandle<()>,
) {
    let mut calls = JoinSet::new();
    loop {
        tokio::select! {
            req = rx.recv() => match req {
                Some(mut req) => {
                    let call = Call {
                        method: req.method.clone(),
                        payload: std::mem::take(&mut req.payload),
                        deadline: req.deadline,
                        credentials: req.peer.credentials,
                        gone: req.caller_gone_flag(),
                    };
                    let shared = shared.clone();
                    calls.spawn(async move {
                        let (status, payload) = call.run(&shared).await;
                        let _ = tokio::task::spawn_blocking(move || req.reply(status, &payload))
                            .await;
                    });
                }
                None => break,
            },
            Some(_) = calls.join_next(), if !calls.is_empty() => {}
            _ = stopped(&mut stop) => break,
        }
    }
    // Stop taking requests (the thread drops the server: the address is freed and the
    // connections close once the calls below have answered).
    bridge_stop.store(true, Ordering::SeqCst);
    rx.close();
    while calls.join_next().await.is_some() {}
    // Requests the thread handed over meanwhile are dropped unanswered.
    while rx.try_recv().is_ok() {}
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
}
