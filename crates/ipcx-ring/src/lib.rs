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

mod shim;
mod work;

pub use shim::Data;
pub use work::{WorkCtl, WorkQueue, WorkSlot};

use shim::{AtomicU32, AtomicU64, Cells, Ordering, fence};

/// Bytes of a record header.
pub const HEADER: u64 = 16;
/// The default [`Writer::hot_window`]: two pages, which with the other direction's window
/// still leave most of a 32 KiB L1 data cache to the program.
pub const HOT_WINDOW: u64 = 8 << 10;
/// Record kind: a message.
const KIND_MSG: u32 = 1;
/// Record kind: padding up to the end of the ring.
const KIND_PAD: u32 = 2;

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
    fn mask(&self) -> u64 {
        self.capacity - 1
    }
}

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

/// The control block of a [`Writer`]/[`Reader`] ring.
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
    /// [`FREE`], [`CLAIMED`] or [`ACTIVE`].
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

impl Ctl {
    /// A fresh control block (loom tests; in shared memory, zeroed bytes are a fresh block).
    pub fn new() -> Ctl {
        let line = || WaitLine {
            sleepers: AtomicU32::new(0),
            seq: AtomicU32::new(0),
        };
        Ctl {
            writer: WriterLine {
                head: AtomicU64::new(0),
                oldest: AtomicU64::new(0),
                seq: AtomicU64::new(0),
            },
            data_wait: line(),
            space_wait: line(),
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

/// The cells of `data`, once `p` has been checked and matches it (else [`RingError::Corrupt`]).
fn cells_of(data: &Data, p: &Params) -> Result<Cells, RingError> {
    match data.cells() {
        Some(c) if p.is_valid() && data.len() as u64 == p.capacity => Ok(c),
        _ => corrupt("ring parameters"),
    }
}

fn corrupt<T>(what: &'static str) -> Result<T, RingError> {
    Err(RingError::Corrupt(what))
}

/// A record header as read from shared memory (not yet validated).
struct RawHeader {
    len: u32,
    kind: u32,
    /// Lossless rings: the commit stamp; overwrite rings: the sequence number.
    seq: u64,
}

/// The commit stamp of a lossless record at `pos` (never 0: zeroed memory holds no stamp).
#[inline]
const fn stamp(pos: u64) -> u64 {
    pos | 1
}

#[inline]
fn read_header(data: &Data, off: u64) -> RawHeader {
    let w0 = data.read_u64(off as usize);
    let seq = data.read_u64(off as usize + 8);
    RawHeader {
        len: w0 as u32,
        kind: (w0 >> 32) as u32,
        seq,
    }
}

fn write_header(data: &Data, off: u64, len: u32, kind: u32, seq: u64) {
    data.write_u64(off as usize, u64::from(len) | (u64::from(kind) << 32));
    data.write_u64(off as usize + 8, seq);
}

/// Validates the header of the record at `pos` and returns its size, or an error naming what
/// is wrong. `limit` is the end of what may be read (`head`).
#[inline]
fn checked_size(p: &Params, h: &RawHeader, pos: u64, limit: u64) -> Result<u64, RingError> {
    let off = pos & p.mask();
    let size = match h.kind {
        KIND_MSG if h.len <= p.max_msg => record_size(u64::from(h.len)),
        KIND_MSG => return corrupt("record length above the maximum"),
        KIND_PAD => {
            let size = u64::from(h.len) + HEADER;
            if size != p.capacity - off {
                return corrupt("padding record does not end at the end of the ring");
            }
            size
        }
        _ => return corrupt("unknown record kind"),
    };
    if off + size > p.capacity {
        return corrupt("record crosses the end of the ring");
    }
    if size > limit.wrapping_sub(pos) {
        return corrupt("record extends past the published head");
    }
    Ok(size)
}

/// Space reserved by [`Writer::reserve`] for one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// Offset of the payload in the data area.
    pub offset: usize,
    /// Bytes of payload that fit (the length asked for).
    pub len: usize,
    pad: u64,
}

/// The writer of a ring (one at a time; the process layer makes sure of that).
#[derive(Debug)]
pub struct Writer<'a> {
    ctl: &'a Ctl,
    readers: &'a [Cursor],
    data: Data,
    cells: Cells,
    p: Params,
    head: u64,
    /// Lossless: the writer may fill up to here without looking at the readers again.
    limit: u64,
    /// Lossless: a record that ends at or below this fits without a look at the readers and
    /// without padding (`min(limit, end of the head's lap)`); overwrite: 0 (no fast path).
    fast_end: u64,
    oldest: u64,
    seq: u64,
    /// Lossless: the hot window (0: off).
    hot: u64,
    /// Lossless: the position from which a record makes the writer consider a rewind (see
    /// `set_fast_end`; a position in an earlier lap means "the window's end of this lap").
    next_look: u64,
}

impl<'a> Writer<'a> {
    /// Takes over the writer's side of a ring, resuming from the published head (a previous
    /// writer's unpublished reservation is simply forgotten).
    pub fn attach(
        ctl: &'a Ctl,
        readers: &'a [Cursor],
        data: Data,
        p: Params,
    ) -> Result<Writer<'a>, RingError> {
        let cells = cells_of(&data, &p)?;
        let mut head = ctl.writer.head.load(Ordering::Acquire);
        let oldest = ctl.writer.oldest.load(Ordering::Acquire);
        let mut seq = ctl.writer.seq.load(Ordering::Acquire);
        if !head.is_multiple_of(16)
            || (p.overwrite && (oldest > head || head - oldest > p.capacity))
        {
            return corrupt("writer cursor");
        }
        if !p.overwrite {
            // A writer that died between stamping a record and publishing the head past it
            // did commit it (readers may have consumed it already): move past it. The writer
            // clears the next record's stamp first, so at most a padding record and a message
            // are found.
            let published = head;
            for _ in 0..2 {
                if cells.stamp(head) != stamp(head) {
                    break;
                }
                let h = read_header(&data, head & p.mask());
                let size = checked_size(&p, &h, head, published + p.capacity)?;
                if h.kind == KIND_MSG {
                    seq += 1;
                }
                head += size;
            }
            if head != published {
                ctl.writer.seq.store(seq, Ordering::Relaxed);
                ctl.writer.head.store(head, Ordering::Release);
            }
        }
        Ok(Writer {
            ctl,
            readers,
            data,
            cells,
            p,
            head,
            limit: head,
            fast_end: 0,
            oldest,
            seq,
            hot: if p.overwrite || p.capacity < 4 * HOT_WINDOW {
                0
            } else {
                HOT_WINDOW
            },
            next_look: 0,
        })
    }

    /// The hot window of a lossless ring: a record of at most an eighth of it that would end
    /// past the window's end in the current lap starts at the next lap's first byte instead,
    /// when every active reader has read everything (see the crate docs). 0 when off:
    /// overwrite rings, and rings smaller than four windows. [`HOT_WINDOW`] by default.
    pub fn hot_window(&self) -> u64 {
        self.hot
    }

    /// Sets the hot window (see [`Writer::hot_window`]): 0 turns it off; other values are
    /// rounded down to a multiple of 16 and capped at half the capacity. Overwrite rings
    /// ignore it.
    pub fn set_hot_window(&mut self, bytes: u64) {
        self.hot = if self.p.overwrite {
            0
        } else {
            bytes.min(self.p.capacity / 2) & !15
        };
        self.fast_end = 0;
    }

    /// The parameters.
    pub fn params(&self) -> Params {
        self.p
    }

    /// The data area.
    pub fn data(&self) -> &Data {
        &self.data
    }

    /// The control block.
    pub fn ctl(&self) -> &'a Ctl {
        self.ctl
    }

    /// The smallest tail of the active readers (`None`: no active reader), checked against
    /// the head.
    /// A reader that is joining makes this `Err(Full)` until it has published its tail.
    pub fn min_tail(&self) -> Result<Option<u64>, RingError> {
        // Pairs with the fence in `Reader::join`: either the joiner sees our head, or we see
        // its JOINING/ACTIVE state.
        fence(Ordering::SeqCst);
        let mut min: Option<u64> = None;
        for c in self.readers {
            match c.state.load(Ordering::Acquire) {
                ACTIVE => {}
                JOINING => return Err(RingError::Full),
                _ => continue,
            }
            let t = c.tail.load(Ordering::Acquire);
            if t > self.head || self.head - t > self.p.capacity {
                // A reader that overwrite mode lapped is fine; in lossless mode it is not.
                if self.p.overwrite && t <= self.head {
                    continue;
                }
                return corrupt("reader cursor");
            }
            min = Some(min.map_or(t, |m: u64| m.min(t)));
        }
        Ok(min)
    }

    /// How many readers are active now.
    pub fn active_readers(&self) -> usize {
        self.readers
            .iter()
            .filter(|c| c.state.load(Ordering::Acquire) == ACTIVE)
            .count()
    }

    /// Reserves room for a record of `len` bytes: [`RingError::Full`] if a lossless ring has
    /// no room until a reader moves on.
    #[inline]
    pub fn reserve(&mut self, len: usize) -> Result<Reservation, RingError> {
        // Fast path: a lossless ring with room below `fast_end` (no padding, no look at the
        // readers). `len <= max_msg` first, so the record size cannot overflow.
        if len <= self.p.max_msg as usize {
            let end = self.head + record_size(len as u64);
            if end <= self.fast_end {
                return Ok(Reservation {
                    offset: ((self.head & self.p.mask()) + HEADER) as usize,
                    len,
                    pad: 0,
                });
            }
        }
        self.reserve_slow(len)
    }

    #[cold]
    #[inline(never)]
    fn reserve_slow(&mut self, len: usize) -> Result<Reservation, RingError> {
        if len > self.p.max_msg as usize {
            return Err(RingError::TooLarge {
                len,
                max: self.p.max_msg as usize,
            });
        }
        let rec = record_size(len as u64);
        let off = self.head & self.p.mask();
        let pad = if off + rec > self.p.capacity {
            self.p.capacity - off
        } else if self.hot != 0 && off + rec > self.hot {
            self.rewind_pad(off, rec)?
        } else {
            0
        };
        let need = pad + rec;
        if self.p.overwrite {
            self.advance_oldest(self.head + need)?;
        } else if self.head + need > self.limit {
            let min = self.min_tail()?.unwrap_or(self.head);
            self.limit = min + self.p.capacity;
            self.set_fast_end();
            if self.head + need > self.limit {
                return Err(RingError::Full);
            }
        }
        if !self.p.overwrite {
            self.set_fast_end();
        }
        Ok(Reservation {
            offset: (((self.head + pad) & self.p.mask()) + HEADER) as usize,
            len,
            pad,
        })
    }

    /// The padding that starts a record of `rec` bytes, due at offset `off`, at the next lap
    /// instead (0: no rewind), and when to consider it again. A rewind needs a small record
    /// and every active reader at the head: a reader that is behind (a stream) would have
    /// the writer confined to the window until it catches up.
    fn rewind_pad(&mut self, off: u64, rec: u64) -> Result<u64, RingError> {
        let lap_end = (self.head & !self.p.mask()) + self.p.capacity;
        if self.head < self.next_look {
            return Ok(0);
        }
        if rec > self.hot / 8 {
            // Not for records this large: no look again in this lap.
            self.next_look = lap_end;
            return Ok(0);
        }
        if !self.readers_behind() {
            match self.min_tail() {
                Ok(min) => {
                    let min = min.unwrap_or(self.head);
                    self.limit = min + self.p.capacity;
                    if min == self.head {
                        self.next_look = lap_end;
                        return Ok(self.p.capacity - off);
                    }
                }
                Err(RingError::Full) => {} // a reader joining
                Err(e) => return Err(e),
            }
        }
        // Readers behind: look again a window later.
        self.next_look = self.head + self.hot;
        Ok(0)
    }

    /// Whether an active reader is at an earlier record than the head, at a first look: no
    /// fence, unlike [`Writer::min_tail`]. Waiting for the fence, which waits for the last
    /// commit's stores to reach the readers, would give a reader that streams right behind
    /// the writer the time to catch up, and have the stream confined to the hot window.
    fn readers_behind(&self) -> bool {
        self.readers.iter().any(|c| {
            c.state.load(Ordering::Relaxed) == ACTIVE && c.tail.load(Ordering::Relaxed) != self.head
        })
    }

    /// Lossless: `fast_end = min(limit, end of the head's lap, the next look at a rewind)`
    /// (`head & !mask` is the start of the lap `head` is in).
    fn set_fast_end(&mut self) {
        let lap_start = self.head & !self.p.mask();
        let lap_end = lap_start + self.p.capacity;
        self.fast_end = self.limit.min(lap_end);
        if self.hot != 0 {
            self.fast_end = self
                .fast_end
                .min((lap_start + self.hot).max(self.next_look));
        }
    }

    /// Overwrite mode: moves `oldest` past every record that a write up to `end` destroys,
    /// and publishes it (before the bytes are overwritten).
    fn advance_oldest(&mut self, end: u64) -> Result<(), RingError> {
        let target = end.saturating_sub(self.p.capacity);
        if self.oldest >= target {
            return Ok(());
        }
        while self.oldest < target {
            if self.oldest == self.head {
                self.oldest = target;
                break;
            }
            let h = read_header(&self.data, self.oldest & self.p.mask());
            let size = checked_size(&self.p, &h, self.oldest, self.head)?;
            self.oldest += size;
        }
        self.ctl.writer.oldest.store(self.oldest, Ordering::Relaxed);
        // Readers that see any byte written after this fence also see the new `oldest`.
        fence(Ordering::Release);
        Ok(())
    }

    /// Copies `len` bytes of payload into a reservation.
    #[inline]
    pub fn write(&self, r: &Reservation, at: usize, bytes: &[u8]) {
        let end = at.saturating_add(bytes.len());
        assert!(end <= r.len, "write past the reservation");
        self.data.copy_in(r.offset + at, bytes, self.p.overwrite);
    }

    /// Publishes a reserved record with `len <= r.len` payload bytes.
    #[inline]
    pub fn commit(&mut self, r: Reservation, len: usize) {
        if r.pad != 0 || self.p.overwrite {
            return self.commit_slow(r, len);
        }
        // Fast path (lossless, no padding): as below, with the header words reached through
        // `cells` (positions masked into the area: no bounds check needed).
        let len = len.min(r.len);
        let start = self.head;
        let end = start + record_size(len as u64);
        if end + HEADER <= self.limit {
            self.cells.set_stamp(end, 0);
        }
        self.cells
            .set_header(start, len as u64 | (u64::from(KIND_MSG) << 32));
        self.cells.set_stamp(start, stamp(start));
        self.seq += 1;
        self.head = end;
        self.ctl.writer.seq.store(self.seq, Ordering::Relaxed);
        self.ctl.writer.head.store(end, Ordering::Release);
    }

    #[cold]
    #[inline(never)]
    fn commit_slow(&mut self, r: Reservation, len: usize) {
        let len = len.min(r.len);
        let start = self.head + r.pad;
        let end = start + record_size(len as u64);
        let mask = self.p.mask();
        if self.p.overwrite {
            if r.pad > 0 {
                write_header(
                    &self.data,
                    self.head & mask,
                    (r.pad - HEADER) as u32,
                    KIND_PAD,
                    0,
                );
            }
            write_header(&self.data, start & mask, len as u32, KIND_MSG, self.seq);
        } else {
            // Clear the stamp word of the record that will follow, when that space is free:
            // it holds stale bytes from an earlier lap, which might read as `stamp(end)`.
            // When it is not free, `end - capacity` is the (slowest) reader's tail, a record
            // boundary: the word is the stamp of that record, `stamp(end - capacity)`.
            if end + HEADER <= self.limit {
                self.cells.set_stamp(end, 0);
            }
            if r.pad > 0 {
                self.cells.set_header(
                    self.head,
                    u64::from((r.pad - HEADER) as u32) | (u64::from(KIND_PAD) << 32),
                );
                self.cells.set_stamp(self.head, stamp(self.head));
            }
            self.cells
                .set_header(start, len as u64 | (u64::from(KIND_MSG) << 32));
            self.cells.set_stamp(start, stamp(start));
        }
        self.seq += 1;
        self.head = end;
        self.ctl.writer.seq.store(self.seq, Ordering::Relaxed);
        self.ctl.writer.head.store(self.head, Ordering::Release);
    }

    /// Reserve, copy, commit.
    #[inline]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), RingError> {
        let r = self.reserve(msg.len())?;
        self.write(&r, 0, msg);
        self.commit(r, msg.len());
        Ok(())
    }
}

/// A record found by [`Reader::peek`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peeked {
    /// Offset of the payload in the data area.
    pub offset: usize,
    /// Payload length.
    pub len: usize,
    next: u64,
}

/// A reader with its own cursor.
#[derive(Debug)]
pub struct Reader<'a> {
    ctl: &'a Ctl,
    cursor: &'a Cursor,
    data: Data,
    cells: Cells,
    p: Params,
    tail: u64,
    next_seq: Option<u64>,
    /// Where the reader joined, and the writer's sequence number read just before.
    join: (u64, u64),
    /// The writer overwrote records this reader had not read yet.
    lapped: bool,
}

impl<'a> Reader<'a> {
    /// Activates `cursor` (which the caller has claimed: state [`CLAIMED`]) at the current head:
    /// the reader sees every message published after this call, and the writer waits for it.
    pub fn join(
        ctl: &'a Ctl,
        cursor: &'a Cursor,
        data: Data,
        p: Params,
    ) -> Result<Reader<'a>, RingError> {
        let cells = cells_of(&data, &p)?;
        // The writer never looks at a reader's tail until it sees it ACTIVE, and holds back
        // while it sees it JOINING. With the SeqCst fences (here and in `Writer::min_tail`),
        // either the writer sees JOINING/ACTIVE, or its last look at the readers came before
        // our fence and we read a head at least as far as the head it had then: the writer's
        // limit from that look (that head + capacity) never overwrites what we will read.
        cursor.state.store(JOINING, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let seq_hint = ctl.writer.seq.load(Ordering::Acquire);
        let tail = ctl.writer.head.load(Ordering::Acquire);
        if !tail.is_multiple_of(16) {
            cursor.state.store(CLAIMED, Ordering::Release);
            return corrupt("writer cursor");
        }
        cursor.tail.store(tail, Ordering::Relaxed);
        cursor.state.store(ACTIVE, Ordering::Release);
        Ok(Reader {
            ctl,
            cursor,
            data,
            cells,
            p,
            tail,
            next_seq: None,
            join: (tail, seq_hint),
            lapped: false,
        })
    }

    /// Takes over an [`ACTIVE`] cursor at the tail stored in it (checked against the head):
    /// a lossless reader resuming where the cursor's previous owner stopped.
    pub fn resume(
        ctl: &'a Ctl,
        cursor: &'a Cursor,
        data: Data,
        p: Params,
    ) -> Result<Reader<'a>, RingError> {
        let cells = cells_of(&data, &p)?;
        let head = ctl.writer.head.load(Ordering::Acquire);
        let tail = cursor.tail.load(Ordering::Acquire);
        // A lossless reader may be one record ahead of the published head (see `peek`).
        let ahead_ok = !p.overwrite && tail > head && tail - head <= p.capacity / 2;
        if !tail.is_multiple_of(16)
            || (tail > head && !ahead_ok)
            || head.abs_diff(tail) > p.capacity
        {
            return corrupt("reader cursor");
        }
        Ok(Reader {
            ctl,
            cursor,
            data,
            cells,
            p,
            tail,
            next_seq: None,
            join: (tail, 0),
            lapped: false,
        })
    }

    /// The data area.
    pub fn data(&self) -> &Data {
        &self.data
    }

    /// The parameters.
    pub fn params(&self) -> Params {
        self.p
    }

    /// The reader's cursor.
    pub fn cursor(&self) -> &Cursor {
        self.cursor
    }

    /// The control block.
    pub fn ctl(&self) -> &'a Ctl {
        self.ctl
    }

    /// Whether a message may be waiting (a cheap check for waiting loops: on a lossless ring
    /// it reads the commit stamp at the reader's tail, and the writer's head only when the
    /// stamp does not match).
    #[inline]
    pub fn has_data(&self) -> bool {
        if self.p.overwrite {
            return self.ctl.writer.head.load(Ordering::Acquire) != self.tail;
        }
        self.stamped() || self.ctl.writer.head.load(Ordering::Acquire) > self.tail
    }

    /// The cheapest look for a busy-polling waiter: [`Reader::stamped`] on lossless rings
    /// (one word, no look at the writer's line), the head on overwrite rings. It may miss a
    /// message [`Reader::has_data`] sees only if the ring is corrupt.
    #[inline]
    pub fn poll_ready(&self) -> bool {
        if self.p.overwrite {
            self.ctl.writer.head.load(Ordering::Acquire) != self.tail
        } else {
            self.stamped()
        }
    }

    /// Hints the processor to fetch the cache line after the one the tail's record starts in.
    /// A reader polling the stamp calls it with each poll: a small record's second line
    /// (a 64-byte message and its header span two) then comes in while it polls the first,
    /// instead of after it. Only a hint: nothing is read.
    #[inline]
    pub fn prefetch_next(&self) {
        self.cells.prefetch((self.tail | 63) + 1);
    }

    /// Lossless rings: whether the record at the tail is committed (its stamp is there).
    /// Reads one word, in the cache line the record starts in: the cheapest poll there is.
    #[inline]
    pub fn stamped(&self) -> bool {
        !self.p.overwrite && self.cells.stamp(self.tail) == stamp(self.tail)
    }

    /// Lossless rings: the next record, without consuming it (its bytes stay valid and
    /// unchanged until [`Reader::release`]). `Ok(None)` when no committed record is at the
    /// tail: this looks at the record's stamp only, never at the writer's line (which a
    /// polling reader would otherwise pull away from the writer at every look). A waiter
    /// calls [`Reader::check`] now and then to tell an empty ring from a broken one.
    #[inline]
    pub fn peek(&mut self) -> Result<Option<Peeked>, RingError> {
        // Copies in registers: the acquire load below would make the compiler read the
        // fields again.
        let (tail, cells, p) = (self.tail, self.cells, self.p);
        if p.overwrite || cells.stamp(tail) != stamp(tail) {
            if p.overwrite {
                return corrupt("peek on an overwrite ring");
            }
            return Ok(None);
        }
        // Fast path: a message record with a valid length that ends inside the ring.
        // `w0 - (KIND_MSG << 32)` is the length when the kind is KIND_MSG, and above
        // `max_msg` for any other kind.
        let len = cells.header(tail).wrapping_sub(u64::from(KIND_MSG) << 32);
        if len <= u64::from(p.max_msg) {
            let off = tail & p.mask();
            let size = record_size(len);
            if off + size <= p.capacity {
                return Ok(Some(Peeked {
                    offset: (off + HEADER) as usize,
                    len: len as usize,
                    next: tail + size,
                }));
            }
        }
        self.peek_slow()
    }

    /// [`Reader::peek`] for the records its fast path leaves: padding, and anything invalid.
    #[cold]
    #[inline(never)]
    fn peek_slow(&mut self) -> Result<Option<Peeked>, RingError> {
        if self.p.overwrite {
            return corrupt("peek on an overwrite ring");
        }
        loop {
            let off = self.tail & self.p.mask();
            if !self.stamped() {
                return Ok(None);
            }
            let h = read_header(&self.data, off);
            // The stamp bounds the record by the ring, not by the head (not read here).
            let size = checked_size(&self.p, &h, self.tail, self.tail + self.p.capacity)?;
            if h.kind == KIND_PAD {
                self.tail += size;
                self.cursor.tail.store(self.tail, Ordering::Release);
                continue;
            }
            return Ok(Some(Peeked {
                offset: (off + HEADER) as usize,
                len: h.len as usize,
                next: self.tail + size,
            }));
        }
    }

    /// Lossless rings, after [`Reader::peek`] found nothing: whether the ring is consistent.
    /// The writer stamps a record before it publishes the head past it, so a head past the
    /// tail with no stamp at the tail is [`RingError::Corrupt`].
    pub fn check(&self) -> Result<(), RingError> {
        if self.p.overwrite {
            return Ok(());
        }
        let head = self.ctl.writer.head.load(Ordering::Acquire);
        if !head.is_multiple_of(16) || head.abs_diff(self.tail) > self.p.capacity {
            return corrupt("writer cursor");
        }
        // The head may even be behind: the writer stamps a record, then publishes it.
        if head > self.tail && !self.stamped() {
            return corrupt("record below the head without its commit stamp");
        }
        Ok(())
    }

    /// Consumes the record returned by the last [`Reader::peek`]: the writer may reuse it.
    #[inline]
    pub fn release(&mut self, r: Peeked) {
        self.tail = r.next;
        self.cursor.tail.store(self.tail, Ordering::Release);
    }

    /// Counts the messages skipped before the record `seq` found at `pos`. Before the first
    /// record, the reader compares with where it joined (exact unless it was lapped before its
    /// first receive, where the writer's sequence number read at join time is the estimate).
    fn note_seq(&mut self, seq: u64, pos: u64) -> u64 {
        let missed = match self.next_seq {
            Some(n) => seq.saturating_sub(n),
            None if !self.lapped || pos == self.join.0 => 0,
            None => seq.saturating_sub(self.join.1),
        };
        self.next_seq = Some(seq.wrapping_add(1));
        missed
    }

    /// Copies the next message into `buf` (lossless or overwrite rings). Returns the length
    /// and how many messages were missed just before it (overwrite mode), or `None`.
    #[inline]
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<Option<(usize, u64)>, RingError> {
        if !self.p.overwrite {
            let Some(r) = self.peek()? else {
                self.check()?;
                return Ok(None);
            };
            let n = r.len.min(buf.len());
            self.data.copy_out(r.offset, &mut buf[..n], false);
            self.release(r);
            return Ok(Some((r.len, 0)));
        }
        self.recv_overwrite(buf)
    }

    fn recv_overwrite(&mut self, buf: &mut [u8]) -> Result<Option<(usize, u64)>, RingError> {
        loop {
            let head = self.ctl.writer.head.load(Ordering::Acquire);
            // Read after head: `oldest` may already be past it (a write is under way).
            let oldest = self.ctl.writer.oldest.load(Ordering::Acquire);
            if !head.is_multiple_of(16)
                || !oldest.is_multiple_of(16)
                || oldest > head + self.p.capacity
            {
                return corrupt("writer cursor");
            }
            if self.tail < oldest {
                self.tail = oldest;
                self.lapped = true;
            }
            if self.tail >= head {
                if self.tail - head > self.p.capacity {
                    return corrupt("reader cursor past the writer");
                }
                return Ok(None);
            }
            if head - self.tail > self.p.capacity {
                return corrupt("writer cursor");
            }
            let off = self.tail & self.p.mask();
            let h = read_header(&self.data, off);
            let checked = checked_size(&self.p, &h, self.tail, head);
            let mut len = 0;
            if let (Ok(_), KIND_MSG) = (checked, h.kind) {
                len = h.len as usize;
                let n = len.min(buf.len());
                self.data
                    .copy_out(off as usize + HEADER as usize, &mut buf[..n], true);
            }
            fence(Ordering::Acquire);
            if self.ctl.writer.oldest.load(Ordering::Relaxed) > self.tail {
                continue; // overwritten while we read it: resynchronise
            }
            let size = checked?;
            let pos = self.tail;
            self.tail += size;
            self.cursor.tail.store(self.tail, Ordering::Release);
            if h.kind == KIND_MSG {
                let missed = self.note_seq(h.seq, pos);
                return Ok(Some((len, missed)));
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    const P: Params = Params {
        capacity: 64,
        max_msg: 16,
        overwrite: false,
    };

    /// A ring on the heap with one claimed reader cursor.
    struct Rig {
        /// The data area's storage (16-aligned); only reached through `data`.
        _words: Vec<u128>,
        data: Data,
        ctl: Ctl,
        cursors: [Cursor; 1],
        p: Params,
    }

    impl Rig {
        fn new(p: Params) -> Rig {
            let mut words = std::vec![0u128; p.capacity as usize / 16];
            #[allow(unsafe_code)]
            // SAFETY: the buffer is `capacity` bytes, 16-aligned (u128), on the heap (it does
            // not move with the Rig), lives as long as the Rig, and no reference to it is used
            // while the ring accesses it.
            let data = unsafe { Data::new(words.as_mut_ptr().cast::<u8>(), words.len() * 16) };
            let cursors = [Cursor::new()];
            cursors[0].state.store(CLAIMED, Ordering::Relaxed);
            Rig {
                _words: words,
                data,
                ctl: Ctl::new(),
                cursors,
                p,
            }
        }
        fn reader(&self) -> Reader<'_> {
            Reader::join(&self.ctl, &self.cursors[0], self.data, self.p).unwrap()
        }
        fn writer(&self) -> Writer<'_> {
            Writer::attach(&self.ctl, &self.cursors, self.data, self.p).unwrap()
        }
    }

    fn word(v: u64) -> [u8; 8] {
        v.to_le_bytes()
    }

    /// A payload from an earlier lap that holds the very stamp a later record will have, at
    /// the place that record's stamp goes, is never taken for a committed record.
    #[test]
    fn stale_payload_never_reads_as_a_stamp() {
        let rig = Rig::new(P);
        let mut r = rig.reader();
        let mut w = rig.writer();
        let mut out = [0u8; 16];
        // Record at 0: payload at offsets 16..32 looks like a message header (len 0) with the
        // stamp of a record at position 80 (offset 16).
        let mut forged = Vec::new();
        forged.extend_from_slice(&word(u64::from(KIND_MSG) << 32));
        forged.extend_from_slice(&word(stamp(80)));
        w.try_send(&forged).unwrap();
        assert_eq!(r.try_recv(&mut out).unwrap(), Some((16, 0)));
        w.try_send(&[7; 16]).unwrap(); // at 32
        assert_eq!(r.try_recv(&mut out).unwrap(), Some((16, 0)));
        w.try_send(&[]).unwrap(); // at 64, ends at 80
        assert_eq!(r.try_recv(&mut out).unwrap(), Some((0, 0)));
        assert!(!r.has_data());
        assert_eq!(r.try_recv(&mut out).unwrap(), None);
        w.try_send(&[9; 3]).unwrap(); // at 80
        assert_eq!(r.try_recv(&mut out).unwrap(), Some((3, 0)));
        assert_eq!(&out[..3], &[9; 3]);
    }

    /// A writer that died after stamping a record but before publishing the head: the next
    /// writer takes the record as committed, and the reader (who may have read it) goes on.
    #[test]
    fn a_new_writer_adopts_a_stamped_but_unpublished_record() {
        let rig = Rig::new(P);
        let mut r = rig.reader();
        let mut w = rig.writer();
        w.try_send(b"one").unwrap();
        // Undo the head's publication, as if the writer had died just before it.
        rig.ctl.writer.head.store(0, Ordering::Release);
        rig.ctl.writer.seq.store(0, Ordering::Release);
        let mut out = [0u8; 16];
        assert_eq!(r.try_recv(&mut out).unwrap(), Some((3, 0)));
        assert_eq!(r.try_recv(&mut out).unwrap(), None);
        let mut w = rig.writer();
        assert_eq!(rig.ctl.writer.head.load(Ordering::Acquire), 32);
        w.try_send(b"two").unwrap();
        assert_eq!(r.try_recv(&mut out).unwrap(), Some((3, 0)));
        assert_eq!(&out[..3], b"two");
    }

    /// Messages of every size, many laps, a reader lagging by a varying amount: every
    /// message arrives whole and in order (through the fast paths, padding and full rings).
    #[test]
    fn varied_sizes_over_many_laps() {
        const Q: Params = Params {
            capacity: 256,
            max_msg: 100,
            overwrite: false,
        };
        let rig = Rig::new(Q);
        let mut r = rig.reader();
        let mut w = rig.writer();
        let msg = |i: u32| -> Vec<u8> {
            let len = (i * 37 % 101) as usize;
            (0..len).map(|j| (i as usize + j) as u8).collect()
        };
        let (mut sent, mut got) = (0u32, 0u32);
        let mut out = [0u8; 100];
        while got < 2000 {
            // Send a few (until full), then receive a few.
            for _ in 0..(sent % 5) + 1 {
                match w.try_send(&msg(sent)) {
                    Ok(()) => sent += 1,
                    Err(RingError::Full) => break,
                    Err(e) => panic!("{e:?}"),
                }
            }
            for _ in 0..(got % 4) + 1 {
                let Some((n, 0)) = r.try_recv(&mut out).unwrap() else {
                    break;
                };
                assert_eq!(&out[..n], &msg(got)[..]);
                got += 1;
            }
        }
        assert!(w.head > 20 * Q.capacity);
    }

    /// A stamped record whose header is garbage is corrupt, whichever check it fails.
    #[test]
    fn a_stamped_record_with_a_bad_header_is_corrupt() {
        for w0 in [
            u64::from(KIND_MSG) << 32 | 17, // above max_msg
            3 << 32,                        // unknown kind
            u64::from(KIND_PAD) << 32,      // padding that does not reach the end
            0,
        ] {
            let rig = Rig::new(P);
            let mut r = rig.reader();
            rig.data.write_u64(0, w0);
            rig.data.write_u64(8, stamp(0));
            let mut out = [0u8; 16];
            assert!(
                matches!(r.try_recv(&mut out), Err(RingError::Corrupt(_))),
                "{w0:#x}"
            );
        }
    }

    /// A record below the published head without its stamp is an error, not a hang.
    #[test]
    fn a_missing_stamp_below_the_head_is_corrupt() {
        let rig = Rig::new(P);
        let mut r = rig.reader();
        let mut w = rig.writer();
        w.try_send(b"one").unwrap();
        rig.data.write_u64(8, 12345);
        let mut out = [0u8; 16];
        assert!(matches!(r.try_recv(&mut out), Err(RingError::Corrupt(_))));
    }

    /// A lossless ring of 64 KiB (eight hot windows) that allows 1 KiB messages.
    const HOT_P: Params = Params {
        capacity: 64 << 10,
        max_msg: 1024,
        overwrite: false,
    };

    /// One message of `len` bytes through `w` and `r`: where its payload went in the data
    /// area, after checking it arrived intact.
    fn exchange(w: &mut Writer<'_>, r: &mut Reader<'_>, i: u64, len: usize) -> usize {
        let msg: Vec<u8> = (0..len as u64).map(|k| (i * 7 + k) as u8).collect();
        let res = w.reserve(len).unwrap();
        w.write(&res, 0, &msg);
        w.commit(res, len);
        let mut out = std::vec![0u8; 1024];
        assert_eq!(r.try_recv(&mut out).unwrap(), Some((len, 0)), "message {i}");
        assert_eq!(&out[..len], &msg[..], "message {i}");
        res.offset
    }

    /// Request/reply traffic (each message read before the next is sent) cycles through the
    /// hot window: no payload starts past it, over several times the capacity, with every
    /// message intact.
    #[test]
    fn a_ring_kept_empty_stays_in_the_hot_window() {
        let rig = Rig::new(HOT_P);
        let (mut w, mut r) = (rig.writer(), rig.reader());
        assert_eq!(w.hot_window(), HOT_WINDOW);
        let mut rewinds = 0;
        let mut last = 0;
        for i in 0..4000 {
            let off = exchange(&mut w, &mut r, i, 64);
            assert!(off < HOT_WINDOW as usize, "message {i} at {off}");
            rewinds += usize::from(off < last);
            last = off;
        }
        // 4000 records of 80 bytes are almost five capacities; each window holds 102.
        assert!(rewinds >= 4000 / 103, "{rewinds} rewinds");
        assert!(!r.has_data());
    }

    /// A reader that is behind (a stream) keeps the whole ring: the writer fills it without a
    /// rewind, and the reader then gets every message in order.
    #[test]
    fn a_reader_behind_keeps_the_whole_ring() {
        let rig = Rig::new(HOT_P);
        let (mut w, mut r) = (rig.writer(), rig.reader());
        let msg = |i: u64| -> [u8; 64] { [(i % 251) as u8; 64] };
        let mut sent = 0;
        while w.try_send(&msg(sent)).is_ok() {
            sent += 1;
        }
        // 80-byte records: all of the 64 KiB but the last partial record.
        assert_eq!(sent, (64 << 10) / 80);
        let mut out = [0u8; 64];
        for i in 0..sent {
            assert_eq!(r.try_recv(&mut out).unwrap(), Some((64, 0)));
            assert_eq!(out, msg(i), "message {i}");
        }
        assert_eq!(r.try_recv(&mut out).unwrap(), None);
    }

    /// Records above an eighth of the window never rewind, and a window of 0 turns rewinding
    /// off: in both cases request/reply traffic sweeps the ring.
    #[test]
    fn large_records_and_a_zero_window_sweep_the_ring() {
        for (len, window) in [(1024, HOT_WINDOW), (64, 0)] {
            let rig = Rig::new(HOT_P);
            let (mut w, mut r) = (rig.writer(), rig.reader());
            w.set_hot_window(window);
            let mut furthest = 0;
            for i in 0..1000 {
                furthest = furthest.max(exchange(&mut w, &mut r, i, len));
            }
            assert!(
                furthest > HOT_WINDOW as usize * 2,
                "{len} B, window {window}: {furthest}"
            );
        }
    }

    /// No hot window where it cannot help: overwrite rings and rings under four windows.
    #[test]
    fn hot_window_defaults() {
        let small = Params {
            capacity: 16 << 10,
            ..HOT_P
        };
        let overwrite = Params {
            overwrite: true,
            ..HOT_P
        };
        for (p, want) in [(HOT_P, HOT_WINDOW), (small, 0), (overwrite, 0)] {
            let rig = Rig::new(p);
            let mut w = rig.writer();
            assert_eq!(w.hot_window(), want, "{p:?}");
            w.set_hot_window(1000);
            assert_eq!(w.hot_window(), if p.overwrite { 0 } else { 992 }, "{p:?}");
        }
    }
}
