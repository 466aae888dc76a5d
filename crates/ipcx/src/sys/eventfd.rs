//! eventfd(2): a kernel counter behind a file descriptor, always opened non-blocking so that
//! every wait is done by poll(2) with the caller's deadline.
//!
//! # References
//! - [eventfd(2)](https://man7.org/linux/man-pages/man2/eventfd.2.html)

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::event::EventfdFlags;
use rustix::fs::OFlags;

/// `eventfd(initial, EFD_CLOEXEC | EFD_NONBLOCK [| EFD_SEMAPHORE])`.
pub(crate) fn eventfd(initial: u32, semaphore: bool) -> io::Result<OwnedFd> {
    let mut flags = EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK;
    if semaphore {
        flags |= EventfdFlags::SEMAPHORE;
    }
    Ok(rustix::event::eventfd(initial, flags)?)
}

/// Sets `O_NONBLOCK` on the open file description of `fd`.
pub(crate) fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(&fd)?;
    Ok(rustix::fs::fcntl_setfl(&fd, flags | OFlags::NONBLOCK)?)
}

/// Whether `fd` refers to an eventfd (its /proc link reads `anon_inode:[eventfd]`).
pub(crate) fn is_eventfd(fd: impl AsFd) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))?;
    Ok(link.as_os_str() == "anon_inode:[eventfd]")
}

/// Reads the 8-byte counter (EAGAIN when it is zero).
pub(crate) fn read(fd: impl AsFd) -> io::Result<u64> {
    let mut buf = [0u8; 8];
    let n = crate::sys::retry_eintr(|| Ok(rustix::io::read(&fd, &mut buf)?))?;
    if n != 8 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "short read from eventfd",
        ));
    }
    Ok(u64::from_ne_bytes(buf))
}

/// Adds `n` to the counter (EAGAIN when it would exceed `u64::MAX - 1`; EINVAL for
/// `u64::MAX`).
pub(crate) fn write(fd: impl AsFd, n: u64) -> io::Result<()> {
    let buf = n.to_ne_bytes();
    let w = crate::sys::retry_eintr(|| Ok(rustix::io::write(&fd, &buf)?))?;
    if w != 8 {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short write to eventfd",
        ));
    }
    Ok(())
}

/// Registers an eventfd with the current tokio reactor; the `AsyncFd` owns the descriptor.
#[cfg(feature = "tokio")]
pub(crate) fn register_async(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: the `OwnedFd` is open and moves into the `AsyncFd`, so nothing else can close it
    // while it is registered, and `OwnedFd::as_raw_fd` always returns that same descriptor; it
    // is closed only after the `AsyncFd` has deregistered it (on drop), or handed back by
    // `into_inner`.
    unsafe { tokio::io::unix::AsyncFd::register(fd).map_err(|e| e.into()) }
}
