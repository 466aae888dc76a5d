//! The receiving side of a work queue.
#![allow(unsafe_code)] // the shared-memory exception: in-place views of slots

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Member, Slot, producers_gone};
use crate::ring::blocked::wait_for_message;
#[cfg(feature = "tokio")]
use crate::ring::bridge::Bridge;
use crate::ring::format::PATTERN_WORK;
use crate::ring::hot::waiting_for_a_message;
use crate::ring::role::{Role, recv_forms, role_methods};
use crate::ring::sample::Sample;
use crate::ring::sample::lend::Holder;
use crate::ring::segment::Segment;
use crate::ring::table::{HOLD_MSG, ROLE_CONSUMER, ROLE_PRODUCER};
use crate::ring::{Options, RingError};
use crate::wait::Wait;

/// The receiving side of a work queue (any number per queue; each message goes to one).
#[derive(Debug)]
pub struct Consumer {
    m: Member,
    #[cfg(feature = "tokio")]
    bridge: Option<Bridge>,
}

impl Consumer {
    /// How many live producers are attached now.
    pub fn producers(&self) -> usize {
        self.m.count(ROLE_PRODUCER)
    }
    fn gone(&self) -> Option<RingError> {
        if let Some(e) = self.m.seg.fault(false) {
            return Some(e);
        }
        producers_gone(&self.m.seg).then(|| {
            self.m.seg.reap();
            RingError::PeerGone {
                what: format!("every producer of shm:{} left or died", self.m.seg.name),
            }
        })
    }

    /// Takes a message if one is waiting and records it as held.
    fn take(&mut self) -> Result<Option<Slot>, RingError> {
        let m = &self.m;
        let Some((idx, len)) = m.q.take().map_err(|e| m.err(e))? else {
            return Ok(None);
        };
        m.me.tail
            .store(u64::from(idx) | ((len as u64) << 32), Ordering::Relaxed);
        m.me.holding.store(HOLD_MSG, Ordering::Release);
        Ok(Some(Slot { idx, len }))
    }

    /// The next message if one is waiting (recorded as held), `None` if none is, or the
    /// reason none will come (once every message queued was taken).
    fn next(&mut self) -> Result<Option<Slot>, RingError> {
        loop {
            if let Some(got) = self.take()? {
                return Ok(Some(got));
            }
            match self.gone() {
                Some(_) if self.m.q.has_ready() => continue,
                Some(e) => return Err(e),
                None => return Ok(None),
            }
        }
    }

    /// Waits as `wait` says for a message; `Ok(None)` when one may be there.
    fn wait(&self, wait: Wait) -> Result<(), RingError> {
        let m = &self.m;
        let mut spin = m.spin.take();
        let r = wait_for_message(
            &m.seg,
            &m.q.ctl().data_wait,
            m.strategy,
            &mut spin,
            false,
            wait,
            |_| m.q.has_ready(),
            || m.q.has_ready(),
            || self.gone(),
        );
        m.spin.set(spin);
        r
    }

    /// Receives the next message, waiting as `wait` says.
    pub fn recv_wait(&mut self, wait: Wait) -> Result<Sample<'_, Consumer>, RingError> {
        let slot = loop {
            if let Some(got) = self.next()? {
                break got;
            }
            if wait != Wait::NoWait {
                waiting_for_a_message();
            }
            self.wait(wait)?;
        };
        Ok(Sample::new(self, slot))
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
    pub async fn recv_async(&mut self) -> Result<Sample<'_, Consumer>, RingError> {
        let slot = loop {
            if let Some(got) = self.next()? {
                break got;
            }
            let m = &self.m;
            Bridge::wait_in(
                &mut self.bridge,
                &m.seg,
                |seg| seg.work().map(|q| &q.ctl().data_wait),
                || |seg: &Segment| seg.work().is_none_or(|q| q.has_ready()) || producers_gone(seg),
            )
            .await?;
        };
        Ok(Sample::new(self, slot))
    }
}

role_methods!(Consumer, "work queue");
recv_forms!(Consumer, Sample<'_, Consumer>);

impl Role for Consumer {
    const PATTERN: u32 = PATTERN_WORK;

    fn join(seg: Arc<Segment>, opts: &Options) -> Result<Consumer, RingError> {
        Ok(Consumer {
            m: Member::join(seg, opts, ROLE_CONSUMER)?,
            #[cfg(feature = "tokio")]
            bridge: None,
        })
    }
    fn segment(&self) -> &Arc<Segment> {
        &self.m.seg
    }
    fn segment_mut(&mut self) -> &mut Arc<Segment> {
        &mut self.m.seg
    }
}

// SAFETY: a received slot came out of the ready queue to this consumer alone, lies inside the
// data area (index and length checked, and `ptr` checks the range), and no producer reuses it
// before `release` puts it back in the free pool; it stays mapped while the consumer lives.
unsafe impl Holder for Consumer {
    type Held = Slot;
    fn bytes(&self, slot: &Slot) -> (*const u8, usize) {
        (self.m.slot_bytes(slot), slot.len)
    }
    fn release(&mut self, slot: Slot) {
        self.m.give_back(slot);
    }
}
