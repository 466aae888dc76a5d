//! The thread-based server: accepts clients, runs the handshake, and serves their requests in
//! handler mode or queue mode (see the [module docs](super#serving)). What happens on each
//! event of a connection is the server's state machine's ([`super::server_session`]); this
//! drives it with threads.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use super::connection::{ConnInner, Connection};
use super::options::ServerOptions;
use super::request::{Request, send_reply};
use super::server_session;
use super::transport;
use crate::channel::{Connection as Link, Endpoint, Listener};
use crate::pattern::Error;
use crate::pattern::queue::{QueueReceiver, QueueSender, Wake, queue};
use crate::poison::lock;
use crate::wait::Wait;

/// How long a connection thread waits for a request before looking whether the server closed.
const POLL: Duration = Duration::from_millis(250);
/// How often the watcher looks for connections left unread while their handlers run.
const TAKEOVER: Duration = Duration::from_micros(200);
/// Ticks without any running handler after which the watcher sleeps until woken.
const IDLE_TICKS: u32 = 50;

/// What the connection threads of a server share.
struct Shared {
    opts: ServerOptions,
    closed: AtomicBool,
    /// The watcher: the connections it looks after, and its sleep.
    conns: Mutex<Vec<(Weak<ConnInner>, u64)>>,
    watch: Mutex<()>,
    wake_watcher: Condvar,
    /// The watcher sleeps until woken (no handler ran lately).
    watcher_asleep: AtomicBool,
}

impl Shared {
    /// A request of `conn` starts running on the thread that read it: the watcher looks
    /// after the connection from now on (woken if it sleeps).
    fn started(&self, conn: &ConnInner) {
        conn.running.fetch_add(1, Ordering::SeqCst);
        if self.watcher_asleep.load(Ordering::SeqCst) {
            let _g = lock(&self.watch);
            self.watcher_asleep.store(false, Ordering::SeqCst);
            self.wake_watcher.notify_one();
        }
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// The replying end: accepts clients and hands out their requests, or runs them with a
/// [`Handler`](super::Handler). It is `Sync`: several threads may take requests from one server.
#[derive(Debug)]
pub struct Server {
    rx: Mutex<QueueReceiver<Request>>,
    /// What a wait set watches of `rx`.
    wake: Arc<Wake>,
    addr: Endpoint,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
    watcher: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` and serves `opts.service`.
    pub fn bind(addr: &str, opts: ServerOptions) -> Result<Server, Error> {
        // The handshake applies `opts.trust` and tells a refused client why.
        let listener = transport::bind(addr, &opts)?;
        Self::from_listener(listener, opts)
    }

    /// Serves clients arriving on `listener`.
    pub fn from_listener(
        listener: Box<dyn Listener>,
        opts: ServerOptions,
    ) -> Result<Server, Error> {
        let addr = listener.local_addr()?;
        let (tx, rx) = queue(opts.queue_len.max(1));
        let inline = opts.handler.is_some() || opts.call_handler.is_some();
        let shared = Arc::new(Shared {
            opts,
            closed: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            watch: Mutex::new(()),
            wake_watcher: Condvar::new(),
            watcher_asleep: AtomicBool::new(false),
        });
        let spawn_err = |source| Error::Io {
            context: "spawning a server thread".into(),
            source,
        };
        let watcher = if inline {
            let sh = shared.clone();
            Some(
                std::thread::Builder::new()
                    .name("ipcx-rep-watch".into())
                    .spawn(move || watch(&sh))
                    .map_err(spawn_err)?,
            )
        } else {
            None
        };
        let sh = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("ipcx-rep-accept".into())
            .spawn(move || {
                while !sh.closed.load(Ordering::SeqCst) {
                    match listener.accept_wait(Wait::timeout(Duration::from_millis(50))) {
                        Ok(link) => {
                            let (tx, sh) = (tx.clone(), sh.clone());
                            let _ = std::thread::Builder::new()
                                .name("ipcx-rep-conn".into())
                                .spawn(move || serve_conn(link, tx, &sh));
                        }
                        Err(Error::Timeout | Error::WouldBlock) => {}
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
            .map_err(spawn_err)?;
        Ok(Server {
            wake: rx.wake(),
            rx: Mutex::new(rx),
            addr,
            shared,
            acceptor: Some(acceptor),
            watcher,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> &Endpoint {
        &self.addr
    }

    /// Receives the next request, blocking.
    pub fn recv(&self) -> Result<Request, Error> {
        self.recv_wait(Wait::Forever)
    }

    /// Receives a waiting request: [`Error::WouldBlock`] when none.
    pub fn try_recv(&self) -> Result<Request, Error> {
        self.recv_wait(Wait::NoWait)
    }

    /// Receives a request, giving up with [`Error::Timeout`] after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Request, Error> {
        self.recv_wait(Wait::timeout(timeout))
    }

    /// Receives a request, waiting as `wait` allows. Requests whose deadline passed while
    /// queued are answered [`Status::DeadlineExceeded`](super::Status::DeadlineExceeded) and
    /// skipped. A server with a [`handler`](ServerOptions::handler) hands none out: this only
    /// waits.
    pub fn recv_wait(&self, wait: Wait) -> Result<Request, Error> {
        loop {
            let r = lock(&self.rx).recv_wait(wait, "server")?;
            if let Some(r) = r.start() {
                return Ok(r);
            }
        }
    }
}

impl crate::wait_set::Waitable for Server {
    /// Ready while a request waits to be taken ([`Server::try_recv`]). A server with a
    /// handler hands none out, so it is never ready.
    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        lock(&self.rx).prepare()?;
        self.wake.readiness()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        {
            let _g = lock(&self.shared.watch);
            self.shared.wake_watcher.notify_all();
        }
        for h in [self.acceptor.take(), self.watcher.take()]
            .into_iter()
            .flatten()
        {
            let _ = h.join();
        }
    }
}

fn serve_conn(link: Box<dyn Link>, tx: QueueSender<Request>, sh: &Arc<Shared>) {
    let Ok(conn) = Connection::handshake(link, &sh.opts) else {
        return;
    };
    if sh.opts.handler.is_some() || sh.opts.call_handler.is_some() {
        lock(&sh.conns).push((Arc::downgrade(&conn.inner), u64::MAX));
        return serve_inline(&conn, sh);
    }
    while !sh.closed.load(Ordering::SeqCst) {
        match conn.recv_wait(Wait::timeout(POLL)) {
            Ok(req) => {
                if tx.send(req).is_err() {
                    return;
                }
            }
            Err(Error::Timeout | Error::WouldBlock) => {}
            Err(_) => return,
        }
    }
}

/// One thread serving a connection in handler mode: it reads a request and runs it itself
/// (see the [module docs](super#serving)). It returns when the connection or the server ends,
/// or when another thread has taken over reading the connection while this one ran a request
/// (then that thread serves it; the last thread of a connection never leaves early).
fn serve_inline(conn: &Connection, sh: &Shared) {
    let inner = &*conn.inner;
    // The request (copied out of the link, so that the reading half can be put back while it
    // runs) and the reply's payload, reused from call to call.
    let (mut frame, mut out) = (Vec::new(), Vec::new());
    while !sh.closed.load(Ordering::SeqCst) && !inner.ended.load(Ordering::SeqCst) {
        let Some(mut reader) = conn.try_take_reader() else {
            // Another thread reads: leave, unless this is the connection's last thread.
            if inner
                .threads
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n > 1).then(|| n - 1)
                })
                .is_ok()
            {
                return;
            }
            // The reader is about to be put back, or the watcher will see it is not read.
            let slot = lock(&inner.reader);
            if slot.is_none() && !inner.ended.load(Ordering::SeqCst) {
                inner.waiting.fetch_add(1, Ordering::SeqCst);
                drop(crate::poison::wait(
                    &inner.readable,
                    slot,
                    Wait::timeout(POLL),
                ));
                inner.waiting.fetch_sub(1, Ordering::SeqCst);
            }
            continue;
        };
        if let Some(handler) = &sh.opts.call_handler {
            let got = reader.recv_frame_with(Wait::timeout(POLL), &mut |f| {
                frame.clear();
                frame.extend_from_slice(f);
            });
            conn.put_back(reader);
            match got {
                Ok(true) => {}
                Err(Error::Timeout | Error::WouldBlock) => continue,
                Ok(false) | Err(_) => break,
            }
            let Ok(call) = inner.session.on_request(&frame) else {
                break;
            };
            if sh.closed.load(Ordering::SeqCst) {
                break;
            }
            // Read just now with at least a millisecond left: its deadline has not passed.
            sh.started(inner);
            out.clear();
            let status =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&call, &mut out)))
                    .unwrap_or_else(|_| server_session::panicked(&mut out));
            let _ = send_reply(&inner.writer, call.id(), status, &out);
            inner.running.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let Some(handler) = &sh.opts.handler else {
            break;
        };
        let mut req = None;
        let got = reader.recv_frame_with(Wait::timeout(POLL), &mut |f| req = conn.request(f).ok());
        conn.put_back(reader);
        let req = match got {
            Ok(true) => match req {
                Some(r) => r,
                None => break,
            },
            Err(Error::Timeout | Error::WouldBlock) => continue,
            Ok(false) | Err(_) => break,
        };
        if sh.closed.load(Ordering::SeqCst) {
            // The server stopped while this request came: the caller sees the connection end.
            break;
        }
        let Some(req) = req.start() else {
            continue;
        };
        sh.started(inner);
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(req)));
        inner.running.fetch_sub(1, Ordering::SeqCst);
    }
    conn.end();
    inner.threads.fetch_sub(1, Ordering::SeqCst);
}

/// The watcher of a server in handler mode: every [`TAKEOVER`] while requests run, it starts
/// a thread on each connection whose reading half has stayed unread for a whole tick while a
/// request of it runs (up to [`ServerOptions::threads_per_connection`] threads).
fn watch(sh: &Arc<Shared>) {
    let mut idle = 0u32;
    while !sh.closed.load(Ordering::SeqCst) {
        let mut any_running = false;
        let mut takeovers = Vec::new();
        {
            let mut conns = lock(&sh.conns);
            conns.retain_mut(|(weak, seen)| {
                let Some(c) = weak.upgrade() else {
                    return false;
                };
                if c.ended.load(Ordering::SeqCst) {
                    return false;
                }
                let running = c.running.load(Ordering::SeqCst);
                let releases = c.releases.load(Ordering::SeqCst);
                any_running |= running > 0;
                let unread = running > 0
                    && releases == *seen
                    && lock(&c.reader).is_some()
                    && c.threads.load(Ordering::SeqCst) < sh.opts.threads_per_connection.max(1);
                *seen = if lock(&c.reader).is_some() {
                    releases
                } else {
                    u64::MAX
                };
                if unread {
                    c.threads.fetch_add(1, Ordering::SeqCst);
                    takeovers.push(Connection { inner: c });
                }
                true
            });
        }
        for conn in takeovers {
            let sh2 = sh.clone();
            let c2 = conn.clone();
            let spawned = std::thread::Builder::new()
                .name("ipcx-rep-conn".into())
                .spawn(move || serve_inline(&c2, &sh2));
            if spawned.is_err() {
                conn.inner.threads.fetch_sub(1, Ordering::SeqCst);
            }
        }
        idle = if any_running { 0 } else { idle + 1 };
        let mut g = lock(&sh.watch);
        if idle < IDLE_TICKS {
            drop(g);
            std::thread::sleep(TAKEOVER);
            continue;
        }
        sh.watcher_asleep.store(true, Ordering::SeqCst);
        // A handler that started before the flag was set is seen here.
        let running = lock(&sh.conns).iter().any(|(w, _)| {
            w.upgrade()
                .is_some_and(|c| c.running.load(Ordering::SeqCst) > 0)
        });
        if !running && !sh.closed.load(Ordering::SeqCst) {
            g = crate::poison::wait(&sh.wake_watcher, g, Wait::timeout(Duration::from_secs(1))).0;
        }
        sh.watcher_asleep.store(false, Ordering::SeqCst);
        drop(g);
        idle = 0;
    }
}
