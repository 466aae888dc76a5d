//! Mailboxes: named, indirect N:M messaging. Any number of processes send to a mailbox and any
//! number receive from it; each message is delivered to exactly one receiver.
//!
//! The address picks the transport; the API is the same:
//!
//! | address | transport |
//! |---|---|
//! | `/NAME` or `mq:/NAME` | a POSIX message queue (the default) |
//! | `shm:/NAME` | a shared-memory work queue ([`crate::ring::work`]) |
//!
//! Typed values: wrap a mailbox in a typed [`Sender<T>`](crate::channel::Sender) or
//! [`Receiver<T>`](crate::channel::Receiver), in either codec
//! ([the pattern docs](super#typed-messages)).
//!
//! # Over a POSIX message queue
//! The kernel hands each message to one waiting receiver, in priority order and FIFO within a
//! priority, so several receivers share the load with no coordinator.
//!
//! Limits (from `/proc/sys/fs/mqueue`, see [`Limits::read`]):
//! * capacity: `msg_default` messages (10) unless given at creation, at most `msg_max` (10)
//!   for unprivileged processes;
//! * message size: `msgsize_default` bytes (8192) unless given, at most `msgsize_max` (8192);
//!   a larger message is [`Error::TooLarge`];
//! * queues per user: `queues_max` (256) and the `RLIMIT_MSGQUEUE` byte budget.
//!
//! A full mailbox makes a blocking send wait ([`Mailbox::try_send`] fails with
//! [`Error::Full`]); messages survive their senders and receivers until the mailbox is removed
//! (the handle that created it removes it on drop unless [`Mailbox::persist`] is called). There
//! is no sender identity: POSIX queues do not carry credentials (use [`super::direct`] for that).
//!
//! # Over the shared-memory ring (`shm:/NAME`)
//! The mailbox is a work queue segment in `/dev/shm` (mode `0o600`): a pool of fixed-size
//! slots and a lock-free queue of sent messages. A send copies the message into a free slot, a
//! receive copies it out and frees the slot at once; no system call is made unless someone has
//! to sleep. What differs from the POSIX queue:
//! * **Capacity**: [`Mailbox::create_with_capacity`] gives the number of slots (rounded up to a
//!   power of two) and the slot size; the defaults are [`RING_MAX_MESSAGE`] bytes per message
//!   and [`RING_SLOTS`] slots. No `/proc` limit applies (only the size of `/dev/shm`).
//! * **Order**: FIFO for the messages of one sender; no priorities
//!   ([`Mailbox::send_wait`] with a non-zero priority is [`Error::Unsupported`]).
//! * **Handles**: each open handle joins the queue both as a producer and as a consumer, so it
//!   can send and receive, and takes two of the queue's participant places ([`RING_PLACES`]
//!   places by default, [`Mailbox::with_ring`] sets more); one more handle than fits fails with
//!   [`Error::Ring`] (`TooManyParticipants`). Because every handle counts as a sender, a
//!   receiver waits for messages as long as it likes even when no other process has the
//!   mailbox open, as with a POSIX queue.
//! * **Lifetime**: the mailbox (and the messages in it) lives as long as any handle to it is
//!   open, in any process; the last handle to close removes it, unless that handle was made
//!   with [`Mailbox::persist`] (then [`Mailbox::remove`] or `ipcx rm shm:/NAME` removes it).
//!   The creating handle does not remove it while others still use it.
//! * **Dead peers**: a receiver killed while it held a message (in the short window between
//!   taking it from the queue and finishing copying it out) has that message sent again to
//!   another receiver, so delivery is *at least once* across a receiver crash and exactly
//!   once otherwise; a sender killed while writing a message frees its slot. Blocked calls notice
//!   dead peers every few milliseconds: nothing waits for a dead process.
//! * [`Mailbox::len`] and [`Mailbox::is_empty`] are [`Error::Unsupported`] (the ring does not
//!   count the queued messages).
//! * One handle serves one call of each kind (send, receive) at a time: threads that share a
//!   handle take turns (a caller waiting for its turn still honours its timeout). Open one
//!   handle per thread to receive in parallel.
//!
//! ```no_run
//! use ipcx::pattern::mailbox::Mailbox;
//! let jobs = Mailbox::create("/jobs")?;      // a POSIX queue; removed on drop
//! jobs.send(b"resize photo.jpg")?;
//! // any process: Mailbox::open("/jobs")?.recv()?
//! let _msg = jobs.recv()?;
//!
//! let fast = Mailbox::create("shm:/jobs")?;  // the same, over shared memory
//! fast.send(b"resize photo.jpg")?;
//! let _msg = fast.recv()?;
//! # Ok::<(), ipcx::pattern::Error>(())
//! ```

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::Error;
use crate::channel::{self, Message, MessageReceiver, MessageSender, Meta};
use crate::mq::{self, MessageQueue};
use crate::name::PosixName;
use crate::poison;
use crate::ring;
use crate::wait::Wait;

/// Ring mailboxes: the largest message by default (bytes).
pub const RING_MAX_MESSAGE: usize = 8192;
/// Ring mailboxes: slots (messages waiting at once) by default.
pub const RING_SLOTS: usize = 64;
/// Ring mailboxes: participant places by default (two per open handle).
pub const RING_PLACES: u32 = 64;

/// The system limits on mailboxes, read from `/proc/sys/fs/mqueue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Default capacity in messages (`msg_default`).
    pub msg_default: usize,
    /// Largest capacity an unprivileged process may ask for (`msg_max`).
    pub msg_max: usize,
    /// Default message size (`msgsize_default`).
    pub msgsize_default: usize,
    /// Largest message size an unprivileged process may ask for (`msgsize_max`).
    pub msgsize_max: usize,
    /// Queues per user (`queues_max`).
    pub queues_max: usize,
}

impl Limits {
    /// Reads the limits; a file that cannot be read gives the kernel's default.
    pub fn read() -> Limits {
        let get = |name: &str, default: usize| {
            std::fs::read_to_string(format!("/proc/sys/fs/mqueue/{name}"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(default)
        };
        Limits {
            msg_default: get("msg_default", 10),
            msg_max: get("msg_max", 10),
            msgsize_default: get("msgsize_default", 8192),
            msgsize_max: get("msgsize_max", 8192),
            queues_max: get("queues_max", 256),
        }
    }
}

/// Where a mailbox address points.
enum Addr<'a> {
    Queue(&'a str),
    Ring(PosixName),
}

fn parse(addr: &str) -> Result<Addr<'_>, Error> {
    if let Some(name) = addr.strip_prefix("shm:") {
        return PosixName::new(name)
            .map(Addr::Ring)
            .map_err(|e| Error::InvalidAddress {
                addr: addr.to_owned(),
                reason: e.to_string(),
            });
    }
    Ok(Addr::Queue(addr.strip_prefix("mq:").unwrap_or(addr)))
}

/// The two ends one ring mailbox handle holds.
#[derive(Debug)]
struct RingBox {
    prod: Mutex<ring::Producer>,
    cons: Mutex<ring::Consumer>,
    max: usize,
}

#[derive(Debug)]
enum Inner {
    Queue(MessageQueue),
    Ring(RingBox),
}

/// A named mailbox.
#[derive(Debug)]
pub struct Mailbox {
    inner: Inner,
    name: String,
    _listed: Option<crate::discovery::Registration>,
}

/// Takes `m` as `wait` allows (`None` when the deadline passed first).
fn lock_wait<T>(m: &Mutex<T>, wait: Wait) -> Option<MutexGuard<'_, T>> {
    let mut pause = Duration::from_micros(50);
    loop {
        if let Some(g) = poison::try_lock(m) {
            return Some(g);
        }
        if wait == Wait::Forever {
            return Some(poison::lock(m));
        }
        let left = wait.remaining().unwrap_or_default();
        if left.is_zero() {
            return None;
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

impl Mailbox {
    /// Opens an existing mailbox: [`Error::Queue`] with `NotFound` when a POSIX queue is
    /// missing, [`Error::NotFound`] when a ring is.
    pub fn open(name: &str) -> Result<Mailbox, Error> {
        match parse(name)? {
            Addr::Queue(q) => Self::open_queue(name, q, MessageQueue::options()),
            Addr::Ring(_) => Self::with_ring(name, &ring_options(), false),
        }
    }

    /// Opens the mailbox, creating it (default capacity) when missing. A POSIX queue is
    /// removed when the handle that created it is dropped; a ring when the last handle is.
    pub fn create(name: &str) -> Result<Mailbox, Error> {
        match parse(name)? {
            Addr::Queue(q) => {
                Self::open_queue(name, q, MessageQueue::options().create(true).clone())
            }
            Addr::Ring(_) => Self::with_ring(name, &ring_options(), true),
        }
    }

    /// Creates a mailbox with room for `max_messages` messages of `max_message_size` bytes,
    /// or opens the existing one (whose capacity then stays as it is). A ring rounds
    /// `max_messages` up to a power of two.
    pub fn create_with_capacity(
        name: &str,
        max_messages: usize,
        max_message_size: usize,
    ) -> Result<Mailbox, Error> {
        match parse(name)? {
            Addr::Queue(q) => Self::open_queue(
                name,
                q,
                MessageQueue::options()
                    .create(true)
                    .capacity(max_messages, max_message_size)
                    .clone(),
            ),
            Addr::Ring(_) => Self::with_ring(
                name,
                &ring_options()
                    .slots(max_messages)
                    .max_message(max_message_size),
                true,
            ),
        }
    }

    /// Opens a POSIX-queue mailbox with full control over the queue options (a `shm:`
    /// address is [`Error::InvalidAddress`]: use [`Mailbox::with_ring`]).
    pub fn with(name: &str, opts: mq::OpenOptions) -> Result<Mailbox, Error> {
        match parse(name)? {
            Addr::Queue(q) => Self::open_queue(name, q, opts),
            Addr::Ring(_) => Err(Error::InvalidAddress {
                addr: name.to_owned(),
                reason: "POSIX queue options given for a ring mailbox: use Mailbox::with_ring"
                    .into(),
            }),
        }
    }

    fn open_queue(addr: &str, q: &str, opts: mq::OpenOptions) -> Result<Mailbox, Error> {
        let q = opts.open(q)?;
        Ok(Mailbox {
            _listed: q.name().filter(|_| q.is_owner()).map(|n| {
                crate::discovery::listing(crate::discovery::Kind::Mailbox, &format_args!("mq:{n}"))
            }),
            inner: Inner::Queue(q),
            name: addr.to_owned(),
        })
    }

    /// Opens the ring mailbox `name` (`shm:/NAME`), creating it with `opts` when missing if
    /// `create` (an existing ring keeps its own parameters; `opts.strategy` applies anyway).
    pub fn with_ring(name: &str, opts: &ring::Options, create: bool) -> Result<Mailbox, Error> {
        let Addr::Ring(ring_name) = parse(name)? else {
            return Err(Error::InvalidAddress {
                addr: name.to_owned(),
                reason: "a ring mailbox address is shm:/NAME".into(),
            });
        };
        let what = format!("mailbox {name}");
        let hint = "create it first (Mailbox::create), e.g. by starting a receiver";
        let err = |e| super::ring_error(e, &what, hint);
        let n = ring_name.as_str();
        let cons = if create {
            ring::Consumer::create(n, opts)
        } else {
            ring::Consumer::open(n, opts)
        }
        .map_err(err)?;
        // The consumer keeps the segment alive, so this open finds it.
        let prod = ring::Producer::open(n, opts).map_err(err)?;
        Ok(Mailbox {
            _listed: create
                .then(|| crate::discovery::listing(crate::discovery::Kind::Mailbox, &name)),
            inner: Inner::Ring(RingBox {
                max: cons.max_message_len(),
                prod: Mutex::new(prod),
                cons: Mutex::new(cons),
            }),
            name: name.to_owned(),
        })
    }

    /// Removes a mailbox by name (processes that have it open keep using it).
    pub fn remove(name: &str) -> Result<(), Error> {
        match parse(name)? {
            Addr::Queue(q) => Ok(MessageQueue::unlink(q)?),
            Addr::Ring(n) => ring::remove(n.as_str()).map_err(|e| {
                let missing = matches!(e, ring::RingError::NotARing { .. })
                    && !std::path::Path::new("/dev/shm")
                        .join(&n.as_str()[1..])
                        .exists();
                let e = if missing {
                    ring::RingError::NotFound {
                        name: n.to_string(),
                    }
                } else {
                    e
                };
                super::ring_error(e, &format!("mailbox {name}"), "nothing to remove")
            }),
        }
    }

    /// Keeps the mailbox after this handle is dropped. For a ring: this handle never removes
    /// it, even when it is the last one open (then [`Mailbox::remove`] or `ipcx rm` does);
    /// another handle that was not persisted and closes last still removes it.
    pub fn persist(self) -> Mailbox {
        let inner = match self.inner {
            Inner::Queue(q) => Inner::Queue(q.persist()),
            Inner::Ring(r) => {
                let prod = poison::into_inner(r.prod);
                let cons = poison::into_inner(r.cons);
                Inner::Ring(RingBox {
                    prod: Mutex::new(prod.persist()),
                    cons: Mutex::new(cons.persist()),
                    max: r.max,
                })
            }
        };
        Mailbox {
            inner,
            name: self.name,
            _listed: self._listed,
        }
    }

    /// The mailbox address, as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this mailbox is a shared-memory ring (`shm:/NAME`).
    pub fn is_ring(&self) -> bool {
        matches!(self.inner, Inner::Ring(_))
    }

    /// The largest message it takes.
    pub fn max_message_len(&self) -> usize {
        match &self.inner {
            Inner::Queue(q) => q.max_message_size(),
            Inner::Ring(r) => r.max,
        }
    }

    /// Messages waiting now ([`Error::Unsupported`] for a ring).
    pub fn len(&self) -> Result<usize, Error> {
        match &self.inner {
            Inner::Queue(q) => q
                .attributes()
                .map(|a| a.current_messages)
                .map_err(|source| Error::Io {
                    context: format!("mq_getattr on {}", self.name),
                    source,
                }),
            Inner::Ring(_) => Err(self.unsupported("counting the waiting messages")),
        }
    }

    /// Whether no message is waiting ([`Error::Unsupported`] for a ring).
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    fn unsupported(&self, what: &str) -> Error {
        Error::Unsupported {
            what: what.into(),
            mechanism: format!("the ring mailbox {}", self.name),
        }
    }

    /// Sends one message (priority 0), blocking while the mailbox is full.
    pub fn send(&self, msg: &[u8]) -> Result<(), Error> {
        self.send_wait(msg, 0, Wait::Forever)
    }

    /// Sends without blocking: [`Error::Full`] when the mailbox is full.
    pub fn try_send(&self, msg: &[u8]) -> Result<(), Error> {
        self.send_wait(msg, 0, Wait::NoWait)
    }

    /// Sends, giving up with [`Error::Timeout`] after `timeout`.
    pub fn send_timeout(&self, msg: &[u8], timeout: Duration) -> Result<(), Error> {
        self.send_wait(msg, 0, Wait::timeout(timeout))
    }

    /// Sends with a priority (higher is received first), waiting as `wait` allows. A ring
    /// mailbox has no priorities: only 0 is accepted ([`Error::Unsupported`] otherwise).
    pub fn send_wait(&self, msg: &[u8], priority: u32, wait: Wait) -> Result<(), Error> {
        let full = || Error::Full {
            what: format!("mailbox {}", self.name),
        };
        match &self.inner {
            Inner::Queue(q) => q.send_wait(msg, priority, wait).map_err(|e| match e {
                mq::SendError::TooLarge { len, max } => Error::TooLarge {
                    len,
                    max,
                    what: format!("mailbox {} (its max message size)", self.name),
                },
                mq::SendError::Full => full(),
                mq::SendError::Timeout => Error::Timeout,
                other => Error::Io {
                    context: format!("sending to mailbox {}", self.name),
                    source: std::io::Error::other(other),
                },
            }),
            Inner::Ring(r) => {
                if priority != 0 {
                    return Err(self.unsupported("a message priority"));
                }
                if msg.len() > r.max {
                    return Err(Error::TooLarge {
                        len: msg.len(),
                        max: r.max,
                        what: format!("mailbox {} (its max message size)", self.name),
                    });
                }
                let Some(mut p) = lock_wait(&r.prod, wait) else {
                    return Err(if wait == Wait::NoWait {
                        full()
                    } else {
                        Error::Timeout
                    });
                };
                p.send_wait(msg, wait).map_err(|e| self.ring_err(e))
            }
        }
    }

    fn ring_err(&self, e: ring::RingError) -> Error {
        super::ring_error(e, &format!("mailbox {}", self.name), "it was removed")
    }

    /// Receives one message, blocking.
    pub fn recv(&self) -> Result<Vec<u8>, Error> {
        self.recv_wait(Wait::Forever).map(|(m, _)| m)
    }

    /// Receives a waiting message: [`Error::WouldBlock`] when none.
    pub fn try_recv(&self) -> Result<Vec<u8>, Error> {
        self.recv_wait(Wait::NoWait).map(|(m, _)| m)
    }

    /// Receives one message, giving up with [`Error::Timeout`] after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Vec<u8>, Error> {
        self.recv_wait(Wait::timeout(timeout)).map(|(m, _)| m)
    }

    /// Receives one message and its priority (always 0 over a ring), waiting as `wait`
    /// allows.
    pub fn recv_wait(&self, wait: Wait) -> Result<(Vec<u8>, u32), Error> {
        match &self.inner {
            Inner::Queue(q) => q.recv_wait(wait).map_err(|e| match e {
                mq::RecvError::WouldBlock => Error::WouldBlock,
                mq::RecvError::Timeout => Error::Timeout,
                other => Error::Io {
                    context: format!("receiving from mailbox {}", self.name),
                    source: std::io::Error::other(other),
                },
            }),
            Inner::Ring(r) => {
                let Some(mut c) = lock_wait(&r.cons, wait) else {
                    return Err(if wait == Wait::NoWait {
                        Error::WouldBlock
                    } else {
                        Error::Timeout
                    });
                };
                let sample = c.recv_wait(wait).map_err(|e| self.ring_err(e))?;
                Ok((sample.to_vec(), 0))
            }
        }
    }
}

/// Ring mailbox defaults.
fn ring_options() -> ring::Options {
    ring::Options::new()
        .max_message(RING_MAX_MESSAGE)
        .slots(RING_SLOTS)
        .max_subscribers(RING_PLACES)
}

impl MessageSender for Mailbox {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), channel::Error> {
        Mailbox::send_wait(self, msg, 0, wait).map_err(super::direct::to_channel_error)
    }
    fn max_message_len(&self) -> Option<usize> {
        Some(Mailbox::max_message_len(self))
    }
}

impl MessageReceiver for Mailbox {
    fn recv_wait(&mut self, wait: Wait) -> Result<Message, channel::Error> {
        let (data, prio) =
            Mailbox::recv_wait(self, wait).map_err(super::direct::to_channel_error)?;
        let mut m = Message::new(data);
        m.meta = Meta {
            priority: (!self.is_ring()).then_some(prio),
            ..Default::default()
        };
        Ok(m)
    }
}
