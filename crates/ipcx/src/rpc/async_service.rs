//! Async services ([`AsyncService`]: sync and async handlers served from inside a tokio
//! runtime) and the handle of one being served ([`AsyncRunningService`]). The serving itself
//! is the request/reply engine's async server ([`crate::pattern::reqrep`]); this module
//! turns each call into its typed handler's run.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::by_name::Pending;
use super::codec::{Outcome, decode_args, outcome};
use super::context::CallContext;
use super::describe::{DESCRIBE, Described, check_method_name};
use super::service::{Handler, Service, method_names, reply_of};
use crate::channel::Endpoint;
use crate::pattern;
use crate::pattern::reqrep::async_server::{
    AsyncCall, AsyncServer, AsyncServerOptions, CatchUnwind,
};
use crate::pattern::reqrep::{Peer, ServerOptions, Status};
use crate::trust::Trust;

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
/// * **Unix sockets, TCP and TLS** (`tls:` with [`AsyncService::tls`], tokio-rustls) are
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
        f.debug_struct("AsyncService")
            .field("base", &self.base)
            .field("async_methods", &method_names(&self.async_methods))
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
    ///
    /// # Panics
    /// When `name` is reserved for the protocol (see [`Service::method`]).
    pub fn method_async<A, R, E, F, Fut>(mut self, name: &str, f: F) -> AsyncService
    where
        A: DeserializeOwned,
        R: Serialize,
        E: fmt::Display,
        F: Fn(A, CallContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        check_method_name(name);
        let h: AsyncHandler = Arc::new(move |ctx, bytes| {
            let codec = ctx.codec;
            let args: A = match decode_args(codec, &bytes) {
                Ok(a) => a,
                Err(o) => return Box::pin(std::future::ready(o)),
            };
            let fut = f(args, ctx);
            Box::pin(async move { outcome(codec, fut.await) })
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

    /// The certificates to serve a `tls:` address with (feature `tls`; see [`Service::tls`]):
    /// each client's handshake runs in its connection's task (at most
    /// [`crate::channel::transport::tls::HANDSHAKE_TIMEOUT`]).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::channel::TlsConfig) -> AsyncService {
        self.base = self.base.tls(tls);
        self
    }

    /// Starts serving at `addr` (`unix:@NAME`, `unix:PATH`, `tcp:HOST:PORT`, `tls:HOST:PORT`
    /// with [`AsyncService::tls`], `shm:/NAME`) on the current tokio runtime: natively over
    /// Unix sockets, TCP and TLS, through a bridge thread
    /// over shared memory (see [`AsyncService`]). Must be called from inside a
    /// runtime. The returned handle stops the server when dropped, or gracefully with
    /// [`AsyncRunningService::shutdown`].
    pub async fn serve_async(self, addr: &str) -> Result<AsyncRunningService, pattern::Error> {
        let listing = Pending::rpc(
            &self.base.name,
            self.base.version,
            self.base.methods.keys().chain(self.async_methods.keys()),
        );
        let server = AsyncServer::serve(addr, self.options())?;
        Ok(AsyncRunningService {
            _listed: listing.at(server.addr()),
            server,
        })
    }

    /// How the engine's async server serves this service: its handshake settings, and a
    /// handler running each call's method.
    fn options(self) -> AsyncServerOptions {
        let described = Arc::new(Described::new(
            &self.base.name,
            self.base.version,
            self.base.methods.keys().chain(self.async_methods.keys()),
        ));
        let mut methods: HashMap<String, Method> = self
            .base
            .methods
            .iter()
            .map(|(k, h)| (k.clone(), Method::Sync(h.handler.clone())))
            .collect();
        for (k, h) in self.async_methods {
            methods.insert(k, Method::Async(h));
        }
        let mut opts = ServerOptions::new(&self.base.name, self.base.version);
        opts.authorize = self.base.authorize;
        opts.trust = self.base.trust;
        opts.max_request_len = self.base.max_request_len;
        #[cfg(feature = "tls")]
        {
            opts.tls = self.base.tls;
        }
        let methods = Arc::new(methods);
        AsyncServerOptions {
            opts,
            max_in_flight: self.max_in_flight,
            handler: Arc::new(move |call| {
                let methods = methods.clone();
                let described = described.clone();
                Box::pin(async move { run(call, &methods, &described).await })
            }),
        }
    }
}

/// An async service being served. Dropping it stops the server at once (calls in progress
/// are abandoned); [`AsyncRunningService::shutdown`] stops it gracefully.
#[derive(Debug)]
pub struct AsyncRunningService {
    server: AsyncServer,
    _listed: crate::discovery::Registration,
}

impl AsyncRunningService {
    /// The address served (for TCP, with the port the kernel chose for port 0).
    pub fn addr(&self) -> &Endpoint {
        self.server.addr()
    }

    /// Whether connections are served natively on tokio sockets (Unix sockets, TCP, TLS),
    /// rather than through the bridge thread (shared memory).
    pub fn is_native(&self) -> bool {
        self.server.is_native()
    }

    /// Stops gracefully: stops accepting connections (the address is freed) and reading
    /// requests, lets the calls in progress finish and send their replies, then closes every
    /// connection (clients see it end). Calls without a deadline may keep it waiting: see
    /// [`AsyncRunningService::shutdown_timeout`].
    pub async fn shutdown(self) {
        self.server.shutdown().await
    }

    /// Stops gracefully, as [`AsyncRunningService::shutdown`] does, but abandons the calls
    /// still running after `grace`. Returns whether everything finished in time.
    pub async fn shutdown_timeout(self, grace: Duration) -> bool {
        self.server.shutdown_timeout(grace).await
    }
}

#[derive(Clone)]
enum Method {
    Sync(Handler),
    Async(AsyncHandler),
}

/// Runs `call` to its reply (status and payload) with its method in `methods`; [`DESCRIBE`]
/// is answered with `described`.
async fn run(
    call: AsyncCall,
    methods: &HashMap<String, Method>,
    described: &Described,
) -> (Status, Vec<u8>) {
    let Some(m) = methods.get(&call.method).cloned() else {
        if call.method == DESCRIBE {
            return (Status::Ok, described.reply(call.codec).to_vec());
        }
        return (Status::UnknownMethod, Vec::new());
    };
    let ctx = CallContext {
        method: call.method,
        deadline: call.deadline,
        credentials: call.credentials,
        codec: call.codec,
        gone: call.gone,
    };
    if ctx.expired() {
        return (Status::DeadlineExceeded, Vec::new());
    }
    let payload = call.payload;
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
    reply_of(out, ctx.deadline)
}
