//! The named segment behind a ring: header, layout, participant table, liveness.
#![allow(unsafe_code)] // the shared-memory exception: typed views of the mapped segment

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ipcx_ring::{CLAIMED, Ctl, Cursor, Data, FREE, Params, WorkCtl, WorkQueue, WorkSlot};

use super::Error;
use crate::name::PosixName;
use crate::registry::process_start_time;
use crate::sys::mmap::Mapping;
use crate::sys::shm::{self, OpenMode};
use crate::trust::Trust;

/// "IPCXRING" in little-endian bytes.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"IPCXRING");
/// Layout version of this build.
pub(crate) const VERSION: u32 = 2;
/// Pattern: publish/subscribe (1:1 and 1:M).
pub(crate) const PATTERN_PUBSUB: u32 = 1;
/// Pattern: work queue (N producers, M consumers, each message to one consumer).
pub(crate) const PATTERN_WORK: u32 = 2;
/// Largest participant table accepted.
pub(crate) const MAX_PARTICIPANTS: u32 = 1024;

/// Participant roles (stored in `Cursor::role`).
pub(crate) const ROLE_PUBLISHER: u32 = 1;
pub(crate) const ROLE_SUBSCRIBER: u32 = 2;
pub(crate) const ROLE_PRODUCER: u32 = 3;
pub(crate) const ROLE_CONSUMER: u32 = 4;

/// Cursor state (process layer): a dead owner's cursor being reclaimed. Never claimed by a
/// joiner; a reaper that dies there leaves it to the next reaper.
pub(crate) const REAPING: u32 = 4;

/// `Cursor::holding` values (work queue): what the owner holds; `tail` says which slot.
pub(crate) const HOLD_NONE: u32 = 0;
/// A loaned (free, being filled) slot: `tail` is its index.
pub(crate) const HOLD_LOAN: u32 = 1;
/// A received message: `tail` is `slot | len << 32`.
pub(crate) const HOLD_MSG: u32 = 2;

/// Largest work-queue slot count accepted.
pub(crate) const MAX_SLOTS: u64 = 1 << 20;

/// The segment header: every field an atomic, because a peer may change any byte at any time.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) magic: AtomicU64,
    pub(crate) version: AtomicU32,
    pub(crate) pattern: AtomicU32,
    pub(crate) layout_size: AtomicU64,
    pub(crate) capacity: AtomicU64,
    pub(crate) max_msg: AtomicU32,
    pub(crate) max_participants: AtomicU32,
    pub(crate) flags: AtomicU32,
    /// Set (Release) by the creator once every field above is written.
    pub(crate) ready: AtomicU32,
    /// How many publishers ever attached (so subscribers can tell "gone" from "not yet").
    pub(crate) writer_epoch: AtomicU32,
    /// Set by the creator when it leaves while other participants remain: the last of them
    /// removes the name (a participant that did not create the ring removes it only then).
    /// It lives in what was padding: older builds ignore it.
    pub(crate) orphaned: AtomicU32,
}

/// The header's values as read from the segment (by `pread`, before anything is mapped, or
/// from a mapping). Every one is hostile until [`HeaderValues::layout`] checked it.
#[derive(Debug, Clone, Copy)]
struct HeaderValues {
    magic: u64,
    version: u32,
    pattern: u32,
    layout_size: u64,
    capacity: u64,
    max_msg: u32,
    participants: u32,
    flags: u32,
    ready: u32,
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

impl HeaderValues {
    /// Reads the fields from the first `size_of::<Header>()` bytes of `b`.
    fn parse(b: &[u8; size_of::<Header>()]) -> HeaderValues {
        use std::mem::offset_of;
        HeaderValues {
            magic: u64_at(b, offset_of!(Header, magic)),
            version: u32_at(b, offset_of!(Header, version)),
            pattern: u32_at(b, offset_of!(Header, pattern)),
            layout_size: u64_at(b, offset_of!(Header, layout_size)),
            capacity: u64_at(b, offset_of!(Header, capacity)),
            max_msg: u32_at(b, offset_of!(Header, max_msg)),
            participants: u32_at(b, offset_of!(Header, max_participants)),
            flags: u32_at(b, offset_of!(Header, flags)),
            ready: u32_at(b, offset_of!(Header, ready)),
        }
    }

    /// Checks magic, ready flag, version and parameters; returns the parameters, the number
    /// of participant places and the layout they give.
    fn layout(&self, name: &PosixName) -> Result<(Params, u32, Layout), Error> {
        let n = name.to_string();
        if self.magic != MAGIC {
            return Err(Error::NotARing {
                name: n,
                found: self.magic,
            });
        }
        if self.ready != 1 {
            return Err(Error::NotInitialised { name: n });
        }
        if self.version != VERSION {
            return Err(Error::VersionMismatch {
                name: n,
                found: self.version,
                expected: VERSION,
            });
        }
        let incompatible = |field, expected: u64, found: u64| Error::Incompatible {
            name: n.clone(),
            field,
            expected,
            found,
        };
        if self.pattern != PATTERN_PUBSUB && self.pattern != PATTERN_WORK {
            return Err(incompatible(
                "pattern",
                PATTERN_PUBSUB.into(),
                self.pattern.into(),
            ));
        }
        let params = Params {
            capacity: self.capacity,
            max_msg: self.max_msg,
            overwrite: self.flags & FLAG_OVERWRITE != 0,
        };
        let layout = Layout::new(self.pattern, &params, self.participants).ok_or_else(|| {
            Error::Corrupt {
                name: n.clone(),
                what: "ring parameters in the header",
            }
        })?;
        if self.layout_size != layout.total as u64 {
            return Err(incompatible(
                "layout size",
                layout.total as u64,
                self.layout_size,
            ));
        }
        Ok((params, self.participants, layout))
    }
}

/// Reads the header of the object behind `fd` without mapping anything.
///
/// A copy is not atomic: it may read a field before the creator wrote it and the ready flag
/// after. So once a copy shows the flag set, the header is read again: every field the creator
/// wrote before setting the flag is in that second copy.
fn read_header(fd: &OwnedFd, name: &PosixName) -> Result<HeaderValues, Error> {
    let read = || {
        let mut b = [0u8; size_of::<Header>()];
        let n = shm::pread(fd, &mut b, 0).map_err(|e| Error::from_io(name, e))?;
        if n < b.len() {
            return Err(Error::TooSmall {
                name: name.to_string(),
                size: n as u64,
                needed: b.len() as u64,
            });
        }
        Ok(HeaderValues::parse(&b))
    };
    let first = read()?;
    if first.ready != 1 {
        return Ok(first);
    }
    read()
}

/// The object's size must be exactly what its header implies: a larger one is never mapped
/// whole, a smaller one would fault.
fn check_size(name: &PosixName, size: u64, layout: &Layout) -> Result<(), Error> {
    if size == layout.total as u64 {
        return Ok(());
    }
    Err(Error::Corrupt {
        name: name.to_string(),
        what: "the file's size differs from the size its header gives",
    })
}

const FLAG_OVERWRITE: u32 = 1;

/// Where everything is, computed from the parameters alone (never read from the segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) pattern: u32,
    pub(crate) writer_off: usize,
    pub(crate) ctl_off: usize,
    /// Work queue: the `free` and `ready` cell arrays (`slots` cells each).
    pub(crate) free_off: usize,
    pub(crate) ready_off: usize,
    pub(crate) slots: usize,
    pub(crate) slot_size: usize,
    pub(crate) table_off: usize,
    pub(crate) data_off: usize,
    pub(crate) total: usize,
}

fn align_up(x: usize, a: usize) -> usize {
    x.div_ceil(a) * a
}

/// Bytes per work-queue slot for messages of up to `max_msg` bytes.
pub(crate) fn slot_size(max_msg: u32) -> u64 {
    (u64::from(max_msg).max(1) + 15) & !15
}

impl Layout {
    /// The layout of a `pattern` segment. Publish/subscribe: `p` as [`Params`] says. Work
    /// queue: `p.capacity` is the data area, `slots * slot_size(p.max_msg)` bytes with
    /// `slots` a power of two.
    pub(crate) fn new(pattern: u32, p: &Params, participants: u32) -> Option<Layout> {
        if participants == 0 || participants > MAX_PARTICIPANTS {
            return None;
        }
        let (slots, slot) = match pattern {
            PATTERN_PUBSUB if p.is_valid() => (0, 0),
            PATTERN_WORK if !p.overwrite => {
                let slot = slot_size(p.max_msg);
                let slots = p.capacity / slot;
                if slots * slot != p.capacity || !slots.is_power_of_two() || slots > MAX_SLOTS {
                    return None;
                }
                (slots as usize, slot as usize)
            }
            _ => return None,
        };
        let writer_off = align_up(size_of::<Header>(), 128);
        let ctl_off = align_up(writer_off + size_of::<Cursor>(), 128);
        let (free_off, ready_off, ctl_end) = if pattern == PATTERN_WORK {
            let free_off = align_up(ctl_off + size_of::<WorkCtl>(), 128);
            let ready_off = align_up(free_off + size_of::<WorkSlot>() * slots, 128);
            (
                free_off,
                ready_off,
                ready_off + size_of::<WorkSlot>() * slots,
            )
        } else {
            (0, 0, ctl_off + size_of::<Ctl>())
        };
        let table_off = align_up(ctl_end, 128);
        let data_off = align_up(
            table_off + size_of::<Cursor>() * participants as usize,
            4096,
        );
        let total = data_off.checked_add(usize::try_from(p.capacity).ok()?)?;
        Some(Layout {
            pattern,
            writer_off,
            ctl_off,
            free_off,
            ready_off,
            slots,
            slot_size: slot,
            table_off,
            data_off,
            total,
        })
    }
}

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
    ) -> Result<Segment, Error> {
        let o = Open {
            pattern: c.pattern,
            trust: trust.clone(),
        };
        match how {
            OpenMode::CreateNew => Segment::create_new(name, c),
            OpenMode::Open => Segment::open(name, &o),
            OpenMode::Create => match Segment::create_new(name, c) {
                Err(Error::AlreadyExists { .. }) => Segment::open(name, &o),
                r => r,
            },
        }
    }

    fn create_new(name: &PosixName, c: &Create) -> Result<Segment, Error> {
        let layout =
            Layout::new(c.pattern, &c.params, c.participants).ok_or(Error::InvalidParameters {
                reason: "capacity must be a power of two >= 64 bytes, at least twice the largest \
                         record (message + 16 bytes, rounded up to 16) (work queue: a power of \
                         two number of slots, at most 2^20), and 1..=1024 participants",
            })?;
        let io = |e| Error::from_io(name, e);
        let fd = shm::shm_open(name, OpenMode::CreateNew, true, c.mode).map_err(io)?;
        let setup = || -> Result<Segment, Error> {
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
    pub(crate) fn fresh(c: &Create) -> Result<Segment, Error> {
        let layout =
            Layout::new(c.pattern, &c.params, c.participants).ok_or(Error::InvalidParameters {
                reason: "no such layout",
            })?;
        let name = PosixName::new("/image").map_err(Error::InvalidName)?;
        let map = Mapping::anonymous_shared(layout.total).map_err(|e| Error::from_io(&name, e))?;
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
    pub(crate) fn fresh_image(c: &Create) -> Result<Vec<u8>, Error> {
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
    fn open(name: &PosixName, o: &Open) -> Result<Segment, Error> {
        let io = |e| Error::from_io(name, e);
        let fd = shm::shm_open(name, OpenMode::Open, true, 0).map_err(io)?;
        let st = shm::fstat(&fd).map_err(io)?;
        if !st.regular {
            return Err(Error::NotARing {
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
                    Error::TooSmall { .. }
                    | Error::NotInitialised { .. }
                    | Error::NotARing { found: 0, .. },
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
            return Err(Error::Incompatible {
                name: name.to_string(),
                field: "pattern (publish/subscribe is 1, work queue is 2)",
                expected: o.pattern.into(),
                found: seg.layout.pattern.into(),
            });
        }
        Ok(seg)
    }

    /// A private copy of a segment image (the fuzzing hook): validated like a named one.
    pub(crate) fn from_image(bytes: &[u8]) -> Result<Segment, Error> {
        let name = PosixName::new("/image").map_err(Error::InvalidName)?;
        let io = |e| Error::from_io(&name, e);
        let Some(head) = bytes.first_chunk::<{ size_of::<Header>() }>() else {
            return Err(Error::TooSmall {
                name: name.to_string(),
                size: bytes.len() as u64,
                needed: size_of::<Header>() as u64,
            });
        };
        let (params, participants, layout) = HeaderValues::parse(head).layout(&name)?;
        if (bytes.len() as u64) < layout.total as u64 {
            return Err(Error::TooSmall {
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
    pub(crate) fn fault(&self, stat: bool) -> Option<Error> {
        let shrunk = || {
            self.fd
                .as_ref()
                .and_then(|fd| shm::fstat(fd).ok())
                .is_some_and(|st| st.size < self.layout.total as u64)
        };
        (self.map.poisoned() || (stat && shrunk())).then(|| Error::Corrupt {
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
        me.holding.store(0, Ordering::Relaxed);
        me.pid.store(0, Ordering::Relaxed);
        me.state.store(FREE, Ordering::Release);
        if self.persist {
            return;
        }
        if self.others_alive(me) {
            if self.created {
                self.header().orphaned.store(1, Ordering::Release);
            }
            return;
        }
        // Only the creator removes the name, or the last participant once the creator left.
        if !self.created && self.header().orphaned.load(Ordering::Acquire) != 1 {
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

    /// Claims a free cursor of the table (or `cursor` itself) for this process: CLAIMED,
    /// with pid, start time and role. A dead owner's cursor is taken over.
    pub(crate) fn claim(cursor: &Cursor, role: u32) -> bool {
        let me = std::process::id();
        let start = process_start_time(me as i32).unwrap_or(0);
        let mut state = cursor.state.load(Ordering::Acquire);
        loop {
            if state != FREE && cursor_alive(cursor) {
                return false;
            }
            match cursor
                .state
                .compare_exchange(state, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(s) => state = s,
            }
        }
        cursor.pid.store(me, Ordering::Relaxed);
        cursor.start_time.store(start, Ordering::Relaxed);
        cursor.role.store(role, Ordering::Release);
        true
    }

    /// Claims a place in the table for `role` with `claim` ([`Segment::claim`] or
    /// [`Segment::claim_free`]); when every place is taken, reaps dead participants and tries
    /// once more. Returns the place's index.
    pub(crate) fn claim_place(&self, claim: fn(&Cursor, u32) -> bool, role: u32) -> Option<usize> {
        let find = || self.table().iter().position(|c| claim(c, role));
        find().or_else(|| if self.reap() > 0 { find() } else { None })
    }

    /// Claims `cursor` only if it is free (work queue: a dead owner's cursor must be reaped,
    /// so that what it held is given back, before anyone reuses it).
    pub(crate) fn claim_free(cursor: &Cursor, role: u32) -> bool {
        if cursor
            .state
            .compare_exchange(FREE, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        let me = std::process::id();
        cursor.start_time.store(
            process_start_time(me as i32).unwrap_or(0),
            Ordering::Relaxed,
        );
        cursor.pid.store(me, Ordering::Relaxed);
        cursor.role.store(role, Ordering::Release);
        true
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
            super::wait::notify(line);
        }
    }
}

/// Whether the process recorded in `c` still runs (same pid, same start time). A cursor whose
/// pid is not written yet counts as alive (it is being claimed right now).
pub(crate) fn cursor_alive(c: &Cursor) -> bool {
    let pid = c.pid.load(Ordering::Acquire);
    alive(pid, c.start_time.load(Ordering::Relaxed))
}

/// Whether process `pid` started at `start` still runs (pid 0: being claimed, alive).
fn alive(pid: u32, start: u64) -> bool {
    if pid == 0 {
        return true;
    }
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    process_start_time(pid) == Some(start)
}

/// One participant of a ring, as `ipcx ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Participant {
    /// `publisher`, `subscriber`, `producer` or `consumer`.
    pub role: &'static str,
    /// Process id.
    pub pid: i32,
    /// Whether that process still runs (pid and start time match).
    pub alive: bool,
}

/// Reads the participants of the ring `name`, for `ipcx ls` and `ipcx clean`.
///
/// Read-only and non-blocking: the header and the participant table are read with `pread`
/// (nothing is mapped, no page of a sparse object is allocated), a ring whose creator has not
/// finished initialising it is [`Error::NotInitialised`] at once, and a file whose size is not
/// the one its header gives is [`Error::Corrupt`]. Every value read is checked.
pub fn participants(name: &str) -> Result<Vec<Participant>, Error> {
    use std::mem::offset_of;
    let name = PosixName::new(name)?;
    let io = |e| Error::from_io(&name, e);
    let fd = shm::shm_open(&name, OpenMode::Open, false, 0).map_err(io)?;
    let st = shm::fstat(&fd).map_err(io)?;
    if !st.regular {
        return Err(Error::NotARing {
            name: name.to_string(),
            found: 0,
        });
    }
    let (_, participants, layout) = read_header(&fd, &name)?.layout(&name)?;
    check_size(&name, st.size, &layout)?;
    // The writer's cursor, then the table: `participants` cursors.
    let line = size_of::<Cursor>();
    let mut cursors = vec![0u8; line * (1 + participants as usize)];
    let (writer, table) = cursors.split_at_mut(line);
    let got = shm::pread(&fd, writer, layout.writer_off as u64).map_err(io)?
        + shm::pread(&fd, table, layout.table_off as u64).map_err(io)?;
    if got < cursors.len() {
        return Err(Error::Corrupt {
            name: name.to_string(),
            what: "the participant table is cut short",
        });
    }
    let mut out = Vec::new();
    for c in cursors.chunks_exact(line) {
        if u32_at(c, offset_of!(Cursor, state)) == FREE {
            continue;
        }
        let role = match u32_at(c, offset_of!(Cursor, role)) {
            ROLE_PUBLISHER => "publisher",
            ROLE_SUBSCRIBER => "subscriber",
            ROLE_PRODUCER => "producer",
            ROLE_CONSUMER => "consumer",
            _ => "unknown",
        };
        let pid = u32_at(c, offset_of!(Cursor, pid));
        out.push(Participant {
            role,
            pid: pid as i32,
            alive: alive(pid, u64_at(c, offset_of!(Cursor, start_time))),
        });
    }
    Ok(out)
}

/// Whether the shared-memory object `name` starts with a ring header (without opening it for
/// writing).
///
/// Never blocks and never follows a symlink: the object is opened with `O_NONBLOCK` and
/// `O_NOFOLLOW`, and only a regular file is read.
pub fn is_ring(name: &str) -> bool {
    let Ok(name) = PosixName::new(name) else {
        return false;
    };
    let Ok(fd) = shm::shm_open(&name, OpenMode::Open, false, 0) else {
        return false;
    };
    let mut magic = [0u8; 8];
    shm::fstat(&fd).is_ok_and(|st| st.regular)
        && shm::pread(&fd, &mut magic, 0).is_ok_and(|n| n == 8)
        && u64::from_le_bytes(magic) == MAGIC
}
