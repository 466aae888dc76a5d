//! The zero-copy shared-memory ring: `shm:/NAME`.
//!
//! One [`Publisher`] and up to `max_subscribers` [`Subscriber`]s share a named POSIX
//! shared-memory segment (`/dev/shm/NAME`, mode `0o600`). Messages of any size up to the
//! maximum fixed at creation travel through a byte ring in that segment: the publisher writes
//! them in place ([`Publisher::loan`] gives a [`SampleMut`] over the ring's own bytes) or copies
//! them ([`Publisher::send`]); each subscriber reads them in place ([`Subscriber::recv`] gives a
//! [`Sample`] borrowing the ring's bytes). 1:1 is the same thing with one subscriber.
//!
//! ```no_run
//! use ipcx::ring::{Options, Publisher, Subscriber};
//! let mut sub = Subscriber::create("/frames", &Options::new())?; // creates the ring
//! let mut publ = Publisher::open("/frames", &Options::new())?;
//! let mut s = publ.loan(5)?;
//! s.copy_from_slice(b"hello");
//! s.send()?;
//! let msg = sub.recv()?;
//! assert_eq!(&*msg, b"hello");
//! # Ok::<(), ipcx::ring::Error>(())
//! ```
//!
//! For a work queue (N producers, M consumers, each message to exactly one consumer), see
//! [`work`]: [`Producer`] and [`Consumer`], with the same loans, samples, waiting and
//! dead-peer handling.
//!
//! # Delivery
//! * **Lossless** (default): the publisher never overwrites a message a live subscriber has not
//!   read; a full ring blocks [`Publisher::send`] (or fails with [`Error::Full`] for
//!   [`Publisher::try_send`]). A subscriber receives every message published after its
//!   `create`/`open` returned.
//! * **Overwrite** ([`Options::overwrite`]): the publisher never waits; a slow subscriber skips
//!   the oldest messages and [`Sample::missed`] says how many. Samples are then copies (the
//!   bytes in the ring may be overwritten at any time).
//!
//! # Request/reply traffic stays in the cache
//! A lossless ring that traffic keeps empty (the request ring and the reply ring of a
//! request/reply exchange: each message is read before the next one is sent) does not sweep
//! its whole capacity. Once a message of at most an eighth of the [`HOT_WINDOW`] (8 KiB)
//! would end past the window in the current lap, the publisher looks at the subscribers:
//! when all of them have read everything, the message starts the next lap instead. A stream
//! keeps the whole ring: the window is on for a send that follows a wait for a message on any
//! ring of the same thread (the request or the reply), off for one that does not.
//! [`Options::hot_window`] sets the window, or turns it off with 0. (Why this pays, with
//! figures: `crates/ipcx-bench/README.md`, section "ring".)
//!
//! # Waiting
//! [`WaitStrategy::SpinThenSleep`] (default) spins briefly, yields the CPU a few times, then
//! sleeps on a futex in the segment; [`WaitStrategy::Spin`] never sleeps (lowest latency, one
//! CPU busy; it still yields now and then so that on a small machine it never starves the peer
//! it waits for); [`WaitStrategy::Block`] sleeps at once. A sender makes a system call (futex
//! wake) only when a receiver announced that it sleeps.
//!
//! With the `tokio` feature, [`Subscriber::recv_async`] and [`Consumer::recv_async`] wait
//! without blocking a thread: a helper thread per async receiver sleeps on the futex and wakes
//! the task through a local eventfd (fds cannot be shared through the segment).
//!
//! # Dead peers
//! Every participant records its pid and process start time in the segment. A blocked call
//! looks at them every few milliseconds while it sleeps: a dead subscriber's place (and the
//! messages it held back) is reclaimed, so the publisher goes on; a subscriber whose publisher
//! died gets [`Error::PeerGone`] once it has read everything. The participant that created
//! the ring removes the name when it leaves last; if others remain, the last of them removes
//! it. A participant that only opened a ring whose creator is still there never removes it.
//! `ipcx clean` removes a ring whose participants all died.
//!
//! # Trust
//! An existing segment is opened only if its owner is trusted ([`Options::trust`]; by default
//! only the caller's own uid): another user's ring is [`Error::ForeignOwner`]. Its header is
//! read with `pread` and checked (magic, version, parameters) before anything is mapped, and
//! the file's size must be exactly the one the header gives ([`Error::Corrupt`] otherwise), so
//! a huge sparse file is never faulted in; an opener fills its page tables up front only when
//! the whole file is already allocated. Every position, length and record header read from the
//! segment is checked before use: a peer that writes garbage into the control words makes
//! calls fail with [`Error::Corrupt`], never read or write out of bounds. The payload bytes
//! themselves are shared with the peers: give access (the segment's mode) only to processes
//! you trust not to write into messages they do not own.
//!
//! A peer that truncates the segment under a live mapping does not kill this process with
//! `SIGBUS`: the fault is caught (the mapping then reads as zeros, see `sys::sigbus`), and
//! receiving, or waiting for a message or for room, fails with [`Error::Corrupt`]. The check
//! costs nothing per message: it happens on the slow paths, and a waiter also compares the
//! file's size with the layout every few milliseconds. A publisher that never has to wait
//! only sees that no subscriber is left (the zeroed table has none) and its messages go
//! nowhere: [`Publisher::check`] (one atomic load) tells it why, as the `shm:` channel sender
//! does when it finds no subscriber; [`Subscriber::check`] likewise.
#![allow(unsafe_code)] // the shared-memory exception: in-place views of ring records

#[cfg(feature = "tokio")]
mod bridge;
mod segment;
pub mod work;

use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};
use std::time::Duration;

pub use ipcx_ring::HOT_WINDOW;
use ipcx_ring::{Peeked, Reader, Reservation, RingError, Writer, record_size};
use segment::{Create, PATTERN_PUBSUB, PATTERN_WORK, ROLE_PUBLISHER, ROLE_SUBSCRIBER, Segment};
pub use segment::{Participant, is_ring, participants};
pub use work::{Consumer, Producer};

use crate::name::{InvalidName, PosixName};
use crate::sync::futex::{FutexError, wait_on, wake_on};
use crate::sys::shm::OpenMode;
use crate::trust::Trust;
use crate::wait::Wait;

/// Why a ring operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The name is not a valid POSIX name.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// No ring has this name.
    #[error("no ring shm:{name}: start a subscriber first (it creates the ring), or use create")]
    NotFound {
        /// The name.
        name: String,
    },
    /// `create_new` found the name taken.
    #[error("shm:{name} already exists: open it, or remove it (ipcx rm shm:{name}) if it is stale")]
    AlreadyExists {
        /// The name.
        name: String,
    },
    /// The segment's mode does not allow this user.
    #[error("permission denied on ring shm:{name}: check its owner and mode (ipcx ls)")]
    PermissionDenied {
        /// The name.
        name: String,
    },
    /// The creation parameters are unusable.
    #[error("invalid ring parameters: {reason}")]
    InvalidParameters {
        /// What is wrong.
        reason: &'static str,
    },
    /// The object is not an ipcx ring.
    #[error("{name} is not an ipcx ring (magic {found:#018x}): use another name")]
    NotARing {
        /// The name.
        name: String,
        /// The magic number found.
        found: u64,
    },
    /// The ring was made by an incompatible ipcx.
    #[error(
        "ring {name} has layout version {found}, this ipcx uses {expected}: upgrade the older side"
    )]
    VersionMismatch {
        /// The name.
        name: String,
        /// Found.
        found: u32,
        /// Expected.
        expected: u32,
    },
    /// A header field disagrees with what this side needs or computes.
    #[error("ring {name} is incompatible ({field}: expected {expected}, found {found})")]
    Incompatible {
        /// The name.
        name: String,
        /// The field.
        field: &'static str,
        /// Expected.
        expected: u64,
        /// Found.
        found: u64,
    },
    /// The segment is smaller than its header says.
    #[error("ring {name} is {size} bytes but needs {needed}: truncated or not a ring")]
    TooSmall {
        /// The name.
        name: String,
        /// Size found.
        size: u64,
        /// Size needed.
        needed: u64,
    },
    /// The creator did not finish initialising in time.
    #[error("ring {name} was never initialised: its creator died while creating it; remove it")]
    NotInitialised {
        /// The name.
        name: String,
    },
    /// A control word or record header holds an impossible value (a peer scribbled on it).
    #[error(
        "ring {name} is corrupt ({what}): a peer wrote garbage into it; remove it and start again"
    )]
    Corrupt {
        /// The name.
        name: String,
        /// What was wrong.
        what: &'static str,
    },
    /// Another live process publishes on this ring.
    #[error("ring {name} already has a publisher (pid {pid}): one publisher per ring")]
    PublisherExists {
        /// The name.
        name: String,
        /// Its pid.
        pid: i32,
    },
    /// Every subscriber place is taken by a live process.
    #[error("ring {name} has no free subscriber place (max {max}): create it with more")]
    TooManySubscribers {
        /// The name.
        name: String,
        /// The maximum.
        max: u32,
    },
    /// Every participant place of a work queue is taken by a live process.
    #[error("work queue {name} has no free participant place (max {max}): create it with more")]
    TooManyParticipants {
        /// The name.
        name: String,
        /// The maximum.
        max: u32,
    },
    /// The message is larger than the ring's maximum.
    #[error("message of {len} bytes is too large for this ring (at most {max} bytes)")]
    TooLarge {
        /// The length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// `try_send`/`try_loan`: no room now.
    #[error("the ring is full: a subscriber is behind; retry, or use a blocking send")]
    Full,
    /// `try_recv`: nothing waiting.
    #[error("no message waiting")]
    Empty,
    /// The deadline passed.
    #[error("timed out")]
    Timeout,
    /// The peer died (or left and nothing is left to read).
    #[error("peer gone: {what}")]
    PeerGone {
        /// Which peer.
        what: String,
    },
    /// Any other OS error.
    #[error("ring {name}: {source}")]
    Io {
        /// The name.
        name: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The segment belongs to a user that [`Options::trust`] does not trust.
    #[error(transparent)]
    ForeignOwner(#[from] crate::trust::ForeignOwner),
}

impl Error {
    fn from_io(name: &PosixName, source: std::io::Error) -> Error {
        let name = name.to_string();
        match source.raw_os_error() {
            Some(libc::ENOENT) => Error::NotFound { name },
            Some(libc::EEXIST) => Error::AlreadyExists { name },
            Some(libc::EACCES | libc::EPERM) => Error::PermissionDenied { name },
            _ => Error::Io { name, source },
        }
    }

    fn from_ring(name: &PosixName, e: RingError) -> Error {
        match e {
            RingError::Full => Error::Full,
            RingError::TooLarge { len, max } => Error::TooLarge { len, max },
            RingError::Corrupt(what) => Error::Corrupt {
                name: name.to_string(),
                what,
            },
        }
    }
}

/// How a blocked call waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WaitStrategy {
    /// Busy-poll (with an occasional `sched_yield`): lowest latency, one CPU busy.
    Spin,
    /// Spin briefly, yield a few times, then sleep on a futex (default).
    #[default]
    SpinThenSleep,
    /// Sleep on a futex at once.
    Block,
}

/// The data area of a ring by default: 4 MiB. Many small rings can ask for less with
/// [`Options::capacity`]. (Why 4 MiB: `crates/ipcx-bench/README.md`, section "ring".)
pub const DEFAULT_CAPACITY: usize = 4 << 20;

/// Ring creation and behaviour options.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Bytes in the data area (rounded up to a power of two; default 4 MiB, see
    /// [`DEFAULT_CAPACITY`]).
    pub capacity: usize,
    /// The largest message (default 64 KiB; the capacity grows to hold two of them).
    pub max_message: usize,
    /// Subscriber places (default 16); for a work queue, producer and consumer places
    /// together.
    pub max_subscribers: u32,
    /// Work queue: message slots (rounded up to a power of two; default: as many as fit in
    /// `capacity`, at least 2).
    pub slots: Option<usize>,
    /// Overwrite the oldest messages instead of waiting for slow subscribers.
    pub overwrite: bool,
    /// Mode of a created segment (default `0o600`).
    pub mode: u32,
    /// How blocked calls wait.
    pub strategy: WaitStrategy,
    /// Publisher of a lossless ring: the hot window in bytes (see [`HOT_WINDOW`]); `Some(0)`
    /// turns it off. Default `None`: [`HOT_WINDOW`] for rings of at least four windows, off
    /// for smaller ones.
    pub hot_window: Option<usize>,
    /// Whose existing segments are opened (default: the caller's own uid only); a segment
    /// of another user is refused with [`Error::ForeignOwner`].
    pub trust: Trust,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            capacity: DEFAULT_CAPACITY,
            max_message: 64 << 10,
            max_subscribers: 16,
            slots: None,
            overwrite: false,
            mode: 0o600,
            strategy: WaitStrategy::SpinThenSleep,
            hot_window: None,
            trust: Trust::own_user(),
        }
    }
}

impl Options {
    /// Defaults.
    pub fn new() -> Options {
        Options::default()
    }
    /// Data area size in bytes.
    pub fn capacity(mut self, bytes: usize) -> Options {
        self.capacity = bytes;
        self
    }
    /// Largest message.
    pub fn max_message(mut self, bytes: usize) -> Options {
        self.max_message = bytes;
        self
    }
    /// Subscriber places.
    pub fn max_subscribers(mut self, n: u32) -> Options {
        self.max_subscribers = n;
        self
    }
    /// Work queue: message slots.
    pub fn slots(mut self, n: usize) -> Options {
        self.slots = Some(n);
        self
    }
    /// Overwrite the oldest messages instead of blocking (pub/sub with a missed count).
    pub fn overwrite(mut self, on: bool) -> Options {
        self.overwrite = on;
        self
    }
    /// Creation mode.
    pub fn mode(mut self, mode: u32) -> Options {
        self.mode = mode;
        self
    }
    /// Wait strategy.
    pub fn strategy(mut self, s: WaitStrategy) -> Options {
        self.strategy = s;
        self
    }
    /// Hot window of the publisher (0: off); see [`HOT_WINDOW`].
    pub fn hot_window(mut self, bytes: usize) -> Options {
        self.hot_window = Some(bytes);
        self
    }
    /// Whose existing segments are opened (see [`Options::trust`](Options#structfield.trust)).
    pub fn trust(mut self, trust: Trust) -> Options {
        self.trust = trust;
        self
    }

    fn create(&self) -> Result<Create, Error> {
        let max_msg = u32::try_from(self.max_message).map_err(|_| Error::InvalidParameters {
            reason: "max_message must fit in 32 bits",
        })?;
        let need = record_size(u64::from(max_msg)) * 2;
        let capacity = (self.capacity as u64)
            .max(need)
            .max(64)
            .checked_next_power_of_two()
            .ok_or(Error::InvalidParameters {
                reason: "capacity too large",
            })?;
        Ok(Create {
            pattern: PATTERN_PUBSUB,
            params: ipcx_ring::Params {
                capacity,
                max_msg,
                overwrite: self.overwrite,
            },
            participants: self.max_subscribers,
            mode: self.mode,
        })
    }
}

impl Options {
    /// Work-queue creation parameters: `slots` slots of `max_message` bytes (rounded up to 16).
    fn create_work(&self) -> Result<Create, Error> {
        let max_msg = u32::try_from(self.max_message).map_err(|_| Error::InvalidParameters {
            reason: "max_message must fit in 32 bits",
        })?;
        let slot = segment::slot_size(max_msg);
        let slots = match self.slots {
            Some(n) => n as u64,
            None => (self.capacity as u64 / slot).max(2),
        };
        let slots = slots.max(1).checked_next_power_of_two();
        let capacity = slots.and_then(|n| n.checked_mul(slot));
        let (Some(slots), Some(capacity)) = (slots, capacity) else {
            return Err(Error::InvalidParameters {
                reason: "too many work-queue slots",
            });
        };
        if slots > segment::MAX_SLOTS || capacity > 1 << 40 {
            return Err(Error::InvalidParameters {
                reason: "work queue: at most 2^20 slots and 1 TiB of data",
            });
        }
        Ok(Create {
            pattern: PATTERN_WORK,
            params: ipcx_ring::Params {
                capacity,
                max_msg,
                overwrite: false,
            },
            participants: self.max_subscribers,
            mode: self.mode,
        })
    }
}

/// How long a receiver spins before yielding the CPU (bounded by time, not iterations: on a
/// machine with few cores the peer it waits for may need this very CPU), yields before
/// sleeping, and how often a sleeper wakes up to look for dead peers.
const SPIN_FOR: Duration = Duration::from_micros(5);
const YIELDS: u32 = 8;
const TICK: Duration = Duration::from_millis(20);

/// Waits until `ready(quick)` is true, as `wait` and `strategy` say. While spinning it is
/// called with `quick = true`: it may then look at less (one cache line) as long as it never
/// says true wrongly. `tick()` runs every [`TICK`] while waiting (liveness checks) and may end
/// the wait with an error. `spun`: the caller has just spun (and nothing came), so the spin
/// phase is skipped.
#[allow(clippy::too_many_arguments)]
fn wait_until(
    line: &ipcx_ring::WaitLine,
    strategy: WaitStrategy,
    policy: &mut SpinPolicy,
    spun: bool,
    wait: Wait,
    mut ready: impl FnMut(bool) -> bool,
    mut tick: impl FnMut() -> Result<(), Error>,
) -> Result<(), Error> {
    if ready(false) {
        return Ok(());
    }
    if wait == Wait::NoWait {
        return Err(Error::Timeout);
    }
    if strategy != WaitStrategy::Block {
        let already = spun;
        let spun = already || policy.should_spin(strategy);
        if spun && !already && spin(&mut ready) {
            policy.spin_worked();
            return Ok(());
        }
        for n in 0..YIELDS {
            std::thread::yield_now();
            if ready(false) {
                if spun && n == 0 {
                    // Nothing came while we spun, and it came as soon as we let go of the
                    // CPU: the peer needs this CPU. Spinning only delays it.
                    policy.spin_failed();
                }
                return Ok(());
            }
        }
    }
    let mut last_tick = std::time::Instant::now();
    loop {
        if wait.expired() {
            return Err(Error::Timeout);
        }
        if last_tick.elapsed() >= TICK {
            tick()?;
            last_tick = std::time::Instant::now();
        }
        if strategy == WaitStrategy::Spin {
            if spin(&mut ready) {
                return Ok(());
            }
            std::thread::yield_now();
            if ready(false) {
                return Ok(());
            }
            continue;
        }
        line.sleepers.fetch_add(1, Ordering::SeqCst);
        let seq = line.seq.load(Ordering::SeqCst);
        if ready(false) {
            line.sleepers.fetch_sub(1, Ordering::SeqCst);
            return Ok(());
        }
        let until = match wait.remaining() {
            Some(r) if r < TICK => wait,
            _ => Wait::timeout(TICK),
        };
        let r = wait_on(&line.seq, seq, until);
        line.sleepers.fetch_sub(1, Ordering::SeqCst);
        match r {
            Ok(_) | Err(FutexError::Timeout) | Err(FutexError::WouldBlock) => {}
            Err(FutexError::Io(source)) => {
                // A futex word whose page was truncated away faults (EFAULT): the liveness
                // check names that.
                tick()?;
                return Err(Error::Io {
                    name: String::new(),
                    source,
                });
            }
        }
        if ready(false) {
            return Ok(());
        }
    }
}

/// Whether a waiter spins before yielding. A waiter whose spin phase keeps failing while the
/// peer answers as soon as it yields shares a CPU with that peer (or the machine is
/// oversubscribed): it then yields at once, and tries spinning again every so often. One
/// failure proves little (an interrupt or a preemption can hold up a peer on another CPU), so
/// it changes nothing; from the second failure in a row the waits skipped double, from 2 to
/// [`SpinPolicy::BACKOFF`], and a spin that works starts over.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SpinPolicy {
    /// Waits left before spinning is tried again.
    skip: u32,
    /// Waits skipped after the last failure (0: the last spin worked; 1: one failure).
    backoff: u32,
}

impl SpinPolicy {
    /// The most waits that yield at once after spin phases proved useless.
    const BACKOFF: u32 = 256;

    fn should_spin(&mut self, strategy: WaitStrategy) -> bool {
        if strategy == WaitStrategy::Spin || self.skip == 0 {
            return true;
        }
        self.skip -= 1;
        false
    }
    /// Whether a waiter spins now (like `should_spin`, without counting a skipped wait).
    fn may_poll(&self, strategy: WaitStrategy) -> bool {
        strategy == WaitStrategy::Spin
            || (strategy == WaitStrategy::SpinThenSleep && self.skip == 0)
    }
    fn spin_worked(&mut self) {
        self.skip = 0;
        self.backoff = 0;
    }
    fn spin_failed(&mut self) {
        if self.backoff == 0 {
            self.backoff = 1;
            return;
        }
        self.backoff = (self.backoff * 2).clamp(2, Self::BACKOFF);
        self.skip = self.backoff;
    }
}

/// Busy-polls `ready(true)` for [`SPIN_FOR`]; returns whether it became true.
fn spin(ready: &mut impl FnMut(bool) -> bool) -> bool {
    let mut start = None;
    loop {
        for _ in 0..64 {
            if ready(true) {
                return true;
            }
            std::hint::spin_loop();
        }
        // The clock is read after the first polls: a quick answer costs no clock read.
        let now = std::time::Instant::now();
        if now.duration_since(*start.get_or_insert(now)) >= SPIN_FOR {
            return false;
        }
    }
}

/// Wakes the sleepers of `line`, if any (no system call otherwise).
#[inline]
pub(crate) fn notify(line: &ipcx_ring::WaitLine) {
    // Pairs with the sleeper's SeqCst increment then re-check: either it sees our update, or
    // we see it counted.
    fence(Ordering::SeqCst);
    if line.sleepers.load(Ordering::Relaxed) > 0 {
        line.seq.fetch_add(1, Ordering::SeqCst);
        let _ = wake_on(&line.seq, i32::MAX as u32);
    }
}

/// Extends a borrow of the segment to `'static`.
///
/// # Safety
/// The returned reference must not be used after the last `Arc<Segment>` it came from is
/// dropped: the owners below hold that `Arc` and drop the borrowing fields first.
unsafe fn extend<T: ?Sized>(r: &T) -> &'static T {
    // SAFETY: forwarded to the caller (the mapping stays valid while the Arc lives).
    unsafe { &*(r as *const T) }
}

/// The publishing side of a ring (one per ring).
#[derive(Debug)]
pub struct Publisher {
    writer: Writer<'static>,
    hot: HotGate,
    strategy: WaitStrategy,
    seg: Arc<Segment>,
    spin: SpinPolicy,
}

impl Publisher {
    /// Opens the ring `name`, creating it with `opts` when missing.
    pub fn create(name: &str, opts: &Options) -> Result<Publisher, Error> {
        Publisher::establish(name, OpenMode::Create, opts)
    }
    /// Creates the ring `name`; fails with [`Error::AlreadyExists`] if it exists.
    pub fn create_new(name: &str, opts: &Options) -> Result<Publisher, Error> {
        Publisher::establish(name, OpenMode::CreateNew, opts)
    }
    /// Opens the existing ring `name` (its own parameters apply; `opts` gives the strategy).
    pub fn open(name: &str, opts: &Options) -> Result<Publisher, Error> {
        Publisher::establish(name, OpenMode::Open, opts)
    }

    fn establish(name: &str, how: OpenMode, opts: &Options) -> Result<Publisher, Error> {
        let name = PosixName::new(name)?;
        let seg = Segment::establish(&name, how, &opts.create()?, &opts.trust)?;
        let seg = Arc::new(seg);
        let wc = seg.writer_cursor();
        if !Segment::claim(wc, ROLE_PUBLISHER) {
            return Err(Error::PublisherExists {
                name: name.to_string(),
                pid: wc.pid.load(Ordering::Relaxed) as i32,
            });
        }
        seg.header().writer_epoch.fetch_add(1, Ordering::AcqRel);
        // SAFETY: `writer` borrows from `seg`, which the Publisher keeps alive and drops after
        // `writer` (field order).
        let (ctl, table) = unsafe { (extend(seg.ctl()), extend(seg.table())) };
        let writer = match Writer::attach(ctl, table, seg.data(), seg.params) {
            Ok(mut w) => {
                if let Some(bytes) = opts.hot_window {
                    w.set_hot_window(bytes as u64);
                }
                w
            }
            Err(e) => {
                seg.leave(wc);
                return Err(Error::from_ring(&name, e));
            }
        };
        wc.state.store(ipcx_ring::ACTIVE, Ordering::Release);
        Ok(Publisher {
            hot: HotGate::new(&writer),
            writer,
            strategy: opts.strategy,
            seg,
            spin: SpinPolicy::default(),
        })
    }

    /// The largest message.
    pub fn max_message_len(&self) -> usize {
        self.seg.params.max_msg as usize
    }

    /// How many subscribers are attached now.
    pub fn subscribers(&self) -> usize {
        self.writer.active_readers()
    }

    /// Whether the segment is still sound: [`Error::Corrupt`] once another process truncated
    /// it under the mapping and an access hit a lost page (the mapping then reads as zeros:
    /// no subscriber is seen any more and nothing sent arrives). Costs one atomic load; the
    /// blocking calls check this, and the file's size, while they wait.
    pub fn check(&self) -> Result<(), Error> {
        self.seg.fault(false).map_or(Ok(()), Err)
    }

    /// The ring's name.
    pub fn name(&self) -> &str {
        self.seg.name.as_str()
    }

    /// Keeps the segment after every participant left (removed with `ipcx rm shm:NAME`).
    pub fn persist(mut self) -> Self {
        if let Some(s) = Arc::get_mut(&mut self.seg) {
            s.persist = true;
        }
        self
    }

    #[inline]
    fn reserve(&mut self, len: usize, wait: Wait) -> Result<Reservation, Error> {
        match self.writer.reserve(len) {
            Ok(res) => Ok(res),
            Err(e) => self.reserve_slow(e, len, wait),
        }
    }

    /// The ring said `e` to a reservation: wait for room (`Full`) or report the error.
    #[cold]
    #[inline(never)]
    fn reserve_slow(&mut self, e: RingError, len: usize, wait: Wait) -> Result<Reservation, Error> {
        if e != RingError::Full {
            return Err(self
                .seg
                .fault(true)
                .unwrap_or_else(|| Error::from_ring(&self.seg.name, e)));
        }
        let seg = Arc::clone(&self.seg);
        let mut result = None;
        let w = &mut self.writer;
        let r = wait_until(
            &seg.ctl().space_wait,
            self.strategy,
            &mut self.spin,
            false,
            wait,
            |_| match w.reserve(len) {
                Err(RingError::Full) => false,
                r => {
                    result = Some(r);
                    true
                }
            },
            || {
                seg.reap();
                seg.fault(true).map_or(Ok(()), Err)
            },
        );
        match (r, result) {
            (_, Some(Ok(res))) => Ok(res),
            (_, Some(Err(e))) => Err(Error::from_ring(&seg.name, e)),
            (Err(Error::Timeout), None) if wait == Wait::NoWait => Err(Error::Full),
            (Err(e), None) => Err(e),
            (Ok(()), None) => Err(Error::Full),
        }
    }

    /// Loans `len` writable bytes in the ring, waiting as `wait` says for room.
    #[inline]
    pub fn loan_wait(&mut self, len: usize, wait: Wait) -> Result<SampleMut<'_>, Error> {
        let res = self.reserve(len, wait)?;
        Ok(SampleMut { publ: self, res })
    }
    /// Loans `len` bytes, blocking until there is room.
    #[inline]
    pub fn loan(&mut self, len: usize) -> Result<SampleMut<'_>, Error> {
        self.loan_wait(len, Wait::Forever)
    }
    /// Loans `len` bytes if there is room now ([`Error::Full`] otherwise).
    pub fn try_loan(&mut self, len: usize) -> Result<SampleMut<'_>, Error> {
        self.loan_wait(len, Wait::NoWait)
    }

    /// Copies `msg` into the ring, waiting as `wait` says for room.
    #[inline]
    pub fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        let res = self.reserve(msg.len(), wait)?;
        self.writer.write(&res, 0, msg);
        self.commit(res, msg.len());
        Ok(())
    }
    /// Sends a copy of `msg`, blocking while the ring is full.
    #[inline]
    pub fn send(&mut self, msg: &[u8]) -> Result<(), Error> {
        self.send_wait(msg, Wait::Forever)
    }
    /// Sends a copy of `msg` if there is room now.
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), Error> {
        self.send_wait(msg, Wait::NoWait)
    }
    /// Sends a copy of `msg`, giving up after `timeout`.
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), Error> {
        self.send_wait(msg, Wait::timeout(timeout))
    }
    /// Sends a plain-data value (its bytes).
    pub fn send_value<T: zerocopy::IntoBytes + zerocopy::Immutable>(
        &mut self,
        value: &T,
    ) -> Result<(), Error> {
        self.send(value.as_bytes())
    }

    #[inline(always)]
    fn commit(&mut self, res: Reservation, len: usize) {
        self.writer.commit(res, len);
        notify(&self.writer.ctl().data_wait);
        self.hot.sent(&mut self.writer);
    }
}

thread_local! {
    /// Whether this thread waited for a message on a ring since its last ring send.
    static RECEIVE_WAITED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Notes that this thread waits for a message (see [`HotGate`]).
#[inline]
pub(crate) fn waiting_for_a_message() {
    RECEIVE_WAITED.set(true);
}

/// Turns the writer's hot window on for sends that follow a wait for a message on the same
/// thread, and off for the others. A request/reply peer sends after waiting for the reply
/// (or the request); a streaming publisher sends again at once. Both find their subscriber
/// at the head when the writer looks, so the writer alone cannot tell them apart; a stream
/// whose thread waits for its input is paced by that input.
#[derive(Debug)]
struct HotGate {
    /// The window asked for (0: off for good).
    window: u64,
    /// Whether the writer's window is on now.
    on: bool,
}

impl HotGate {
    fn new(writer: &Writer<'_>) -> HotGate {
        HotGate {
            window: writer.hot_window(),
            on: true,
        }
    }

    /// After a send: the window for the next one.
    #[inline(always)]
    fn sent(&mut self, writer: &mut Writer<'_>) {
        if self.window != 0 {
            let waited = RECEIVE_WAITED.replace(false);
            if waited != self.on {
                self.switch(writer, waited);
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn switch(&mut self, writer: &mut Writer<'_>, on: bool) {
        self.on = on;
        writer.set_hot_window(if on { self.window } else { 0 });
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.seg.leave(self.seg.writer_cursor());
        notify(&self.seg.ctl().data_wait);
    }
}

/// A message being written in place in the ring: `DerefMut<Target = [u8]>`.
///
/// Handing out `&mut [u8]` is sound: the bytes are reserved for this publisher (no subscriber
/// reads past the published head, and the publisher is the only writer), they stay mapped as
/// long as the publisher (which this borrows) lives, and nothing else touches them until
/// [`SampleMut::send`] publishes them. Dropping it without sending publishes nothing.
#[derive(Debug)]
pub struct SampleMut<'a> {
    publ: &'a mut Publisher,
    res: Reservation,
}

impl SampleMut<'_> {
    /// Publishes the message.
    #[inline]
    pub fn send(self) -> Result<(), Error> {
        let len = self.res.len;
        self.publ.commit(self.res, len);
        Ok(())
    }
    /// Publishes only the first `len` bytes.
    #[inline]
    pub fn send_len(self, len: usize) -> Result<(), Error> {
        self.publ.commit(self.res, len);
        Ok(())
    }
    /// The loan as a plain-data value, when the length and alignment fit.
    pub fn as_value_mut<T>(&mut self) -> Option<&mut T>
    where
        T: zerocopy::FromBytes + zerocopy::IntoBytes + zerocopy::KnownLayout,
    {
        T::mut_from_bytes(&mut self[..]).ok()
    }
}

impl std::ops::Deref for SampleMut<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        let p = self.publ.writer.data().ptr(self.res.offset, self.res.len);
        // SAFETY: the reserved range is inside the data area (checked by `ptr`), reserved for
        // this publisher alone until committed (see the type's docs), and mapped while
        // `self.publ` is borrowed.
        unsafe { std::slice::from_raw_parts(p, self.res.len) }
    }
}

impl std::ops::DerefMut for SampleMut<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        let p = self.publ.writer.data().ptr(self.res.offset, self.res.len);
        // SAFETY: as for `deref`; `&mut self` makes this the only reference to the bytes.
        unsafe { std::slice::from_raw_parts_mut(p, self.res.len) }
    }
}

/// The receiving side of a ring (each subscriber receives every message).
#[derive(Debug)]
pub struct Subscriber {
    reader: Reader<'static>,
    strategy: WaitStrategy,
    buf: Vec<u8>,
    #[cfg(feature = "tokio")]
    bridge: Option<bridge::Bridge>,
    seg: Arc<Segment>,
    /// When the publisher's liveness was last read from `/proc` (a read costs microseconds,
    /// so an empty ring does not pay it on every receive: at most once per [`TICK`]).
    liveness_checked: Option<std::time::Instant>,
    spin: SpinPolicy,
}

impl Subscriber {
    /// Opens the ring `name`, creating it with `opts` when missing.
    pub fn create(name: &str, opts: &Options) -> Result<Subscriber, Error> {
        Subscriber::establish(name, OpenMode::Create, opts)
    }
    /// Creates the ring `name`; fails with [`Error::AlreadyExists`] if it exists.
    pub fn create_new(name: &str, opts: &Options) -> Result<Subscriber, Error> {
        Subscriber::establish(name, OpenMode::CreateNew, opts)
    }
    /// Opens the existing ring `name`.
    pub fn open(name: &str, opts: &Options) -> Result<Subscriber, Error> {
        Subscriber::establish(name, OpenMode::Open, opts)
    }

    fn establish(name: &str, how: OpenMode, opts: &Options) -> Result<Subscriber, Error> {
        let name = PosixName::new(name)?;
        let seg = Segment::establish(&name, how, &opts.create()?, &opts.trust)?;
        let seg = Arc::new(seg);
        let mut claimed = seg
            .table()
            .iter()
            .find(|c| Segment::claim(c, ROLE_SUBSCRIBER));
        if claimed.is_none() && seg.reap() > 0 {
            claimed = seg
                .table()
                .iter()
                .find(|c| Segment::claim(c, ROLE_SUBSCRIBER));
        }
        let Some(cursor) = claimed else {
            return Err(Error::TooManySubscribers {
                name: name.to_string(),
                max: seg.participants,
            });
        };
        // SAFETY: `reader` borrows from `seg`, which the Subscriber keeps alive and drops after
        // `reader` (field order).
        let (ctl, cursor) = unsafe { (extend(seg.ctl()), extend(cursor)) };
        let reader = match Reader::join(ctl, cursor, seg.data(), seg.params) {
            Ok(r) => r,
            Err(e) => {
                seg.leave(cursor);
                return Err(Error::from_ring(&name, e));
            }
        };
        // A publisher waiting for this joiner to finish may sleep.
        notify(&seg.ctl().space_wait);
        let buf = if seg.params.overwrite {
            vec![0; seg.params.max_msg as usize]
        } else {
            Vec::new()
        };
        Ok(Subscriber {
            reader,
            strategy: opts.strategy,
            buf,
            #[cfg(feature = "tokio")]
            bridge: None,
            seg,
            liveness_checked: None,
            spin: SpinPolicy::default(),
        })
    }

    /// The largest message.
    pub fn max_message_len(&self) -> usize {
        self.seg.params.max_msg as usize
    }

    /// The ring's name.
    pub fn name(&self) -> &str {
        self.seg.name.as_str()
    }

    /// Keeps the segment after every participant left.
    pub fn persist(mut self) -> Self {
        if let Some(s) = Arc::get_mut(&mut self.seg) {
            s.persist = true;
        }
        self
    }

    /// Whether the segment is still sound (see [`Publisher::check`]). A message received
    /// while another process truncates the segment may read as zeros in part: call this after
    /// using a [`Sample`] when that matters.
    pub fn check(&self) -> Result<(), Error> {
        self.seg.fault(false).map_or(Ok(()), Err)
    }

    /// Whether a live publisher is attached.
    pub fn publisher_alive(&self) -> bool {
        let wc = self.seg.writer_cursor();
        wc.state.load(Ordering::Acquire) != ipcx_ring::FREE && segment::cursor_alive(wc)
    }

    /// `Some(error)` when waiting is pointless: a publisher attached once and is now gone
    /// (the caller has already found the ring empty).
    fn gone(&self) -> Option<Error> {
        let epoch = self.seg.header().writer_epoch.load(Ordering::Acquire);
        if epoch > 0 && !self.publisher_alive() {
            self.seg.reap();
            return Some(Error::PeerGone {
                what: format!("the publisher of shm:{} left or died", self.seg.name),
            });
        }
        None
    }

    /// The next message if one is waiting (a copy in `buf` on overwrite rings).
    fn try_get(&mut self) -> Result<Option<Got>, Error> {
        let got = if self.seg.params.overwrite {
            let buf = &mut self.buf;
            self.reader
                .try_recv(buf)
                .map(|o| o.map(|(len, missed)| Got::Copied { len, missed }))
        } else {
            self.reader.peek().map(|o| o.map(Got::Shared))
        };
        got.map_err(|e| {
            self.seg
                .fault(true)
                .unwrap_or_else(|| Error::from_ring(&self.seg.name, e))
        })
    }

    fn sample(&mut self, got: Got) -> Sample<'_> {
        let kind = match got {
            Got::Shared(p) => SampleKind::Shared(p),
            Got::Copied { len, missed } => SampleKind::Copied { len, missed },
        };
        Sample { kind, sub: self }
    }

    /// Receives the next message, waiting as `wait` says.
    #[inline]
    pub fn recv_wait(&mut self, wait: Wait) -> Result<Sample<'_>, Error> {
        // Fast path: a message is waiting in a lossless ring.
        if !self.reader.params().overwrite
            && let Ok(Some(p)) = self.reader.peek()
        {
            return Ok(Sample {
                sub: self,
                kind: SampleKind::Shared(p),
            });
        }
        self.recv_slow(wait)
    }

    #[inline(never)]
    fn recv_slow(&mut self, wait: Wait) -> Result<Sample<'_>, Error> {
        let got = loop {
            if let Some(got) = self.try_get()? {
                break got;
            }
            if let Some(e) = self.seg.fault(false) {
                return Err(e);
            }
            // Spin first, polling one word (the stamp at our tail, with a hint for the line
            // after it) and reading the clock only every few dozen polls: a peer that answers
            // within the spin window costs no look at the clock, the writer's line or the
            // participants.
            let mut spun = false;
            if wait != Wait::NoWait {
                waiting_for_a_message();
            }
            if wait != Wait::NoWait && self.spin.may_poll(self.strategy) {
                let reader = &self.reader;
                if spin(&mut |_| {
                    reader.prefetch_next();
                    reader.poll_ready()
                }) {
                    self.spin.spin_worked();
                    continue;
                }
                spun = true;
            }
            // Nothing at the tail: an empty ring, or a broken one (which must not look empty
            // forever).
            self.reader
                .check()
                .map_err(|e| Error::from_ring(&self.seg.name, e))?;
            let due = self
                .liveness_checked
                .is_none_or(|t| t.elapsed() >= TICK || wait == Wait::NoWait);
            if due {
                self.liveness_checked = Some(std::time::Instant::now());
                if let Some(e) = self.seg.fault(true) {
                    return Err(e);
                }
                if let Some(e) = self.gone() {
                    if self.reader.has_data() {
                        continue;
                    }
                    return Err(e);
                }
            }
            let mut spin = std::mem::take(&mut self.spin);
            let this = &*self;
            let r = wait_until(
                &this.seg.ctl().data_wait,
                this.strategy,
                &mut spin,
                spun,
                wait,
                |quick| {
                    if quick {
                        this.reader.poll_ready()
                    } else {
                        this.reader.has_data()
                    }
                },
                || {
                    this.seg.reap();
                    if let Some(e) = this.seg.fault(true) {
                        return Err(e);
                    }
                    // A publisher that died while we wait ends the wait.
                    match this.gone() {
                        Some(e) if !this.reader.has_data() => Err(e),
                        _ => Ok(()),
                    }
                },
            );
            self.spin = spin;
            match r {
                Ok(()) => continue,
                Err(Error::Timeout) if wait == Wait::NoWait => {
                    return Err(self.gone().unwrap_or(Error::Empty));
                }
                Err(Error::Timeout) => {
                    // A last look: the publisher may have died while we slept.
                    if let Some(e) = self.gone()
                        && !self.reader.has_data()
                    {
                        return Err(e);
                    }
                    return Err(Error::Timeout);
                }
                Err(e) => return Err(e),
            }
        };
        Ok(self.sample(got))
    }

    /// Receives the next message without blocking the thread (tokio).
    ///
    /// The first call starts a small helper thread for this subscriber: it sleeps on the
    /// ring's futex while the task waits, and wakes the task through a local eventfd
    /// registered with tokio (`AsyncFd`). Cost: one mostly idle thread per async receiver and
    /// one eventfd write per wake-up; the publisher is unchanged (it wakes the futex only when
    /// someone sleeps on it). Cancel-safe: nothing is consumed until the future completes.
    #[cfg(feature = "tokio")]
    pub async fn recv_async(&mut self) -> Result<Sample<'_>, Error> {
        let got = loop {
            if let Some(got) = self.try_get()? {
                break got;
            }
            if let Some(e) = self.seg.fault(true) {
                return Err(e);
            }
            self.reader
                .check()
                .map_err(|e| Error::from_ring(&self.seg.name, e))?;
            if let Some(e) = self.gone() {
                if self.reader.has_data() {
                    continue;
                }
                return Err(e);
            }
            if self.bridge.is_none() {
                let at = self
                    .seg
                    .table()
                    .iter()
                    .position(|c| std::ptr::eq(c, self.reader.cursor()))
                    .unwrap_or(0);
                let b = bridge::Bridge::start(
                    Arc::clone(&self.seg),
                    |seg| Some(&seg.ctl().data_wait),
                    move |seg| {
                        let head = seg.ctl().writer.head.load(Ordering::Acquire);
                        let tail = seg.table()[at].tail.load(Ordering::Acquire);
                        let wc = seg.writer_cursor();
                        let gone = seg.header().writer_epoch.load(Ordering::Acquire) > 0
                            && (wc.state.load(Ordering::Acquire) == ipcx_ring::FREE
                                || !segment::cursor_alive(wc));
                        head != tail || gone
                    },
                )
                .map_err(|source| Error::Io {
                    name: self.seg.name.to_string(),
                    source,
                })?;
                self.bridge = Some(b);
            }
            if let Some(b) = &self.bridge {
                waiting_for_a_message();
                b.wait().await.map_err(|source| Error::Io {
                    name: self.seg.name.to_string(),
                    source,
                })?;
            }
        };
        Ok(self.sample(got))
    }

    /// Receives the next message, blocking.
    #[inline]
    pub fn recv(&mut self) -> Result<Sample<'_>, Error> {
        self.recv_wait(Wait::Forever)
    }
    /// Receives a message if one is waiting ([`Error::Empty`] otherwise).
    pub fn try_recv(&mut self) -> Result<Sample<'_>, Error> {
        self.recv_wait(Wait::NoWait)
    }
    /// Receives a message, giving up after `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Sample<'_>, Error> {
        self.recv_wait(Wait::timeout(timeout))
    }
    /// Receives a plain-data value (a copy); [`Error::Incompatible`] if the size differs.
    pub fn recv_value<T: zerocopy::FromBytes>(&mut self) -> Result<T, Error> {
        let s = self.recv()?;
        T::read_from_bytes(&s).map_err(|_| Error::Incompatible {
            name: s.sub.seg.name.to_string(),
            field: "message length",
            expected: size_of::<T>() as u64,
            found: s.len() as u64,
        })
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.seg.leave(self.reader.cursor());
        notify(&self.seg.ctl().space_wait);
    }
}

enum Got {
    Shared(Peeked),
    Copied { len: usize, missed: u64 },
}

#[derive(Debug)]
enum SampleKind {
    Shared(Peeked),
    Copied { len: usize, missed: u64 },
}

/// A received message: `Deref<Target = [u8]>`, in place in the ring (lossless rings) or a copy
/// (overwrite rings).
///
/// Borrowing the ring's bytes is sound: the record lies inside the data area (its header was
/// checked), the publisher does not reuse it until this subscriber's tail moves past it, and
/// the tail moves only when the `Sample` is dropped; the borrow of the subscriber keeps the
/// mapping alive. (A peer that ignores the protocol and writes into the segment anyway can
/// change the bytes under you, never make ipcx access memory outside the segment.)
#[derive(Debug)]
pub struct Sample<'a> {
    sub: &'a mut Subscriber,
    kind: SampleKind,
}

impl Sample<'_> {
    /// How many messages this subscriber missed just before this one (overwrite rings).
    pub fn missed(&self) -> u64 {
        match self.kind {
            SampleKind::Copied { missed, .. } => missed,
            SampleKind::Shared(_) => 0,
        }
    }
    /// The message as a plain-data value, in place, when the length and alignment fit.
    pub fn as_value<T>(&self) -> Option<&T>
    where
        T: zerocopy::FromBytes + zerocopy::KnownLayout + zerocopy::Immutable,
    {
        T::ref_from_bytes(&self[..]).ok()
    }
}

impl std::ops::Deref for Sample<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self.kind {
            SampleKind::Shared(p) => {
                let ptr = self.sub.reader.data().ptr(p.offset, p.len);
                // SAFETY: see the type's docs: in bounds (checked by `ptr`), not reused by the
                // publisher until this Sample is dropped, mapped while `sub` is borrowed.
                unsafe { std::slice::from_raw_parts(ptr, p.len) }
            }
            SampleKind::Copied { len, .. } => &self.sub.buf[..len.min(self.sub.buf.len())],
        }
    }
}

impl Drop for Sample<'_> {
    #[inline]
    fn drop(&mut self) {
        if let SampleKind::Shared(p) = self.kind {
            self.sub.reader.release(p);
            notify(&self.sub.reader.ctl().space_wait);
        }
    }
}

/// Removes the ring `name` (after checking that it is a ring). Participants keep using it.
pub fn remove(name: &str) -> Result<(), Error> {
    let name = PosixName::new(name)?;
    let file = format!("/dev/shm/{}", name.as_str().trim_start_matches('/'));
    if std::fs::symlink_metadata(&file).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return Err(Error::NotFound {
            name: name.to_string(),
        });
    }
    if !is_ring(name.as_str()) {
        return Err(Error::NotARing {
            name: name.to_string(),
            found: 0,
        });
    }
    crate::sys::shm::shm_unlink(&name).map_err(|e| Error::from_io(&name, e))
}

/// Fuzzing hook: a freshly initialised segment image (a publish/subscribe ring, or a work
/// queue when `work`) with the parameters of `opts`.
#[doc(hidden)]
pub fn fresh_segment_image(work: bool, opts: &Options) -> Result<Vec<u8>, Error> {
    let c = if work {
        opts.create_work()?
    } else {
        opts.create()?
    };
    Segment::fresh_image(&c)
}

/// Fuzzing hook: validates `bytes` as a segment image (a private copy), like opening a named
/// ring does, then walks it as a participant would: every active subscriber cursor reads all
/// its records, a publisher appends a few, or on a work queue the held slots are given back,
/// every queued message is taken and released and a few are sent. Returns how many records
/// it read. Any inconsistency must be an error, never a panic or an access outside the image.
#[doc(hidden)]
pub fn check_segment_image(bytes: &[u8]) -> Result<usize, Error> {
    let seg = Segment::from_image(bytes)?;
    let err = |e| Error::from_ring(&seg.name, e);
    let mut n = 0;
    if let Some(q) = seg.work() {
        for c in seg.table() {
            let held = c.holding.swap(0, Ordering::AcqRel);
            seg.give_back(held, c.tail.load(Ordering::Acquire));
        }
        for _ in 0..2 * q.slots() + 2 {
            let Some((idx, len)) = q.take().map_err(err)? else {
                break;
            };
            let _ = q.data().ptr(q.slot_offset(idx), len);
            q.release(idx).map_err(err)?;
            n += 1;
        }
        for _ in 0..q.slots() + 1 {
            let Some(idx) = q.acquire().map_err(err)? else {
                break;
            };
            q.data().copy_in(q.slot_offset(idx), b"fuzz", false);
            q.publish(idx, 4).map_err(err)?;
        }
        return Ok(n);
    }
    let p = seg.params;
    let mut buf = vec![0u8; p.max_msg as usize];
    for c in seg.table() {
        if c.state.load(Ordering::Acquire) != ipcx_ring::ACTIVE {
            continue;
        }
        let mut r = Reader::resume(seg.ctl(), c, seg.data(), p).map_err(err)?;
        for _ in 0..p.capacity / 16 + 2 {
            if p.overwrite {
                if r.try_recv(&mut buf).map_err(err)?.is_none() {
                    break;
                }
            } else {
                let Some(rec) = r.peek().map_err(err)? else {
                    r.check().map_err(err)?;
                    break;
                };
                let _ = r.data().ptr(rec.offset, rec.len);
                r.release(rec);
            }
            n += 1;
        }
    }
    let mut w = Writer::attach(seg.ctl(), seg.table(), seg.data(), p).map_err(err)?;
    for i in 0..4u8 {
        let len = (usize::from(i) * 7).min(p.max_msg as usize);
        match w.try_send(&buf[..len]) {
            Ok(()) => {}
            Err(RingError::Full) => break,
            Err(e) => return Err(err(e)),
        }
    }
    Ok(n)
}

/// Fuzzing hook: a freshly initialised publish/subscribe segment in private memory that
/// threads share live: one reads ([`LiveSegment::reader`]), one publishes
/// ([`LiveSegment::writer`]) and one scribbles on it ([`LiveSegment::poke`]) at the same time.
#[doc(hidden)]
#[derive(Debug)]
pub struct LiveSegment {
    seg: Segment,
}

impl LiveSegment {
    /// A fresh segment with the parameters of `opts`.
    pub fn new(opts: &Options) -> Result<LiveSegment, Error> {
        Ok(LiveSegment {
            seg: Segment::fresh(&opts.create()?)?,
        })
    }

    /// The segment's length in bytes.
    pub fn len(&self) -> usize {
        self.seg.len()
    }

    /// Always false.
    pub fn is_empty(&self) -> bool {
        self.seg.len() == 0
    }

    /// Writes `byte` at `offset` (ignored past the end), as a hostile peer would.
    pub fn poke(&self, offset: usize, byte: u8) {
        self.seg.poke(offset, byte);
    }

    /// The publisher's side.
    pub fn writer(&self) -> Result<LiveWriter<'_>, Error> {
        let s = &self.seg;
        let w = Writer::attach(s.ctl(), s.table(), s.data(), s.params)
            .map_err(|e| Error::from_ring(&s.name, e))?;
        Ok(LiveWriter { w })
    }

    /// A subscriber's side, on the first free participant place.
    pub fn reader(&self) -> Result<LiveReader<'_>, Error> {
        let s = &self.seg;
        let cursor = s
            .table()
            .iter()
            .find(|c| Segment::claim_free(c, segment::ROLE_SUBSCRIBER))
            .ok_or(Error::TooManySubscribers {
                name: s.name.to_string(),
                max: s.participants,
            })?;
        let r = Reader::join(s.ctl(), cursor, s.data(), s.params)
            .map_err(|e| Error::from_ring(&s.name, e))?;
        Ok(LiveReader {
            r,
            buf: vec![0; s.params.max_msg as usize],
            seg: s,
        })
    }
}

/// Fuzzing hook: the publisher of a [`LiveSegment`].
#[doc(hidden)]
#[derive(Debug)]
pub struct LiveWriter<'a> {
    w: Writer<'a>,
}

impl LiveWriter<'_> {
    /// Sends `msg` if there is room ([`Error::Full`] otherwise).
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), Error> {
        self.w.try_send(msg).map_err(|e| match e {
            RingError::Full => Error::Full,
            RingError::TooLarge { len, max } => Error::TooLarge { len, max },
            RingError::Corrupt(what) => Error::Corrupt {
                name: "/image".into(),
                what,
            },
        })
    }
}

/// Fuzzing hook: a subscriber of a [`LiveSegment`].
#[doc(hidden)]
#[derive(Debug)]
pub struct LiveReader<'a> {
    r: Reader<'a>,
    buf: Vec<u8>,
    seg: &'a Segment,
}

impl LiveReader<'_> {
    /// Receives the next message if one is there, without waiting, and copies it into `out`
    /// (cut to its length); returns its length, `None` when the ring looks empty.
    pub fn try_recv(&mut self, out: &mut Vec<u8>) -> Result<Option<usize>, Error> {
        let err = |e| Error::from_ring(&self.seg.name, e);
        if self.seg.params.overwrite {
            let Some((len, _missed)) = self.r.try_recv(&mut self.buf).map_err(err)? else {
                return Ok(None);
            };
            out.clear();
            out.extend_from_slice(&self.buf[..len.min(self.buf.len())]);
            return Ok(Some(len));
        }
        let Some(p) = self.r.peek().map_err(err)? else {
            self.r.check().map_err(err)?;
            return Ok(None);
        };
        out.resize(p.len, 0);
        self.r.data().copy_out(p.offset, out, true);
        self.r.release(p);
        Ok(Some(p.len))
    }
}

#[cfg(test)]
mod tests {
    use super::{Error, HOT_WINDOW, Options, Publisher, SpinPolicy, Subscriber, WaitStrategy};
    use std::time::Duration;

    /// The hot window is on for a send that follows a wait for a message on the same thread
    /// (request/reply), off for one that does not (a stream).
    #[test]
    fn the_hot_window_follows_waits_for_messages() {
        let name = format!("/ipcx-unit-hotwait-{}", std::process::id());
        let mut sub = Subscriber::create_new(&name, &Options::new()).unwrap();
        let mut publ = Publisher::open(&name, &Options::new()).unwrap();
        super::remove(&name).unwrap();
        let window_after = |publ: &mut Publisher, sub: &mut Subscriber, wait: bool| {
            if wait {
                // Nothing to read: the receive waits 1 ms.
                assert!(matches!(
                    sub.recv_timeout(Duration::from_millis(1)),
                    Err(Error::Timeout)
                ));
            }
            publ.send(b"x").unwrap();
            sub.try_recv().unwrap();
            publ.writer.hot_window()
        };
        let (p, s) = (&mut publ, &mut sub);
        assert_eq!(window_after(p, s, false), 0, "a send at once streams");
        assert_eq!(window_after(p, s, true), HOT_WINDOW, "a send after a wait");
        assert_eq!(window_after(p, s, true), HOT_WINDOW);
        assert_eq!(window_after(p, s, false), 0);
        // A receive that finds its message at once is no wait.
        p.send(b"y").unwrap();
        s.recv().unwrap();
        assert_eq!(window_after(p, s, false), 0);
    }

    /// A publisher starts with the default window, or none when the options say 0.
    #[test]
    fn publisher_hot_window_options() {
        for (opts, want) in [
            (Options::new(), HOT_WINDOW),
            (Options::new().hot_window(0), 0),
            (Options::new().hot_window(4096), 4096),
        ] {
            let name = format!("/ipcx-unit-hot-{}-{want}", std::process::id());
            let publ = Publisher::create_new(&name, &opts).unwrap();
            super::remove(&name).unwrap();
            assert_eq!((publ.writer.hot_window(), publ.hot.window), (want, want));
        }
    }

    fn skipped(p: &mut SpinPolicy) -> u32 {
        let mut n = 0;
        while !p.should_spin(WaitStrategy::SpinThenSleep) {
            n += 1;
        }
        n
    }

    /// One failed spin costs nothing; failures in a row back off exponentially up to the cap;
    /// a spin that works starts over; a spinning strategy always spins.
    #[test]
    fn spin_backoff_doubles_and_resets() {
        let mut p = SpinPolicy::default();
        assert!(p.may_poll(WaitStrategy::SpinThenSleep));
        let mut seen = Vec::new();
        for _ in 0..10 {
            p.spin_failed();
            assert!(p.may_poll(WaitStrategy::Spin));
            seen.push(skipped(&mut p));
        }
        assert_eq!(seen, [0, 2, 4, 8, 16, 32, 64, 128, 256, 256]);
        p.spin_worked();
        p.spin_failed();
        assert_eq!(skipped(&mut p), 0);
        p.spin_failed();
        assert!(!p.may_poll(WaitStrategy::SpinThenSleep));
        assert_eq!(skipped(&mut p), 2);
        assert!(!p.may_poll(WaitStrategy::Block));
    }
}
