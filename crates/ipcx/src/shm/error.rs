//! [`ShmError`]: what can go wrong with POSIX shared memory, memfds and their mappings.

use std::io;

use crate::name::InvalidName;
use crate::os_error::OsError;
use crate::region::AccessError;

/// What can go wrong with POSIX shared memory, memfds and their mappings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShmError {
    /// The name is not a valid POSIX name (or memfd label).
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// No object has this name.
    #[error(
        "no shared-memory object {name}: create it first (create/create_new) or check the name"
    )]
    NotFound {
        /// The name looked up.
        name: String,
        /// The OS error (`ENOENT`).
        #[source]
        source: io::Error,
    },
    /// `create_new` found an object with this name.
    #[error(
        "shared-memory object {name} already exists: open it, pick another name, or unlink it if it is stale"
    )]
    AlreadyExists {
        /// The name.
        name: String,
        /// The OS error (`EEXIST`).
        #[source]
        source: io::Error,
    },
    /// The object's mode does not allow this access (or the fd was opened read-only).
    #[error("permission denied: {what}: check the object's owner and mode")]
    PermissionDenied {
        /// What was attempted.
        what: String,
        /// The OS error (`EACCES`).
        #[source]
        source: io::Error,
    },
    /// A size of 0 (cannot be mapped) or one too large for this machine.
    #[error("invalid size {size}: {reason}")]
    InvalidSize {
        /// The size asked for or found.
        size: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A failed access to the mapping: out of bounds, read-only, or not a valid value.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// A memfd seal forbids this (`EPERM`): writing, growing, shrinking, or adding seals after
    /// `F_SEAL_SEAL`.
    #[error("{what}: forbidden by the memfd's seals")]
    Sealed {
        /// What was attempted.
        what: String,
        /// The OS error (`EPERM`).
        #[source]
        source: io::Error,
    },
    /// `F_SEAL_WRITE` while a writable shared mapping exists (`EBUSY`).
    #[error(
        "cannot seal against writes while a writable shared mapping exists: drop every writable ShmMap of this memfd (in every process) first"
    )]
    WritableMappingExists {
        /// The OS error (`EBUSY`).
        #[source]
        source: io::Error,
    },
    /// Any other OS error.
    #[error(transparent)]
    Io(OsError),
    /// The object was shrunk (truncated) by another process under this mapping and an access
    /// hit a lost page: the mapping now reads as zeros and is private to this process. The
    /// bytes a read returned together with this error are not the object's; drop the mapping
    /// (and map again if the object was resized).
    #[error(
        "the shared-memory object behind this mapping was truncated by another process: its bytes are gone; map it again"
    )]
    Truncated,
    /// The object belongs to a user that [`ShmOptions::trust`](super::ShmOptions::trust) does
    /// not trust.
    #[error(transparent)]
    ForeignOwner(#[from] crate::trust::ForeignOwner),
}

impl ShmError {
    /// Names the errno cases a caller acts on; `name` is the object's name for the messages.
    pub(super) fn from_io(what: impl Into<String>, name: &str, e: io::Error) -> ShmError {
        let what = what.into();
        match e.raw_os_error() {
            Some(libc::ENOENT) => ShmError::NotFound {
                name: name.to_owned(),
                source: e,
            },
            Some(libc::EEXIST) => ShmError::AlreadyExists {
                name: name.to_owned(),
                source: e,
            },
            Some(libc::EACCES) => ShmError::PermissionDenied {
                what: format!("{what} {name}"),
                source: e,
            },
            Some(libc::EPERM) => ShmError::Sealed {
                what: format!("{what} {name}"),
                source: e,
            },
            _ => ShmError::Io(OsError::new(format!("{what} {name}"), e)),
        }
    }
}
