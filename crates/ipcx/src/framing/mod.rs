//! Length-prefixed framing: turns byte streams (pipes, FIFOs, Unix stream sockets, TCP) into
//! messages.
//!
//! Each message is a 4-byte big-endian unsigned length followed by that many bytes. This is the
//! default layout of tokio-util's `LengthDelimitedCodec`, so any tokio program reads ipcx frames
//! with the stock codec, and a Python program with `struct.unpack(">I", ...)`.
//!
//! Every decoder treats its input as hostile: a length above the configured maximum (default
//! [`DEFAULT_MAX_FRAME_LEN`], 16 MiB) is rejected with [`FrameError::TooLarge`] before anything is
//! allocated, and a stream that ends inside a frame is [`FrameError::Truncated`], never a silent
//! drop.
//!
//! Two decoders share these rules: [`read_frame`] for a blocking [`Read`], and [`FrameDecoder`],
//! an incremental decoder fed with whatever bytes have arrived (for non-blocking sockets and for
//! servers that multiplex many connections).
//!
//! The stream sockets send and receive frames through one type, [`FramedStream`], generic over
//! the socket; with the `tokio` feature, [`AsyncFramed`] does the same over any tokio stream.
//! Pipes and FIFOs use the same frames, with the atomicity and chunking rules of
//! [`crate::pipe`].

#[cfg(feature = "tokio")]
mod async_stream;
mod decoder;
mod stream;

use std::io::{self, Read, Write};

#[cfg(feature = "tokio")]
pub use async_stream::AsyncFramed;
pub use decoder::FrameDecoder;
pub use stream::{FramedError, FramedStream};
pub(crate) use stream::{framed_methods, send_all};

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 4;

/// Default maximum frame length: 16 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 << 20;

/// Default cap on what one receiver holds for incomplete messages of all its peers together:
/// 64 MiB.
pub const DEFAULT_MAX_BUFFERED: usize = 64 << 20;

/// A framing failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame's length is above the maximum. Raised before allocating.
    #[error(
        "frame of {len} bytes exceeds the maximum frame length of {max} bytes (raise the maximum on both ends or send smaller messages)"
    )]
    TooLarge {
        /// The length the frame declared (or the sender tried to send).
        len: u64,
        /// The configured maximum.
        max: usize,
    },
    /// The stream ended inside a frame.
    #[error(
        "stream ended inside a frame: {got} of {expected} bytes arrived (the peer closed or died mid-message)"
    )]
    Truncated {
        /// Bytes the frame (header included) should have had.
        expected: usize,
        /// Bytes that arrived.
        got: usize,
    },
    /// The underlying stream failed.
    #[error("stream I/O failed: {0}")]
    Io(#[from] io::Error),
}

/// Encodes the header for a payload of `len` bytes, checking it against `max`.
pub fn encode_header(len: usize, max: usize) -> Result<[u8; HEADER_LEN], FrameError> {
    let too_large = FrameError::TooLarge {
        len: len as u64,
        max: max.min(u32::MAX as usize),
    };
    if len > max {
        return Err(too_large);
    }
    let len = u32::try_from(len).map_err(|_| too_large)?;
    Ok(len.to_be_bytes())
}

/// Encodes one frame (header and payload) into a new buffer.
pub fn encode_frame(msg: &[u8], max: usize) -> Result<Vec<u8>, FrameError> {
    let header = encode_header(msg.len(), max)?;
    let mut frame = Vec::with_capacity(HEADER_LEN + msg.len());
    frame.extend_from_slice(&header);
    frame.extend_from_slice(msg);
    Ok(frame)
}

/// Writes one frame.
///
/// The header and payload go out in a single `write(2)` call when the frame fits in one, so a
/// frame of up to `PIPE_BUF` bytes written to a pipe or FIFO is atomic: frames from several
/// writers never interleave. (Callers that need that guarantee for larger frames must refuse
/// them or serialise writers; see [`crate::pipe`].)
pub fn write_frame<W: Write + ?Sized>(w: &mut W, msg: &[u8], max: usize) -> Result<(), FrameError> {
    let frame = encode_frame(msg, max)?;
    w.write_all(&frame)?;
    Ok(())
}

/// Parses a frame header: the payload length, checked against `max`.
pub fn decode_header(header: [u8; HEADER_LEN], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as u64;
    if len > max as u64 {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len as usize)
}

/// Reads one frame from a blocking stream.
///
/// Returns `Ok(None)` on a clean end of stream (between frames), the payload otherwise. The
/// payload buffer grows as bytes arrive (doubling, capped by the declared length): a peer that
/// declares a large frame and sends little costs little memory.
pub fn read_frame<R: Read + ?Sized>(r: &mut R, max: usize) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    let got = read_full(r, &mut header)?;
    if got == 0 {
        return Ok(None);
    }
    if got < HEADER_LEN {
        return Err(FrameError::Truncated {
            expected: HEADER_LEN,
            got,
        });
    }
    let len = decode_header(header, max)?;
    let mut payload = Vec::with_capacity(len.min(READ_CHUNK));
    loop {
        if payload.len() == len {
            return Ok(Some(payload));
        }
        if payload.len() == payload.capacity() {
            // Double what has arrived, never past the declared length.
            payload.reserve_exact(payload.len().max(READ_CHUNK).min(len - payload.len()));
        }
        let old = payload.len();
        let room = payload.capacity().min(len) - old;
        payload.resize(old + room, 0);
        match r.read(&mut payload[old..]) {
            Ok(0) => {
                payload.truncate(old);
                return Err(FrameError::Truncated {
                    expected: HEADER_LEN + len,
                    got: HEADER_LEN + old,
                });
            }
            Ok(n) => payload.truncate(old + n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => payload.truncate(old),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Bytes read per call while no large frame is in progress (through a chunk on the stack), and
/// the smallest step a payload buffer grows by.
const READ_CHUNK: usize = 64 * 1024;

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
