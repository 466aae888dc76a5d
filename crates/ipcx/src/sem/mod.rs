//! POSIX named semaphores (`sem_open(3)`): counting semaphores that unrelated processes find
//! by name (`/jobs`), kept by the C library as files `/dev/shm/sem.NAME`.
//!
//! Unnamed process-shared semaphores placed in shared memory live in [`crate::sync`].
//!
//! ```no_run
//! use ipcx::sem::Semaphore;
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), ipcx::sem::NamedSemError> {
//! // Process A: create with value 0 (removed again when `sem` is dropped).
//! let sem = Semaphore::create_new("/jobs-ready", 0)?;
//! // Process B: `Semaphore::open("/jobs-ready")?.post()?;`
//! sem.wait_timeout(Duration::from_secs(5))?;
//! # Ok(())
//! # }
//! ```
//!
//! # Ownership
//! The handle that created the semaphore unlinks its name on drop unless [`Semaphore::persist`]
//! was called; handles that only opened it never unlink. Unlinking removes the name: processes
//! that still have the semaphore open keep using it, and new `open`s fail with
//! [`NamedSemError::NotFound`]. Drop unlinks by name only while the name still leads to the very
//! semaphore this handle created (same file identity), never a newer one that took the name.
//!
//! # Trust
//! A semaphore that the call did not create and that belongs to another user is refused
//! ([`NamedSemError::ForeignOwner`]) unless [`OpenOptions::trust`] allows that user: another user
//! could post or take it at will. `sem_open` gives no descriptor, so the owner is read from
//! the semaphore's file (`/dev/shm/sem.NAME`) right after opening it.
//!
//! # Creation
//! glibc creates a semaphore file by writing a temporary file and `link`ing it into place, so
//! creation never follows a symlink planted at the name, and opens existing ones with
//! `O_NOFOLLOW`. `create` first tries an exclusive creation, then an open, so a handle always
//! knows whether it created the semaphore.
//!
//! # Timeouts
//! [`Semaphore::wait_timeout`] measures its deadline on `CLOCK_MONOTONIC` (`sem_clockwait`, glibc
//! 2.30 or later), so changing the wall clock neither shortens nor extends a wait.
//!
//! # References
//! [sem_overview(7)](https://man7.org/linux/man-pages/man7/sem_overview.7.html),
//! [sem_open(3)](https://man7.org/linux/man-pages/man3/sem_open.3.html).

mod error;
mod options;
mod semaphore;

pub use error::NamedSemError;
pub use options::OpenOptions;
pub use semaphore::Semaphore;

/// The largest value a POSIX semaphore can hold (`SEM_VALUE_MAX`).
pub const VALUE_MAX: u32 = crate::sys::sem::SEM_VALUE_MAX;
