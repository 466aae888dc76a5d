//! Receiving signals through a signalfd: [`SignalReceiver`] and what it reads
//! ([`SignalInfo`], [`SigCode`]).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use super::mask::sigset;
use super::{Signal, SignalError};
use crate::sys::poll::{WaitError, retry_ready};
use crate::sys::signal as sys;
use crate::wait::Wait;

/// How a signal was sent (`si_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SigCode {
    /// `SI_USER`: `kill(2)` (or `pidfd_send_signal` without payload).
    User,
    /// `SI_QUEUE`: `sigqueue(3)` (or a [`Process`](super::Process) send with payload).
    Queue,
    /// `SI_KERNEL`: the kernel.
    Kernel,
    /// `SI_TKILL`: `tkill(2)`/`tgkill(2)`.
    Tkill,
    /// `SI_TIMER`: a POSIX timer expired.
    Timer,
    /// `SI_MESGQ`: a POSIX message queue notification.
    MessageQueue,
    /// `SI_ASYNCIO`: asynchronous I/O completed.
    AsyncIo,
    /// Any other code (for example the `CLD_*` codes of `SIGCHLD`).
    Other(i32),
}

impl SigCode {
    fn from_raw(code: i32) -> SigCode {
        match code {
            libc::SI_USER => SigCode::User,
            libc::SI_QUEUE => SigCode::Queue,
            libc::SI_KERNEL => SigCode::Kernel,
            libc::SI_TKILL => SigCode::Tkill,
            libc::SI_TIMER => SigCode::Timer,
            libc::SI_MESGQ => SigCode::MessageQueue,
            libc::SI_ASYNCIO => SigCode::AsyncIo,
            other => SigCode::Other(other),
        }
    }
}

/// One received signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignalInfo {
    /// The signal.
    pub signal: Signal,
    /// The sender's pid (for `SI_USER`/`SI_QUEUE`; 0 for signals from the kernel).
    pub pid: i32,
    /// The sender's real uid.
    pub uid: u32,
    /// How it was sent.
    pub code: SigCode,
    /// The integer payload (`sival_int`; 0 without payload).
    pub value: i32,
    /// The payload as a pointer-sized integer (`sival_ptr`).
    pub value_ptr: u64,
    /// For `SIGCHLD`: the child's exit status or signal.
    pub status: i32,
}

/// Receives signals through a `signalfd(2)`.
///
/// Creating one blocks its signals in the calling thread; see the module docs for what the
/// rest of the program must do ("Threads"). The fd is close-on-exec and non-blocking; it is
/// readable while one of its signals is pending, so it can be polled or used with an event loop
/// (with the `tokio` feature: [`AsyncSignalReceiver`](super::AsyncSignalReceiver)).
#[derive(Debug)]
#[doc(alias = "signalfd")]
pub struct SignalReceiver {
    pub(super) fd: OwnedFd,
}

impl SignalReceiver {
    /// Blocks `signals` in the calling thread and opens a signalfd for them.
    /// [`SignalError::Unblockable`] for `KILL` and `STOP`.
    pub fn new(signals: &[Signal]) -> Result<SignalReceiver, SignalError> {
        let set = sigset(signals)?;
        sys::thread_sigmask(sys::MaskHow::Block, &set)
            .map_err(|e| SignalError::io("pthread_sigmask", e))?;
        let fd = sys::signalfd(&set).map_err(|e| SignalError::io("signalfd", e))?;
        Ok(SignalReceiver { fd })
    }

    /// Waits for the next signal.
    pub fn recv(&self) -> Result<SignalInfo, SignalError> {
        self.recv_wait(Wait::Forever)
    }

    /// The next pending signal; [`SignalError::WouldBlock`] if none is pending.
    pub fn try_recv(&self) -> Result<SignalInfo, SignalError> {
        self.recv_wait(Wait::NoWait)
    }

    /// Waits at most `timeout` for the next signal; [`SignalError::Timeout`] if none arrives.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<SignalInfo, SignalError> {
        self.recv_wait(Wait::timeout(timeout))
    }

    /// Waits for the next signal as `wait` says.
    pub fn recv_wait(&self, wait: Wait) -> Result<SignalInfo, SignalError> {
        // Only `WouldBlock` reaches the wait loop as an error; every other outcome of the read
        // comes back as `Ok`.
        let read = || match read_info(&self.fd) {
            Err(SignalError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            other => Ok(other),
        };
        match retry_ready(self.fd.as_fd(), true, wait, read) {
            Ok(outcome) => outcome,
            Err(WaitError::WouldBlock) => Err(SignalError::WouldBlock),
            Err(WaitError::Timeout) => Err(SignalError::Timeout),
            Err(WaitError::Io(e)) => Err(SignalError::io("poll", e)),
        }
    }
}

pub(super) fn read_info(fd: impl AsFd) -> Result<SignalInfo, SignalError> {
    let raw = sys::read_siginfo(fd).map_err(|e| {
        if e.kind() == io::ErrorKind::WouldBlock {
            SignalError::WouldBlock
        } else {
            SignalError::io("read(signalfd)", e)
        }
    })?;
    Ok(SignalInfo {
        signal: Signal(raw.signo as i32),
        pid: raw.pid as i32,
        uid: raw.uid,
        code: SigCode::from_raw(raw.code),
        value: raw.int,
        value_ptr: raw.ptr,
        status: raw.status,
    })
}

impl AsFd for SignalReceiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl crate::wait_set::Waitable for SignalReceiver {
    /// Ready while one of its signals is pending.
    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        Ok(crate::wait_set::Readiness::fd(self.fd.as_fd()))
    }
}

impl AsRawFd for SignalReceiver {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<OwnedFd> for SignalReceiver {
    /// Wraps an existing signalfd (which should be non-blocking: `SFD_NONBLOCK`). The mask of
    /// the signals it reports is not changed.
    fn from(fd: OwnedFd) -> SignalReceiver {
        SignalReceiver { fd }
    }
}

impl From<SignalReceiver> for OwnedFd {
    fn from(rx: SignalReceiver) -> OwnedFd {
        rx.fd
    }
}
