//! [`SysvShmError`]: what can go wrong with System V shared memory.

use std::io;

use crate::os_error::OsError;
use crate::region::AccessError;
use crate::sysv::Key;

/// What can go wrong with System V shared memory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SysvShmError {
    /// No segment has this key.
    #[error("no System V segment with key {key}: create it first or check the key")]
    NotFound {
        /// The key looked up.
        key: Key,
        /// The OS error (`ENOENT`).
        #[source]
        source: io::Error,
    },
    /// `create_new` found a segment with this key.
    #[error(
        "a System V segment with key {key} already exists: open it, use another key, or remove it (ipcrm -M {key}) if it is stale"
    )]
    AlreadyExists {
        /// The key.
        key: Key,
        /// The OS error (`EEXIST`).
        #[source]
        source: io::Error,
    },
    /// The segment's mode does not allow this access.
    #[error(
        "{what}: the segment's mode does not allow this user (check its owner and mode with ipcx ls)"
    )]
    PermissionDenied {
        /// What was attempted.
        what: String,
        /// The OS error (`EACCES` or `EPERM`).
        #[source]
        source: io::Error,
    },
    /// A size of 0, or one outside the system limits (`SHMMIN`..`SHMMAX`).
    #[error("invalid segment size {size}: {reason}")]
    InvalidSize {
        /// The size asked for.
        size: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The existing segment is smaller than the size asked for (`EINVAL` from `shmget`).
    #[error(
        "the System V segment with key {key} exists but is smaller than the {requested} bytes asked for: open it without a size, or remove it and create it again"
    )]
    ExistingTooSmall {
        /// The key.
        key: Key,
        /// The size asked for.
        requested: usize,
        /// The OS error (`EINVAL`).
        #[source]
        source: io::Error,
    },
    /// The segment id no longer names a segment (it was removed and its last user detached).
    #[error("System V segment id {id} is gone: it was removed")]
    Removed {
        /// The id.
        id: i32,
        /// The OS error (`EINVAL` or `EIDRM`).
        #[source]
        source: io::Error,
    },
    /// `open` with [`Key::PRIVATE`], which never names an existing segment.
    #[error(
        "Key::PRIVATE names no existing segment: open a private segment with Segment::from_id and the id its creator gives you"
    )]
    PrivateKey,
    /// A failed access to the attachment: out of bounds, read-only, or not a valid value.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// The segment exists but its owner or creator is a user the caller does not trust
    /// ([`SegmentOptions::trust`](super::SegmentOptions::trust)). It was left as it is.
    #[error(transparent)]
    ForeignOwner(#[from] crate::trust::ForeignOwner),
    /// Any other OS error.
    #[error(transparent)]
    Io(OsError),
}

pub(super) fn id_error(what: &str, id: i32, e: io::Error) -> SysvShmError {
    match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::EIDRM) => SysvShmError::Removed { id, source: e },
        Some(libc::EACCES) | Some(libc::EPERM) => SysvShmError::PermissionDenied {
            what: format!("{what} segment id {id}"),
            source: e,
        },
        _ => SysvShmError::Io(OsError::new(format!("{what} segment id {id}"), e)),
    }
}

pub(super) fn key_error(what: &str, key: Key, e: io::Error) -> SysvShmError {
    match e.raw_os_error() {
        Some(libc::ENOENT) => SysvShmError::NotFound { key, source: e },
        Some(libc::EEXIST) => SysvShmError::AlreadyExists { key, source: e },
        Some(libc::EACCES) | Some(libc::EPERM) => SysvShmError::PermissionDenied {
            what: format!("{what} segment {key}"),
            source: e,
        },
        Some(libc::ENOSPC) => SysvShmError::Io(OsError::new(
            format!(
                "{what} segment {key}: the system's segment limits (SHMMNI/SHMALL) are reached; \
                 remove unused segments (ipcs -m)"
            ),
            e,
        )),
        _ => SysvShmError::Io(OsError::new(format!("{what} segment {key}"), e)),
    }
}
