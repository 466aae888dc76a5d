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
//! # Message atomicity with several writers
//! The kernel writes at most `PIPE_BUF` (4096) bytes atomically. A frame of up to [`PIPE_BUF`]
//! bytes, header included, always goes out in **one** `write(2)` call, so frames from several
//! writers never interleave. Larger frames follow the writer's [`LargeFrames`] policy:
//!
//! * [`LargeFrames::Refuse`] (the default for anonymous pipes): a frame above `PIPE_BUF` is
//!   refused with [`PipeError::NotAtomic`], which names the limit. Nothing is written.
//! * [`LargeFrames::Lock`] (the default for writers that open a FIFO by path): every frame is
//!   written under `flock(2)` on the FIFO: a shared lock for frames up to `PIPE_BUF`, an
//!   exclusive lock for larger ones, so a large frame is never interleaved with a frame from
//!   another ipcx writer. `flock` locks belong to an open file description, so this only
//!   excludes writers that opened the FIFO themselves (not copies of one descriptor inherited
//!   across `fork`), and writers that do not take the lock (a shell `printf`) are not
//!   excluded.
//! * [`LargeFrames::SingleWriter`]: the caller promises it is the only writer; large frames
//!   are written in as many calls as needed, without a lock.
//!
//! A send's deadline bounds the wait for a frame to *start*: once the first bytes of a frame
//! larger than `PIPE_BUF` are out, the writer finishes the frame, whatever the deadline, as long
//! as the reader keeps making room (see [`crate::wait::FRAME_STALL_LIMIT`]). Only a reader that
//! stops reading in the middle of a frame for that long leaves the stream torn: the writer then
//! reports [`PipeError::Torn`] and refuses every later send (the reader will see a truncated
//! frame).
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
//! [flock(2)](https://man7.org/linux/man-pages/man2/flock.2.html)

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use crate::framing::{self, DEFAULT_MAX_FRAME_LEN, FrameDecoder, FrameError};
use crate::sys;
use crate::wait::{Wait, poll_wait};

/// The largest write the kernel keeps atomic on a pipe or FIFO (4096 on Linux). A frame of up
/// to this many bytes, header included, never interleaves with frames of other writers.
pub const PIPE_BUF: usize = sys::pipe::PIPE_BUF;

/// Linux's default pipe capacity: a read that returns less has emptied the pipe.
const PIPE_DEFAULT_CAPACITY: usize = 64 * 1024;

/// The longest message that fits in one atomic frame: [`PIPE_BUF`] minus the frame header.
pub const MAX_ATOMIC_MESSAGE: usize = PIPE_BUF - framing::HEADER_LEN;

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
        "message of {len} bytes does not fit in one atomic pipe write on {what}: at most {max} bytes (PIPE_BUF {pipe_buf} minus the 4-byte header); send smaller messages, or choose LargeFrames::Lock or LargeFrames::SingleWriter"
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
    /// The stream ended inside a frame (the writer closed or died mid-message).
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

/// How a writer sends frames larger than [`PIPE_BUF`]; see the [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LargeFrames {
    /// Refuse them with [`PipeError::NotAtomic`] (default for anonymous pipes).
    #[default]
    Refuse,
    /// Write every frame under `flock(2)`: shared for small frames, exclusive for large ones
    /// (default for FIFO writers opened by path).
    Lock,
    /// No lock; large frames in several writes. Only correct with a single writer.
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
    dec: FrameDecoder,
    what: String,
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
            .field("buffered", &self.dec.pending())
            .finish()
    }
}

impl PipeReader {
    pub(crate) fn wrap(fd: OwnedFd, what: String) -> PipeReader {
        PipeReader {
            fd,
            dec: FrameDecoder::new(DEFAULT_MAX_FRAME_LEN),
            what,
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
                .with_max_frame_len(self.max_frame_len()),
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

    /// Receives one message, blocking until one arrives.
    ///
    /// # Errors
    /// [`PipeError::PeerGone`] at the end of the stream (every writer closed),
    /// [`PipeError::TruncatedFrame`] if it ended inside a frame, [`PipeError::FrameTooLarge`].
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
            match self.dec.next_frame() {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(e) => return Err(self.frame_error(e)),
            }
            if !self.drained || wait == Wait::NoWait {
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
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(PipeError::io(format!("reading {}", self.what), e)),
                }
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
                    return Err(self.end_of_stream());
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

    /// End of stream (the pipe is drained): truncated frame or peer gone. Resets the decoder.
    fn end_of_stream(&mut self) -> PipeError {
        let fin = self.dec.finish();
        match fin {
            Ok(()) => PipeError::PeerGone {
                what: self.what.clone(),
                detail: "every writer closed the pipe (end of stream)",
            },
            Err(e) => {
                let e = self.frame_error(e);
                self.dec = FrameDecoder::new(self.dec.max_frame_len());
                e
            }
        }
    }

    fn frame_error(&self, e: FrameError) -> PipeError {
        let what = self.what.clone();
        match e {
            FrameError::TooLarge { len, max } => PipeError::FrameTooLarge { len, max, what },
            FrameError::Truncated { expected, got } => PipeError::TruncatedFrame {
                expected,
                got,
                what,
            },
            FrameError::Io(source) => PipeError::io(format!("reading {what}"), source),
        }
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
        let max = self.max_frame_len();
        let what = self.what;
        let inner = tokio::net::unix::pipe::Receiver::from_owned_fd(self.fd)?;
        Ok(AsyncPipeReader {
            inner,
            dec: FrameDecoder::new(max),
            what,
        })
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
        }
    }

    /// Takes a pipe end this process inherited as descriptor `fd` (see [`pass_to_child`]).
    /// Like [`PipeReader::from_inherited`], `fd` itself stays open.
    pub fn from_inherited(fd: RawFd) -> io::Result<PipeWriter> {
        let owned = take_inherited(fd)?;
        Ok(PipeWriter::wrap(owned, format!("inherited pipe fd {fd}")))
    }

    /// A second handle to the same write end (`dup`), with the same settings: for handing
    /// the end to several children ([`pass_to_child`]). Copies share one open file
    /// description, hence one `flock` (see [`LargeFrames::Lock`]).
    pub fn try_clone(&self) -> io::Result<PipeWriter> {
        Ok(PipeWriter {
            fd: sys::pipe::dup(&self.fd)?,
            max: self.max,
            large: self.large,
            torn: self.torn,
            what: self.what.clone(),
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
    /// written in one `write(2)`: all of it or nothing.
    pub fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), PipeError> {
        if let Some((written, len)) = self.torn {
            return Err(PipeError::Torn {
                written,
                len,
                what: self.what.clone(),
            });
        }
        let frame = framing::encode_frame(msg, self.max).map_err(|_| PipeError::TooLarge {
            len: msg.len(),
            max: self.max,
            what: self.what.clone(),
        })?;
        let small = frame.len() <= PIPE_BUF;
        if !small && self.large == LargeFrames::Refuse {
            return Err(PipeError::NotAtomic {
                len: msg.len(),
                max: MAX_ATOMIC_MESSAGE,
                pipe_buf: PIPE_BUF,
                what: self.what.clone(),
            });
        }
        let locked = self.large == LargeFrames::Lock;
        if locked {
            self.lock(!small, wait)?;
        }
        let res = self.write_frame(&frame, wait);
        if locked {
            let _ = sys::pipe::unlock(&self.fd);
        }
        res
    }

    /// Takes the writers' lock (exclusive for a large frame), waiting as `wait` allows.
    fn lock(&self, exclusive: bool, wait: Wait) -> Result<(), PipeError> {
        let mut pause = Duration::from_micros(100);
        loop {
            let blocking = wait == Wait::Forever;
            match sys::pipe::flock(&self.fd, exclusive, blocking) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let Some(left) = wait.remaining() else {
                        continue;
                    };
                    if left.is_zero() {
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
                    thread::sleep(pause.min(left));
                    pause = (pause * 2).min(Duration::from_millis(10));
                }
                Err(e) => {
                    return Err(PipeError::io(format!("locking {}", self.what), e));
                }
            }
        }
    }

    /// Writes a whole frame; a small one in a single write call.
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

    /// An async writer (feature `tokio`; needs a tokio runtime with I/O enabled). Frames above
    /// [`PIPE_BUF`] are sent only with [`LargeFrames::SingleWriter`]; otherwise refused.
    #[cfg(feature = "tokio")]
    pub fn into_async(self) -> io::Result<AsyncPipeWriter> {
        let max = self.max;
        let large = self.large;
        let what = self.what;
        let inner = tokio::net::unix::pipe::Sender::from_owned_fd(self.fd)?;
        Ok(AsyncPipeWriter {
            inner,
            max,
            single_writer: large == LargeFrames::SingleWriter,
            what,
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

    use super::{MAX_ATOMIC_MESSAGE, PIPE_BUF, PipeError};
    use crate::framing::{self, FrameDecoder, FrameError};

    /// The async read end of a pipe or FIFO (feature `tokio`): [`AsyncRead`] for raw bytes,
    /// [`recv`](Self::recv) for framed messages.
    ///
    /// On a FIFO that has not had a writer yet, [`recv`](Self::recv) waits for one (as the
    /// blocking reader does); [`AsyncRead`] reports end of stream instead.
    #[derive(Debug)]
    pub struct AsyncPipeReader {
        pub(super) inner: pipe::Receiver,
        pub(super) dec: FrameDecoder,
        pub(super) what: String,
    }

    impl AsyncPipeReader {
        /// Receives one message. Cancel-safe: a partly received frame stays buffered.
        ///
        /// # Errors
        /// As [`super::PipeReader::recv`].
        pub async fn recv(&mut self) -> Result<Vec<u8>, PipeError> {
            loop {
                match self.dec.next_frame() {
                    Ok(Some(f)) => return Ok(f),
                    Ok(None) => {}
                    Err(e) => return Err(self.frame_error(e)),
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
                        let fin = self.dec.finish();
                        self.dec = FrameDecoder::new(self.dec.max_frame_len());
                        return Err(match fin {
                            Ok(()) => PipeError::PeerGone {
                                what: self.what.clone(),
                                detail: "every writer closed the pipe (end of stream)",
                            },
                            Err(e) => self.frame_error(e),
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

        fn frame_error(&self, e: FrameError) -> PipeError {
            let what = self.what.clone();
            match e {
                FrameError::TooLarge { len, max } => PipeError::FrameTooLarge { len, max, what },
                FrameError::Truncated { expected, got } => PipeError::TruncatedFrame {
                    expected,
                    got,
                    what,
                },
                FrameError::Io(source) => PipeError::Io {
                    context: format!("reading {what}"),
                    source,
                },
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
        pub(super) single_writer: bool,
        pub(super) what: String,
    }

    impl AsyncPipeWriter {
        /// Sends one message. A frame of up to [`PIPE_BUF`] bytes goes out in one write.
        ///
        /// Not cancel-safe for frames above `PIPE_BUF` (single-writer mode only): dropping the
        /// future mid-frame leaves the stream inside a frame.
        pub async fn send(&mut self, msg: &[u8]) -> Result<(), PipeError> {
            let frame = framing::encode_frame(msg, self.max).map_err(|_| PipeError::TooLarge {
                len: msg.len(),
                max: self.max,
                what: self.what.clone(),
            })?;
            if frame.len() > PIPE_BUF && !self.single_writer {
                return Err(PipeError::NotAtomic {
                    len: msg.len(),
                    max: MAX_ATOMIC_MESSAGE,
                    pipe_buf: PIPE_BUF,
                    what: self.what.clone(),
                });
            }
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
