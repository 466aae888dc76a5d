//! Why a ring or work-queue operation failed.

use ipcx_ring::RingError as CoreError;

use crate::name::{InvalidName, PosixName};

/// Why a ring operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// The name is not a valid POSIX name.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// No ring has this name.
    #[error("no ring shm:{name}: start a subscriber first (it creates the ring), or use create")]
    NotFound {
        /// The name.
        name: String,
    },
    /// `create_new` found the name taken.
    #[error("shm:{name} already exists: open it, or remove it (ipcx rm shm:{name}) if it is stale")]
    AlreadyExists {
        /// The name.
        name: String,
    },
    /// The segment's mode does not allow this user.
    #[error("permission denied on ring shm:{name}: check its owner and mode (ipcx ls)")]
    PermissionDenied {
        /// The name.
        name: String,
    },
    /// The creation parameters are unusable.
    #[error("invalid ring parameters: {reason}")]
    InvalidParameters {
        /// What is wrong.
        reason: &'static str,
    },
    /// The object is not an ipcx ring.
    #[error("{name} is not an ipcx ring (magic {found:#018x}): use another name")]
    NotARing {
        /// The name.
        name: String,
        /// The magic number found.
        found: u64,
    },
    /// The ring was made by an incompatible ipcx.
    #[error(
        "ring {name} has layout version {found}, this ipcx uses {expected}: upgrade the older side"
    )]
    VersionMismatch {
        /// The name.
        name: String,
        /// Found.
        found: u32,
        /// Expected.
        expected: u32,
    },
    /// A header field disagrees with what this side needs or computes.
    #[error("ring {name} is incompatible ({field}: expected {expected}, found {found})")]
    Incompatible {
        /// The name.
        name: String,
        /// The field.
        field: &'static str,
        /// Expected.
        expected: u64,
        /// Found.
        found: u64,
    },
    /// The segment is smaller than its header says.
    #[error("ring {name} is {size} bytes but needs {needed}: truncated or not a ring")]
    TooSmall {
        /// The name.
        name: String,
        /// Size found.
        size: u64,
        /// Size needed.
        needed: u64,
    },
    /// The creator did not finish initialising in time.
    #[error("ring {name} was never initialised: its creator died while creating it; remove it")]
    NotInitialised {
        /// The name.
        name: String,
    },
    /// A control word or record header holds an impossible value (a peer scribbled on it).
    #[error(
        "ring {name} is corrupt ({what}): a peer wrote garbage into it; remove it and start again"
    )]
    Corrupt {
        /// The name.
        name: String,
        /// What was wrong.
        what: &'static str,
    },
    /// Another live process publishes on this ring.
    #[error("ring {name} already has a publisher (pid {pid}): one publisher per ring")]
    PublisherExists {
        /// The name.
        name: String,
        /// Its pid.
        pid: i32,
    },
    /// Every subscriber place is taken by a live process.
    #[error("ring {name} has no free subscriber place (max {max}): create it with more")]
    TooManySubscribers {
        /// The name.
        name: String,
        /// The maximum.
        max: u32,
    },
    /// Every participant place of a work queue is taken by a live process.
    #[error("work queue {name} has no free participant place (max {max}): create it with more")]
    TooManyParticipants {
        /// The name.
        name: String,
        /// The maximum.
        max: u32,
    },
    /// The message is larger than the ring's maximum.
    #[error("message of {len} bytes is too large for this ring (at most {max} bytes)")]
    TooLarge {
        /// The length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// `try_send`/`try_loan`: no room now.
    #[error("the ring is full: a subscriber is behind; retry, or use a blocking send")]
    Full,
    /// `try_recv`: nothing waiting.
    #[error("no message waiting")]
    Empty,
    /// The deadline passed.
    #[error("timed out")]
    Timeout,
    /// The peer died (or left and nothing is left to read).
    #[error("peer gone: {what}")]
    PeerGone {
        /// Which peer.
        what: String,
    },
    /// Any other OS error.
    #[error("ring {name}: {source}")]
    Io {
        /// The name.
        name: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The segment belongs to a user that [`Options::trust`](super::Options::trust) does not trust.
    #[error(transparent)]
    ForeignOwner(#[from] crate::trust::ForeignOwner),
}

impl RingError {
    pub(crate) fn from_io(name: &PosixName, source: std::io::Error) -> RingError {
        let name = name.to_string();
        match source.raw_os_error() {
            Some(libc::ENOENT) => RingError::NotFound { name },
            Some(libc::EEXIST) => RingError::AlreadyExists { name },
            Some(libc::EACCES | libc::EPERM) => RingError::PermissionDenied { name },
            _ => RingError::Io { name, source },
        }
    }

    pub(crate) fn from_ring(name: &PosixName, e: CoreError) -> RingError {
        match e {
            CoreError::Full => RingError::Full,
            CoreError::TooLarge { len, max } => RingError::TooLarge { len, max },
            CoreError::Corrupt(what) => RingError::Corrupt {
                name: name.to_string(),
                what,
            },
        }
    }
}
