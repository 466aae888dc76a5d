//! Signals: `kill`, `sigqueue`, pidfds (`pidfd_open`, `pidfd_send_signal` with a `siginfo_t`),
//! signal masks and `signalfd`.
//!
//! rustix's `Signal` cannot name real-time signals and its `pidfd_send_signal` passes no
//! `siginfo_t`, and nix's `Signal` cannot name real-time signals either, so this module uses libc.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::cvt;

/// `SIGRTMIN` as the C library reports it at run time (glibc reserves the first few
/// real-time signals for itself).
pub(crate) fn sigrtmin() -> i32 {
    libc::SIGRTMIN()
}

/// `SIGRTMAX`.
pub(crate) fn sigrtmax() -> i32 {
    libc::SIGRTMAX()
}

/// `kill(pid, sig)`.
pub(crate) fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill takes no pointers.
    cvt(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// Builds a `sigval` whose `sival_int` member is `value` (the rest of the union zeroed).
fn sigval_int(value: i32) -> libc::sigval {
    #[repr(C)]
    union SigvalRepr {
        int: libc::c_int,
        ptr: *mut libc::c_void,
    }
    let mut v = SigvalRepr {
        ptr: std::ptr::null_mut(),
    };
    v.int = value;
    // SAFETY: `ptr` was initialised (null) and then only its first `c_int` bytes overwritten by
    // `int`, so every byte of the pointer-sized member is initialised; any bit pattern is a
    // valid raw pointer (it is never dereferenced, only handed to the kernel as data).
    let sival_ptr = unsafe { v.ptr };
    libc::sigval { sival_ptr }
}

/// `sigqueue(pid, sig, value)` with `value` as the `sival_int` payload.
pub(crate) fn sigqueue(pid: i32, sig: i32, value: i32) -> io::Result<()> {
    // SAFETY: sigqueue takes the sigval by value and no pointers it would dereference.
    cvt(unsafe { libc::sigqueue(pid, sig, sigval_int(value)) }).map(drop)
}

/// `pidfd_open(pid, 0)`: the fd is always close-on-exec.
pub(crate) fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    Ok(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::empty(),
    )?)
}

/// The kernel's `siginfo_t` layout for `SI_QUEUE` (the `_rt` member of its union), padded to the
/// full 128 bytes.
#[repr(C)]
struct SigInfoQueue {
    si_signo: libc::c_int,
    si_errno: libc::c_int,
    si_code: libc::c_int,
    // The union that follows is pointer-aligned.
    #[cfg(target_pointer_width = "64")]
    _pad0: libc::c_int,
    si_pid: libc::pid_t,
    si_uid: libc::uid_t,
    si_value: libc::sigval,
    _rest: [u8; SIGINFO_REST],
}

#[cfg(target_pointer_width = "64")]
const SIGINFO_REST: usize = 128 - 32;
#[cfg(target_pointer_width = "32")]
const SIGINFO_REST: usize = 128 - 24;

const _: () = assert!(std::mem::size_of::<SigInfoQueue>() == 128);
const _: () =
    assert!(std::mem::size_of::<SigInfoQueue>() == std::mem::size_of::<libc::siginfo_t>());

/// `pidfd_send_signal(fd, sig, info, 0)`: with `value`, a `siginfo_t` with code `SI_QUEUE`,
/// this process's pid and uid and the payload (what `sigqueue` sends); without, as `kill`.
pub(crate) fn pidfd_send_signal(
    fd: BorrowedFd<'_>,
    sig: i32,
    value: Option<i32>,
) -> io::Result<()> {
    let info = value.map(|value| SigInfoQueue {
        si_signo: sig,
        si_errno: 0,
        si_code: libc::SI_QUEUE,
        #[cfg(target_pointer_width = "64")]
        _pad0: 0,
        si_pid: std::process::id() as libc::pid_t,
        si_uid: rustix::process::getuid().as_raw(),
        si_value: sigval_int(value),
        _rest: [0; SIGINFO_REST],
    });
    let info_ptr = info
        .as_ref()
        .map_or(std::ptr::null(), |i| i as *const SigInfoQueue);
    // SAFETY:
    // - `fd` is a valid, open fd borrowed for the duration of the call;
    // - `info_ptr` is null or points to `info`, a fully initialised 128-byte `siginfo_t` in the
    //   kernel's layout (checked by the size assertions above) that outlives the call;
    // - the syscall number and argument count match pidfd_send_signal(2).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            info_ptr,
            0 as libc::c_uint,
        )
    };
    cvt(ret).map(drop)
}

/// The pid a pidfd refers to, from `/proc/self/fdinfo` (`None` if unknown; `-1` there means
/// the process was reaped).
pub(crate) fn pidfd_pid(fd: BorrowedFd<'_>) -> Option<i32> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// A signal set (`sigset_t`).
#[derive(Clone, Copy)]
pub(crate) struct SigSet(libc::sigset_t);

impl SigSet {
    /// The empty set.
    pub(crate) fn empty() -> SigSet {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the whole set it is given; it cannot fail for a valid
        // pointer.
        unsafe { libc::sigemptyset(set.as_mut_ptr()) };
        // SAFETY: initialised by sigemptyset just above.
        SigSet(unsafe { set.assume_init() })
    }

    /// Adds `sig` (`EINVAL` if it is not a valid signal number).
    pub(crate) fn add(&mut self, sig: i32) -> io::Result<()> {
        // SAFETY: `self.0` is an initialised sigset_t, borrowed mutably for the call.
        cvt(unsafe { libc::sigaddset(&mut self.0, sig) }).map(drop)
    }

    /// Whether `sig` is in the set.
    pub(crate) fn contains(&self, sig: i32) -> bool {
        // SAFETY: `self.0` is an initialised sigset_t, only read.
        unsafe { libc::sigismember(&self.0, sig) == 1 }
    }
}

/// How `pthread_sigmask` changes the mask.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MaskHow {
    Block,
    Unblock,
}

/// `pthread_sigmask(how, set)`: changes the calling thread's signal mask; returns the old mask.
pub(crate) fn thread_sigmask(how: MaskHow, set: &SigSet) -> io::Result<SigSet> {
    let how = match how {
        MaskHow::Block => libc::SIG_BLOCK,
        MaskHow::Unblock => libc::SIG_UNBLOCK,
    };
    let mut old = SigSet::empty();
    // SAFETY: `set.0` and `old.0` are initialised sigset_t values that outlive the call.
    let ret = unsafe { libc::pthread_sigmask(how, &set.0, &mut old.0) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(old)
}

/// The calling thread's current signal mask.
pub(crate) fn current_thread_mask() -> io::Result<SigSet> {
    let mut old = SigSet::empty();
    // SAFETY: a null `set` only queries the mask; `old.0` is a valid sigset_t to write into.
    let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut old.0) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(old)
}

/// `signalfd(-1, set, SFD_CLOEXEC | SFD_NONBLOCK)`.
pub(crate) fn signalfd(set: &SigSet) -> io::Result<OwnedFd> {
    // SAFETY: `set.0` is an initialised sigset_t that outlives the call; -1 asks for a new fd.
    let fd = cvt(unsafe { libc::signalfd(-1, &set.0, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) })?;
    // SAFETY: signalfd returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The fields of a `signalfd_siginfo` that ipcx reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawSigInfo {
    pub(crate) signo: u32,
    pub(crate) code: i32,
    pub(crate) pid: u32,
    pub(crate) uid: u32,
    pub(crate) int: i32,
    pub(crate) ptr: u64,
    pub(crate) status: i32,
}

/// Reads one `signalfd_siginfo` from a signalfd (`EAGAIN` when none is pending on a
/// non-blocking fd). Retries `EINTR`.
pub(crate) fn read_siginfo(fd: impl AsFd) -> io::Result<RawSigInfo> {
    let fd = fd.as_fd();
    let mut si = MaybeUninit::<libc::signalfd_siginfo>::zeroed();
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    let n = super::retry_eintr(|| {
        // SAFETY: `si` is a writable buffer of exactly `size` bytes that outlives the call.
        cvt(unsafe { libc::read(fd.as_raw_fd(), si.as_mut_ptr().cast(), size) })
    })?;
    if n as usize != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "short read from signalfd",
        ));
    }
    // SAFETY: the struct is plain integers (zeroed, so valid even before the read) and the
    // kernel filled all `size` bytes.
    let si = unsafe { si.assume_init() };
    Ok(RawSigInfo {
        signo: si.ssi_signo,
        code: si.ssi_code,
        pid: si.ssi_pid,
        uid: si.ssi_uid,
        int: si.ssi_int,
        ptr: si.ssi_ptr,
        status: si.ssi_status,
    })
}

/// Registers a signalfd or pidfd with the tokio reactor (readable interest).
#[cfg(feature = "tokio")]
pub(crate) fn register_async(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: the `OwnedFd` is open, moves into the AsyncFd (so nothing else can close it), and
    // `OwnedFd::as_raw_fd` always returns the same fd; it is closed only when the AsyncFd drops
    // it, after deregistering it.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(io::Error::from)
}
