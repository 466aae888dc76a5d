//! [`SharedMutex`]: a value of plain data, a robust process-shared mutex and a condition
//! variable, together in one named shared-memory segment.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::segment::{self, Options, Owner, SegmentError};
use crate::sys::pthread::{Acquired, MAX_ALIGN, MutexSeg, RawGuard};
use crate::sys::shm::OpenMode;
use crate::wait::Wait;

/// A `T` protected by a robust, process-shared mutex, with a condition variable, in a named
/// POSIX shared-memory segment.
///
/// Every process that opens the same name (with the same `T` and tag) shares the value, the
/// lock and the condition variable. If a process dies while holding the lock, the next locker
/// gets [`LockError::OwnerDied`] with the lock held, repairs the value and calls
/// [`OwnerDiedGuard::mark_consistent`].
///
/// A new segment's value is all zero bytes (a valid `T`, since `T: FromBytes`).
///
/// # Examples
/// ```no_run
/// use ipcx::sync::{LockError, SharedMutex};
///
/// let counter = SharedMutex::<u64>::create("/counter")?;
/// let mut guard = match counter.lock() {
///     Ok(guard) => guard,
///     // A peer died holding the lock: check (and fix) the value, then mark it consistent.
///     Err(LockError::OwnerDied(repair)) => repair.mark_consistent()?,
///     Err(e) => panic!("{e}"),
/// };
/// *guard += 1;
/// drop(guard);
/// counter.notify_all()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # References
/// - [pthread_mutexattr_setrobust(3)](https://man7.org/linux/man-pages/man3/pthread_mutexattr_setrobust.3.html)
/// - [pthread_mutex_consistent(3)](https://man7.org/linux/man-pages/man3/pthread_mutex_consistent.3.html)
/// - [pthread_cond_timedwait(3p)](https://man7.org/linux/man-pages/man3/pthread_cond_timedwait.3p.html)
#[doc(alias = "pthread_mutex_t")]
#[doc(alias = "pthread_cond_t")]
pub struct SharedMutex<T> {
    inner: Arc<MutexSeg<T>>,
    owner: Owner,
}

impl<T> fmt::Debug for SharedMutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMutex")
            .field("name", &self.owner.name())
            .field("is_owner", &self.owner.is_owner())
            .finish_non_exhaustive()
    }
}

impl<T> SharedMutex<T>
where
    T: FromBytes + IntoBytes + KnownLayout + Immutable,
{
    /// Opens the segment `name`, creating and initialising it if it does not exist.
    pub fn create(name: &str) -> Result<SharedMutex<T>, SegmentError> {
        Self::with_options(name, OpenMode::Create, &Options::default())
    }

    /// Creates the segment `name`; fails with [`SegmentError::AlreadyExists`] if it exists.
    pub fn create_new(name: &str) -> Result<SharedMutex<T>, SegmentError> {
        Self::with_options(name, OpenMode::CreateNew, &Options::default())
    }

    /// Opens the existing segment `name` and checks that its layout matches `T`.
    pub fn open(name: &str) -> Result<SharedMutex<T>, SegmentError> {
        Self::with_options(name, OpenMode::Open, &Options::default())
    }

    /// [`create`](Self::create) with options.
    pub fn create_with(name: &str, opts: &Options) -> Result<SharedMutex<T>, SegmentError> {
        Self::with_options(name, OpenMode::Create, opts)
    }

    /// [`create_new`](Self::create_new) with options.
    pub fn create_new_with(name: &str, opts: &Options) -> Result<SharedMutex<T>, SegmentError> {
        Self::with_options(name, OpenMode::CreateNew, opts)
    }

    /// [`open`](Self::open) with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<SharedMutex<T>, SegmentError> {
        Self::with_options(name, OpenMode::Open, opts)
    }

    fn with_options(
        name: &str,
        how: OpenMode,
        opts: &Options,
    ) -> Result<SharedMutex<T>, SegmentError> {
        if align_of::<T>() > MAX_ALIGN {
            return Err(SegmentError::UnsupportedAlignment {
                align: align_of::<T>(),
            });
        }
        let tag = opts.tag.unwrap_or_else(segment::type_tag::<T>);
        let (seg, name) = segment::establish(name, how, opts, |e| MutexSeg::establish(e, tag))?;
        let owner = Owner::new(name, seg.is_creator(), opts);
        Ok(SharedMutex {
            inner: Arc::new(seg),
            owner,
        })
    }

    /// Locks, blocking until the lock is free.
    ///
    /// # Errors
    /// [`LockError::OwnerDied`] (the lock *is* held: repair, then mark consistent),
    /// [`LockError::NotRecoverable`], [`LockError::Deadlock`] (this thread holds it already).
    #[doc(alias = "pthread_mutex_lock")]
    pub fn lock(&self) -> Result<MutexGuard<'_, T>, LockError<'_, T>> {
        self.lock_wait(Wait::Forever)
    }

    /// Locks if the lock is free; [`LockError::WouldBlock`] otherwise.
    #[doc(alias = "pthread_mutex_trylock")]
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, LockError<'_, T>> {
        self.lock_wait(Wait::NoWait)
    }

    /// Locks, waiting at most `timeout`; [`LockError::Timeout`] then.
    ///
    /// The deadline is measured on `CLOCK_MONOTONIC` (`pthread_mutex_clocklock`) on glibc
    /// 64-bit targets; elsewhere `pthread_mutex_timedlock` measures it on `CLOCK_REALTIME`, so a
    /// wall-clock jump during the wait lengthens or shortens it.
    #[doc(alias = "pthread_mutex_clocklock")]
    #[doc(alias = "pthread_mutex_timedlock")]
    pub fn lock_timeout(&self, timeout: Duration) -> Result<MutexGuard<'_, T>, LockError<'_, T>> {
        self.lock_wait(Wait::timeout(timeout))
    }

    /// Locks, waiting as `wait` says.
    pub fn lock_wait(&self, wait: Wait) -> Result<MutexGuard<'_, T>, LockError<'_, T>> {
        match self.inner.lock(wait) {
            Ok((raw, Acquired::Clean)) => Ok(MutexGuard::new(raw)),
            Ok((raw, Acquired::OwnerDied)) => Err(LockError::OwnerDied(OwnerDiedGuard {
                raw,
                _life: PhantomData,
            })),
            Err(e) => Err(LockError::from_os(e)),
        }
    }

    /// Wakes one process or thread waiting on the condition variable.
    #[doc(alias = "pthread_cond_signal")]
    pub fn notify_one(&self) -> io::Result<()> {
        self.inner.notify(false)
    }

    /// Wakes every process and thread waiting on the condition variable.
    #[doc(alias = "pthread_cond_broadcast")]
    pub fn notify_all(&self) -> io::Result<()> {
        self.inner.notify(true)
    }
}

segment::named_segment!(SharedMutex<T>);

/// Proof that this thread holds a [`SharedMutex`]; gives access to the value and unlocks on
/// drop.
///
/// Access through the guard is data-race free as long as every peer uses the lock. A peer that
/// writes the segment without the lock (or a hostile process with write access) can still
/// change the bytes under you: `T: FromBytes` guarantees those bytes are still a valid `T`, but
/// not that they make sense, so validate what you read from a peer.
///
/// Not `Send`: a robust mutex belongs to the thread that locked it.
pub struct MutexGuard<'a, T> {
    raw: RawGuard<T>,
    _life: PhantomData<&'a SharedMutex<T>>,
}

impl<'a, T> MutexGuard<'a, T>
where
    T: FromBytes + IntoBytes + KnownLayout + Immutable,
{
    fn new(raw: RawGuard<T>) -> Self {
        MutexGuard {
            raw,
            _life: PhantomData,
        }
    }

    /// Releases the lock and waits on the mutex's condition variable until notified (or
    /// spuriously woken), then takes the lock again.
    ///
    /// # Errors
    /// [`LockError::OwnerDied`] if the lock's owner died while this thread waited (the lock is
    /// held again); [`LockError::NotRecoverable`] (the lock is not held).
    #[doc(alias = "pthread_cond_wait")]
    pub fn wait(self) -> Result<MutexGuard<'a, T>, LockError<'a, T>> {
        self.wait_inner(Wait::Forever).map(|(g, _)| g)
    }

    /// Like [`wait`](Self::wait), for at most `timeout` (measured on `CLOCK_MONOTONIC`). The
    /// lock is held again on return either way.
    #[doc(alias = "pthread_cond_timedwait")]
    pub fn wait_timeout(
        self,
        timeout: Duration,
    ) -> Result<(MutexGuard<'a, T>, WaitTimeoutResult), LockError<'a, T>> {
        self.wait_inner(Wait::timeout(timeout))
    }

    /// Waits while `condition` holds (re-checked after every wake-up).
    pub fn wait_while(
        self,
        condition: impl FnMut(&mut T) -> bool,
    ) -> Result<MutexGuard<'a, T>, LockError<'a, T>> {
        self.wait_while_inner(Wait::Forever, condition)
            .map(|(g, _)| g)
    }

    /// Waits while `condition` holds, at most `timeout`; the result says whether it timed out
    /// with the condition still holding.
    pub fn wait_timeout_while(
        self,
        timeout: Duration,
        condition: impl FnMut(&mut T) -> bool,
    ) -> Result<(MutexGuard<'a, T>, WaitTimeoutResult), LockError<'a, T>> {
        self.wait_while_inner(Wait::timeout(timeout), condition)
    }

    fn wait_while_inner(
        self,
        wait: Wait,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> Result<(MutexGuard<'a, T>, WaitTimeoutResult), LockError<'a, T>> {
        let mut guard = self;
        while condition(&mut guard) {
            let (g, r) = guard.wait_inner(wait)?;
            guard = g;
            if r.timed_out() {
                let still = condition(&mut guard);
                return Ok((guard, WaitTimeoutResult(still)));
            }
        }
        Ok((guard, WaitTimeoutResult(false)))
    }

    fn wait_inner(
        mut self,
        wait: Wait,
    ) -> Result<(MutexGuard<'a, T>, WaitTimeoutResult), LockError<'a, T>> {
        match self.raw.cond_wait(wait) {
            Ok(timed_out) => Ok((self, WaitTimeoutResult(timed_out))),
            Err(e) if e.raw_os_error() == Some(libc::EOWNERDEAD) => {
                Err(LockError::OwnerDied(OwnerDiedGuard {
                    raw: self.raw,
                    _life: PhantomData,
                }))
            }
            Err(e) => {
                // The mutex is not held after these errors.
                self.raw.disarm();
                Err(LockError::from_os(e))
            }
        }
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.raw
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.raw
    }
}

impl<T: fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MutexGuard").field(&*self.raw).finish()
    }
}

/// The lock, held after its previous owner died holding it: the protected value may be half
/// updated.
///
/// Inspect and repair the value through this guard, then call
/// [`mark_consistent`](Self::mark_consistent) to get an ordinary [`MutexGuard`]. **If this
/// guard is dropped without marking the mutex consistent, the mutex becomes permanently
/// unusable**: every later lock, in every process, fails with [`LockError::NotRecoverable`]
/// until the segment is removed and created again.
pub struct OwnerDiedGuard<'a, T> {
    raw: RawGuard<T>,
    _life: PhantomData<&'a SharedMutex<T>>,
}

impl<'a, T> OwnerDiedGuard<'a, T>
where
    T: FromBytes + IntoBytes + KnownLayout + Immutable,
{
    /// Declares the value repaired (`pthread_mutex_consistent`) and keeps the lock.
    ///
    /// # Errors
    /// The OS error if the C library refuses (not expected for a mutex in this state); the
    /// guard is then dropped unmarked, which makes the mutex not recoverable.
    #[doc(alias = "pthread_mutex_consistent")]
    pub fn mark_consistent(mut self) -> io::Result<MutexGuard<'a, T>> {
        self.raw.mark_consistent()?;
        Ok(MutexGuard::new(self.raw))
    }
}

impl<T> Deref for OwnerDiedGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.raw
    }
}

impl<T> DerefMut for OwnerDiedGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.raw
    }
}

impl<T> fmt::Debug for OwnerDiedGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnerDiedGuard { .. }")
    }
}

/// Whether a timed condition-variable wait ended by timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// True if the wait ended because the timeout passed (for the `_while` forms: and the
    /// condition still held).
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// Why a lock (or the relock at the end of a condition-variable wait) did not give a clean
/// guard.
#[non_exhaustive]
pub enum LockError<'a, T> {
    /// The previous owner died holding the lock. **The lock is now held** by this guard:
    /// repair the value and call [`OwnerDiedGuard::mark_consistent`]; dropping it instead makes
    /// the mutex [`NotRecoverable`](LockError::NotRecoverable).
    OwnerDied(OwnerDiedGuard<'a, T>),
    /// A process recovered the lock after an owner died but did not mark it consistent: the
    /// mutex can never be locked again.
    NotRecoverable,
    /// `try_lock`: another thread or process holds the lock.
    WouldBlock,
    /// The timeout passed before the lock became free.
    Timeout,
    /// This thread already holds the lock.
    Deadlock,
    /// Any other OS error.
    Io(io::Error),
}

impl<T> LockError<'_, T> {
    fn from_os(e: io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::EBUSY) => LockError::WouldBlock,
            Some(libc::ETIMEDOUT) => LockError::Timeout,
            Some(libc::ENOTRECOVERABLE) => LockError::NotRecoverable,
            Some(libc::EDEADLK) => LockError::Deadlock,
            _ => LockError::Io(e),
        }
    }
}

impl<T> fmt::Debug for LockError<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(g) => f.debug_tuple("OwnerDied").field(g).finish(),
            LockError::NotRecoverable => f.write_str("NotRecoverable"),
            LockError::WouldBlock => f.write_str("WouldBlock"),
            LockError::Timeout => f.write_str("Timeout"),
            LockError::Deadlock => f.write_str("Deadlock"),
            LockError::Io(e) => f.debug_tuple("Io").field(e).finish(),
        }
    }
}

impl<T> fmt::Display for LockError<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str(
                "the previous owner of the lock died holding it: repair the shared state, then mark it consistent",
            ),
            LockError::NotRecoverable => f.write_str(
                "the lock is not recoverable (an owner died and the state was never marked consistent): remove the segment and create it again",
            ),
            LockError::WouldBlock => f.write_str("the lock is held by another thread or process"),
            LockError::Timeout => f.write_str("timed out waiting for the lock"),
            LockError::Deadlock => f.write_str(
                "this thread already holds the lock: drop its guard before locking again",
            ),
            LockError::Io(e) => write!(f, "lock failed: {e}"),
        }
    }
}

impl<T> std::error::Error for LockError<'_, T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Io(e) => Some(e),
            _ => None,
        }
    }
}
