//! The named segment behind a ring or work queue: created or opened (and checked), mapped,
//! with typed views of its parts; the last participant to leave removes the name.
#![allow(unsafe_code)] // the shared-memory exception: typed views of the mapped segment

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU8, Ordering, fence};
use std::time::{Duration, Instant};

use ipcx_ring::{Ctl, Cursor, Data, FREE, Params, WorkCtl, WorkQueue, WorkSlot};

use super::RingError;
use super::format::{
    FLAG_OVERWRITE, Header, HeaderValues, Layout, MAGIC, PATTERN_PUBSUB, PATTERN_WORK, VERSION,
    check_size, read_header,
};
use super::table::{HOLD_LOAN, HOLD_MSG, HOLD_NONE, REAPING, cursor_alive};
use super::wait::notify;
use crate::name::PosixName;
use crate::sys::mmap::Mapping;
use crate::sys::shm::{self, OpenMode};
use crate::trust::Trust;

/// A mapped, validated ring segment.
#[derive(Debug)]
pub(crate) struct Segment {
    map: Mapping,
    /// `None` for a private image (the fuzzing hook).
    fd: Option<OwnedFd>,
    pub(crate) name: PosixName,
    pub(crate) params: Params,
    pub(crate) participants: u32,
    layout: Layout,
    pub(crate) persist: bool,
    /// Whether this handle created the segment (only the creator removes the name, or the
    /// last participant after the creator left; see [`Header::orphaned`]).
    created: bool,
}

/// Creation parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Create {
    pub(crate) pattern: u32,
    pub(crate) params: Params,
    pub(crate) participants: u32,
    pub(crate) mode: u32,
}

/// How an existing segment is opened.
#[derive(Debug, Clone)]
pub(crate) struct Open {
    pub(crate) pattern: u32,
    /// Whose segments are accepted.
    pub(crate) trust: Trust,
}

impl Segment {
    /// Creates (`CreateNew`), opens (`Open`) or opens-or-creates (`Create`) the segment.
    pub(crate) fn establish(
        name: &PosixName,
        how: OpenMode,
        c: &Create,
        trust: &Trust,
    ) -> Result<Segment, RingError> {
        let o = Open {
            pattern: c.pattern,
            trust: trust.clone(),
        };
        match how {
            OpenMode::CreateNew => Segment::create_new(name, c),
            OpenMode::Open => Segment::open(name, &o),
            OpenMode::Create => match Segment::create_new(name, c) {
                Err(RingError::AlreadyExists { .. }) => Segment::open(name, &o),
                r => r,
            },
        }
    }

    fn create_new(name: &PosixName, c: &Create) -> Result<Segment, RingError> {
        let layout = Layout::new(c.pattern, &c.params, c.participants).ok_or(
            RingError::InvalidParameters {
                reason: "capacity must be a power of two >= 64 bytes, at least twice the largest \
                         record (message + 16 bytes, rounded up to 16) (work queue: a power of \
                         two number of slots, at most 2^20), and 1..=1024 participants",
            },
        )?;
        let io = |e| RingError::from_io(name, e);
        let fd = shm::shm_open(name, OpenMode::CreateNew, true, c.mode).map_err(io)?;
        let setup = || -> Result<Segment, RingError> {
            shm::fchmod(&fd, c.mode).map_err(io)?;
            shm::ftruncate(&fd, layout.total as u64).map_err(io)?;
            let map = Mapping::map_shared(&fd, layout.total, 0, true).map_err(io)?;
            // No page faults on the ring's first lap (they would show in the latency tail).
            map.populate();
            let seg = Segment {
                map,
                fd: Some(fd.try_clone().map_err(io)?),
                name: name.clone(),
                params: c.params,
                participants: c.participants,
                layout,
                persist: false,
                created: true,
            };
            seg.init(c);
            Ok(seg)
        };
        setup().inspect_err(|_| {
            let _ = shm::shm_unlink(name);
        })
    }

    /// Writes the header and initialises the queues of a fresh (zeroed) segment.
    fn init(&self, c: &Create) {
        let (seg, layout) = (self, self.layout);
        {
            let h = seg.header();
            h.magic.store(MAGIC, Ordering::Relaxed);
            h.version.store(VERSION, Ordering::Relaxed);
            h.pattern.store(c.pattern, Ordering::Relaxed);
            h.layout_size.store(layout.total as u64, Ordering::Relaxed);
            h.capacity.store(c.params.capacity, Ordering::Relaxed);
            h.max_msg.store(c.params.max_msg, Ordering::Relaxed);
            h.max_participants.store(c.participants, Ordering::Relaxed);
            let flags = if c.params.overwrite {
                FLAG_OVERWRITE
            } else {
                0
            };
            h.flags.store(flags, Ordering::Relaxed);
            if let Some(q) = seg.work() {
                q.init();
            }
            h.ready.store(1, Ordering::Release);
        }
    }

    /// A fresh segment with the parameters `c` in private anonymous memory (the fuzzing
    /// hooks).
    pub(crate) fn fresh(c: &Create) -> Result<Segment, RingError> {
        let layout = Layout::new(c.pattern, &c.params, c.participants).ok_or(
            RingError::InvalidParameters {
                reason: "no such layout",
            },
        )?;
        let name = PosixName::new("/image").map_err(RingError::InvalidName)?;
        let map =
            Mapping::anonymous_shared(layout.total).map_err(|e| RingError::from_io(&name, e))?;
        let seg = Segment {
            map,
            fd: None,
            name,
            params: c.params,
            participants: c.participants,
            layout,
            persist: true,
            created: false,
        };
        seg.init(c);
        Ok(seg)
    }

    /// Writes `byte` at `offset` of the mapping (an atomic byte store: the fuzzing hook's
    /// hostile peer); offsets past the end are ignored.
    pub(crate) fn poke(&self, offset: usize, byte: u8) {
        if offset >= self.map.len() {
            return;
        }
        // SAFETY: `offset` is inside the mapping (checked), which stays mapped while `self`
        // lives; an AtomicU8 has no alignment requirement and every access that races with
        // this store is atomic or a volatile/racy copy of shared bytes.
        let cell = unsafe { &*self.map.as_ptr().add(offset).cast::<AtomicU8>() };
        cell.store(byte, Ordering::Relaxed);
    }

    /// The mapping's length.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// A fresh segment image with the parameters `c` (the fuzzing hook's template).
    pub(crate) fn fresh_image(c: &Create) -> Result<Vec<u8>, RingError> {
        let seg = Segment::fresh(c)?;
        let layout = seg.layout;
        let mut out = vec![0u8; layout.total];
        // SAFETY: the mapping is `layout.total` bytes, readable, and only `seg` (this
        // function) uses it; `out` is not inside it.
        unsafe { std::ptr::copy_nonoverlapping(seg.map.as_ptr(), out.as_mut_ptr(), out.len()) };
        Ok(out)
    }

    /// Opens an existing segment: checks its owner, reads and checks its header without
    /// mapping anything (waiting up to a second for a creator that is still initialising
    /// it), checks the file's size against the header, and only then maps it. Nothing is
    /// faulted in beyond what the participant touches, unless the object is fully allocated
    /// already (its creator populated it): then the page tables are filled at once, which
    /// costs no memory.
    fn open(name: &PosixName, o: &Open) -> Result<Segment, RingError> {
        let io = |e| RingError::from_io(name, e);
        let fd = shm::shm_open(name, OpenMode::Open, true, 0).map_err(io)?;
        let st = shm::fstat(&fd).map_err(io)?;
        if !st.regular {
            return Err(RingError::NotARing {
                name: name.to_string(),
                found: 0,
            });
        }
        o.trust.check_owner(&format!("ring shm:{name}"), st.uid)?;
        let deadline = Instant::now() + Duration::from_secs(1);
        // The creator sizes the object, then writes the header, then sets the ready flag:
        // wait for that, briefly.
        let (st, (params, participants, layout)) = loop {
            let st = shm::fstat(&fd).map_err(io)?;
            let r = read_header(&fd, name).and_then(|h| h.layout(name));
            match r {
                // A zero magic: sized, header not written yet.
                Err(
                    RingError::TooSmall { .. }
                    | RingError::NotInitialised { .. }
                    | RingError::NotARing { found: 0, .. },
                ) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                r => break (st, r?),
            }
        };
        check_size(name, st.size, &layout)?;
        let map = Mapping::map_shared(&fd, layout.total, 0, true).map_err(io)?;
        if st.allocated >= st.size {
            map.populate();
        }
        let seg = Segment {
            map,
            fd: Some(fd),
            name: name.clone(),
            params,
            participants,
            layout,
            persist: false,
            created: false,
        };
        if seg.layout.pattern != o.pattern {
            return Err(RingError::Incompatible {
                name: name.to_string(),
                field: "pattern (publish/subscribe is 1, work queue is 2)",
                expected: o.pattern.into(),
                found: seg.layout.pattern.into(),
            });
        }
        Ok(seg)
    }

    /// A private copy of a segment image (the fuzzing hook): validated like a named one.
    pub(crate) fn from_image(bytes: &[u8]) -> Result<Segment, RingError> {
        let name = PosixName::new("/image").map_err(RingError::InvalidName)?;
        let io = |e| RingError::from_io(&name, e);
        let Some(head) = bytes.first_chunk::<{ size_of::<Header>() }>() else {
            return Err(RingError::TooSmall {
                name: name.to_string(),
                size: bytes.len() as u64,
                needed: size_of::<Header>() as u64,
            });
        };
        let (params, participants, layout) = HeaderValues::parse(head).layout(&name)?;
        if (bytes.len() as u64) < layout.total as u64 {
            return Err(RingError::TooSmall {
                name: name.to_string(),
                size: bytes.len() as u64,
                needed: layout.total as u64,
            });
        }
        let map = Mapping::anonymous_shared(layout.total).map_err(io)?;
        // SAFETY: the mapping is layout.total bytes, private to this call (no other reference
        // to it exists yet), and `bytes` (at least that long) is not inside it.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), map.as_ptr(), layout.total) };
        Ok(Segment {
            map,
            fd: None,
            name,
            params,
            participants,
            layout,
            persist: false,
            created: false,
        })
    }

    /// `Some(Corrupt)` when the object behind the mapping was truncated: an access hit a lost
    /// page (the mapping now reads as zeros, see [`crate::sys::sigbus`]) or, when `stat`, the
    /// object is now smaller than the layout (one `fstat`). For slow paths and waits.
    pub(crate) fn fault(&self, stat: bool) -> Option<RingError> {
        let shrunk = || {
            self.fd
                .as_ref()
                .and_then(|fd| shm::fstat(fd).ok())
                .is_some_and(|st| st.size < self.layout.total as u64)
        };
        (self.map.poisoned() || (stat && shrunk())).then(|| RingError::Corrupt {
            name: self.name.to_string(),
            what: "its file was truncated under the mapping by another process",
        })
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: every Segment's mapping is at least `layout.total` bytes (checked at
        // create/open), which includes the header at offset 0; the mapping is page aligned and
        // Header is all atomics, valid for any bytes; the reference borrows `self`.
        unsafe { &*self.map.as_ptr().cast::<Header>() }
    }

    pub(crate) fn writer_cursor(&self) -> &Cursor {
        // SAFETY: [writer_off, writer_off + size_of Cursor) is inside the mapping (layout),
        // 128-aligned, and Cursor is all atomics.
        unsafe {
            &*self
                .map
                .as_ptr()
                .add(self.layout.writer_off)
                .cast::<Cursor>()
        }
    }

    pub(crate) fn ctl(&self) -> &Ctl {
        assert_eq!(self.layout.pattern, PATTERN_PUBSUB);
        // SAFETY: as for writer_cursor: in bounds (a publish/subscribe layout, asserted),
        // aligned, all atomics.
        unsafe { &*self.map.as_ptr().add(self.layout.ctl_off).cast::<Ctl>() }
    }

    /// The work queue of a work-queue segment (`None` for publish/subscribe).
    pub(crate) fn work(&self) -> Option<WorkQueue<'_>> {
        if self.layout.pattern != PATTERN_WORK {
            return None;
        }
        let l = &self.layout;
        // SAFETY: a work layout puts a WorkCtl at ctl_off and `slots` WorkSlots at free_off and
        // at ready_off, all inside the mapping (layout), 128-aligned and all atomics; the
        // references borrow `self`, which keeps the mapping.
        let (ctl, free, ready) = unsafe {
            let base = self.map.as_ptr();
            (
                &*base.add(l.ctl_off).cast::<WorkCtl>(),
                std::slice::from_raw_parts(base.add(l.free_off).cast::<WorkSlot>(), l.slots),
                std::slice::from_raw_parts(base.add(l.ready_off).cast::<WorkSlot>(), l.slots),
            )
        };
        WorkQueue::new(ctl, free, ready, self.data(), l.slot_size)
    }

    pub(crate) fn table(&self) -> &[Cursor] {
        // SAFETY: the table of `participants` cursors lies inside the mapping (layout), is
        // 128-aligned, and Cursor is all atomics.
        unsafe {
            std::slice::from_raw_parts(
                self.map
                    .as_ptr()
                    .add(self.layout.table_off)
                    .cast::<Cursor>(),
                self.participants as usize,
            )
        }
    }

    pub(crate) fn data(&self) -> Data {
        // SAFETY: [data_off, data_off + capacity) is inside the mapping (layout), 4096-aligned,
        // readable and writable, and stays mapped while the Segment lives; the ring owners keep
        // the Segment alive (Arc) for as long as they use this Data.
        unsafe {
            Data::new(
                self.map.as_ptr().add(self.layout.data_off),
                self.params.capacity as usize,
            )
        }
    }

    /// Whether any participant (publisher or subscriber) other than `me` is still there and
    /// alive.
    fn others_alive(&self, me: *const Cursor) -> bool {
        std::iter::once(self.writer_cursor())
            .chain(self.table())
            .filter(|c| !std::ptr::eq(*c, me))
            .any(|c| c.state.load(Ordering::Acquire) != FREE && cursor_alive(c))
    }

    /// Releases `me` and, when it was the last participant, removes the name (if it still
    /// names this segment).
    pub(crate) fn leave(&self, me: &Cursor) {
        // The creator says it is leaving before it gives up its place, so that a participant
        // leaving at the same moment either sees the creator still there (and the creator then
        // sees it gone) or sees `orphaned` (and removes the name itself).
        if self.created && !self.persist {
            self.header().orphaned.store(1, Ordering::Relaxed);
        }
        me.holding.store(0, Ordering::Relaxed);
        me.pid.store(0, Ordering::Relaxed);
        me.state.store(FREE, Ordering::Release);
        if self.persist {
            return;
        }
        // Each leaver stores its own FREE and then reads the others' places: with a SeqCst
        // fence between on both sides, two participants leaving together cannot both miss
        // each other's FREE, so the name is never left behind by nobody.
        fence(Ordering::SeqCst);
        if self.others_alive(me) {
            return;
        }
        // Only the creator removes the name, or the last participant once the creator left.
        if !self.created && self.header().orphaned.load(Ordering::Relaxed) != 1 {
            return;
        }
        let Some(fd) = &self.fd else {
            return;
        };
        let Ok(ours) = shm::fstat(fd) else {
            return;
        };
        if let Ok(fd) = shm::shm_open(&self.name, OpenMode::Open, false, 0)
            && let Ok(now) = shm::fstat(&fd)
            && (now.dev, now.ino) == (ours.dev, ours.ino)
        {
            let _ = shm::shm_unlink(&self.name);
        }
    }

    /// Claims a place in the table for `role` with `claim` ([`claim`] or [`claim_free`]); when every place is taken, reaps dead participants and tries
    /// once more. Returns the place's index.
    pub(crate) fn claim_place(&self, claim: fn(&Cursor, u32) -> bool, role: u32) -> Option<usize> {
        let find = || self.table().iter().position(|c| claim(c, role));
        find().or_else(|| if self.reap() > 0 { find() } else { None })
    }

    /// Frees every cursor whose process died; returns how many. On a work queue, what a dead
    /// participant held is given back (see [`Segment::give_back`]).
    pub(crate) fn reap(&self) -> usize {
        let mut n = 0;
        for c in std::iter::once(self.writer_cursor()).chain(self.table()) {
            let s = c.state.load(Ordering::Acquire);
            if s != FREE
                && !cursor_alive(c)
                && c.state
                    .compare_exchange(s, REAPING, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                // `swap`: if two reapers get here (one took over from a dead one), only one
                // gives the slot back.
                let held = c.holding.swap(HOLD_NONE, Ordering::AcqRel);
                let what = c.tail.load(Ordering::Acquire);
                // pid 0 reads as "being claimed": a joiner that claims the cursor once it is
                // FREE is never mistaken for the dead owner.
                c.pid.store(0, Ordering::Release);
                let _ =
                    c.state
                        .compare_exchange(REAPING, FREE, Ordering::AcqRel, Ordering::Relaxed);
                self.give_back(held, what);
                n += 1;
            }
        }
        n
    }

    /// Work queue: gives back what a dead participant held. A loaned slot returns to the free
    /// pool (the unsent message is dropped); a received message is published again, so
    /// another consumer gets it (redelivery). Values are checked by the queue.
    pub(crate) fn give_back(&self, held: u32, what: u64) {
        let Some(q) = self.work() else {
            return;
        };
        let r = match held {
            HOLD_LOAN => q.release(what as u32),
            HOLD_MSG => q.publish(what as u32, (what >> 32) as usize),
            _ => return,
        };
        if r.is_ok() {
            let line = if held == HOLD_LOAN {
                &q.ctl().space_wait
            } else {
                &q.ctl().data_wait
            };
            notify(line);
        }
    }
}
