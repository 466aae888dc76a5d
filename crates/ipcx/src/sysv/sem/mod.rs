//! System V semaphore sets (`semget(2)`, `semop(2)`, `semctl(2)`).
//!
//! A set holds N counting semaphores (values 0..=32767 on Linux) named by a [`Key`](super::Key).
//! Several operations on several semaphores of one set are applied atomically, all or none
//! ([`SemaphoreSet::op`]); an operation taken with `SEM_UNDO` is reverted by the kernel when the
//! process exits, even when it is killed with SIGKILL.
//!
//! ```no_run
//! use ipcx::sysv::{Key, sem::{SemaphoreSet, SemOp}};
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), ipcx::sysv::sem::SemSetError> {
//! let set = SemaphoreSet::create_new(Key::new(0x1234), 2)?; // removed when dropped
//! set.set(0, 1)?;
//! set.set(1, 1)?;
//! // Take both semaphores at once, given back automatically if this process dies.
//! set.op_timeout(&[SemOp::new(0, -1).undo(), SemOp::new(1, -1).undo()], Duration::from_secs(1))?;
//! # Ok(())
//! # }
//! ```
//!
//! # Ownership
//! The handle that created the set removes it (`IPC_RMID`) on drop unless
//! [`SemaphoreSet::persist`] was called; handles that only opened it never remove it. Removal
//! is immediate: processes blocked on the set wake up with [`SemSetError::Removed`].
//!
//! # Initialisation race
//! A new set's values are 0 on Linux. When creating a set and then setting values, another
//! process may open it in between and see the zeros; [`Options::values`] sets them right after
//! creation, and openers can check [`SemStat::otime`] (zero until the first `semop`) if that
//! matters to them.
//!
//! # References
//! [semget(2)](https://man7.org/linux/man-pages/man2/semget.2.html),
//! [semop(2)](https://man7.org/linux/man-pages/man2/semop.2.html),
//! [semctl(2)](https://man7.org/linux/man-pages/man2/semctl.2.html).

mod error;
mod op;
mod options;
mod set;

pub use error::SemSetError;
pub use op::SemOp;
pub use options::Options;
pub use set::{SemStat, SemaphoreSet};

/// The largest value of a System V semaphore on Linux (`SEMVMX`).
pub const VALUE_MAX: u16 = 32767;
