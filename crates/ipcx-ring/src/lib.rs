//! Lock-free ring algorithms over a shared-memory region: the core of ipcx's `shm:/NAME`
//! transport.
//!
//! Everything here works on memory that other processes map too, so:
//! * control words are atomics in `#[repr(C)]` structs ([`Ctl`], [`Cursor`]) and every position
//!   is a 64-bit **byte counter** (never a pointer): the offset in the data area is
//!   `position & (capacity - 1)`;
//! * every value read from shared memory (positions, record lengths and kinds, sequence numbers)
//!   is checked before it is used to index the data area; a peer that scribbles garbage makes an
//!   operation fail with [`RingError::Corrupt`], never read or write out of bounds.
//!
//! # Algorithms
//! * [`Writer`] / [`Reader`]: one writer, any number of readers, each reader with its own
//!   cursor ([`Cursor`]). Messages are variable-size *records* in a byte ring: a 16-byte header
//!   (`len: u32`, `kind: u32`, then a 64-bit *tag*) then the payload, padded to 16 bytes. A
//!   record never straddles the end of the ring: the writer fills the tail with a padding
//!   record instead. 1:1 (SPSC) is this algorithm with one reader.
//!   - **Lossless** (default): the writer never writes past `min(tail of active readers) +
//!     capacity`, so a slow reader makes the writer wait ([`RingError::Full`]). The tag is the
//!     record's *commit stamp*, `position | 1`, stored last with release ordering: a reader
//!     polls the stamp at its own tail, so one cache line brings it both the news and the
//!     start of the message (the writer's `head`, a separate line, is read only when the stamp
//!     does not match). Before it stamps a record, the writer clears the stamp word of the
//!     record that will follow (when that space is free), so stale bytes from an earlier lap
//!     can never pass for a stamp.
//!   - **Hot window** (lossless): a ring that traffic keeps empty, such as the request or
//!     reply ring of a request/reply exchange, does not sweep its whole capacity. Once a small
//!     record would end past the first [`Writer::hot_window`] bytes of the lap, the writer
//!     looks at the readers; when every one of them has read everything, it pads to the end
//!     of the lap and starts the record at the next lap's first byte. Such traffic then cycles
//!     through a few KiB that stay in both processes' L1 caches instead of fetching fresh
//!     lines at every message; a stream, whose readers are behind, keeps the whole ring. The
//!     padding is an ordinary padding record: readers need nothing new.
//!   - **Overwrite** (opt-in): the writer ignores readers and moves `oldest` (the first intact
//!     record) forward before it overwrites anything; a reader copies a record, then checks
//!     (seqlock style) that `oldest` did not pass it. The tag is the record's sequence number:
//!     readers learn from it how many messages they missed. Readers follow the published
//!     `head` here (the stamp scheme needs the writer to respect readers).
//! * [`WorkQueue`]: N producers, M consumers, each message to exactly one consumer: two bounded
//!   Vyukov MPMC queues of slot indices (a free list and a ready list) over a pool of fixed-size
//!   slots.
//!
//! # Loom
//! Built with `RUSTFLAGS="--cfg loom"`, the atomics come from `loom` and the data area is a
//! slice of loom atomics, so `tests/loom.rs` checks the memory orderings of every algorithm.
#![no_std]
#![deny(missing_docs)]

#[cfg(loom)]
extern crate std;

mod ctl;
mod data;
mod reader;
mod record;
mod shim;
#[cfg(all(test, not(loom)))]
mod tests;
mod work;
mod writer;

pub use ctl::{Ctl, Cursor, WaitLine, WriterLine};
pub use data::Data;
pub use reader::{Peeked, Reader};
pub use work::{WorkCtl, WorkQueue, WorkSlot};
pub use writer::{Reservation, Writer};

/// Bytes of a record header.
pub const HEADER: u64 = 16;
/// The default [`Writer::hot_window`]: two pages, which with the other direction's window
/// still leave most of a 32 KiB L1 data cache to the program.
pub const HOT_WINDOW: u64 = 8 << 10;

/// Cursor state: unused.
pub const FREE: u32 = 0;
/// Cursor state: claimed by a participant that is joining (not yet counted by the writer).
pub const CLAIMED: u32 = 1;
/// Cursor state: an active reader; the writer honours its tail.
pub const ACTIVE: u32 = 2;
/// Cursor state: a reader between announcing itself and publishing its tail; the writer
/// waits (treats the ring as full) until it is [`ACTIVE`].
pub const JOINING: u32 = 3;

/// The size a record of `len` payload bytes takes in the ring.
pub const fn record_size(len: u64) -> u64 {
    (HEADER + len + 15) & !15
}

/// Why a ring operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// No room now (lossless writer behind a slow reader; work queue without a free slot).
    Full,
    /// The message is longer than the ring's maximum.
    TooLarge {
        /// The length asked for.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A control word or record header in shared memory holds an impossible value.
    Corrupt(&'static str),
}

/// Fixed parameters of a ring, agreed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Bytes in the data area: a power of two, at least 64.
    pub capacity: u64,
    /// The largest payload; `record_size(max_msg) <= capacity / 2`.
    pub max_msg: u32,
    /// Overwrite the oldest records instead of waiting for slow readers.
    pub overwrite: bool,
}

impl Params {
    /// Whether the parameters are usable (see the field docs).
    pub fn is_valid(&self) -> bool {
        self.capacity >= 64
            && self.capacity.is_power_of_two()
            && self.capacity <= 1 << 40
            && record_size(u64::from(self.max_msg)) <= self.capacity / 2
    }
    #[inline]
    pub(crate) fn mask(&self) -> u64 {
        self.capacity - 1
    }
}

fn corrupt<T>(what: &'static str) -> Result<T, RingError> {
    Err(RingError::Corrupt(what))
}
