//! The calling thread's signal mask: which signals wait for a signalfd instead of running
//! their action.

use super::{Signal, SignalError};
use crate::sys::signal as sys;

pub(super) fn sigset(signals: &[Signal]) -> Result<sys::SigSet, SignalError> {
    let mut set = sys::SigSet::empty();
    for &s in signals {
        if s == Signal::KILL || s == Signal::STOP {
            return Err(SignalError::Unblockable { signal: s });
        }
        set.add(s.0).map_err(|e| SignalError::io("sigaddset", e))?;
    }
    Ok(set)
}

/// Blocks `signals` in the calling thread (`pthread_sigmask(SIG_BLOCK)`). Call it in `main`
/// before spawning threads so that every thread inherits the mask (see the module docs).
pub fn block(signals: &[Signal]) -> Result<(), SignalError> {
    let set = sigset(signals)?;
    sys::thread_sigmask(sys::MaskHow::Block, &set)
        .map(drop)
        .map_err(|e| SignalError::io("pthread_sigmask", e))
}

/// Unblocks `signals` in the calling thread. Pending ones are then delivered at once (and run
/// their handler or default action).
pub fn unblock(signals: &[Signal]) -> Result<(), SignalError> {
    let set = sigset(signals)?;
    sys::thread_sigmask(sys::MaskHow::Unblock, &set)
        .map(drop)
        .map_err(|e| SignalError::io("pthread_sigmask", e))
}

/// Whether `signal` is blocked in the calling thread.
pub fn is_blocked(signal: Signal) -> Result<bool, SignalError> {
    sys::current_thread_mask()
        .map(|m| m.contains(signal.0))
        .map_err(|e| SignalError::io("pthread_sigmask", e))
}
