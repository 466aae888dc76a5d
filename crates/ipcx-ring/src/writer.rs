//! The writer of a ring.

use crate::record::{
    KIND_MSG, KIND_PAD, checked_size, read_header, ring_data, stamp, write_header,
};
use crate::shim::{Ordering, fence};
use crate::{
    ACTIVE, Ctl, Cursor, Data, HEADER, HOT_WINDOW, JOINING, Params, RingError, corrupt, record_size,
};

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
        ring_data(&data, &p)?;
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
                if data.stamp(head) != stamp(head) {
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
        // Fast path (lossless, no padding; the header words are reached by masked position:
        // no bounds check needed).
        let len = len.min(r.len);
        let start = self.head;
        let end = start + record_size(len as u64);
        self.clear_next_stamp(end);
        self.stamp_message(start, len);
        self.publish(end);
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
            self.clear_next_stamp(end);
            if r.pad > 0 {
                self.data.set_header(
                    self.head,
                    u64::from((r.pad - HEADER) as u32) | (u64::from(KIND_PAD) << 32),
                );
                self.data.set_stamp(self.head, stamp(self.head));
            }
            self.stamp_message(start, len);
        }
        self.publish(end);
    }

    /// Lossless: clears the stamp word of the record that will follow one ending at `end`,
    /// when that space is free: it holds stale bytes from an earlier lap, which might read as
    /// `stamp(end)`. When it is not free, `end - capacity` is the (slowest) reader's tail, a
    /// record boundary: the word is the stamp of that record, `stamp(end - capacity)`.
    #[inline(always)]
    fn clear_next_stamp(&self, end: u64) {
        if end + HEADER <= self.limit {
            self.data.set_stamp(end, 0);
        }
    }

    /// Lossless: writes the header of a message record of `len` bytes at `start`, then its
    /// commit stamp (release ordering: readers that see the stamp see the record).
    #[inline(always)]
    fn stamp_message(&self, start: u64, len: usize) {
        self.data
            .set_header(start, len as u64 | (u64::from(KIND_MSG) << 32));
        self.data.set_stamp(start, stamp(start));
    }

    /// Publishes one more message, the head now at `end`.
    #[inline(always)]
    fn publish(&mut self, end: u64) {
        self.seq += 1;
        self.head = end;
        self.ctl.writer.seq.store(self.seq, Ordering::Relaxed);
        self.ctl.writer.head.store(end, Ordering::Release);
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
