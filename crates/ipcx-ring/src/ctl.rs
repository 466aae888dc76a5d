//! The control words a ring keeps in shared memory: the writer's line, the wait lines, the
//! readers' cursors.

use crate::FREE;
use crate::shim::{AtomicU32, AtomicU64};

/// A 128-byte line for the writer's cursor (two cache lines: no false sharing with the
/// adjacent-line prefetcher either).
#[repr(C, align(128))]
#[derive(Debug)]
pub struct WriterLine {
    /// Bytes published so far (the end of the last committed record).
    pub head: AtomicU64,
    /// Overwrite mode: the start of the oldest record that is still intact.
    pub oldest: AtomicU64,
    /// Sequence number of the next record.
    pub seq: AtomicU64,
}

/// A 128-byte line with a futex word and the count of processes sleeping on it.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct WaitLine {
    /// How many waiters are (about to be) asleep on `seq`.
    pub sleepers: AtomicU32,
    /// Bumped by every wake; waiters sleep while it holds the value they read.
    pub seq: AtomicU32,
}

/// The control block of a [`Writer`](crate::Writer)/[`Reader`](crate::Reader) ring.
#[repr(C)]
#[derive(Debug)]
pub struct Ctl {
    /// The writer's cursor.
    pub writer: WriterLine,
    /// Readers waiting for data.
    pub data_wait: WaitLine,
    /// Writers waiting for space.
    pub space_wait: WaitLine,
}

/// One participant's line: a reader's cursor plus the identity the process layer keeps.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct Cursor {
    /// Bytes this reader has released.
    pub tail: AtomicU64,
    /// [`FREE`], [`CLAIMED`](crate::CLAIMED) or [`ACTIVE`](crate::ACTIVE).
    pub state: AtomicU32,
    /// Process id of the owner (process layer).
    pub pid: AtomicU32,
    /// Process start time of the owner (process layer).
    pub start_time: AtomicU64,
    /// What kind of participant this is (process layer).
    pub role: AtomicU32,
    /// Process layer (work queue): what the owner holds: 0 nothing, 1 a loaned slot, 2 a
    /// received message; the slot and length are then in `tail`.
    pub holding: AtomicU32,
}

impl WaitLine {
    /// A line with no sleeper (in shared memory, zeroed bytes are such a line).
    pub(crate) fn new() -> WaitLine {
        WaitLine {
            sleepers: AtomicU32::new(0),
            seq: AtomicU32::new(0),
        }
    }
}

impl Ctl {
    /// A fresh control block (loom tests; in shared memory, zeroed bytes are a fresh block).
    pub fn new() -> Ctl {
        Ctl {
            writer: WriterLine {
                head: AtomicU64::new(0),
                oldest: AtomicU64::new(0),
                seq: AtomicU64::new(0),
            },
            data_wait: WaitLine::new(),
            space_wait: WaitLine::new(),
        }
    }
}

impl Default for Ctl {
    fn default() -> Self {
        Ctl::new()
    }
}

impl Cursor {
    /// A free cursor (loom tests; in shared memory, zeroed bytes are a free cursor).
    pub fn new() -> Cursor {
        Cursor {
            tail: AtomicU64::new(0),
            state: AtomicU32::new(FREE),
            pid: AtomicU32::new(0),
            start_time: AtomicU64::new(0),
            role: AtomicU32::new(0),
            holding: AtomicU32::new(0),
        }
    }
}

impl Default for Cursor {
    fn default() -> Self {
        Cursor::new()
    }
}
