//! Futex notification on a 32-bit word in shared memory.
//!
//! [`Futex`] owns a named segment holding one `AtomicU32`; every process that opens the name
//! can change the word and wait for it to change. The word is the protocol: a waiter sleeps
//! only while the word still holds the value it last saw (`FUTEX_WAIT`), so a wake between its
//! check and its sleep is never lost. Waits are process-shared (no `FUTEX_PRIVATE_FLAG`).
//!
//! A waiter whose waker dies is never stuck forever if it waits with a timeout: use
//! [`Futex::wait_timeout`] whenever the peer may die.
//!
//! # References
//! - [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html),
//!   [futex(7)](https://man7.org/linux/man-pages/man7/futex.7.html)

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::segment::{self, Options, Owner, SegmentError};
use crate::sys::futex as sys;
use crate::sys::pthread::FutexSeg;
use crate::sys::shm::OpenMode;
use crate::wait::Wait;

/// Tag stored in the header of every futex segment (unless [`Options::tag`] overrides it).
const FUTEX_TAG: u64 = u64::from_le_bytes(*b"FUTEXU32");

/// How a futex wait ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FutexWake {
    /// Woken by a `wake`, or spuriously (a signal, a stale wake): re-check the word.
    Woken,
    /// The word no longer held the expected value, so the call did not sleep.
    ValueChanged,
}

/// Why a futex operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FutexError {
    /// `try_wait`: the word still holds the expected value.
    #[error("the futex word still holds the expected value: wait for a wake or use wait_timeout")]
    WouldBlock,
    /// The timeout passed without a wake (the waker may be gone).
    #[error("timed out waiting on the futex: no wake arrived (is the peer still alive?)")]
    Timeout,
    /// Any other OS error.
    #[error("futex operation failed: {0}")]
    Io(#[source] io::Error),
}

/// `FUTEX_WAIT` on `word` while it holds `expected`, as `wait` says.
pub(crate) fn wait_on(
    word: &AtomicU32,
    expected: u32,
    wait: Wait,
) -> Result<FutexWake, FutexError> {
    if wait == Wait::NoWait {
        return if word.load(Ordering::Acquire) == expected {
            Err(FutexError::WouldBlock)
        } else {
            Ok(FutexWake::ValueChanged)
        };
    }
    match sys::wait(word, expected, wait.remaining()) {
        Ok(()) => Ok(FutexWake::Woken),
        Err(e) => match e.raw_os_error() {
            Some(libc::EAGAIN) => Ok(FutexWake::ValueChanged),
            Some(libc::EINTR) => Ok(FutexWake::Woken),
            Some(libc::ETIMEDOUT) => Err(FutexError::Timeout),
            _ => Err(FutexError::Io(e)),
        },
    }
}

/// `FUTEX_WAKE`: wakes at most `n` waiters of `word`; returns how many woke.
pub(crate) fn wake_on(word: &AtomicU32, n: u32) -> Result<usize, FutexError> {
    sys::wake(word, n).map_err(FutexError::Io)
}

/// A 32-bit futex word in a named shared-memory segment.
///
/// # Examples
/// ```no_run
/// use std::time::Duration;
/// use ipcx::sync::{Futex, FutexError};
///
/// // Waiter
/// let flag = Futex::create("/ready")?;
/// while flag.load() == 0 {
///     match flag.wait_timeout(0, Duration::from_secs(5)) {
///         Ok(_) => {}                                // re-check the word
///         Err(FutexError::Timeout) => break,         // the peer may be gone
///         Err(e) => return Err(e.into()),
///     }
/// }
///
/// // Waker (in another process)
/// let flag = Futex::open("/ready")?;
/// flag.store(1);
/// flag.wake_all()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[doc(alias = "futex")]
pub struct Futex {
    inner: FutexSeg,
    owner: Owner,
}

impl Futex {
    /// Opens the futex `name`, creating it (word = 0) if it does not exist.
    pub fn create(name: &str) -> Result<Futex, SegmentError> {
        Self::with_options(name, OpenMode::Create, &Options::default())
    }

    /// Creates the futex `name` (word = 0); fails if it exists.
    pub fn create_new(name: &str) -> Result<Futex, SegmentError> {
        Self::with_options(name, OpenMode::CreateNew, &Options::default())
    }

    /// Opens the existing futex `name`.
    pub fn open(name: &str) -> Result<Futex, SegmentError> {
        Self::with_options(name, OpenMode::Open, &Options::default())
    }

    /// [`create`](Self::create) with options.
    pub fn create_with(name: &str, opts: &Options) -> Result<Futex, SegmentError> {
        Self::with_options(name, OpenMode::Create, opts)
    }

    /// [`create_new`](Self::create_new) with options.
    pub fn create_new_with(name: &str, opts: &Options) -> Result<Futex, SegmentError> {
        Self::with_options(name, OpenMode::CreateNew, opts)
    }

    /// [`open`](Self::open) with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<Futex, SegmentError> {
        Self::with_options(name, OpenMode::Open, opts)
    }

    fn with_options(name: &str, how: OpenMode, opts: &Options) -> Result<Futex, SegmentError> {
        let tag = opts.tag.unwrap_or(FUTEX_TAG);
        let (seg, name) = segment::establish(name, how, opts, |e| FutexSeg::establish(e, tag, 0))?;
        let owner = Owner::new(name, seg.is_creator(), opts);
        Ok(Futex { inner: seg, owner })
    }

    /// The shared word itself, for compare-exchange protocols.
    pub fn word(&self) -> &AtomicU32 {
        self.inner.word()
    }

    /// Reads the word (Acquire).
    pub fn load(&self) -> u32 {
        self.word().load(Ordering::Acquire)
    }

    /// Writes the word (Release). Call [`wake`](Self::wake) afterwards to wake waiters.
    pub fn store(&self, value: u32) {
        self.word().store(value, Ordering::Release)
    }

    /// Adds to the word (wrapping; AcqRel) and returns the previous value.
    pub fn fetch_add(&self, value: u32) -> u32 {
        self.word().fetch_add(value, Ordering::AcqRel)
    }

    /// Sleeps while the word holds `expected`, until woken.
    pub fn wait(&self, expected: u32) -> Result<FutexWake, FutexError> {
        wait_on(self.word(), expected, Wait::Forever)
    }

    /// Never sleeps: [`FutexWake::ValueChanged`] if the word differs from `expected`,
    /// [`FutexError::WouldBlock`] if it does not.
    pub fn try_wait(&self, expected: u32) -> Result<FutexWake, FutexError> {
        wait_on(self.word(), expected, Wait::NoWait)
    }

    /// Sleeps while the word holds `expected`, at most `timeout` (`CLOCK_MONOTONIC`).
    pub fn wait_timeout(&self, expected: u32, timeout: Duration) -> Result<FutexWake, FutexError> {
        wait_on(self.word(), expected, Wait::timeout(timeout))
    }

    /// Sleeps while the word holds `expected`, as `wait` says.
    pub fn wait_with(&self, expected: u32, wait: Wait) -> Result<FutexWake, FutexError> {
        wait_on(self.word(), expected, wait)
    }

    /// Wakes at most `n` waiters (in any process); returns how many woke.
    #[doc(alias = "FUTEX_WAKE")]
    pub fn wake(&self, n: u32) -> Result<usize, FutexError> {
        wake_on(self.word(), n)
    }

    /// Wakes one waiter.
    pub fn wake_one(&self) -> Result<usize, FutexError> {
        self.wake(1)
    }

    /// Wakes every waiter.
    pub fn wake_all(&self) -> Result<usize, FutexError> {
        self.wake(i32::MAX as u32)
    }
}

segment::named_segment!(Futex);
