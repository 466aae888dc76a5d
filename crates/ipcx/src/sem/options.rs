//! [`OpenOptions`]: how to open or create a semaphore.

use std::io;

use super::{NamedSemError, Semaphore, VALUE_MAX};
use crate::name::PosixName;
use crate::open::{OpenFlags, open_flag_setters};
use crate::sys::sem::{self as sys, NamedSem, OpenHow};

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
        already_exists: "[`NamedSemError::AlreadyExists`]",
        umask: "the umask applies",
        mode_mask: u32::MAX,
        /// Whose existing semaphores to use besides the caller's own (default: only the caller's
        /// own uid; see [`crate::trust`]). An existing semaphore of another user is
        /// [`NamedSemError::ForeignOwner`].
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
    pub fn open(&self, name: &str) -> Result<Semaphore, NamedSemError> {
        let name = PosixName::semaphore(name)?;
        if (self.flags.create || self.flags.create_new) && self.value > VALUE_MAX {
            return Err(NamedSemError::InvalidValue { value: self.value });
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
                Err(e) => return Err(NamedSemError::from_open(&name, e)),
            }
            match sys::sem_open(&name, OpenHow::Open, 0, 0) {
                Ok(raw) => return self.opened(raw, name, false),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => last = Some(e),
                Err(e) => return Err(NamedSemError::from_open(&name, e)),
            }
        }
        Err(NamedSemError::io(
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
    ) -> Result<Semaphore, NamedSemError> {
        match sys::sem_open(&name, how, mode, value) {
            Ok(raw) => self.opened(raw, name, how == OpenHow::CreateNew),
            Err(e) => Err(NamedSemError::from_open(&name, e)),
        }
    }

    /// The handle for a semaphore just opened: one this call created is ours; an existing
    /// one must belong to a trusted user.
    fn opened(
        &self,
        raw: NamedSem,
        name: PosixName,
        created: bool,
    ) -> Result<Semaphore, NamedSemError> {
        let file = match sys::sem_file(&name) {
            Ok(file) => Some(file),
            // Without its owner, an existing semaphore cannot be trusted.
            Err(e) if !created => return Err(NamedSemError::from_open(&name, e)),
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
