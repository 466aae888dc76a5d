//! Publish/subscribe: every subscriber gets every message published, on the topics it asked
//! for, from the moment it joined.
//!
//! A [`Publisher`] binds an address (`unix:@NAME`, `unix:PATH`, `tcp:HOST:PORT`, or
//! `tls:HOST:PORT` with `PublisherOptions::tls` and [`Subscriber::connect_with`]; see
//! [`Endpoint`], or `shm:/NAME` for a shared-memory ring, see below); [`Subscriber`]s connect
//! and name the topic prefixes they want (`b""` for everything). Over sockets, messages are
//! fanned out over one connection per subscriber and a subscriber can connect to several
//! publishers ([`Subscriber::connect_also`]): N:M. A topic per address
//! (one publisher per topic) works as well as prefixes on one address.
//!
//! Typed values: publish the bytes of
//! [`Codec::encode_message`](crate::channel::Codec::encode_message) and read
//! [`Delivery::data`] with [`Codec::decode_message`](crate::channel::Codec::decode_message),
//! in either codec ([the pattern docs](super#typed-messages)).
//!
//! # Guarantees
//! * **Lossless from the moment it joined**: [`Subscriber::connect`] returns only after the
//!   publisher has registered the subscriber, so every message published after it returned
//!   reaches it (unless the [`SlowPolicy::DropOldest`] policy drops it, which the subscriber is
//!   told about). Order is kept per publisher.
//! * **Slow subscribers**: each subscriber has a queue of [`PublisherOptions::queue_len`]
//!   messages in the publisher (plus the socket buffers). When it is full,
//!   [`SlowPolicy::Block`] (the default) makes [`Publisher::publish`] wait (or time out, with
//!   the message sent to nobody); [`SlowPolicy::DropOldest`] drops the oldest queued message
//!   instead and the subscriber learns how many it missed ([`Delivery::missed`],
//!   [`Subscriber::total_missed`]).
//! * A subscriber that dies or disconnects is dropped at the next message sent to it; it never
//!   blocks the publisher. A publisher that dies ends its subscribers' stream with
//!   [`Error::PeerGone`].
//!
//! ```no_run
//! use ipcx::pattern::pubsub::{Publisher, Subscriber};
//! use std::time::Duration;
//! let publisher = Publisher::bind("unix:@prices")?;
//! // in other processes:
//! let mut sub = Subscriber::connect("unix:@prices", &[b"eur."], Duration::from_secs(5))?;
//! publisher.publish(b"eur.usd", b"1.08")?;
//! let d = sub.recv()?;
//! assert_eq!(d.topic, b"eur.usd");
//! # Ok::<(), ipcx::pattern::Error>(())
//! ```
//!
//! # Over a shared-memory ring (`shm:/NAME`)
//! [`Publisher::bind`] with `shm:/NAME` (or [`Publisher::bind_ring`]) creates a broadcast ring
//! ([`crate::ring`]) and [`Subscriber::connect`] attaches to it: there is no fan-out and no
//! thread. The publisher writes each message once, in place; every subscriber reads it
//! through its own cursor in the ring. The API and guarantees are the same, with these
//! differences:
//! * **Slow subscribers**: the ring is lossless by default: when the slowest subscriber is a
//!   whole ring behind, [`Publisher::publish`] waits ([`Publisher::try_publish`] fails with
//!   [`Error::Full`], [`Publisher::publish_timeout`] with [`Error::Timeout`], the message
//!   then sent to nobody). [`SlowPolicy::DropOldest`] makes an *overwrite* ring: the
//!   publisher never waits and a subscriber that fell behind skips the oldest messages, told
//!   through [`Delivery::missed`] and [`Subscriber::total_missed`] as over sockets. The
//!   ring's capacity is in bytes ([`RING_CAPACITY`]; set it with [`Publisher::bind_ring`]),
//!   not [`PublisherOptions::queue_len`] messages; the policy is fixed when the ring is
//!   created.
//! * **Topics**: each record carries its topic (`topic_len:u16 topic data`) and each
//!   subscriber filters with its prefixes. The cost is honest to state: *every subscriber
//!   reads every record*, wanted or not, and a lossless ring waits for subscribers that skip a
//!   topic as much as for those that read it. When topics have very different subscribers or
//!   rates, use one ring per topic (one address each). The missed count of an overwrite ring
//!   counts every message lost, whatever its topic (the ring cannot know the topic of a
//!   message that was overwritten).
//! * **N:M is one ring per publisher**: a ring has exactly one publisher (a second live one
//!   gets [`Error::Ring`] with `PublisherExists`). A subscriber adds the other publishers'
//!   rings (or sockets) with [`Subscriber::connect_also`]; there is no discovery, it names
//!   each one. A subscriber with one ring reads it directly, in the calling thread; with
//!   more than one source, each ring gets a reading thread (like a socket), which adds a
//!   thread hand-off per message and a [`Delivery::source`] to tell them apart. Order is kept
//!   per publisher, not across them.
//! * The publisher going away (closed or killed) ends its subscribers' stream with
//!   [`Error::PeerGone`] once they have read what it published; a subscriber that dies
//!   gives its place back, and the publisher stops waiting for it within milliseconds.
//! * [`Subscriber::connect`] does not wait for a ring that does not exist yet:
//!   [`Error::NotFound`] at once (start the publisher first), as for a socket with no
//!   listener. A ring publisher lives on after [`Publisher`] is dropped while subscribers
//!   still read it; the last one out removes it.
//!
//! # Wire format
//! Over sockets, frames on the connection (ipcx framing): the subscriber sends `IPCXSUB1`, a `u16` count and
//! that many `u16`-length-prefixed prefixes (at most [`MAX_TOPICS`] of at most
//! [`MAX_TOPIC_LEN`] bytes); the publisher answers `[1]` (welcome), then sends each message as
//! `[2] missed:u64 topic_len:u16 topic data` (big-endian).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Error;
use super::HANDSHAKE_TIMEOUT;
use super::queue::{QueueReceiver, QueueSender, queue};
use crate::channel::{Address, Connection, ConnectionOptions, Endpoint, Listener};
use crate::poison::lock;
use crate::ring;
use crate::wait::Wait;

/// Ring publishers: the data area's size by default (bytes): the ring's own default.
pub const RING_CAPACITY: usize = ring::DEFAULT_CAPACITY;
/// Ring publishers: the largest record (topic, data and a 2-byte topic length) by default.
pub const RING_MAX_MESSAGE: usize = 64 << 10;
/// Ring publishers: subscriber places by default.
pub const RING_SUBSCRIBERS: u32 = 64;

/// The ring options a ring publisher is created with by default.
pub fn ring_options() -> ring::Options {
    ring::Options::new()
        .capacity(RING_CAPACITY)
        .max_message(RING_MAX_MESSAGE)
        .max_subscribers(RING_SUBSCRIBERS)
}

/// Takes `m` as `wait` allows (`None` when the deadline passed first).
fn lock_wait<T>(m: &Mutex<T>, wait: Wait) -> Option<MutexGuard<'_, T>> {
    let mut pause = Duration::from_micros(50);
    loop {
        match m.try_lock() {
            Ok(g) => return Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => {}
        }
        if wait == Wait::Forever {
            return Some(lock(m));
        }
        let left = wait.remaining().unwrap_or_default();
        if left.is_zero() {
            return None;
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// Longest topic or prefix, in bytes.
pub const MAX_TOPIC_LEN: usize = 1024;
/// Most prefixes one subscriber may name.
pub const MAX_TOPICS: usize = 256;
const HELLO: &[u8; 8] = b"IPCXSUB1";
const WELCOME: u8 = 1;
const MSG: u8 = 2;

/// What a publisher does when a subscriber's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SlowPolicy {
    /// Wait for room: the slowest subscriber paces the publisher (lossless).
    #[default]
    Block,
    /// Drop the subscriber's oldest queued message and count it; the subscriber is told.
    DropOldest,
}

/// Publisher settings.
#[derive(Debug, Clone)]
pub struct PublisherOptions {
    /// The slow-subscriber policy.
    pub policy: SlowPolicy,
    /// Messages queued per subscriber in the publisher (default 1024, at least 1).
    pub queue_len: usize,
    /// The publisher's certificates, for a `tls:` address (feature `tls`; default: none, and
    /// a `tls:` address is refused saying so).
    #[cfg(feature = "tls")]
    pub tls: Option<crate::channel::TlsConfig>,
}

impl Default for PublisherOptions {
    fn default() -> Self {
        PublisherOptions {
            policy: SlowPolicy::Block,
            queue_len: 1024,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

#[derive(Debug)]
struct SubState {
    queue: VecDeque<Arc<Vec<u8>>>,
    missed: u64,
    dead: bool,
    /// A frame taken from the queue is being written.
    busy: bool,
}

#[derive(Debug)]
struct Sub {
    prefixes: Vec<Vec<u8>>,
    state: Mutex<SubState>,
    ready: Condvar,
}

impl Sub {
    fn wants(&self, topic: &[u8]) -> bool {
        self.prefixes.iter().any(|p| topic.starts_with(p))
    }
}

#[derive(Debug)]
struct Shared {
    subs: Mutex<Vec<Arc<Sub>>>,
    /// Signalled when a subscriber's queue shrinks or a subscriber goes.
    space: Condvar,
    space_lock: Mutex<()>,
    closed: AtomicBool,
    opts: PublisherOptions,
}

/// The publishing end: binds an address and fans messages out to subscribers, or publishes
/// into a shared-memory ring that every subscriber reads.
#[derive(Debug)]
pub struct Publisher {
    kind: PubKind,
    addr: Endpoint,
    _listed: crate::discovery::Registration,
}

#[derive(Debug)]
enum PubKind {
    Fanout {
        shared: Arc<Shared>,
        acceptor: Option<JoinHandle<()>>,
    },
    Ring(Mutex<ring::Publisher>),
}

impl Publisher {
    /// Binds `addr` (`unix:@NAME`, `unix:PATH`, `tcp:HOST:PORT`, or `shm:/NAME` for a
    /// shared-memory ring) with default options (`tls:HOST:PORT` needs its certificates:
    /// [`Publisher::bind_with`]).
    pub fn bind(addr: &str) -> Result<Publisher, Error> {
        Self::bind_with(&Endpoint::parse(addr)?, PublisherOptions::default())
    }

    /// Binds with options. For `shm:/NAME`, [`SlowPolicy::DropOldest`] makes an overwrite
    /// ring and `queue_len` is not used (the ring's capacity is in bytes: see
    /// [`Publisher::bind_ring`]).
    pub fn bind_with(addr: &Endpoint, opts: PublisherOptions) -> Result<Publisher, Error> {
        if let Some(name) = ring_name(addr) {
            let ropts = ring_options().overwrite(opts.policy == SlowPolicy::DropOldest);
            return Self::bind_ring(name, &ropts);
        }
        let conn = ConnectionOptions::default();
        #[cfg(feature = "tls")]
        let conn = ConnectionOptions {
            tls: opts.tls.clone(),
            ..conn
        };
        let listener = addr.bind_with(&conn)?;
        Self::from_listener(listener, opts)
    }

    /// Publishes into the shared-memory ring `name` (`/NAME`), creating it with `opts` when
    /// missing ([`RING_CAPACITY`] bytes, messages up to [`RING_MAX_MESSAGE`] bytes with their
    /// topic, [`RING_SUBSCRIBERS`] subscriber places by default). `opts.overwrite` is the
    /// [`SlowPolicy::DropOldest`] of the ring. An existing ring (subscribers still attached
    /// to a publisher that left or died) keeps its own parameters. Another live publisher on
    /// the ring is [`Error::Ring`] (`PublisherExists`).
    pub fn bind_ring(name: &str, opts: &ring::Options) -> Result<Publisher, Error> {
        let addr = format!("shm:{name}");
        let p = ring::Publisher::create(name, opts)
            .map_err(|e| super::ring_error(e, &addr, "start the publisher first"))?;
        Ok(Publisher {
            _listed: crate::discovery::listing(crate::discovery::Kind::PubSub, &addr),
            kind: PubKind::Ring(Mutex::new(p)),
            addr: Endpoint::parse(&addr)?,
        })
    }

    /// Serves subscribers arriving on `listener`.
    pub fn from_listener(
        listener: Box<dyn Listener>,
        opts: PublisherOptions,
    ) -> Result<Publisher, Error> {
        let addr = listener.local_addr()?;
        let opts = PublisherOptions {
            queue_len: opts.queue_len.max(1),
            ..opts
        };
        let shared = Arc::new(Shared {
            subs: Mutex::new(Vec::new()),
            space: Condvar::new(),
            space_lock: Mutex::new(()),
            closed: AtomicBool::new(false),
            opts,
        });
        let s = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("ipcx-pub-accept".into())
            .spawn(move || accept_loop(listener, s))
            .map_err(|source| Error::Io {
                context: "spawning the publisher's accept thread".into(),
                source,
            })?;
        Ok(Publisher {
            _listed: crate::discovery::listing(crate::discovery::Kind::PubSub, &addr),
            kind: PubKind::Fanout {
                shared,
                acceptor: Some(acceptor),
            },
            addr,
        })
    }

    /// The address subscribers connect to.
    pub fn addr(&self) -> &Endpoint {
        &self.addr
    }

    /// Subscribers registered now (for a ring: attached to it).
    pub fn subscribers(&self) -> usize {
        match &self.kind {
            PubKind::Fanout { shared, .. } => lock(&shared.subs).len(),
            PubKind::Ring(p) => lock(p).subscribers(),
        }
    }

    /// Waits until at least `n` subscribers are registered.
    pub fn wait_for_subscribers(&self, n: usize, timeout: Duration) -> Result<(), Error> {
        let wait = Wait::timeout(timeout);
        loop {
            if self.subscribers() >= n {
                return Ok(());
            }
            if wait.expired() {
                return Err(Error::Timeout);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Publishes `data` on `topic`, waiting for room as the policy requires.
    pub fn publish(&self, topic: &[u8], data: &[u8]) -> Result<(), Error> {
        self.publish_wait(topic, data, Wait::Forever)
    }

    /// Publishes without waiting: [`Error::Full`] when a subscriber's queue is full
    /// ([`SlowPolicy::Block`]).
    pub fn try_publish(&self, topic: &[u8], data: &[u8]) -> Result<(), Error> {
        self.publish_wait(topic, data, Wait::NoWait)
    }

    /// Publishes, giving up with [`Error::Timeout`] after `timeout`.
    pub fn publish_timeout(
        &self,
        topic: &[u8],
        data: &[u8],
        timeout: Duration,
    ) -> Result<(), Error> {
        self.publish_wait(topic, data, Wait::timeout(timeout))
    }

    /// Publishes, waiting as `wait` allows. With [`SlowPolicy::Block`], either every
    /// interested subscriber gets the message or (on timeout) none does.
    pub fn publish_wait(&self, topic: &[u8], data: &[u8], wait: Wait) -> Result<(), Error> {
        if topic.len() > MAX_TOPIC_LEN {
            return Err(Error::TooLarge {
                len: topic.len(),
                max: MAX_TOPIC_LEN,
                what: "a topic".into(),
            });
        }
        let shared = match &self.kind {
            PubKind::Fanout { shared, .. } => shared,
            PubKind::Ring(p) => return self.publish_ring(p, topic, data, wait),
        };
        let cap = shared.opts.queue_len;
        let mut frame = Vec::with_capacity(11 + topic.len() + data.len());
        frame.push(MSG);
        frame.extend_from_slice(&0u64.to_be_bytes());
        frame.extend_from_slice(&(topic.len() as u16).to_be_bytes());
        frame.extend_from_slice(topic);
        frame.extend_from_slice(data);
        let frame = Arc::new(frame);
        let mut space = lock(&shared.space_lock);
        loop {
            let subs: Vec<Arc<Sub>> = lock(&shared.subs)
                .iter()
                .filter(|s| s.wants(topic))
                .cloned()
                .collect();
            let blocked = shared.opts.policy == SlowPolicy::Block
                && subs.iter().any(|s| {
                    let st = lock(&s.state);
                    !st.dead && st.queue.len() >= cap
                });
            if !blocked {
                for s in subs {
                    let mut st = lock(&s.state);
                    if st.dead {
                        continue;
                    }
                    if st.queue.len() >= cap {
                        st.queue.pop_front();
                        st.missed += 1;
                    }
                    st.queue.push_back(frame.clone());
                    s.ready.notify_one();
                }
                return Ok(());
            }
            match wait {
                Wait::NoWait => {
                    return Err(Error::Full {
                        what: "a subscriber's queue".into(),
                    });
                }
                Wait::Forever => {
                    space = shared
                        .space
                        .wait_timeout(space, Duration::from_millis(100))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                Wait::Until(_) => {
                    let left = wait.remaining().unwrap_or_default();
                    if left.is_zero() {
                        return Err(Error::Timeout);
                    }
                    space = shared
                        .space
                        .wait_timeout(space, left.min(Duration::from_millis(100)))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
    }
}

impl Publisher {
    /// Ring: one record `topic_len:u16 topic data` written in place.
    fn publish_ring(
        &self,
        p: &Mutex<ring::Publisher>,
        topic: &[u8],
        data: &[u8],
        wait: Wait,
    ) -> Result<(), Error> {
        let what = self.addr.to_string();
        let timed_out = || {
            if wait == Wait::NoWait {
                Error::Full { what: what.clone() }
            } else {
                Error::Timeout
            }
        };
        let Some(mut p) = lock_wait(p, wait) else {
            return Err(timed_out());
        };
        let len = 2 + topic.len() + data.len();
        let max = p.max_message_len();
        if len > max {
            return Err(Error::TooLarge {
                len: topic.len() + data.len(),
                max: max - 2,
                what: format!("ring {what} (topic and data together)"),
            });
        }
        let mut s = p
            .loan_wait(len, wait)
            .map_err(|e| super::ring_error(e, &what, ""))?;
        s[..2].copy_from_slice(&(topic.len() as u16).to_be_bytes());
        s[2..2 + topic.len()].copy_from_slice(topic);
        s[2 + topic.len()..].copy_from_slice(data);
        s.send().map_err(|e| super::ring_error(e, &what, ""))
    }

    /// Waits until every message published so far has been written to its subscribers'
    /// connections (or the subscriber has gone), at most `timeout`. A ring publisher has
    /// nothing to flush (a published message is in the ring) and returns at once.
    pub fn flush_timeout(&self, timeout: Duration) -> Result<(), Error> {
        let PubKind::Fanout { shared, .. } = &self.kind else {
            return Ok(());
        };
        let wait = Wait::timeout(timeout);
        loop {
            let pending = lock(&shared.subs).iter().any(|s| {
                let st = lock(&s.state);
                !st.dead && (st.busy || !st.queue.is_empty())
            });
            if !pending {
                return Ok(());
            }
            if wait.expired() {
                return Err(Error::Timeout);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Dropping a publisher first gives the messages still queued up to [`DROP_FLUSH`] to reach
/// their subscribers ([`Publisher::flush_timeout`] waits as long as asked), then closes every
/// connection.
pub const DROP_FLUSH: Duration = Duration::from_secs(2);

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.flush_timeout(DROP_FLUSH);
        let PubKind::Fanout { shared, acceptor } = &mut self.kind else {
            return;
        };
        shared.closed.store(true, Ordering::SeqCst);
        for s in lock(&shared.subs).iter() {
            lock(&s.state).dead = true;
            s.ready.notify_all();
        }
        if let Some(h) = acceptor.take() {
            let _ = h.join();
        }
    }
}

fn accept_loop(listener: Box<dyn Listener>, shared: Arc<Shared>) {
    while !shared.closed.load(Ordering::SeqCst) {
        match listener.accept_wait(Wait::timeout(Duration::from_millis(50))) {
            Ok(link) => {
                let s = shared.clone();
                let _ = std::thread::Builder::new()
                    .name("ipcx-pub-sub".into())
                    .spawn(move || serve_subscriber(link, s));
            }
            Err(Error::Timeout | Error::WouldBlock) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Parses a subscriber's hello: the topic prefixes.
pub fn parse_hello(frame: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    let rest = frame
        .strip_prefix(HELLO)
        .ok_or("not a subscriber hello (IPCXSUB1)")?;
    let (count, mut rest) = take_u16(rest).ok_or("hello cut short")?;
    if usize::from(count) > MAX_TOPICS {
        return Err("too many topic prefixes");
    }
    let mut prefixes = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let (len, r) = take_u16(rest).ok_or("hello cut short")?;
        let len = usize::from(len);
        if len > MAX_TOPIC_LEN || r.len() < len {
            return Err("bad topic prefix length");
        }
        prefixes.push(r[..len].to_vec());
        rest = &r[len..];
    }
    if !rest.is_empty() {
        return Err("trailing bytes after the topic prefixes");
    }
    Ok(prefixes)
}

fn take_u16(b: &[u8]) -> Option<(u16, &[u8])> {
    let (h, r) = b.split_first_chunk::<2>()?;
    Some((u16::from_be_bytes(*h), r))
}

fn serve_subscriber(mut link: Box<dyn Connection>, shared: Arc<Shared>) {
    let prefixes = match link.recv_frame_wait(Wait::timeout(HANDSHAKE_TIMEOUT)) {
        Ok(Some(f)) => match parse_hello(&f) {
            Ok(p) => p,
            Err(_) => return,
        },
        _ => return,
    };
    let sub = Arc::new(Sub {
        prefixes,
        state: Mutex::new(SubState {
            queue: VecDeque::new(),
            missed: 0,
            dead: false,
            busy: false,
        }),
        ready: Condvar::new(),
    });
    {
        // Registered before the welcome: everything published after the subscriber reads
        // the welcome reaches it.
        let mut subs = lock(&shared.subs);
        if shared.closed.load(Ordering::SeqCst) {
            return;
        }
        subs.push(sub.clone());
    }
    let ok = link
        .send_frame_wait(&[WELCOME], Wait::timeout(HANDSHAKE_TIMEOUT))
        .is_ok();
    if ok {
        write_loop(&mut *link, &sub, &shared);
    }
    lock(&sub.state).dead = true;
    lock(&shared.subs).retain(|s| !Arc::ptr_eq(s, &sub));
    let _g = lock(&shared.space_lock);
    shared.space.notify_all();
}

fn write_loop(link: &mut dyn Connection, sub: &Sub, shared: &Shared) {
    loop {
        let (frame, missed) = {
            let mut st = lock(&sub.state);
            loop {
                if st.dead {
                    return;
                }
                if let Some(f) = st.queue.pop_front() {
                    let m = std::mem::take(&mut st.missed);
                    st.busy = true;
                    break (f, m);
                }
                st = sub.ready.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        };
        {
            let _g = lock(&shared.space_lock);
            shared.space.notify_all();
        }
        let res = if missed == 0 {
            link.send_frame_wait(&frame, Wait::Forever)
        } else {
            let mut f = (*frame).clone();
            f[1..9].copy_from_slice(&missed.to_be_bytes());
            link.send_frame_wait(&f, Wait::Forever)
        };
        lock(&sub.state).busy = false;
        if res.is_err() {
            return;
        }
    }
}

/// One message received by a subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The topic it was published on.
    pub topic: Vec<u8>,
    /// The payload.
    pub data: Vec<u8>,
    /// Messages of this publisher dropped for this subscriber just before this one
    /// ([`SlowPolicy::DropOldest`]); 0 otherwise.
    pub missed: u64,
    /// Which of the subscriber's connections it came from (0 for the first
    /// [`Subscriber::connect`], then 1, 2... for each [`Subscriber::connect_also`]).
    pub source: usize,
}

/// Decodes a publisher's message frame.
pub fn parse_message(frame: &[u8]) -> Result<(u64, &[u8], &[u8]), &'static str> {
    let rest = match frame.split_first() {
        Some((&MSG, rest)) => rest,
        _ => return Err("not a message frame"),
    };
    let (missed, rest) = rest.split_first_chunk::<8>().ok_or("message cut short")?;
    let (tlen, rest) = take_u16(rest).ok_or("message cut short")?;
    let tlen = usize::from(tlen);
    if rest.len() < tlen {
        return Err("topic longer than the message");
    }
    Ok((u64::from_be_bytes(*missed), &rest[..tlen], &rest[tlen..]))
}

/// The subscribing end.
#[derive(Debug)]
pub struct Subscriber {
    rx: QueueReceiver<Result<Delivery, Error>>,
    tx: QueueSender<Result<Delivery, Error>>,
    live: Arc<AtomicUsize>,
    sources: usize,
    missed: Arc<AtomicU64>,
    topics: Vec<Vec<u8>>,
    /// Reading a ring directly (`shm:/NAME`, the only source).
    ring: Option<RingSub>,
    /// Tells the ring-reading threads to stop (set on drop).
    stop: Arc<AtomicBool>,
    /// What connecting to a publisher needs besides its address (certificates).
    conn: ConnectionOptions,
}

/// How often a ring-reading thread looks whether its subscriber was dropped.
const STOP_CHECK: Duration = Duration::from_millis(100);

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Attaches to the publisher's ring `name` (given as `addr`).
fn open_ring(name: &str, addr: &str) -> Result<RingSub, Error> {
    let sub = ring::Subscriber::open(name, &ring::Options::new()).map_err(|e| {
        super::ring_error(
            e,
            &format!("publisher at {addr}"),
            "start the publisher first (it creates the ring)",
        )
    })?;
    Ok(RingSub {
        sub,
        addr: addr.to_owned(),
        missed: 0,
    })
}

#[derive(Debug)]
struct RingSub {
    sub: ring::Subscriber,
    addr: String,
    /// Missed messages not yet reported with a delivery.
    missed: u64,
}

/// Decodes a ring record: `topic_len:u16 topic data`.
fn parse_record(rec: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    let (tlen, rest) = take_u16(rec).ok_or("record cut short")?;
    let tlen = usize::from(tlen);
    if rest.len() < tlen {
        return Err("topic longer than the record");
    }
    Ok(rest.split_at(tlen))
}

/// How many received messages a subscriber buffers before pushing back on its publishers.
const SUB_BUFFER: usize = 64;

impl Subscriber {
    /// Connects to the publisher at `addr`, subscribing to messages whose topic starts with
    /// one of `topics` (`b""`: all). Returns once the publisher has registered it.
    ///
    /// For `shm:/NAME` the subscriber attaches to the publisher's ring (which must exist:
    /// [`Error::NotFound`] at once otherwise) and reads it directly, with no thread; every
    /// message published after this returns reaches it.
    pub fn connect(addr: &str, topics: &[&[u8]], timeout: Duration) -> Result<Subscriber, Error> {
        Self::connect_with(addr, topics, timeout, &ConnectionOptions::default())
    }

    /// Connects as [`Subscriber::connect`] does, with what `opts` gives besides the address
    /// (the certificates of a `tls:` address); [`Subscriber::connect_also`] uses them too.
    pub fn connect_with(
        addr: &str,
        topics: &[&[u8]],
        timeout: Duration,
        opts: &ConnectionOptions,
    ) -> Result<Subscriber, Error> {
        let (tx, rx) = queue(SUB_BUFFER);
        let mut s = Subscriber {
            rx,
            tx,
            live: Arc::new(AtomicUsize::new(0)),
            sources: 0,
            missed: Arc::new(AtomicU64::new(0)),
            topics: topics.iter().map(|t| t.to_vec()).collect(),
            ring: None,
            stop: Arc::new(AtomicBool::new(false)),
            conn: opts.clone(),
        };
        if let Some(name) = ring_name(&Endpoint::parse(addr)?) {
            s.check_topics()?;
            s.ring = Some(open_ring(name, addr)?);
            s.sources = 1;
            return Ok(s);
        }
        s.connect_also(addr, timeout)?;
        Ok(s)
    }

    /// Moves a ring read directly into a reading thread, like any other source.
    fn ring_to_thread(&mut self, r: RingSub, source: usize) -> Result<(), Error> {
        let (tx, missed, stop) = (self.tx.clone(), self.missed.clone(), self.stop.clone());
        let topics = self.topics.clone();
        self.spawn_reader("ipcx-sub-ring", move || {
            let mut r = r;
            while !stop.load(Ordering::SeqCst) {
                match recv_ring(&mut r, &topics, &missed, Wait::timeout(STOP_CHECK)) {
                    Ok(d) => {
                        if tx.send(Ok(Delivery { source, ..d })).is_err() {
                            break;
                        }
                    }
                    Err(Error::Timeout) => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
        })
    }

    /// Starts a thread that reads one source; [`Subscriber::recv_wait`] counts it as live
    /// until `read` returns, however it returns.
    fn spawn_reader(&self, name: &str, read: impl FnOnce() + Send + 'static) -> Result<(), Error> {
        let live = self.live.clone();
        live.fetch_add(1, Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                read();
                live.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(source) = spawned {
            self.live.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::Io {
                context: "spawning a subscriber thread".into(),
                source,
            });
        }
        Ok(())
    }

    fn check_topics(&self) -> Result<(), Error> {
        if self.topics.len() > MAX_TOPICS {
            return Err(Error::TooLarge {
                len: self.topics.len(),
                max: MAX_TOPICS,
                what: "the list of topic prefixes".into(),
            });
        }
        if let Some(t) = self.topics.iter().find(|t| t.len() > MAX_TOPIC_LEN) {
            return Err(Error::TooLarge {
                len: t.len(),
                max: MAX_TOPIC_LEN,
                what: "a topic prefix".into(),
            });
        }
        Ok(())
    }

    /// Also subscribes, with the same topics, to the publisher at `addr` (N:M), a socket
    /// address or another publisher's ring (`shm:/NAME`, which must exist). With more than one
    /// source, each ring is read by a thread of this subscriber, as each socket is.
    pub fn connect_also(&mut self, addr: &str, timeout: Duration) -> Result<(), Error> {
        let wait = Wait::timeout(timeout);
        let parsed = Endpoint::parse(addr)?;
        if let Some(name) = ring_name(&parsed) {
            self.check_topics()?;
            let r = open_ring(name, addr)?;
            if let Some(first) = self.ring.take() {
                self.ring_to_thread(first, 0)?;
            }
            let source = self.sources;
            self.ring_to_thread(r, source)?;
            self.sources += 1;
            return Ok(());
        }
        if let Some(first) = self.ring.take() {
            self.ring_to_thread(first, 0)?;
        }
        if self.topics.len() > MAX_TOPICS {
            return Err(Error::TooLarge {
                len: self.topics.len(),
                max: MAX_TOPICS,
                what: "the list of topic prefixes".into(),
            });
        }
        let mut hello = HELLO.to_vec();
        hello.extend_from_slice(&(self.topics.len() as u16).to_be_bytes());
        for t in &self.topics {
            if t.len() > MAX_TOPIC_LEN {
                return Err(Error::TooLarge {
                    len: t.len(),
                    max: MAX_TOPIC_LEN,
                    what: "a topic prefix".into(),
                });
            }
            hello.extend_from_slice(&(t.len() as u16).to_be_bytes());
            hello.extend_from_slice(t);
        }
        let mut link = parsed.connect_with(wait, &self.conn)?;
        link.send_frame_wait(&hello, wait)?;
        match link.recv_frame_wait(wait)? {
            Some(f) if f == [WELCOME] => {}
            Some(_) => return Err(Error::protocol(addr, "expected a publisher's welcome")),
            None => {
                return Err(Error::PeerGone {
                    what: format!("the publisher at {addr} closed during the handshake"),
                });
            }
        }
        let source = self.sources;
        self.sources += 1;
        let tx = self.tx.clone();
        let missed = self.missed.clone();
        let name = addr.to_owned();
        self.spawn_reader("ipcx-sub", move || {
            let end = loop {
                let f = match link.recv_frame_wait(Wait::Forever) {
                    Ok(Some(f)) => f,
                    Ok(None) => {
                        break Error::PeerGone {
                            what: format!("the publisher at {name} closed"),
                        };
                    }
                    Err(e) => break e,
                };
                let d = match parse_message(&f) {
                    Ok((m, topic, data)) => {
                        missed.fetch_add(m, Ordering::Relaxed);
                        Delivery {
                            topic: topic.to_vec(),
                            data: data.to_vec(),
                            missed: m,
                            source,
                        }
                    }
                    Err(reason) => break Error::protocol(&name, reason),
                };
                if tx.send(Ok(d)).is_err() {
                    return;
                }
            };
            let _ = tx.send(Err(end));
        })
    }

    /// Messages dropped for this subscriber so far (all publishers).
    pub fn total_missed(&self) -> u64 {
        self.missed.load(Ordering::Relaxed)
    }

    /// Receives the next message, blocking. When a publisher goes away, one call returns
    /// [`Error::PeerGone`] (or [`Error::Protocol`] if it sent garbage) for it; once every
    /// publisher is gone, every call does.
    pub fn recv(&mut self) -> Result<Delivery, Error> {
        self.recv_wait(Wait::Forever)
    }

    /// Receives a message if one is waiting: [`Error::WouldBlock`] otherwise.
    pub fn try_recv(&mut self) -> Result<Delivery, Error> {
        self.recv_wait(Wait::NoWait)
    }

    /// Receives a message, giving up with [`Error::Timeout`] after `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Delivery, Error> {
        self.recv_wait(Wait::timeout(timeout))
    }

    /// Receives a message, waiting as `wait` allows.
    pub fn recv_wait(&mut self, wait: Wait) -> Result<Delivery, Error> {
        if let Some(r) = &mut self.ring {
            return recv_ring(r, &self.topics, &self.missed, wait);
        }
        let gone = || Error::PeerGone {
            what: "every publisher this subscriber was connected to is gone".into(),
        };
        loop {
            if self.live.load(Ordering::SeqCst) == 0 {
                return match self.rx.recv_wait(Wait::NoWait, "subscriber") {
                    Ok(r) => r,
                    Err(_) => Err(gone()),
                };
            }
            // Wake up now and then to notice that the last publisher went away.
            let slice = Wait::timeout(Duration::from_millis(200));
            let w = match (wait, wait.remaining()) {
                (Wait::NoWait, _) => Wait::NoWait,
                (_, Some(left)) if left < Duration::from_millis(200) => wait,
                _ => slice,
            };
            match self.rx.recv_wait(w, "subscriber") {
                Ok(r) => return r,
                Err(Error::Timeout) if !wait.expired() => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Reads the ring until a record on one of `topics` arrives (records on other topics are
/// skipped: every subscriber reads every record).
fn recv_ring(
    r: &mut RingSub,
    topics: &[Vec<u8>],
    total: &AtomicU64,
    wait: Wait,
) -> Result<Delivery, Error> {
    loop {
        let s = r
            .sub
            .recv_wait(wait)
            .map_err(|e| super::ring_error(e, &r.addr, "start the publisher first"))?;
        let m = s.missed();
        if m > 0 {
            total.fetch_add(m, Ordering::Relaxed);
            r.missed += m;
        }
        let (topic, data) = parse_record(&s).map_err(|reason| Error::protocol(&r.addr, reason))?;
        if topics.iter().any(|p| topic.starts_with(p)) {
            let d = Delivery {
                topic: topic.to_vec(),
                data: data.to_vec(),
                missed: 0,
                source: 0,
            };
            drop(s);
            return Ok(Delivery {
                missed: std::mem::take(&mut r.missed),
                ..d
            });
        }
    }
}

/// The ring's name (`/NAME`) when `addr` is `shm:/NAME`, where pub/sub runs natively on one
/// broadcast ring.
fn ring_name(addr: &Endpoint) -> Option<&str> {
    match (addr.scheme(), addr.address()) {
        ("shm", Address::PosixName(n)) => Some(n.as_str()),
        _ => None,
    }
}

impl crate::wait_set::Waitable for Subscriber {
    /// Ready while a delivery (or a publisher's end) waits; on a `shm:` ring, through the
    /// ring's futex-to-fd wake-up (see [`crate::ring`]). Attach it after its last
    /// [`connect_also`](Subscriber::connect_also): a ring subscriber that gains a second
    /// publisher moves its ring into a reading thread, and a wait set attached before would
    /// go on watching the ring.
    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        if let Some(r) = &self.ring {
            return crate::wait_set::Waitable::readiness(&r.sub);
        }
        self.rx.readiness()
    }
}
