//! The sending side of a work queue.
#![allow(unsafe_code)] // the shared-memory exception: in-place views of slots

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Member, Slot};
use crate::ring::blocked::wait_for_room;
use crate::ring::format::PATTERN_WORK;
use crate::ring::role::{Role, role_methods, send_forms};
use crate::ring::sample::SampleMut;
use crate::ring::sample::lend::{Lender, Loaned};
use crate::ring::segment::Segment;
use crate::ring::table::{HOLD_LOAN, HOLD_NONE, ROLE_CONSUMER, ROLE_PRODUCER};
use crate::ring::wait::notify;
use crate::ring::{Options, RingError};
use crate::wait::Wait;

/// The sending side of a work queue (any number per queue).
#[derive(Debug)]
pub struct Producer {
    m: Member,
}

impl Producer {
    /// How many live consumers are attached now.
    pub fn consumers(&self) -> usize {
        self.m.count(ROLE_CONSUMER)
    }
    /// How many live producers (this one included) are attached now.
    pub fn producers(&self) -> usize {
        self.m.count(ROLE_PRODUCER)
    }
    /// Takes a free slot, waiting as `wait` says, and records it as loaned.
    fn acquire(&mut self, len: usize, wait: Wait) -> Result<u32, RingError> {
        let max = self.m.seg.params.max_msg as usize;
        if len > max {
            return Err(RingError::TooLarge { len, max });
        }
        let m = &self.m;
        let mut spin = m.spin.take();
        let r = wait_for_room(
            &m.seg,
            &m.q.ctl().space_wait,
            m.strategy,
            &mut spin,
            wait,
            || m.q.acquire().transpose(),
            |e| m.err(e),
        );
        m.spin.set(spin);
        let idx = r?;
        m.me.tail.store(u64::from(idx), Ordering::Relaxed);
        m.me.holding.store(HOLD_LOAN, Ordering::Release);
        Ok(idx)
    }

    /// Publishes slot `idx` with `len` bytes (the entry forgets the loan first: a crash in
    /// between leaks the slot rather than letting a reaper free a published one).
    fn publish(&mut self, idx: u32, len: usize) -> Result<(), RingError> {
        self.m.me.holding.store(HOLD_NONE, Ordering::Release);
        self.m.q.publish(idx, len).map_err(|e| self.m.err(e))?;
        notify(&self.m.q.ctl().data_wait);
        Ok(())
    }

    /// Loans a slot for `len` bytes, waiting as `wait` says for a free one.
    pub fn loan_wait(
        &mut self,
        len: usize,
        wait: Wait,
    ) -> Result<SampleMut<'_, Producer>, RingError> {
        let idx = self.acquire(len, wait)?;
        Ok(SampleMut::new(Loan {
            prod: self,
            slot: Slot { idx, len },
            sent: false,
        }))
    }
    /// Loans a slot for `len` bytes, blocking until one is free.
    pub fn loan(&mut self, len: usize) -> Result<SampleMut<'_, Producer>, RingError> {
        self.loan_wait(len, Wait::Forever)
    }
    /// Loans a slot if one is free now ([`RingError::Full`] otherwise).
    pub fn try_loan(&mut self, len: usize) -> Result<SampleMut<'_, Producer>, RingError> {
        self.loan_wait(len, Wait::NoWait)
    }
    /// Loans a slot, giving up after `timeout`.
    pub fn loan_timeout(
        &mut self,
        len: usize,
        timeout: Duration,
    ) -> Result<SampleMut<'_, Producer>, RingError> {
        self.loan_wait(len, Wait::timeout(timeout))
    }

    /// Sends a copy of `msg`, waiting as `wait` says for a free slot.
    pub fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), RingError> {
        let idx = self.acquire(msg.len(), wait)?;
        let q = &self.m.q;
        q.data().copy_in(q.slot_offset(idx), msg, false);
        self.publish(idx, msg.len())
    }
}

role_methods!(Producer, "work queue");
send_forms!(Producer, full: "every slot is taken", room: "a slot is free");

impl Role for Producer {
    const PATTERN: u32 = PATTERN_WORK;

    fn join(seg: Arc<Segment>, opts: &Options) -> Result<Producer, RingError> {
        Ok(Producer {
            m: Member::join(seg, opts, ROLE_PRODUCER)?,
        })
    }
    fn segment(&self) -> &Arc<Segment> {
        &self.m.seg
    }
    fn segment_mut(&mut self) -> &mut Arc<Segment> {
        &mut self.m.seg
    }
}

impl Lender for Producer {
    type Loaned<'a> = Loan<'a>;
}

/// A slot the producer loaned. Dropped unsent, it returns to the pool.
#[derive(Debug)]
pub struct Loan<'a> {
    prod: &'a mut Producer,
    slot: Slot,
    sent: bool,
}

// SAFETY: a loaned slot was taken from the free pool by this producer alone, lies inside the
// data area (`ptr` checks it), stays mapped while the producer (which the loan borrows)
// lives, and no consumer sees it before it is published.
unsafe impl Loaned for Loan<'_> {
    fn len(&self) -> usize {
        self.slot.len
    }
    fn bytes(&self) -> (*mut u8, usize) {
        (self.prod.m.slot_bytes(&self.slot), self.slot.len)
    }
    fn send(mut self, len: usize) -> Result<(), RingError> {
        self.sent = true;
        let len = len.min(self.slot.len);
        self.prod.publish(self.slot.idx, len)
    }
}

impl Drop for Loan<'_> {
    fn drop(&mut self) {
        if !self.sent {
            self.prod.m.give_back(self.slot);
        }
    }
}
