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
//!   credentials; see [`crate::channel::transport::shm::link`]);
//!   with the `tls` feature, TLS over TCP ([`Service::serve_tls`], [`RpcClient::connect_tls`]):
//!   the client always verifies the server's certificate, and the server can require client
//!   certificates (see [`crate::channel::transport::tls`]).
//! * **Async**: with the `tokio` feature, [`AsyncRpcClient`] offers `async fn call` over
//!   every transport without tying up tokio's blocking pool: natively over Unix sockets, TCP
//!   and TLS ([`AsyncRpcClient::connect_tls`], tokio-rustls; reader and writer tasks), and
//!   over shared memory with a reader thread per connection that completes each call's future.
//!   [`AsyncService`] serves async handlers (and sync ones) from inside a tokio runtime:
//!   natively over Unix sockets, TCP and TLS ([`AsyncService::serve_tls_async`]), through a
//!   bridge thread over shared memory (see [`AsyncService`]). Sync and async clients and
//!   servers all speak the same protocol (and the same TLS policy).
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

use crate::channel::Endpoint;
use crate::pattern;
use crate::pattern::reqrep::{
    self, Client, ConnectError, Peer, Refusal, Server, ServerOptions, Status,
};
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

/// A method's handler for the thread-based server: it decodes the arguments where they lie
/// and encodes the result into the connection thread's reply buffer (`Outcome::Ok` with an
/// empty vector: the result is in the buffer). It sees a [`CallContext`] only if it asked for
/// one (`method_ctx`).
type InPlace = Arc<dyn Fn(Option<&CallContext>, &[u8], &mut Vec<u8>) -> Outcome + Send + Sync>;

/// A registered method: the handler for the async server and the in-place one.
#[derive(Clone)]
pub(crate) struct Method {
    /// The handler the async server runs (feature `tokio`).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) handler: Handler,
    in_place: InPlace,
    wants_ctx: bool,
}

/// A service definition: a name, a version and methods.
#[derive(Clone)]
pub struct Service {
    name: String,
    version: u32,
    methods: HashMap<String, Method>,
    authorize: Option<reqrep::Authorize>,
    threads: usize,
    max_request_len: usize,
    trust: crate::trust::Trust,
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
            trust: crate::trust::Trust::own_user(),
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
        let f = Arc::new(f);
        let f2 = f.clone();
        let mut s = self.method_ctx(name, move |_ctx: &CallContext, a: A| f(a));
        if let Some(m) = s.methods.get_mut(name) {
            m.wants_ctx = false;
            m.in_place = Arc::new(move |_ctx, bytes, out| run_in_place(bytes, out, |a| f2(a)));
        }
        s
    }

    /// Adds a method whose handler also sees the [`CallContext`] (deadline, caller).
    pub fn method_ctx<A, R, E, F>(mut self, name: &str, f: F) -> Service
    where
        A: DeserializeOwned,
        R: Serialize,
        E: fmt::Display,
        F: Fn(&CallContext, A) -> Result<R, E> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let f2 = f.clone();
        let in_place: InPlace = Arc::new(move |ctx, bytes, out| match ctx {
            Some(ctx) => run_in_place(bytes, out, |a| f2(ctx, a)),
            None => Outcome::App("internal error: no call context".into()),
        });
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
        self.methods.insert(
            name.to_owned(),
            Method {
                handler: h,
                in_place,
                wants_ctx: true,
            },
        );
        self
    }

    /// Sets the authorisation hook: called once per connecting client with its
    /// kernel-verified credentials (Unix sockets; `None` over TCP); `false` refuses it.
    pub fn authorize(mut self, f: impl Fn(&Peer) -> bool + Send + Sync + 'static) -> Service {
        self.authorize = Some(Arc::new(f));
        self
    }

    /// Which users may call over Unix sockets (default: our own uid only; see
    /// [`crate::trust`]): another user's client is refused before the authorisation hook
    /// runs, with [`RpcError::Denied`] saying why.
    pub fn trust(mut self, trust: crate::trust::Trust) -> Service {
        self.trust = trust;
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
    /// `config` (see [`crate::channel::transport::tls::server_config`]: the server's certificate and
    /// key, and the client roots when clients must present certificates). Each handshake runs
    /// on its connection's own thread; a client that fails it is dropped alone.
    #[cfg(feature = "tls")]
    pub fn serve_tls(
        self,
        addr: &str,
        config: Arc<rustls::ServerConfig>,
    ) -> Result<RunningService, pattern::Error> {
        if Endpoint::parse(addr)?.scheme() != "tcp" {
            return Err(pattern::Error::InvalidAddress {
                addr: addr.to_owned(),
                reason: "TLS runs over TCP: use tcp:HOST:PORT".into(),
            });
        }
        let up: reqrep::Upgrade =
            Arc::new(move |link| crate::channel::transport::tls::accept(link, config.clone()));
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
        opts.trust = self.trust.clone();
        opts.max_request_len = self.max_request_len;
        opts.threads_per_connection = self.threads;
        // Each call runs on the thread that read it (see `reqrep`'s "Serving").
        let svc = Arc::new(self);
        opts.call_handler = Some(Arc::new(move |call, out| svc.dispatch(call, out)));
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

    /// Runs one call on the connection thread that read it: the arguments are decoded where
    /// they lie, the result encoded into `out` (the thread's reply buffer).
    fn dispatch(&self, call: &reqrep::Call<'_>, out: &mut Vec<u8>) -> Status {
        let Some(m) = self.methods.get(call.method) else {
            return Status::UnknownMethod;
        };
        // Only handlers that asked for it get a context (it costs an allocation).
        let ctx = m.wants_ctx.then(|| CallContext {
            method: call.method.to_owned(),
            deadline: call.deadline,
            credentials: call.peer.credentials,
            gone: call.gone.clone(),
        });
        let r = catch_unwind(AssertUnwindSafe(|| {
            (m.in_place)(ctx.as_ref(), call.payload, out)
        }));
        match r {
            Ok(Outcome::Ok(b)) if b.is_empty() => Status::Ok,
            r => {
                let deadline = call.deadline;
                let (status, payload) = reply_of_deadline(r, deadline);
                out.clear();
                out.extend_from_slice(&payload);
                status
            }
        }
    }
}

/// Decodes the arguments in `bytes`, runs `f` and encodes its result into `out`
/// (`Outcome::Ok` with an empty vector when it is there).
fn run_in_place<A, R, E>(
    bytes: &[u8],
    out: &mut Vec<u8>,
    f: impl FnOnce(A) -> Result<R, E>,
) -> Outcome
where
    A: DeserializeOwned,
    R: Serialize,
    E: fmt::Display,
{
    let args: A = match postcard::from_bytes(bytes) {
        Ok(a) => a,
        Err(e) => return Outcome::BadArgs(e.to_string()),
    };
    match f(args) {
        Ok(r) => match postcard::to_extend(&r, std::mem::take(out)) {
            Ok(b) => {
                *out = b;
                Outcome::Ok(Vec::new())
            }
            Err(e) => Outcome::App(format!("the server could not encode the result: {e}")),
        },
        Err(e) => Outcome::App(e.to_string()),
    }
}

/// A handler's outcome (or the payload of its panic) as the reply's status and payload. One
/// mapping for the thread-based server ([`Service`]) and the async one ([`AsyncService`]).
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) fn reply_of(
    out: Result<Outcome, Box<dyn std::any::Any + Send>>,
    ctx: &CallContext,
) -> (Status, Vec<u8>) {
    reply_of_deadline(out, ctx.deadline)
}

fn reply_of_deadline(
    out: Result<Outcome, Box<dyn std::any::Any + Send>>,
    deadline: Option<Instant>,
) -> (Status, Vec<u8>) {
    match out {
        Ok(Outcome::Ok(b)) => (Status::Ok, b),
        // A handler that gave up because the caller's deadline passed: the caller is told it
        // timed out.
        Ok(Outcome::App(_)) if deadline.is_some_and(|d| Instant::now() >= d) => {
            (Status::DeadlineExceeded, Vec::new())
        }
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
    addr: Endpoint,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    _server: Arc<Server>,
}

impl RunningService {
    /// The address served.
    pub fn addr(&self) -> &Endpoint {
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
    status: Status,
    payload: &[u8],
    args_len: usize,
    max: usize,
) -> Result<R, RpcError> {
    let text = || String::from_utf8_lossy(payload).into_owned();
    match status {
        Status::Ok => postcard::from_bytes(payload).map_err(|e| RpcError::Decode {
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
    /// [`crate::channel::transport::tls::client_config`], which also sets a client certificate). An
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
        let link = crate::channel::transport::tls::connect(addr, server_name, config, timeout)
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
        self.call_inner(method, args, |c, a, f| {
            c.request_with(method, a, timeout, f)
        })
    }

    /// Calls `method`, waiting as `wait` allows ([`Wait::Forever`]: no deadline).
    pub fn call_wait<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
        wait: Wait,
    ) -> Result<R, RpcError> {
        self.call_inner(method, args, |c, a, f| {
            c.request_wait_with(method, a, wait, f)
        })
    }

    /// Encodes the arguments (on the stack when they are small), sends them with `send` and
    /// decodes the reply where the connection lends it.
    fn call_inner<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
        send: impl FnOnce(
            &Client,
            &[u8],
            &mut dyn FnMut(Status, &[u8]) -> Result<R, RpcError>,
        ) -> Result<Result<R, RpcError>, pattern::Error>,
    ) -> Result<R, RpcError> {
        let err = |e: postcard::Error| RpcError::Decode {
            method: method.into(),
            what: "arguments",
            remote: false,
            detail: e.to_string(),
        };
        let mut small = [0u8; 256];
        let heap;
        let bytes: &[u8] = match postcard::to_slice(args, &mut small) {
            Ok(b) => b,
            Err(postcard::Error::SerializeBufferFull) => {
                heap = postcard::to_allocvec(args).map_err(err)?;
                &heap
            }
            Err(e) => return Err(err(e)),
        };
        let max = self.inner.max_payload_len(method);
        let len = bytes.len();
        let service = &self.service;
        send(&self.inner, bytes, &mut |status, payload| {
            decode_reply(method, service, status, payload, len, max)
        })
        .map_err(|e| RpcError::from_transport(method, e))?
    }

    /// The raw request/reply client underneath.
    pub fn raw(&self) -> &Client {
        &self.inner
    }
}

/// An async RPC client (tokio): many calls can be outstanding at once on one connection, each
/// reply reaching its own caller; no call ties up a thread of tokio's blocking pool.
///
/// * **Unix sockets** (`unix:PATH`, `unix:@NAME`), **TCP** (`tcp:HOST:PORT`) and **TLS**
///   ([`AsyncRpcClient::connect_tls`], feature `tls`): the connection is a tokio stream
///   (tokio-rustls for TLS); a reader task routes each reply to its call and a writer task
///   sends whole requests, so dropping a call's future never leaves half a request on the
///   connection.
/// * **Shared memory** (`shm:/NAME`): a ring cannot be polled by tokio, so each connection has
///   a reader thread of its own: it sleeps on the reply ring and completes each call's future
///   as its reply arrives (one hand-off per call, from that thread to the task). Requests are
///   copied into the request ring by the calling task itself when the ring has room (nothing
///   waits); only when it is full does a request go to the connection's writer thread, which
///   waits for room until the call's deadline. Cost: two threads per connection (the writer
///   idle unless the ring fills), and connecting runs once on the blocking pool (the ring
///   handshake blocks briefly). A server that dies is noticed by the reader thread within
///   the ring's liveness tick (about 20 ms): pending and later calls fail with
///   [`RpcError::PeerGone`].
#[cfg(feature = "tokio")]
#[derive(Debug, Clone)]
pub struct AsyncRpcClient {
    conn: Arc<native::Conn>,
}

#[cfg(feature = "tokio")]
impl AsyncRpcClient {
    /// Connects to `addr` (`unix:@NAME`, `unix:PATH`, `tcp:HOST:PORT`, `shm:/NAME`) as a
    /// client of `service` version `version`, giving up after `timeout`.
    pub async fn connect(
        addr: &str,
        service: &str,
        version: u32,
        timeout: Duration,
    ) -> Result<AsyncRpcClient, RpcError> {
        let parsed = Endpoint::parse(addr).map_err(|e| RpcError::from_transport("(connect)", e))?;
        let conn = native::Conn::connect(parsed, addr, service, version, timeout)
            .await
            .map_err(|e| connect_error(e, version))?;
        Ok(AsyncRpcClient { conn })
    }

    /// Connects to `addr` (`tcp:HOST:PORT`) over TLS, natively on tokio (feature `tls`): the
    /// same checks as [`RpcClient::connect_tls`] with the same configuration (the server's
    /// certificate must be valid for `server_name` and signed by a root of `config`; `config`
    /// may carry a client certificate). An untrusted server, or a server that wants a client
    /// certificate this client lacks or does not trust, is [`RpcError::Tls`]. Calls both the
    /// async TLS server ([`AsyncService::serve_tls_async`]) and the thread-based one
    /// ([`Service::serve_tls`]).
    #[cfg(feature = "tls")]
    pub async fn connect_tls(
        addr: &str,
        server_name: &str,
        config: Arc<rustls::ClientConfig>,
        service: &str,
        version: u32,
        timeout: Duration,
    ) -> Result<AsyncRpcClient, RpcError> {
        let conn = native::Conn::connect_tls(addr, server_name, config, service, version, timeout)
            .await
            .map_err(|e| connect_error(e, version))?;
        Ok(AsyncRpcClient { conn })
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
        let conn = &self.conn;
        let reply = conn
            .request(method, &bytes, timeout)
            .await
            .map_err(|e| RpcError::from_transport(method, e))?;
        let max = conn.max_payload_len(method);
        decode_reply(
            method,
            &conn.service,
            reply.status,
            &reply.payload,
            bytes.len(),
            max,
        )
    }

    /// Whether calls avoid tokio's blocking pool. True over every transport (it was false
    /// over shared memory, before that client got its own reader thread).
    pub fn is_native(&self) -> bool {
        true
    }

    /// Whether the connection has ended (the server closed it, died, or sent garbage).
    pub fn is_dead(&self) -> bool {
        self.conn.is_dead()
    }
}

#[cfg(feature = "tokio")]
mod native {
    //! The async request/reply client: over a tokio stream (Unix socket, TCP, TLS), or over a
    //! ring link with a reader thread (see [`super::AsyncRpcClient`]).

    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, Weak};

    use crate::poison::lock;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::{mpsc, oneshot};

    use crate::channel::{Connection, Endpoint};
    use crate::framing::{self, FrameDecoder};
    use crate::pattern::Error;
    use crate::pattern::reqrep::{self, ConnectError, Frame, Hello, Refused, Reply};
    use crate::wait::Wait;

    use super::asynch::{BoxRead, BoxWrite};

    /// How long the ring reader thread waits at a time before looking whether its client is
    /// still there.
    const RING_POLL: Duration = Duration::from_millis(250);

    /// Where requests go.
    #[derive(Debug)]
    enum Out {
        /// Length-prefixed frames for the writer task of a tokio stream.
        Stream(mpsc::UnboundedSender<Vec<u8>>),
        /// A ring link: the calling task writes when there is room; otherwise the writer
        /// thread waits for room (frame, and how long it may wait).
        Ring {
            link: Arc<Mutex<Box<dyn Connection>>>,
            backlog: std::sync::mpsc::Sender<(Vec<u8>, Wait)>,
        },
    }

    #[derive(Debug)]
    pub(super) struct Conn {
        out: Out,
        pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
        dead: Mutex<Option<String>>,
        next_id: AtomicU64,
        max_frame: usize,
        addr: String,
        pub(super) service: String,
        /// The reader task of a stream (the ring reader thread ends on its own once the
        /// client is gone).
        reader: Option<tokio::task::AbortHandle>,
    }

    impl Drop for Conn {
        fn drop(&mut self) {
            if let Some(r) = &self.reader {
                r.abort();
            }
        }
    }

    /// A read error, with the TLS advice when it is a TLS failure.
    fn read_error(addr: &str, source: std::io::Error) -> Error {
        #[cfg(feature = "tls")]
        if let Some(e) = crate::channel::transport::tls::tls_error_in(addr, true, &source) {
            return e;
        }
        Error::Io {
            context: format!("receiving from {addr}"),
            source,
        }
    }

    async fn read_frame(
        r: &mut BoxRead,
        dec: &mut FrameDecoder,
        buf: &mut [u8],
        addr: &str,
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
                Err(e) => return Err(read_error(addr, e)),
            }
        }
    }

    /// The server's answer to the hello: its largest request frame, or why it refused.
    fn welcome(f: &[u8], addr: &str) -> Result<usize, ConnectError> {
        match Frame::decode(f) {
            Ok(Frame::Welcome { max_frame }) => Ok(max_frame as usize),
            Ok(Frame::Refused {
                reason,
                protocol,
                version,
                message,
            }) => Err(ConnectError::Refused(Refused {
                reason,
                server_protocol: protocol,
                server_version: version,
                message,
            })),
            _ => Err(Error::Protocol {
                peer: addr.to_owned(),
                reason: "expected welcome or refusal".into(),
            }
            .into()),
        }
    }

    fn hello(service: &str, version: u32) -> Hello {
        Hello {
            protocol: reqrep::PROTOCOL_VERSION,
            service: service.to_owned(),
            version,
        }
    }

    impl Conn {
        fn new(out: Out, max_frame: usize, addr: &str, service: &str) -> Conn {
            Conn {
                out,
                pending: Mutex::new(HashMap::new()),
                dead: Mutex::new(None),
                next_id: AtomicU64::new(1),
                max_frame,
                addr: addr.to_owned(),
                service: service.to_owned(),
                reader: None,
            }
        }

        /// Connects to a Unix socket, TCP or ring address.
        pub(super) async fn connect(
            a: Endpoint,
            addr: &str,
            service: &str,
            version: u32,
            timeout: Duration,
        ) -> Result<Arc<Conn>, ConnectError> {
            if a.scheme() == "shm" {
                return Self::connect_ring(a, addr, service, version, timeout).await;
            }
            let go = async {
                let (r, w) = super::asynch::connect_stream(&a).await?;
                Self::over_stream(r, w, addr, service, version).await
            };
            tokio::time::timeout(timeout, go)
                .await
                .map_err(|_| Error::Timeout)?
        }

        /// Connects over TLS (tokio-rustls).
        #[cfg(feature = "tls")]
        pub(super) async fn connect_tls(
            addr: &str,
            server_name: &str,
            config: Arc<rustls::ClientConfig>,
            service: &str,
            version: u32,
            timeout: Duration,
        ) -> Result<Arc<Conn>, ConnectError> {
            let go = async {
                let s = crate::channel::transport::tls::connect_async(addr, server_name, config)
                    .await?;
                let (r, w) = tokio::io::split(s);
                Self::over_stream(Box::new(r), Box::new(w), addr, service, version).await
            };
            tokio::time::timeout(timeout, go)
                .await
                .map_err(|_| Error::Timeout)?
        }

        /// Runs the handshake on a connected stream, then starts its reader and writer tasks.
        async fn over_stream(
            mut r: BoxRead,
            mut w: BoxWrite,
            addr: &str,
            service: &str,
            version: u32,
        ) -> Result<Arc<Conn>, ConnectError> {
            let frame = framing::encode_frame(
                &Frame::Hello(hello(service, version)).encode(),
                framing::DEFAULT_MAX_FRAME_LEN,
            )
            .map_err(|e| Error::from(crate::socket::SocketError::from(e)))?;
            let sent = async {
                w.write_all(&frame).await?;
                w.flush().await
            }
            .await;
            let mut dec = FrameDecoder::new(framing::DEFAULT_MAX_FRAME_LEN);
            let mut buf = vec![0u8; 64 * 1024];
            // Read even when sending failed: a TLS server that refused this client's
            // certificate may have said why before closing.
            let got = read_frame(&mut r, &mut dec, &mut buf, addr).await;
            let f = match (sent, got) {
                (_, Err(e @ Error::Tls { .. })) => return Err(e.into()),
                (Err(source), _) => {
                    return Err(Error::Io {
                        context: format!("sending the hello to {addr}"),
                        source,
                    }
                    .into());
                }
                (Ok(()), Err(e)) => return Err(e.into()),
                (Ok(()), Ok(None)) => {
                    return Err(Error::PeerGone {
                        what: format!("the server at {addr} closed during the handshake"),
                    }
                    .into());
                }
                (Ok(()), Ok(Some(f))) => f,
            };
            let max_frame = welcome(&f, addr)?;
            let (tx, rx) = mpsc::unbounded_channel();
            let conn = Arc::new_cyclic(|weak: &Weak<Conn>| {
                let mut c = Conn::new(Out::Stream(tx), max_frame, addr, service);
                c.reader = Some(
                    tokio::spawn(read_replies(r, dec, buf, weak.clone(), addr.to_owned()))
                        .abort_handle(),
                );
                c
            });
            tokio::spawn(write_requests(w, rx, Arc::downgrade(&conn)));
            Ok(conn)
        }

        /// Connects over a pair of rings: the ring handshake and the hello run once on the
        /// blocking pool, then the reader and writer threads start.
        async fn connect_ring(
            a: Endpoint,
            addr: &str,
            service: &str,
            version: u32,
            timeout: Duration,
        ) -> Result<Arc<Conn>, ConnectError> {
            let (addr_s, h) = (addr.to_owned(), hello(service, version));
            let (link, reader, max_frame) = tokio::task::spawn_blocking(move || {
                let wait = Wait::timeout(timeout);
                let mut link = a.connect(wait)?;
                link.send_frame_wait(&Frame::Hello(h).encode(), wait)?;
                let f = link.recv_frame_wait(wait)?.ok_or_else(|| Error::PeerGone {
                    what: format!("the server at {addr_s} closed during the handshake"),
                })?;
                let max = welcome(&f, &addr_s)?;
                let reader = link.take_reading_half()?;
                Ok::<_, ConnectError>((link, reader, max))
            })
            .await
            .map_err(|e| Error::Io {
                context: "connecting".into(),
                source: std::io::Error::other(e.to_string()),
            })??;
            let max_frame = max_frame.min(crate::channel::transport::shm::MAX_FRAME);
            let link = Arc::new(Mutex::new(link));
            let (btx, brx) = std::sync::mpsc::channel();
            let conn = Arc::new(Conn::new(
                Out::Ring {
                    link: link.clone(),
                    backlog: btx,
                },
                max_frame,
                addr,
                service,
            ));
            let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
                std::thread::Builder::new()
                    .name(name.into())
                    .spawn(f)
                    .map_err(|source| Error::Io {
                        context: "starting a thread of the async ring client".into(),
                        source,
                    })
            };
            let weak = Arc::downgrade(&conn);
            spawn(
                "ipcx-rpc-ring-read",
                Box::new(move || read_ring(reader, weak)),
            )?;
            let weak = Arc::downgrade(&conn);
            spawn(
                "ipcx-rpc-ring-write",
                Box::new(move || write_ring(link, brx, weak)),
            )?;
            Ok(conn)
        }

        pub(super) fn max_payload_len(&self, method: &str) -> usize {
            reqrep::max_request_payload(self.max_frame, method)
        }

        pub(super) fn is_dead(&self) -> bool {
            lock(&self.dead).is_some()
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

        /// Hands a reply to its caller (if it still waits).
        fn complete(&self, id: u64, reply: Reply) {
            if let Some(tx) = lock(&self.pending).remove(&id) {
                let _ = tx.send(reply);
            }
        }

        /// Sends a request frame; `Err` when the connection is over.
        fn send(&self, frame: Vec<u8>, timeout: Duration) -> Result<(), Error> {
            match &self.out {
                Out::Stream(tx) => tx.send(frame).map_err(|_| self.gone()),
                Out::Ring { link, backlog } => {
                    // None: the writer thread waits for room: queue behind it.
                    let mut guard = crate::poison::try_lock(link);
                    if let Some(l) = guard.as_mut() {
                        match l.send_frame_wait(&frame, Wait::NoWait) {
                            Ok(()) => return Ok(()),
                            Err(Error::Full { .. } | Error::WouldBlock | Error::Timeout) => {}
                            Err(e) => {
                                let e = Error::PeerGone {
                                    what: format!("the connection to {} failed: {e}", self.addr),
                                };
                                drop(guard);
                                self.set_dead(e.to_string());
                                return Err(e);
                            }
                        }
                    }
                    drop(guard);
                    backlog
                        .send((frame, Wait::timeout(timeout)))
                        .map_err(|_| self.gone())
                }
            }
        }

        pub(super) async fn request(
            &self,
            method: &str,
            payload: &[u8],
            timeout: Duration,
        ) -> Result<Reply, Error> {
            reqrep::check_request(method, payload.len(), self.max_frame, &self.addr)?;
            if self.is_dead() {
                return Err(self.gone());
            }
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            lock(&self.pending).insert(id, tx);
            // Removes the entry however the call ends (reply, timeout, or its future dropped).
            let _forget = Forget(self, id);
            let deadline_ms = u32::try_from(timeout.as_millis().max(1)).unwrap_or(u32::MAX);
            let frame = Frame::Request {
                id,
                deadline_ms,
                method: method.to_owned(),
                payload: payload.to_vec(),
            }
            .encode();
            let frame = match &self.out {
                Out::Stream(_) => framing::encode_frame(&frame, self.max_frame.max(frame.len()))
                    .map_err(|e| Error::from(crate::socket::SocketError::from(e)))?,
                Out::Ring { .. } => frame,
            };
            self.send(frame, timeout)?;
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(reply)) => Ok(reply),
                Ok(Err(_)) => Err(self.gone()),
                Err(_) => Err(Error::Timeout),
            }
        }
    }

    /// Forgets a call's entry in the pending table when the call ends.
    struct Forget<'a>(&'a Conn, u64);

    impl Drop for Forget<'_> {
        fn drop(&mut self) {
            lock(&self.0.pending).remove(&self.1);
        }
    }

    async fn write_requests(
        mut w: BoxWrite,
        mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
        conn: Weak<Conn>,
    ) {
        while let Some(frame) = rx.recv().await {
            let mut r = w.write_all(&frame).await;
            // Requests queued meanwhile go out before the flush (which TLS needs).
            if r.is_ok() && rx.is_empty() {
                r = w.flush().await;
            }
            if let Err(e) = r {
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
        addr: String,
    ) {
        loop {
            let got = read_frame(&mut r, &mut dec, &mut buf, &addr).await;
            let Some(c) = conn.upgrade() else { return };
            match got {
                Ok(Some(f)) => match Frame::decode(&f) {
                    Ok(Frame::Reply {
                        id,
                        status,
                        payload,
                    }) => c.complete(id, Reply { status, payload }),
                    _ => {
                        return c.set_dead(format!(
                            "the server at {addr} sent an unexpected or malformed frame"
                        ));
                    }
                },
                Ok(None) => {
                    return c.set_dead(format!("the server at {addr} closed the connection"));
                }
                Err(e) => {
                    return c.set_dead(format!("the connection to {addr} failed: {e}"));
                }
            }
        }
    }

    /// The ring reader thread: completes each call as its reply arrives, until the server
    /// is gone or the client is.
    fn read_ring(mut reader: Box<dyn Connection>, conn: Weak<Conn>) {
        loop {
            let mut frame = None;
            let got = reader.recv_frame_with(Wait::timeout(RING_POLL), &mut |f| {
                frame = Some(reqrep::Frame::decode(f));
            });
            let Some(c) = conn.upgrade() else { return };
            match got {
                Ok(true) => match frame {
                    Some(Ok(Frame::Reply {
                        id,
                        status,
                        payload,
                    })) => c.complete(id, Reply { status, payload }),
                    _ => {
                        return c.set_dead(format!(
                            "the server at {} sent an unexpected or malformed frame",
                            c.addr
                        ));
                    }
                },
                Ok(false) => {
                    return c.set_dead(format!("the server at {} closed the connection", c.addr));
                }
                Err(Error::Timeout | Error::WouldBlock) => {}
                Err(e) => {
                    return c.set_dead(format!("the connection to {} failed: {e}", c.addr));
                }
            }
        }
    }

    /// The ring writer thread: sends the requests that found the ring full, each waiting for
    /// room until its call's deadline. Ends with the client.
    fn write_ring(
        link: Arc<Mutex<Box<dyn Connection>>>,
        backlog: std::sync::mpsc::Receiver<(Vec<u8>, Wait)>,
        conn: Weak<Conn>,
    ) {
        for (frame, wait) in backlog {
            match lock(&link).send_frame_wait(&frame, wait) {
                // Still full at the deadline: that call has timed out meanwhile.
                Ok(()) | Err(Error::Full { .. } | Error::WouldBlock | Error::Timeout) => {}
                Err(e) => {
                    if let Some(c) = conn.upgrade() {
                        c.set_dead(format!("the connection to {} failed: {e}", c.addr));
                    }
                    return;
                }
            }
        }
    }
}
