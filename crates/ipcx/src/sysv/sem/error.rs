//! [`SemSetError`]: the errors of System V semaphore operations.

use std::io;

use super::VALUE_MAX;
use crate::os_error::OsError;
use crate::sysv::Key;

/// Errors of System V semaphore operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SemSetError {
    /// No set has this key.
    #[error("no semaphore set with key {key}: create it first or check the key")]
    NotFound {
        /// The key looked up.
        key: Key,
    },
    /// `create_new` found a set with this key.
    #[error("a semaphore set with key {key} already exists: open it, or remove it first")]
    AlreadyExists {
        /// The key.
        key: Key,
    },
    /// The set's mode does not allow this operation to this user.
    #[error(
        "semaphore set {what}: its mode does not allow this user (check its owner and mode \
         with ipcx ls)"
    )]
    PermissionDenied {
        /// The key or id.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The set was removed (while waiting, or before the call).
    #[error("the semaphore set was removed")]
    Removed,
    /// A semaphore index is not below the set's size.
    #[error("semaphore index {index} is out of range: the set has {nsems} semaphores")]
    IndexOutOfRange {
        /// The index given.
        index: usize,
        /// The number of semaphores in the set.
        nsems: usize,
    },
    /// The number of semaphores is invalid: zero, above the system limit (`SEMMSL`), or more
    /// than an existing set with this key holds.
    #[error(
        "invalid number of semaphores {nsems} (zero, above SEMMSL, or larger than the existing set)"
    )]
    InvalidSize {
        /// The number asked for.
        nsems: usize,
    },
    /// `try_op` (or an operation flagged `nowait`) could not proceed at once.
    #[error("the semaphore operation would block")]
    WouldBlock,
    /// The operation could not proceed before the deadline.
    #[error("timed out waiting on the semaphore set")]
    Timeout,
    /// A value would go above [`VALUE_MAX`] (or the per-process undo adjustment would overflow).
    #[error("semaphore value would exceed {VALUE_MAX}")]
    Overflow,
    /// The system limit on semaphore sets or semaphores is reached (`ENOSPC`).
    #[error("no space for a new semaphore set (SEMMNI/SEMMNS limit reached): remove unused sets")]
    NoSpace,
    /// The set exists but its owner or creator is a user the caller does not trust
    /// ([`Options::trust`](super::Options::trust)). It was left as it is.
    #[error(transparent)]
    ForeignOwner(#[from] crate::trust::ForeignOwner),
    /// Any other OS error.
    #[error(transparent)]
    Io(OsError),
}

impl SemSetError {
    pub(super) fn io(what: &'static str, source: io::Error) -> SemSetError {
        SemSetError::Io(OsError::new(what, source))
    }

    /// Maps errors of operations on an existing set (`semop`, `semctl`).
    pub(super) fn on_set(what: &'static str, id: i32, e: io::Error) -> SemSetError {
        match e.raw_os_error() {
            // EINVAL on an id: the set is gone (removed before the call).
            Some(libc::EIDRM) | Some(libc::EINVAL) => SemSetError::Removed,
            Some(libc::EACCES) | Some(libc::EPERM) => SemSetError::PermissionDenied {
                what: format!("id {id}"),
                source: e,
            },
            Some(libc::ERANGE) => SemSetError::Overflow,
            _ => SemSetError::io(what, e),
        }
    }

    pub(super) fn on_get(key: Key, nsems: usize, e: io::Error) -> SemSetError {
        match e.raw_os_error() {
            Some(libc::ENOENT) => SemSetError::NotFound { key },
            Some(libc::EEXIST) => SemSetError::AlreadyExists { key },
            Some(libc::EACCES) | Some(libc::EPERM) => SemSetError::PermissionDenied {
                what: format!("key {key}"),
                source: e,
            },
            Some(libc::EINVAL) => SemSetError::InvalidSize { nsems },
            Some(libc::ENOSPC) => SemSetError::NoSpace,
            _ => SemSetError::io("semget", e),
        }
    }
}
