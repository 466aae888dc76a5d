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
//! handle. Converting an end into an [`OwnedFd`](std::os::fd::OwnedFd) or a [`Stdio`](std::process::Stdio) switches the descriptor back to
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

mod child;
mod duplex;
mod error;
mod reader;
mod writer;

#[cfg(feature = "tokio")]
mod async_pipe;

use std::io::{self, Read};
use std::os::fd::BorrowedFd;

use crate::framing;
use crate::sys;

#[cfg(feature = "tokio")]
pub use async_pipe::{AsyncPipeReader, AsyncPipeWriter};
pub use child::pass_to_child;
pub use duplex::{DuplexEnd, duplex};
pub use error::PipeError;
pub use reader::PipeReader;
pub use writer::{LargeFrames, PipeWriter};

/// The largest write the kernel keeps atomic on a pipe or FIFO (4096 on Linux). A frame of up
/// to this many bytes, header included, never interleaves with frames of other writers.
pub const PIPE_BUF: usize = sys::pipe::PIPE_BUF;

/// The longest message that fits in one atomic frame: [`PIPE_BUF`] minus the frame header.
pub const MAX_ATOMIC_MESSAGE: usize = PIPE_BUF - framing::HEADER_LEN;

/// Default cap on what a reader holds for incomplete messages, all writers together: 64 MiB.
pub const DEFAULT_MAX_BUFFERED: usize = framing::DEFAULT_MAX_BUFFERED;

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

/// `Read` over a borrowed descriptor, for the frame decoders.
pub(crate) struct FdRead<'a>(BorrowedFd<'a>);

impl Read for FdRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        sys::pipe::read(self.0, buf)
    }
}

/// What both ends have: the fd traits (the descriptor's mode switched as the module
/// documentation says), the pipe's capacity and the description used in errors.
macro_rules! end_common {
    ($t:ident) => {
        impl $t {
            /// The pipe's capacity in bytes (`F_GETPIPE_SZ`).
            pub fn capacity(&self) -> std::io::Result<usize> {
                $crate::sys::pipe::pipe_size(&self.fd)
            }

            /// Sets the pipe's capacity (`F_SETPIPE_SZ`); returns the capacity the kernel chose
            /// (rounded up to a power-of-two number of pages; unprivileged callers are limited by
            /// `/proc/sys/fs/pipe-max-size`).
            pub fn set_capacity(&self, bytes: usize) -> std::io::Result<usize> {
                $crate::sys::pipe::set_pipe_size(&self.fd, bytes)
            }

            /// What this end reads from or writes to, as used in error messages (`pipe`,
            /// `fifo:/path`).
            pub fn describe(&self) -> &str {
                &self.what
            }
        }

        $crate::sys::fd_of_field!($t, fd);
        /// Switches the descriptor back to blocking mode (what other programs expect).
        impl From<$t> for std::os::fd::OwnedFd {
            fn from(end: $t) -> std::os::fd::OwnedFd {
                let _ = $crate::sys::pipe::set_nonblocking(&end.fd, false);
                end.fd
            }
        }
        /// Puts the descriptor in non-blocking mode (see the module documentation).
        impl From<std::os::fd::OwnedFd> for $t {
            fn from(fd: std::os::fd::OwnedFd) -> $t {
                let _ = $crate::sys::pipe::set_nonblocking(&fd, true);
                $t::wrap(fd, "pipe".into())
            }
        }
        /// For a child's stdin or stdout; the descriptor is switched to blocking mode.
        impl From<$t> for std::process::Stdio {
            fn from(end: $t) -> std::process::Stdio {
                std::process::Stdio::from(std::os::fd::OwnedFd::from(end))
            }
        }
    };
}

pub(crate) use end_common;
