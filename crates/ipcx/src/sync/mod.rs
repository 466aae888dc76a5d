//! Synchronisation between processes: futex and eventfd notification, robust mutexes,
//! condition variables and semaphores in shared memory.
//!
//! | type | what | shared by |
//! |---|---|---|
//! | [`SharedMutex<T>`] | a `T` + robust process-shared mutex + condition variable | segment name |
//! | [`SharedSemaphore`] | unnamed POSIX semaphore (`sem_init`, `pshared = 1`) | segment name |
//! | [`Futex`] | a 32-bit word to wait on and wake | segment name |
//! | [`EventFd`] | kernel counter behind a pollable fd | fd inheritance / fd passing |
//!
//! # Placement in named segments
//! [`SharedMutex`], [`SharedSemaphore`] and [`Futex`] each own a POSIX shared-memory object
//! (`/dev/shm/NAME`) laid out as a `#[repr(C)]` header followed by the objects. The header holds a
//! magic number, a layout version, the object kind, the sizes of the C library objects, the size
//! and alignment of the value, a type tag ([`Options::tag`]) and an *initialised* flag that the
//! creator sets (Release) only after `pthread_mutex_init` & co. have run. `open` waits (at most
//! [`Options::open_timeout`]) for that flag, then compares every field: a peer built for another
//! value type, a segment of garbage bytes or a truncated one is a named [`SegmentError`]
//! (`IncompatibleLayout`, `BadMagic`, `VersionMismatch`, `TooSmall`, `NotInitialised`), never
//! undefined behaviour. As everywhere in ipcx, `create` opens or creates, `create_new` fails if
//! the name exists, `open` requires it; new segments get mode `0o600`; the handle that created a
//! segment removes its name on drop unless [`persist`](SharedMutex::persist)ed or
//! [`Options::persist`] is set.
//!
//! The pthread objects are not destroyed when the segment goes away: process-shared robust
//! mutexes and condition variables hold no resources outside the shared bytes.
//!
//! # Robust mutexes and dead owners
//! When a process dies holding a [`SharedMutex`], the kernel marks the lock and the next locker
//! gets [`LockError::OwnerDied`]: it *holds* the lock through an [`OwnerDiedGuard`], repairs the
//! value and calls [`OwnerDiedGuard::mark_consistent`]. Dropping that guard without marking
//! consistent makes the mutex unusable for good ([`LockError::NotRecoverable`] for every later
//! locker); the only way out is to remove the segment and create it again.
//!
//! Condition-variable waits report a dead owner the same way when they take the lock back. A
//! process killed *while waiting* on the condition variable can, with glibc, make a later
//! `notify_one` wake nobody: prefer `notify_all` and timed waits when peers may be killed.
//!
//! # Trust
//! Peers must cooperate: they all take the lock before touching the value. `T: FromBytes`
//! guarantees that whatever bytes another process leaves there are a valid `T`, so a peer that
//! scribbles on the value cannot cause undefined behaviour here, only wrong values: validate
//! what you read. The header is all atomics and fully checked. The pthread objects, however,
//! are interpreted by the C library, which trusts them (a robust mutex links itself into the
//! locking thread's robust list through pointers stored in the shared bytes): give write access
//! to a segment (its mode) only to processes you trust as much as your own, which the default
//! mode `0o600` (same user) does.
//!
//! # Example: a counter shared by several processes
//! ```no_run
//! use ipcx::sync::{LockError, SharedMutex};
//! use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
//!
//! #[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
//! #[repr(C)]
//! struct Stats {
//!     hits: u64,
//!     misses: u64,
//! }
//!
//! // Every process runs this; the first one creates the segment.
//! let stats = SharedMutex::<Stats>::create("/stats")?;
//! let mut g = match stats.lock() {
//!     Ok(g) => g,
//!     Err(LockError::OwnerDied(mut repair)) => {
//!         // A process died inside its critical section: the fields are each valid but
//!         // may disagree; fix them up here, then:
//!         repair.misses = repair.misses.min(repair.hits);
//!         repair.mark_consistent()?
//!     }
//!     Err(e) => return Err(e.to_string().into()),
//! };
//! g.hits += 1;
//! drop(g);
//! stats.notify_all()?; // wake anyone waiting in MutexGuard::wait_while for a change
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod eventfd;
pub(crate) mod futex;
mod mutex;
mod segment;
mod semaphore;

#[cfg(feature = "tokio")]
pub use eventfd::AsyncEventFd;
pub use eventfd::{EventFd, EventFdError};
pub use futex::{Futex, FutexError, FutexWake};
pub use mutex::{LockError, MutexGuard, OwnerDiedGuard, SharedMutex, WaitTimeoutResult};
pub use segment::{Options, SegmentError};
pub use semaphore::{SemError, SharedSemaphore};
