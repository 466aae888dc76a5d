//! FIFOs (named pipes): a pipe with a name in the filesystem, so unrelated processes can use it.
//!
//! [`Fifo::create`] makes the FIFO (mode `0o600` by default, exactly as asked: the umask is not
//! applied) and removes it again when the handle is dropped, unless [`Fifo::persist`] was
//! called. [`open_reader`] and [`open_writer`] (and the methods of the same names on [`Fifo`])
//! open it; they return the [`PipeReader`] / [`PipeWriter`] of [`crate::pipe`], with the same
//! framed `send`/`recv`, raw `Read`/`Write` and async support.
//!
//! # Safety rules for paths
//! * Creation never follows a symlink and never clobbers: an existing path that is not a FIFO
//!   (a regular file, a directory, a symlink, even one pointing at a FIFO) is
//!   [`FifoError::NotAFifo`] and is left untouched.
//! * An existing FIFO owned by another user is [`FifoError::ForeignOwner`] on creation, unless
//!   [`FifoOptions::allow_foreign_owner`] says it is expected (another user could read or
//!   inject messages).
//! * Opening never follows a symlink in the last component (`O_NOFOLLOW`) and checks that what
//!   was opened is a FIFO.
//! * Drop removes the FIFO only if the path still names the FIFO this handle created.
//!
//! # Opening without hanging
//! A blocking `open(O_WRONLY)` of a FIFO waits for a reader forever. Writers here open with
//! `O_NONBLOCK`, which fails with `ENXIO` while no reader has the FIFO open, and retry with a
//! short backoff until the deadline: [`open_writer_timeout`] gives [`FifoError::Timeout`]
//! ("no reader on fifo PATH: start the receiver first"). Readers open at once (non-blocking);
//! their `recv` waits for a writer.
//!
//! # Several writers, and writers that crash
//! Writers opened here use [`LargeFrames::Chunk`]: a message whose frame fits in
//! [`crate::pipe::PIPE_BUF`] bytes goes out as one plain frame in one atomic write; a larger one
//! as atomic chunks that name their writer, which the reader reassembles per writer
//! ([`crate::pipe::chunk`]). A writer killed at any point can only lose its own message in
//! progress: the reader drops it (a recoverable [`PipeError::TruncatedFrame`] naming the
//! writer) and every complete message of every other writer arrives intact and in order. See
//! [`crate::pipe`] for the details, and for the cap on what the reader buffers.
//!
//! ```no_run
//! use ipcx::fifo::{self, Fifo};
//! use std::time::Duration;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // receiver process
//! let fifo = Fifo::create("/tmp/jobs.fifo")?; // removed on drop
//! let mut rx = fifo.open_reader()?;
//! // sender process
//! let mut tx = fifo::open_writer_timeout("/tmp/jobs.fifo", Duration::from_secs(5))?;
//! tx.send(b"job 1")?;
//! // receiver process
//! assert_eq!(rx.recv()?, b"job 1");
//! # Ok(()) }
//! ```
//!
//! # References
//! [fifo(7)](https://man7.org/linux/man-pages/man7/fifo.7.html),
//! [mkfifo(3)](https://man7.org/linux/man-pages/man3/mkfifo.3.html),
//! [open(2)](https://man7.org/linux/man-pages/man2/open.2.html) (`ENXIO`)

mod error;
mod object;

use std::io;
use std::path::Path;
use std::thread;
use std::time::Duration;

#[cfg(doc)]
use crate::pipe::PipeError;
use crate::pipe::{LargeFrames, PipeReader, PipeWriter};
use crate::sys;
use crate::wait::Wait;
pub use error::FifoError;
use error::{expect_fifo, verify_opened};
pub use object::{Fifo, FifoOptions};

/// The read end of a FIFO: a [`PipeReader`].
pub type FifoReader = PipeReader;
/// The write end of a FIFO: a [`PipeWriter`].
pub type FifoWriter = PipeWriter;

/// Removes the FIFO at `path`; refuses anything that is not a FIFO
/// ([`FifoError::NotAFifo`]).
pub fn remove(path: impl AsRef<Path>) -> Result<(), FifoError> {
    let path = path.as_ref();
    expect_fifo(path)?;
    sys::fifo::unlink(path).map_err(|e| FifoError::from_io("removing", path, e))
}

/// Opens the read end of the FIFO at `path`. Never blocks: `recv` then waits for a writer.
///
/// # Errors
/// [`FifoError::NotFound`], [`FifoError::NotAFifo`] (symlinks included),
/// [`FifoError::PermissionDenied`].
pub fn open_reader(path: impl AsRef<Path>) -> Result<PipeReader, FifoError> {
    let path = path.as_ref();
    expect_fifo(path)?;
    let fd = sys::fifo::open(path, false).map_err(|e| FifoError::from_io("opening", path, e))?;
    verify_opened(path, &fd)?;
    Ok(PipeReader::wrap(fd, format!("fifo:{}", path.display())))
}

/// Opens the write end of the FIFO at `path`, waiting as long as it takes for a reader.
pub fn open_writer(path: impl AsRef<Path>) -> Result<PipeWriter, FifoError> {
    open_writer_wait(path, Wait::Forever)
}

/// Opens the write end if a reader has the FIFO open now: [`FifoError::NoReader`] otherwise.
pub fn try_open_writer(path: impl AsRef<Path>) -> Result<PipeWriter, FifoError> {
    open_writer_wait(path, Wait::NoWait)
}

/// Opens the write end, waiting at most `timeout` for a reader: [`FifoError::Timeout`] then.
pub fn open_writer_timeout(
    path: impl AsRef<Path>,
    timeout: Duration,
) -> Result<PipeWriter, FifoError> {
    open_writer_wait(path, Wait::timeout(timeout))
}

/// Opens the write end of the FIFO at `path`, waiting for a reader as `wait` allows.
///
/// The writer uses [`LargeFrames::Chunk`].
pub fn open_writer_wait(path: impl AsRef<Path>, wait: Wait) -> Result<PipeWriter, FifoError> {
    let path = path.as_ref();
    expect_fifo(path)?;
    let mut pause = Duration::from_millis(1);
    loop {
        match sys::fifo::open(path, true) {
            Ok(fd) => {
                verify_opened(path, &fd)?;
                return Ok(PipeWriter::wrap(fd, format!("fifo:{}", path.display()))
                    .with_large_frames(LargeFrames::Chunk));
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                let left = wait.remaining();
                match left {
                    Some(left) if left.is_zero() => {
                        let path = path.to_path_buf();
                        return Err(if wait == Wait::NoWait {
                            FifoError::NoReader { path }
                        } else {
                            FifoError::Timeout { path }
                        });
                    }
                    Some(left) => thread::sleep(pause.min(left)),
                    None => thread::sleep(pause),
                }
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FifoError::from_io("opening", path, e)),
        }
    }
}
