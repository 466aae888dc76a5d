//! The named segment behind a ring: header, layout, participant table, liveness.
#![allow(unsafe_code)] // the shared-memory exception: typed views of the mapped segment

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ipcx_ring::{CLAIMED, Ctl, Cursor, Data, FREE, Params, WorkCtl, WorkQueue, WorkSlot};

use super::Error;
use crate::name::PosixName;
use crate::registry::process_start_time;
use crate::sys::mmap::Mapping;
use crate::sys::shm::{self, OpenMode};

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
}

/// Creation parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Create {
    pub(crate) pattern: u32,
    pub(crate) params: Params,
    pub(crate) participants: u32,
    pub(crate) mode: u32,
}

impl Segment {
    /// Creates (`CreateNew`), opens (`Open`) or opens-or-creates (`Create`) the segment.
    pub(crate) fn establish(
        name: &PosixName,
        how: OpenMode,
        c: &Create,
    ) -> Result<(Segment, bool), Error> {
        match how {
            OpenMode::CreateNew => Segment::create_new(name, c).map(|s| (s, true)),
            OpenMode::Open => Segment::open(name, c.pattern).map(|s| (s, false)),
            OpenMode::Create => match Segment::create_new(name, c) {
                Err(Error::AlreadyExists { .. }) => {
                    Segment::open(name, c.pattern).map(|s| (s, false))
                }
                r => r.map(|s| (s, true)),
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

    /// A fresh segment image with the parameters `c` (the fuzzing hook's template).
    pub(crate) fn fresh_image(c: &Create) -> Result<Vec<u8>, Error> {
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
        };
        seg.init(c);
        let mut out = vec![0u8; layout.total];
        // SAFETY: the mapping is `layout.total` bytes, readable, and only `seg` (this
        // function) uses it; `out` is not inside it.
        unsafe { std::ptr::copy_nonoverlapping(seg.map.as_ptr(), out.as_mut_ptr(), out.len()) };
        Ok(out)
    }

    fn open(name: &PosixName, pattern: u32) -> Result<Segment, Error> {
        let io = |e| Error::from_io(name, e);
        let fd = shm::shm_open(name, OpenMode::Open, true, 0).map_err(io)?;
        let n = name.to_string();
        let deadline = Instant::now() + Duration::from_secs(1);
        // The creator sizes the object right after creating it: wait for that, briefly.
        let size = loop {
            let size = shm::fstat(&fd).map_err(io)?.size;
            if size >= size_of::<Header>() as u64 {
                break size;
            }
            if Instant::now() >= deadline {
                return Err(Error::TooSmall {
                    name: n,
                    size,
                    needed: size_of::<Header>() as u64,
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let len = usize::try_from(size).map_err(|_| Error::Incompatible {
            name: n.clone(),
            field: "size",
            expected: usize::MAX as u64,
            found: size,
        })?;
        let map = Mapping::map_shared(&fd, len, 0, true).map_err(io)?;
        let seg = Segment::validate(map, Some(fd), name, size, deadline)?;
        seg.map.populate();
        if seg.layout.pattern != pattern {
            return Err(Error::Incompatible {
                name: n,
                field: "pattern (publish/subscribe is 1, work queue is 2)",
                expected: pattern.into(),
                found: seg.layout.pattern.into(),
            });
        }
        Ok(seg)
    }

    /// Checks the header of a mapped segment of `size` bytes and computes its layout.
    fn validate(
        map: Mapping,
        fd: Option<OwnedFd>,
        name: &PosixName,
        size: u64,
        deadline: Instant,
    ) -> Result<Segment, Error> {
        let n = name.to_string();
        if size < size_of::<Header>() as u64 || (map.len() as u64) < size {
            return Err(Error::TooSmall {
                name: n,
                size,
                needed: size_of::<Header>() as u64,
            });
        }
        // SAFETY: the mapping is at least size_of::<Header>() bytes (checked), page aligned,
        // and Header is all atomics (every bit pattern valid); it lives as long as `map`.
        let h = unsafe { &*map.as_ptr().cast::<Header>() };
        let magic = h.magic.load(Ordering::Relaxed);
        if magic != MAGIC {
            return Err(Error::NotARing {
                name: n,
                found: magic,
            });
        }
        while h.ready.load(Ordering::Acquire) != 1 {
            if Instant::now() >= deadline {
                return Err(Error::NotInitialised { name: n });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let version = h.version.load(Ordering::Relaxed);
        if version != VERSION {
            return Err(Error::VersionMismatch {
                name: n,
                found: version,
                expected: VERSION,
            });
        }
        let incompatible = |field, expected: u64, found: u64| Error::Incompatible {
            name: n.clone(),
            field,
            expected,
            found,
        };
        let pattern = h.pattern.load(Ordering::Relaxed);
        if pattern != PATTERN_PUBSUB && pattern != PATTERN_WORK {
            return Err(incompatible(
                "pattern",
                PATTERN_PUBSUB.into(),
                pattern.into(),
            ));
        }
        let params = Params {
            capacity: h.capacity.load(Ordering::Relaxed),
            max_msg: h.max_msg.load(Ordering::Relaxed),
            overwrite: h.flags.load(Ordering::Relaxed) & FLAG_OVERWRITE != 0,
        };
        let participants = h.max_participants.load(Ordering::Relaxed);
        let layout = Layout::new(pattern, &params, participants).ok_or_else(|| Error::Corrupt {
            name: n.clone(),
            what: "ring parameters in the header",
        })?;
        let stored = h.layout_size.load(Ordering::Relaxed);
        if stored != layout.total as u64 {
            return Err(incompatible("layout size", layout.total as u64, stored));
        }
        if size < layout.total as u64 {
            return Err(Error::TooSmall {
                name: n,
                size,
                needed: layout.total as u64,
            });
        }
        Ok(Segment {
            map,
            fd,
            name: name.clone(),
            params,
            participants,
            layout,
            persist: false,
        })
    }

    /// A private copy of a segment image (the fuzzing hook): validated like a named one.
    pub(crate) fn from_image(bytes: &[u8]) -> Result<Segment, Error> {
        let name = PosixName::new("/image").map_err(Error::InvalidName)?;
        let io = |e| Error::from_io(&name, e);
        let map = Mapping::anonymous_shared(bytes.len().max(1)).map_err(io)?;
        // SAFETY: the mapping is at least bytes.len() bytes, private to this call (no other
        // reference to it exists yet), and `bytes` is not inside it.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), map.as_ptr(), bytes.len()) };
        Segment::validate(map, None, &name, bytes.len() as u64, Instant::now())
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
        if self.persist || self.others_alive(me) {
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
            super::notify(line);
        }
    }
}

/// Whether the process recorded in `c` still runs (same pid, same start time). A cursor whose
/// pid is not written yet counts as alive (it is being claimed right now).
pub(crate) fn cursor_alive(c: &Cursor) -> bool {
    let pid = c.pid.load(Ordering::Acquire);
    if pid == 0 {
        return true;
    }
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    process_start_time(pid) == Some(c.start_time.load(Ordering::Relaxed))
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

/// Reads the participants of the ring `name` (read-only; every value checked).
pub fn participants(name: &str) -> Result<Vec<Participant>, Error> {
    let name = PosixName::new(name)?;
    let seg = match Segment::open(&name, PATTERN_PUBSUB) {
        Err(Error::Incompatible { .. }) => Segment::open(&name, PATTERN_WORK)?,
        r => r?,
    };
    let mut out = Vec::new();
    for c in std::iter::once(seg.writer_cursor()).chain(seg.table()) {
        if c.state.load(Ordering::Acquire) == FREE {
            continue;
        }
        let role = match c.role.load(Ordering::Acquire) {
            ROLE_PUBLISHER => "publisher",
            ROLE_SUBSCRIBER => "subscriber",
            ROLE_PRODUCER => "producer",
            ROLE_CONSUMER => "consumer",
            _ => "unknown",
        };
        out.push(Participant {
            role,
            pid: c.pid.load(Ordering::Acquire) as i32,
            alive: cursor_alive(c),
        });
    }
    Ok(out)
}

/// Whether the shared-memory object `name` starts with a ring header (without opening it for
/// writing).
pub fn is_ring(name: &str) -> bool {
    use std::io::Read;
    let Some(file) = name.strip_prefix('/') else {
        return false;
    };
    use std::os::unix::fs::OpenOptionsExt;
    let mut magic = [0u8; 8];
    // Anyone can put a FIFO or a symlink in /dev/shm: never follow one, never wait on one.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(format!("/dev/shm/{file}"))
        .and_then(|mut f| {
            if !f.metadata()?.is_file() {
                return Err(std::io::Error::other("not a regular file"));
            }
            f.read_exact(&mut magic)
        })
        .is_ok_and(|()| u64::from_le_bytes(magic) == MAGIC)
}
