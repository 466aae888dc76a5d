//! POSIX shared-memory objects (`shm_open`, `shm_unlink`).

use std::io;
use std::os::fd::OwnedFd;

use rustix::fs::Mode;
use rustix::shm::OFlags;

use crate::name::PosixName;

/// How to open a POSIX shared-memory object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenMode {
    /// Must exist.
    Open,
    /// Open or create.
    Create,
    /// Create; fail if it exists.
    CreateNew,
}

/// `shm_open` with `O_CLOEXEC` (always set by the C library for shm_open).
pub(crate) fn shm_open(
    name: &PosixName,
    how: OpenMode,
    writable: bool,
    mode: u32,
) -> io::Result<OwnedFd> {
    let mut flags = if writable {
        OFlags::RDWR
    } else {
        OFlags::RDONLY
    };
    match how {
        OpenMode::Open => {}
        OpenMode::Create => flags |= OFlags::CREATE,
        OpenMode::CreateNew => flags |= OFlags::CREATE | OFlags::EXCL,
    }
    Ok(rustix::shm::open(
        name.as_c_str(),
        flags,
        Mode::from_raw_mode(mode),
    )?)
}

/// `shm_unlink`.
pub(crate) fn shm_unlink(name: &PosixName) -> io::Result<()> {
    Ok(rustix::shm::unlink(name.as_c_str())?)
}
