//! [`WaitSet`]: one thread waits on many sources at once, without async.
//!
//! Attach sources (channel receivers, pattern subscribers and pull ends, request/reply
//! listeners, [`EventFd`](crate::sync::EventFd)s, [`SignalReceiver`](crate::signal::SignalReceiver)s,
//! any pollable descriptor) and timers; each attachment gives a [`Key`]. Then
//! [`WaitSet::wait`] (or [`try_wait`](WaitSet::try_wait), [`wait_timeout`](WaitSet::wait_timeout),
//! [`wait_with`](WaitSet::wait_with) and a [`Wait`]) blocks until at least one is ready and
//! returns the keys of all that are: [`Ready`]. The caller then receives from those sources with
//! their own non-blocking calls (`try_recv`, `try_read`, `accept_wait(Wait::NoWait)`...).
//!
//! ```
//! use std::time::Duration;
//! use ipcx::sync::EventFd;
//! use ipcx::wait_set::WaitSet;
//!
//! let jobs = EventFd::new(0)?;
//! let mut set = WaitSet::new()?;
//! let jobs_key = set.attach(&jobs)?;
//! let tick = set.attach_interval(Duration::from_millis(5))?;
//!
//! assert!(set.try_wait().is_err()); // nothing ready yet
//! jobs.write(1)?; // in real life: another process or thread
//! let ready = set.wait()?;
//! assert!(ready.contains(jobs_key));
//! jobs.read()?; // consumed: no longer ready
//! let ready = set.wait()?; // only the timer is left to wake us
//! assert_eq!(ready.keys(), [tick]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Semantics
//! * **Level-triggered**: a source stays ready as long as it has something to do. A receiver
//!   with messages left (in the kernel, or already read into the receiver's own buffer) is
//!   reported again by the next wait; a source is ready also when its peer is gone or it
//!   failed, so that the next receive reports the error rather than the set hanging.
//! * **Housekeeping**: "something to do" may be work that yields no message: a connection to
//!   accept before its bytes arrive, a sender that closed, a partial frame. The receive then
//!   says `WouldBlock`; wait again (as with `epoll` itself, a receive after a wake-up is
//!   always non-blocking).
//! * **Timers**: [`attach_interval`](WaitSet::attach_interval) fires every period
//!   (a wait reports it once however many periods passed); [`attach_deadline`](WaitSet::attach_deadline)
//!   fires once, at an instant (a deadline already past fires at the next wait).
//! * **The set does not borrow its sources**: attach takes `&source` for the moment of the
//!   call, so that the caller can go on receiving from it (`&mut`). The set keeps its own
//!   duplicate of the source's descriptor until [`detach`](WaitSet::detach) or until the set is
//!   dropped: detach a source when you drop it (a dropped socket that is still attached stays
//!   open, and its peer does not see it close).
//!
//! # What can be attached
//! A type takes part by implementing [`Waitable`]: one method, [`Waitable::readiness`], gives
//! the descriptor that is readable while the source has something to do, and optionally a
//! [`Pending`] flag the source raises while it holds messages in its own buffer. In ipcx:
//! * channel receivers (`Box<dyn MessageReceiver>` from [`Endpoint::receiver`](crate::Endpoint::receiver),
//!   and the typed [`Receiver`](crate::channel::Receiver)) over `fifo:`, `mq:`, `unix:`,
//!   `unix-dgram:`, `unix-seqpacket:`, `tcp:` and `udp:`; the transport seam carries it
//!   ([`MessageReceiver::readiness`](crate::channel::MessageReceiver::readiness)). A
//!   `sysv-mq:` receiver cannot be waited on (System V queues have no descriptor: the kernel
//!   offers no way to poll them) and is refused with [`WaitSetError::NotPollable`]; poll it
//!   with `try_recv` from a [`attach_interval`](WaitSet::attach_interval) timer instead.
//! * connections ([`Connection::readiness`](crate::channel::Connection::readiness)) and listeners
//!   ([`Listener::readiness`](crate::channel::Listener::readiness)) over `unix:` and `tcp:`
//!   (a listener is ready while a connection waits to be accepted);
//! * the patterns: a pub/sub [`Subscriber`](crate::pattern::pubsub::Subscriber) (ready with a
//!   delivery, or with the error when a publisher goes), a push/pull
//!   [`Worker`](crate::pattern::pushpull::Worker) (a task, or the distributor's end), and a
//!   request/reply [`Server`](crate::pattern::reqrep::Server) in queue mode (a request to take).
//! * [`EventFd`](crate::sync::EventFd), [`SignalReceiver`](crate::signal::SignalReceiver), and
//!   any descriptor through [`WaitSet::attach_fd`].
//!
//! * the shared-memory ring: [`ring::Subscriber`](crate::ring::Subscriber), the `shm:`
//!   channel receiver and a pub/sub subscriber on a ring. A ring receiver sleeps on a futex in
//!   the segment, which no descriptor reflects: the ring's futex-to-fd wake-up (the helper
//!   thread its async receive uses, one per watched receiver) sleeps on that futex while the
//!   set waits and writes a local eventfd when a message comes ([`Readiness::with_arm`]); a
//!   publisher is unchanged.
//!
//! Not (yet) pollable, refused with [`WaitSetError::NotPollable`] rather than busy-polled:
//! System V queues, TLS connections (their decrypted bytes are buffered out of the socket's
//! sight), the ring's work queue ([`ring::Consumer`](crate::ring::Consumer)) and connections
//! over the ring (`shm:` links of the patterns and RPC).
//!
//! # References
//! [epoll(7)](https://man7.org/linux/man-pages/man7/epoll.7.html),
//! [timerfd_create(2)](https://man7.org/linux/man-pages/man2/timerfd_create.2.html).

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::sys::epoll;
use crate::wait::Wait;

/// Why a wait-set operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WaitSetError {
    /// [`WaitSet::try_wait`]: nothing is ready.
    #[error("nothing in the wait set is ready")]
    WouldBlock,
    /// The timeout passed with nothing ready.
    #[error("timed out with nothing in the wait set ready")]
    Timeout,
    /// [`WaitSet::wait`] on a set with nothing attached would block forever.
    #[error("the wait set is empty: attach a source or a timer before waiting without a timeout")]
    Empty,
    /// The source has no descriptor a wait set can watch.
    #[error("{what} cannot be waited on in a wait set: {hint}")]
    NotPollable {
        /// The source.
        what: String,
        /// Why, and what to do instead.
        hint: String,
    },
    /// The key is not (or no longer) attached to this set.
    #[error("{0:?} is not attached to this wait set")]
    UnknownKey(Key),
    /// A timer's period is zero.
    #[error("an interval timer needs a period above zero")]
    ZeroInterval,
    /// The operating system refused.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl WaitSetError {
    fn io(context: &'static str) -> impl FnOnce(io::Error) -> WaitSetError {
        move |source| WaitSetError::Io { context, source }
    }

    /// The error of a source that has no descriptor to wait on.
    pub fn not_pollable(what: impl Into<String>, hint: impl Into<String>) -> WaitSetError {
        WaitSetError::NotPollable {
            what: what.into(),
            hint: hint.into(),
        }
    }
}

/// One attachment of a [`WaitSet`]: what [`Ready`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(u64);

/// A flag a source raises while it holds something to do that its descriptor does not show
/// (messages already read into the source's own buffer). Clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct Pending(Arc<AtomicBool>);

impl Pending {
    /// A lowered flag.
    pub fn new() -> Pending {
        Pending::default()
    }

    /// Raises (`true`) or lowers the flag.
    pub fn set(&self, pending: bool) {
        // The thread that receives may not be the one that waits (a server shared by
        // threads): publish the flag with the receive that changed it.
        if self.0.load(Ordering::Relaxed) != pending {
            self.0.store(pending, Ordering::Release);
        }
    }

    /// Whether the flag is raised.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A check a wait set runs before each blocking wait: `true` when the source is ready now;
/// otherwise the source makes sure that its descriptor becomes readable when it is (the
/// shared-memory ring arms its futex-to-fd helper thread this way).
pub type Arm = Arc<dyn Fn() -> bool + Send + Sync>;

/// How a wait set watches one source: the descriptor that is readable while the source has
/// something to do (or hung up when its peer is gone), and optionally a [`Pending`] flag or
/// an [`Arm`] check.
pub struct Readiness<'a> {
    fd: BorrowedFd<'a>,
    pending: Option<Pending>,
    arm: Option<Arm>,
}

impl std::fmt::Debug for Readiness<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("fd", &self.fd)
            .field("pending", &self.pending)
            .field("arm", &self.arm.is_some())
            .finish()
    }
}

impl<'a> Readiness<'a> {
    /// Watches `fd` for readability.
    pub fn fd(fd: BorrowedFd<'a>) -> Readiness<'a> {
        Readiness {
            fd,
            pending: None,
            arm: None,
        }
    }

    /// Runs `arm` before each blocking wait (see [`Arm`]).
    pub fn with_arm(mut self, arm: Arm) -> Readiness<'a> {
        self.arm = Some(arm);
        self
    }

    /// Also reports the source ready while `pending` is raised.
    pub fn with_pending(mut self, pending: Pending) -> Readiness<'a> {
        self.pending = Some(pending);
        self
    }
}

/// For a source that reads several descriptors, or one it replaces (a server's listener and
/// connections, a FIFO reopened for each round of writers): an epoll set of them, whose own
/// descriptor is the stable one a wait set watches, and the source's [`Pending`] flag.
/// Descriptors leave the set when they are closed.
#[derive(Debug)]
pub(crate) struct Watched {
    ep: OwnedFd,
    pending: Pending,
}

impl Watched {
    /// Creates the watch in `cell` on first use (`fds`: what to watch, each with whether it
    /// is watched for now; `pending`: whether the source holds something already), and gives
    /// the readiness a wait set watches. `what` names the source in errors.
    pub(crate) fn readiness<'a, 'f>(
        cell: &'a OnceLock<Watched>,
        what: &'static str,
        fds: impl IntoIterator<Item = (BorrowedFd<'f>, bool)>,
        pending: bool,
    ) -> Result<Readiness<'a>, WaitSetError> {
        if cell.get().is_none() {
            let io = WaitSetError::io(what);
            let w = Watched {
                ep: epoll::create().map_err(io)?,
                pending: Pending::new(),
            };
            for (fd, on) in fds {
                w.add(fd).map_err(WaitSetError::io(what))?;
                if !on {
                    w.set_interest(fd, false).map_err(WaitSetError::io(what))?;
                }
            }
            w.pending.set(pending);
            let _ = cell.set(w);
        }
        let w = cell.get().expect("set above");
        Ok(Readiness::fd(w.ep.as_fd()).with_pending(w.pending.clone()))
    }

    /// Watches one more descriptor.
    pub(crate) fn add(&self, fd: impl AsFd) -> io::Result<()> {
        epoll::add(&self.ep, fd, 0)
    }

    /// Watches `fd` (`on`) or mutes it (it stays in the set).
    pub(crate) fn set_interest(&self, fd: impl AsFd, on: bool) -> io::Result<()> {
        epoll::set_interest(&self.ep, fd, 0, on)
    }

    /// The source's flag.
    pub(crate) fn pending(&self) -> &Pending {
        &self.pending
    }
}

/// A source a [`WaitSet`] can wait on.
///
/// Implementing it is one method. A source whose descriptor tells everything returns
/// `Readiness::fd(self.as_fd())`; a source that buffers (decodes several messages from one
/// read) also hands out a [`Pending`] flag and keeps it raised while its buffer holds a
/// message; a source with no descriptor returns [`WaitSetError::NotPollable`].
pub trait Waitable {
    /// How a wait set watches this source.
    fn readiness(&self) -> Result<Readiness<'_>, WaitSetError>;
}

impl<T: Waitable + ?Sized> Waitable for &T {
    fn readiness(&self) -> Result<Readiness<'_>, WaitSetError> {
        (**self).readiness()
    }
}

impl<T: Waitable + ?Sized> Waitable for &mut T {
    fn readiness(&self) -> Result<Readiness<'_>, WaitSetError> {
        (**self).readiness()
    }
}

impl<T: Waitable + ?Sized> Waitable for Box<T> {
    fn readiness(&self) -> Result<Readiness<'_>, WaitSetError> {
        (**self).readiness()
    }
}

enum Kind {
    /// A source, with the flag it raises while it buffers and its check before a wait.
    Source(Option<Pending>, Option<Arm>),
    /// A periodic timer.
    Interval,
    /// A one-shot timer.
    Deadline,
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Source(p, a) => write!(f, "Source(pending: {p:?}, arm: {})", a.is_some()),
            Kind::Interval => f.write_str("Interval"),
            Kind::Deadline => f.write_str("Deadline"),
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// The set's own duplicate of the source's descriptor, or the timer.
    fd: OwnedFd,
    kind: Kind,
}

/// The keys that a wait found ready, in the order they were attached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ready {
    keys: Vec<Key>,
}

impl Ready {
    /// Whether `key` is ready.
    pub fn contains(&self, key: Key) -> bool {
        self.keys.binary_search(&key).is_ok()
    }

    /// The ready keys, in attachment order.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The ready keys, one by one.
    pub fn iter(&self) -> impl Iterator<Item = Key> + '_ {
        self.keys.iter().copied()
    }

    /// How many keys are ready.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether nothing is ready (never the case for what a wait returns).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl IntoIterator for Ready {
    type Item = Key;
    type IntoIter = std::vec::IntoIter<Key>;
    fn into_iter(self) -> Self::IntoIter {
        self.keys.into_iter()
    }
}

/// Blocks one thread on any number of sources and timers (see the [module docs](self)).
#[derive(Debug)]
pub struct WaitSet {
    epoll: OwnedFd,
    entries: BTreeMap<Key, Entry>,
    next: u64,
}

impl WaitSet {
    /// An empty set.
    pub fn new() -> Result<WaitSet, WaitSetError> {
        Ok(WaitSet {
            epoll: epoll::create().map_err(WaitSetError::io("epoll_create1"))?,
            entries: BTreeMap::new(),
            next: 0,
        })
    }

    fn insert(&mut self, fd: OwnedFd, kind: Kind) -> Result<Key, WaitSetError> {
        let key = Key(self.next);
        epoll::add(&self.epoll, &fd, key.0).map_err(WaitSetError::io("epoll_ctl(ADD)"))?;
        self.next += 1;
        self.entries.insert(key, Entry { fd, kind });
        Ok(key)
    }

    /// Attaches a source: it is reported ready while it has something to do.
    /// [`WaitSetError::NotPollable`] for a source that has no descriptor to watch.
    pub fn attach(&mut self, source: &(impl Waitable + ?Sized)) -> Result<Key, WaitSetError> {
        let r = source.readiness()?;
        let fd =
            r.fd.try_clone_to_owned()
                .map_err(WaitSetError::io("duplicating the source's descriptor"))?;
        self.insert(fd, Kind::Source(r.pending, r.arm))
    }

    /// Attaches any pollable descriptor (a pipe, a socket, a pidfd...): reported ready while it
    /// is readable or hung up.
    pub fn attach_fd(&mut self, fd: impl AsFd) -> Result<Key, WaitSetError> {
        let fd = fd
            .as_fd()
            .try_clone_to_owned()
            .map_err(WaitSetError::io("duplicating the descriptor"))?;
        self.insert(fd, Kind::Source(None, None))
    }

    /// Attaches a timer that fires every `period`, the first time one period from now.
    pub fn attach_interval(&mut self, period: Duration) -> Result<Key, WaitSetError> {
        if period.is_zero() {
            return Err(WaitSetError::ZeroInterval);
        }
        let t = epoll::timer().map_err(WaitSetError::io("timerfd_create"))?;
        epoll::set_timer(&t, period, Some(period)).map_err(WaitSetError::io("timerfd_settime"))?;
        self.insert(t, Kind::Interval)
    }

    /// Attaches a timer that fires once, at `at` (at once if `at` has passed). It stays
    /// attached, and silent, until detached.
    pub fn attach_deadline(&mut self, at: Instant) -> Result<Key, WaitSetError> {
        let t = epoll::timer().map_err(WaitSetError::io("timerfd_create"))?;
        let first = at.saturating_duration_since(Instant::now());
        epoll::set_timer(&t, first, None).map_err(WaitSetError::io("timerfd_settime"))?;
        self.insert(t, Kind::Deadline)
    }

    /// Detaches a source or timer; its key is never reported again.
    pub fn detach(&mut self, key: Key) -> Result<(), WaitSetError> {
        let entry = self
            .entries
            .remove(&key)
            .ok_or(WaitSetError::UnknownKey(key))?;
        // Closing the set's duplicate removes it from the epoll set too; deleting first keeps
        // that true even if the descriptor was duplicated elsewhere meanwhile.
        epoll::delete(&self.epoll, &entry.fd).map_err(WaitSetError::io("epoll_ctl(DEL)"))
    }

    /// How many sources and timers are attached.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is attached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Blocks until something is ready ([`WaitSetError::Empty`] if nothing is attached).
    pub fn wait(&mut self) -> Result<Ready, WaitSetError> {
        self.wait_with(Wait::Forever)
    }

    /// What is ready now, without blocking: [`WaitSetError::WouldBlock`] if nothing is.
    pub fn try_wait(&mut self) -> Result<Ready, WaitSetError> {
        self.wait_with(Wait::NoWait)
    }

    /// Blocks until something is ready or `timeout` passes ([`WaitSetError::Timeout`]).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Ready, WaitSetError> {
        self.wait_with(Wait::timeout(timeout))
    }

    /// Waits as `wait` says until something is ready.
    pub fn wait_with(&mut self, wait: Wait) -> Result<Ready, WaitSetError> {
        if self.entries.is_empty() && wait == Wait::Forever {
            return Err(WaitSetError::Empty);
        }
        loop {
            let mut keys: Vec<Key> = Vec::new();
            for (k, e) in &self.entries {
                if let Kind::Source(pending, arm) = &e.kind {
                    let now = pending.as_ref().is_some_and(Pending::is_set);
                    // Every check runs (each arms its source for the wait), ready or not.
                    let armed_ready = arm.as_ref().is_some_and(|a| a());
                    if now || armed_ready {
                        keys.push(*k);
                    }
                }
            }
            let timeout = if keys.is_empty() {
                wait.poll_timeout_ms()
            } else {
                0
            };
            let fired = epoll::wait(&self.epoll, self.entries.len(), timeout)
                .map_err(WaitSetError::io("epoll_wait"))?;
            for f in fired {
                let key = Key(f.token);
                let Some(entry) = self.entries.get(&key) else {
                    continue;
                };
                let ready = match entry.kind {
                    Kind::Source(..) => f.readable || f.hangup,
                    // Reading clears the timer (a spurious wake-up reads nothing).
                    Kind::Interval | Kind::Deadline => {
                        epoll::timer_expirations(&entry.fd)
                            .map_err(WaitSetError::io("reading a timerfd"))?
                            > 0
                    }
                };
                if ready {
                    keys.push(key);
                }
            }
            if !keys.is_empty() {
                keys.sort_unstable();
                keys.dedup();
                return Ok(Ready { keys });
            }
            if wait == Wait::NoWait {
                return Err(WaitSetError::WouldBlock);
            }
            if wait.expired() {
                return Err(WaitSetError::Timeout);
            }
        }
    }
}

impl AsFd for WaitSet {
    /// The epoll descriptor: readable while one of the set's descriptors is (sources that only
    /// raised their [`Pending`] flag, and ring sources, which are armed by [`WaitSet::wait`]
    /// itself, are not counted), for an outer event loop that then calls
    /// [`WaitSet::try_wait`].
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_pending_and_detach() {
        let mut set = WaitSet::new().unwrap();
        assert!(matches!(set.wait(), Err(WaitSetError::Empty)));
        assert!(matches!(
            set.wait_timeout(Duration::from_millis(1)),
            Err(WaitSetError::Timeout)
        ));
        assert!(matches!(
            set.attach_interval(Duration::ZERO),
            Err(WaitSetError::ZeroInterval)
        ));
        let past = set
            .attach_deadline(Instant::now() - Duration::from_secs(1))
            .unwrap();
        assert_eq!(set.wait().unwrap().keys(), [past]);
        // A deadline fires once.
        assert!(matches!(set.try_wait(), Err(WaitSetError::WouldBlock)));

        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        struct Src(std::os::unix::net::UnixStream, Pending);
        impl Waitable for Src {
            fn readiness(&self) -> Result<Readiness<'_>, WaitSetError> {
                Ok(Readiness::fd(self.0.as_fd()).with_pending(self.1.clone()))
            }
        }
        let src = Src(a, Pending::new());
        let k = set.attach(&src).unwrap();
        assert!(matches!(set.try_wait(), Err(WaitSetError::WouldBlock)));
        src.1.set(true);
        assert_eq!(set.try_wait().unwrap().keys(), [k]);
        src.1.set(false);
        drop(b); // the peer hangs up: ready
        assert_eq!(set.try_wait().unwrap().keys(), [k]);
        set.detach(k).unwrap();
        assert!(matches!(set.detach(k), Err(WaitSetError::UnknownKey(_))));
        assert!(matches!(set.try_wait(), Err(WaitSetError::WouldBlock)));
    }
}
