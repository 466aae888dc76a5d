//! [`Options`]: how to open or create a semaphore set.

use std::io;

use super::{SemSetError, SemaphoreSet, VALUE_MAX};
use crate::open::{OpenFlags, open_flag_setters};
use crate::sys::sysv_sem as sys;
use crate::sysv::Key;

/// How to open or create a semaphore set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    flags: OpenFlags,
    values: Option<Vec<u16>>,
}

impl Options {
    /// Open an existing set; mode `0o600` for new ones.
    pub fn new() -> Options {
        Options::default()
    }

    open_flag_setters! {
        noun: "set",
        already_exists: "[`SemSetError::AlreadyExists`]",
        umask: "System V IPC ignores the umask",
        mode_mask: 0o777,
        /// Whose existing sets to use besides the caller's own (default: only the caller's own
        /// uid; see [`crate::trust`]). A set that this call did not create and whose owner or
        /// creator is another user is [`SemSetError::ForeignOwner`].
        trust,
    }

    /// Initial values of a new set (one per semaphore; SETALL right after creation). Without
    /// this, a new set's values are 0.
    pub fn values(mut self, values: &[u16]) -> Self {
        self.values = Some(values.to_vec());
        self
    }

    /// Opens or creates the set with key `key` holding `nsems` semaphores (when opening, the
    /// existing set must hold at least `nsems`; pass 0 to accept any size).
    /// [`Key::PRIVATE`] always creates a new set.
    pub fn open(&self, key: Key, nsems: usize) -> Result<SemaphoreSet, SemSetError> {
        let creating = self.flags.create || self.flags.create_new || key == Key::PRIVATE;
        if creating && (nsems == 0 || nsems > i32::MAX as usize) {
            return Err(SemSetError::InvalidSize { nsems });
        }
        if let Some(values) = &self.values {
            if values.len() != nsems {
                return Err(SemSetError::InvalidSize { nsems });
            }
            if values.iter().any(|v| *v > VALUE_MAX) {
                return Err(SemSetError::Overflow);
            }
        }
        let n = i32::try_from(nsems).map_err(|_| SemSetError::InvalidSize { nsems })?;
        let excl = libc::IPC_CREAT | libc::IPC_EXCL | self.flags.mode as i32;
        let (id, created) = if self.flags.create_new || key == Key::PRIVATE {
            let id = sys::semget(key.0, n, excl).map_err(|e| SemSetError::on_get(key, nsems, e))?;
            (id, true)
        } else if self.flags.create {
            // Try to create, then to open, so that the handle knows whether it created the set.
            let mut found = None;
            for _ in 0..16 {
                match sys::semget(key.0, n, excl) {
                    Ok(id) => {
                        found = Some((id, true));
                        break;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(SemSetError::on_get(key, nsems, e)),
                }
                match sys::semget(key.0, n, 0) {
                    Ok(id) => {
                        found = Some((id, false));
                        break;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                    Err(e) => return Err(SemSetError::on_get(key, nsems, e)),
                }
            }
            found.ok_or_else(|| {
                SemSetError::io(
                    "semget (the set was repeatedly created and removed by another process)",
                    io::Error::from_raw_os_error(libc::ENOENT),
                )
            })?
        } else {
            let id = sys::semget(key.0, n, 0).map_err(|e| SemSetError::on_get(key, nsems, e))?;
            (id, false)
        };
        if !created {
            let st = sys::stat(id).map_err(|e| SemSetError::on_set("semctl(IPC_STAT)", id, e))?;
            let what = format!("semaphore set sysv-sem:{key}");
            crate::sysv::check_owner(&self.flags.trust, &what, st.uid, st.cuid)?;
        }
        let set = SemaphoreSet::from_parts(id, key, created)?;
        if created && let Some(values) = &self.values {
            set.set_all(values)?;
        }
        Ok(set)
    }
}
