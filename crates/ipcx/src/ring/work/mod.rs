//! The work queue: N [`Producer`]s, M [`Consumer`]s, each message to exactly one consumer.
//!
//! A work-queue segment (pattern 2; a publish/subscribe ring is pattern 1, and opening one as
//! the other is [`RingError::Incompatible`]) holds a pool of fixed-size slots (`max_message`
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
//! # Ok::<(), ipcx::ring::RingError>(())
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
//! [`RingError::Corrupt`] instead of hanging.
//!
//! A consumer whose queue is empty gets [`RingError::PeerGone`] once a producer had attached and
//! none is alive any more (messages already queued are delivered first). A producer never
//! fails because no consumer is there: it blocks (or gets [`RingError::Full`]) once every slot is
//! taken.
//!
//! [`Sample`]: super::Sample
#![allow(unsafe_code)] // the shared-memory exception: borrows of the mapped segment

mod consumer;
mod producer;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ipcx_ring::{ACTIVE, Cursor, RingError as CoreError, WorkQueue};

pub use consumer::Consumer;
pub use producer::Producer;
use slot::Slot;

use super::RingError;
use super::options::Options;
use super::role::extend;
use super::segment::Segment;
use super::table::{HOLD_NONE, ROLE_PRODUCER, claim_free, cursor_alive};
use super::wait::{SpinPolicy, WaitStrategy, notify};

/// A participant of a work queue: the segment, the queue over it and this process's entry.
#[derive(Debug)]
struct Member {
    q: WorkQueue<'static>,
    me: &'static Cursor,
    strategy: WaitStrategy,
    seg: Arc<Segment>,
    /// Whether waits spin first (see `SpinPolicy`).
    spin: std::cell::Cell<SpinPolicy>,
}

impl Member {
    fn join(seg: Arc<Segment>, opts: &Options, role: u32) -> Result<Member, RingError> {
        let corrupt = || RingError::Corrupt {
            name: seg.name.to_string(),
            what: "work queue layout",
        };
        let Some(at) = seg.claim_place(claim_free, role) else {
            return Err(RingError::TooManyParticipants {
                name: seg.name.to_string(),
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
    fn err(&self, e: CoreError) -> RingError {
        self.seg
            .fault(true)
            .unwrap_or_else(|| RingError::from_ring(&self.seg.name, e))
    }

    fn count(&self, role: u32) -> usize {
        count_live(&self.seg, role)
    }

    /// The bytes of `slot` in the data area.
    #[inline]
    fn slot_bytes(&self, slot: &Slot) -> *mut u8 {
        self.q.data().ptr(self.q.slot_offset(slot.idx), slot.len)
    }

    /// Returns the slot this participant holds (a loan or a received message) to the free
    /// pool.
    fn give_back(&self, slot: Slot) {
        self.me.holding.store(HOLD_NONE, Ordering::Release);
        let _ = self.q.release(slot.idx);
        notify(&self.q.ctl().space_wait);
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
fn producers_gone(seg: &Segment) -> bool {
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

/// What a work-queue sample names (a private module: the type shows in the samples' bounds,
/// not in the API).
mod slot {
    /// A slot a participant holds: its index, and the message's length in it (a producer's
    /// loan: the length loaned).
    #[derive(Debug, Clone, Copy)]
    pub struct Slot {
        pub(in crate::ring::work) idx: u32,
        pub(in crate::ring::work) len: usize,
    }
}
