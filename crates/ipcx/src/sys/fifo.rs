//! FIFO primitives: `mkfifo`, `lstat`, opening without following symlinks, `fchmod`, `unlink`.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};

/// What kind of file a path or descriptor is, and who owns it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileInfo {
    pub(crate) kind: FileType,
    pub(crate) uid: u32,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

fn info(st: &rustix::fs::Stat) -> FileInfo {
    FileInfo {
        kind: FileType::from_raw_mode(st.st_mode),
        uid: st.st_uid,
        dev: st.st_dev,
        ino: st.st_ino,
    }
}

/// `mkfifo(path, mode)` (the umask applies). Never follows a symlink: any existing path,
/// symlinks included, fails with `EEXIST`.
pub(crate) fn mkfifo(path: &Path, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::mkfifoat(CWD, path, Mode::from_raw_mode(mode))?)
}

/// `lstat(path)`: the path itself, not what a symlink points to.
pub(crate) fn lstat(path: &Path) -> io::Result<FileInfo> {
    let st = rustix::fs::statat(CWD, path, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(info(&st))
}

/// `fstat(fd)`.
pub(crate) fn fstat(fd: impl AsFd) -> io::Result<FileInfo> {
    let st = rustix::fs::fstat(fd)?;
    Ok(info(&st))
}

/// Opens `path` for reading or writing with `O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW`.
///
/// For a FIFO, a non-blocking read open succeeds at once; a non-blocking write open fails with
/// `ENXIO` while no reader has it open.
pub(crate) fn open(path: &Path, write: bool) -> io::Result<OwnedFd> {
    let access = if write {
        OFlags::WRONLY
    } else {
        OFlags::RDONLY
    };
    let flags = access | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NOCTTY;
    Ok(rustix::fs::openat(CWD, path, flags, Mode::empty())?)
}

/// Opens `path` itself with `O_PATH | O_NOFOLLOW`: enough to `fstat` it and set its mode, and,
/// unlike a read or write open, not an end of the FIFO (writers waiting in `open` stay waiting).
pub(crate) fn open_path(path: &Path) -> io::Result<OwnedFd> {
    let flags = OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    Ok(rustix::fs::openat(CWD, path, flags, Mode::empty())?)
}

/// Sets the mode of the file an `O_PATH` descriptor refers to (through `/proc/self/fd`, which
/// names exactly that inode; `fchmod` refuses `O_PATH` descriptors).
pub(crate) fn chmod_path_fd(fd: impl AsFd, mode: u32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let proc_path = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
    Ok(rustix::fs::chmod(
        proc_path.as_str(),
        Mode::from_raw_mode(mode),
    )?)
}

/// `unlink(path)`.
pub(crate) fn unlink(path: &Path) -> io::Result<()> {
    Ok(rustix::fs::unlinkat(CWD, path, AtFlags::empty())?)
}

/// The effective user id.
pub(crate) fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}
