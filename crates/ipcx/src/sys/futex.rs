//! Linux futex wait/wake on a 32-bit word, process-shared (no `FUTEX_PRIVATE_FLAG`), through
//! rustix.
//!
//! # References
//! - [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html)

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::thread::futex;

/// `FUTEX_WAIT`: sleeps while `*word == expected`, at most `timeout` (relative, measured on
/// `CLOCK_MONOTONIC`). Returns `Ok` when woken (or spuriously), `EAGAIN` if the word did not
/// hold `expected`, `ETIMEDOUT`, or `EINTR`.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> io::Result<()> {
    let ts = timeout.map(|d| futex::Timespec {
        tv_sec: d.as_secs().try_into().unwrap_or(i64::MAX),
        tv_nsec: d.subsec_nanos().into(),
    });
    Ok(futex::wait(
        word,
        futex::Flags::empty(),
        expected,
        ts.as_ref(),
    )?)
}

/// `FUTEX_WAKE`: wakes at most `n` waiters; returns how many were woken.
pub(crate) fn wake(word: &AtomicU32, n: u32) -> io::Result<usize> {
    Ok(futex::wake(word, futex::Flags::empty(), n)?)
}
