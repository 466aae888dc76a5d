//! [`SharedSemaphore`]: an unnamed POSIX semaphore (`sem_init` with `pshared = 1`) in a named
//! shared-memory segment.

use std::io;
use std::time::Duration;

use super::segment::{self, Options, Owner, SegmentError};
use crate::sys::pthread::SemSeg;
use crate::sys::shm::OpenMode;
use crate::wait::Wait;

/// Tag stored in the header of every semaphore segment (unless [`Options::tag`] overrides it).
const SEM_TAG: u64 = u64::from_le_bytes(*b"SEMAPHOR");

/// A counting semaphore shared by every process that opens the same name.
///
/// Unlike a named semaphore (`sem_open`, see [`crate::sem`]), it sits in an ipcx segment with a
/// checked header; it is the same kernel-assisted `sem_t` underneath.
///
/// # Examples
/// ```no_run
/// use ipcx::sync::SharedSemaphore;
///
/// let slots = SharedSemaphore::create("/slots", 4)?;
/// slots.wait()?;      // take a slot
/// // ... work ...
/// slots.post()?;      // give it back
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # References
/// - [sem_init(3)](https://man7.org/linux/man-pages/man3/sem_init.3.html),
///   [sem_wait(3)](https://man7.org/linux/man-pages/man3/sem_wait.3.html)
#[derive(Debug)]
#[doc(alias = "sem_init")]
pub struct SharedSemaphore {
    inner: SemSeg,
    owner: Owner,
}

/// Why a semaphore operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SemError {
    /// `try_wait`: the value is zero.
    #[error("the semaphore is zero: wait for a post, or use wait/wait_timeout")]
    WouldBlock,
    /// The timeout passed with the value still zero.
    #[error("timed out waiting for the semaphore")]
    Timeout,
    /// `post` would exceed the maximum value (`SEM_VALUE_MAX`).
    #[error("the semaphore is at its maximum value: wait before posting again")]
    Overflow,
    /// Any other OS error.
    #[error("semaphore operation failed: {0}")]
    Io(#[source] io::Error),
}

impl SemError {
    fn from_os(e: io::Error) -> SemError {
        match e.raw_os_error() {
            Some(libc::EAGAIN) => SemError::WouldBlock,
            Some(libc::ETIMEDOUT) => SemError::Timeout,
            Some(libc::EOVERFLOW) => SemError::Overflow,
            _ => SemError::Io(e),
        }
    }
}

impl SharedSemaphore {
    /// Opens the semaphore `name`, creating it with value `initial` if it does not exist.
    pub fn create(name: &str, initial: u32) -> Result<SharedSemaphore, SegmentError> {
        Self::with_options(name, OpenMode::Create, initial, &Options::default())
    }

    /// Creates the semaphore `name` with value `initial`; fails if it exists.
    pub fn create_new(name: &str, initial: u32) -> Result<SharedSemaphore, SegmentError> {
        Self::with_options(name, OpenMode::CreateNew, initial, &Options::default())
    }

    /// Opens the existing semaphore `name`.
    pub fn open(name: &str) -> Result<SharedSemaphore, SegmentError> {
        Self::with_options(name, OpenMode::Open, 0, &Options::default())
    }

    /// [`create`](Self::create) with options.
    pub fn create_with(
        name: &str,
        initial: u32,
        opts: &Options,
    ) -> Result<SharedSemaphore, SegmentError> {
        Self::with_options(name, OpenMode::Create, initial, opts)
    }

    /// [`create_new`](Self::create_new) with options.
    pub fn create_new_with(
        name: &str,
        initial: u32,
        opts: &Options,
    ) -> Result<SharedSemaphore, SegmentError> {
        Self::with_options(name, OpenMode::CreateNew, initial, opts)
    }

    /// [`open`](Self::open) with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<SharedSemaphore, SegmentError> {
        Self::with_options(name, OpenMode::Open, 0, opts)
    }

    fn with_options(
        name: &str,
        how: OpenMode,
        initial: u32,
        opts: &Options,
    ) -> Result<SharedSemaphore, SegmentError> {
        let tag = opts.tag.unwrap_or(SEM_TAG);
        let (seg, name) =
            segment::establish(name, how, opts, |e| SemSeg::establish(e, tag, initial))?;
        let owner = Owner::new(name, seg.is_creator(), opts);
        Ok(SharedSemaphore { inner: seg, owner })
    }

    /// Decrements the value, blocking while it is zero.
    #[doc(alias = "sem_wait")]
    pub fn wait(&self) -> Result<(), SemError> {
        self.wait_with(Wait::Forever)
    }

    /// Decrements the value if it is above zero; [`SemError::WouldBlock`] otherwise.
    #[doc(alias = "sem_trywait")]
    pub fn try_wait(&self) -> Result<(), SemError> {
        self.wait_with(Wait::NoWait)
    }

    /// Decrements the value, waiting at most `timeout`; [`SemError::Timeout`] then.
    ///
    /// Measured on `CLOCK_MONOTONIC` (`sem_clockwait`) on glibc 64-bit targets, on
    /// `CLOCK_REALTIME` (`sem_timedwait`) elsewhere.
    #[doc(alias = "sem_clockwait")]
    #[doc(alias = "sem_timedwait")]
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), SemError> {
        self.wait_with(Wait::timeout(timeout))
    }

    /// Decrements the value, waiting as `wait` says.
    pub fn wait_with(&self, wait: Wait) -> Result<(), SemError> {
        self.inner.wait(wait).map_err(SemError::from_os)
    }

    /// Increments the value, waking one waiter.
    #[doc(alias = "sem_post")]
    pub fn post(&self) -> Result<(), SemError> {
        self.inner.post().map_err(SemError::from_os)
    }

    /// The current value (already stale when it returns if others use the semaphore).
    #[doc(alias = "sem_getvalue")]
    pub fn value(&self) -> Result<u32, SemError> {
        self.inner.value().map_err(SemError::from_os)
    }
}

segment::named_segment!(SharedSemaphore);
