//! A service definition ([`Service`]: a name, a version and typed methods) and the
//! thread-based server running it ([`RunningService`]).

use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec::{Outcome, decode_args, encode_failed, encode_into, outcome};
use super::context::CallContext;
use super::describe::{DESCRIBE, Described, check_method_name};
use crate::channel::{Codec, Endpoint};
use crate::pattern;
use crate::pattern::reqrep::{self, Peer, Server, ServerOptions, Status};

pub(super) type Handler = Arc<dyn Fn(&CallContext, &[u8]) -> Outcome + Send + Sync>;

/// A method's handler for the thread-based server: it decodes the arguments where they lie
/// and encodes the result into the connection thread's reply buffer (`Outcome::Ok` with an
/// empty vector: the result is in the buffer). It sees a [`CallContext`] only if it asked for
/// one (`method_ctx`). The arguments and the result are in the caller's codec.
type InPlace =
    Arc<dyn Fn(Option<&CallContext>, Codec, &[u8], &mut Vec<u8>) -> Outcome + Send + Sync>;

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
    pub(super) name: String,
    pub(super) version: u32,
    pub(super) methods: HashMap<String, Method>,
    pub(super) authorize: Option<reqrep::Authorize>,
    threads: usize,
    pub(super) max_request_len: usize,
    pub(super) trust: crate::trust::Trust,
    #[cfg(feature = "tls")]
    pub(super) tls: Option<crate::channel::TlsConfig>,
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("methods", &method_names(&self.methods))
            .finish()
    }
}

/// The names of `methods`, sorted (for `Debug`).
pub(super) fn method_names<M>(methods: &HashMap<String, M>) -> Vec<&str> {
    let mut names: Vec<_> = methods.keys().map(String::as_str).collect();
    names.sort_unstable();
    names
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
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Adds a method taking `A` and returning `R` or an application error `E`.
    ///
    /// # Panics
    /// When `name` is reserved for the protocol (it starts with
    /// [`RESERVED_PREFIX`](super::RESERVED_PREFIX), `ipcx.`, as [`DESCRIBE`] does).
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
            m.in_place =
                Arc::new(move |_ctx, codec, bytes, out| run_in_place(codec, bytes, out, |a| f2(a)));
        }
        s
    }

    /// Adds a method whose handler also sees the [`CallContext`] (deadline, caller).
    ///
    /// # Panics
    /// When `name` is reserved for the protocol (see [`Service::method`]).
    pub fn method_ctx<A, R, E, F>(mut self, name: &str, f: F) -> Service
    where
        A: DeserializeOwned,
        R: Serialize,
        E: fmt::Display,
        F: Fn(&CallContext, A) -> Result<R, E> + Send + Sync + 'static,
    {
        check_method_name(name);
        let f = Arc::new(f);
        let f2 = f.clone();
        let in_place: InPlace = Arc::new(move |ctx, codec, bytes, out| match ctx {
            Some(ctx) => run_in_place(codec, bytes, out, |a| f2(ctx, a)),
            None => Outcome::App("internal error: no call context".into()),
        });
        let h: Handler = Arc::new(move |ctx, bytes| match decode_args(ctx.codec, bytes) {
            Ok(args) => outcome(ctx.codec, f(ctx, args)),
            Err(o) => o,
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
    /// runs, with [`super::RpcError::Denied`] saying why.
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

    /// The certificates to serve a `tls:` address with (feature `tls`): the server's
    /// certificate and key, and the client roots when clients must present certificates (see
    /// [`crate::channel::transport::tls::server_config`]). Each client's handshake runs on its
    /// connection's own thread (or task); a client that fails it is dropped alone.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::channel::TlsConfig) -> Service {
        self.tls = Some(tls);
        self
    }

    /// Starts serving at `addr` (`unix:@NAME`, `unix:PATH`, `tcp:HOST:PORT`, `tls:HOST:PORT`
    /// with [`Service::tls`], `shm:/NAME`) on background threads; the returned handle stops
    /// the server when dropped.
    pub fn serve(self, addr: &str) -> Result<RunningService, pattern::Error> {
        let mut opts = ServerOptions::new(&self.name, self.version);
        #[cfg(feature = "tls")]
        {
            opts.tls = self.tls.clone();
        }
        opts.authorize = self.authorize.clone();
        opts.trust = self.trust.clone();
        opts.max_request_len = self.max_request_len;
        opts.threads_per_connection = self.threads;
        // Each call runs on the thread that read it (see `reqrep`'s "Serving").
        let listing = super::by_name::Pending::rpc(&self.name, self.version, self.methods.keys());
        let described = Described::new(&self.name, self.version, self.methods.keys());
        let svc = Arc::new(self);
        opts.call_handler = Some(Arc::new(move |call, out| {
            svc.dispatch(call, out, &described)
        }));
        let server = Server::bind(addr, opts)?;
        Ok(RunningService {
            addr: server.addr().clone(),
            _listed: listing.at(server.addr()),
            _server: server,
        })
    }

    /// Runs one call on the connection thread that read it: the arguments are decoded where
    /// they lie, the result encoded into `out` (the thread's reply buffer). [`DESCRIBE`] is
    /// answered with `described`.
    fn dispatch(
        &self,
        call: &reqrep::Call<'_>,
        out: &mut Vec<u8>,
        described: &Described,
    ) -> Status {
        let Some(m) = self.methods.get(call.method) else {
            // No user method has a reserved name: the lookup above stays the only one on
            // the way to a handler.
            if call.method == DESCRIBE {
                out.clear();
                out.extend_from_slice(described.reply(call.codec));
                return Status::Ok;
            }
            return Status::UnknownMethod;
        };
        // Only handlers that asked for it get a context (it costs an allocation).
        let ctx = m.wants_ctx.then(|| CallContext {
            method: call.method.to_owned(),
            deadline: call.deadline,
            credentials: call.peer.credentials,
            codec: call.codec,
            gone: call.gone.clone(),
        });
        let r = catch_unwind(AssertUnwindSafe(|| {
            (m.in_place)(ctx.as_ref(), call.codec, call.payload, out)
        }));
        match r {
            Ok(Outcome::Ok(b)) if b.is_empty() => Status::Ok,
            r => {
                let deadline = call.deadline;
                let (status, payload) = reply_of(r, deadline);
                out.clear();
                out.extend_from_slice(&payload);
                status
            }
        }
    }
}

/// Decodes the arguments in `bytes`, runs `f` and encodes its result into `out`
/// (`Outcome::Ok` with an empty vector when it is there), both in `codec`.
fn run_in_place<A, R, E>(
    codec: Codec,
    bytes: &[u8],
    out: &mut Vec<u8>,
    f: impl FnOnce(A) -> Result<R, E>,
) -> Outcome
where
    A: DeserializeOwned,
    R: Serialize,
    E: fmt::Display,
{
    let args: A = match decode_args(codec, bytes) {
        Ok(a) => a,
        Err(o) => return o,
    };
    match f(args) {
        Ok(r) => match encode_into(codec, &r, std::mem::take(out)) {
            Ok(b) => {
                *out = b;
                Outcome::Ok(Vec::new())
            }
            Err(e) => encode_failed(e),
        },
        Err(e) => Outcome::App(e.to_string()),
    }
}

/// A handler's outcome (or the payload of its panic) as the reply's status and payload, for a
/// call whose caller stops waiting at `deadline`. One mapping for the thread-based server
/// ([`Service`]) and the async one ([`super::AsyncService`]).
pub(super) fn reply_of(
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
    _server: Server,
    _listed: crate::discovery::Registration,
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
