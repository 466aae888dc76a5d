//! Anonymous pipes: a one-way byte stream between related processes, with framed messages on
//! top.
//!
//! [`pipe()`] returns a [`PipeReader`] and a [`PipeWriter`], each owning one end (created with
//! `pipe2(O_CLOEXEC)`). Both implement [`std::io::Read`] / [`std::io::Write`] for raw bytes and
//! offer framed messages ([`crate::framing`]: a 4-byte big-endian length, then the bytes):
//! [`PipeWriter::send`] / [`PipeReader::recv`], with `try_` (never blocks) and `_timeout`
//! variants. The writer blocks while the pipe is full, the reader while it is empty. A pipe
//! is half-duplex: [`duplex()`] builds a two-way channel from two pipes.
//!
//! FIFOs ([`crate::fifo`]) hand out the same [`PipeReader`] / [`PipeWriter`] types.
//!
//! # Handing an end to a child process
//! * As its stdin or stdout: `Command::stdin(Stdio::from(reader))` (`From<PipeReader> for
//!   Stdio`, and the same for writers and [`DuplexEnd::into_stdio`]).
//! * At another descriptor number: [`pass_to_child`] makes the end appear as descriptor `n`
//!   (3 to 255) in the child; the child takes it with [`PipeReader::from_inherited`] /
//!   [`PipeWriter::from_inherited`].
//!
//! Drop the parent's copy of an end it gave away: a reader sees end of stream only once every
//! copy of the write end is closed.
//!
//! # Message atomicity with several writers, and writers that crash
//! The kernel writes at most `PIPE_BUF` (4096) bytes atomically: such a write is in the pipe
//! whole or not at all, even when its writer is killed in the middle of the call. A frame of up
//! to [`PIPE_BUF`] bytes, header included, always goes out in **one** `write(2)` call, as a
//! plain frame (4-byte big-endian length, then the bytes), so frames from several writers never
//! interleave. Larger messages follow the writer's [`LargeFrames`] policy:
//!
//! * [`LargeFrames::Refuse`] (the default for anonymous pipes): a frame above `PIPE_BUF` is
//!   refused with [`PipeError::NotAtomic`], which names the limit. Nothing is written.
//! * [`LargeFrames::Chunk`] (the default for writers that open a FIFO by path): the message
//!   is cut into chunks of at most `PIPE_BUF` bytes, each written atomically and carrying the
//!   writer's identity (process id and start time, handle), the message's sequence number, its
//!   length and the chunk's offset ([`chunk`] specifies the format). Chunks of several writers
//!   may interleave in the pipe; the reader puts each writer's message back together
//!   ([`reassembly`]). No lock is taken.
//! * [`LargeFrames::SingleWriter`]: the caller promises it is the only writer; a large message
//!   goes out as one plain frame in as many writes as needed (what programs that do not know
//!   the chunk format read).
//!
//! What a writer that crashes (or is killed) can and cannot do to the reader: with
//! [`LargeFrames::Chunk`] and small messages it can only leave an incomplete message of its
//! own, which the reader drops (reported as [`PipeError::TruncatedFrame`] naming the writer)
//! when that writer starts another message, when its process is found gone (checked before the
//! reader waits), or when every writer has closed. Every complete message of every other
//! writer arrives intact and in order. A writer that writes a plain frame larger than
//! `PIPE_BUF` (single-writer mode, or a program that does not chunk) and dies half-way leaves
//! the stream out of step: the reader sees the next bytes as the rest of that frame. A writer
//! that can open the pipe can also forge messages: the pipe's file mode is the trust boundary.
//!
//! A reader's memory grows with the bytes that arrived, never with a length a writer declares,
//! and what it holds for incomplete messages of all writers together is capped
//! ([`PipeReader::set_max_buffered`], default [`DEFAULT_MAX_BUFFERED`]): the message that would
//! pass the cap is dropped with [`PipeError::Dropped`] and the others go on.
//!
//! A send's deadline bounds the wait for a message to *start*: once its first bytes are out,
//! the writer finishes it, whatever the deadline, as long as the reader keeps making room (see
//! [`crate::wait::FRAME_STALL_LIMIT`]). When the reader stops reading for that long in the
//! middle of a chunked message, the send fails with [`PipeError::Timeout`] and the writer stays
//! usable (the reader drops the partial message when the next one starts); in the middle of a
//! single-writer plain frame the stream is torn: the writer reports [`PipeError::Torn`] and
//! refuses every later send.
//!
//! # Descriptor mode
//! The descriptors held by [`PipeReader`] and [`PipeWriter`] are in non-blocking mode; waiting
//! is done with `poll(2)`, so blocking, non-blocking and timeout operations all work on one
//! handle. Converting an end into an [`OwnedFd`] or a [`Stdio`] switches the descriptor back to
//! blocking mode (what other programs expect). The flag belongs to the open file description,
//! which `dup` and `fork` share.
//!
//! `SIGPIPE`: Rust programs ignore it, so writing to a pipe with no reader returns `EPIPE`,
//! reported as [`PipeError::PeerGone`]. A program that restores the default disposition is
//! killed instead.
//!
//! ```
//! use ipcx::pipe;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (mut rx, mut tx) = pipe::pipe()?;
//! tx.send(b"hello")?;
//! assert_eq!(rx.recv()?, b"hello");
//! drop(tx);
//! assert!(matches!(rx.recv(), Err(pipe::PipeError::PeerGone { .. })));
//! # Ok(()) }
//! ```
//!
//! # References
//! [pipe(7)](https://man7.org/linux/man-pages/man7/pipe.7.html),
//! [pipe(2)](https://man7.org/linux/man-pages/man2/pipe.2.html),
//! [write(2)](https://man7.org/linux/man-pages/man2/write.2.html) (atomic writes of up to
//! `PIPE_BUF` bytes)

pub mod chunk;
pub mod reassembly;

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::framing::{self, DEFAULT_MAX_FRAME_LEN};
use crate::sys;
use crate::sys::poll::poll_wait;
use crate::wait::Wait;
use chunk::{MessageNumbers, WriterId};
use reassembly::{Reassembler, ReassemblyError};

/// The largest write the kernel keeps atomic on a pipe or FIFO (4096 on Linux). A frame of up
/// to this many bytes, header included, never interleaves with frames of other writers.
pub const PIPE_BUF: usize = sys::pipe::PIPE_BUF;

/// Linux's default pipe capacity: a read that returns less has emptied the pipe.
const PIPE_DEFAULT_CAPACITY: usize = 64 * 1024;

/// The longest message that fits in one atomic frame: [`PIPE_BUF`] minus the frame header.
pub const MAX_ATOMIC_MESSAGE: usize = PIPE_BUF - framing::HEADER_LEN;

/// Default cap on what a reader holds for incomplete messages, all writers together: 64 MiB.
pub const DEFAULT_MAX_BUFFERED: usize = framing::DEFAULT_MAX_BUFFERED;

/// How often, at most, a reader looks whether the writers of its incomplete messages are gone.
const GONE_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// How many writers one such look covers at most.
const GONE_CHECK_LIMIT: usize = 256;

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
    /// [`LargeFrames::Refuse`]: it could interleave with other writers' frames.
    #[error(
        "message of {len} bytes does not fit in one atomic pipe write on {what}: at most {max} bytes (PIPE_BUF {pipe_buf} minus the 4-byte header); send smaller messages, or choose LargeFrames::Chunk or LargeFrames::SingleWriter"
    )]
    NotAtomic {
        /// The message length.
        len: usize,
        /// The longest message accepted ([`MAX_ATOMIC_MESSAGE`]).
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
    fn io(context: impl Into<String>, source: io::Error) -> PipeError {
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

/// How a writer sends messages whose frame is larger than [`PIPE_BUF`]; see the
/// [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LargeFrames {
    /// Refuse them with [`PipeError::NotAtomic`] (default for anonymous pipes).
    #[default]
    Refuse,
    /// Cut them into atomic chunks ([`chunk`]) that the reader reassembles per writer: safe
    /// with any number of writers, any of which may crash (default for FIFO writers opened by
    /// path). The reader must be an ipcx reader or speak the chunk format.
    Chunk,
    /// One plain frame in several writes. Only correct with a single writer; any reader of the
    /// plain framing reads it.
    SingleWriter,
}

/// Creates a pipe: `(reader, writer)`, both close-on-exec.
///
/// # References
/// [pipe2(2)](https://man7.org/linux/man-pages/man2/pipe2.2.html)
#[doc(alias = "pipe2")]
pub fn pipe() -> io::Result<(PipeReader, PipeWriter)> {
    let (r, w) = sys::pipe::pipe()?;
    Ok((
        PipeReader::wrap(r, "pipe".into()),
        PipeWriter::wrap(w, "pipe".into()),
    ))
}

/// The read end of a pipe or FIFO: raw bytes ([`Read`]) or framed messages ([`recv`](Self::recv)).
///
/// Do not mix raw reads and framed receives on one reader: bytes the frame decoder has
/// buffered are not visible to [`Read`].
pub struct PipeReader {
    fd: OwnedFd,
    dec: Reassembler,
    what: String,
    /// When the writers of incomplete messages were last looked at.
    gone_checked: Option<std::time::Instant>,
    /// Writers found gone with a message incomplete: dropped once the pipe has been emptied
    /// after they were found gone (their last chunks may still be in it until then).
    gone: Vec<WriterId>,
    /// The last read drained the pipe: wait with `poll` before reading again, instead of a
    /// read that would only say `EAGAIN` (a message exchange then costs poll + read, as with a
    /// blocking descriptor, not read + poll + read).
    drained: bool,
}

impl fmt::Debug for PipeReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeReader")
            .field("fd", &self.fd.as_raw_fd())
            .field("what", &self.what)
            .field("buffered", &self.dec.buffered())
            .finish()
    }
}

impl PipeReader {
    pub(crate) fn wrap(fd: OwnedFd, what: String) -> PipeReader {
        PipeReader {
            fd,
            dec: Reassembler::new(DEFAULT_MAX_FRAME_LEN, DEFAULT_MAX_BUFFERED),
            what,
            gone_checked: None,
            gone: Vec::new(),
            drained: false,
        }
    }

    /// Takes a pipe end this process inherited as descriptor `fd` (see [`pass_to_child`]).
    ///
    /// The descriptor is duplicated (close-on-exec) and checked to be a pipe or FIFO; `fd`
    /// itself stays open, untouched (closing a descriptor number the program might own
    /// elsewhere would not be safe).
    pub fn from_inherited(fd: RawFd) -> io::Result<PipeReader> {
        let owned = take_inherited(fd)?;
        Ok(PipeReader::wrap(owned, format!("inherited pipe fd {fd}")))
    }

    /// A second handle to the same read end (`dup`), with its own frame buffer.
    pub fn try_clone(&self) -> io::Result<PipeReader> {
        Ok(
            PipeReader::wrap(sys::pipe::dup(&self.fd)?, self.what.clone())
                .with_max_frame_len(self.max_frame_len())
                .with_max_buffered(self.max_buffered()),
        )
    }

    /// The longest frame [`recv`](Self::recv) accepts (default
    /// [`DEFAULT_MAX_FRAME_LEN`], 16 MiB).
    pub fn max_frame_len(&self) -> usize {
        self.dec.max_frame_len()
    }

    /// Sets the longest frame accepted; a longer one is [`PipeError::FrameTooLarge`], raised
    /// before allocating. Bytes already received are kept.
    pub fn set_max_frame_len(&mut self, max: usize) {
        self.dec.set_max_frame_len(max);
    }

    /// Builder form of [`set_max_frame_len`](Self::set_max_frame_len).
    pub fn with_max_frame_len(mut self, max: usize) -> PipeReader {
        self.set_max_frame_len(max);
        self
    }

    /// The most bytes held for incomplete messages, all writers together (default
    /// [`DEFAULT_MAX_BUFFERED`], 64 MiB).
    pub fn max_buffered(&self) -> usize {
        self.dec.max_buffered()
    }

    /// Sets the cap on bytes held for incomplete messages: the message that would pass it is
    /// dropped with [`PipeError::Dropped`], and the reader goes on.
    pub fn set_max_buffered(&mut self, max: usize) {
        self.dec.set_max_buffered(max);
    }

    /// Builder form of [`set_max_buffered`](Self::set_max_buffered).
    pub fn with_max_buffered(mut self, max: usize) -> PipeReader {
        self.set_max_buffered(max);
        self
    }

    /// Bytes this reader holds now: incomplete messages and bytes not yet taken apart.
    pub fn buffered(&self) -> usize {
        self.dec.buffered()
    }

    /// Receives one message, blocking until one arrives.
    ///
    /// # Errors
    /// [`PipeError::PeerGone`] at the end of the stream (every writer closed). Recoverable
    /// (call again for the next message): [`PipeError::TruncatedFrame`] when the stream ended
    /// inside a frame or a writer left a chunked message incomplete, [`PipeError::Dropped`],
    /// [`PipeError::FrameTooLarge`] (after a plain frame above the maximum, the stream is out of
    /// step: its bytes are dropped until every writer has closed).
    pub fn recv(&mut self) -> Result<Vec<u8>, PipeError> {
        self.recv_wait(Wait::Forever)
    }

    /// Receives one message if a whole one is waiting: [`PipeError::WouldBlock`] otherwise.
    pub fn try_recv(&mut self) -> Result<Vec<u8>, PipeError> {
        self.recv_wait(Wait::NoWait)
    }

    /// Receives one message, giving up with [`PipeError::Timeout`] after `timeout`. A frame
    /// partly received when the time runs out is kept for the next call.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, PipeError> {
        self.recv_wait(Wait::timeout(timeout))
    }

    /// Receives one message, waiting as `wait` allows.
    ///
    /// On a FIFO that no writer has opened yet, this waits for a writer (Linux reports no
    /// hang-up on a read end that has never had a writer).
    pub fn recv_wait(&mut self, wait: Wait) -> Result<Vec<u8>, PipeError> {
        loop {
            match self.dec.next() {
                Some(Ok(msg)) => return Ok(msg),
                Some(Err(e)) => return Err(self.reassembly_error(e)),
                None => {}
            }
            let mut emptied = false;
            if !self.drained || wait == Wait::NoWait || self.gone_check_due() {
                let mut src = FdRead(self.fd.as_fd());
                // Ok(0): no writer right now; WouldBlock: writers but no data. Either way,
                // poll: a hang-up means the end of the stream, and a FIFO that never had a
                // writer reports nothing until one writes.
                match self.dec.read_from(&mut src) {
                    Ok(0) => {}
                    Ok(n) => {
                        // A short read emptied the pipe (its buffer is at least 64 KiB).
                        self.drained = n < PIPE_DEFAULT_CAPACITY;
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => emptied = true,
                    Err(e) => return Err(PipeError::io(format!("reading {}", self.what), e)),
                }
            }
            if emptied && self.drop_gone_writers() {
                continue;
            }
            match poll_wait(self.fd.as_fd(), true, wait)
                .map_err(|e| PipeError::io(format!("polling {}", self.what), e))?
            {
                Some(ev) if ev.ready() => {
                    self.drained = false;
                    continue;
                }
                // Hang-up: no writer is left. Bytes may have arrived between the empty read
                // and the hang-up: deliver their frames first.
                Some(_) => {
                    if self.drain() > 0 {
                        continue;
                    }
                    self.dec.end_of_stream();
                    if let Some(item) = self.dec.next() {
                        return item.map_err(|e| self.reassembly_error(e));
                    }
                    return Err(PipeError::PeerGone {
                        what: self.what.clone(),
                        detail: "every writer closed the pipe (end of stream)",
                    });
                }
                None => {
                    return Err(match wait {
                        Wait::NoWait => PipeError::WouldBlock {
                            what: self.what.clone(),
                        },
                        _ => PipeError::Timeout {
                            what: self.what.clone(),
                        },
                    });
                }
            }
        }
    }

    /// Reads whatever is left in the pipe into the decoder; returns the bytes read.
    fn drain(&mut self) -> usize {
        let mut src = FdRead(self.fd.as_fd());
        let mut total = 0;
        while let Ok(n) = self.dec.read_from(&mut src) {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    }

    /// Whether it is time to look for writers that are gone with a message incomplete.
    fn gone_check_due(&self) -> bool {
        self.dec.has_partial_messages()
            && self
                .gone_checked
                .is_none_or(|t| t.elapsed() >= GONE_CHECK_INTERVAL)
    }

    /// Called when a read found the pipe empty: drops the incomplete messages of the writers
    /// found gone before that read (everything they wrote has been read by now), then looks
    /// for more (at most every [`GONE_CHECK_INTERVAL`]), to be dropped after the next read
    /// that finds the pipe empty. Returns whether the loop should go round again rather than
    /// wait: there is something to report, or a read to make.
    fn drop_gone_writers(&mut self) -> bool {
        for w in std::mem::take(&mut self.gone) {
            self.dec.drop_writer(w, reassembly::Cause::WriterGone);
        }
        if self.dec.has_pending_output() {
            return true;
        }
        if !self.gone_check_due() {
            return false;
        }
        self.gone_checked = Some(std::time::Instant::now());
        self.gone = self.dec.gone_writers(GONE_CHECK_LIMIT);
        if self.gone.is_empty() {
            return false;
        }
        self.drained = false;
        true
    }

    fn reassembly_error(&self, e: ReassemblyError) -> PipeError {
        reassembly_error(&self.what, e)
    }

    /// Reads raw bytes, waiting as `wait` allows. `Ok(0)` is the end of the stream.
    pub fn read_wait(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize, PipeError> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match sys::pipe::read(&self.fd, buf) {
                Ok(n) if n > 0 => return Ok(n),
                Ok(_) => {
                    // No writer now; on a FIFO that never had one, wait for one.
                    match poll_wait(self.fd.as_fd(), true, wait)
                        .map_err(|e| PipeError::io(format!("polling {}", self.what), e))?
                    {
                        Some(ev) if ev.ready() => continue,
                        Some(_) => return Ok(0),
                        None => return Err(self.timeout_error(wait, false)),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if poll_wait(self.fd.as_fd(), true, wait)
                        .map_err(|e| PipeError::io(format!("polling {}", self.what), e))?
                        .is_none()
                    {
                        return Err(self.timeout_error(wait, false));
                    }
                }
                Err(e) => return Err(PipeError::io(format!("reading {}", self.what), e)),
            }
        }
    }

    fn timeout_error(&self, wait: Wait, write: bool) -> PipeError {
        let what = self.what.clone();
        match (wait, write) {
            (Wait::NoWait, false) => PipeError::WouldBlock { what },
            (Wait::NoWait, true) => PipeError::Full { what },
            _ => PipeError::Timeout { what },
        }
    }

    /// The pipe's capacity in bytes (`F_GETPIPE_SZ`).
    pub fn capacity(&self) -> io::Result<usize> {
        sys::pipe::pipe_size(&self.fd)
    }

    /// Sets the pipe's capacity (`F_SETPIPE_SZ`); returns the capacity the kernel chose
    /// (rounded up to a power-of-two number of pages; unprivileged callers are limited by
    /// `/proc/sys/fs/pipe-max-size`).
    pub fn set_capacity(&self, bytes: usize) -> io::Result<usize> {
        sys::pipe::set_pipe_size(&self.fd, bytes)
    }

    /// What this reads from, as used in error messages (`pipe`, `fifo:/path`).
    pub fn describe(&self) -> &str {
        &self.what
    }

    /// An async reader (feature `tokio`; needs a tokio runtime with I/O enabled).
    #[cfg(feature = "tokio")]
    pub fn into_async(self) -> io::Result<AsyncPipeReader> {
        let dec = Reassembler::new(self.max_frame_len(), self.max_buffered());
        let what = self.what;
        let inner = tokio::net::unix::pipe::Receiver::from_owned_fd(self.fd)?;
        Ok(AsyncPipeReader { inner, dec, what })
    }
}

/// A reassembly error as a [`PipeError`] on `what`, naming the writer where there is one.
fn reassembly_error(what: &str, e: ReassemblyError) -> PipeError {
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

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_wait(buf, Wait::Forever).map_err(io::Error::from)
    }
}

/// The write end of a pipe or FIFO: raw bytes ([`Write`]) or framed messages
/// ([`send`](Self::send)).
pub struct PipeWriter {
    fd: OwnedFd,
    max: usize,
    large: LargeFrames,
    torn: Option<(usize, usize)>,
    what: String,
    /// Chunked messages: this handle's identity and the next message's sequence number.
    numbers: MessageNumbers,
}

impl fmt::Debug for PipeWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeWriter")
            .field("fd", &self.fd.as_raw_fd())
            .field("what", &self.what)
            .field("large_frames", &self.large)
            .finish()
    }
}

impl PipeWriter {
    pub(crate) fn wrap(fd: OwnedFd, what: String) -> PipeWriter {
        PipeWriter {
            fd,
            max: DEFAULT_MAX_FRAME_LEN,
            large: LargeFrames::Refuse,
            torn: None,
            what,
            numbers: MessageNumbers::default(),
        }
    }

    /// Takes a pipe end this process inherited as descriptor `fd` (see [`pass_to_child`]).
    /// Like [`PipeReader::from_inherited`], `fd` itself stays open.
    pub fn from_inherited(fd: RawFd) -> io::Result<PipeWriter> {
        let owned = take_inherited(fd)?;
        Ok(PipeWriter::wrap(owned, format!("inherited pipe fd {fd}")))
    }

    /// A second handle to the same write end (`dup`), with the same settings: for handing
    /// the end to several children ([`pass_to_child`]). The copy is a writer of its own for
    /// chunked messages ([`LargeFrames::Chunk`]).
    pub fn try_clone(&self) -> io::Result<PipeWriter> {
        Ok(PipeWriter {
            fd: sys::pipe::dup(&self.fd)?,
            max: self.max,
            large: self.large,
            torn: self.torn,
            what: self.what.clone(),
            numbers: MessageNumbers::default(),
        })
    }

    /// The longest message [`send`](Self::send) accepts (default [`DEFAULT_MAX_FRAME_LEN`]).
    pub fn max_frame_len(&self) -> usize {
        self.max
    }

    /// Sets the longest message accepted.
    pub fn set_max_frame_len(&mut self, max: usize) {
        self.max = max;
    }

    /// Builder form of [`set_max_frame_len`](Self::set_max_frame_len).
    pub fn with_max_frame_len(mut self, max: usize) -> PipeWriter {
        self.max = max;
        self
    }

    /// How frames above [`PIPE_BUF`] are sent.
    pub fn large_frames(&self) -> LargeFrames {
        self.large
    }

    /// Sets how frames above [`PIPE_BUF`] are sent (see the [module documentation](self)).
    pub fn set_large_frames(&mut self, policy: LargeFrames) {
        self.large = policy;
    }

    /// Builder form of [`set_large_frames`](Self::set_large_frames).
    pub fn with_large_frames(mut self, policy: LargeFrames) -> PipeWriter {
        self.large = policy;
        self
    }

    /// Sends one message, blocking while the pipe is full.
    ///
    /// # Errors
    /// [`PipeError::PeerGone`] when no reader is left, [`PipeError::TooLarge`],
    /// [`PipeError::NotAtomic`] (see [`LargeFrames`]).
    pub fn send(&mut self, msg: &[u8]) -> Result<(), PipeError> {
        self.send_wait(msg, Wait::Forever)
    }

    /// Sends one message if the pipe has room for it now: [`PipeError::Full`] otherwise.
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), PipeError> {
        self.send_wait(msg, Wait::NoWait)
    }

    /// Sends one message, giving up with [`PipeError::Timeout`] after `timeout`.
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), PipeError> {
        self.send_wait(msg, Wait::timeout(timeout))
    }

    /// Sends one message, waiting as `wait` allows. A frame of up to [`PIPE_BUF`] bytes is
    /// written in one `write(2)`: all of it or nothing. A larger one follows the
    /// [`LargeFrames`] policy.
    pub fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), PipeError> {
        if let Some((written, len)) = self.torn {
            return Err(PipeError::Torn {
                written,
                len,
                what: self.what.clone(),
            });
        }
        // Lengths with the top bit mark chunks: a plain frame stays below.
        let max = self.max.min(chunk::MAX_PLAIN_LEN);
        if msg.len() > max {
            return Err(PipeError::TooLarge {
                len: msg.len(),
                max,
                what: self.what.clone(),
            });
        }
        if framing::HEADER_LEN + msg.len() > PIPE_BUF {
            match self.large {
                LargeFrames::Chunk => return self.send_chunked(msg, wait),
                LargeFrames::SingleWriter => {}
                _ => {
                    return Err(PipeError::NotAtomic {
                        len: msg.len(),
                        max: MAX_ATOMIC_MESSAGE,
                        pipe_buf: PIPE_BUF,
                        what: self.what.clone(),
                    });
                }
            }
        }
        let frame = framing::encode_frame(msg, max).map_err(|_| PipeError::TooLarge {
            len: msg.len(),
            max,
            what: self.what.clone(),
        })?;
        self.write_frame(&frame, wait)
    }

    /// Sends a large message as atomic chunks ([`chunk`]). Once the first chunk is out, the
    /// rest follows as long as the reader makes room; a reader that stalls makes the send fail
    /// with the message incomplete, which the reader drops when this writer's next message
    /// starts.
    fn send_chunked(&mut self, msg: &[u8], wait: Wait) -> Result<(), PipeError> {
        let (writer, seq) = self.numbers.next_message();
        let mut started = false;
        chunk::for_each_chunk(writer, seq, msg, |c| {
            let w = if started {
                wait.for_frame_remainder()
            } else {
                wait
            };
            let res = self.write_frame(c, w);
            started = true;
            res
        })
    }

    /// Writes a whole frame or chunk; one of up to [`PIPE_BUF`] bytes in a single write call.
    fn write_frame(&mut self, frame: &[u8], wait: Wait) -> Result<(), PipeError> {
        let mut written = 0;
        while written < frame.len() {
            match sys::pipe::write(&self.fd, &frame[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // A started frame is finished (see `wait::FRAME_STALL_LIMIT`).
                    let w = if written == 0 {
                        wait
                    } else {
                        wait.for_frame_remainder()
                    };
                    let ev = poll_wait(self.fd.as_fd(), false, w)
                        .map_err(|e| PipeError::io(format!("polling {}", self.what), e))?;
                    if ev.is_none() {
                        if written > 0 {
                            self.torn = Some((written, frame.len()));
                            return Err(PipeError::Torn {
                                written,
                                len: frame.len(),
                                what: self.what.clone(),
                            });
                        }
                        return Err(if wait == Wait::NoWait {
                            PipeError::Full {
                                what: self.what.clone(),
                            }
                        } else {
                            PipeError::Timeout {
                                what: self.what.clone(),
                            }
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    return Err(PipeError::PeerGone {
                        what: self.what.clone(),
                        detail: "no reader is left (EPIPE)",
                    });
                }
                Err(e) => return Err(PipeError::io(format!("writing {}", self.what), e)),
            }
        }
        Ok(())
    }

    /// Writes raw bytes, waiting as `wait` allows; returns how many were written (at least
    /// one).
    pub fn write_wait(&mut self, buf: &[u8], wait: Wait) -> Result<usize, PipeError> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match sys::pipe::write(&self.fd, buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let ev = poll_wait(self.fd.as_fd(), false, wait)
                        .map_err(|e| PipeError::io(format!("polling {}", self.what), e))?;
                    if ev.is_none() {
                        let what = self.what.clone();
                        return Err(if wait == Wait::NoWait {
                            PipeError::Full { what }
                        } else {
                            PipeError::Timeout { what }
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    return Err(PipeError::PeerGone {
                        what: self.what.clone(),
                        detail: "no reader is left (EPIPE)",
                    });
                }
                Err(e) => return Err(PipeError::io(format!("writing {}", self.what), e)),
            }
        }
    }

    /// The pipe's capacity in bytes (`F_GETPIPE_SZ`).
    pub fn capacity(&self) -> io::Result<usize> {
        sys::pipe::pipe_size(&self.fd)
    }

    /// Sets the pipe's capacity (`F_SETPIPE_SZ`); returns the capacity the kernel chose.
    pub fn set_capacity(&self, bytes: usize) -> io::Result<usize> {
        sys::pipe::set_pipe_size(&self.fd, bytes)
    }

    /// What this writes to, as used in error messages.
    pub fn describe(&self) -> &str {
        &self.what
    }

    /// An async writer (feature `tokio`; needs a tokio runtime with I/O enabled), with this
    /// writer's [`LargeFrames`] policy.
    #[cfg(feature = "tokio")]
    pub fn into_async(self) -> io::Result<AsyncPipeWriter> {
        let inner = tokio::net::unix::pipe::Sender::from_owned_fd(self.fd)?;
        Ok(AsyncPipeWriter {
            inner,
            max: self.max,
            large: self.large,
            what: self.what,
            numbers: self.numbers,
        })
    }
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_wait(buf, Wait::Forever).map_err(io::Error::from)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `Read` over a borrowed descriptor, for [`FrameDecoder::read_from`].
struct FdRead<'a>(BorrowedFd<'a>);

impl Read for FdRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        sys::pipe::read(self.0, buf)
    }
}

fn take_inherited(fd: RawFd) -> io::Result<OwnedFd> {
    let owned = sys::pipe::dup_inherited(fd)?;
    if !sys::pipe::is_pipe(&owned)? {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {fd} is not a pipe or FIFO"),
        ));
    }
    sys::pipe::set_nonblocking(&owned, true)?;
    Ok(owned)
}

/// Makes `end` (any pipe end, or any descriptor) appear as descriptor `target` (3 to 255) in
/// the child that `cmd` spawns. The child takes it with [`PipeReader::from_inherited`] or
/// [`PipeWriter::from_inherited`]. The parent's copy lives in `cmd` until `cmd` is dropped.
///
/// Several calls on one `Command` with different targets are fine; a later call with the
/// same target wins. Descriptors 0, 1 and 2 are refused: use [`Stdio`] for those.
///
/// ```no_run
/// use std::process::Command;
/// # fn main() -> std::io::Result<()> {
/// let (mut rx, tx) = ipcx::pipe::pipe()?;
/// let mut cmd = Command::new("sh");
/// cmd.args(["-c", "printf '\\000\\000\\000\\002hi' >&3"]);
/// ipcx::pipe::pass_to_child(&mut cmd, tx, 3)?;
/// let mut child = cmd.spawn()?;
/// drop(cmd); // closes the parent's copy of the write end
/// assert_eq!(rx.recv().unwrap(), b"hi");
/// child.wait()?;
/// # Ok(()) }
/// ```
pub fn pass_to_child(cmd: &mut Command, end: impl Into<OwnedFd>, target: RawFd) -> io::Result<()> {
    sys::pipe::map_fd_into_child(cmd, end.into(), target)
}

macro_rules! fd_traits {
    ($t:ident) => {
        impl AsFd for $t {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.fd.as_fd()
            }
        }
        impl AsRawFd for $t {
            fn as_raw_fd(&self) -> RawFd {
                self.fd.as_raw_fd()
            }
        }
        /// Switches the descriptor back to blocking mode (what other programs expect).
        impl From<$t> for OwnedFd {
            fn from(end: $t) -> OwnedFd {
                let _ = sys::pipe::set_nonblocking(&end.fd, false);
                end.fd
            }
        }
        /// Puts the descriptor in non-blocking mode (see the module documentation).
        impl From<OwnedFd> for $t {
            fn from(fd: OwnedFd) -> $t {
                let _ = sys::pipe::set_nonblocking(&fd, true);
                $t::wrap(fd, "pipe".into())
            }
        }
        /// For a child's stdin or stdout; the descriptor is switched to blocking mode.
        impl From<$t> for Stdio {
            fn from(end: $t) -> Stdio {
                Stdio::from(OwnedFd::from(end))
            }
        }
    };
}

fd_traits!(PipeReader);
fd_traits!(PipeWriter);

/// One end of a two-way channel made of two pipes: reads what the other end writes and vice
/// versa. See [`duplex()`].
#[derive(Debug)]
pub struct DuplexEnd {
    /// The receiving half.
    pub reader: PipeReader,
    /// The sending half.
    pub writer: PipeWriter,
}

/// Creates a two-way channel from two pipes: whatever one end writes, the other reads.
///
/// ```
/// use std::io::{Read, Write};
/// # fn main() -> std::io::Result<()> {
/// let (mut a, mut b) = ipcx::pipe::duplex()?;
/// a.write_all(b"ping")?;
/// let mut buf = [0; 4];
/// b.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"ping");
/// b.send(b"pong").unwrap();
/// assert_eq!(a.recv().unwrap(), b"pong");
/// # Ok(()) }
/// ```
pub fn duplex() -> io::Result<(DuplexEnd, DuplexEnd)> {
    let (r1, w1) = pipe()?;
    let (r2, w2) = pipe()?;
    Ok((
        DuplexEnd {
            reader: r1,
            writer: w2,
        },
        DuplexEnd {
            reader: r2,
            writer: w1,
        },
    ))
}

impl DuplexEnd {
    /// Sends one message to the other end (see [`PipeWriter::send`]).
    pub fn send(&mut self, msg: &[u8]) -> Result<(), PipeError> {
        self.writer.send(msg)
    }
    /// Sends one message, waiting as `wait` allows.
    pub fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), PipeError> {
        self.writer.send_wait(msg, wait)
    }
    /// Receives one message from the other end (see [`PipeReader::recv`]).
    pub fn recv(&mut self) -> Result<Vec<u8>, PipeError> {
        self.reader.recv()
    }
    /// Receives one message, waiting as `wait` allows.
    pub fn recv_wait(&mut self, wait: Wait) -> Result<Vec<u8>, PipeError> {
        self.reader.recv_wait(wait)
    }
    /// The two halves.
    pub fn into_parts(self) -> (PipeReader, PipeWriter) {
        (self.reader, self.writer)
    }
    /// For a child process: `(stdin, stdout)`, so the child reads this end's input on stdin
    /// and writes this end's output on stdout.
    pub fn into_stdio(self) -> (Stdio, Stdio) {
        (Stdio::from(self.reader), Stdio::from(self.writer))
    }
}

impl Read for DuplexEnd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

impl Write for DuplexEnd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "tokio")]
pub use self::async_pipe::{AsyncPipeReader, AsyncPipeWriter};

#[cfg(feature = "tokio")]
mod async_pipe {
    use std::io;
    use std::os::fd::AsFd;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio::net::unix::pipe;

    use super::chunk::{self, MessageNumbers};
    use super::reassembly::Reassembler;
    use super::{LargeFrames, MAX_ATOMIC_MESSAGE, PIPE_BUF, PipeError};
    use crate::framing;

    /// The async read end of a pipe or FIFO (feature `tokio`): [`AsyncRead`] for raw bytes,
    /// [`recv`](Self::recv) for framed messages.
    ///
    /// On a FIFO that has not had a writer yet, [`recv`](Self::recv) waits for one (as the
    /// blocking reader does); [`AsyncRead`] reports end of stream instead.
    #[derive(Debug)]
    pub struct AsyncPipeReader {
        pub(super) inner: pipe::Receiver,
        pub(super) dec: Reassembler,
        pub(super) what: String,
    }

    impl AsyncPipeReader {
        /// Receives one message. Cancel-safe: a partly received frame stays buffered.
        ///
        /// # Errors
        /// As [`super::PipeReader::recv`].
        pub async fn recv(&mut self) -> Result<Vec<u8>, PipeError> {
            loop {
                match self.dec.next() {
                    Some(Ok(m)) => return Ok(m),
                    Some(Err(e)) => return Err(super::reassembly_error(&self.what, e)),
                    None => {}
                }
                self.inner.readable().await.map_err(|e| PipeError::Io {
                    context: format!("waiting on {}", self.what),
                    source: e,
                })?;
                let fd = self.inner.as_fd();
                let dec = &mut self.dec;
                let res = self
                    .inner
                    .try_io(|| match dec.read_from(&mut super::FdRead(fd)) {
                        Ok(0) => {
                            // No writer now. A hang-up is the end of the stream; no hang-up means
                            // a FIFO that has not had a writer yet: wait for one (WouldBlock
                            // clears tokio's readiness).
                            let ev = crate::sys::poll::poll(fd, true, false, 0)?;
                            if ev.ready() {
                                Err(io::ErrorKind::Interrupted.into())
                            } else if ev.hup || ev.err {
                                Ok(0)
                            } else {
                                Err(io::ErrorKind::WouldBlock.into())
                            }
                        }
                        other => other,
                    });
                match res {
                    Ok(0) => {
                        self.dec.end_of_stream();
                        if let Some(item) = self.dec.next() {
                            return item.map_err(|e| super::reassembly_error(&self.what, e));
                        }
                        return Err(PipeError::PeerGone {
                            what: self.what.clone(),
                            detail: "every writer closed the pipe (end of stream)",
                        });
                    }
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) => {}
                    Err(e) => {
                        return Err(PipeError::Io {
                            context: format!("reading {}", self.what),
                            source: e,
                        });
                    }
                }
            }
        }

        /// The tokio pipe receiver underneath.
        pub fn get_ref(&self) -> &pipe::Receiver {
            &self.inner
        }
    }

    impl AsyncRead for AsyncPipeReader {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
        }
    }

    /// The async write end of a pipe or FIFO (feature `tokio`): [`AsyncWrite`] for raw bytes,
    /// [`send`](Self::send) for framed messages.
    #[derive(Debug)]
    pub struct AsyncPipeWriter {
        pub(super) inner: pipe::Sender,
        pub(super) max: usize,
        pub(super) large: LargeFrames,
        pub(super) what: String,
        pub(super) numbers: MessageNumbers,
    }

    impl AsyncPipeWriter {
        /// Sends one message. A frame of up to [`PIPE_BUF`] bytes goes out in one write; a
        /// larger one follows the writer's [`LargeFrames`] policy.
        ///
        /// Not cancel-safe for messages above `PIPE_BUF`: dropping the future mid-message
        /// leaves it incomplete (chunked: the reader drops it when this writer's next message
        /// starts; single-writer: the stream is left inside a frame).
        pub async fn send(&mut self, msg: &[u8]) -> Result<(), PipeError> {
            let max = self.max.min(chunk::MAX_PLAIN_LEN);
            let frame = framing::encode_frame(msg, max).map_err(|_| PipeError::TooLarge {
                len: msg.len(),
                max,
                what: self.what.clone(),
            })?;
            if frame.len() > PIPE_BUF {
                match self.large {
                    LargeFrames::SingleWriter => {}
                    LargeFrames::Chunk => return self.send_chunked(msg).await,
                    _ => {
                        return Err(PipeError::NotAtomic {
                            len: msg.len(),
                            max: MAX_ATOMIC_MESSAGE,
                            pipe_buf: PIPE_BUF,
                            what: self.what.clone(),
                        });
                    }
                }
            }
            self.write_all(&frame).await
        }

        /// Sends a large message as atomic chunks (see [`super::PipeWriter`]).
        async fn send_chunked(&mut self, msg: &[u8]) -> Result<(), PipeError> {
            let (writer, seq) = self.numbers.next_message();
            let mut chunks = Vec::new();
            chunk::for_each_chunk::<()>(writer, seq, msg, |c| {
                chunks.push(c.to_vec());
                Ok(())
            })
            .expect("collecting chunks does not fail");
            for c in &chunks {
                self.write_all(c).await?;
            }
            Ok(())
        }

        /// Writes all of `frame`; one of up to `PIPE_BUF` bytes in a single write.
        async fn write_all(&mut self, frame: &[u8]) -> Result<(), PipeError> {
            let mut written = 0;
            while written < frame.len() {
                self.inner.writable().await.map_err(|e| PipeError::Io {
                    context: format!("waiting on {}", self.what),
                    source: e,
                })?;
                match self.inner.try_write(&frame[written..]) {
                    Ok(n) => written += n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) => {}
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                        return Err(PipeError::PeerGone {
                            what: self.what.clone(),
                            detail: "no reader is left (EPIPE)",
                        });
                    }
                    Err(e) => {
                        return Err(PipeError::Io {
                            context: format!("writing {}", self.what),
                            source: e,
                        });
                    }
                }
            }
            Ok(())
        }

        /// The tokio pipe sender underneath.
        pub fn get_ref(&self) -> &pipe::Sender {
            &self.inner
        }
    }

    impl AsyncWrite for AsyncPipeWriter {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
        }
        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_flush(cx)
        }
        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
        }
    }
}
