//! The reader's side of the chunk format: plain frames and chunks in, whole messages out.
//!
//! A [`Reassembler`] is fed the bytes read from a pipe or FIFO, in whatever pieces `read(2)`
//! returned, and gives back messages and recoverable errors, in stream order. It keeps one
//! incomplete message per writer ([`WriterId`]) and drops it, with an error naming the writer,
//! when that writer starts another message, when its process is known to be gone
//! ([`Reassembler::gone_writers`]), or when every writer has closed
//! ([`Reassembler::end_of_stream`]). Complete messages of other writers are never affected.
//!
//! Every byte is hostile: a declared length is checked before it is used and never allocated
//! ahead; buffers grow with the bytes that arrived (by doubling, up to the declared length), and
//! what is held for incomplete messages of all writers together is capped
//! ([`Reassembler::max_buffered`]): the message that would pass the cap is dropped, with an
//! error, and the others go on.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, Read};

use super::chunk::{self, ChunkFormatError, MARKER, WriterId};
use crate::framing::HEADER_LEN;

/// Bytes [`Reassembler::read_from`] asks for per read.
const READ_CHUNK: usize = 64 * 1024;

/// What one writer's entry costs besides its data (the map slot and bookkeeping), counted
/// against [`Reassembler::max_buffered`].
const ENTRY_COST: usize = 160;

/// Why a writer's incomplete message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// The writer started another message.
    NextMessage,
    /// The writer's process is gone.
    WriterGone,
    /// Every writer closed the pipe.
    EndOfStream,
    /// A chunk of the writer did not continue the message.
    OutOfOrder,
    /// Chunks arrived without the message's first chunk.
    MissingStart,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cause::NextMessage => "which started another message",
            Cause::WriterGone => "which is gone",
            Cause::EndOfStream => "when every writer had closed",
            Cause::OutOfOrder => "whose next chunk did not follow",
            Cause::MissingStart => "whose first chunk was not seen",
        })
    }
}

/// A recoverable reassembly error: one message was dropped; the others go on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReassemblyError {
    /// A frame or chunked message declared more than the maximum frame length. For a plain frame
    /// (`writer` is `None`) the stream is out of step: every byte is dropped until
    /// [`Reassembler::end_of_stream`]. A chunked message's chunks are skipped.
    TooLarge {
        /// The declared length.
        len: u64,
        /// The maximum frame length.
        max: usize,
        /// The chunk writer, `None` for a plain frame.
        writer: Option<WriterId>,
    },
    /// A message was left incomplete.
    Truncated {
        /// Bytes the message (a plain frame: with its header) should have had.
        expected: usize,
        /// Bytes that arrived.
        got: usize,
        /// The chunk writer and why its message was dropped; `None` when the stream ended
        /// inside a plain frame or a chunk.
        writer: Option<(WriterId, Cause)>,
    },
    /// Buffering the message would pass the cap on bytes held for incomplete messages.
    OverBudget {
        /// The message's declared length.
        len: usize,
        /// The cap.
        max_buffered: usize,
        /// The chunk writer, `None` for a plain frame.
        writer: Option<WriterId>,
    },
    /// Bytes with the chunk marker that are not a usable chunk. After
    /// [`ChunkFormatError::BadLength`] the stream is out of step, as after a plain
    /// [`TooLarge`](Self::TooLarge); otherwise the one chunk is skipped.
    BadChunk(ChunkFormatError),
}

impl ReassemblyError {
    /// Whether the stream is out of step: bytes are dropped until the end of the stream.
    pub fn loses_the_stream(&self) -> bool {
        matches!(
            self,
            ReassemblyError::TooLarge { writer: None, .. }
                | ReassemblyError::BadChunk(ChunkFormatError::BadLength { .. })
        )
    }
}

impl fmt::Display for ReassemblyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReassemblyError::TooLarge { len, max, writer } => {
                write!(
                    f,
                    "a frame of {len} bytes exceeds the maximum of {max} bytes"
                )?;
                if let Some(w) = writer {
                    write!(f, " ({w})")?;
                }
                Ok(())
            }
            ReassemblyError::Truncated {
                expected,
                got,
                writer,
            } => {
                match writer {
                    Some((w, cause)) => write!(f, "the message of {w}, {cause}, is incomplete")?,
                    None => write!(f, "the stream ended inside a frame")?,
                }
                write!(f, ": {got} of {expected} bytes arrived")
            }
            ReassemblyError::OverBudget {
                len,
                max_buffered,
                writer,
            } => {
                write!(
                    f,
                    "a message of {len} bytes would pass the limit of {max_buffered} bytes held for incomplete messages"
                )?;
                if let Some(w) = writer {
                    write!(f, " ({w})")?;
                }
                Ok(())
            }
            ReassemblyError::BadChunk(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReassemblyError {}

/// One writer's message in progress.
#[derive(Debug)]
struct Partial {
    seq: u32,
    total: u32,
    got: u32,
    /// `None`: the message is being skipped (reported already).
    data: Option<Vec<u8>>,
}

impl Partial {
    fn cost(&self) -> usize {
        ENTRY_COST + self.data.as_ref().map_or(0, Vec::capacity)
    }
}

/// Reassembles plain frames and chunked messages from a pipe's bytes; see the
/// [module documentation](self).
///
/// ```
/// use ipcx::pipe::chunk::{WriterId, for_each_chunk};
/// use ipcx::pipe::reassembly::Reassembler;
/// let mut r = Reassembler::new(1 << 20, 4 << 20);
/// let big = vec![7u8; 10_000];
/// for_each_chunk::<()>(WriterId::new(), 0, &big, |c| {
///     r.extend(c);
///     Ok(())
/// })
/// .unwrap();
/// r.extend(&[0, 0, 0, 2, b'h', b'i']);
/// assert_eq!(r.next().unwrap().unwrap(), big);
/// assert_eq!(r.next().unwrap().unwrap(), b"hi");
/// assert!(r.next().is_none());
/// ```
#[derive(Debug)]
pub struct Reassembler {
    max_frame_len: usize,
    max_buffered: usize,
    /// Bytes received and not yet taken apart (from `start`).
    buf: Vec<u8>,
    start: usize,
    /// Bytes of a dropped plain frame still to skip.
    skip: usize,
    /// Out of step: every byte is dropped until the end of the stream.
    lost: bool,
    writers: HashMap<WriterId, Partial>,
    /// What `writers` holds, entry costs included.
    held: usize,
    out: VecDeque<Result<Vec<u8>, ReassemblyError>>,
}

impl Reassembler {
    /// A reassembler refusing messages above `max_frame_len` bytes and holding at most
    /// `max_buffered` bytes for incomplete messages.
    pub fn new(max_frame_len: usize, max_buffered: usize) -> Reassembler {
        Reassembler {
            max_frame_len,
            max_buffered,
            buf: Vec::new(),
            start: 0,
            skip: 0,
            lost: false,
            writers: HashMap::new(),
            held: 0,
            out: VecDeque::new(),
        }
    }

    /// The longest message accepted.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Changes the longest message accepted (for what arrives from now on).
    pub fn set_max_frame_len(&mut self, max: usize) {
        self.max_frame_len = max;
    }

    /// The most bytes held for incomplete messages, all writers together.
    pub fn max_buffered(&self) -> usize {
        self.max_buffered
    }

    /// Changes the cap on bytes held for incomplete messages (for what arrives from now on).
    pub fn set_max_buffered(&mut self, max: usize) {
        self.max_buffered = max;
    }

    /// Bytes held now: incomplete messages of every writer and bytes not yet taken apart.
    pub fn buffered(&self) -> usize {
        self.held + self.buf.len() - self.start
    }

    /// Whether some writer has an incomplete message.
    pub fn has_partial_messages(&self) -> bool {
        !self.writers.is_empty()
    }

    /// Whether [`next`](Self::next) has a message or error ready without more bytes.
    pub fn has_pending_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Appends bytes received from the stream.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.lost {
            return;
        }
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// Reads once from `r` (at most 64 KiB); returns the bytes read, `0` at the end of the
    /// stream. A `WouldBlock` error from a non-blocking reader is returned as is.
    pub fn read_from<R: Read + ?Sized>(&mut self, r: &mut R) -> io::Result<usize> {
        self.compact();
        let old = self.buf.len();
        self.buf.resize(old + READ_CHUNK, 0);
        let res = r.read(&mut self.buf[old..]);
        let n = *res.as_ref().unwrap_or(&0);
        self.buf.truncate(old + n);
        if self.lost {
            self.buf.clear();
            self.start = 0;
        }
        res
    }

    /// The next message or recoverable error, in stream order; `None` when the bytes so far
    /// hold nothing more.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<Vec<u8>, ReassemblyError>> {
        loop {
            if let Some(item) = self.out.pop_front() {
                return Some(item);
            }
            if !self.take_unit() {
                return None;
            }
        }
    }

    /// Writers with an incomplete message whose process is known to be gone
    /// ([`WriterId::is_known_gone`]), looking at no more than `limit` writers.
    ///
    /// A writer found gone may still have chunks in the pipe: drop its message
    /// ([`drop_writer`](Self::drop_writer)) only once everything the pipe held after this call
    /// has been read and fed in.
    pub fn gone_writers(&self, limit: usize) -> Vec<WriterId> {
        self.writers
            .iter()
            .take(limit)
            .filter(|(w, p)| p.data.is_some() && w.is_known_gone())
            .map(|(w, _)| *w)
            .collect()
    }

    /// Drops writer `w`'s incomplete message, if it still has one, reported by
    /// [`next`](Self::next) with `cause`.
    pub fn drop_writer(&mut self, w: WriterId, cause: Cause) {
        self.drop_partial(w, cause);
    }

    /// Every writer closed: reports what was left incomplete (through [`next`](Self::next),
    /// after the messages still buffered) and starts afresh for the next writers.
    pub fn end_of_stream(&mut self) {
        // Whole units still buffered first.
        while self.take_unit() {}
        let pending = &self.buf[self.start..];
        if !self.lost && self.skip == 0 && !pending.is_empty() {
            let expected = match pending.get(..HEADER_LEN) {
                Some(h) => {
                    let word = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
                    if word & MARKER != 0 {
                        ((word & !MARKER) as usize).saturating_add(HEADER_LEN)
                    } else {
                        (word as usize).saturating_add(HEADER_LEN)
                    }
                }
                None => HEADER_LEN,
            };
            self.out.push_back(Err(ReassemblyError::Truncated {
                expected,
                got: pending.len(),
                writer: None,
            }));
        }
        let mut left: Vec<(WriterId, Partial)> = self.writers.drain().collect();
        left.sort_by_key(|(w, _)| (w.pid, w.serial));
        for (w, p) in left {
            if p.data.is_some() {
                self.out.push_back(Err(ReassemblyError::Truncated {
                    expected: p.total as usize,
                    got: p.got as usize,
                    writer: Some((w, Cause::EndOfStream)),
                }));
            }
        }
        self.writers.shrink_to_fit();
        self.held = 0;
        self.buf = Vec::new();
        self.start = 0;
        self.skip = 0;
        self.lost = false;
    }

    /// Takes one unit (a plain frame or a chunk) apart if it is all there; queues what it
    /// yields. Returns whether it made progress.
    fn take_unit(&mut self) -> bool {
        if self.lost {
            self.buf.clear();
            self.start = 0;
            return false;
        }
        if self.skip > 0 {
            let n = self.skip.min(self.buf.len() - self.start);
            self.start += n;
            self.skip -= n;
            return n > 0;
        }
        let pending = &self.buf[self.start..];
        let Some(h) = pending.get(..HEADER_LEN) else {
            return false;
        };
        let word = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        if word & MARKER == 0 {
            self.take_plain(word as usize)
        } else {
            self.take_chunk(word)
        }
    }

    fn take_plain(&mut self, len: usize) -> bool {
        if len > self.max_frame_len {
            self.out.push_back(Err(ReassemblyError::TooLarge {
                len: len as u64,
                max: self.max_frame_len,
                writer: None,
            }));
            self.lose_the_stream();
            return true;
        }
        if HEADER_LEN + len > self.max_buffered.saturating_sub(self.held) {
            self.out.push_back(Err(ReassemblyError::OverBudget {
                len,
                max_buffered: self.max_buffered,
                writer: None,
            }));
            self.start += HEADER_LEN;
            self.skip = len;
            return true;
        }
        let pending = &self.buf[self.start..];
        if pending.len() < HEADER_LEN + len {
            return false;
        }
        let msg = pending[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.start += HEADER_LEN + len;
        self.out.push_back(Ok(msg));
        true
    }

    fn take_chunk(&mut self, word: u32) -> bool {
        let len = match chunk::chunk_len(word) {
            Ok(len) => len,
            Err(e) => {
                self.out.push_back(Err(ReassemblyError::BadChunk(e)));
                self.lose_the_stream();
                return true;
            }
        };
        let at = self.start;
        if self.buf.len() - at < len {
            return false;
        }
        self.start += len;
        // The chunk's bytes stay in `buf` (before `start`) until the next compaction.
        let (header, payload) = match chunk::decode_chunk(&self.buf[at..at + len]) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.out.push_back(Err(ReassemblyError::BadChunk(e)));
                return true;
            }
        };
        let (payload_at, payload_len) = (at + len - payload.len(), payload.len());
        let w = header.writer;
        if header.offset == 0 {
            if self.writers.contains_key(&w) {
                self.drop_partial(w, Cause::NextMessage);
            }
            self.start_message(header, payload_at, payload_len);
            return true;
        }
        match self.writers.get(&w) {
            Some(p) if p.seq == header.seq && p.total == header.total && p.got == header.offset => {
                self.continue_message(w, payload_at, payload_len);
            }
            Some(_) => {
                self.drop_partial(w, Cause::OutOfOrder);
                self.skip_message(header, header.offset as usize + payload_len);
            }
            None => {
                self.out.push_back(Err(ReassemblyError::Truncated {
                    expected: header.total as usize,
                    got: payload_len,
                    writer: Some((w, Cause::MissingStart)),
                }));
                self.skip_message(header, header.offset as usize + payload_len);
            }
        }
        true
    }

    /// A chunk at offset 0: a new message of its writer.
    fn start_message(&mut self, header: chunk::ChunkHeader, payload_at: usize, payload_len: usize) {
        let total = header.total as usize;
        let w = header.writer;
        if total > self.max_frame_len {
            self.out.push_back(Err(ReassemblyError::TooLarge {
                len: total as u64,
                max: self.max_frame_len,
                writer: Some(w),
            }));
            self.skip_message(header, payload_len);
            return;
        }
        if payload_len == total {
            let msg = self.buf[payload_at..payload_at + payload_len].to_vec();
            self.out.push_back(Ok(msg));
            return;
        }
        let want = total.min(payload_len.saturating_mul(2));
        let cost = ENTRY_COST + want;
        if self.held + cost > self.max_buffered {
            self.over_budget(header, payload_len);
            return;
        }
        let mut data = Vec::with_capacity(want);
        data.extend_from_slice(&self.buf[payload_at..payload_at + payload_len]);
        let p = Partial {
            seq: header.seq,
            total: header.total,
            got: payload_len as u32,
            data: Some(data),
        };
        self.held += p.cost();
        self.writers.insert(w, p);
    }

    /// The next chunk of writer `w`'s message.
    fn continue_message(&mut self, w: WriterId, payload_at: usize, payload_len: usize) {
        let Some(p) = self.writers.get_mut(&w) else {
            return;
        };
        let total = p.total as usize;
        let got = p.got as usize + payload_len;
        p.got = got as u32;
        let Some(data) = p.data.as_mut() else {
            // Being skipped.
            if got == total {
                self.held -= ENTRY_COST;
                self.writers.remove(&w);
            }
            return;
        };
        if data.capacity() < got {
            // Grow by doubling, never past the declared length, within the cap.
            let old = data.capacity();
            let budget = self.max_buffered.saturating_sub(self.held) + old;
            let mut new = total.min(old.saturating_mul(2)).max(got);
            if new > budget {
                new = got;
            }
            if new > budget {
                self.held -= p.cost();
                p.data = None;
                self.held += p.cost();
                self.out.push_back(Err(ReassemblyError::OverBudget {
                    len: total,
                    max_buffered: self.max_buffered,
                    writer: Some(w),
                }));
                if got == total {
                    self.held -= ENTRY_COST;
                    self.writers.remove(&w);
                }
                return;
            }
            data.reserve_exact(new - data.len());
            self.held = self.held - old + data.capacity();
        }
        data.extend_from_slice(&self.buf[payload_at..payload_at + payload_len]);
        if got == total {
            let p = self.writers.remove(&w).expect("present");
            self.held -= p.cost();
            self.out.push_back(Ok(p.data.expect("collecting")));
        }
    }

    /// A message that cannot be buffered within the cap: reported, and its chunks skipped.
    fn over_budget(&mut self, header: chunk::ChunkHeader, payload_len: usize) {
        self.out.push_back(Err(ReassemblyError::OverBudget {
            len: header.total as usize,
            max_buffered: self.max_buffered,
            writer: Some(header.writer),
        }));
        self.skip_message(header, header.offset as usize + payload_len);
    }

    /// Skips the rest of writer `header.writer`'s message `header.seq`, of which `got` bytes
    /// went by. Costs an entry (when the cap allows; otherwise later chunks are reported
    /// again as missing their start).
    fn skip_message(&mut self, header: chunk::ChunkHeader, got: usize) {
        if got >= header.total as usize || self.held + ENTRY_COST > self.max_buffered {
            return;
        }
        self.writers.insert(
            header.writer,
            Partial {
                seq: header.seq,
                total: header.total,
                got: got as u32,
                data: None,
            },
        );
        self.held += ENTRY_COST;
    }

    /// Drops writer `w`'s incomplete message, reporting it unless it was being skipped.
    fn drop_partial(&mut self, w: WriterId, cause: Cause) {
        if let Some(p) = self.writers.remove(&w) {
            self.held -= p.cost();
            if p.data.is_some() {
                self.out.push_back(Err(ReassemblyError::Truncated {
                    expected: p.total as usize,
                    got: p.got as usize,
                    writer: Some((w, cause)),
                }));
            }
        }
    }

    fn lose_the_stream(&mut self) {
        self.lost = true;
        self.buf.clear();
        self.start = 0;
        self.skip = 0;
    }

    /// Drops consumed bytes from the front of the buffer, and gives back the room a large
    /// plain frame needed once it is gone.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.capacity() > 4 * READ_CHUNK && self.buf.len() <= READ_CHUNK {
            self.buf.shrink_to(2 * READ_CHUNK);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::encode_frame;
    use crate::pipe::chunk::for_each_chunk;

    fn chunks(w: WriterId, seq: u32, msg: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for_each_chunk::<()>(w, seq, msg, |c| {
            out.push(c.to_vec());
            Ok(())
        })
        .unwrap();
        out
    }

    fn writer(pid: u32) -> WriterId {
        WriterId {
            pid_ns: 0,
            pid,
            start_time: 0,
            serial: 0,
        }
    }

    fn drain(r: &mut Reassembler) -> Vec<Result<Vec<u8>, ReassemblyError>> {
        std::iter::from_fn(|| r.next()).collect()
    }

    #[test]
    fn interleaved_writers_and_a_dead_one_byte_by_byte() {
        let (a, b) = (writer(1), writer(2));
        let big_a: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
        let big_b = vec![9u8; 9_000];
        let ca = chunks(a, 0, &big_a);
        let cb = chunks(b, 0, &big_b);
        let mut wire = Vec::new();
        // a's first two chunks, then b's message interleaved with a plain frame, then a's
        // next message (a died or gave up on message 0).
        wire.extend(ca[0].iter().chain(&ca[1]));
        wire.extend(&cb[0]);
        wire.extend(encode_frame(b"small", 100).unwrap());
        for c in &cb[1..] {
            wire.extend(c);
        }
        for c in chunks(a, 1, b"fresh start, sent as one chunk") {
            wire.extend(c);
        }
        let mut r = Reassembler::new(1 << 20, 1 << 20);
        let mut got = Vec::new();
        for byte in &wire {
            r.extend(std::slice::from_ref(byte));
            got.extend(drain(&mut r));
        }
        r.end_of_stream();
        got.extend(drain(&mut r));
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0].as_deref().unwrap(), b"small");
        assert_eq!(got[1].as_deref().unwrap(), &big_b[..]);
        assert!(matches!(
            &got[2],
            Err(ReassemblyError::Truncated { expected: 20_000, got, writer: Some((w, Cause::NextMessage)) })
                if *got == 2 * chunk::MAX_PAYLOAD && *w == a
        ));
        assert_eq!(
            got[3].as_deref().unwrap(),
            b"fresh start, sent as one chunk"
        );
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn end_of_stream_reports_every_incomplete_message() {
        let mut r = Reassembler::new(1 << 20, 1 << 20);
        r.extend(&chunks(writer(1), 0, &[1; 10_000])[0]);
        r.extend(&chunks(writer(2), 0, &[2; 10_000])[0]);
        r.extend(&[0, 0, 0, 10, b'a', b'b']);
        assert!(r.next().is_none());
        r.end_of_stream();
        let got = drain(&mut r);
        assert!(matches!(
            got[0],
            Err(ReassemblyError::Truncated {
                expected: 14,
                got: 6,
                writer: None
            })
        ));
        assert!(matches!(
            got[1],
            Err(ReassemblyError::Truncated { writer: Some((w, Cause::EndOfStream)), .. }) if w.pid == 1
        ));
        assert!(matches!(
            got[2],
            Err(ReassemblyError::Truncated { writer: Some((w, Cause::EndOfStream)), .. }) if w.pid == 2
        ));
        assert_eq!(got.len(), 3);
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn claimed_lengths_cost_only_what_arrived() {
        let mut r = Reassembler::new(16 << 20, 64 << 20);
        // A plain header claiming 16 MiB, then one byte.
        r.extend(&[1, 0, 0, 0, 0]);
        assert!(r.next().is_none());
        assert!(r.buffered() < 64, "{}", r.buffered());
        // Chunks claiming 16 MiB each from a thousand writers, one byte each.
        let mut r = Reassembler::new(16 << 20, 64 << 20);
        for pid in 0..1000 {
            let h = chunk::ChunkHeader {
                writer: writer(pid),
                seq: 0,
                total: 16 << 20,
                offset: 0,
            };
            let mut c = Vec::new();
            chunk::encode_chunk(&h, b"x", &mut c);
            r.extend(&c);
            assert!(r.next().is_none());
        }
        assert!(r.buffered() <= 1000 * (ENTRY_COST + 2), "{}", r.buffered());
    }

    #[test]
    fn the_cap_drops_the_message_that_would_pass_it_and_keeps_the_others() {
        let mut r = Reassembler::new(1 << 20, 30_000);
        let a = chunks(writer(1), 0, &[1; 20_000]);
        let b = chunks(writer(2), 0, &[2; 20_000]);
        for (ca, cb) in a.iter().zip(&b) {
            r.extend(ca);
            r.extend(cb);
        }
        r.extend(&encode_frame(b"after", 100).unwrap());
        let got = drain(&mut r);
        assert!(
            matches!(&got[0], Err(ReassemblyError::OverBudget { writer: Some(w), .. }) if w.pid == 2),
            "{got:?}"
        );
        assert_eq!(got[1].as_deref().unwrap(), &[1; 20_000][..]);
        assert_eq!(got[2].as_deref().unwrap(), b"after");
        assert_eq!(got.len(), 3);
        assert_eq!(r.buffered(), 0);
        // A plain frame larger than the cap is skipped, the stream stays in step.
        let mut r = Reassembler::new(1 << 20, 1000);
        r.extend(&encode_frame(&[5; 2000], 4000).unwrap());
        r.extend(&encode_frame(b"next", 100).unwrap());
        let got = drain(&mut r);
        assert!(matches!(
            got[0],
            Err(ReassemblyError::OverBudget { writer: None, .. })
        ));
        assert_eq!(got[1].as_deref().unwrap(), b"next");
    }

    #[test]
    fn oversize_and_bad_chunks() {
        // A chunked message above the maximum: its chunks are skipped, the stream goes on.
        let mut r = Reassembler::new(5_000, 1 << 20);
        for c in chunks(writer(1), 0, &[1; 9_000]) {
            r.extend(&c);
        }
        r.extend(&encode_frame(b"ok", 100).unwrap());
        let got = drain(&mut r);
        assert!(matches!(
            got[0],
            Err(ReassemblyError::TooLarge {
                len: 9_000,
                writer: Some(_),
                ..
            })
        ));
        assert_eq!(got[1].as_deref().unwrap(), b"ok");
        assert_eq!(got.len(), 2);
        // Chunks without their start: one report for the message, not one per chunk.
        let mut r = Reassembler::new(1 << 20, 1 << 20);
        for c in &chunks(writer(1), 0, &[1; 20_000])[1..] {
            r.extend(c);
        }
        let got = drain(&mut r);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(matches!(
            got[0],
            Err(ReassemblyError::Truncated {
                writer: Some((_, Cause::MissingStart)),
                ..
            })
        ));
        assert_eq!(r.buffered(), 0);
        // An impossible chunk length: the stream is lost until its end.
        let mut r = Reassembler::new(1 << 20, 1 << 20);
        r.extend(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2, b'h', b'i']);
        let got = drain(&mut r);
        assert!(got[0].as_ref().unwrap_err().loses_the_stream());
        assert_eq!(got.len(), 1);
        r.extend(&encode_frame(b"dropped", 100).unwrap());
        assert!(r.next().is_none());
        r.end_of_stream();
        assert!(r.next().is_none());
        r.extend(&encode_frame(b"fresh", 100).unwrap());
        assert_eq!(r.next().unwrap().unwrap(), b"fresh");
    }
}
