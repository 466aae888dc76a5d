//! The only code in ipcx that calls the operating system, and (with the shared-memory internals)
//! the only home of `unsafe`.
//!
//! # Safety
//! Every `unsafe` block here carries a `// SAFETY:` comment stating why the call is sound: the
//! pointers passed are valid for the lengths passed, buffers outlive the call, and file
//! descriptors returned by the kernel are owned exactly once (wrapped in `OwnedFd` immediately).
//! Public functions of this module are safe; callers above `sys` never see raw pointers.
//!
//! rustix is used first; `libc` (and `nix` for POSIX queues and signalfd) fill the gaps that
//! rustix does not cover (System V IPC, `mq_*`, `sigqueue`, `sem_*`, pthread robust mutexes).
#![allow(unsafe_code)]

use std::io;

/// Converts a libc return value (`-1` on failure, errno set) into an `io::Result`.
#[allow(dead_code)] // used by the mechanism back ends
pub(crate) fn cvt<T: IsMinusOne>(ret: T) -> io::Result<T> {
    if ret.is_minus_one() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Calls `f` until it fails with something other than `EINTR`.
#[allow(dead_code)] // used by the mechanism back ends
pub(crate) fn retry_eintr<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Integer return types of libc calls that signal failure with `-1`.
#[allow(dead_code)]
pub(crate) trait IsMinusOne {
    fn is_minus_one(&self) -> bool;
}

macro_rules! impl_is_minus_one {
    ($($t:ty)*) => ($(impl IsMinusOne for $t {
        fn is_minus_one(&self) -> bool { *self == -1 }
    })*)
}
impl_is_minus_one! { i8 i16 i32 i64 isize }

/// `AsFd` and `AsRawFd` for a type `$t` that owns its descriptor in field `$field`.
macro_rules! fd_of_field {
    ($t:ty, $field:ident) => {
        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.$field)
            }
        }
        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&self.$field)
            }
        }
    };
}
pub(crate) use fd_of_field;

pub(crate) mod interrupt;
pub(crate) mod mmap;
pub(crate) mod poll;
pub(crate) mod region;
pub(crate) mod shm;
pub(crate) mod sigbus;
pub(crate) mod sysv;

// Mechanism back ends, one per kernel area (filled in by each mechanism's change).
pub(crate) mod epoll;
pub(crate) mod eventfd;
pub(crate) mod fifo;
pub(crate) mod futex;
pub(crate) mod mq;
pub(crate) mod pipe;
pub(crate) mod pthread;
pub(crate) mod sem;
pub(crate) mod signal;
pub(crate) mod socket;
pub(crate) mod sysv_msg;
pub(crate) mod sysv_sem;
pub(crate) mod sysv_shm;
