//! Typed RPC: services defined once as a set of named methods, called with serde types,
//! with a deadline on every call.
//!
//! ```no_run
//! use ipcx::rpc::{Service, RpcClient, RpcError};
//! use std::time::Duration;
//! // server process
//! let server = Service::new("calc", 1)
//!     .method("add", |args: (i32, i32)| Ok::<_, String>(args.0 + args.1))
//!     .method("div", |args: (i32, i32)| {
//!         if args.1 == 0 { Err("division by zero".to_string()) } else { Ok(args.0 / args.1) }
//!     })
//!     .serve("unix:@calc")?;
//! // client process
//! let client = RpcClient::connect("unix:@calc", "calc", 1, Duration::from_secs(5))?;
//! let sum: i32 = client.call("add", &(1, 2), Duration::from_secs(1))?;
//! assert_eq!(sum, 3);
//! match client.call::<_, i32>("div", &(1, 0), Duration::from_secs(1)) {
//!     Err(RpcError::Remote { message, .. }) => assert_eq!(message, "division by zero"),
//!     other => panic!("{other:?}"),
//! }
//! # drop(server);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! * **Wire**: arguments and results are postcard-encoded serde values inside
//!   [`reqrep`] frames; the connection starts with a versioned
//!   handshake (protocol version, service name, service version): a mismatch fails at connect
//!   with [`RpcError::VersionMismatch`] (or [`RpcError::WrongService`]) saying both versions.
//! * **Deadlines**: every call has one. Past it the call fails with [`RpcError::Timeout`]; the
//!   server does not start a call whose deadline passed, and handlers registered with
//!   [`Service::method_ctx`] see it ([`CallContext::deadline`], [`CallContext::expired`]) and
//!   can stop early.
//! * **Robust server**: each call runs under `catch_unwind`: a panicking handler answers
//!   [`RpcError::HandlerPanicked`] and the server goes on; malformed frames and oversize
//!   requests end only the offending connection; a client that vanishes mid-call costs the
//!   server nothing but the work of that call, and handlers can notice it
//!   ([`CallContext::caller_gone`], [`CallContext::cancelled`]) and stop early.
//! * **Authorisation**: [`Service::authorize`] sees each connecting peer's kernel-verified
//!   uid/gid/pid (Unix sockets) and may refuse it ([`RpcError::Denied`]).
//! * **Transports**: Unix sockets (`unix:PATH`, `unix:@NAME`), TCP (`tcp:HOST:PORT`) and
//!   shared-memory rings (`shm:/NAME`: a pair of rings per connection, set up through a
//!   handshake on an abstract Unix socket that also gives the server the client's
//!   credentials; see [`crate::pattern::shmlink`]);
//!   with the `tls` feature, TLS over TCP ([`Service::serve_tls`], [`RpcClient::connect_tls`]):
//!   the client always verifies the server's certificate, and the server can require client
//!   certificates (see [`crate::pattern::tls`]).
//! * **Async**: with the `tokio` feature, [`AsyncRpcClient`] offers `async fn call`: native
//!   over Unix sockets and TCP (a tokio socket, reader and writer tasks, no blocking pool);
//!   over shared memory and TLS the blocking client runs on tokio's blocking pool.
//!   [`AsyncService`] serves async handlers (and sync ones) from inside a tokio runtime:
//!   natively over Unix sockets and TCP, through a bridge thread over shared memory and TLS
//!   (see [`AsyncService`]). Sync and async clients and servers all speak the same protocol.
//!   A thread-based server ([`Service::serve`]) also runs fine inside an async program (it
//!   does not block the runtime).

use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::pattern::reqrep::{
    self, Client, ConnectError, Peer, Refusal, Request, Server, ServerOptions, Status,
};
use crate::pattern::{self, LinkAddr};
use crate::socket::Credentials;
use crate::wait::Wait;

#[cfg(feature = "tokio")]
mod asynch;
#[cfg(feature = "tokio")]
pub use asynch::{AsyncRunningService, AsyncService};

/// Why a call (or connecting) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The handler returned an error: the remote application's message.
    #[error("remote error in {method}: {message}")]
    Remote {
        /// The method.
        method: String,
        /// The handler's error, as text.
        message: String,
    },
    /// The deadline passed (on the client, or on the server before the handler started).
    #[error("call to {method} timed out")]
    Timeout {
        /// The method.
        method: String,
    },
    /// A value could not be decoded (the reply on the client, or the arguments on the
    /// server: then `remote` is true): the two sides disagree on the method's types.
    #[error("could not decode {what} of {method}: {detail}")]
    Decode {
        /// The method.
        method: String,
        /// `arguments` or `result`.
        what: &'static str,
        /// Whether the server reported it.
        remote: bool,
        /// The decoder's message.
        detail: String,
    },
    /// The server is gone (closed the connection, died).
    #[error("server gone: {what}")]
    PeerGone {
        /// What happened.
        what: String,
    },
    /// The server has no such method.
    #[error("service {service:?} has no method {method:?}")]
    UnknownMethod {
        /// The service.
        service: String,
        /// The method.
        method: String,
    },
    /// Client and server speak different versions (wire protocol or service).
    #[error("version mismatch: {message}")]
    VersionMismatch {
        /// Ours.
        client: u32,
        /// Theirs.
        server: u32,
        /// The server's explanation.
        message: String,
    },
    /// The server serves another service.
    #[error("wrong service: {message}")]
    WrongService {
        /// The server's explanation.
        message: String,
    },
    /// The server's authorisation hook refused this client.
    #[error("permission denied: {message}")]
    Denied {
        /// The server's explanation.
        message: String,
    },
    /// The handler panicked; the server is still running.
    #[error("the handler of {method} panicked: {message}")]
    HandlerPanicked {
        /// The method.
        method: String,
        /// The panic message.
        message: String,
    },
    /// The arguments are larger than the server accepts.
    #[error("arguments of {len} bytes are too large: the server accepts at most {max}")]
    TooLarge {
        /// Encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The TLS handshake failed or the TLS session broke: an untrusted server certificate, a
    /// client certificate the server requires but did not get or did not trust... (feature
    /// `tls`).
    #[error("TLS failed: {message}")]
    Tls {
        /// What went wrong and what to do.
        message: String,
    },
    /// Any other transport failure (nobody listening, protocol garbage...).
    #[error(transparent)]
    Transport(pattern::Error),
}

impl RpcError {
    fn from_transport(method: &str, e: pattern::Error) -> RpcError {
        match e {
            pattern::Error::Timeout => RpcError::Timeout {
                method: method.into(),
            },
            pattern::Error::PeerGone { what } | pattern::Error::Closed { what } => {
                RpcError::PeerGone { what }
            }
            pattern::Error::TooLarge { len, max, .. } => RpcError::TooLarge { len, max },
            e @ pattern::Error::Tls { .. } => RpcError::Tls {
                message: e.to_string(),
            },
            other => RpcError::Transport(other),
        }
    }
}

/// What a handler knows about its call.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CallContext {
    /// The method.
    pub method: String,
    /// When the caller stops waiting.
    pub deadline: Option<Instant>,
    /// The caller's kernel-verified credentials (Unix sockets).
    pub credentials: Option<Credentials>,
    gone: Arc<AtomicBool>,
}

impl CallContext {
    /// Whether the caller's connection has ended (it closed it or died) while the call runs:
    /// nobody will read the result, so stop working. Noticed within about 250 ms.
    pub fn caller_gone(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }

    /// Whether to stop: the deadline passed or the caller is gone.
    pub fn cancelled(&self) -> bool {
        self.expired() || self.caller_gone()
    }

    /// Whether the caller has stopped waiting: stop working when it has.
    pub fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }
}

/// What a handler produced: the encoded result, an application error, or arguments that did
/// not decode.
pub(crate) enum Outcome {
    Ok(Vec<u8>),
    App(String),
    BadArgs(String),
}

type Handler = Arc<dyn Fn(&CallContext, &[u8]) -> Outcome + Send + Sync>;

/// A service definition: a name, a version and methods.
#[derive(Clone)]
pub struct Service {
    name: String,
    version: u32,
    methods: HashMap<String, Handler>,
    authorize: Option<reqrep::Authorize>,
    threads: usize,
    max_request_len: usize,
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m: Vec<_> = self.methods.keys().collect();
        m.sort();
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("methods", &m)
            .finish()
    }
}

impl Service {
    /// A service with no methods yet.
    pub fn new(name: &str, version: u32) -> Service {
        Service {
            name: name.to_owned(),
            version,
            methods: HashMap::new(),
            authorize: None,
            threads: 4,
            max_request_len: crate::framing::DEFAULT_MAX_FRAME_LEN,
        }
    }

    /// Adds a method taking `A` and returning `R` or an application error `E`.
    pub fn method<A, R, E, F>(self, name: &str, f: F) -> Service
    where
        A: DeserializeOwned,
        R: Serialize,
        E: fmt::Display,
        F: Fn(A) -> Result<R, E> + Send + Sync + 'static,
    {
        self.method_ctx(name, move |_ctx: &CallContext, a: A| f(a))
    }

    /// Adds a method whose handler also sees the [`CallContext`] (deadline, caller).
    pub fn method_ctx<A, R, E, F>(mut self, name: &str, f: F) -> Service
    where
        A: DeserializeOwned,
        R: Serialize,
        E: fmt::Display,
        F: Fn(&CallContext, A) -> Result<R, E> + Send + Sync + 'static,
    {
        let h: Handler = Arc::new(move |ctx, bytes| {
            let args: A = match postcard::from_bytes(bytes) {
                Ok(a) => a,
                Err(e) => return Outcome::BadArgs(e.to_string()),
            };
            match f(ctx, args) {
                Ok(r) => match postcard::to_allocvec(&r) {
                    Ok(b) => Outcome::Ok(b),
                    Err(e) => Outcome::App(format!("the server could not encode the result: {e}")),
                },
                Err(e) => Outcome::App(e.to_string()),
            }
        });
        self.methods.insert(name.to_owned(), h);
        self
    }

    /// Sets the authorisation hook: called once per connecting client with its
    /// kernel-verified credentials (Unix sockets; `None` over TCP); `false` refuses it.
    pub fn authorize(mut self, f: impl Fn(&Peer) -> bool + Send + Sync + 'static) -> Service {
        self.authorize = Some(Arc::new(f));
        self
    }

    /// How many calls of one connection run at once (threads serving one connection;
    /// default 4). Each call runs on the thread that read it from the connection.
    pub fn threads(mut self, n: usize) -> Service {
        self.threads = n.max(1);
        self
    }

    /// The largest request accepted (default 16 MiB).
    pub fn max_request_len(mut self, n: usize) -> Service {
        self.max_request_len = n;
        self
    }

    /// Starts serving at `addr` (`unix:@NAME`, `unix:PATH`, `tcp:HOST:PORT`, `shm:/NAME`) on background
    /// threads; the returned handle stops the server when dropped.
    pub fn serve(self, addr: &str) -> Result<RunningService, pattern::Error> {
        self.serve_with(addr, None)
    }

    /// Starts serving over TLS at `addr` (`tcp:HOST:PORT`) with the server configuration
    /// `config` (see [`crate::pattern::tls::server_config`]: the server's certificate and
    /// key, and the client roots when clients must present certificates). Each handshake runs
    /// on its connection's own thread; a client that fails it is dropped alone.
    #[cfg(feature = "tls")]
    pub fn serve_tls(
        self,
        addr: &str,
        config: Arc<rustls::ServerConfig>,
    ) -> Result<RunningService, pattern::Error> {
        if !matches!(LinkAddr::parse(addr)?, LinkAddr::Tcp(_)) {
            return Err(pattern::Error::InvalidAddress {
                addr: addr.to_owned(),
                reason: "TLS runs over TCP: use tcp:HOST:PORT".into(),
            });
        }
        let up: reqrep::Upgrade =
            Arc::new(move |link| crate::pattern::tls::accept(link, config.clone()));
        self.serve_with(addr, Some(up))
    }

    fn serve_with(
        self,
        addr: &str,
        upgrade: Option<reqrep::Upgrade>,
    ) -> Result<RunningService, pattern::Error> {
        let mut opts = ServerOptions::new(&self.name, self.version);
        opts.upgrade = upgrade;
        opts.authorize = self.authorize.clone();
        opts.max_request_len = self.max_request_len;
        opts.threads_per_connection = self.threads;
        // Each call runs on the thread that read it (see `reqrep`'s "Serving").
        let svc = Arc::new(self);
        opts.handler = Some(Arc::new(move |req| svc.dispatch(req)));
        let server = Arc::new(Server::bind(addr, opts)?);
        let stop = Arc::new(AtomicBool::new(false));
        let workers = Vec::new();
        Ok(RunningService {
            addr: server.addr().clone(),
            stop,
            workers,
            _server: server,
        })
    }

    fn dispatch(&self, req: Request) {
        let Some(h) = self.methods.get(&req.method).cloned() else {
            let _ = req.reply(Status::UnknownMethod, b"");
            return;
        };
        let ctx = CallContext {
            method: req.method.clone(),
            deadline: req.deadline,
            credentials: req.peer.credentials,
            gone: req.caller_gone_flag(),
        };
        let out = catch_unwind(AssertUnwindSafe(|| h(&ctx, &req.payload)));
        let (status, payload) = reply_of(out, &ctx);
        let _ = req.reply(status, &payload);
    }
}

/// A handler's outcome (or the payload of its panic) as the reply's status and payload. One
/// mapping for the thread-based server ([`Service`]) and the async one ([`AsyncService`]).
pub(crate) fn reply_of(
    out: Result<Outcome, Box<dyn std::any::Any + Send>>,
    ctx: &CallContext,
) -> (Status, Vec<u8>) {
    match out {
        Ok(Outcome::Ok(b)) => (Status::Ok, b),
        // A handler that gave up because the caller's deadline passed: the caller is told it
        // timed out.
        Ok(Outcome::App(_)) if ctx.expired() => (Status::DeadlineExceeded, Vec::new()),
        Ok(Outcome::App(m)) => (Status::AppError, m.into_bytes()),
        Ok(Outcome::BadArgs(m)) => (Status::BadRequest, m.into_bytes()),
        Err(p) => {
            let m = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            (Status::Panicked, m.into_bytes())
        }
    }
}

/// A service being served; dropping it stops the server (its address is freed, clients see
/// the connection end).
#[derive(Debug)]
pub struct RunningService {
    addr: LinkAddr,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    _server: Arc<Server>,
}

impl RunningService {
    /// The address served.
    pub fn addr(&self) -> &LinkAddr {
        &self.addr
    }

    /// Serves until the process ends (for server programs).
    pub fn run_forever(self) -> ! {
        loop {
            std::thread::park();
        }
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

/// The error a failed connection turns into.
fn connect_error(e: ConnectError, version: u32) -> RpcError {
    match e {
        ConnectError::Transport(t) => RpcError::from_transport("(connect)", t),
        ConnectError::Refused(r) => match r.reason {
            Refusal::ProtocolVersion => RpcError::VersionMismatch {
                client: u32::from(reqrep::PROTOCOL_VERSION),
                server: u32::from(r.server_protocol),
                message: r.message,
            },
            Refusal::ServiceVersion => RpcError::VersionMismatch {
                client: version,
                server: r.server_version,
                message: r.message,
            },
            Refusal::WrongService => RpcError::WrongService { message: r.message },
            _ => RpcError::Denied { message: r.message },
        },
        #[allow(unreachable_patterns)]
        other => RpcError::Transport(pattern::Error::Io {
            context: "connecting".into(),
            source: std::io::Error::other(other.to_string()),
        }),
    }
}

/// Turns a reply into the call's result.
fn decode_reply<R: DeserializeOwned>(
    method: &str,
    service: &str,
    reply: reqrep::Reply,
    args_len: usize,
    max: usize,
) -> Result<R, RpcError> {
    let text = || String::from_utf8_lossy(&reply.payload).into_owned();
    match reply.status {
        Status::Ok => postcard::from_bytes(&reply.payload).map_err(|e| RpcError::Decode {
            method: method.into(),
            what: "result",
            remote: false,
            detail: e.to_string(),
        }),
        Status::AppError => Err(RpcError::Remote {
            method: method.into(),
            message: text(),
        }),
        Status::UnknownMethod => Err(RpcError::UnknownMethod {
            service: service.to_owned(),
            method: method.into(),
        }),
        Status::BadRequest => Err(RpcError::Decode {
            method: method.into(),
            what: "arguments",
            remote: true,
            detail: text(),
        }),
        Status::DeadlineExceeded => Err(RpcError::Timeout {
            method: method.into(),
        }),
        Status::Panicked => Err(RpcError::HandlerPanicked {
            method: method.into(),
            message: text(),
        }),
        Status::TooLarge => Err(RpcError::TooLarge { len: args_len, max }),
        _ => Err(RpcError::PeerGone {
            what: "the server is unavailable".into(),
        }),
    }
}

/// A typed RPC client, cheap to clone and usable from many threads at once (calls are
/// multiplexed on one connection).
#[derive(Debug, Clone)]
pub struct RpcClient {
    inner: Client,
    service: String,
}

impl RpcClient {
    /// Connects to `addr` as a client of `service` version `version`.
    pub fn connect(
        addr: &str,
        service: &str,
        version: u32,
        timeout: Duration,
    ) -> Result<RpcClient, RpcError> {
        let r = Client::connect(addr, service, version, timeout);
        Self::finish_connect(r, service, version)
    }

    /// Connects to `addr` (`tcp:HOST:PORT`) over TLS: the server's certificate must be valid
    /// for `server_name` and signed by a root of `config` (see
    /// [`crate::pattern::tls::client_config`], which also sets a client certificate). An
    /// untrusted server, or a server that wants a client certificate this client lacks, is
    /// [`RpcError::Tls`].
    #[cfg(feature = "tls")]
    pub fn connect_tls(
        addr: &str,
        server_name: &str,
        config: Arc<rustls::ClientConfig>,
        service: &str,
        version: u32,
        timeout: Duration,
    ) -> Result<RpcClient, RpcError> {
        let link = crate::pattern::tls::connect(addr, server_name, config, timeout)
            .map_err(|e| RpcError::from_transport("(connect)", e))?;
        let hello = reqrep::Hello {
            protocol: reqrep::PROTOCOL_VERSION,
            service: service.to_owned(),
            version,
        };
        let r = Client::connect_link(link, addr, &hello, timeout);
        Self::finish_connect(r, service, version)
    }

    fn finish_connect(
        r: Result<Client, ConnectError>,
        service: &str,
        version: u32,
    ) -> Result<RpcClient, RpcError> {
        let inner = r.map_err(|e| connect_error(e, version))?;
        Ok(RpcClient {
            inner,
            service: service.to_owned(),
        })
    }

    /// Calls `method` with `args`, waiting at most `timeout` for the result.
    pub fn call<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
        timeout: Duration,
    ) -> Result<R, RpcError> {
        self.call_wait(method, args, Wait::timeout(timeout))
    }

    /// Calls `method`, waiting as `wait` allows ([`Wait::Forever`]: no deadline).
    pub fn call_wait<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
        wait: Wait,
    ) -> Result<R, RpcError> {
        let bytes = postcard::to_allocvec(args).map_err(|e| RpcError::Decode {
            method: method.into(),
            what: "arguments",
            remote: false,
            detail: e.to_string(),
        })?;
        let reply = self
            .inner
            .request_wait(method, &bytes, wait)
            .map_err(|e| RpcError::from_transport(method, e))?;
        let max = self.inner.max_payload_len(method);
        decode_reply(method, &self.service, reply, bytes.len(), max)
    }

    /// The raw request/reply client underneath.
    pub fn raw(&self) -> &Client {
        &self.inner
    }
}

/// An async RPC client (tokio). Over a Unix socket (`unix:PATH`, `unix:@NAME`) or TCP
/// (`tcp:HOST:PORT`) it is native: the connection is a tokio socket, a reader task routes each reply to its call and a writer
/// task sends whole requests (so dropping a call's future never leaves half a request on the
/// connection); nothing runs on the blocking pool. Over shared memory (`shm:/NAME`) each call
/// runs the blocking client on tokio's blocking pool. Either way many calls can be outstanding at
/// once on one connection.
#[cfg(feature = "tokio")]
#[derive(Debug, Clone)]
pub struct AsyncRpcClient {
    inner: AsyncKind,
}

#[cfg(feature = "tokio")]
#[derive(Debug, Clone)]
enum AsyncKind {
    Native(Arc<native::Conn>),
    Blocking(RpcClient),
}

#[cfg(feature = "tokio")]
impl AsyncRpcClient {
    /// Connects: natively over a Unix socket or TCP, on the blocking pool otherwise.
    pub async fn connect(
        addr: &str,
        service: &str,
        version: u32,
        timeout: Duration,
    ) -> Result<AsyncRpcClient, RpcError> {
        let parsed = LinkAddr::parse(addr).map_err(|e| RpcError::from_transport("(connect)", e))?;
        if matches!(parsed, LinkAddr::Unix(_) | LinkAddr::Tcp(_)) {
            let conn = native::Conn::connect(&parsed, addr, service, version, timeout)
                .await
                .map_err(|e| connect_error(e, version))?;
            return Ok(AsyncRpcClient {
                inner: AsyncKind::Native(conn),
            });
        }
        let (a, s) = (addr.to_owned(), service.to_owned());
        let inner =
            tokio::task::spawn_blocking(move || RpcClient::connect(&a, &s, version, timeout))
                .await
                .map_err(|e| RpcError::PeerGone {
                    what: format!("connect task failed: {e}"),
                })??;
        Ok(AsyncRpcClient {
            inner: AsyncKind::Blocking(inner),
        })
    }

    /// Calls `method` with `args`, waiting at most `timeout`.
    pub async fn call<A, R>(&self, method: &str, args: &A, timeout: Duration) -> Result<R, RpcError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let bytes = postcard::to_allocvec(args).map_err(|e| RpcError::Decode {
            method: method.into(),
            what: "arguments",
            remote: false,
            detail: e.to_string(),
        })?;
        match &self.inner {
            AsyncKind::Native(conn) => {
                let reply = conn
                    .request(method, &bytes, timeout)
                    .await
                    .map_err(|e| RpcError::from_transport(method, e))?;
                let max = conn.max_payload_len(method);
                decode_reply(method, &conn.service, reply, bytes.len(), max)
            }
            AsyncKind::Blocking(c) => {
                let (c, m) = (c.clone(), method.to_owned());
                let wait = Wait::timeout(timeout);
                tokio::task::spawn_blocking(move || {
                    c.call_wait::<RawArgs, R>(&m, &RawArgs(bytes), wait)
                })
                .await
                .map_err(|e| RpcError::PeerGone {
                    what: format!("call task failed: {e}"),
                })?
            }
        }
    }

    /// Whether calls run natively on tokio (Unix sockets, TCP) rather than on the blocking pool.
    pub fn is_native(&self) -> bool {
        matches!(self.inner, AsyncKind::Native(_))
    }
}

#[cfg(feature = "tokio")]
mod native {
    //! The native async request/reply client over a tokio Unix socket or TCP stream.

    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, Weak};
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::{mpsc, oneshot};

    use crate::framing::{self, FrameDecoder};
    use crate::pattern::Error;
    use crate::pattern::LinkAddr;
    use crate::pattern::reqrep::{self, ConnectError, Frame, Hello, Refused, Reply};

    use super::asynch::{BoxRead, BoxWrite};

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[derive(Debug)]
    pub(super) struct Conn {
        requests: mpsc::UnboundedSender<Vec<u8>>,
        pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
        dead: Mutex<Option<String>>,
        next_id: AtomicU64,
        max_frame: usize,
        addr: String,
        pub(super) service: String,
        reader: tokio::task::AbortHandle,
    }

    impl Drop for Conn {
        fn drop(&mut self) {
            self.reader.abort();
        }
    }

    async fn read_frame(
        r: &mut BoxRead,
        dec: &mut FrameDecoder,
        buf: &mut [u8],
    ) -> Result<Option<Vec<u8>>, Error> {
        loop {
            if let Some(f) = dec
                .next_frame()
                .map_err(|e| Error::from(crate::socket::SocketError::from(e)))?
            {
                return Ok(Some(f));
            }
            match r.read(buf).await {
                Ok(0) => return Ok(None),
                Ok(n) => dec.extend(&buf[..n]),
                Err(source) => {
                    return Err(Error::Io {
                        context: "receiving a reply".into(),
                        source,
                    });
                }
            }
        }
    }

    impl Conn {
        pub(super) async fn connect(
            a: &LinkAddr,
            addr: &str,
            service: &str,
            version: u32,
            timeout: Duration,
        ) -> Result<Arc<Conn>, ConnectError> {
            let hello = Hello {
                protocol: reqrep::PROTOCOL_VERSION,
                service: service.to_owned(),
                version,
            };
            let handshake = async {
                let (mut r, mut w) = super::asynch::connect_stream(a).await?;
                let frame = framing::encode_frame(
                    &Frame::Hello(hello).encode(),
                    framing::DEFAULT_MAX_FRAME_LEN,
                )
                .map_err(|e| Error::from(crate::socket::SocketError::from(e)))?;
                w.write_all(&frame).await.map_err(|source| Error::Io {
                    context: "sending the hello".into(),
                    source,
                })?;
                let mut dec = FrameDecoder::new(framing::DEFAULT_MAX_FRAME_LEN);
                let mut buf = vec![0u8; 64 * 1024];
                let f = read_frame(&mut r, &mut dec, &mut buf)
                    .await?
                    .ok_or_else(|| Error::PeerGone {
                        what: format!("the server at {addr} closed during the handshake"),
                    })?;
                Ok::<_, Error>((r, w, dec, buf, f))
            };
            let (r, w, dec, buf, f) = tokio::time::timeout(timeout, handshake)
                .await
                .map_err(|_| Error::Timeout)??;
            let max_frame = match Frame::decode(&f) {
                Ok(Frame::Welcome { max_frame }) => max_frame as usize,
                Ok(Frame::Refused {
                    reason,
                    protocol,
                    version,
                    message,
                }) => {
                    return Err(ConnectError::Refused(Refused {
                        reason,
                        server_protocol: protocol,
                        server_version: version,
                        message,
                    }));
                }
                _ => {
                    return Err(Error::Protocol {
                        peer: addr.to_owned(),
                        reason: "expected welcome or refusal".into(),
                    }
                    .into());
                }
            };
            let (tx, rx) = mpsc::unbounded_channel();
            let conn = Arc::new_cyclic(|weak: &Weak<Conn>| {
                let reader = tokio::spawn(read_replies(r, dec, buf, weak.clone())).abort_handle();
                Conn {
                    requests: tx,
                    pending: Mutex::new(HashMap::new()),
                    dead: Mutex::new(None),
                    next_id: AtomicU64::new(1),
                    max_frame,
                    addr: addr.to_owned(),
                    service: service.to_owned(),
                    reader,
                }
            });
            tokio::spawn(write_requests(w, rx, Arc::downgrade(&conn)));
            Ok(conn)
        }

        pub(super) fn max_payload_len(&self, method: &str) -> usize {
            self.max_frame.saturating_sub(15 + method.len())
        }

        fn set_dead(&self, why: String) {
            let mut d = lock(&self.dead);
            if d.is_none() {
                *d = Some(why);
            }
            drop(d);
            // Dropping the senders ends every waiting call.
            lock(&self.pending).clear();
        }

        fn gone(&self) -> Error {
            Error::PeerGone {
                what: lock(&self.dead)
                    .clone()
                    .unwrap_or_else(|| format!("the server at {} went away", self.addr)),
            }
        }

        pub(super) async fn request(
            &self,
            method: &str,
            payload: &[u8],
            timeout: Duration,
        ) -> Result<Reply, Error> {
            if method.len() > reqrep::MAX_NAME_LEN {
                return Err(Error::TooLarge {
                    len: method.len(),
                    max: reqrep::MAX_NAME_LEN,
                    what: "a method name".into(),
                });
            }
            let max = self.max_payload_len(method);
            if payload.len() > max {
                return Err(Error::TooLarge {
                    len: payload.len(),
                    max,
                    what: format!("requests to {} (the server's limit)", self.addr),
                });
            }
            if lock(&self.dead).is_some() {
                return Err(self.gone());
            }
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            lock(&self.pending).insert(id, tx);
            let deadline_ms = u32::try_from(timeout.as_millis().max(1)).unwrap_or(u32::MAX);
            let frame = Frame::Request {
                id,
                deadline_ms,
                method: method.to_owned(),
                payload: payload.to_vec(),
            }
            .encode();
            let frame = match framing::encode_frame(&frame, self.max_frame.max(frame.len())) {
                Ok(f) => f,
                Err(e) => {
                    lock(&self.pending).remove(&id);
                    return Err(crate::socket::SocketError::from(e).into());
                }
            };
            if self.requests.send(frame).is_err() {
                lock(&self.pending).remove(&id);
                return Err(self.gone());
            }
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(reply)) => Ok(reply),
                Ok(Err(_)) => Err(self.gone()),
                Err(_) => {
                    lock(&self.pending).remove(&id);
                    Err(Error::Timeout)
                }
            }
        }
    }

    async fn write_requests(
        mut w: BoxWrite,
        mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
        conn: Weak<Conn>,
    ) {
        while let Some(frame) = rx.recv().await {
            if let Err(e) = w.write_all(&frame).await {
                if let Some(c) = conn.upgrade() {
                    c.set_dead(format!("the connection to {} failed: {e}", c.addr));
                }
                return;
            }
        }
    }

    async fn read_replies(
        mut r: BoxRead,
        mut dec: FrameDecoder,
        mut buf: Vec<u8>,
        conn: Weak<Conn>,
    ) {
        loop {
            let got = read_frame(&mut r, &mut dec, &mut buf).await;
            let Some(c) = conn.upgrade() else { return };
            match got {
                Ok(Some(f)) => match Frame::decode(&f) {
                    Ok(Frame::Reply {
                        id,
                        status,
                        payload,
                    }) => {
                        if let Some(tx) = lock(&c.pending).remove(&id) {
                            let _ = tx.send(Reply { status, payload });
                        }
                    }
                    _ => {
                        return c.set_dead(format!(
                            "the server at {} sent an unexpected or malformed frame",
                            c.addr
                        ));
                    }
                },
                Ok(None) => {
                    return c.set_dead(format!("the server at {} closed the connection", c.addr));
                }
                Err(e) => {
                    return c.set_dead(format!("the connection to {} failed: {e}", c.addr));
                }
            }
        }
    }
}

/// Already-encoded arguments: serialised as the bytes themselves (postcard of a tuple struct
/// of `u8`s would add a length, so this writes them one by one).
#[cfg(feature = "tokio")]
struct RawArgs(Vec<u8>);

#[cfg(feature = "tokio")]
impl Serialize for RawArgs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(self.0.len())?;
        for b in &self.0 {
            t.serialize_element(b)?;
        }
        t.end()
    }
}
