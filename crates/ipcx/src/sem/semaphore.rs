//! [`Semaphore`]: an open POSIX named semaphore.

use std::time::Duration;

use super::{NamedSemError, OpenOptions};
use crate::name::PosixName;
use crate::registry::Ownership;
use crate::sys::sem::{self as sys, NamedSem};
use crate::wait::Wait;

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
    pub(super) file: Option<sys::SemFile>,
}

impl Semaphore {
    pub(super) fn new(raw: NamedSem, name: PosixName, owner: bool) -> Semaphore {
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

    /// Opens an existing semaphore ([`NamedSemError::NotFound`] if there is none).
    pub fn open(name: &str) -> Result<Semaphore, NamedSemError> {
        OpenOptions::new().open(name)
    }

    /// Opens the semaphore, creating it with `value` and mode `0o600` if it does not exist.
    pub fn create(name: &str, value: u32) -> Result<Semaphore, NamedSemError> {
        OpenOptions::new().create(true).value(value).open(name)
    }

    /// Creates the semaphore with `value` and mode `0o600`; [`NamedSemError::AlreadyExists`] if it
    /// exists.
    pub fn create_new(name: &str, value: u32) -> Result<Semaphore, NamedSemError> {
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
    pub fn wait(&self) -> Result<(), NamedSemError> {
        self.wait_with(Wait::Forever)
    }

    /// Decrements the semaphore if its value is above zero; [`NamedSemError::WouldBlock`]
    /// otherwise.
    #[doc(alias = "sem_trywait")]
    pub fn try_wait(&self) -> Result<(), NamedSemError> {
        self.wait_with(Wait::NoWait)
    }

    /// Decrements the semaphore, waiting at most `timeout` (on the monotonic clock);
    /// [`NamedSemError::Timeout`] if the value stayed zero.
    #[doc(alias = "sem_clockwait")]
    #[doc(alias = "sem_timedwait")]
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), NamedSemError> {
        self.wait_with(Wait::timeout(timeout))
    }

    /// Decrements the semaphore, waiting as `wait` says. Interruptions by signals (`EINTR`) are
    /// retried with the original deadline.
    pub fn wait_with(&self, wait: Wait) -> Result<(), NamedSemError> {
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
            Some(libc::EAGAIN) => NamedSemError::WouldBlock,
            Some(libc::ETIMEDOUT) => NamedSemError::Timeout,
            _ => NamedSemError::io("sem_wait", e),
        })
    }

    /// Increments the semaphore (V), waking one waiter. [`NamedSemError::Overflow`] at
    /// [`VALUE_MAX`](super::VALUE_MAX).
    #[doc(alias = "sem_post")]
    pub fn post(&self) -> Result<(), NamedSemError> {
        self.raw.post().map_err(|e| match e.raw_os_error() {
            Some(libc::EOVERFLOW) => NamedSemError::Overflow,
            _ => NamedSemError::io("sem_post", e),
        })
    }

    /// The current value (a snapshot: other processes may change it at any moment).
    #[doc(alias = "sem_getvalue")]
    pub fn value(&self) -> Result<u32, NamedSemError> {
        // glibc never reports a negative value (waiters are not counted), but clamp anyway.
        self.raw
            .value()
            .map(|v| v.max(0) as u32)
            .map_err(|e| NamedSemError::io("sem_getvalue", e))
    }

    /// Removes the semaphore's name now (processes that have it open keep using it). After
    /// this, drop does not unlink again. When the name no longer leads to this semaphore (it
    /// was removed, and perhaps taken by another one since), nothing is removed:
    /// [`NamedSemError::NotFound`].
    #[doc(alias = "sem_unlink")]
    pub fn unlink(&mut self) -> Result<(), NamedSemError> {
        self.ownership.removed();
        if !self.name_is_ours() {
            return Err(NamedSemError::NotFound {
                name: self.name.as_str().to_owned(),
            });
        }
        unlink_name(&self.name)
    }

    /// Removes the semaphore named `name` ([`NamedSemError::NotFound`] if there is none).
    pub fn remove(name: &str) -> Result<(), NamedSemError> {
        unlink_name(&PosixName::semaphore(name)?)
    }
}

fn unlink_name(name: &PosixName) -> Result<(), NamedSemError> {
    sys::sem_unlink(name).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => NamedSemError::NotFound {
            name: name.as_str().to_owned(),
        },
        Some(libc::EACCES) | Some(libc::EPERM) => NamedSemError::PermissionDenied {
            name: name.as_str().to_owned(),
            source: e,
        },
        _ => NamedSemError::io("sem_unlink", e),
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
    use crate::sem::VALUE_MAX;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn semaphore_is_send_and_sync() {
        assert_send_sync::<Semaphore>();
    }

    #[test]
    fn names_are_checked_before_the_syscall() {
        for bad in ["jobs", "/", "/a/b", ""] {
            assert!(matches!(
                Semaphore::open(bad),
                Err(NamedSemError::InvalidName(_))
            ));
        }
        let long = format!("/{}", "a".repeat(252));
        assert!(matches!(
            Semaphore::create_new(&long, 0),
            Err(NamedSemError::InvalidName(_))
        ));
    }

    #[test]
    fn value_above_max_is_rejected() {
        let name = format!("/ipcx-unit-{}-val", std::process::id());
        assert!(matches!(
            Semaphore::create_new(&name, VALUE_MAX + 1),
            Err(NamedSemError::InvalidValue { .. })
        ));
    }
}
