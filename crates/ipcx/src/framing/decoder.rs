//! [`FrameDecoder`]: the incremental decoder, fed with whatever bytes have arrived (for
//! non-blocking streams and for servers that multiplex many connections).

use std::io::{self, Read};

use super::{FrameError, HEADER_LEN, READ_CHUNK, decode_header};

/// An incremental frame decoder: feed it bytes as they arrive, take whole frames out.
///
/// ```
/// use ipcx::framing::{FrameDecoder, encode_frame};
/// let mut dec = FrameDecoder::new(1024);
/// let frame = encode_frame(b"hello", 1024).unwrap();
/// dec.extend(&frame[..3]);
/// assert!(dec.next_frame().unwrap().is_none());
/// dec.extend(&frame[3..]);
/// assert_eq!(dec.next_frame().unwrap().unwrap(), b"hello");
/// assert!(dec.finish().is_ok());
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    max: usize,
    buf: Vec<u8>,
    start: usize,
}

/// Buffer capacity a decoder keeps once the bytes that needed it are consumed.
const RETAINED: usize = 4 * READ_CHUNK;

impl FrameDecoder {
    /// A decoder that rejects frames longer than `max` bytes.
    pub fn new(max: usize) -> FrameDecoder {
        FrameDecoder {
            max,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// The maximum frame length.
    pub fn max_frame_len(&self) -> usize {
        self.max
    }

    /// Changes the maximum frame length; bytes already buffered are kept.
    pub fn set_max_frame_len(&mut self, max: usize) {
        self.max = max;
    }

    /// Appends bytes received from the stream.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// Reads once from `r` into the decoder; returns the bytes read (`0` at end of stream).
    ///
    /// A `WouldBlock` error from a non-blocking reader is returned as is. The buffer grows with
    /// the bytes that arrive, never with the length a header declares: see
    /// [`read_from_limit`](Self::read_from_limit).
    pub fn read_from<R: Read + ?Sized>(&mut self, r: &mut R) -> io::Result<usize> {
        self.read_from_limit(r, usize::MAX)
    }

    /// Reads once from `r`, at most `limit` bytes (at least one), into the decoder; returns
    /// the bytes read (`0` at end of stream).
    ///
    /// Memory follows what arrived: small reads go through a fixed chunk on the stack and
    /// only the bytes received are kept; while a large frame is in progress the buffer at most
    /// doubles per read, and never grows past what the frame still needs. A peer that declares
    /// a 16 MiB frame and sends one byte costs a few bytes, not 16 MiB.
    pub fn read_from_limit<R: Read + ?Sized>(
        &mut self,
        r: &mut R,
        limit: usize,
    ) -> io::Result<usize> {
        self.compact();
        let limit = limit.max(1);
        let pending = self.buf.len();
        if pending < READ_CHUNK {
            let mut chunk = [0u8; READ_CHUNK];
            let want = READ_CHUNK.min(limit);
            let n = r.read(&mut chunk[..want])?;
            self.buf.extend_from_slice(&chunk[..n]);
            return Ok(n);
        }
        let want = self.wanted().min(pending).min(limit).max(1);
        self.buf.reserve_exact(want);
        self.buf.resize(pending + want, 0);
        let res = r.read(&mut self.buf[pending..]);
        let n = *res.as_ref().unwrap_or(&0);
        self.buf.truncate(pending + n);
        res
    }

    /// How many more bytes the frame being decoded needs (at least one read chunk while its
    /// header is incomplete or oversize).
    fn wanted(&self) -> usize {
        let pending = &self.buf[self.start..];
        if pending.len() >= HEADER_LEN {
            let mut h = [0u8; HEADER_LEN];
            h.copy_from_slice(&pending[..HEADER_LEN]);
            let len = u32::from_be_bytes(h) as usize;
            if len <= self.max {
                return (HEADER_LEN + len).saturating_sub(pending.len()).max(1);
            }
        }
        READ_CHUNK
    }

    /// Takes the next whole frame out of the buffered bytes, if there is one.
    ///
    /// A frame whose header declares more than the maximum is an error as soon as its header has
    /// arrived; the decoder is then unusable for this stream (the stream is out of sync).
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let pending = &self.buf[self.start..];
        if pending.len() < HEADER_LEN {
            return Ok(None);
        }
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&pending[..HEADER_LEN]);
        let len = decode_header(h, self.max)?;
        if pending.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let frame = pending[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.start += HEADER_LEN + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            if self.buf.capacity() > RETAINED {
                // A large frame is done: give its buffer back.
                self.buf = Vec::new();
            }
        }
        Ok(Some(frame))
    }

    /// Whether the buffered bytes hold a whole frame (or a header that is an error), so that
    /// [`next_frame`](Self::next_frame) returns something without reading more.
    pub fn has_frame(&self) -> bool {
        let pending = &self.buf[self.start..];
        if pending.len() < HEADER_LEN {
            return false;
        }
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&pending[..HEADER_LEN]);
        decode_header(h, self.max)
            .ok()
            .is_none_or(|len| pending.len() >= HEADER_LEN + len)
    }

    /// Buffered bytes that do not yet form a whole frame.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Called at end of stream: an error if the stream ended inside a frame. Whole frames still
    /// buffered are not an error (take them with [`next_frame`](Self::next_frame)).
    pub fn finish(&self) -> Result<(), FrameError> {
        let pending = &self.buf[self.start..];
        let mut at = 0;
        while at < pending.len() {
            let rest = &pending[at..];
            if rest.len() < HEADER_LEN {
                return Err(FrameError::Truncated {
                    expected: HEADER_LEN,
                    got: rest.len(),
                });
            }
            let mut h = [0u8; HEADER_LEN];
            h.copy_from_slice(&rest[..HEADER_LEN]);
            let expected = HEADER_LEN + u32::from_be_bytes(h) as usize;
            if rest.len() < expected {
                return Err(FrameError::Truncated {
                    expected,
                    got: rest.len(),
                });
            }
            at += expected;
        }
        Ok(())
    }

    /// Drops consumed bytes from the front of the buffer.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
            if self.buf.capacity() > RETAINED && self.buf.len() < self.buf.capacity() / 4 {
                self.buf.shrink_to(self.buf.len() * 2);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::{encode_frame, read_frame, write_frame};

    #[test]
    fn roundtrip_blocking() {
        let mut wire = Vec::new();
        for m in [&b""[..], b"a", &[7u8; 1000]] {
            write_frame(&mut wire, m, 1000).unwrap();
        }
        let mut r = &wire[..];
        assert_eq!(read_frame(&mut r, 1000).unwrap().unwrap(), b"");
        assert_eq!(read_frame(&mut r, 1000).unwrap().unwrap(), b"a");
        assert_eq!(read_frame(&mut r, 1000).unwrap().unwrap(), vec![7u8; 1000]);
        assert!(read_frame(&mut r, 1000).unwrap().is_none());
    }

    #[test]
    fn header_is_big_endian_u32() {
        assert_eq!(encode_frame(b"hi", 10).unwrap(), [0, 0, 0, 2, b'h', b'i']);
    }

    #[test]
    fn oversize_rejected_on_both_ends() {
        assert!(matches!(
            encode_frame(&[0; 11], 10),
            Err(FrameError::TooLarge { len: 11, max: 10 })
        ));
        let wire = [0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut &wire[..], 10),
            Err(FrameError::TooLarge { .. })
        ));
        let mut d = FrameDecoder::new(10);
        d.extend(&wire);
        assert!(matches!(d.next_frame(), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn whole_frames_pending_at_end_of_stream_are_not_truncation() {
        let mut d = FrameDecoder::new(100);
        let mut wire = encode_frame(b"again", 100).unwrap();
        d.extend(&wire);
        assert!(d.finish().is_ok());
        wire.extend_from_slice(&[0, 0]);
        let mut d = FrameDecoder::new(100);
        d.extend(&wire);
        assert!(matches!(
            d.finish(),
            Err(FrameError::Truncated {
                expected: 4,
                got: 2
            })
        ));
        assert_eq!(d.next_frame().unwrap().unwrap(), b"again");
    }

    #[test]
    fn truncation_detected() {
        let wire = encode_frame(b"hello", 100).unwrap();
        for cut in 1..wire.len() {
            let err = read_frame(&mut &wire[..cut], 100).unwrap_err();
            assert!(
                matches!(err, FrameError::Truncated { got, .. } if got == cut),
                "{err}"
            );
            let mut d = FrameDecoder::new(100);
            d.extend(&wire[..cut]);
            assert!(d.next_frame().unwrap().is_none());
            assert!(matches!(d.finish(), Err(FrameError::Truncated { got, .. }) if got == cut));
        }
    }

    #[test]
    fn decoder_handles_byte_at_a_time_and_read_from() {
        let mut wire = Vec::new();
        for i in 0..50u8 {
            write_frame(&mut wire, &vec![i; i as usize * 7], 1 << 20).unwrap();
        }
        let mut d = FrameDecoder::new(1 << 20);
        let mut out = Vec::new();
        for b in &wire {
            d.extend(std::slice::from_ref(b));
            while let Some(f) = d.next_frame().unwrap() {
                out.push(f);
            }
        }
        assert_eq!(out.len(), 50);
        let mut d = FrameDecoder::new(1 << 20);
        let mut r = &wire[..];
        let mut n = 0;
        while d.read_from(&mut r).unwrap() > 0 {
            while let Some(f) = d.next_frame().unwrap() {
                assert_eq!(f, out[n]);
                n += 1;
            }
        }
        assert_eq!(n, 50);
        d.finish().unwrap();
    }

    /// A reader that hands out `data` and then reports `WouldBlock` (or end of stream), and
    /// records the largest buffer it was offered.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        largest_buf: usize,
        eof: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.largest_buf = self.largest_buf.max(buf.len());
            if self.at == self.data.len() {
                return if self.eof {
                    Ok(0)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
            let n = buf.len().min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn trickle(data: Vec<u8>, eof: bool) -> Trickle {
        Trickle {
            data,
            at: 0,
            largest_buf: 0,
            eof,
        }
    }

    #[test]
    fn a_claimed_length_costs_only_what_arrives() {
        let claim = 16 << 20;
        let mut wire = (claim as u32).to_be_bytes().to_vec();
        wire.push(7);
        // Blocking decoder: never offered a buffer near the claimed length.
        let mut r = trickle(wire.clone(), true);
        assert!(matches!(
            read_frame(&mut r, claim),
            Err(FrameError::Truncated { got: 5, .. })
        ));
        assert!(r.largest_buf <= READ_CHUNK, "{}", r.largest_buf);
        // Incremental decoder: keeps the five bytes, not 16 MiB.
        let mut d = FrameDecoder::new(claim);
        let mut r = trickle(wire, false);
        assert_eq!(d.read_from(&mut r).unwrap(), 5);
        assert!(d.read_from(&mut r).is_err());
        assert_eq!(d.pending(), 5);
        assert!(d.buf.capacity() < 1024, "{}", d.buf.capacity());
    }

    #[test]
    fn a_large_frame_grows_by_doubling_and_is_given_back() {
        let msg: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
        let wire = encode_frame(&msg, 4 << 20).unwrap();
        let mut r = trickle(wire.clone(), true);
        assert_eq!(read_frame(&mut r, 4 << 20).unwrap().unwrap(), msg);
        let mut d = FrameDecoder::new(4 << 20);
        let mut r = trickle(wire, true);
        let mut got = None;
        let mut largest = 0;
        while got.is_none() {
            let before = d.pending();
            let n = d.read_from(&mut r).unwrap();
            assert!(n > 0);
            assert!(
                n <= before.max(READ_CHUNK),
                "read {n} with {before} buffered"
            );
            largest = largest.max(d.buf.capacity());
            got = d.next_frame().unwrap();
        }
        assert_eq!(got.unwrap(), msg);
        assert!(largest < 2 * msg.len() + READ_CHUNK, "{largest}");
        assert!(d.buf.capacity() <= RETAINED);
        // A limit bounds one read.
        let mut d = FrameDecoder::new(100);
        let mut r = trickle(vec![0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9], true);
        assert_eq!(d.read_from_limit(&mut r, 3).unwrap(), 3);
        assert_eq!(d.pending(), 3);
    }
}
