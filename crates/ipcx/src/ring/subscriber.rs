//! The receiving side of a ring.
#![allow(unsafe_code)] // the shared-memory exception: in-place views of ring records

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use ipcx_ring::{Peeked, Reader};

use super::blocked::wait_for_message;
#[cfg(feature = "tokio")]
use super::bridge::Bridge;
use super::bridge::FdWake;
use super::format::PATTERN_PUBSUB;
use super::hot::waiting_for_a_message;
use super::role::{Role, extend, recv_forms, role_methods};
use super::sample::Sample;
use super::sample::lend::Holder;
use super::segment::Segment;
use super::table::{ROLE_SUBSCRIBER, claim, cursor_alive};
use super::wait::{SpinPolicy, TICK, WaitStrategy, notify, spin};
use super::{Options, RingError};
use crate::wait::Wait;

/// The receiving side of a ring (each subscriber receives every message).
#[derive(Debug)]
pub struct Subscriber {
    reader: Reader<'static>,
    strategy: WaitStrategy,
    buf: Vec<u8>,
    #[cfg(feature = "tokio")]
    bridge: Option<Bridge>,
    /// The futex-to-fd helper, once a wait set asked.
    wake: OnceLock<Arc<FdWake>>,
    seg: Arc<Segment>,
    /// When the publisher's liveness was last read from `/proc` (a read costs microseconds,
    /// so an empty ring does not pay it on every receive: at most once per [`TICK`]).
    liveness_checked: Option<std::time::Instant>,
    spin: SpinPolicy,
}

impl Subscriber {
    /// Whether the segment is still sound (see [`Publisher::check`]). A message received
    /// while another process truncates the segment may read as zeros in part: call this after
    /// using a [`Sample`] when that matters.
    ///
    /// [`Publisher::check`]: super::Publisher::check
    pub fn check(&self) -> Result<(), RingError> {
        self.seg.fault(false).map_or(Ok(()), Err)
    }

    /// Whether a live publisher is attached.
    pub fn publisher_alive(&self) -> bool {
        let wc = self.seg.writer_cursor();
        wc.state.load(Ordering::Acquire) != ipcx_ring::FREE && cursor_alive(wc)
    }

    /// `Some(error)` when waiting is pointless: a publisher attached once and is now gone
    /// (the caller has already found the ring empty).
    fn gone(&self) -> Option<RingError> {
        let epoch = self.seg.header().writer_epoch.load(Ordering::Acquire);
        if epoch > 0 && !self.publisher_alive() {
            self.seg.reap();
            return Some(RingError::PeerGone {
                what: format!("the publisher of shm:{} left or died", self.seg.name),
            });
        }
        None
    }

    /// The next message if one is waiting (a copy in `buf` on overwrite rings).
    fn try_get(&mut self) -> Result<Option<Held>, RingError> {
        let got = if self.seg.params.overwrite {
            let buf = &mut self.buf;
            self.reader
                .try_recv(buf)
                .map(|o| o.map(|(len, missed)| Held::Copied { len, missed }))
        } else {
            self.reader.peek().map(|o| o.map(Held::Shared))
        };
        got.map_err(|e| {
            self.seg
                .fault(true)
                .unwrap_or_else(|| RingError::from_ring(&self.seg.name, e))
        })
    }

    /// Receives the next message, waiting as `wait` says.
    #[inline]
    pub fn recv_wait(&mut self, wait: Wait) -> Result<Sample<'_>, RingError> {
        // Fast path: a message is waiting in a lossless ring.
        if !self.reader.params().overwrite
            && let Ok(Some(p)) = self.reader.peek()
        {
            return Ok(Sample::new(self, Held::Shared(p)));
        }
        self.recv_slow(wait)
    }

    #[inline(never)]
    fn recv_slow(&mut self, wait: Wait) -> Result<Sample<'_>, RingError> {
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
                .map_err(|e| RingError::from_ring(&self.seg.name, e))?;
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
            let r = wait_for_message(
                &this.seg,
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
                || this.reader.has_data(),
                || this.gone(),
            );
            self.spin = spin;
            r?;
        };
        Ok(Sample::new(self, got))
    }

    /// Receives the next message without blocking the thread (tokio).
    ///
    /// The first call starts a small helper thread for this subscriber: it sleeps on the
    /// ring's futex while the task waits, and wakes the task through a local eventfd
    /// registered with tokio (`AsyncFd`). Cost: one mostly idle thread per async receiver and
    /// one eventfd write per wake-up; the publisher is unchanged (it wakes the futex only when
    /// someone sleeps on it). Cancel-safe: nothing is consumed until the future completes.
    #[cfg(feature = "tokio")]
    pub async fn recv_async(&mut self) -> Result<Sample<'_>, RingError> {
        let got = loop {
            if let Some(got) = self.try_get()? {
                break got;
            }
            if let Some(e) = self.seg.fault(true) {
                return Err(e);
            }
            self.reader
                .check()
                .map_err(|e| RingError::from_ring(&self.seg.name, e))?;
            if let Some(e) = self.gone() {
                if self.reader.has_data() {
                    continue;
                }
                return Err(e);
            }
            let ready = self.ready_test(true);
            Bridge::wait_in(
                &mut self.bridge,
                &self.seg,
                |seg| Some(&seg.ctl().data_wait),
                || ready,
            )
            .await?;
        };
        Ok(Sample::new(self, got))
    }

    /// Whether this subscriber has something to do, seen from any thread: a message at its
    /// place in the ring, or (`gone`) a publisher that attached once and is gone.
    fn ready_test(&self, gone: bool) -> impl Fn(&Segment) -> bool + Send + Sync + Clone + 'static {
        let report_gone = gone;
        let cursor = self.reader.cursor();
        let at = self
            .seg
            .table()
            .iter()
            .position(|c| std::ptr::eq(c, cursor))
            .unwrap_or(0);
        move |seg: &Segment| {
            let head = seg.ctl().writer.head.load(Ordering::Acquire);
            let tail = seg.table()[at].tail.load(Ordering::Acquire);
            let wc = seg.writer_cursor();
            let gone = report_gone
                && seg.header().writer_epoch.load(Ordering::Acquire) > 0
                && (wc.state.load(Ordering::Acquire) == ipcx_ring::FREE || !cursor_alive(wc));
            head != tail || gone
        }
    }

    /// How a wait set watches this subscriber; `gone`: also ready once the publisher is gone
    /// (a receiver that waits for the next publisher passes `false`). See the [`Waitable`]
    /// implementation.
    ///
    /// [`Waitable`]: crate::wait_set::Waitable
    pub(crate) fn readiness_for(
        &self,
        gone: bool,
    ) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        if self.wake.get().is_none() {
            let w = FdWake::start(
                Arc::clone(&self.seg),
                |seg| Some(&seg.ctl().data_wait),
                self.ready_test(gone),
            )
            .map_err(|source| crate::wait_set::WaitSetError::Io {
                context: "starting the ring's wake-up thread",
                source,
            })?;
            let _ = self.wake.set(Arc::new(w));
        }
        let w = Arc::clone(self.wake.get().expect("set above"));
        let ready = self.ready_test(gone);
        let fd = self.wake.get().expect("set above").as_fd();
        Ok(crate::wait_set::Readiness::fd(fd).with_arm(Arc::new(move || w.arm(&ready))))
    }

    /// Receives a plain-data value (a copy); [`RingError::Incompatible`] if the size differs.
    pub fn recv_value<T: zerocopy::FromBytes>(&mut self) -> Result<T, RingError> {
        let s = self.recv()?;
        T::read_from_bytes(&s).map_err(|_| RingError::Incompatible {
            name: s.owner.seg.name.to_string(),
            field: "message length",
            expected: size_of::<T>() as u64,
            found: s.len() as u64,
        })
    }
}

impl crate::wait_set::Waitable for Subscriber {
    /// Ready while a message waits (or the publisher is gone), through the ring's futex-to-fd
    /// wake-up: the first call starts a helper thread for this subscriber that sleeps on the
    /// ring's futex while the wait set waits and then writes a local eventfd (as for
    /// `recv_async`; the publisher is unchanged).
    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        self.readiness_for(true)
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if let Some(w) = self.wake.get() {
            w.stop();
        }
        self.seg.leave(self.reader.cursor());
        notify(&self.seg.ctl().space_wait);
    }
}

role_methods!(Subscriber, "ring");
recv_forms!(Subscriber, Sample<'_>);

impl Role for Subscriber {
    const PATTERN: u32 = PATTERN_PUBSUB;

    fn join(seg: Arc<Segment>, opts: &Options) -> Result<Subscriber, RingError> {
        let Some(at) = seg.claim_place(claim, ROLE_SUBSCRIBER) else {
            return Err(RingError::TooManySubscribers {
                name: seg.name.to_string(),
                max: seg.participants,
            });
        };
        // SAFETY: `reader` borrows from `seg`, which the Subscriber keeps alive and drops after
        // `reader` (field order).
        let (ctl, cursor) = unsafe { (extend(seg.ctl()), extend(&seg.table()[at])) };
        let reader = match Reader::join(ctl, cursor, seg.data(), seg.params) {
            Ok(r) => r,
            Err(e) => {
                seg.leave(cursor);
                return Err(RingError::from_ring(&seg.name, e));
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
            wake: OnceLock::new(),
            seg,
            liveness_checked: None,
            spin: SpinPolicy::default(),
        })
    }
    fn segment(&self) -> &Arc<Segment> {
        &self.seg
    }
    fn segment_mut(&mut self) -> &mut Arc<Segment> {
        &mut self.seg
    }
}

/// A message a subscriber received: in place in the ring (lossless rings) or copied into
/// its buffer (overwrite rings).
#[derive(Debug, Clone, Copy)]
pub enum Held {
    /// The record in the ring.
    Shared(Peeked),
    /// `len` bytes in the subscriber's buffer, after `missed` messages it never saw.
    Copied {
        /// The message's length.
        len: usize,
        /// How many messages were lost just before it.
        missed: u64,
    },
}

// SAFETY: a shared record lies inside the data area (its header was checked; `ptr` checks the
// range again), the publisher does not reuse it until this subscriber's tail moves past it,
// which only `release` does; a copy is in the subscriber's own buffer, which only receiving
// again (impossible while a sample borrows the subscriber) changes.
unsafe impl Holder for Subscriber {
    type Held = Held;
    #[inline]
    fn bytes(&self, held: &Held) -> (*const u8, usize) {
        match *held {
            Held::Shared(p) => (self.reader.data().ptr(p.offset, p.len), p.len),
            Held::Copied { len, .. } => (self.buf.as_ptr(), len.min(self.buf.len())),
        }
    }
    #[inline]
    fn release(&mut self, held: Held) {
        if let Held::Shared(p) = held {
            self.reader.release(p);
            notify(&self.reader.ctl().space_wait);
        }
    }
}

impl Sample<'_, Subscriber> {
    /// How many messages this subscriber missed just before this one (overwrite rings).
    pub fn missed(&self) -> u64 {
        match self.held {
            Held::Copied { missed, .. } => missed,
            Held::Shared(_) => 0,
        }
    }
}
