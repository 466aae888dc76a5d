//! Sending a signal to a process by pid (`kill`, `sigqueue`).

use std::io;

use super::{Signal, SignalError};
use crate::sys::signal as sys;

/// Sends `signal` to process `pid` (`kill(2)`); the receiver sees code
/// [`SigCode::User`](super::SigCode::User).
///
/// A pid can be reused once its process exits and is reaped; use a [`Process`](super::Process)
/// handle to be sure to signal the process you mean.
#[doc(alias = "kill")]
pub fn send(pid: i32, signal: Signal) -> Result<(), SignalError> {
    check_pid(pid)?;
    sys::kill(pid, signal.0).map_err(|e| SignalError::on_send("kill", pid, e))
}

/// Sends `signal` with the integer payload `value` to process `pid` (`sigqueue(3)`); the
/// receiver sees code [`SigCode::Queue`](super::SigCode::Queue) and the value. Works for standard
/// and real-time signals, but only real-time signals queue (see the module docs).
#[doc(alias = "sigqueue")]
pub fn queue(pid: i32, signal: Signal, value: i32) -> Result<(), SignalError> {
    check_pid(pid)?;
    sys::sigqueue(pid, signal.0, value).map_err(|e| SignalError::on_send("sigqueue", pid, e))
}

/// Rejects pids that would address a process group or every process (0 and negative numbers
/// mean that to `kill(2)`).
pub(super) fn check_pid(pid: i32) -> Result<(), SignalError> {
    if pid <= 0 {
        return Err(SignalError::io(
            "signal a process",
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("pid {pid} is not a single process (0 and negative pids address groups)"),
            ),
        ));
    }
    Ok(())
}
