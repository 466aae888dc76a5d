//! The work queue: N [`Producer`]s, M [`Consumer`]s, each message to exactly one consumer.
//!
//! A work-queue segment (pattern 2; a publish/subscribe ring is pattern 1, and opening one as
//! the other is [`Error::Incompatible`]) holds a pool of fixed-size slots (`max_message`
//! bytes each, rounded up to 16; [`Options::slots`] of them, a power of two) and two lock-free
//! queues of slot indices: free slots and published messages. A producer loans a free slot
//! ([`Producer::loan`]), writes the message in place and sends it; a consumer receives it in
//! place ([`Consumer::recv`] gives a [`Sample`] borrowing the slot) and the slot goes back to
//! the pool when the sample is dropped. Producers and consumers may join and leave at any time
//! (up to `max_subscribers` of them together).
//!
//! ```no_run
//! use ipcx::ring::{Consumer, Options, Producer};
//! let mut cons = Consumer::create("/jobs", &Options::new().slots(64).max_message(4096))?;
//! let mut prod = Producer::open("/jobs", &Options::new())?;
//! let mut s = prod.loan(3)?;
//! s.copy_from_slice(b"job");
//! s.send()?;
//! let job = cons.recv()?;
//! assert_eq!(&*job, b"job");
//! # Ok::<(), ipcx::ring::Error>(())
//! ```
//!
//! # Delivery and order
//! Each message goes to exactly one consumer. Messages of one producer are taken in the order
//! they were sent, so one consumer sees any producer's messages in order.
//!
//! # Crashes
//! Every participant records its pid and start time, and what it holds (one slot at most: a
//! loan or a sample borrows the handle mutably) in its table entry. When a blocked call (any
//! participant's, every few milliseconds) finds a dead participant:
//! * a slot a **producer** had loaned returns to the pool (the unsent message is dropped);
//! * a message a **consumer** had received but not released is **published again** and goes
//!   to another consumer: delivery is *at least once* across a consumer crash (the dead
//!   consumer may have acted on it), exactly once otherwise. A redelivered message comes after
//!   messages sent before the reclaim, so it may be out of order.
//!
//! A process killed in the window of a few instructions between taking a slot from a queue
//! and recording it in its entry (or between clearing the entry and handing the slot back)
//! leaks that one slot, or loses that one message, until the segment is recreated; a process
//! killed inside a queue operation itself (between its compare-and-swap and its release
//! store) leaves that queue cell stuck, and later operations on it fail with
//! [`Error::Corrupt`] instead of hanging.
//!
//! A consumer whose queue is empty gets [`Error::PeerGone`] once a producer had attached and
//! none is alive any more (messages already queued are delivered first). A producer never
//! fails because no consumer is there: it blocks (or gets [`Error::Full`]) once every slot is
//! taken.
#![allow(unsafe_code)] // the shared-memory exception: in-place views of slots

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ipcx_ring::{ACTIVE, Cursor, RingError, WorkQueue};

use super::segment::{
    HOLD_LOAN, HOLD_MSG, HOLD_NONE, ROLE_CONSUMER, ROLE_PRODUCER, Segment, cursor_alive,
};
use super::{Error, Options, WaitStrategy, extend, notify, wait_until};
use crate::name::PosixName;
use crate::sys::shm::OpenMode;
use crate::wait::Wait;

/// A participant of a work queue: the segment, the queue over it and this process's entry.
#[derive(Debug)]
struct Member {
    q: WorkQueue<'static>,
    me: &'static Cursor,
    strategy: WaitStrategy,
    seg: Arc<Segment>,
    /// Whether waits spin first (see `SpinPolicy`).
    spin: std::cell::Cell<super::SpinPolicy>,
}

impl Member {
    fn join(name: &str, how: OpenMode, opts: &Options, role: u32) -> Result<Member, Error> {
        let name = PosixName::new(name)?;
        let seg = Segment::establish(&name, how, &opts.create_work()?, &opts.trust)?;
        let seg = Arc::new(seg);
        let corrupt = || Error::Corrupt {
            name: name.to_string(),
            what: "work queue layout",
        };
        let claim = |seg: &Segment| {
            seg.table()
                .iter()
                .position(|c| Segment::claim_free(c, role))
        };
        let mut at = claim(&seg);
        if at.is_none() && seg.reap() > 0 {
            at = claim(&seg);
        }
        let Some(at) = at else {
            return Err(Error::TooManyParticipants {
                name: name.to_string(),
                max: seg.participants,
            });
        };
        // SAFETY: `q` and `me` borrow from `seg`, which the Member keeps alive (and never
        // drops before them: they are plain references, dropped with the Member).
        let (q, me) = unsafe {
            let q = seg.work().ok_or_else(corrupt)?;
            (
                std::mem::transmute::<WorkQueue<'_>, WorkQueue<'static>>(q),
                extend(&seg.table()[at]),
            )
        };
        me.holding.store(HOLD_NONE, Ordering::Relaxed);
        me.state.store(ACTIVE, Ordering::Release);
        if role == ROLE_PRODUCER {
            seg.header().writer_epoch.fetch_add(1, Ordering::AcqRel);
        }
        Ok(Member {
            q,
            me,
            strategy: opts.strategy,
            seg,
            spin: Default::default(),
        })
    }

    /// The error for what the queue said; a truncated segment is named as such.
    fn err(&self, e: RingError) -> Error {
        self.seg
            .fault(true)
            .unwrap_or_else(|| Error::from_ring(&self.seg.name, e))
    }

    fn count(&self, role: u32) -> usize {
        count_live(&self.seg, role)
    }

    fn persist(&mut self) {
        if let Some(s) = Arc::get_mut(&mut self.seg) {
            s.persist = true;
        }
    }
}

/// Live participants of `role` in the table.
fn count_live(seg: &Segment, role: u32) -> usize {
    seg.table()
        .iter()
        .filter(|c| {
            c.state.load(Ordering::Acquire) == ACTIVE
                && c.role.load(Ordering::Acquire) == role
                && cursor_alive(c)
        })
        .count()
}

/// Whether waiting for a message is pointless: a producer attached once and none is alive.
pub(super) fn producers_gone(seg: &Segment) -> bool {
    seg.header().writer_epoch.load(Ordering::Acquire) > 0 && count_live(seg, ROLE_PRODUCER) == 0
}

impl Drop for Member {
    fn drop(&mut self) {
        let role = self.me.role.load(Ordering::Relaxed);
        self.seg.leave(self.me);
        // Consumers waiting may now have no producer left; producers may have a slot.
        if role == ROLE_PRODUCER {
            notify(&self.q.ctl().data_wait);
        }
    }
}

/// The sending side of a work queue (any number per queue).
#[derive(Debug)]
pub struct Producer {
    m: Member,
}

impl Producer {
    /// Opens the work queue `name`, creating it with `opts` when missing.
    pub fn create(name: &str, opts: &Options) -> Result<Producer, Error> {
        Producer::establish(name, OpenMode::Create, opts)
    }
    /// Creates the work queue `name`; fails with [`Error::AlreadyExists`] if it exists.
    pub fn create_new(name: &str, opts: &Options) -> Result<Producer, Error> {
        Producer::establish(name, OpenMode::CreateNew, opts)
    }
    /// Opens the existing work queue `name` (its own parameters apply; `opts` gives the
    /// strategy).
    pub fn open(name: &str, opts: &Options) -> Result<Producer, Error> {
        Producer::establish(name, OpenMode::Open, opts)
    }

    fn establish(name: &str, how: OpenMode, opts: &Options) -> Result<Producer, Error> {
        Ok(Producer {
            m: Member::join(name, how, opts, ROLE_PRODUCER)?,
        })
    }

    /// The largest message.
    pub fn max_message_len(&self) -> usize {
        self.m.seg.params.max_msg as usize
    }
    /// The queue's name.
    pub fn name(&self) -> &str {
        self.m.seg.name.as_str()
    }
    /// How many live consumers are attached now.
    pub fn consumers(&self) -> usize {
        self.m.count(ROLE_CONSUMER)
    }
    /// How many live producers (this one included) are attached now.
    pub fn producers(&self) -> usize {
        self.m.count(ROLE_PRODUCER)
    }
    /// Keeps the segment after every participant left.
    pub fn persist(mut self) -> Self {
        self.m.persist();
        self
    }

    /// Takes a free slot, waiting as `wait` says, and records it as loaned.
    fn acquire(&mut self, len: usize, wait: Wait) -> Result<u32, Error> {
        let max = self.max_message_len();
        if len > max {
            return Err(Error::TooLarge { len, max });
        }
        let m = &self.m;
        let mut got = None;
        let mut spin = m.spin.take();
        let r = wait_until(
            &m.q.ctl().space_wait,
            m.strategy,
            &mut spin,
            false,
            wait,
            |_| match m.q.acquire() {
                Ok(None) => false,
                r => {
                    got = Some(r);
                    true
                }
            },
            || {
                m.seg.reap();
                m.seg.fault(true).map_or(Ok(()), Err)
            },
        );
        m.spin.set(spin);
        let idx = match (r, got) {
            (_, Some(Ok(Some(idx)))) => idx,
            (_, Some(Err(e))) => return Err(m.err(e)),
            (Err(Error::Timeout), _) if wait == Wait::NoWait => return Err(Error::Full),
            (Err(e), _) => return Err(e),
            (Ok(()), _) => return Err(Error::Full),
        };
        m.me.tail.store(u64::from(idx), Ordering::Relaxed);
        m.me.holding.store(HOLD_LOAN, Ordering::Release);
        Ok(idx)
    }

    /// Publishes slot `idx` with `len` bytes (the entry forgets the loan first: a crash in
    /// between leaks the slot rather than letting a reaper free a published one).
    fn publish(&mut self, idx: u32, len: usize) -> Result<(), Error> {
        self.m.me.holding.store(HOLD_NONE, Ordering::Release);
        self.m.q.publish(idx, len).map_err(|e| self.m.err(e))?;
        notify(&self.m.q.ctl().data_wait);
        Ok(())
    }

    /// Loans a slot for `len` bytes, waiting as `wait` says for a free one.
    pub fn loan_wait(&mut self, len: usize, wait: Wait) -> Result<SampleMut<'_>, Error> {
        let idx = self.acquire(len, wait)?;
        Ok(SampleMut {
            prod: self,
            idx,
            len,
            sent: false,
        })
    }
    /// Loans a slot for `len` bytes, blocking until one is free.
    pub fn loan(&mut self, len: usize) -> Result<SampleMut<'_>, Error> {
        self.loan_wait(len, Wait::Forever)
    }
    /// Loans a slot if one is free now ([`Error::Full`] otherwise).
    pub fn try_loan(&mut self, len: usize) -> Result<SampleMut<'_>, Error> {
        self.loan_wait(len, Wait::NoWait)
    }
    /// Loans a slot, giving up after `timeout`.
    pub fn loan_timeout(&mut self, len: usize, timeout: Duration) -> Result<SampleMut<'_>, Error> {
        self.loan_wait(len, Wait::timeout(timeout))
    }

    /// Sends a copy of `msg`, waiting as `wait` says for a free slot.
    pub fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        let idx = self.acquire(msg.len(), wait)?;
        let q = &self.m.q;
        q.data().copy_in(q.slot_offset(idx), msg, false);
        self.publish(idx, msg.len())
    }
    /// Sends a copy of `msg`, blocking while every slot is taken.
    pub fn send(&mut self, msg: &[u8]) -> Result<(), Error> {
        self.send_wait(msg, Wait::Forever)
    }
    /// Sends a copy of `msg` if a slot is free now.
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), Error> {
        self.send_wait(msg, Wait::NoWait)
    }
    /// Sends a copy of `msg`, giving up after `timeout`.
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), Error> {
        self.send_wait(msg, Wait::timeout(timeout))
    }
}

/// A message being written in place in a work-queue slot: `DerefMut<Target = [u8]>`.
///
/// Handing out `&mut [u8]` is sound: the slot was taken from the free pool by this producer
/// alone, is inside the data area (checked), stays mapped while the producer (which this
/// borrows) lives, and no consumer sees it before [`SampleMut::send`]. Dropping it without
/// sending returns the slot to the pool.
#[derive(Debug)]
pub struct SampleMut<'a> {
    prod: &'a mut Producer,
    idx: u32,
    len: usize,
    sent: bool,
}

impl SampleMut<'_> {
    /// Sends the message.
    pub fn send(self) -> Result<(), Error> {
        let len = self.len;
        self.send_len(len)
    }
    /// Sends only the first `len` bytes.
    pub fn send_len(mut self, len: usize) -> Result<(), Error> {
        self.sent = true;
        let len = len.min(self.len);
        self.prod.publish(self.idx, len)
    }
}

impl std::ops::Deref for SampleMut<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let q = &self.prod.m.q;
        let p = q.data().ptr(q.slot_offset(self.idx), self.len);
        // SAFETY: see the type's docs: in bounds (checked by `ptr`), this producer's alone
        // until sent, mapped while `prod` is borrowed.
        unsafe { std::slice::from_raw_parts(p, self.len) }
    }
}

impl std::ops::DerefMut for SampleMut<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let q = &self.prod.m.q;
        let p = q.data().ptr(q.slot_offset(self.idx), self.len);
        // SAFETY: as for `deref`; `&mut self` makes this the only reference to the bytes.
        unsafe { std::slice::from_raw_parts_mut(p, self.len) }
    }
}

impl Drop for SampleMut<'_> {
    fn drop(&mut self) {
        if !self.sent {
            let m = &self.prod.m;
            m.me.holding.store(HOLD_NONE, Ordering::Release);
            let _ = m.q.release(self.idx);
            notify(&m.q.ctl().space_wait);
        }
    }
}

/// The receiving side of a work queue (any number per queue; each message goes to one).
#[derive(Debug)]
pub struct Consumer {
    m: Member,
    #[cfg(feature = "tokio")]
    bridge: Option<super::bridge::Bridge>,
}

impl Consumer {
    /// Opens the work queue `name`, creating it with `opts` when missing.
    pub fn create(name: &str, opts: &Options) -> Result<Consumer, Error> {
        Consumer::establish(name, OpenMode::Create, opts)
    }
    /// Creates the work queue `name`; fails with [`Error::AlreadyExists`] if it exists.
    pub fn create_new(name: &str, opts: &Options) -> Result<Consumer, Error> {
        Consumer::establish(name, OpenMode::CreateNew, opts)
    }
    /// Opens the existing work queue `name`.
    pub fn open(name: &str, opts: &Options) -> Result<Consumer, Error> {
        Consumer::establish(name, OpenMode::Open, opts)
    }

    fn establish(name: &str, how: OpenMode, opts: &Options) -> Result<Consumer, Error> {
        Ok(Consumer {
            m: Member::join(name, how, opts, ROLE_CONSUMER)?,
            #[cfg(feature = "tokio")]
            bridge: None,
        })
    }

    /// The largest message.
    pub fn max_message_len(&self) -> usize {
        self.m.seg.params.max_msg as usize
    }
    /// The queue's name.
    pub fn name(&self) -> &str {
        self.m.seg.name.as_str()
    }
    /// How many live producers are attached now.
    pub fn producers(&self) -> usize {
        self.m.count(ROLE_PRODUCER)
    }
    /// Keeps the segment after every participant left.
    pub fn persist(mut self) -> Self {
        self.m.persist();
        self
    }

    fn gone(&self) -> Option<Error> {
        if let Some(e) = self.m.seg.fault(false) {
            return Some(e);
        }
        producers_gone(&self.m.seg).then(|| {
            self.m.seg.reap();
            Error::PeerGone {
                what: format!("every producer of shm:{} left or died", self.m.seg.name),
            }
        })
    }

    /// Takes a message if one is waiting and records it as held.
    fn take(&mut self) -> Result<Option<(u32, usize)>, Error> {
        let m = &self.m;
        let Some((idx, len)) = m.q.take().map_err(|e| m.err(e))? else {
            return Ok(None);
        };
        m.me.tail
            .store(u64::from(idx) | ((len as u64) << 32), Ordering::Relaxed);
        m.me.holding.store(HOLD_MSG, Ordering::Release);
        Ok(Some((idx, len)))
    }

    /// Waits as `wait` says for a message; `Ok(None)` when one may be there.
    fn wait(&self, wait: Wait) -> Result<(), Error> {
        let m = &self.m;
        let mut spin = m.spin.take();
        let r = wait_until(
            &m.q.ctl().data_wait,
            m.strategy,
            &mut spin,
            false,
            wait,
            |_| m.q.has_ready(),
            || {
                m.seg.reap();
                if let Some(e) = m.seg.fault(true) {
                    return Err(e);
                }
                match self.gone() {
                    Some(e) if !m.q.has_ready() => Err(e),
                    _ => Ok(()),
                }
            },
        );
        m.spin.set(spin);
        match r {
            Ok(()) => Ok(()),
            Err(Error::Timeout) if wait == Wait::NoWait => Err(self.gone().unwrap_or(Error::Empty)),
            Err(Error::Timeout) => match self.gone() {
                Some(e) if !m.q.has_ready() => Err(e),
                _ => Err(Error::Timeout),
            },
            Err(e) => Err(e),
        }
    }

    /// Receives the next message, waiting as `wait` says.
    pub fn recv_wait(&mut self, wait: Wait) -> Result<Sample<'_>, Error> {
        let (idx, len) = loop {
            if let Some(got) = self.take()? {
                break got;
            }
            if let Some(e) = self.gone() {
                if self.m.q.has_ready() {
                    continue;
                }
                return Err(e);
            }
            if wait != Wait::NoWait {
                super::waiting_for_a_message();
            }
            self.wait(wait)?;
        };
        Ok(Sample {
            cons: self,
            idx,
            len,
        })
    }
    /// Receives the next message, blocking.
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

    /// Receives the next message without blocking the thread (tokio).
    ///
    /// The first call starts a small helper thread for this consumer: it sleeps on the
    /// queue's futex while the task waits, and wakes the task through a local eventfd
    /// registered with tokio (`AsyncFd`). Cost: one mostly idle thread per async receiver,
    /// and one eventfd write per wake-up; producers are unchanged (they wake the futex only
    /// when someone sleeps on it). Cancel-safe: a message is taken only when the future
    /// completes.
    #[cfg(feature = "tokio")]
    pub async fn recv_async(&mut self) -> Result<Sample<'_>, Error> {
        let (idx, len) = loop {
            if let Some(got) = self.take()? {
                break got;
            }
            if let Some(e) = self.gone() {
                if self.m.q.has_ready() {
                    continue;
                }
                return Err(e);
            }
            if self.bridge.is_none() {
                let seg = Arc::clone(&self.m.seg);
                let b = super::bridge::Bridge::start(
                    seg,
                    |seg| seg.work().map(|q| &q.ctl().data_wait),
                    |seg| seg.work().is_none_or(|q| q.has_ready()) || producers_gone(seg),
                )
                .map_err(|source| Error::Io {
                    name: self.m.seg.name.to_string(),
                    source,
                })?;
                self.bridge = Some(b);
            }
            if let Some(b) = &self.bridge {
                super::waiting_for_a_message();
                b.wait().await.map_err(|source| Error::Io {
                    name: self.m.seg.name.to_string(),
                    source,
                })?;
            }
        };
        Ok(Sample {
            cons: self,
            idx,
            len,
        })
    }
}

/// A received message, in place in its slot: `Deref<Target = [u8]>`. The slot returns to
/// the pool when the sample is dropped.
///
/// Borrowing the slot is sound: it came out of the ready queue to this consumer alone, lies
/// inside the data area (index and length checked), no producer reuses it before it is back
/// in the free pool (on drop), and the borrow of the consumer keeps the mapping alive.
#[derive(Debug)]
pub struct Sample<'a> {
    cons: &'a mut Consumer,
    idx: u32,
    len: usize,
}

impl std::ops::Deref for Sample<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let q = &self.cons.m.q;
        let p = q.data().ptr(q.slot_offset(self.idx), self.len);
        // SAFETY: see the type's docs: in bounds (checked by `ptr`), not reused by a producer
        // until this Sample is dropped, mapped while `cons` is borrowed.
        unsafe { std::slice::from_raw_parts(p, self.len) }
    }
}

impl Drop for Sample<'_> {
    fn drop(&mut self) {
        let m = &self.cons.m;
        m.me.holding.store(HOLD_NONE, Ordering::Release);
        let _ = m.q.release(self.idx);
        notify(&m.q.ctl().space_wait);
    }
}
