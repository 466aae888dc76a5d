//! [`Process`]: a process named by a pidfd, which never reaches a recycled pid.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::Child;
use std::time::Duration;

use super::send::check_pid;
use super::{Signal, SignalError};
use crate::sys::poll::poll_wait;

use crate::sys::signal as sys;
use crate::wait::Wait;

/// A handle on one process through a pidfd (`pidfd_open(2)`).
///
/// Unlike a pid, a pidfd keeps referring to the same process: once that process has exited and
/// been reaped, sending fails with [`SignalError::Exited`] instead of reaching whichever process
/// got the pid next. The fd becomes readable when the process exits ([`Process::has_exited`],
/// [`Process::wait_exit_timeout`], or poll it yourself).
#[derive(Debug)]
#[doc(alias = "pidfd")]
pub struct Process {
    fd: OwnedFd,
    pid: i32,
}

impl Process {
    /// Opens a pidfd for `pid`. The pid is checked once, here: if it was already reused, the
    /// handle refers to the new process, so prefer [`Process::from_child`] for your own
    /// children. [`SignalError::NoSuchProcess`] if there is no such process.
    #[doc(alias = "pidfd_open")]
    pub fn from_pid(pid: i32) -> Result<Process, SignalError> {
        check_pid(pid)?;
        let fd = sys::pidfd_open(pid).map_err(|e| match e.raw_os_error() {
            Some(libc::ESRCH) => SignalError::NoSuchProcess { pid },
            _ => SignalError::io("pidfd_open", e),
        })?;
        Ok(Process { fd, pid })
    }

    /// Opens a pidfd for a child spawned with `std::process`. Race-free as long as the child
    /// has not been waited for yet (an unreaped child keeps its pid), so call this before
    /// `wait`/`try_wait` reports its exit.
    pub fn from_child(child: &Child) -> Result<Process, SignalError> {
        let pid = i32::try_from(child.id()).map_err(|_| SignalError::NoSuchProcess { pid: -1 })?;
        Process::from_pid(pid)
    }

    /// The pid the handle was opened for.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `signal` (like `kill`; the receiver sees [`SigCode::User`](super::SigCode::User)).
    /// [`SignalError::Exited`] if the process has exited and was reaped.
    #[doc(alias = "pidfd_send_signal")]
    pub fn send(&self, signal: Signal) -> Result<(), SignalError> {
        sys::pidfd_send_signal(self.fd.as_fd(), signal.0, None).map_err(|e| self.send_error(e))
    }

    /// Sends `signal` with the payload `value`, as `sigqueue` would (the receiver sees
    /// [`SigCode::Queue`](super::SigCode::Queue), this process's pid and uid, and the value).
    pub fn queue(&self, signal: Signal, value: i32) -> Result<(), SignalError> {
        sys::pidfd_send_signal(self.fd.as_fd(), signal.0, Some(value))
            .map_err(|e| self.send_error(e))
    }

    fn send_error(&self, e: io::Error) -> SignalError {
        match e.raw_os_error() {
            Some(libc::ESRCH) => SignalError::Exited { pid: self.pid },
            _ => SignalError::on_send("pidfd_send_signal", self.pid, e),
        }
    }

    /// Whether the process has exited (the pidfd is readable); it may not be reaped yet.
    pub fn has_exited(&self) -> Result<bool, SignalError> {
        crate::sys::poll::poll(self.fd.as_fd(), true, false, 0)
            .map(|ev| ev.any())
            .map_err(|e| SignalError::io("poll(pidfd)", e))
    }

    /// Waits at most `timeout` for the process to exit; [`SignalError::Timeout`] if it is still
    /// running.
    pub fn wait_exit_timeout(&self, timeout: Duration) -> Result<(), SignalError> {
        let wait = Wait::timeout(timeout);
        match poll_wait(self.fd.as_fd(), true, wait)
            .map_err(|e| SignalError::io("poll(pidfd)", e))?
        {
            Some(_) => Ok(()),
            None => Err(SignalError::Timeout),
        }
    }

    /// Waits (without blocking a thread) until the process exits.
    #[cfg(feature = "tokio")]
    pub async fn exited(&self) -> Result<(), SignalError> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| SignalError::io("dup(pidfd)", e))?;
        let afd = sys::register_async(fd).map_err(|e| SignalError::io("AsyncFd(pidfd)", e))?;
        let _guard = afd
            .readable()
            .await
            .map_err(|e| SignalError::io("poll(pidfd)", e))?;
        Ok(())
    }
}

impl AsFd for Process {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Process {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<OwnedFd> for Process {
    /// Wraps an existing pidfd; its pid is read from `/proc/self/fdinfo` (`-1` if unknown or
    /// already reaped).
    fn from(fd: OwnedFd) -> Process {
        let pid = sys::pidfd_pid(fd.as_fd()).unwrap_or(-1);
        Process { fd, pid }
    }
}

impl From<Process> for OwnedFd {
    fn from(p: Process) -> OwnedFd {
        p.fd
    }
}
