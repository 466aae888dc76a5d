//! The chunk format: how a message too large for one atomic pipe write travels through a pipe
//! or FIFO that several processes write to.
//!
//! A message whose frame fits in [`PIPE_BUF`] bytes is sent as a plain frame
//! (a 4-byte big-endian length, then the bytes: [`crate::framing`]) in one `write(2)`. A larger
//! one is cut into **chunks** of at most `PIPE_BUF` bytes each, every one written by one
//! `write(2)`, which the kernel keeps atomic: a chunk is in the pipe whole or not at all, even
//! when its writer is killed, so the reader never loses its place in the stream. Chunks of
//! different writers may interleave; the reader puts each writer's message back together
//! ([`super::reassembly`]).
//!
//! A chunk (all integers big-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | `0x8000_0000 \| n`: the marker bit, and `n`, the bytes of the chunk after these 4 |
//! | 4 | 1 | version: 1 |
//! | 5 | 3 | reserved, 0 |
//! | 8 | 8 | writer: pid namespace (inode of `/proc/self/ns/pid`; 0 if unknown) |
//! | 16 | 4 | writer: process id |
//! | 20 | 8 | writer: process start time (`/proc/PID/stat` field 22; 0 if unknown) |
//! | 28 | 4 | writer: serial number of the writing handle within its process |
//! | 32 | 4 | message sequence number (per writer) |
//! | 36 | 4 | message length (all chunks together) |
//! | 40 | 4 | offset of this chunk's bytes within the message |
//! | 44 | `n - 40` | the chunk's bytes |
//!
//! A plain frame's length never has the top bit set (frame lengths are limited to
//! [`MAX_PLAIN_LEN`]), so the first 4 bytes tell a chunk from a plain frame. The writer fields
//! together ([`WriterId`]) name one writing handle of one process, distinct across processes and
//! across time (a reused pid has another start time). A writer sends the chunks of a message in
//! order, and one message at a time.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use super::PIPE_BUF;

/// The marker bit of a chunk's first word.
pub const MARKER: u32 = 0x8000_0000;

/// The longest plain frame payload: lengths with the [`MARKER`] bit are chunks.
pub const MAX_PLAIN_LEN: usize = (MARKER - 1) as usize;

/// The chunk format version this code writes and reads.
pub const VERSION: u8 = 1;

/// Bytes of a chunk before its payload.
pub const HEADER_LEN: usize = 44;

/// The most payload one chunk carries: [`PIPE_BUF`] minus the header.
pub const MAX_PAYLOAD: usize = PIPE_BUF - HEADER_LEN;

/// One writing handle of one process: what a reader reassembles a message by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WriterId {
    /// The writer's pid namespace (inode of `/proc/self/ns/pid`), 0 if unknown.
    pub pid_ns: u64,
    /// The writer's process id, in its pid namespace.
    pub pid: u32,
    /// The writer's process start time (clock ticks since boot), 0 if unknown.
    pub start_time: u64,
    /// Which writing handle of that process.
    pub serial: u32,
}

impl fmt::Display for WriterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "writer pid {} (handle {})", self.pid, self.serial)
    }
}

static NEXT_SERIAL: AtomicU32 = AtomicU32::new(0);

impl WriterId {
    /// A new id for a writing handle of the calling process.
    pub fn new() -> WriterId {
        let pid = std::process::id();
        WriterId {
            pid_ns: own_pid_ns(),
            pid,
            start_time: crate::registry::process_start_time(pid as i32).unwrap_or(0),
            serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Whether this id was made by the calling process (a forked child must make its own).
    pub fn is_own(&self) -> bool {
        self.pid == std::process::id()
    }

    /// Whether the writer's process is known to be gone: it ran in this process's pid namespace
    /// (so its pid means the same here) and no process with that pid and start time exists.
    /// An id with an unknown namespace or start time is never known gone.
    pub fn is_known_gone(&self) -> bool {
        if self.pid_ns == 0 || self.start_time == 0 || self.pid_ns != own_pid_ns() {
            return false;
        }
        let Ok(pid) = i32::try_from(self.pid) else {
            return true;
        };
        match crate::registry::process_start_time(pid) {
            Some(start) => start != self.start_time,
            // Gone only when the process itself is: a /proc read that failed for another
            // reason (out of descriptors, say) proves nothing.
            None => std::fs::symlink_metadata(format!("/proc/{pid}"))
                .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound),
        }
    }
}

/// What a writing handle numbers its chunked messages with: its [`WriterId`] (made at the first
/// chunked message, and again after a fork) and the next message's sequence number.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MessageNumbers {
    writer: Option<WriterId>,
    seq: u32,
}

impl MessageNumbers {
    /// The writer id and sequence number for the next chunked message.
    pub(crate) fn next_message(&mut self) -> (WriterId, u32) {
        let writer = match self.writer {
            Some(w) if w.is_own() => w,
            _ => *self.writer.insert(WriterId::new()),
        };
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        (writer, seq)
    }
}

impl Default for WriterId {
    fn default() -> WriterId {
        WriterId::new()
    }
}

/// The inode of this process's pid namespace, 0 if it cannot be read.
fn own_pid_ns() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
}

/// A chunk's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    /// Who wrote it.
    pub writer: WriterId,
    /// The message's sequence number (per writer).
    pub seq: u32,
    /// The message's whole length.
    pub total: u32,
    /// Where this chunk's bytes go in the message.
    pub offset: u32,
}

/// Why bytes with the [`MARKER`] bit are not a chunk this code can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkFormatError {
    /// The declared chunk length is shorter than a header or longer than [`PIPE_BUF`]: these
    /// bytes are not a chunk, and the stream is out of step.
    BadLength {
        /// The chunk's whole length as declared (marker word included).
        len: usize,
    },
    /// Another version of the format (the chunk can be skipped: its length is known).
    Version {
        /// The version byte.
        version: u8,
    },
    /// The chunk's bytes reach past the message length it declares.
    OutOfBounds {
        /// The declared message length.
        total: u32,
        /// The chunk's offset.
        offset: u32,
        /// The chunk's payload length.
        len: usize,
    },
}

impl fmt::Display for ChunkFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkFormatError::BadLength { len } => write!(
                f,
                "a chunk header declares {len} bytes, outside {HEADER_LEN}..={PIPE_BUF}"
            ),
            ChunkFormatError::Version { version } => {
                write!(
                    f,
                    "chunk format version {version} (this reader knows {VERSION})"
                )
            }
            ChunkFormatError::OutOfBounds { total, offset, len } => write!(
                f,
                "a chunk of {len} bytes at offset {offset} reaches past its message's {total} bytes"
            ),
        }
    }
}

/// The whole length (marker word included) of the chunk whose first word is `word` (which has
/// the [`MARKER`] bit), checked to be a possible chunk length.
pub fn chunk_len(word: u32) -> Result<usize, ChunkFormatError> {
    let len = ((word & !MARKER) as usize).saturating_add(4);
    if !(HEADER_LEN..=PIPE_BUF).contains(&len) {
        return Err(ChunkFormatError::BadLength { len });
    }
    Ok(len)
}

/// Parses a whole chunk (`chunk.len()` as [`chunk_len`] gave): its header and payload.
pub fn decode_chunk(chunk: &[u8]) -> Result<(ChunkHeader, &[u8]), ChunkFormatError> {
    let be32 =
        |at: usize| u32::from_be_bytes([chunk[at], chunk[at + 1], chunk[at + 2], chunk[at + 3]]);
    let be64 = |at: usize| u64::from(be32(at)) << 32 | u64::from(be32(at + 4));
    if chunk.len() < HEADER_LEN || chunk.len() > PIPE_BUF {
        return Err(ChunkFormatError::BadLength { len: chunk.len() });
    }
    if chunk[4] != VERSION {
        return Err(ChunkFormatError::Version { version: chunk[4] });
    }
    let header = ChunkHeader {
        writer: WriterId {
            pid_ns: be64(8),
            pid: be32(16),
            start_time: be64(20),
            serial: be32(28),
        },
        seq: be32(32),
        total: be32(36),
        offset: be32(40),
    };
    let payload = &chunk[HEADER_LEN..];
    if u64::from(header.offset) + payload.len() as u64 > u64::from(header.total) {
        return Err(ChunkFormatError::OutOfBounds {
            total: header.total,
            offset: header.offset,
            len: payload.len(),
        });
    }
    Ok((header, payload))
}

/// Encodes one chunk into `out` (cleared first). `payload` holds at most [`MAX_PAYLOAD`] bytes.
pub fn encode_chunk(header: &ChunkHeader, payload: &[u8], out: &mut Vec<u8>) {
    assert!(
        payload.len() <= MAX_PAYLOAD,
        "chunk payload above MAX_PAYLOAD"
    );
    out.clear();
    let n = (HEADER_LEN - 4 + payload.len()) as u32;
    out.extend_from_slice(&(MARKER | n).to_be_bytes());
    out.extend_from_slice(&[VERSION, 0, 0, 0]);
    out.extend_from_slice(&header.writer.pid_ns.to_be_bytes());
    out.extend_from_slice(&header.writer.pid.to_be_bytes());
    out.extend_from_slice(&header.writer.start_time.to_be_bytes());
    out.extend_from_slice(&header.writer.serial.to_be_bytes());
    out.extend_from_slice(&header.seq.to_be_bytes());
    out.extend_from_slice(&header.total.to_be_bytes());
    out.extend_from_slice(&header.offset.to_be_bytes());
    out.extend_from_slice(payload);
}

/// Cuts `msg` into the chunks of message `seq` of `writer`, calling `each` with every encoded
/// chunk in order (each at most [`PIPE_BUF`] bytes). `msg` must be shorter than 4 GiB.
pub fn for_each_chunk<E>(
    writer: WriterId,
    seq: u32,
    msg: &[u8],
    mut each: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let total = u32::try_from(msg.len()).expect("message below 4 GiB");
    let mut buf = Vec::with_capacity(PIPE_BUF);
    for (i, part) in msg.chunks(MAX_PAYLOAD).enumerate() {
        let header = ChunkHeader {
            writer,
            seq,
            total,
            offset: (i * MAX_PAYLOAD) as u32,
        };
        encode_chunk(&header, part, &mut buf);
        each(&buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_and_fit_in_pipe_buf() {
        let writer = WriterId::new();
        let msg: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut back = Vec::new();
        for_each_chunk::<()>(writer, 5, &msg, |c| {
            assert!(c.len() <= PIPE_BUF);
            let word = u32::from_be_bytes(c[..4].try_into().unwrap());
            assert!(word & MARKER != 0);
            assert_eq!(chunk_len(word).unwrap(), c.len());
            let (h, p) = decode_chunk(c).unwrap();
            assert_eq!((h.writer, h.seq, h.total), (writer, 5, 10_000));
            assert_eq!(h.offset as usize, back.len());
            back.extend_from_slice(p);
            Ok(())
        })
        .unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn impossible_lengths_and_versions_are_refused() {
        assert!(chunk_len(MARKER).is_err());
        assert!(chunk_len(MARKER | (PIPE_BUF as u32 - 3)).is_err());
        assert!(chunk_len(u32::MAX).is_err());
        let mut c = Vec::new();
        let h = ChunkHeader {
            writer: WriterId::new(),
            seq: 0,
            total: 3,
            offset: 2,
        };
        encode_chunk(&h, b"ab", &mut c);
        assert!(matches!(
            decode_chunk(&c),
            Err(ChunkFormatError::OutOfBounds { .. })
        ));
        c[4] = 2;
        assert_eq!(
            decode_chunk(&c),
            Err(ChunkFormatError::Version { version: 2 })
        );
    }

    #[test]
    fn own_writer_is_alive() {
        let me = WriterId::new();
        assert!(me.is_own());
        assert!(!me.is_known_gone());
        assert_ne!(me.serial, WriterId::new().serial);
    }
}
