//! POSIX message queues: `mq_open`, `mq_timedsend`, `mq_timedreceive`, `mq_getattr`,
//! `mq_setattr`, `mq_unlink`, and `fstat`/`fchmod` on the queue descriptor.
//!
//! On Linux a message-queue descriptor (`mqd_t`) is a file descriptor: it is pollable, it is
//! closed by `close(2)` (glibc's `mq_close` is exactly that), and the kernel always creates it
//! close-on-exec. It is therefore held here as an [`OwnedFd`]. nix has no `mq_timedsend`, so
//! this module calls libc directly for every operation, which keeps one code path for the
//! blocking, non-blocking and deadline variants.
//!
//! # References
//! [mq_overview(7)](https://man7.org/linux/man-pages/man7/mq_overview.7.html),
//! [mq_open(3)](https://man7.org/linux/man-pages/man3/mq_open.3.html),
//! [mq_send(3)](https://man7.org/linux/man-pages/man3/mq_send.3.html),
//! [mq_receive(3)](https://man7.org/linux/man-pages/man3/mq_receive.3.html).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::name::PosixName;
use crate::wait::Wait;

use super::{cvt, retry_eintr};

/// Where the system-wide limits of POSIX queues live (unprivileged creators must stay within).
pub(crate) const MSG_MAX_FILE: &str = "/proc/sys/fs/mqueue/msg_max";
/// See [`MSG_MAX_FILE`].
pub(crate) const MSGSIZE_MAX_FILE: &str = "/proc/sys/fs/mqueue/msgsize_max";

/// Reads one of the `/proc/sys/fs/mqueue` limits; `None` when unreadable.
pub(crate) fn read_limit(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// How `mq_open` treats an existing / missing queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Must exist.
    Open,
    /// Must not exist (`O_CREAT | O_EXCL`).
    CreateNew,
}

/// Arguments of `mq_open`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenArgs {
    pub(crate) read: bool,
    pub(crate) write: bool,
    pub(crate) nonblocking: bool,
    pub(crate) how: Disposition,
    pub(crate) mode: u32,
    /// `(mq_maxmsg, mq_msgsize)` for a new queue; `None` takes the system defaults.
    pub(crate) capacity: Option<(i64, i64)>,
}

/// `mq_open(3)`. The descriptor is close-on-exec.
pub(crate) fn mq_open(name: &PosixName, args: &OpenArgs) -> io::Result<OwnedFd> {
    let mut oflag = match (args.read, args.write) {
        (true, true) => libc::O_RDWR,
        (false, true) => libc::O_WRONLY,
        _ => libc::O_RDONLY,
    };
    oflag |= libc::O_CLOEXEC;
    if args.nonblocking {
        oflag |= libc::O_NONBLOCK;
    }
    if args.how == Disposition::CreateNew {
        oflag |= libc::O_CREAT | libc::O_EXCL;
    }
    // SAFETY: an all-zero mq_attr is a valid value (plain integers).
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    let attr_ptr: *mut libc::mq_attr = match args.capacity {
        Some((maxmsg, msgsize)) => {
            attr.mq_maxmsg = maxmsg as _;
            attr.mq_msgsize = msgsize as _;
            &mut attr
        }
        None => std::ptr::null_mut(),
    };
    let fd = retry_eintr(|| {
        // SAFETY:
        // - `name` is a valid NUL-terminated string that outlives the call;
        // - the variadic arguments are the `mode_t` and `struct mq_attr *` that mq_open reads
        //   when O_CREAT is set (ignored otherwise); `attr_ptr` is null (system defaults) or
        //   points to `attr`, which lives until the end of this function.
        cvt(unsafe {
            libc::mq_open(
                name.as_c_str().as_ptr(),
                oflag,
                args.mode as libc::mode_t,
                attr_ptr,
            )
        })
    })?;
    // SAFETY: on success mq_open returns a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `mq_unlink(3)`.
pub(crate) fn mq_unlink(name: &PosixName) -> io::Result<()> {
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    cvt(unsafe { libc::mq_unlink(name.as_c_str().as_ptr()) }).map(drop)
}

/// What `fstat` tells about an open queue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueStat {
    /// The owner's uid.
    pub(crate) uid: u32,
    /// Links to the queue's inode: 1 while its name exists, 0 once `mq_unlink` removed it
    /// (the queue itself lives on until its last descriptor is closed).
    pub(crate) nlink: u64,
}

/// `fstat(2)` on a queue descriptor: its owner, and whether its name still exists.
pub(crate) fn mq_fstat(fd: BorrowedFd<'_>) -> io::Result<QueueStat> {
    let st = rustix::fs::fstat(fd)?;
    Ok(QueueStat {
        uid: st.st_uid,
        nlink: st.st_nlink as u64,
    })
}

/// `fchmod(2)` on a queue descriptor: sets the exact permission bits (`mq_open` applies the
/// umask to the mode it is given).
pub(crate) fn mq_fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::fchmod(
        fd,
        rustix::fs::Mode::from_raw_mode(mode),
    )?)
}

/// The attributes `mq_getattr` reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attr {
    pub(crate) flags: i64,
    pub(crate) maxmsg: i64,
    pub(crate) msgsize: i64,
    pub(crate) curmsgs: i64,
}

/// `mq_getattr(3)`.
pub(crate) fn mq_getattr(fd: BorrowedFd<'_>) -> io::Result<Attr> {
    // SAFETY: an all-zero mq_attr is a valid value (plain integers).
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is an open queue descriptor for the duration of the call; `attr` is a valid,
    // writable mq_attr.
    cvt(unsafe { libc::mq_getattr(fd.as_raw_fd(), &mut attr) })?;
    Ok(Attr {
        flags: attr.mq_flags as i64,
        maxmsg: attr.mq_maxmsg as i64,
        msgsize: attr.mq_msgsize as i64,
        curmsgs: attr.mq_curmsgs as i64,
    })
}

/// Sets or clears `O_NONBLOCK` on the open queue description (`mq_setattr(3)`).
#[doc(alias = "mq_setattr")]
pub(crate) fn mq_set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<()> {
    // SAFETY: an all-zero mq_attr is a valid value (plain integers).
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    attr.mq_flags = if nonblocking {
        libc::O_NONBLOCK as _
    } else {
        0
    };
    // SAFETY: `fd` is an open queue descriptor; `attr` is a valid mq_attr that mq_setattr only
    // reads; the old-attributes pointer may be null.
    cvt(unsafe { libc::mq_setattr(fd.as_raw_fd(), &attr, std::ptr::null_mut()) }).map(drop)
}

/// The `abs_timeout` for `mq_timed*`: `None` blocks (plain `mq_send`/`mq_receive` semantics);
/// `NoWait` is the epoch, a deadline that has always passed, so the call never sleeps and
/// fails with `ETIMEDOUT` (or `EAGAIN` on a non-blocking descriptor) when it would block.
fn deadline(wait: Wait) -> Option<libc::timespec> {
    let remaining = wait.remaining()?;
    if remaining.is_zero() {
        return Some(libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        });
    }
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    let now = Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
    let at = now.checked_add(remaining)?;
    let tv_sec = libc::time_t::try_from(at.as_secs()).ok()?;
    Some(libc::timespec {
        tv_sec,
        tv_nsec: at.subsec_nanos() as _,
    })
}

/// `mq_timedsend(3)` with a deadline from `wait` (see [`deadline`]); retried on `EINTR` with
/// the deadline recomputed.
#[doc(alias = "mq_timedsend")]
pub(crate) fn mq_send(fd: BorrowedFd<'_>, msg: &[u8], prio: u32, wait: Wait) -> io::Result<()> {
    retry_eintr(|| {
        let ts = deadline(wait);
        let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
        // SAFETY:
        // - `fd` is an open queue descriptor for the duration of the call;
        // - `msg` is valid for reads of `msg.len()` bytes;
        // - `ts_ptr` is null (block) or points to `ts`, alive until the call returns.
        cvt(unsafe {
            libc::mq_timedsend(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), prio, ts_ptr)
        })
        .map(drop)
    })
}

/// `mq_timedreceive(3)` into `buf` (which must be at least `mq_msgsize` long, or the call fails
/// with `EMSGSIZE`), with a deadline from `wait`. Returns the length and priority.
#[doc(alias = "mq_timedreceive")]
pub(crate) fn mq_receive(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    wait: Wait,
) -> io::Result<(usize, u32)> {
    retry_eintr(|| {
        let ts = deadline(wait);
        let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
        let mut prio: libc::c_uint = 0;
        // SAFETY:
        // - `fd` is an open queue descriptor for the duration of the call;
        // - `buf` is valid for writes of `buf.len()` bytes and the kernel writes at most that;
        // - `prio` is a valid, writable c_uint;
        // - `ts_ptr` is null (block) or points to `ts`, alive until the call returns.
        let n = cvt(unsafe {
            libc::mq_timedreceive(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut prio,
                ts_ptr,
            )
        })?;
        Ok((n as usize, prio))
    })
}

/// Registers a queue descriptor with the current tokio runtime's reactor.
#[cfg(feature = "tokio")]
pub(crate) fn register_async(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: `OwnedFd` owns a valid, open descriptor and never replaces or closes it while
    // the AsyncFd holds it; it is closed only after AsyncFd has deregistered it on drop.
    unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(io::Error::from)
}
