//! The publishing side of a ring.
#![allow(unsafe_code)] // the shared-memory exception: in-place views of ring records

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ipcx_ring::{Reservation, RingError as CoreError, Writer};

use super::blocked::wait_for_room;
use super::format::PATTERN_PUBSUB;
use super::hot::HotGate;
use super::role::{Role, extend, role_methods, send_forms};
use super::sample::SampleMut;
use super::sample::lend::{Lender, Loaned};
use super::segment::Segment;
use super::table::{ROLE_PUBLISHER, claim};
use super::wait::{SpinPolicy, WaitStrategy, notify};
use super::{Options, RingError};
use crate::wait::Wait;

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
    /// How many subscribers are attached now.
    pub fn subscribers(&self) -> usize {
        self.writer.active_readers()
    }

    /// Whether the segment is still sound: [`RingError::Corrupt`] once another process truncated
    /// it under the mapping and an access hit a lost page (the mapping then reads as zeros:
    /// no subscriber is seen any more and nothing sent arrives). Costs one atomic load; the
    /// blocking calls check this, and the file's size, while they wait.
    pub fn check(&self) -> Result<(), RingError> {
        self.seg.fault(false).map_or(Ok(()), Err)
    }

    #[inline]
    fn reserve(&mut self, len: usize, wait: Wait) -> Result<Reservation, RingError> {
        match self.writer.reserve(len) {
            Ok(res) => Ok(res),
            Err(e) => self.reserve_slow(e, len, wait),
        }
    }

    /// The ring said `e` to a reservation: wait for room (`Full`) or report the error.
    #[cold]
    #[inline(never)]
    fn reserve_slow(
        &mut self,
        e: CoreError,
        len: usize,
        wait: Wait,
    ) -> Result<Reservation, RingError> {
        if e != CoreError::Full {
            return Err(self
                .seg
                .fault(true)
                .unwrap_or_else(|| RingError::from_ring(&self.seg.name, e)));
        }
        let seg = Arc::clone(&self.seg);
        let w = &mut self.writer;
        wait_for_room(
            &seg,
            &seg.ctl().space_wait,
            self.strategy,
            &mut self.spin,
            wait,
            || match w.reserve(len) {
                Err(CoreError::Full) => None,
                r => Some(r),
            },
            |e| RingError::from_ring(&seg.name, e),
        )
    }

    /// Loans `len` writable bytes in the ring, waiting as `wait` says for room.
    #[inline]
    pub fn loan_wait(&mut self, len: usize, wait: Wait) -> Result<SampleMut<'_>, RingError> {
        let res = self.reserve(len, wait)?;
        Ok(SampleMut::new(Loan { publ: self, res }))
    }
    /// Loans `len` bytes, blocking until there is room.
    #[inline]
    pub fn loan(&mut self, len: usize) -> Result<SampleMut<'_>, RingError> {
        self.loan_wait(len, Wait::Forever)
    }
    /// Loans `len` bytes if there is room now ([`RingError::Full`] otherwise).
    pub fn try_loan(&mut self, len: usize) -> Result<SampleMut<'_>, RingError> {
        self.loan_wait(len, Wait::NoWait)
    }

    /// Copies `msg` into the ring, waiting as `wait` says for room.
    #[inline]
    pub fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), RingError> {
        let res = self.reserve(msg.len(), wait)?;
        self.writer.write(&res, 0, msg);
        self.commit(res, msg.len());
        Ok(())
    }
    /// Sends a plain-data value (its bytes).
    pub fn send_value<T: zerocopy::IntoBytes + zerocopy::Immutable>(
        &mut self,
        value: &T,
    ) -> Result<(), RingError> {
        self.send(value.as_bytes())
    }

    #[inline(always)]
    fn commit(&mut self, res: Reservation, len: usize) {
        self.writer.commit(res, len);
        notify(&self.writer.ctl().data_wait);
        self.hot.sent(&mut self.writer);
    }
}

role_methods!(Publisher, "ring");
send_forms!(Publisher, full: "the ring is full", room: "there is room");

impl Role for Publisher {
    const PATTERN: u32 = PATTERN_PUBSUB;

    fn join(seg: Arc<Segment>, opts: &Options) -> Result<Publisher, RingError> {
        let wc = seg.writer_cursor();
        if !claim(wc, ROLE_PUBLISHER) {
            return Err(RingError::PublisherExists {
                name: seg.name.to_string(),
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
                return Err(RingError::from_ring(&seg.name, e));
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
    fn segment(&self) -> &Arc<Segment> {
        &self.seg
    }
    fn segment_mut(&mut self) -> &mut Arc<Segment> {
        &mut self.seg
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.seg.leave(self.seg.writer_cursor());
        notify(&self.seg.ctl().data_wait);
    }
}

impl Lender for Publisher {
    type Loaned<'a> = Loan<'a>;
}

/// Room the publisher loaned: a reservation in the ring. Dropped unsent, it publishes nothing
/// (the next reservation reuses the room).
#[derive(Debug)]
pub struct Loan<'a> {
    publ: &'a mut Publisher,
    res: Reservation,
}

// SAFETY: a reservation's bytes are inside the data area (checked by `ptr`), reserved for
// this publisher alone until committed (no subscriber reads past the published head, and the
// publisher is the only writer), and mapped while the publisher (which the loan borrows)
// lives.
unsafe impl Loaned for Loan<'_> {
    #[inline]
    fn len(&self) -> usize {
        self.res.len
    }
    #[inline]
    fn bytes(&self) -> (*mut u8, usize) {
        (
            self.publ.writer.data().ptr(self.res.offset, self.res.len),
            self.res.len,
        )
    }
    #[inline(always)]
    fn send(self, len: usize) -> Result<(), RingError> {
        self.publ.commit(self.res, len);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Publisher;
    use crate::ring::{HOT_WINDOW, Options, RingError, Subscriber};
    use std::time::Duration;

    /// The hot window is on for a send that follows a wait for a message on the same thread
    /// (request/reply), off for one that does not (a stream).
    #[test]
    fn the_hot_window_follows_waits_for_messages() {
        let name = format!("/ipcx-unit-hotwait-{}", std::process::id());
        let mut sub = Subscriber::create_new(&name, &Options::new()).unwrap();
        let mut publ = Publisher::open(&name, &Options::new()).unwrap();
        crate::ring::remove(&name).unwrap();
        let window_after = |publ: &mut Publisher, sub: &mut Subscriber, wait: bool| {
            if wait {
                // Nothing to read: the receive waits 1 ms.
                assert!(matches!(
                    sub.recv_timeout(Duration::from_millis(1)),
                    Err(RingError::Timeout)
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
            crate::ring::remove(&name).unwrap();
            assert_eq!((publ.writer.hot_window(), publ.hot.window), (want, want));
        }
    }
}
