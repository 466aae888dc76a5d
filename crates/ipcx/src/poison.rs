//! Locks that outlive a panicking holder.
//!
//! ipcx's shared state behind a `std::sync::Mutex` stays consistent at every unlock point, so a
//! thread that panicked while holding a lock leaves nothing half-done: the next holder goes on
//! with the data as it is instead of failing with the poison.

use std::sync::{Condvar, Mutex, MutexGuard, TryLockError};

use crate::wait::Wait;

/// Locks `m`, taking the data over from a holder that panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Locks `m` if no one holds it, taking the data over from a holder that panicked.
pub(crate) fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Waits on `cv` with `g` as `wait` allows. Returns the guard and `false` when `wait` had
/// already run out (the caller's deadline passed), `true` otherwise (woken, or a timed wait
/// ended: the caller checks its condition again).
pub(crate) fn wait<'a, T>(
    cv: &Condvar,
    g: MutexGuard<'a, T>,
    wait: Wait,
) -> (MutexGuard<'a, T>, bool) {
    match wait {
        Wait::Forever => (cv.wait(g).unwrap_or_else(|p| p.into_inner()), true),
        Wait::NoWait => (g, false),
        Wait::Until(_) => {
            let left = wait.remaining().unwrap_or_default();
            if left.is_zero() {
                return (g, false);
            }
            let (g, _) = cv.wait_timeout(g, left).unwrap_or_else(|p| p.into_inner());
            (g, true)
        }
    }
}

/// Takes the data out of `m`, also from a holder that panicked.
pub(crate) fn into_inner<T>(m: Mutex<T>) -> T {
    m.into_inner().unwrap_or_else(|p| p.into_inner())
}
