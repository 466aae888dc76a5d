//! The errors of opening ([`OpenError`]), sending ([`SendError`]), receiving ([`RecvError`])
//! and controlling ([`ControlError`]) a queue.

use std::io;

use crate::sysv::Key;

/// Why a queue could not be opened or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// No queue has this key.
    #[error("no System V message queue with key {key}: create it first, or start its receiver")]
    NotFound {
        /// The key.
        key: Key,
    },
    /// `create_new` found a queue with this key.
    #[error(
        "a System V message queue with key {key} already exists: remove it first \
         (ipcrm -Q {key}) or open the existing one"
    )]
    AlreadyExists {
        /// The key.
        key: Key,
    },
    /// The queue's mode does not grant the access requested.
    #[error(
        "permission denied on System V message queue {key}: check its owner and mode (ipcs -q)"
    )]
    PermissionDenied {
        /// The key.
        key: Key,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The system-wide limit on queues (`/proc/sys/kernel/msgmni`) was reached.
    #[error(
        "cannot create System V message queue {key}: the system limit on queues \
         (/proc/sys/kernel/msgmni) was reached; remove unused queues (ipcs -q, ipcrm)"
    )]
    LimitReached {
        /// The key.
        key: Key,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The queue was created but its requested size could not be set.
    #[error("cannot set the size of System V message queue {key}: {source}")]
    MaxBytes {
        /// The key.
        key: Key,
        /// What went wrong.
        #[source]
        source: ControlError,
    },
    /// No queue has this id (or it was removed).
    #[error("no System V message queue with id {id}")]
    NoSuchId {
        /// The id.
        id: i32,
    },
    /// The queue exists but its owner or creator is a user the caller does not trust
    /// ([`OpenOptions::trust`](super::OpenOptions::trust)). It was left as it is.
    #[error(transparent)]
    ForeignOwner(#[from] crate::trust::ForeignOwner),
    /// Any other OS failure.
    #[error("System V message queue {key}: {source}")]
    Io {
        /// The key.
        key: Key,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Why a send failed. The message stays with the caller (sends borrow it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// Message types must be positive.
    #[error("invalid message type {mtype}: System V message types are positive (1 or more)")]
    InvalidType {
        /// The type given.
        mtype: i64,
    },
    /// The message is larger than a limit.
    #[error("message of {len} bytes is too large: {limit} is {max} bytes")]
    TooLarge {
        /// The message length.
        len: usize,
        /// The limit.
        max: usize,
        /// Which limit: the system's `msgmax` or the queue's `msg_qbytes`.
        limit: &'static str,
    },
    /// The queue is full (non-blocking send).
    #[error("System V message queue is full: retry later, or use a blocking send")]
    Full,
    /// The deadline passed with the queue still full.
    #[error("timed out waiting for room in the System V message queue")]
    Timeout,
    /// The queue was removed (before or during the call).
    #[error("the System V message queue was removed")]
    Removed,
    /// The queue's mode does not allow this process to send.
    #[error("permission denied: the queue's mode does not allow this process to send")]
    PermissionDenied(#[source] io::Error),
    /// Any other OS failure.
    #[error("msgsnd failed: {0}")]
    Io(#[source] io::Error),
}

/// Why a receive failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// No message (of the selected type) is waiting (non-blocking receive).
    #[error("no message of the selected type waiting in the System V message queue")]
    Empty,
    /// The deadline passed with no message.
    #[error("timed out waiting for a message")]
    Timeout,
    /// The queue was removed (before or during the call).
    #[error("the System V message queue was removed")]
    Removed,
    /// The selector does not fit a C `long` on this platform.
    #[error("invalid type selector {selector}")]
    InvalidSelector {
        /// The selector given.
        selector: i64,
    },
    /// The queue's mode does not allow this process to receive.
    #[error("permission denied: the queue's mode does not allow this process to receive")]
    PermissionDenied(#[source] io::Error),
    /// Any other OS failure.
    #[error("msgrcv failed: {0}")]
    Io(#[source] io::Error),
}

/// Why a control operation (stat, set size, remove) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The queue was removed.
    #[error("the System V message queue was removed")]
    Removed,
    /// Not permitted: stat needs read permission; changing or removing needs ownership (or
    /// privilege).
    #[error("permission denied: {hint}")]
    PermissionDenied {
        /// What would be allowed.
        hint: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Raising `msg_qbytes` above `/proc/sys/kernel/msgmnb` needs privilege.
    #[error(
        "queue size {requested} exceeds {limit} bytes, the limit in {limit_file} for \
         unprivileged processes (raise it with sysctl kernel.msgmnb)"
    )]
    MaxBytesTooLarge {
        /// The size requested.
        requested: u64,
        /// The limit.
        limit: u64,
        /// The file holding the limit.
        limit_file: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Any other OS failure.
    #[error("msgctl failed: {0}")]
    Io(#[source] io::Error),
}

pub(super) fn open_error(key: Key, e: io::Error) -> OpenError {
    match e.raw_os_error() {
        Some(libc::ENOENT) => OpenError::NotFound { key },
        Some(libc::EEXIST) => OpenError::AlreadyExists { key },
        Some(libc::EACCES | libc::EPERM) => OpenError::PermissionDenied { key, source: e },
        Some(libc::ENOSPC) => OpenError::LimitReached { key, source: e },
        _ => OpenError::Io { key, source: e },
    }
}

pub(super) fn control_error(e: io::Error, hint: &'static str) -> ControlError {
    match e.raw_os_error() {
        Some(libc::EIDRM | libc::EINVAL) => ControlError::Removed,
        Some(libc::EACCES | libc::EPERM) => ControlError::PermissionDenied { hint, source: e },
        _ => ControlError::Io(e),
    }
}
