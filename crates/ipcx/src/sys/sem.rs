//! POSIX named semaphores (`sem_open`, `sem_wait`, `sem_clockwait`, `sem_post`, ...).
//!
//! The libc crate does not declare `sem_clockwait` (glibc >= 2.30), so it is declared here.

use std::io;
use std::ptr::NonNull;
use std::time::Duration;

use crate::name::PosixName;

use super::cvt;

unsafe extern "C" {
    /// `sem_clockwait(3)`: like `sem_timedwait` but the absolute deadline is measured on
    /// `clockid` (glibc >= 2.30).
    fn sem_clockwait(
        sem: *mut libc::sem_t,
        clockid: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
}

/// How to open a named semaphore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenHow {
    /// Must exist.
    Open,
    /// Create; fail with `EEXIST` if it exists.
    CreateNew,
}

/// A semaphore handle returned by `sem_open`, closed with `sem_close` on drop.
#[derive(Debug)]
pub(crate) struct NamedSem(NonNull<libc::sem_t>);

// SAFETY: a `sem_t*` returned by `sem_open` refers to a process-wide mapping of the semaphore;
// every sem_* function on it is thread-safe (POSIX requires semaphores to be usable from any
// thread), and the pointer stays valid until `sem_close`, which only `Drop` (with `&mut self`)
// calls.
unsafe impl Send for NamedSem {}
// SAFETY: see `Send`: the sem_* functions called through `&self` are thread-safe.
unsafe impl Sync for NamedSem {}

/// `sem_open(name, flags, mode, value)`.
pub(crate) fn sem_open(
    name: &PosixName,
    how: OpenHow,
    mode: u32,
    value: u32,
) -> io::Result<NamedSem> {
    let ptr = match how {
        // SAFETY: `name` is a valid NUL-terminated string that outlives the call; without
        // O_CREAT, sem_open reads no variadic arguments.
        OpenHow::Open => unsafe { libc::sem_open(name.as_c_str().as_ptr(), 0) },
        // SAFETY:
        // - `name` is a valid NUL-terminated string that outlives the call;
        // - with O_CREAT, sem_open reads exactly two variadic arguments, a `mode_t` (passed as
        //   `c_uint`, its promoted type) and an `unsigned int` initial value.
        OpenHow::CreateNew => unsafe {
            libc::sem_open(
                name.as_c_str().as_ptr(),
                libc::O_CREAT | libc::O_EXCL,
                mode as libc::c_uint,
                value as libc::c_uint,
            )
        },
    };
    if ptr == libc::SEM_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(ptr)
        .map(NamedSem)
        .ok_or_else(|| io::Error::other("sem_open returned a null pointer"))
}

/// The owner and identity of the file glibc keeps a named semaphore in
/// (`/dev/shm/sem.NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SemFile {
    pub(crate) uid: u32,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

/// `lstat` of the semaphore's file: `sem_open` gives no descriptor to `fstat`, so this is how
/// the owner and the identity of a named semaphore are known. Never follows a symlink.
pub(crate) fn sem_file(name: &PosixName) -> io::Result<SemFile> {
    let base = name.as_str().strip_prefix('/').unwrap_or(name.as_str());
    let path = format!("/dev/shm/sem.{base}");
    let st = rustix::fs::statat(
        rustix::fs::CWD,
        path.as_str(),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(SemFile {
        uid: st.st_uid,
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

/// `sem_unlink(name)`.
pub(crate) fn sem_unlink(name: &PosixName) -> io::Result<()> {
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    cvt(unsafe { libc::sem_unlink(name.as_c_str().as_ptr()) }).map(drop)
}

impl NamedSem {
    fn ptr(&self) -> *mut libc::sem_t {
        self.0.as_ptr()
    }

    /// `sem_wait` once (may fail with `EINTR`).
    pub(crate) fn wait(&self) -> io::Result<()> {
        // SAFETY: `self.0` came from a successful sem_open and is not closed before drop.
        cvt(unsafe { libc::sem_wait(self.ptr()) }).map(drop)
    }

    /// `sem_trywait` (fails with `EAGAIN` when the value is zero).
    pub(crate) fn try_wait(&self) -> io::Result<()> {
        // SAFETY: `self.0` came from a successful sem_open and is not closed before drop.
        cvt(unsafe { libc::sem_trywait(self.ptr()) }).map(drop)
    }

    /// `sem_clockwait(CLOCK_MONOTONIC)` with an absolute deadline of `deadline` on the monotonic
    /// clock (fails with `ETIMEDOUT` or `EINTR`).
    pub(crate) fn wait_monotonic(&self, deadline: Duration) -> io::Result<()> {
        let ts = libc::timespec {
            tv_sec: libc::time_t::try_from(deadline.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: deadline.subsec_nanos() as _,
        };
        // SAFETY:
        // - `self.0` came from a successful sem_open and is not closed before drop;
        // - `ts` is a valid, normalised timespec that outlives the call.
        cvt(unsafe { sem_clockwait(self.ptr(), libc::CLOCK_MONOTONIC, &ts) }).map(drop)
    }

    /// `sem_post` (fails with `EOVERFLOW` at `SEM_VALUE_MAX`).
    pub(crate) fn post(&self) -> io::Result<()> {
        // SAFETY: `self.0` came from a successful sem_open and is not closed before drop.
        cvt(unsafe { libc::sem_post(self.ptr()) }).map(drop)
    }

    /// `sem_getvalue`.
    pub(crate) fn value(&self) -> io::Result<i32> {
        let mut v: libc::c_int = 0;
        // SAFETY: `self.0` is open (see above); `v` is a valid, writable c_int.
        cvt(unsafe { libc::sem_getvalue(self.ptr(), &mut v) })?;
        Ok(v)
    }
}

impl Drop for NamedSem {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from sem_open and is closed exactly once, here; no borrow of
        // `self` can outlive `drop`.
        unsafe { libc::sem_close(self.ptr()) };
    }
}

/// The current time on `CLOCK_MONOTONIC`, the clock `std::time::Instant` uses on Linux.
pub(crate) fn monotonic_now() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// `SEM_VALUE_MAX`: the largest value of a POSIX semaphore.
pub(crate) const SEM_VALUE_MAX: u32 = i32::MAX as u32;
