//! POSIX shared-memory objects (`shm_open`, `shm_unlink`), memfds and their seals, and the
//! fd-level size calls they share with files (`ftruncate`, `fstat`).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::Mode;

use super::retry_eintr;
use crate::name::PosixName;

/// How to open a POSIX shared-memory object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenMode {
    /// Must exist.
    Open,
    /// Open or create. (`Shm::create` uses `CreateNew` then `Open`, so that it knows whether
    /// it created the object and must unlink it.)
    #[allow(dead_code)]
    Create,
    /// Create; fail if it exists.
    CreateNew,
}

/// `shm_open`, as the C library does it (open `/dev/shm/NAME` with `O_CLOEXEC` and
/// `O_NOFOLLOW`), and also with `O_NONBLOCK`, then checked to be a regular file: anyone can put
/// a symlink or a FIFO in `/dev/shm`, and neither is followed nor waited on.
pub(crate) fn shm_open(
    name: &PosixName,
    how: OpenMode,
    writable: bool,
    mode: u32,
) -> io::Result<OwnedFd> {
    use rustix::fs::OFlags as F;
    let mut flags = if writable { F::RDWR } else { F::RDONLY };
    flags |= F::CLOEXEC | F::NOFOLLOW | F::NONBLOCK;
    match how {
        OpenMode::Open => {}
        OpenMode::Create => flags |= F::CREATE,
        OpenMode::CreateNew => flags |= F::CREATE | F::EXCL,
    }
    let path = format!("/dev/shm/{}", name.as_str().trim_start_matches('/'));
    let fd = retry_eintr(|| {
        Ok(rustix::fs::open(
            path.as_str(),
            flags,
            Mode::from_raw_mode(mode),
        )?)
    })?;
    let st = rustix::fs::fstat(&fd)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(io::Error::other(format!(
            "{path} is not a regular file (a FIFO or device put there under a shared-memory \
             name); refused"
        )));
    }
    // Regular files ignore O_NONBLOCK; clear it all the same, for whoever inherits the fd.
    rustix::fs::fcntl_setfl(&fd, rustix::fs::fcntl_getfl(&fd)? - F::NONBLOCK)?;
    Ok(fd)
}

/// `shm_unlink`.
pub(crate) fn shm_unlink(name: &PosixName) -> io::Result<()> {
    Ok(rustix::shm::unlink(name.as_c_str())?)
}

/// `ftruncate(fd, len)`: sets the size of a shared-memory object, memfd or file.
pub(crate) fn ftruncate(fd: impl AsFd, len: u64) -> io::Result<()> {
    retry_eintr(|| Ok(rustix::fs::ftruncate(&fd, len)?))
}

/// What `fstat` says about a shared-memory object, memfd or file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FdStat {
    /// Size in bytes.
    pub(crate) size: u64,
    /// Device and inode: the identity of the object.
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    /// Owner uid.
    pub(crate) uid: u32,
    /// Bytes actually allocated (`st_blocks * 512`): less than `size` for a sparse object.
    pub(crate) allocated: u64,
    /// Whether it is a regular file (shared-memory objects and memfds are).
    pub(crate) regular: bool,
}

/// `fstat(fd)`.
pub(crate) fn fstat(fd: impl AsFd) -> io::Result<FdStat> {
    let st = rustix::fs::fstat(fd)?;
    Ok(FdStat {
        size: u64::try_from(st.st_size).unwrap_or(0),
        dev: st.st_dev,
        ino: st.st_ino,
        uid: st.st_uid,
        allocated: u64::try_from(st.st_blocks).unwrap_or(0).saturating_mul(512),
        regular: rustix::fs::FileType::from_raw_mode(st.st_mode)
            == rustix::fs::FileType::RegularFile,
    })
}

/// `pread(fd, buf, offset)` until `buf` is full or the end of the object; returns the bytes
/// read. Reading a hole of a sparse object allocates nothing (unlike touching it through a
/// mapping).
pub(crate) fn pread(fd: impl AsFd, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let n = retry_eintr(|| {
            Ok(rustix::io::pread(
                &fd,
                &mut buf[done..],
                offset + done as u64,
            )?)
        })?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

/// `fchmod(fd, mode)`: sets the exact permission bits (shm_open's mode is filtered by umask).
pub(crate) fn fchmod(fd: impl AsFd, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::fchmod(fd, Mode::from_raw_mode(mode))?)
}

/// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)`.
pub(crate) fn memfd_create(name: &CStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::memfd_create(
        name,
        rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
    )?)
}

/// `fcntl(fd, F_ADD_SEALS, seals)` with the raw `F_SEAL_*` bits.
pub(crate) fn add_seals(fd: impl AsFd, seals: u32) -> io::Result<()> {
    Ok(rustix::fs::fcntl_add_seals(
        fd,
        rustix::fs::SealFlags::from_bits_retain(seals),
    )?)
}

/// `fcntl(fd, F_GET_SEALS)` as raw `F_SEAL_*` bits.
pub(crate) fn get_seals(fd: impl AsFd) -> io::Result<u32> {
    Ok(rustix::fs::fcntl_get_seals(fd)?.bits())
}

/// `F_SEAL_*` values (from `<linux/fcntl.h>`).
pub(crate) mod seal {
    pub(crate) const SEAL: u32 = libc::F_SEAL_SEAL as u32;
    pub(crate) const SHRINK: u32 = libc::F_SEAL_SHRINK as u32;
    pub(crate) const GROW: u32 = libc::F_SEAL_GROW as u32;
    pub(crate) const WRITE: u32 = libc::F_SEAL_WRITE as u32;
    pub(crate) const FUTURE_WRITE: u32 = libc::F_SEAL_FUTURE_WRITE as u32;
}
