//! [`FifoError`], and the checks that name what a path holds when it is not a FIFO.

use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::FileType;

use crate::sys;

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
    pub(super) fn from_io(context: &'static str, path: &Path, source: io::Error) -> FifoError {
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

pub(super) fn kind_name(kind: FileType) -> &'static str {
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

pub(super) fn check_path(path: &Path) -> Result<(), FifoError> {
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
pub(super) fn expect_fifo(path: &Path) -> Result<sys::fifo::FileInfo, FifoError> {
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

/// The descriptor just opened at `path` must be a FIFO (the path may have been replaced).
pub(super) fn verify_opened(path: &Path, fd: &std::os::fd::OwnedFd) -> Result<(), FifoError> {
    let info = sys::fifo::fstat(fd).map_err(|e| FifoError::from_io("inspecting", path, e))?;
    if info.kind != FileType::Fifo {
        return Err(FifoError::NotAFifo {
            path: path.to_path_buf(),
            kind: kind_name(info.kind),
        });
    }
    Ok(())
}
