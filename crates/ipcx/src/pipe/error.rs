//! [`PipeError`]: why a pipe or FIFO read or write failed.

use std::io;

use super::chunk::WriterId;
use super::reassembly::ReassemblyError;

/// Why a pipe or FIFO read or write failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipeError {
    /// `try_recv`: no whole message is waiting.
    #[error("no message waiting on {what}")]
    WouldBlock {
        /// The pipe or FIFO.
        what: String,
    },
    /// `try_send`: the pipe has no room for the frame now.
    #[error("{what} is full: retry later, or use a blocking send")]
    Full {
        /// The pipe or FIFO.
        what: String,
    },
    /// The deadline passed.
    #[error("timed out waiting on {what}")]
    Timeout {
        /// The pipe or FIFO.
        what: String,
    },
    /// Reading: every writer closed (end of stream). Writing: no reader is left (`EPIPE`).
    #[error("peer gone on {what}: {detail}")]
    PeerGone {
        /// The pipe or FIFO.
        what: String,
        /// Which side went away.
        detail: &'static str,
    },
    /// The message is longer than the maximum frame length.
    #[error(
        "message of {len} bytes exceeds the maximum frame length of {max} bytes on {what} (raise it on both ends or send smaller messages)"
    )]
    TooLarge {
        /// The message length.
        len: usize,
        /// The configured maximum.
        max: usize,
        /// The pipe or FIFO.
        what: String,
    },
    /// The frame is larger than `PIPE_BUF` and the writer's policy is
    /// [`LargeFrames::Refuse`](super::LargeFrames::Refuse): it could interleave with other writers' frames.
    #[error(
        "message of {len} bytes does not fit in one atomic pipe write on {what}: at most {max} bytes (PIPE_BUF {pipe_buf} minus the 4-byte header); send smaller messages, or choose LargeFrames::Chunk or LargeFrames::SingleWriter"
    )]
    NotAtomic {
        /// The message length.
        len: usize,
        /// The longest message accepted ([`MAX_ATOMIC_MESSAGE`](super::MAX_ATOMIC_MESSAGE)).
        max: usize,
        /// `PIPE_BUF`.
        pipe_buf: usize,
        /// The pipe or FIFO.
        what: String,
    },
    /// A received frame declared a length above the maximum: the stream cannot be resynchronised.
    #[error(
        "frame of {len} bytes from {what} exceeds the maximum frame length of {max} bytes (the peer sent a larger message, or is not speaking ipcx framing)"
    )]
    FrameTooLarge {
        /// The declared length.
        len: u64,
        /// The configured maximum.
        max: usize,
        /// The pipe or FIFO.
        what: String,
    },
    /// A message was left incomplete: the stream ended inside a frame, or (chunked messages) a
    /// writer closed, died or started another message in the middle of one; `what` then names
    /// the writer. The reader goes on with the next message.
    #[error("stream from {what} ended inside a frame: {got} of {expected} bytes arrived")]
    TruncatedFrame {
        /// Bytes the frame should have had (header included).
        expected: usize,
        /// Bytes that arrived.
        got: usize,
        /// The pipe or FIFO.
        what: String,
    },
    /// The reader stopped reading in the middle of a large frame (for
    /// [`FRAME_STALL_LIMIT`](crate::wait::FRAME_STALL_LIMIT)); this writer refuses further sends
    /// because the stream is inside a frame.
    #[error(
        "{what}: the reader stopped reading in the middle of a {len}-byte frame ({written} bytes written); the stream is torn, open a new writer"
    )]
    Torn {
        /// Bytes written of the interrupted frame.
        written: usize,
        /// The frame's length.
        len: usize,
        /// The pipe or FIFO.
        what: String,
    },
    /// Any other OS failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The reader dropped one writer's message, or the stream until every writer has closed,
    /// and goes on: the message would pass the cap on what the reader buffers, or the bytes are
    /// not a chunk this reader can use.
    #[error("dropped a message from {what}: {reason}")]
    Dropped {
        /// The pipe or FIFO, and the writer when known.
        what: String,
        /// Why.
        reason: String,
    },
}

impl PipeError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> PipeError {
        PipeError::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<PipeError> for io::Error {
    fn from(e: PipeError) -> io::Error {
        let kind = match &e {
            PipeError::WouldBlock { .. } | PipeError::Full { .. } => io::ErrorKind::WouldBlock,
            PipeError::Timeout { .. } => io::ErrorKind::TimedOut,
            PipeError::PeerGone { .. } => io::ErrorKind::BrokenPipe,
            PipeError::TooLarge { .. } | PipeError::NotAtomic { .. } => io::ErrorKind::InvalidInput,
            PipeError::TruncatedFrame { .. } => io::ErrorKind::UnexpectedEof,
            PipeError::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// A reassembly error as a [`PipeError`] on `what`, naming the writer where there is one.
pub(crate) fn reassembly_error(what: &str, e: ReassemblyError) -> PipeError {
    let name = |w: Option<WriterId>| match w {
        Some(w) => format!("{what} ({w})"),
        None => what.to_owned(),
    };
    match e {
        ReassemblyError::TooLarge { len, max, writer } => PipeError::FrameTooLarge {
            len,
            max,
            what: name(writer),
        },
        ReassemblyError::Truncated {
            expected,
            got,
            writer,
        } => PipeError::TruncatedFrame {
            expected,
            got,
            what: match writer {
                Some((w, cause)) => format!("{what} ({w}, {cause})"),
                None => what.to_owned(),
            },
        },
        ReassemblyError::OverBudget {
            len,
            max_buffered,
            writer,
        } => PipeError::Dropped {
            what: name(writer),
            reason: format!(
                "its {len} bytes would pass the limit of {max_buffered} bytes the reader holds for incomplete messages (raise max_buffered, or send smaller messages)"
            ),
        },
        e @ ReassemblyError::BadChunk(_) => PipeError::Dropped {
            what: what.to_owned(),
            reason: if e.loses_the_stream() {
                format!(
                    "{e}; the stream is out of step and is dropped until every writer has closed"
                )
            } else {
                format!("{e}; the chunk was skipped")
            },
        },
    }
}
