//! The errors of opening ([`OpenError`]), sending ([`SendError`]) and receiving
//! ([`RecvError`]).

use std::io;

use crate::name::{InvalidName, PosixName};
use crate::sys::mq as sys;
use crate::trust::ForeignOwner;

/// Why a queue could not be opened, created or unlinked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The name is not a valid POSIX IPC name.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// No queue has this name.
    #[error(
        "no message queue {name}: create it first (MessageQueue::create), or start its receiver"
    )]
    NotFound {
        /// The queue name.
        name: String,
    },
    /// `create_new` found a queue with this name.
    #[error("message queue {name} already exists: unlink it first, or open the existing one")]
    AlreadyExists {
        /// The queue name.
        name: String,
    },
    /// The queue's mode does not grant the access requested.
    #[error(
        "permission denied on message queue {name}: check its owner and mode (ls -l /dev/mqueue)"
    )]
    PermissionDenied {
        /// The queue name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The capacity asked for is zero.
    #[error("invalid capacity for message queue {name}: {reason}")]
    InvalidCapacity {
        /// The queue name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The capacity asked for is above a system limit.
    #[error(
        "capacity of message queue {name} too large: {what} {requested} exceeds {limit} \
         (the limit in {limit_file}; a privileged process may exceed it, or raise it with \
         sysctl)"
    )]
    CapacityTooLarge {
        /// The queue name.
        name: String,
        /// Which figure: `max messages` or `max message size`.
        what: &'static str,
        /// The figure requested.
        requested: u64,
        /// The limit, as read from `limit_file` (or the kernel's hard limit).
        limit: u64,
        /// The file holding the limit, such as `/proc/sys/fs/mqueue/msg_max`.
        limit_file: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A per-user or system-wide limit on queues was reached.
    #[error("cannot create message queue {name}: {what} (close or unlink unused queues)")]
    LimitReached {
        /// The queue name.
        name: String,
        /// Which limit.
        what: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The queue exists but belongs to a user the caller does not trust
    /// ([`OpenOptions::trust`](super::OpenOptions::trust)). It was left as it is.
    #[error(transparent)]
    ForeignOwner(#[from] ForeignOwner),
    /// Any other OS failure.
    #[error("message queue {name}: {source}")]
    Io {
        /// The queue name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Why a send failed. The message stays with the caller (sends borrow it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The message is larger than the queue's `mq_msgsize`.
    #[error(
        "message of {len} bytes is too large for this queue, whose max message size \
         (mq_msgsize) is {max} bytes"
    )]
    TooLarge {
        /// The message length.
        len: usize,
        /// The queue's `mq_msgsize`.
        max: usize,
    },
    /// The queue is full (non-blocking send).
    #[error("message queue is full: retry later, or use a blocking send")]
    Full,
    /// The deadline passed with the queue still full.
    #[error("timed out waiting for room in the message queue")]
    Timeout,
    /// The handle was opened without write access.
    #[error("this handle was opened without write access")]
    NotWritable,
    /// The queue's name was removed (`mq_unlink`: its receiver exited, or someone removed
    /// it) while this handle still had the queue open. Nobody can open it any more, so nothing
    /// sent into it would ever be received. Found when a send would block (the queue is full),
    /// not on every send: see
    /// [`MessageQueue::undelivered`](super::MessageQueue::undelivered) for the end of a batch.
    #[error(
        "the queue was removed (its receiver exited, or someone removed it): this message was \
         not sent{}",
        lost_text(*stranded)
    )]
    Unlinked {
        /// Messages sent earlier that are still in the queue and will never be received.
        stranded: usize,
    },
    /// Any other OS failure.
    #[error("mq_send failed: {0}")]
    Io(#[source] io::Error),
}

/// ", and the N messages still in it are lost" (nothing when there are none).
fn lost_text(stranded: usize) -> String {
    match stranded {
        0 => String::new(),
        1 => ", and the 1 message still in it is lost".into(),
        n => format!(", and the {n} messages still in it are lost"),
    }
}

/// Why a receive failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// No message is waiting (non-blocking receive).
    #[error("no message waiting in the message queue")]
    WouldBlock,
    /// The deadline passed with no message.
    #[error("timed out waiting for a message")]
    Timeout,
    /// The caller's buffer is shorter than the queue's `mq_msgsize`.
    #[error("receive buffer of {len} bytes is smaller than the queue's max message size {needed}")]
    BufferTooSmall {
        /// The buffer length.
        len: usize,
        /// The queue's `mq_msgsize`.
        needed: usize,
    },
    /// The handle was opened without read access.
    #[error("this handle was opened without read access")]
    NotReadable,
    /// Any other OS failure.
    #[error("mq_receive failed: {0}")]
    Io(#[source] io::Error),
}

pub(super) fn open_error(
    name: &PosixName,
    capacity: Option<(usize, usize)>,
    e: io::Error,
) -> OpenError {
    let name_s = name.to_string();
    match e.raw_os_error() {
        Some(libc::ENOENT) => OpenError::NotFound { name: name_s },
        Some(libc::EEXIST) => OpenError::AlreadyExists { name: name_s },
        Some(libc::EACCES | libc::EPERM) => OpenError::PermissionDenied {
            name: name_s,
            source: e,
        },
        Some(libc::EINVAL) if capacity.is_some() => {
            let (m, s) = capacity.unwrap_or_default();
            let msg_max = sys::read_limit(sys::MSG_MAX_FILE);
            let size_max = sys::read_limit(sys::MSGSIZE_MAX_FILE);
            // The kernel's hard limits (HARD_MSGMAX, HARD_MSGSIZEMAX) bound even privileged
            // creators.
            const HARD_MSGMAX: u64 = 65_536;
            const HARD_MSGSIZEMAX: u64 = 16 * 1024 * 1024;
            let (m, s) = (m as u64, s as u64);
            let (what, requested, limit) = match (msg_max, size_max) {
                (Some(lim), _) if m > lim => ("max messages", m, lim),
                (_, Some(lim)) if s > lim => ("max message size", s, lim),
                _ if m > HARD_MSGMAX => ("max messages", m, HARD_MSGMAX),
                _ if s > HARD_MSGSIZEMAX => ("max message size", s, HARD_MSGSIZEMAX),
                _ => {
                    return OpenError::Io {
                        name: name_s,
                        source: e,
                    };
                }
            };
            let limit_file = if what == "max messages" {
                sys::MSG_MAX_FILE
            } else {
                sys::MSGSIZE_MAX_FILE
            };
            OpenError::CapacityTooLarge {
                name: name_s,
                what,
                requested,
                limit,
                limit_file,
                source: e,
            }
        }
        Some(libc::EMFILE) => OpenError::LimitReached {
            name: name_s,
            what: "the per-process descriptor limit or the per-user queue memory limit \
                   (RLIMIT_MSGQUEUE) was reached",
            source: e,
        },
        Some(libc::ENFILE) => OpenError::LimitReached {
            name: name_s,
            what: "the system-wide limit on open files was reached",
            source: e,
        },
        Some(libc::ENOSPC) => OpenError::LimitReached {
            name: name_s,
            what: "the system-wide limit on queues (/proc/sys/fs/mqueue/queues_max) was reached",
            source: e,
        },
        _ => OpenError::Io {
            name: name_s,
            source: e,
        },
    }
}
