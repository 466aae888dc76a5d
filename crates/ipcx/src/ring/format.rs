//! The segment's format: its header (the fields a peer reads with `pread`, before it maps
//! anything, and the checks they pass) and where everything lies, computed from the
//! parameters alone.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, AtomicU64};

use ipcx_ring::{Ctl, Cursor, Params, WorkCtl, WorkSlot};

use super::RingError;
use crate::name::PosixName;
use crate::sys::shm;

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
/// Header flag: an overwrite ring.
pub(crate) const FLAG_OVERWRITE: u32 = 1;

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
    /// Set by the creator as it leaves (before it gives up its place): from then on, the last
    /// participant to leave removes the name (a participant that did not create the ring
    /// removes it only then).
    /// It lives in what was padding: older builds ignore it.
    pub(crate) orphaned: AtomicU32,
}

/// The header's values as read from the segment (by `pread`, before anything is mapped, or
/// from a mapping). Every one is hostile until [`HeaderValues::layout`] checked it.
#[derive(Debug, Clone, Copy)]
pub(super) struct HeaderValues {
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

pub(super) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

pub(super) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

impl HeaderValues {
    /// Reads the fields from the first `size_of::<Header>()` bytes of `b`.
    pub(super) fn parse(b: &[u8; size_of::<Header>()]) -> HeaderValues {
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
    pub(super) fn layout(&self, name: &PosixName) -> Result<(Params, u32, Layout), RingError> {
        let n = name.to_string();
        if self.magic != MAGIC {
            return Err(RingError::NotARing {
                name: n,
                found: self.magic,
            });
        }
        if self.ready != 1 {
            return Err(RingError::NotInitialised { name: n });
        }
        if self.version != VERSION {
            return Err(RingError::VersionMismatch {
                name: n,
                found: self.version,
                expected: VERSION,
            });
        }
        let incompatible = |field, expected: u64, found: u64| RingError::Incompatible {
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
            RingError::Corrupt {
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
pub(super) fn read_header(fd: &OwnedFd, name: &PosixName) -> Result<HeaderValues, RingError> {
    let read = || {
        let mut b = [0u8; size_of::<Header>()];
        let n = shm::pread(fd, &mut b, 0).map_err(|e| RingError::from_io(name, e))?;
        if n < b.len() {
            return Err(RingError::TooSmall {
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
pub(super) fn check_size(name: &PosixName, size: u64, layout: &Layout) -> Result<(), RingError> {
    if size == layout.total as u64 {
        return Ok(());
    }
    Err(RingError::Corrupt {
        name: name.to_string(),
        what: "the file's size differs from the size its header gives",
    })
}

/// Largest work-queue slot count accepted.
pub(crate) const MAX_SLOTS: u64 = 1 << 20;

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
