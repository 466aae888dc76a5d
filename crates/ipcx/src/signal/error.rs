//! [`SignalError`]: the errors of signal operations.

use std::io;

use super::Signal;
use crate::os_error::OsError;

/// Errors of signal operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignalError {
    /// Not a signal name or number this system knows.
    #[error("invalid signal {input:?}: {reason}")]
    InvalidSignal {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No process has this pid (`ESRCH`).
    #[error("no process with pid {pid}: it has exited (or never existed)")]
    NoSuchProcess {
        /// The pid.
        pid: i32,
    },
    /// The process behind a [`Process`](super::Process) handle has exited and was reaped: the
    /// signal was not sent (and so cannot reach another process that reused the pid).
    #[error("process {pid} has exited: the signal was not sent")]
    Exited {
        /// The pid the handle was opened for.
        pid: i32,
    },
    /// This process may not signal the target (`EPERM`: another user's process).
    #[error("permission denied sending a signal to pid {pid}: it belongs to another user")]
    PermissionDenied {
        /// The target pid.
        pid: i32,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Too many queued real-time signals (`EAGAIN`: the receiver's `RLIMIT_SIGPENDING`).
    #[error("the signal queue of pid {pid} is full (RLIMIT_SIGPENDING): retry later")]
    QueueFull {
        /// The target pid.
        pid: i32,
    },
    /// `SIGKILL` and `SIGSTOP` cannot be blocked, caught or received through a signalfd.
    #[error("{signal} cannot be blocked or received")]
    Unblockable {
        /// The signal.
        signal: Signal,
    },
    /// `try_recv`: no signal is pending.
    #[error("no signal is pending")]
    WouldBlock,
    /// `recv_timeout`: no signal arrived before the deadline.
    #[error("timed out waiting for a signal")]
    Timeout,
    /// Any other OS error.
    #[error(transparent)]
    Io(OsError),
}

impl SignalError {
    pub(super) fn io(what: &'static str, source: io::Error) -> SignalError {
        SignalError::Io(OsError::new(what, source))
    }

    pub(super) fn on_send(what: &'static str, pid: i32, e: io::Error) -> SignalError {
        match e.raw_os_error() {
            Some(libc::ESRCH) => SignalError::NoSuchProcess { pid },
            Some(libc::EPERM) => SignalError::PermissionDenied { pid, source: e },
            Some(libc::EAGAIN) => SignalError::QueueFull { pid },
            _ => SignalError::io(what, e),
        }
    }
}
