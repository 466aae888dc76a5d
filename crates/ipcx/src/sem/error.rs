//! [`NamedSemError`]: the errors of POSIX named semaphore operations.

use std::io;

use super::VALUE_MAX;
use crate::name::{InvalidName, PosixName};
use crate::os_error::OsError;

/// Errors of POSIX named semaphore operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NamedSemError {
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
    /// ([`OpenOptions::trust`](super::OpenOptions::trust)). It was left as it is.
    #[error(transparent)]
    ForeignOwner(#[from] crate::trust::ForeignOwner),
    /// Any other OS error.
    #[error(transparent)]
    Io(OsError),
}

impl NamedSemError {
    pub(super) fn io(what: &'static str, source: io::Error) -> NamedSemError {
        NamedSemError::Io(OsError::new(what, source))
    }

    pub(super) fn from_open(name: &PosixName, e: io::Error) -> NamedSemError {
        let name = name.as_str().to_owned();
        match e.raw_os_error() {
            Some(libc::ENOENT) => NamedSemError::NotFound { name },
            Some(libc::EEXIST) => NamedSemError::AlreadyExists { name },
            Some(libc::EACCES) | Some(libc::EPERM) => {
                NamedSemError::PermissionDenied { name, source: e }
            }
            _ => NamedSemError::io("sem_open", e),
        }
    }
}
