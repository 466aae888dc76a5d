//! POSIX named semaphores (`sem_open(3)`): counting semaphores that unrelated processes find
//! by name (`/jobs`), kept by the C library as files `/dev/shm/sem.NAME`.
//!
//! Unnamed process-shared semaphores placed in shared memory live in [`crate::sync`].
//!
//! ```no_run
//! use ipcx::sem::Semaphore;
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), ipcx::sem::Error> {
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
//! [`Error::NotFound`]. Drop unlinks by name only while the name still leads to the very
//! semaphore this handle created (same file identity), never a newer one that took the name.
//!
//! # Trust
//! A semaphore that the call did not create and that belongs to another user is refused
//! ([`Error::ForeignOwner`]) unless [`OpenOptions::trust`] allows that user: another user
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

use std::io;
use std::time::Duration;

use crate::name::{InvalidName, PosixName};
use crate::open::{OpenFlags, open_flag_setters};
use crate::registry::Ownership;
use crate::sys::sem::{self as sys, NamedSem, OpenHow};
use crate::wait::Wait;

/// The largest value a POSIX semaphore can hold (`SEM_VALUE_MAX`).
pub const VALUE_MAX: u32 = sys::SEM_VALUE_MAX;

/// Errors of POSIX named semaphore operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The name is not a valid semaphore name.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// No semaphore has this name.
    #[error("no semaphore {name}: create it first (ipcx sem create {name}) or check the name")]
    NotFound {
        /// The name looked up.
        name: String,
    },
    /// `create_new` found a semaphore with this name.
    #[error("semaphore {name} already exists: open it, or remove it first")]
    AlreadyExists {
        /// The name.
        name: String,
    },
    /// The semaphore's mode does not allow this process to open it.
    #[error(
        "cannot open semaphore {name}: its mode does not allow this user (check its owner and \
         mode with ipcx ls)"
    )]
    PermissionDenied {
        /// The name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The initial value is larger than [`VALUE_MAX`].
    #[error("initial semaphore value {value} is larger than SEM_VALUE_MAX ({VALUE_MAX})")]
    InvalidValue {
        /// The rejected value.
        value: u32,
    },
    /// `try_wait`: the value is zero.
    #[error("the semaphore's value is zero (the wait would block)")]
    WouldBlock,
    /// `wait_timeout`: the value stayed zero until the deadline.
    #[error("timed out waiting for the semaphore")]
    Timeout,
    /// `post` at [`VALUE_MAX`].
    #[error("semaphore value would exceed SEM_VALUE_MAX ({VALUE_MAX})")]
    Overflow,
    /// The semaphore exists but belongs to a user the caller does not trust
    /// ([`OpenOptions::trust`]). It was left as it is.
    #[error(transparent)]
    ForeignOwner(#[from] crate::trust::ForeignOwner),
    /// Any other OS error.
    #[error("{what}: {source}")]
    Io {
        /// The failed operation.
        what: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    fn io(what: &'static str, source: io::Error) -> Error {
        Error::Io { what, source }
    }

    fn from_open(name: &PosixName, e: io::Error) -> Error {
        let name = name.as_str().to_owned();
        match e.raw_os_error() {
            Some(libc::ENOENT) => Error::NotFound { name },
            Some(libc::EEXIST) => Error::AlreadyExists { name },
            Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied { name, source: e },
            _ => Error::io("sem_open", e),
        }
    }
}

/// How to open or create a semaphore, like [`std::fs::OpenOptions`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenOptions {
    flags: OpenFlags,
    value: u32,
}

impl OpenOptions {
    /// Open an existing semaphore; mode `0o600` and value 0 for new ones.
    pub fn new() -> OpenOptions {
        OpenOptions::default()
    }

    open_flag_setters! {
        noun: "semaphore",
        already_exists: "[`Error::AlreadyExists`]",
        umask: "the umask applies",
        mode_mask: u32::MAX,
        /// Whose existing semaphores to use besides the caller's own (default: only the caller's
        /// own uid; see [`crate::trust`]). An existing semaphore of another user is
        /// [`Error::ForeignOwner`].
        trust,
    }

    /// Initial value of a new semaphore (default 0; at most [`VALUE_MAX`]).
    pub fn value(mut self, value: u32) -> Self {
        self.value = value;
        self
    }

    /// Opens or creates the semaphore `name`.
    ///
    /// With `create`, this first tries to create the semaphore exclusively and falls back to
    /// opening it, so the returned handle knows whether it created it ([`Semaphore::is_owner`]).
    pub fn open(&self, name: &str) -> Result<Semaphore, Error> {
        let name = PosixName::semaphore(name)?;
        if (self.flags.create || self.flags.create_new) && self.value > VALUE_MAX {
            return Err(Error::InvalidValue { value: self.value });
        }
        if self.flags.create_new {
            return self.open_how(name, OpenHow::CreateNew, self.flags.mode, self.value);
        }
        if !self.flags.create {
            return self.open_how(name, OpenHow::Open, 0, 0);
        }
        // Open-or-create: try to create, then to open; another process may remove or create the
        // semaphore in between, so try a few times.
        let mut last = None;
        for _ in 0..16 {
            match sys::sem_open(&name, OpenHow::CreateNew, self.flags.mode, self.value) {
                Ok(raw) => return self.opened(raw, name, true),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(Error::from_open(&name, e)),
            }
            match sys::sem_open(&name, OpenHow::Open, 0, 0) {
                Ok(raw) => return self.opened(raw, name, false),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => last = Some(e),
                Err(e) => return Err(Error::from_open(&name, e)),
            }
        }
        Err(Error::io(
            "sem_open (the semaphore was repeatedly created and removed by another process)",
            last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::ENOENT)),
        ))
    }

    fn open_how(
        &self,
        name: PosixName,
        how: OpenHow,
        mode: u32,
        value: u32,
    ) -> Result<Semaphore, Error> {
        match sys::sem_open(&name, how, mode, value) {
            Ok(raw) => self.opened(raw, name, how == OpenHow::CreateNew),
            Err(e) => Err(Error::from_open(&name, e)),
        }
    }

    /// The handle for a semaphore just opened: one this call created is ours; an existing
    /// one must belong to a trusted user.
    fn opened(&self, raw: NamedSem, name: PosixName, created: bool) -> Result<Semaphore, Error> {
        let file = match sys::sem_file(&name) {
            Ok(file) => Some(file),
            // Without its owner, an existing semaphore cannot be trusted.
            Err(e) if !created => return Err(Error::from_open(&name, e)),
            Err(_) => None,
        };
        if !created && let Some(file) = &file {
            self.flags
                .trust
                .check_owner(&format!("semaphore {}", name.as_str()), file.uid)?;
        }
        let mut sem = Semaphore::new(raw, name, created);
        sem.file = file;
        Ok(sem)
    }
}

/// A POSIX named semaphore.
///
/// `Semaphore` is `Send + Sync`: one handle may be shared between threads (for example in an
/// `Arc`). It is closed (`sem_close`) on drop, and its name is unlinked if this handle created
/// it and [`persist`](Semaphore::persist) was not called.
#[derive(Debug)]
#[doc(alias = "sem_open")]
pub struct Semaphore {
    raw: NamedSem,
    name: PosixName,
    ownership: Ownership,
    /// The identity of the semaphore's file when it was opened (`None` if unknown).
    file: Option<sys::SemFile>,
}

impl Semaphore {
    fn new(raw: NamedSem, name: PosixName, owner: bool) -> Semaphore {
        Semaphore {
            raw,
            ownership: Ownership::new(owner, || format!("posix-sem:{name}")),
            name,
            file: None,
        }
    }

    /// Whether the name still leads to this very semaphore (same file).
    fn name_is_ours(&self) -> bool {
        let same = |a: &sys::SemFile, b: &sys::SemFile| a.dev == b.dev && a.ino == b.ino;
        match (&self.file, sys::sem_file(&self.name)) {
            (Some(ours), Ok(now)) => same(ours, &now),
            (None, _) => true,
            (Some(_), Err(_)) => false,
        }
    }

    /// Options for opening or creating a semaphore.
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Opens an existing semaphore ([`Error::NotFound`] if there is none).
    pub fn open(name: &str) -> Result<Semaphore, Error> {
        OpenOptions::new().open(name)
    }

    /// Opens the semaphore, creating it with `value` and mode `0o600` if it does not exist.
    pub fn create(name: &str, value: u32) -> Result<Semaphore, Error> {
        OpenOptions::new().create(true).value(value).open(name)
    }

    /// Creates the semaphore with `value` and mode `0o600`; [`Error::AlreadyExists`] if it
    /// exists.
    pub fn create_new(name: &str, value: u32) -> Result<Semaphore, Error> {
        OpenOptions::new().create_new(true).value(value).open(name)
    }

    /// The semaphore's name.
    pub fn name(&self) -> &PosixName {
        &self.name
    }

    /// Whether this handle created the semaphore (and so unlinks it on drop unless persisted).
    pub fn is_owner(&self) -> bool {
        self.ownership.is_owner()
    }

    /// Keeps the semaphore's name after this handle is dropped.
    pub fn persist(mut self) -> Semaphore {
        self.ownership.set_persist(true);
        self
    }

    /// Sets whether the name is kept after this (creating) handle is dropped.
    pub fn set_persist(&mut self, persist: bool) {
        self.ownership.set_persist(persist);
    }

    /// Decrements the semaphore (P), blocking while its value is zero.
    #[doc(alias = "sem_wait")]
    pub fn wait(&self) -> Result<(), Error> {
        self.wait_with(Wait::Forever)
    }

    /// Decrements the semaphore if its value is above zero; [`Error::WouldBlock`] otherwise.
    #[doc(alias = "sem_trywait")]
    pub fn try_wait(&self) -> Result<(), Error> {
        self.wait_with(Wait::NoWait)
    }

    /// Decrements the semaphore, waiting at most `timeout` (on the monotonic clock);
    /// [`Error::Timeout`] if the value stayed zero.
    #[doc(alias = "sem_clockwait")]
    #[doc(alias = "sem_timedwait")]
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), Error> {
        self.wait_with(Wait::timeout(timeout))
    }

    /// Decrements the semaphore, waiting as `wait` says. Interruptions by signals (`EINTR`) are
    /// retried with the original deadline.
    pub fn wait_with(&self, wait: Wait) -> Result<(), Error> {
        let res = match wait {
            Wait::Forever => crate::sys::retry_eintr(|| self.raw.wait()),
            Wait::NoWait => crate::sys::retry_eintr(|| self.raw.try_wait()),
            Wait::Until(_) => {
                // Translate the Instant into an absolute CLOCK_MONOTONIC time once, so that
                // retries after EINTR keep the same deadline.
                let remaining = wait.remaining().unwrap_or(Duration::ZERO);
                let deadline = sys::monotonic_now().saturating_add(remaining);
                crate::sys::retry_eintr(|| self.raw.wait_monotonic(deadline))
            }
        };
        res.map_err(|e| match e.raw_os_error() {
            Some(libc::EAGAIN) => Error::WouldBlock,
            Some(libc::ETIMEDOUT) => Error::Timeout,
            _ => Error::io("sem_wait", e),
        })
    }

    /// Increments the semaphore (V), waking one waiter. [`Error::Overflow`] at [`VALUE_MAX`].
    #[doc(alias = "sem_post")]
    pub fn post(&self) -> Result<(), Error> {
        self.raw.post().map_err(|e| match e.raw_os_error() {
            Some(libc::EOVERFLOW) => Error::Overflow,
            _ => Error::io("sem_post", e),
        })
    }

    /// The current value (a snapshot: other processes may change it at any moment).
    #[doc(alias = "sem_getvalue")]
    pub fn value(&self) -> Result<u32, Error> {
        // glibc never reports a negative value (waiters are not counted), but clamp anyway.
        self.raw
            .value()
            .map(|v| v.max(0) as u32)
            .map_err(|e| Error::io("sem_getvalue", e))
    }

    /// Removes the semaphore's name now (processes that have it open keep using it). After
    /// this, drop does not unlink again. When the name no longer leads to this semaphore (it
    /// was removed, and perhaps taken by another one since), nothing is removed:
    /// [`Error::NotFound`].
    #[doc(alias = "sem_unlink")]
    pub fn unlink(&mut self) -> Result<(), Error> {
        self.ownership.removed();
        if !self.name_is_ours() {
            return Err(Error::NotFound {
                name: self.name.as_str().to_owned(),
            });
        }
        unlink_name(&self.name)
    }

    /// Removes the semaphore named `name` ([`Error::NotFound`] if there is none).
    pub fn remove(name: &str) -> Result<(), Error> {
        unlink_name(&PosixName::semaphore(name)?)
    }
}

fn unlink_name(name: &PosixName) -> Result<(), Error> {
    sys::sem_unlink(name).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => Error::NotFound {
            name: name.as_str().to_owned(),
        },
        Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied {
            name: name.as_str().to_owned(),
            source: e,
        },
        _ => Error::io("sem_unlink", e),
    })
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        if self.ownership.is_owner() && self.name_is_ours() {
            let _ = sys::sem_unlink(&self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn semaphore_is_send_and_sync() {
        assert_send_sync::<Semaphore>();
    }

    #[test]
    fn names_are_checked_before_the_syscall() {
        for bad in ["jobs", "/", "/a/b", ""] {
            assert!(matches!(Semaphore::open(bad), Err(Error::InvalidName(_))));
        }
        let long = format!("/{}", "a".repeat(252));
        assert!(matches!(
            Semaphore::create_new(&long, 0),
            Err(Error::InvalidName(_))
        ));
    }

    #[test]
    fn value_above_max_is_rejected() {
        let name = format!("/ipcx-unit-{}-val", std::process::id());
        assert!(matches!(
            Semaphore::create_new(&name, VALUE_MAX + 1),
            Err(Error::InvalidValue { .. })
        ));
    }
}
