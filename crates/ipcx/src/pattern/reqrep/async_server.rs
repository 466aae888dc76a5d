//! The async (tokio) server: over Unix sockets, TCP and TLS natively (a tokio listener, a
//! task per connection, a task per call, a task writing replies), over shared-memory rings
//! through a bridge to the thread-based [`Server`]. It drives the same state machine as the
//! thread-based server ([`super::server_session`]: the handshake, each request, the reply
//! frames, a panicking handler); what a call does is the handler's business
//! ([`AsyncCallHandler`]: the typed layer's [`crate::rpc::AsyncService`]).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::thread::JoinHandle as ThreadHandle;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::handshake::Peer;
use super::options::ServerOptions;
use super::request::Request;
use super::server::Server;
use super::server_session::{self, Call, Rejected, ServerSession};
use super::transport::{self, AsyncAccepted, AsyncListener, AsyncStream};
use super::wire::{Codec, HANDSHAKE_TIMEOUT, Status};
use crate::channel::Endpoint;
use crate::framing::{self, FrameDecoder};
use crate::pattern::Error;
use crate::socket::Credentials;

/// Bytes asked for per socket read.
const READ_CHUNK: usize = 64 * 1024;

/// One call, as the async server hands it to its handler.
#[derive(Debug)]
pub(crate) struct AsyncCall {
    /// The method name.
    pub(crate) method: String,
    /// The payload.
    pub(crate) payload: Vec<u8>,
    /// When the caller stops waiting, if it said.
    pub(crate) deadline: Option<Instant>,
    /// The caller's kernel-verified credentials (Unix sockets).
    pub(crate) credentials: Option<Credentials>,
    /// Becomes true when the caller's connection ends.
    pub(crate) gone: Arc<AtomicBool>,
    /// The codec the caller named in its hello.
    pub(crate) codec: Codec,
}

impl AsyncCall {
    /// The call `call` lent by a connection's session, owned.
    fn lent(call: &Call<'_>) -> AsyncCall {
        AsyncCall {
            method: call.method.to_owned(),
            payload: call.payload.to_vec(),
            deadline: call.deadline,
            credentials: call.peer.credentials,
            gone: call.gone.clone(),
            codec: call.codec,
        }
    }
}

/// Polls a future, turning a panic into an `Err` with the panic's payload.
pub(crate) struct CatchUnwind<F>(pub(crate) F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(fut).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(o)) => Poll::Ready(Ok(o)),
            Err(p) => Poll::Ready(Err(p)),
        }
    }
}

/// The reply a handler computes: its status and payload.
pub(crate) type ReplyFuture = Pin<Box<dyn Future<Output = (Status, Vec<u8>)> + Send>>;

/// What the async server runs for each call (as a task of its own).
pub(crate) type AsyncCallHandler = Arc<dyn Fn(AsyncCall) -> ReplyFuture + Send + Sync>;

/// How an async server serves.
pub(crate) struct AsyncServerOptions {
    /// The service, its version, who may connect and the largest request (the fields of the
    /// thread-based server's options that the handshake and the reading use).
    pub(crate) opts: ServerOptions,
    /// How many calls of one connection run at once; past it the server stops reading that
    /// connection until a call finishes.
    pub(crate) max_in_flight: usize,
    /// Runs each call.
    pub(crate) handler: AsyncCallHandler,
}

/// An async server serving. Dropping it stops the server at once (calls in progress are
/// abandoned); [`AsyncServer::shutdown`] stops it gracefully.
#[derive(Debug)]
pub(crate) struct AsyncServer {
    addr: Endpoint,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    bridge_stop: Option<Arc<AtomicBool>>,
}

impl AsyncServer {
    /// Starts serving at `addr` (`unix:@NAME`, `unix:PATH`, `tcp:HOST:PORT`, `tls:HOST:PORT`,
    /// `shm:/NAME`) on the current tokio runtime: natively over Unix sockets, TCP and TLS, through a bridge thread
    /// over shared memory. Must be called from inside a runtime.
    pub(crate) fn serve(addr: &str, options: AsyncServerOptions) -> Result<AsyncServer, Error> {
        if transport::is_ring(addr)? {
            return serve_bridge(addr, options);
        }
        serve_native(addr, options)
    }

    /// The address served (for TCP, with the port the kernel chose for port 0).
    pub(crate) fn addr(&self) -> &Endpoint {
        &self.addr
    }

    /// Whether connections are served natively on tokio sockets (Unix sockets, TCP, TLS),
    /// rather than through the bridge thread (shared memory).
    pub(crate) fn is_native(&self) -> bool {
        self.bridge_stop.is_none()
    }

    /// Stops gracefully: stops accepting connections (the address is freed) and reading
    /// requests, lets the calls in progress finish and send their replies, then closes every
    /// connection (clients see it end). Calls without a deadline may keep it waiting: see
    /// [`AsyncServer::shutdown_timeout`].
    pub(crate) async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// Stops gracefully, as [`AsyncServer::shutdown`] does, but abandons the calls
    /// still running after `grace`. Returns whether everything finished in time.
    pub(crate) async fn shutdown_timeout(mut self, grace: Duration) -> bool {
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

impl Drop for AsyncServer {
    fn drop(&mut self) {
        if let Some(s) = &self.bridge_stop {
            s.store(true, Ordering::SeqCst);
        }
        if let Some(t) = self.task.take() {
            t.abort();
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

async fn accept_loop(
    listener: Box<dyn AsyncListener>,
    shared: Arc<AsyncServerOptions>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    let mut pause = MIN_ACCEPT_PAUSE;
    loop {
        tokio::select! {
            got = listener.accept() => match got {
                Ok(AsyncAccepted { stream, peer, credentials }) => {
                    pause = MIN_ACCEPT_PAUSE;
                    let peer = Peer { credentials, name: peer };
                    conns.spawn(serve_conn(stream, peer, shared.clone(), stop.clone()));
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

/// A reply frame (see [`server_session::reply`]) with its length prefix.
fn reply_bytes(id: u64, status: Status, payload: &[u8]) -> Vec<u8> {
    let max = framing::DEFAULT_MAX_FRAME_LEN;
    let reply = server_session::reply(id, status, payload, max);
    // At most `max` bytes now: the prefix is never refused.
    let prefix = framing::encode_header(reply.len(), max).unwrap_or_default();
    [&prefix[..], &reply.head, &reply.payload].concat()
}

/// Serves one connection: handshake, then requests until the client leaves or the server
/// stops.
async fn serve_conn(
    conn: Box<dyn AsyncStream>,
    peer: Peer,
    shared: Arc<AsyncServerOptions>,
    mut stop: watch::Receiver<bool>,
) {
    // Whatever the transport does before messages flow (a TLS handshake) runs here, in this
    // connection's task; a client that fails it is dropped alone.
    let Ok((mut r, mut w)) = conn.open().await else {
        return;
    };
    let mut dec = FrameDecoder::new(shared.opts.max_request_len);
    let mut buf = vec![0u8; READ_CHUNK];
    let read = transport::read_frame(&mut r, &mut dec, &mut buf, &peer.name);
    let Ok(Ok(hello)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, read).await else {
        return;
    };
    let (session, answer) =
        match ServerSession::on_hello(hello.as_deref(), &shared.opts.admission(), peer) {
            Ok((session, welcome)) => (Some(session), welcome),
            Err(Rejected {
                answer: Some(refusal),
                ..
            }) => (None, refusal),
            Err(_) => return,
        };
    let sent = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let answer = framing::encode_frame(&answer, framing::DEFAULT_MAX_FRAME_LEN);
        w.write_all(&answer.unwrap_or_default()).await?;
        // A TLS stream may hold the record until flushed.
        w.flush().await
    })
    .await;
    let (Some(session), Ok(Ok(()))) = (session, sent) else {
        return;
    };

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
    let mut calls = JoinSet::new();
    let graceful = loop {
        match dec.next_frame() {
            Ok(Some(f)) => {
                let Ok(call) = session.on_request(&f) else {
                    // Garbage: this connection ends, the rest of the server is unaffected.
                    break false;
                };
                let id = call.id();
                let (reply, tx) = ((shared.handler)(AsyncCall::lent(&call)), tx.clone());
                calls.spawn(async move {
                    let (status, payload) = CatchUnwind(reply).await.unwrap_or_else(|_| {
                        let mut out = Vec::new();
                        (server_session::panicked(&mut out), out)
                    });
                    let reply = reply_bytes(id, status, &payload);
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
        session.on_closed();
        calls.abort_all();
        while calls.join_next().await.is_some() {}
    }
    drop(tx);
    let _ = writer.await;
}

/// Runs the requests the bridge thread hands over (shared memory).
async fn bridge_loop(
    mut rx: mpsc::Receiver<Request>,
    shared: Arc<AsyncServerOptions>,
    mut stop: watch::Receiver<bool>,
    bridge_stop: Arc<AtomicBool>,
    thread: ThreadHandle<()>,
) {
    let mut calls = JoinSet::new();
    loop {
        tokio::select! {
            req = rx.recv() => match req {
                Some(mut req) => {
                    let call = AsyncCall {
                        method: req.method.clone(),
                        payload: std::mem::take(&mut req.payload),
                        deadline: req.deadline,
                        credentials: req.peer.credentials,
                        gone: req.caller_gone_flag(),
                        codec: req.codec,
                    };
                    let reply = (shared.handler)(call);
                    calls.spawn(async move {
                        let (status, payload) = reply.await;
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

/// Binds `addr` (Unix socket or TCP) and serves it natively on the current runtime.
fn serve_native(addr: &str, options: AsyncServerOptions) -> Result<AsyncServer, Error> {
    let listener = transport::bind_async(addr, &options.opts)?;
    let addr = listener.local_addr()?;
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, Arc::new(options), stop_rx));
    Ok(AsyncServer {
        addr,
        stop,
        task: Some(task),
        bridge_stop: None,
    })
}

/// Serves `addr` (shared memory) through a bridge: the thread-based server accepts and reads,
/// a thread hands each request to the runtime.
fn serve_bridge(addr: &str, options: AsyncServerOptions) -> Result<AsyncServer, Error> {
    let mut opts = options.opts.clone();
    opts.queue_len = options.max_in_flight;
    let server = Server::bind(addr, opts)?;
    let addr = server.addr().clone();
    let (tx, rx) = mpsc::channel(options.max_in_flight);
    let bridge_stop = Arc::new(AtomicBool::new(false));
    let s = bridge_stop.clone();
    let thread = std::thread::Builder::new()
        .name(format!("ipcx-rpc-bridge-{}", options.opts.service))
        .spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match server.recv_timeout(Duration::from_millis(100)) {
                    Ok(req) => {
                        if tx.blocking_send(req).is_err() {
                            return;
                        }
                    }
                    Err(Error::Timeout) => {}
                    Err(_) => return,
                }
            }
        })
        .map_err(|source| Error::Io {
            context: "spawning the RPC bridge thread".into(),
            source,
        })?;
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(bridge_loop(
        rx,
        Arc::new(options),
        stop_rx,
        bridge_stop.clone(),
        thread,
    ));
    Ok(AsyncServer {
        addr,
        stop,
        task: Some(task),
        bridge_stop: Some(bridge_stop),
    })
}
