//! Push/pull: work distribution over a pool of worker processes, with credit-based load
//! balancing and redelivery of the tasks of a worker that died.
//!
//! A [`Distributor`] binds an address (`unix:@NAME`, `unix:PATH`, `tcp:HOST:PORT`, or
//! `tls:HOST:PORT` with `DistributorOptions::tls` and [`Worker::connect_with`]; see
//! [`Endpoint`]), takes tasks ([`Distributor::submit`]) and collects their results
//! ([`Distributor::recv_result`]). [`Worker`]s connect from any number of processes and say how
//! many tasks they can hold at once (their *credits*); the distributor hands a worker a task
//! only while it has a credit left, and each result gives the credit back. A busy worker is
//! therefore never handed more than it asked for, and a slow worker gets fewer tasks than a
//! fast one.
//!
//! Typed tasks and results: submit and reply with the bytes of
//! [`Codec::encode_message`](crate::channel::Codec::encode_message), read [`Task::data`] and
//! [`TaskResult::data`] with
//! [`Codec::decode_message`](crate::channel::Codec::decode_message); a worker answers in the
//! task's codec ([the pattern docs](super#typed-messages)).
//!
//! # Guarantees
//! * **No acknowledged task is lost; at-least-once execution.** A task handed to a worker stays
//!   *in flight* until its result arrives. When the worker's connection ends without the result
//!   (the worker exited, was killed with `SIGKILL`, or sent garbage), its in-flight tasks go back
//!   to the front of the queue and are handed to another worker ([`TaskResult::attempt`] counts
//!   the hand-outs). A worker that died *after* doing the work but *before* its result reached
//!   the distributor has its task run a second time: tasks should be idempotent, or make their
//!   side effects conditional on the task id.
//! * **Each result is delivered once per task id.** Only the worker currently holding a task
//!   may answer it; a result for a task the worker does not hold is a protocol error.
//! * **No hang without workers.** When tasks are outstanding and no worker has been connected
//!   for [`DistributorOptions::worker_grace`], result waits fail with [`Error::NoWorkers`] (the
//!   tasks stay queued: a worker that joins later gets them).
//! * **Hostile workers** (a bad handshake, an unknown frame, a result for a task they do not
//!   hold, absurd credits) are disconnected alone; their tasks are handed to others and the
//!   error is kept for [`Distributor::take_worker_errors`].
//!
//! ```no_run
//! use ipcx::pattern::pushpull::{Distributor, Worker};
//! use std::time::Duration;
//! let pool = Distributor::bind("unix:@squares")?;
//! // in each worker process:
//! let mut worker = Worker::connect("unix:@squares", 1, Duration::from_secs(5))?;
//! std::thread::spawn(move || worker.run(|task| {
//!     let n = u64::from_be_bytes(task.data.try_into().unwrap_or_default());
//!     (n * n).to_be_bytes().to_vec()
//! }));
//! // back in the distributor:
//! let id = pool.submit(&7u64.to_be_bytes())?;
//! let r = pool.recv_result_timeout(Duration::from_secs(5))?;
//! assert_eq!(r.id, id);
//! # Ok::<(), ipcx::pattern::Error>(())
//! ```
//!
//! # Wire format
//! Frames (ipcx framing), integers big-endian:
//! ```text
//! hello     'I' 'P' 'C' 'X' 'P' 'P' proto:u16 credits:u32        worker -> distributor
//! welcome   0x10 max_frame:u32                                     distributor -> worker
//! refused   0x11 msg                                               distributor -> worker
//! task      0x01 id:u64 attempt:u32 payload                        distributor -> worker
//! result    0x02 id:u64 payload                                    worker -> distributor
//! credit    0x03 n:u32                                             worker -> distributor
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Error;
use super::HANDSHAKE_TIMEOUT;
use crate::channel::{Connection, ConnectionOptions, Endpoint, Listener};
use crate::poison::{lock, wait as cv_wait};
use crate::wait::Wait;

/// The wire protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;
/// The most tasks one worker may hold at once.
pub const MAX_CREDITS: u32 = 65_536;
const MAGIC: &[u8; 6] = b"IPCXPP";
const WELCOME: u8 = 0x10;
const REFUSED: u8 = 0x11;
const TASK: u8 = 0x01;
const RESULT: u8 = 0x02;
const CREDIT: u8 = 0x03;
const POLL: Duration = Duration::from_millis(100);

fn be_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

fn be_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}

/// The id the distributor gave a task.
pub type TaskId = u64;

/// A finished task, as the distributor collects it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskResult {
    /// The task's id ([`Distributor::submit`] returned it).
    pub id: TaskId,
    /// What the worker answered.
    pub data: Vec<u8>,
    /// Which hand-out of the task this answers: 1, or more when workers died holding it.
    pub attempt: u32,
    /// The worker that answered (for Unix sockets, its kernel-verified pid).
    pub worker: String,
}

/// Distributor settings.
#[derive(Debug, Clone)]
pub struct DistributorOptions {
    /// Tasks waiting for a worker before [`Distributor::submit`] blocks (default 65 536).
    pub queue_len: usize,
    /// How long tasks may be outstanding with no worker connected before result waits fail
    /// with [`Error::NoWorkers`] (default 10 s).
    pub worker_grace: Duration,
    /// Largest task or result frame (default 16 MiB).
    pub max_frame_len: usize,
    /// The distributor's certificates, for a `tls:` address (feature `tls`; default: none,
    /// and a `tls:` address is refused saying so).
    #[cfg(feature = "tls")]
    pub tls: Option<crate::channel::TlsConfig>,
}

impl Default for DistributorOptions {
    fn default() -> Self {
        DistributorOptions {
            queue_len: 65_536,
            worker_grace: Duration::from_secs(10),
            max_frame_len: crate::framing::DEFAULT_MAX_FRAME_LEN,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    id: TaskId,
    data: Arc<Vec<u8>>,
    attempt: u32,
}

#[derive(Debug)]
struct WorkerSlot {
    credits: u32,
    in_flight: HashMap<TaskId, Entry>,
    dead: bool,
}

#[derive(Debug)]
struct State {
    queue: VecDeque<Entry>,
    workers: HashMap<u64, WorkerSlot>,
    results: VecDeque<TaskResult>,
    /// Submitted and not yet answered.
    outstanding: usize,
    next_id: TaskId,
    next_worker: u64,
    /// When the last worker left (or the distributor started), while none is connected.
    alone_since: Option<Instant>,
    errors: Vec<Error>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    cv: Condvar,
    closed: AtomicBool,
    opts: DistributorOptions,
}

impl Shared {
    fn live_workers(st: &State) -> usize {
        st.workers.values().filter(|w| !w.dead).count()
    }

    /// Ends worker `wid`: its in-flight tasks go back to the front of the queue.
    fn retire(&self, wid: u64, err: Option<Error>) {
        let mut st = lock(&self.state);
        let Some(mut w) = st.workers.remove(&wid) else {
            return;
        };
        w.dead = true;
        let mut back: Vec<Entry> = w.in_flight.into_values().collect();
        back.sort_by_key(|e| std::cmp::Reverse(e.id));
        for e in back {
            st.queue.push_front(e);
        }
        if Self::live_workers(&st) == 0 {
            st.alone_since = Some(Instant::now());
        }
        if let Some(e) = err
            && st.errors.len() < 1024
        {
            st.errors.push(e);
        }
        drop(st);
        self.cv.notify_all();
    }
}

/// The distributing end: takes tasks, hands them to workers, collects the results. It is
/// `Sync`: one thread may submit while another collects.
#[derive(Debug)]
pub struct Distributor {
    shared: Arc<Shared>,
    addr: Endpoint,
    acceptor: Option<JoinHandle<()>>,
    _listed: crate::discovery::Registration,
}

impl Distributor {
    /// Binds `addr` (`unix:@NAME`, `unix:PATH`, `tcp:HOST:PORT`) with default options
    /// (`tls:HOST:PORT` needs its certificates: [`Distributor::bind_with`]).
    pub fn bind(addr: &str) -> Result<Distributor, Error> {
        Self::bind_with(&Endpoint::parse(addr)?, DistributorOptions::default())
    }

    /// Binds `addr` with `opts`.
    pub fn bind_with(addr: &Endpoint, opts: DistributorOptions) -> Result<Distributor, Error> {
        let conn = ConnectionOptions::default();
        #[cfg(feature = "tls")]
        let conn = ConnectionOptions {
            tls: opts.tls.clone(),
            ..conn
        };
        Self::from_listener(addr.bind_with(&conn)?, opts)
    }

    /// Distributes to workers arriving on `listener`.
    pub fn from_listener(
        listener: Box<dyn Listener>,
        opts: DistributorOptions,
    ) -> Result<Distributor, Error> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                workers: HashMap::new(),
                results: VecDeque::new(),
                outstanding: 0,
                next_id: 1,
                next_worker: 1,
                alone_since: Some(Instant::now()),
                errors: Vec::new(),
            }),
            cv: Condvar::new(),
            closed: AtomicBool::new(false),
            opts,
        });
        let sh = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("ipcx-push-accept".into())
            .spawn(move || {
                while !sh.closed.load(Ordering::SeqCst) {
                    match listener.accept_wait(Wait::timeout(Duration::from_millis(50))) {
                        Ok(link) => {
                            let sh = sh.clone();
                            let _ = std::thread::Builder::new()
                                .name("ipcx-push-conn".into())
                                .spawn(move || serve_worker(link, &sh));
                        }
                        Err(Error::Timeout | Error::WouldBlock) => {}
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
            .map_err(|source| Error::Io {
                context: "spawning the distributor's accept thread".into(),
                source,
            })?;
        Ok(Distributor {
            _listed: crate::discovery::listing(crate::discovery::Kind::PushPull, &addr),
            shared,
            addr,
            acceptor: Some(acceptor),
        })
    }

    /// The address workers connect to.
    pub fn addr(&self) -> &Endpoint {
        &self.addr
    }

    /// Workers connected now.
    pub fn workers(&self) -> usize {
        Shared::live_workers(&lock(&self.shared.state))
    }

    /// Tasks submitted whose result has not been collected by a worker yet (queued or in
    /// flight).
    pub fn outstanding(&self) -> usize {
        lock(&self.shared.state).outstanding
    }

    /// Tasks handed to workers and not answered yet.
    pub fn in_flight(&self) -> usize {
        lock(&self.shared.state)
            .workers
            .values()
            .map(|w| w.in_flight.len())
            .sum()
    }

    /// Waits until at least `n` workers are connected, at most `timeout`.
    pub fn wait_for_workers(&self, n: usize, timeout: Duration) -> Result<(), Error> {
        let wait = Wait::timeout(timeout);
        let mut st = lock(&self.shared.state);
        loop {
            if Shared::live_workers(&st) >= n {
                return Ok(());
            }
            let (g, more) = cv_wait(&self.shared.cv, st, wait);
            st = g;
            if !more || wait.expired() {
                if Shared::live_workers(&st) >= n {
                    return Ok(());
                }
                return Err(Error::Timeout);
            }
        }
    }

    /// The errors that ended worker connections since the last call: [`Error::Protocol`] for
    /// hostile or broken workers, [`Error::PeerGone`] for workers that died holding tasks.
    pub fn take_worker_errors(&self) -> Vec<Error> {
        std::mem::take(&mut lock(&self.shared.state).errors)
    }

    /// Queues a task, blocking while the queue is full; returns its id.
    pub fn submit(&self, task: &[u8]) -> Result<TaskId, Error> {
        self.submit_wait(task, Wait::Forever)
    }

    /// Queues a task: [`Error::Full`] when the queue is full.
    pub fn try_submit(&self, task: &[u8]) -> Result<TaskId, Error> {
        self.submit_wait(task, Wait::NoWait)
    }

    /// Queues a task, waiting at most `timeout` for room.
    pub fn submit_timeout(&self, task: &[u8], timeout: Duration) -> Result<TaskId, Error> {
        self.submit_wait(task, Wait::timeout(timeout))
    }

    /// Queues a task, waiting for room as `wait` allows.
    pub fn submit_wait(&self, task: &[u8], wait: Wait) -> Result<TaskId, Error> {
        let max = self.shared.opts.max_frame_len.saturating_sub(13);
        if task.len() > max {
            return Err(Error::TooLarge {
                len: task.len(),
                max,
                what: "a push/pull task".into(),
            });
        }
        let mut st = lock(&self.shared.state);
        while st.queue.len() >= self.shared.opts.queue_len.max(1) {
            let (g, more) = cv_wait(&self.shared.cv, st, wait);
            st = g;
            if st.queue.len() < self.shared.opts.queue_len.max(1) {
                break;
            }
            if !more || wait.expired() {
                return Err(match wait {
                    Wait::NoWait => Error::Full {
                        what: "the distributor's task queue".into(),
                    },
                    _ => Error::Timeout,
                });
            }
        }
        let id = st.next_id;
        st.next_id += 1;
        st.outstanding += 1;
        st.queue.push_back(Entry {
            id,
            data: Arc::new(task.to_vec()),
            attempt: 0,
        });
        drop(st);
        self.shared.cv.notify_all();
        Ok(id)
    }

    /// Waits for the next result.
    pub fn recv_result(&self) -> Result<TaskResult, Error> {
        self.recv_result_wait(Wait::Forever)
    }

    /// Takes a result already there: [`Error::WouldBlock`] when none.
    pub fn try_recv_result(&self) -> Result<TaskResult, Error> {
        self.recv_result_wait(Wait::NoWait)
    }

    /// Waits at most `timeout` for the next result.
    pub fn recv_result_timeout(&self, timeout: Duration) -> Result<TaskResult, Error> {
        self.recv_result_wait(Wait::timeout(timeout))
    }

    /// Waits for the next result as `wait` allows. Fails with [`Error::NoWorkers`] when tasks
    /// are outstanding and no worker has been connected for
    /// [`DistributorOptions::worker_grace`].
    pub fn recv_result_wait(&self, wait: Wait) -> Result<TaskResult, Error> {
        let grace = self.shared.opts.worker_grace;
        let mut st = lock(&self.shared.state);
        loop {
            if let Some(r) = st.results.pop_front() {
                return Ok(r);
            }
            let no_workers_until = match st.alone_since {
                // A grace too long to be a deadline never runs out.
                Some(t) if st.outstanding > 0 => match crate::wait::deadline_from(t, grace) {
                    Some(until) if Instant::now() >= until => {
                        return Err(Error::NoWorkers {
                            outstanding: st.outstanding,
                        });
                    }
                    until => until,
                },
                _ => None,
            };
            if wait == Wait::NoWait {
                return Err(Error::WouldBlock);
            }
            if wait.expired() {
                return Err(Error::Timeout);
            }
            // Wake at the end of the grace period too, to report it.
            let w = match (wait, no_workers_until) {
                (Wait::Until(d), Some(u)) => Wait::Until(d.min(u)),
                (Wait::Forever, Some(u)) => Wait::Until(u),
                (w, _) => w,
            };
            st = cv_wait(&self.shared.cv, st, w).0;
        }
    }
}

impl Drop for Distributor {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.cv.notify_all();
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

fn refuse(link: &mut dyn Connection, msg: &str) {
    let mut f = vec![REFUSED];
    f.extend_from_slice(msg.as_bytes());
    let _ = link.send_frame_wait(&f, Wait::timeout(HANDSHAKE_TIMEOUT));
}

/// Parses a worker's hello: its credits.
fn parse_hello(f: &[u8]) -> Result<(u16, u32), &'static str> {
    let rest = f
        .strip_prefix(MAGIC)
        .ok_or("not a push/pull worker hello")?;
    if rest.len() != 6 {
        return Err("hello of the wrong length");
    }
    let proto = u16::from_be_bytes([rest[0], rest[1]]);
    let credits = be_u32(&rest[2..]).ok_or("hello cut short")?;
    Ok((proto, credits))
}

fn serve_worker(mut link: Box<dyn Connection>, sh: &Arc<Shared>) {
    let peer = link.peer_name();
    link.set_max_frame_len(sh.opts.max_frame_len);
    let note = |e: Error| {
        let mut st = lock(&sh.state);
        if st.errors.len() < 1024 {
            st.errors.push(e);
        }
    };
    let hello = match link.recv_frame_wait(Wait::timeout(HANDSHAKE_TIMEOUT)) {
        Ok(Some(f)) => f,
        Ok(None) => return,
        Err(e) => return note(e),
    };
    let credits = match parse_hello(&hello) {
        Ok((PROTOCOL_VERSION, c)) if (1..=MAX_CREDITS).contains(&c) => c,
        Ok((PROTOCOL_VERSION, c)) => {
            let m = format!("credits must be 1 to {MAX_CREDITS}, not {c}");
            refuse(&mut *link, &m);
            return note(Error::protocol(&peer, m));
        }
        Ok((p, _)) => {
            let m = format!(
                "wire protocol version mismatch: worker speaks {p}, distributor speaks {PROTOCOL_VERSION}"
            );
            refuse(&mut *link, &m);
            return note(Error::protocol(&peer, m));
        }
        Err(m) => return note(Error::protocol(&peer, m)),
    };
    let mut welcome = vec![WELCOME];
    welcome.extend_from_slice(
        &u32::try_from(sh.opts.max_frame_len)
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    if let Err(e) = link.send_frame_wait(&welcome, Wait::timeout(HANDSHAKE_TIMEOUT)) {
        return note(e);
    }
    let writer = match link.try_clone() {
        Ok(w) => w,
        Err(e) => return note(e),
    };
    let wid = {
        let mut st = lock(&sh.state);
        let wid = st.next_worker;
        st.next_worker += 1;
        st.workers.insert(
            wid,
            WorkerSlot {
                credits,
                in_flight: HashMap::new(),
                dead: false,
            },
        );
        st.alone_since = None;
        wid
    };
    sh.cv.notify_all();
    let sh2 = sh.clone();
    let spawned = std::thread::Builder::new()
        .name("ipcx-push-send".into())
        .spawn(move || feed_worker(writer, wid, &sh2));
    if let Err(source) = spawned {
        return sh.retire(
            wid,
            Some(Error::Io {
                context: "spawning a worker's sending thread".into(),
                source,
            }),
        );
    }
    let end = read_worker(&mut *link, wid, sh, &peer);
    sh.retire(wid, end);
}

/// Reads results and credits from worker `wid` until its connection ends; returns why it
/// ended, when that is worth reporting.
fn read_worker(link: &mut dyn Connection, wid: u64, sh: &Shared, peer: &str) -> Option<Error> {
    loop {
        if sh.closed.load(Ordering::SeqCst) {
            return None;
        }
        if lock(&sh.state).workers.get(&wid).is_none_or(|w| w.dead) {
            return None;
        }
        let f = match link.recv_frame_wait(Wait::timeout(POLL)) {
            Ok(Some(f)) => f,
            Err(Error::Timeout | Error::WouldBlock) => continue,
            Ok(None) | Err(Error::PeerGone { .. }) => {
                let held = lock(&sh.state)
                    .workers
                    .get(&wid)
                    .map_or(0, |w| w.in_flight.len());
                return (held > 0).then(|| Error::PeerGone {
                    what: format!("worker {peer} left holding {held} task(s): handed to others"),
                });
            }
            Err(e) => return Some(e),
        };
        let bad = |reason: &str| Some(Error::protocol(peer, reason));
        match f.first() {
            Some(&RESULT) => {
                let Some(id) = be_u64(&f[1..]) else {
                    return bad("result frame cut short");
                };
                let mut st = lock(&sh.state);
                let w = st.workers.get_mut(&wid)?;
                let Some(e) = w.in_flight.remove(&id) else {
                    return bad("result for a task this worker does not hold");
                };
                w.credits += 1;
                st.outstanding = st.outstanding.saturating_sub(1);
                st.results.push_back(TaskResult {
                    id,
                    data: f[9..].to_vec(),
                    attempt: e.attempt,
                    worker: peer.to_owned(),
                });
                drop(st);
                sh.cv.notify_all();
            }
            Some(&CREDIT) => {
                if f.len() != 5 {
                    return bad("credit frame of the wrong length");
                }
                let n = be_u32(&f[1..]).unwrap_or(0);
                let mut st = lock(&sh.state);
                let w = st.workers.get_mut(&wid)?;
                let total = u64::from(w.credits) + w.in_flight.len() as u64 + u64::from(n);
                if total > u64::from(MAX_CREDITS) {
                    return bad("more credits than a worker may hold");
                }
                w.credits += n;
                drop(st);
                sh.cv.notify_all();
            }
            _ => return bad("unknown frame kind"),
        }
    }
}

/// Hands tasks to worker `wid` while it has credits.
fn feed_worker(mut link: Box<dyn Connection>, wid: u64, sh: &Shared) {
    loop {
        let entry = {
            let mut st = lock(&sh.state);
            loop {
                if sh.closed.load(Ordering::SeqCst) {
                    return;
                }
                let st_ref = &mut *st;
                let Some(w) = st_ref.workers.get_mut(&wid) else {
                    return;
                };
                if w.credits > 0
                    && let Some(mut e) = st_ref.queue.pop_front()
                {
                    w.credits -= 1;
                    e.attempt += 1;
                    w.in_flight.insert(e.id, e.clone());
                    break e;
                }
                st = sh
                    .cv
                    .wait_timeout(st, POLL)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        };
        // Room was made in the queue.
        sh.cv.notify_all();
        let mut f = Vec::with_capacity(13 + entry.data.len());
        f.push(TASK);
        f.extend_from_slice(&entry.id.to_be_bytes());
        f.extend_from_slice(&entry.attempt.to_be_bytes());
        f.extend_from_slice(&entry.data);
        if let Err(e) = link.send_frame_wait(&f, Wait::Forever) {
            return sh.retire(wid, Some(e));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Worker

/// A task as a worker receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Task {
    /// The task's id: answer with it ([`Worker::reply`]).
    pub id: TaskId,
    /// Which hand-out this is: more than 1 when a worker died holding the task before (its
    /// side effects may already have happened once).
    pub attempt: u32,
    /// The task.
    pub data: Vec<u8>,
}

/// The working end: one connection to a distributor. Receive a task, do it, reply; each reply
/// gives a credit back.
///
/// A worker over `unix:` or `tcp:` can wait in a [`WaitSet`](crate::wait_set::WaitSet) with
/// other sources: it is ready while a task (or the distributor's end) waits.
#[derive(Debug)]
pub struct Worker {
    link: Box<dyn Connection>,
    addr: String,
    max_frame: usize,
}

impl Worker {
    /// Connects to the distributor at `addr`, able to hold `credits` tasks at once (1 to
    /// [`MAX_CREDITS`]).
    pub fn connect(addr: &str, credits: u32, timeout: Duration) -> Result<Worker, Error> {
        Self::connect_with(addr, credits, timeout, &ConnectionOptions::default())
    }

    /// Connects as [`Worker::connect`] does, with what `opts` gives besides the address (the
    /// certificates of a `tls:` address).
    pub fn connect_with(
        addr: &str,
        credits: u32,
        timeout: Duration,
        opts: &ConnectionOptions,
    ) -> Result<Worker, Error> {
        if !(1..=MAX_CREDITS).contains(&credits) {
            return Err(Error::InvalidAddress {
                addr: addr.to_owned(),
                reason: format!("credits must be 1 to {MAX_CREDITS}, not {credits}"),
            });
        }
        let wait = Wait::timeout(timeout);
        let mut link = Endpoint::parse(addr)?.connect_with(wait, opts)?;
        let mut hello = MAGIC.to_vec();
        hello.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        hello.extend_from_slice(&credits.to_be_bytes());
        link.send_frame_wait(&hello, wait)?;
        let f = link.recv_frame_wait(wait)?.ok_or_else(|| Error::PeerGone {
            what: format!("the distributor at {addr} closed during the handshake"),
        })?;
        let max_frame = match f.first() {
            Some(&WELCOME) if f.len() == 5 => be_u32(&f[1..]).unwrap_or(0) as usize,
            Some(&REFUSED) => {
                return Err(Error::protocol(
                    addr,
                    format!("refused: {}", String::from_utf8_lossy(&f[1..])),
                ));
            }
            _ => return Err(Error::protocol(addr, "expected a push/pull welcome")),
        };
        // (The link keeps its default read limit: changing it now could drop a task that
        // arrived with the welcome.)
        Ok(Worker {
            link,
            addr: addr.to_owned(),
            max_frame,
        })
    }

    /// The distributor's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Waits for the next task. [`Error::PeerGone`] when the distributor has gone.
    pub fn recv(&mut self) -> Result<Task, Error> {
        self.recv_wait(Wait::Forever)
    }

    /// Takes a task already there: [`Error::WouldBlock`] when none.
    pub fn try_recv(&mut self) -> Result<Task, Error> {
        self.recv_wait(Wait::NoWait)
    }

    /// Waits at most `timeout` for the next task.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Task, Error> {
        self.recv_wait(Wait::timeout(timeout))
    }

    /// Waits for the next task as `wait` allows.
    pub fn recv_wait(&mut self, wait: Wait) -> Result<Task, Error> {
        let f = self
            .link
            .recv_frame_wait(wait)?
            .ok_or_else(|| Error::PeerGone {
                what: format!("the distributor at {} closed the connection", self.addr),
            })?;
        if f.first() != Some(&TASK) || f.len() < 13 {
            return Err(Error::protocol(&self.addr, "expected a task frame"));
        }
        Ok(Task {
            id: be_u64(&f[1..]).unwrap_or(0),
            attempt: be_u32(&f[9..]).unwrap_or(0),
            data: f[13..].to_vec(),
        })
    }

    /// Sends the result of task `id`: this acknowledges the task and gives its credit back.
    pub fn reply(&mut self, id: TaskId, result: &[u8]) -> Result<(), Error> {
        let max = self.max_frame.saturating_sub(9);
        if result.len() > max {
            return Err(Error::TooLarge {
                len: result.len(),
                max,
                what: "a push/pull result (the distributor's limit)".into(),
            });
        }
        let mut f = Vec::with_capacity(9 + result.len());
        f.push(RESULT);
        f.extend_from_slice(&id.to_be_bytes());
        f.extend_from_slice(result);
        self.link.send_frame_wait(&f, Wait::Forever)
    }

    /// Announces `n` more credits: the distributor may hand this worker `n` more tasks at once.
    pub fn add_credits(&mut self, n: u32) -> Result<(), Error> {
        let mut f = vec![CREDIT];
        f.extend_from_slice(&n.to_be_bytes());
        self.link.send_frame_wait(&f, Wait::Forever)
    }

    /// Runs `work` on every task and replies with what it returns, until the distributor goes
    /// away (then `Ok(())`) or the connection fails.
    pub fn run(&mut self, mut work: impl FnMut(Task) -> Vec<u8>) -> Result<(), Error> {
        loop {
            let task = match self.recv() {
                Ok(t) => t,
                Err(Error::PeerGone { .. }) => return Ok(()),
                Err(e) => return Err(e),
            };
            let id = task.id;
            let out = work(task);
            match self.reply(id, &out) {
                Ok(()) => {}
                Err(Error::PeerGone { .. }) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

impl crate::wait_set::Waitable for Worker {
    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        self.link.readiness()
    }
}
