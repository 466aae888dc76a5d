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
//!   (`len: u32`, `kind: u32`, `seq: u64`) then the payload, padded to 16 bytes. A record never
//!   straddles the end of the ring: the writer fills the tail with a padding record instead.
//!   1:1 (SPSC) is this algorithm with one reader.
//!   - **Lossless** (default): the writer never writes past `min(tail of active readers) +
//!     capacity`, so a slow reader makes the writer wait ([`RingError::Full`]).
//!   - **Overwrite** (opt-in): the writer ignores readers and moves `oldest` (the first intact
//!     record) forward before it overwrites anything; a reader copies a record, then checks
//!     (seqlock style) that `oldest` did not pass it. Readers learn from record sequence numbers
//!     how many messages they missed.
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

use shim::{AtomicU32, AtomicU64, Ordering, fence};

/// Bytes of a record header.
pub const HEADER: u64 = 16;
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

fn corrupt<T>(what: &'static str) -> Result<T, RingError> {
    Err(RingError::Corrupt(what))
}

/// A record header as read from shared memory (not yet validated).
struct RawHeader {
    len: u32,
    kind: u32,
    seq: u64,
}

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
    p: Params,
    head: u64,
    /// Lossless: the writer may fill up to here without looking at the readers again.
    limit: u64,
    oldest: u64,
    seq: u64,
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
        if !p.is_valid() || data.len() as u64 != p.capacity {
            return corrupt("ring parameters");
        }
        let head = ctl.writer.head.load(Ordering::Acquire);
        let oldest = ctl.writer.oldest.load(Ordering::Acquire);
        let seq = ctl.writer.seq.load(Ordering::Acquire);
        if !head.is_multiple_of(16)
            || (p.overwrite && (oldest > head || head - oldest > p.capacity))
        {
            return corrupt("writer cursor");
        }
        Ok(Writer {
            ctl,
            readers,
            data,
            p,
            head,
            limit: head,
            oldest,
            seq,
        })
    }

    /// The parameters.
    pub fn params(&self) -> Params {
        self.p
    }

    /// The data area.
    pub fn data(&self) -> &Data {
        &self.data
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
    pub fn reserve(&mut self, len: usize) -> Result<Reservation, RingError> {
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
        } else {
            0
        };
        let need = pad + rec;
        if self.p.overwrite {
            self.advance_oldest(self.head + need)?;
        } else if self.head + need > self.limit {
            let min = self.min_tail()?.unwrap_or(self.head);
            self.limit = min + self.p.capacity;
            if self.head + need > self.limit {
                return Err(RingError::Full);
            }
        }
        if pad > 0 {
            write_header(&self.data, off, (pad - HEADER) as u32, KIND_PAD, 0);
        }
        Ok(Reservation {
            offset: (((self.head + pad) & self.p.mask()) + HEADER) as usize,
            len,
            pad,
        })
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
    pub fn write(&self, r: &Reservation, at: usize, bytes: &[u8]) {
        let end = at.saturating_add(bytes.len());
        assert!(end <= r.len, "write past the reservation");
        self.data.copy_in(r.offset + at, bytes, self.p.overwrite);
    }

    /// Publishes a reserved record with `len <= r.len` payload bytes.
    pub fn commit(&mut self, r: Reservation, len: usize) {
        let len = len.min(r.len);
        let start = self.head + r.pad;
        write_header(
            &self.data,
            start & self.p.mask(),
            len as u32,
            KIND_MSG,
            self.seq,
        );
        self.seq += 1;
        self.head = start + record_size(len as u64);
        self.ctl.writer.seq.store(self.seq, Ordering::Relaxed);
        self.ctl.writer.head.store(self.head, Ordering::Release);
    }

    /// Reserve, copy, commit.
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
    /// The record's sequence number.
    pub seq: u64,
    next: u64,
}

/// A reader with its own cursor.
#[derive(Debug)]
pub struct Reader<'a> {
    ctl: &'a Ctl,
    cursor: &'a Cursor,
    data: Data,
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
        if !p.is_valid() || data.len() as u64 != p.capacity {
            return corrupt("ring parameters");
        }
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
        if !p.is_valid() || data.len() as u64 != p.capacity {
            return corrupt("ring parameters");
        }
        let head = ctl.writer.head.load(Ordering::Acquire);
        let tail = cursor.tail.load(Ordering::Acquire);
        if !tail.is_multiple_of(16) || tail > head || head - tail > p.capacity {
            return corrupt("reader cursor");
        }
        Ok(Reader {
            ctl,
            cursor,
            data,
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

    /// Whether a message may be waiting (a cheap check for waiting loops).
    pub fn has_data(&self) -> bool {
        self.ctl.writer.head.load(Ordering::Acquire) != self.tail
    }

    /// Lossless rings: the next record, without consuming it (its bytes stay valid and
    /// unchanged until [`Reader::release`]). `Ok(None)` when nothing is waiting.
    pub fn peek(&mut self) -> Result<Option<Peeked>, RingError> {
        if self.p.overwrite {
            return corrupt("peek on an overwrite ring");
        }
        loop {
            let head = self.ctl.writer.head.load(Ordering::Acquire);
            if head < self.tail || head - self.tail > self.p.capacity || !head.is_multiple_of(16) {
                return corrupt("writer cursor");
            }
            if head == self.tail {
                return Ok(None);
            }
            let off = self.tail & self.p.mask();
            let h = read_header(&self.data, off);
            let size = checked_size(&self.p, &h, self.tail, head)?;
            if h.kind == KIND_PAD {
                self.tail += size;
                self.cursor.tail.store(self.tail, Ordering::Release);
                continue;
            }
            return Ok(Some(Peeked {
                offset: (off + HEADER) as usize,
                len: h.len as usize,
                seq: h.seq,
                next: self.tail + size,
            }));
        }
    }

    /// Consumes the record returned by the last [`Reader::peek`]: the writer may reuse it.
    /// Returns how many messages were skipped before it (0 on a lossless ring, unless a
    /// writer crashed and another resumed).
    pub fn release(&mut self, r: Peeked) -> u64 {
        let missed = self.note_seq(r.seq, self.tail);
        self.tail = r.next;
        self.cursor.tail.store(self.tail, Ordering::Release);
        missed
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
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<Option<(usize, u64)>, RingError> {
        if !self.p.overwrite {
            let Some(r) = self.peek()? else {
                return Ok(None);
            };
            let n = r.len.min(buf.len());
            self.data.copy_out(r.offset, &mut buf[..n], false);
            let missed = self.release(r);
            return Ok(Some((r.len, missed)));
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
