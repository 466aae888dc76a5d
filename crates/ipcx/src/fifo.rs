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

use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use rustix::fs::FileType;

#[cfg(doc)]
use crate::pipe::PipeError;
use crate::pipe::{LargeFrames, PipeReader, PipeWriter};
use crate::sys;
use crate::wait::Wait;

/// The read end of a FIFO: a [`PipeReader`].
pub type FifoReader = PipeReader;
/// The write end of a FIFO: a [`PipeWriter`].
pub type FifoWriter = PipeWriter;

/// Why creating, opening or removing a FIFO failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FifoError {
    /// The path is empty or contains a NUL byte.
    #[error("invalid fifo path {path:?}: {reason}")]
    InvalidPath {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// Nothing exists at the path (or its directory does not exist).
    #[error("no fifo {}: start the receiver first (ipcx recv fifo:PATH), or create it", path.display())]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// `create_new`: the path exists.
    #[error("{} already exists: remove it first, or open the existing fifo", path.display())]
    AlreadyExists {
        /// The path.
        path: PathBuf,
    },
    /// The path exists but is not a FIFO; it was left untouched.
    #[error("{} is a {kind}, not a fifo: it was left untouched; choose another path or remove it yourself", path.display())]
    NotAFifo {
        /// The path.
        path: PathBuf,
        /// What it is: `regular file`, `symlink`, `directory`, ...
        kind: &'static str,
    },
    /// The existing FIFO belongs to another user, who could read or inject messages.
    #[error("fifo {} belongs to uid {owner}, not to us (uid {euid}): remove it, or allow it explicitly (allow_foreign_owner)", path.display())]
    ForeignOwner {
        /// The path.
        path: PathBuf,
        /// The FIFO's owner.
        owner: u32,
        /// Our effective uid.
        euid: u32,
    },
    /// The caller may not create or open it.
    #[error("permission denied on fifo {}: check its owner and mode (ls -l)", path.display())]
    PermissionDenied {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Opening a writer: no reader appeared before the deadline.
    #[error("no reader on fifo {}: start the receiver first", path.display())]
    Timeout {
        /// The path.
        path: PathBuf,
    },
    /// `try_open_writer`: no reader has the FIFO open.
    #[error("no reader on fifo {} right now: start the receiver first", path.display())]
    NoReader {
        /// The path.
        path: PathBuf,
    },
    /// Any other OS failure.
    #[error("{context} {}: {source}", path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl FifoError {
    fn from_io(context: &'static str, path: &Path, source: io::Error) -> FifoError {
        let path = path.to_path_buf();
        match source.raw_os_error() {
            Some(libc::ENOENT) => FifoError::NotFound { path },
            Some(libc::EEXIST) => FifoError::AlreadyExists { path },
            Some(libc::EACCES | libc::EPERM) => FifoError::PermissionDenied { path, source },
            Some(libc::ELOOP) => FifoError::NotAFifo {
                path,
                kind: "symlink",
            },
            _ => FifoError::Io {
                context,
                path,
                source,
            },
        }
    }
}

fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        _ => "file of unknown type",
    }
}

fn check_path(path: &Path) -> Result<(), FifoError> {
    let reason = if path.as_os_str().is_empty() {
        "the path is empty"
    } else if std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).contains(&0) {
        "the path contains a NUL byte"
    } else {
        return Ok(());
    };
    Err(FifoError::InvalidPath {
        path: path.to_path_buf(),
        reason,
    })
}

/// The path must name a FIFO (not through a symlink).
fn expect_fifo(path: &Path) -> Result<sys::fifo::FileInfo, FifoError> {
    check_path(path)?;
    let info = sys::fifo::lstat(path).map_err(|e| FifoError::from_io("inspecting", path, e))?;
    if info.kind != FileType::Fifo {
        return Err(FifoError::NotAFifo {
            path: path.to_path_buf(),
            kind: kind_name(info.kind),
        });
    }
    Ok(info)
}

/// Options for creating a FIFO: mode and trust of a FIFO that already exists.
#[derive(Debug, Clone)]
pub struct FifoOptions {
    mode: u32,
    allow_foreign_owner: bool,
}

impl Default for FifoOptions {
    fn default() -> Self {
        FifoOptions {
            mode: 0o600,
            allow_foreign_owner: false,
        }
    }
}

impl FifoOptions {
    /// Default options: mode `0o600`, a FIFO owned by another user is refused.
    pub fn new() -> FifoOptions {
        FifoOptions::default()
    }

    /// The permission bits of a new FIFO (applied exactly, whatever the umask).
    pub fn mode(mut self, mode: u32) -> FifoOptions {
        self.mode = mode & 0o7777;
        self
    }

    /// Accept an existing FIFO owned by another user (by default [`FifoError::ForeignOwner`]).
    pub fn allow_foreign_owner(mut self, allow: bool) -> FifoOptions {
        self.allow_foreign_owner = allow;
        self
    }

    /// Creates the FIFO, or uses the FIFO already at `path`.
    pub fn create(&self, path: impl AsRef<Path>) -> Result<Fifo, FifoError> {
        self.create_impl(path.as_ref(), false)
    }

    /// Creates the FIFO; [`FifoError::AlreadyExists`] if anything exists at `path`.
    pub fn create_new(&self, path: impl AsRef<Path>) -> Result<Fifo, FifoError> {
        self.create_impl(path.as_ref(), true)
    }

    fn create_impl(&self, path: &Path, new: bool) -> Result<Fifo, FifoError> {
        check_path(path)?;
        match sys::fifo::mkfifo(path, self.mode) {
            Ok(()) => {
                // Apply the exact mode (mkfifo applies the umask) through a descriptor, and
                // remember which FIFO we made.
                // Not a read open: that would be an end of the FIFO, and a writer already waiting
                // in `open` would connect to it, write and leave, and its bytes would be
                // discarded when this descriptor closed, before any reader opened.
                let fd = sys::fifo::open_path(path)
                    .map_err(|e| FifoError::from_io("opening the new fifo", path, e))?;
                let info =
                    sys::fifo::fstat(&fd).map_err(|e| FifoError::from_io("inspecting", path, e))?;
                if info.kind != FileType::Fifo {
                    return Err(FifoError::NotAFifo {
                        path: path.to_path_buf(),
                        kind: kind_name(info.kind),
                    });
                }
                sys::fifo::chmod_path_fd(&fd, self.mode)
                    .map_err(|e| FifoError::from_io("setting the mode of", path, e))?;
                Ok(Fifo {
                    path: path.to_path_buf(),
                    remove_on_drop: true,
                    id: (info.dev, info.ino),
                    registration: Some(crate::registry::Registration::new(format!(
                        "fifo:{}",
                        std::path::absolute(path)
                            .unwrap_or_else(|_| path.to_path_buf())
                            .display()
                    ))),
                })
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                let info = sys::fifo::lstat(path)
                    .map_err(|e| FifoError::from_io("inspecting", path, e))?;
                if info.kind != FileType::Fifo {
                    return Err(FifoError::NotAFifo {
                        path: path.to_path_buf(),
                        kind: kind_name(info.kind),
                    });
                }
                if new {
                    return Err(FifoError::AlreadyExists {
                        path: path.to_path_buf(),
                    });
                }
                let euid = sys::fifo::euid();
                if info.uid != euid && !self.allow_foreign_owner {
                    return Err(FifoError::ForeignOwner {
                        path: path.to_path_buf(),
                        owner: info.uid,
                        euid,
                    });
                }
                Ok(Fifo {
                    path: path.to_path_buf(),
                    remove_on_drop: false,
                    id: (info.dev, info.ino),
                    registration: None,
                })
            }
            Err(e) => Err(FifoError::from_io("creating fifo", path, e)),
        }
    }
}

/// A FIFO in the filesystem. The handle that created it removes it on drop unless
/// [`persist`](Self::persist) was called; a handle to a FIFO that already existed never removes
/// it.
#[derive(Debug)]
pub struct Fifo {
    path: PathBuf,
    remove_on_drop: bool,
    id: (u64, u64),
    registration: Option<crate::registry::Registration>,
}

impl Fifo {
    /// Creates the FIFO with mode `0o600`, or uses the FIFO already there (see
    /// [`FifoOptions::create`]).
    ///
    /// # Errors
    /// [`FifoError::NotAFifo`] if the path is something else (left untouched),
    /// [`FifoError::ForeignOwner`], [`FifoError::PermissionDenied`], [`FifoError::NotFound`]
    /// when the directory does not exist.
    #[doc(alias = "mkfifo")]
    pub fn create(path: impl AsRef<Path>) -> Result<Fifo, FifoError> {
        FifoOptions::new().create(path)
    }

    /// Creates the FIFO with mode `0o600`; [`FifoError::AlreadyExists`] if the path exists.
    pub fn create_new(path: impl AsRef<Path>) -> Result<Fifo, FifoError> {
        FifoOptions::new().create_new(path)
    }

    /// Options: mode, foreign owners.
    pub fn options() -> FifoOptions {
        FifoOptions::new()
    }

    /// The FIFO's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the FIFO when this handle is dropped.
    pub fn persist(mut self) -> Fifo {
        self.remove_on_drop = false;
        if let Some(r) = self.registration.take() {
            r.persist();
        }
        self
    }

    /// Whether this handle owns the FIFO: it created it and removes it on drop (false for a
    /// FIFO it found, and after [`persist`](Self::persist)).
    pub fn is_owner(&self) -> bool {
        self.remove_on_drop
    }

    /// Removes the FIFO now (whoever created it), if the path still names this FIFO.
    pub fn remove(mut self) -> Result<(), FifoError> {
        self.remove_on_drop = false;
        self.remove_if_ours()
    }

    fn remove_if_ours(&self) -> Result<(), FifoError> {
        let info = sys::fifo::lstat(&self.path)
            .map_err(|e| FifoError::from_io("inspecting", &self.path, e))?;
        if info.kind != FileType::Fifo || (info.dev, info.ino) != self.id {
            // Someone replaced it: not ours to remove.
            return Err(FifoError::NotAFifo {
                path: self.path.clone(),
                kind: if info.kind == FileType::Fifo {
                    "different fifo (replaced since)"
                } else {
                    kind_name(info.kind)
                },
            });
        }
        sys::fifo::unlink(&self.path).map_err(|e| FifoError::from_io("removing", &self.path, e))
    }

    /// Opens the read end (see [`open_reader`]).
    pub fn open_reader(&self) -> Result<PipeReader, FifoError> {
        open_reader(&self.path)
    }

    /// Opens the write end, waiting for a reader as `wait` allows (see [`open_writer_wait`]).
    pub fn open_writer_wait(&self, wait: Wait) -> Result<PipeWriter, FifoError> {
        open_writer_wait(&self.path, wait)
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        if self.remove_on_drop {
            let _ = self.remove_if_ours();
        }
    }
}

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

fn verify_opened(path: &Path, fd: &std::os::fd::OwnedFd) -> Result<(), FifoError> {
    let info = sys::fifo::fstat(fd).map_err(|e| FifoError::from_io("inspecting", path, e))?;
    if info.kind != FileType::Fifo {
        return Err(FifoError::NotAFifo {
            path: path.to_path_buf(),
            kind: kind_name(info.kind),
        });
    }
    Ok(())
}
