//! Pipe primitives: `pipe2`, non-blocking mode, pipe capacity, and placing a pipe end
//! at a chosen descriptor number in a child process. Polling is in [`super::poll`].

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::fs::OFlags;
use rustix::pipe::PipeFlags;

/// `PIPE_BUF`: the largest write the kernel keeps atomic on a pipe or FIFO.
pub(crate) const PIPE_BUF: usize = libc::PIPE_BUF;

/// Descriptor numbers a child may receive through [`map_fd_into_child`]: `3..=MAX_CHILD_FD`.
pub(crate) const MAX_CHILD_FD: RawFd = 255;

/// `pipe2(O_CLOEXEC | O_NONBLOCK)`: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(
        PipeFlags::CLOEXEC | PipeFlags::NONBLOCK,
    )?)
}

/// `fcntl(F_DUPFD_CLOEXEC)`: a second descriptor for the same open file description.
pub(crate) fn dup(fd: impl AsFd) -> io::Result<OwnedFd> {
    Ok(rustix::io::fcntl_dupfd_cloexec(fd, 3)?)
}

/// Sets or clears `O_NONBLOCK` on the open file description.
pub(crate) fn set_nonblocking(fd: impl AsFd, on: bool) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(&fd)?;
    let new = if on {
        flags | OFlags::NONBLOCK
    } else {
        flags - OFlags::NONBLOCK
    };
    if new != flags {
        rustix::fs::fcntl_setfl(&fd, new)?;
    }
    Ok(())
}

/// One `read(2)`.
pub(crate) fn read(fd: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    Ok(rustix::io::read(fd, buf)?)
}

/// One `write(2)`.
pub(crate) fn write(fd: impl AsFd, buf: &[u8]) -> io::Result<usize> {
    Ok(rustix::io::write(fd, buf)?)
}

/// `fcntl(F_GETPIPE_SZ)`.
pub(crate) fn pipe_size(fd: impl AsFd) -> io::Result<usize> {
    Ok(rustix::pipe::fcntl_getpipe_size(fd)?)
}

/// `fcntl(F_SETPIPE_SZ)`: returns the capacity the kernel chose.
pub(crate) fn set_pipe_size(fd: impl AsFd, size: usize) -> io::Result<usize> {
    Ok(rustix::pipe::fcntl_setpipe_size(fd, size)?)
}

/// Whether `fd` is a pipe or FIFO.
pub(crate) fn is_pipe(fd: impl AsFd) -> io::Result<bool> {
    let st = rustix::fs::fstat(fd)?;
    Ok(rustix::fs::FileType::from_raw_mode(st.st_mode).is_fifo())
}

/// A new close-on-exec descriptor for whatever `fd` (a descriptor number this process
/// inherited) refers to. `fd` itself is left open and untouched.
pub(crate) fn dup_inherited(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) takes and returns plain integers and touches no memory of
    // ours. For a number that is not an open descriptor it fails with EBADF; otherwise it
    // returns a brand-new descriptor that nothing else in the process knows about, so wrapping
    // it in an OwnedFd (done below, exactly once) makes it owned exactly once.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    let new = super::cvt(new)?;
    // SAFETY: `new` was just returned by a successful F_DUPFD_CLOEXEC: it is open and owned by
    // no one else.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(new) })
}

/// Arranges for `fd` to appear as descriptor `target` (`3..=MAX_CHILD_FD`, inheritable) in the
/// process `cmd` spawns.
///
/// `fd` is first duplicated above [`MAX_CHILD_FD`] (close-on-exec), so that no source
/// descriptor is ever one of the targets: several mappings on one `Command` cannot clobber
/// each other. In the child, `dup2` puts it in place (and `dup2` clears close-on-exec on the
/// target). The duplicate lives in the closure, i.e. as long as `cmd`.
pub(crate) fn map_fd_into_child(cmd: &mut Command, fd: OwnedFd, target: RawFd) -> io::Result<()> {
    if !(3..=MAX_CHILD_FD).contains(&target) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "descriptor number {target} is out of range 3..={MAX_CHILD_FD} (use Stdio for 0, 1 and 2)"
            ),
        ));
    }
    let high = rustix::io::fcntl_dupfd_cloexec(&fd, MAX_CHILD_FD + 1)?;
    drop(fd);
    let src = high.as_raw_fd();
    let hook = move || {
        // Keep the descriptor alive (owned by the closure) for as long as the Command.
        let _keep = &high;
        // SAFETY: dup2 takes two integers and touches no memory of ours; it is
        // async-signal-safe, as code between fork and exec must be. `src` is open (owned by
        // the closure, which the Command keeps alive while spawning) and differs from
        // `target` (src > MAX_CHILD_FD >= target). The child's `target` descriptor, if open,
        // is replaced, which is the purpose of this call.
        let r = unsafe { libc::dup2(src, target) };
        if r == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook only calls dup2 (async-signal-safe) and builds an io::Error from errno
    // (no allocation), so it is sound to run in the child between fork and exec; it does not
    // rely on any state that fork could have left inconsistent (no locks, no allocator).
    unsafe {
        cmd.pre_exec(hook);
    }
    Ok(())
}
