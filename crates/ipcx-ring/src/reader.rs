//! A reader of a ring, with its own cursor.

use crate::record::{KIND_MSG, KIND_PAD, checked_size, read_header, ring_data, stamp};
use crate::shim::{Ordering, fence};
use crate::{
    ACTIVE, CLAIMED, Ctl, Cursor, Data, HEADER, JOINING, Params, RingError, corrupt, record_size,
};

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
        ring_data(&data, &p)?;
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
        Ok(Reader::at(ctl, cursor, data, p, tail, seq_hint))
    }

    /// Takes over an [`ACTIVE`] cursor at the tail stored in it (checked against the head):
    /// a lossless reader resuming where the cursor's previous owner stopped.
    pub fn resume(
        ctl: &'a Ctl,
        cursor: &'a Cursor,
        data: Data,
        p: Params,
    ) -> Result<Reader<'a>, RingError> {
        ring_data(&data, &p)?;
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
        Ok(Reader::at(ctl, cursor, data, p, tail, 0))
    }

    /// A reader at `tail`, which it joined at when the writer's sequence number was
    /// `seq_hint` (0 when unknown).
    fn at(
        ctl: &'a Ctl,
        cursor: &'a Cursor,
        data: Data,
        p: Params,
        tail: u64,
        seq_hint: u64,
    ) -> Reader<'a> {
        Reader {
            ctl,
            cursor,
            data,
            p,
            tail,
            next_seq: None,
            join: (tail, seq_hint),
            lapped: false,
        }
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
        self.data.prefetch((self.tail | 63) + 1);
    }

    /// Lossless rings: whether the record at the tail is committed (its stamp is there).
    /// Reads one word, in the cache line the record starts in: the cheapest poll there is.
    #[inline]
    pub fn stamped(&self) -> bool {
        !self.p.overwrite && self.data.stamp(self.tail) == stamp(self.tail)
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
        let (tail, data, p) = (self.tail, self.data, self.p);
        if p.overwrite || data.stamp(tail) != stamp(tail) {
            if p.overwrite {
                return corrupt("peek on an overwrite ring");
            }
            return Ok(None);
        }
        // Fast path: a message record with a valid length that ends inside the ring.
        // `w0 - (KIND_MSG << 32)` is the length when the kind is KIND_MSG, and above
        // `max_msg` for any other kind.
        let len = data.header(tail).wrapping_sub(u64::from(KIND_MSG) << 32);
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
