//! POSIX message queues (`mq_overview(7)`): named, kernel-held queues of discrete messages,
//! each with a priority. Higher-priority messages are received first; equal priorities keep
//! their order.
//!
//! ```no_run
//! use ipcx::mq::MessageQueue;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The creating handle removes the queue when dropped (unless `.persist()`).
//! let q = MessageQueue::options()
//!     .capacity(10, 1024)
//!     .create_new(true)
//!     .open("/jobs")?;
//! q.send(b"low", 0)?;
//! q.send(b"urgent", 5)?;
//! let (msg, prio) = q.recv()?;
//! assert_eq!((msg.as_slice(), prio), (&b"urgent"[..], 5));
//! # Ok(()) }
//! ```
//!
//! # Behaviour
//! * Open/create follow [`std::fs::OpenOptions`]: [`MessageQueue::open`] (must exist),
//!   [`MessageQueue::create`] (open or create), [`MessageQueue::create_new`] (fail if it
//!   exists); [`OpenOptions`] sets the mode (default `0o600`), the capacity and the access.
//! * **Ownership**: the handle that actually created the queue unlinks it when dropped, unless
//!   [`MessageQueue::persist`] was called. `create` finds out whether it created the queue by
//!   trying an exclusive create first, so a `create` that opened an existing queue never
//!   unlinks it. Unlinking only removes the name: processes that have the queue open keep using
//!   it until they close it.
//! * **Mode**: a new queue gets exactly the mode asked for (`fchmod` after `mq_open`, which
//!   applies the umask).
//! * **Trust**: an existing queue that belongs to another user is refused
//!   ([`OpenError::ForeignOwner`], checked with `fstat` on the descriptor) unless
//!   [`OpenOptions::trust`] allows that user: its owner could read the messages or forge them.
//! * **A receiver that is gone**: a queue has no count of readers, but a receiver that goes
//!   away removes the queue it created, and a removed queue can never be opened again. A send
//!   that would block waits in slices of 100 ms and, between them, checks whether the queue's
//!   name was removed (`fstat`: the link count drops to 0); if so it fails with
//!   [`SendError::Unlinked`], counting the messages stranded in the queue. A send that finds
//!   room costs nothing extra, so a sender that never blocks asks
//!   [`MessageQueue::undelivered`] at the end of its batch. A queue whose name still exists is
//!   a valid meeting point (a receiver may come later): a send blocked on it waits on (use a
//!   timeout). Descriptors adopted with `From<OwnedFd>` are not watched (the queue may have
//!   been unlinked on purpose), and an [`AsyncMessageQueue`] checks only when it tries to send,
//!   not while it waits for room.
//! * Every blocking operation comes as `op`, `try_op` (never blocks) and `op_timeout`.
//!   Timeouts are turned into an absolute `CLOCK_REALTIME` deadline for `mq_timedsend` /
//!   `mq_timedreceive`, as those calls require, so a wall-clock step during the wait shortens or
//!   lengthens it.
//! * Capacity: unprivileged processes may create queues of at most
//!   `/proc/sys/fs/mqueue/msg_max` messages (default 10) of at most
//!   `/proc/sys/fs/mqueue/msgsize_max` bytes (default 8192); a larger request is
//!   [`OpenError::CapacityTooLarge`], naming the limit. Privileged processes (`CAP_SYS_RESOURCE`)
//!   may exceed them, up to the kernel's hard limits.
//! * The descriptor is pollable ([`AsFd`]); with the `tokio` feature, [`AsyncMessageQueue`]
//!   offers `async` send and receive.
//!
//! # References
//! [mq_overview(7)](https://man7.org/linux/man-pages/man7/mq_overview.7.html),
//! [mq_open(3)](https://man7.org/linux/man-pages/man3/mq_open.3.html),
//! [mq_send(3)](https://man7.org/linux/man-pages/man3/mq_send.3.html),
//! [mq_receive(3)](https://man7.org/linux/man-pages/man3/mq_receive.3.html),
//! [mq_getattr(3)](https://man7.org/linux/man-pages/man3/mq_getattr.3.html).

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::name::{InvalidName, PosixName};
use crate::open::{OpenFlags, open_flag_setters};
use crate::registry::Ownership;
use crate::sys::mq as sys;
use crate::trust::ForeignOwner;
use crate::wait::Wait;

/// How long a blocked send waits before it looks again whether the queue was unlinked.
const UNLINK_CHECK_INTERVAL: Duration = Duration::from_millis(100);

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
    /// ([`OpenOptions::trust`]). It was left as it is.
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
    /// not on every send: see [`MessageQueue::undelivered`] for the end of a batch.
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

/// A queue's attributes, as `mq_getattr` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attributes {
    /// Capacity in messages (`mq_maxmsg`).
    pub max_messages: usize,
    /// Largest message in bytes (`mq_msgsize`).
    pub max_message_size: usize,
    /// Messages currently queued (`mq_curmsgs`).
    pub current_messages: usize,
    /// Whether this handle's descriptor is non-blocking (`O_NONBLOCK`).
    pub nonblocking: bool,
}

/// How to open or create a queue, in the style of [`std::fs::OpenOptions`].
#[derive(Debug, Clone)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    flags: OpenFlags,
    capacity: Option<(usize, usize)>,
    nonblocking: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// Read and write access, open only, mode `0o600`, system-default capacity.
    pub fn new() -> OpenOptions {
        OpenOptions {
            read: true,
            write: true,
            flags: OpenFlags::default(),
            capacity: None,
            nonblocking: false,
        }
    }

    /// Whether the handle may receive (default true).
    pub fn read(mut self, read: bool) -> Self {
        self.read = read;
        self
    }

    /// Whether the handle may send (default true).
    pub fn write(mut self, write: bool) -> Self {
        self.write = write;
        self
    }

    open_flag_setters! {
        noun: "queue",
        already_exists: "[`OpenError::AlreadyExists`]",
        umask: "applied exactly, whatever the umask",
        mode_mask: 0o777,
        /// Whose existing queues to use besides the caller's own (default: only the caller's own
        /// uid; see [`crate::trust`]). A queue that this call did not create and that belongs to
        /// another user is [`OpenError::ForeignOwner`]: another user could read the messages or
        /// forge them.
        trust,
    }

    /// The capacity of a new queue: at most `max_messages` messages of at most
    /// `max_message_size` bytes each (default: the system defaults,
    /// `/proc/sys/fs/mqueue/msg_default` and `msgsize_default`). Ignored when the queue exists.
    pub fn capacity(mut self, max_messages: usize, max_message_size: usize) -> Self {
        self.capacity = Some((max_messages, max_message_size));
        self
    }

    /// Opens the descriptor `O_NONBLOCK`: blocking calls then behave like their `try_` forms.
    /// [`MessageQueue::into_async`] sets this itself.
    pub fn nonblocking(mut self, nonblocking: bool) -> Self {
        self.nonblocking = nonblocking;
        self
    }

    /// Opens (or creates) the queue `name` as configured.
    ///
    /// # Errors
    /// [`OpenError`]: an invalid name (checked before any system call), a missing queue, an
    /// existing one for `create_new`, permission denied, a capacity above the system limits.
    #[doc(alias = "mq_open")]
    pub fn open(&self, name: &str) -> Result<MessageQueue, OpenError> {
        let name = PosixName::queue(name)?;
        self.open_name(&name)
    }

    /// Like [`OpenOptions::open`] with a name already validated.
    pub fn open_name(&self, name: &PosixName) -> Result<MessageQueue, OpenError> {
        let capacity = match self.capacity {
            None => None,
            Some((m, s)) => {
                if m == 0 || s == 0 {
                    return Err(OpenError::InvalidCapacity {
                        name: name.to_string(),
                        reason: format!(
                            "max messages ({m}) and max message size ({s}) must both be at least 1"
                        ),
                    });
                }
                let to_i64 = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
                Some((to_i64(m), to_i64(s)))
            }
        };
        let mut args = sys::OpenArgs {
            read: self.read || !self.write,
            write: self.write,
            nonblocking: self.nonblocking,
            how: sys::Disposition::CreateNew,
            mode: self.flags.mode,
            capacity,
        };
        let err = |e: io::Error| open_error(name, self.capacity, e);
        let (fd, created) = if self.flags.create_new {
            (sys::mq_open(name, &args).map_err(err)?, true)
        } else if self.flags.create {
            // Exclusive create first, so that we know whether this handle owns the queue;
            // on EEXIST open the existing one; if it vanished in between, go round again.
            let mut attempts = 0;
            loop {
                args.how = sys::Disposition::CreateNew;
                match sys::mq_open(name, &args) {
                    Ok(fd) => break (fd, true),
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(err(e)),
                }
                args.how = sys::Disposition::Open;
                match sys::mq_open(name, &args) {
                    Ok(fd) => break (fd, false),
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) && attempts < 100 => {
                        attempts += 1;
                    }
                    Err(e) => return Err(err(e)),
                }
            }
        } else {
            args.how = sys::Disposition::Open;
            (sys::mq_open(name, &args).map_err(err)?, false)
        };
        // From here on, a queue this call created is removed again on any error (the handle
        // owns it); one it opened is left alone.
        let mut q = MessageQueue {
            fd: Some(fd),
            core: Core {
                link: Link {
                    name: Some(name.clone()),
                    ownership: Ownership::new(created, || format!("mq:{name}")),
                },
                msgsize: 0,
                readable: args.read,
                writable: args.write,
                watch_unlink: true,
            },
        };
        if created {
            // mq_open applied the umask: give exactly the mode asked for.
            sys::mq_fchmod(q.fd(), self.flags.mode).map_err(err)?;
        } else {
            let st = sys::mq_fstat(q.fd()).map_err(err)?;
            self.flags
                .trust
                .check_owner(&format!("message queue {name}"), st.uid)?;
        }
        q.core.msgsize = sys::mq_getattr(q.fd()).map_err(err)?.msgsize.max(0) as usize;
        Ok(q)
    }
}

fn open_error(name: &PosixName, capacity: Option<(usize, usize)>, e: io::Error) -> OpenError {
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

fn attributes(fd: BorrowedFd<'_>) -> io::Result<Attributes> {
    let a = sys::mq_getattr(fd)?;
    Ok(Attributes {
        max_messages: a.maxmsg.max(0) as usize,
        max_message_size: a.msgsize.max(0) as usize,
        current_messages: a.curmsgs.max(0) as usize,
        nonblocking: a.flags & i64::from(libc::O_NONBLOCK) != 0,
    })
}

/// An open POSIX message queue.
///
/// The handle is `Send + Sync`: several threads may send and receive through one handle.
pub struct MessageQueue {
    /// Always `Some`, except inside the methods that take the handle apart.
    fd: Option<OwnedFd>,
    core: Core,
}

/// Everything about an open queue but its descriptor.
#[derive(Debug)]
struct Core {
    link: Link,
    msgsize: usize,
    readable: bool,
    writable: bool,
    /// Whether a removed name means the receiver is gone: true for queues opened by name,
    /// false for adopted descriptors (which may be of a queue unlinked on purpose).
    watch_unlink: bool,
}

impl fmt::Debug for MessageQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageQueue")
            .field("fd", &self.fd().as_raw_fd())
            .field("name", &self.core.link.name)
            .field("owner", &self.core.link.ownership.is_owner())
            .field("msgsize", &self.core.msgsize)
            .finish()
    }
}

impl MessageQueue {
    fn fd(&self) -> BorrowedFd<'_> {
        self.fd
            .as_ref()
            .expect("the descriptor is taken only by methods that consume the handle")
            .as_fd()
    }

    /// Takes the handle apart: its descriptor and everything else, leaving an empty handle
    /// that does nothing when dropped.
    fn take_apart(&mut self) -> (OwnedFd, Core) {
        let fd = self
            .fd
            .take()
            .expect("the descriptor is taken only by methods that consume the handle");
        let core = Core {
            link: Link {
                name: self.core.link.name.take(),
                ownership: std::mem::take(&mut self.core.link.ownership),
            },
            ..self.core
        };
        (fd, core)
    }

    /// Options for opening or creating a queue.
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Opens an existing queue for reading and writing.
    ///
    /// # Errors
    /// [`OpenError::NotFound`] when it does not exist; see [`OpenOptions::open`].
    pub fn open(name: &str) -> Result<MessageQueue, OpenError> {
        OpenOptions::new().open(name)
    }

    /// Opens the queue, creating it (mode `0o600`, default capacity) when missing. The handle
    /// owns the queue (unlinks it on drop) only if it created it.
    pub fn create(name: &str) -> Result<MessageQueue, OpenError> {
        OpenOptions::new().create(true).open(name)
    }

    /// Creates the queue (mode `0o600`, default capacity); fails with
    /// [`OpenError::AlreadyExists`] if it exists. The handle owns it.
    pub fn create_new(name: &str) -> Result<MessageQueue, OpenError> {
        OpenOptions::new().create_new(true).open(name)
    }

    /// Removes the name `name` (`mq_unlink`). Processes that have the queue open keep it.
    #[doc(alias = "mq_unlink")]
    pub fn unlink(name: &str) -> Result<(), OpenError> {
        let name = PosixName::queue(name)?;
        sys::mq_unlink(&name).map_err(|e| open_error(&name, None, e))
    }

    /// Keeps the queue after this handle is dropped (it would otherwise be unlinked if this
    /// handle created it).
    pub fn persist(mut self) -> MessageQueue {
        self.core.link.ownership.set_persist(true);
        self
    }

    /// Makes this handle unlink the queue when dropped, as if it had created it.
    pub fn remove_on_drop(mut self) -> MessageQueue {
        if self.core.link.name.is_some() {
            self.core.link.ownership.claim();
        }
        self
    }

    /// Whether this handle will unlink the queue when dropped.
    pub fn is_owner(&self) -> bool {
        self.core.link.ownership.is_owner()
    }

    /// The queue's name (`None` for a queue adopted from a descriptor).
    pub fn name(&self) -> Option<&PosixName> {
        self.core.link.name.as_ref()
    }

    /// Unlinks the queue's name now and closes this handle. When the name was already
    /// removed (and perhaps taken by another queue since), nothing is unlinked.
    pub fn remove(mut self) -> Result<(), OpenError> {
        self.core.link.ownership.removed();
        match &self.core.link.name {
            Some(name) if still_linked(self.fd()) => {
                sys::mq_unlink(name).map_err(|e| open_error(name, None, e))
            }
            _ => Ok(()),
        }
    }

    /// `Some(n)` when the queue's name was removed since this handle opened it (its receiver
    /// exited, or someone removed it): nobody can open it any more, so the `n` messages still
    /// in it will never be received. `None` while the name exists, and for queues adopted from
    /// a descriptor.
    ///
    /// A send into such a queue succeeds while there is room, so a sender should ask this at
    /// the end of a batch; a send that would block reports [`SendError::Unlinked`] itself.
    pub fn undelivered(&self) -> Option<usize> {
        self.core.unlinked(self.fd())
    }

    /// The largest message this queue takes (`mq_msgsize`, read when the handle was opened).
    pub fn max_message_size(&self) -> usize {
        self.core.msgsize
    }

    /// The queue's current attributes (`mq_getattr`).
    #[doc(alias = "mq_getattr")]
    pub fn attributes(&self) -> io::Result<Attributes> {
        attributes(self.fd())
    }

    /// Sends `msg` with `priority` (higher is received first), blocking while the queue is
    /// full.
    ///
    /// # Errors
    /// [`SendError::TooLarge`] when `msg` exceeds `mq_msgsize`.
    #[doc(alias = "mq_send")]
    pub fn send(&self, msg: &[u8], priority: u32) -> Result<(), SendError> {
        self.send_wait(msg, priority, Wait::Forever)
    }

    /// Sends without blocking: [`SendError::Full`] when the queue is full.
    pub fn try_send(&self, msg: &[u8], priority: u32) -> Result<(), SendError> {
        self.send_wait(msg, priority, Wait::NoWait)
    }

    /// Sends, waiting at most `timeout` for room: [`SendError::Timeout`] after that.
    #[doc(alias = "mq_timedsend")]
    pub fn send_timeout(
        &self,
        msg: &[u8],
        priority: u32,
        timeout: Duration,
    ) -> Result<(), SendError> {
        self.send_wait(msg, priority, Wait::timeout(timeout))
    }

    /// Sends, waiting as `wait` allows.
    pub fn send_wait(&self, msg: &[u8], priority: u32, wait: Wait) -> Result<(), SendError> {
        self.core.send(self.fd(), msg, priority, wait)
    }

    /// Receives the highest-priority message, blocking while the queue is empty. Returns the
    /// bytes and the priority.
    #[doc(alias = "mq_receive")]
    pub fn recv(&self) -> Result<(Vec<u8>, u32), RecvError> {
        self.recv_wait(Wait::Forever)
    }

    /// Receives without blocking: [`RecvError::WouldBlock`] when the queue is empty.
    pub fn try_recv(&self) -> Result<(Vec<u8>, u32), RecvError> {
        self.recv_wait(Wait::NoWait)
    }

    /// Receives, waiting at most `timeout`: [`RecvError::Timeout`] after that.
    #[doc(alias = "mq_timedreceive")]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<(Vec<u8>, u32), RecvError> {
        self.recv_wait(Wait::timeout(timeout))
    }

    /// Receives, waiting as `wait` allows, into a new buffer of `mq_msgsize` bytes (trimmed to
    /// the message).
    pub fn recv_wait(&self, wait: Wait) -> Result<(Vec<u8>, u32), RecvError> {
        let mut buf = vec![0u8; self.core.msgsize];
        let (n, prio) = self.recv_into_wait(&mut buf, wait)?;
        buf.truncate(n);
        Ok((buf, prio))
    }

    /// Receives into `buf` without allocating, blocking while the queue is empty. Returns the
    /// message length and priority.
    ///
    /// # Errors
    /// [`RecvError::BufferTooSmall`] when `buf` is shorter than [`max_message_size`]
    /// (the kernel requires room for the largest possible message).
    ///
    /// [`max_message_size`]: MessageQueue::max_message_size
    pub fn recv_into(&self, buf: &mut [u8]) -> Result<(usize, u32), RecvError> {
        self.recv_into_wait(buf, Wait::Forever)
    }

    /// [`recv_into`](MessageQueue::recv_into) without blocking.
    pub fn try_recv_into(&self, buf: &mut [u8]) -> Result<(usize, u32), RecvError> {
        self.recv_into_wait(buf, Wait::NoWait)
    }

    /// [`recv_into`](MessageQueue::recv_into) waiting at most `timeout`.
    pub fn recv_into_timeout(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<(usize, u32), RecvError> {
        self.recv_into_wait(buf, Wait::timeout(timeout))
    }

    /// [`recv_into`](MessageQueue::recv_into) waiting as `wait` allows.
    pub fn recv_into_wait(&self, buf: &mut [u8], wait: Wait) -> Result<(usize, u32), RecvError> {
        self.core.recv_into(self.fd(), buf, wait)
    }

    /// Puts the descriptor in (or out of) non-blocking mode (`mq_setattr`).
    #[doc(alias = "mq_setattr")]
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        sys::mq_set_nonblocking(self.fd(), nonblocking)
    }

    /// Turns this handle into an async one (sets `O_NONBLOCK` and registers the descriptor
    /// with the current tokio runtime). Ownership (unlink on drop) carries over.
    ///
    /// # Errors
    /// Fails outside a tokio runtime, or when the descriptor cannot be registered.
    #[cfg(feature = "tokio")]
    pub fn into_async(mut self) -> io::Result<AsyncMessageQueue> {
        self.set_nonblocking(true)?;
        let (fd, mut core) = self.take_apart();
        match crate::sys::mq::register_async(fd) {
            Ok(io) => Ok(AsyncMessageQueue { io, core }),
            Err(e) => {
                // The descriptor is gone with the error: remove a queue this handle created by
                // name, as dropping it would have done.
                if core.link.ownership.take_removal()
                    && let Some(name) = &core.link.name
                {
                    let _ = sys::mq_unlink(name);
                }
                Err(e)
            }
        }
    }
}

impl Core {
    fn send(
        &self,
        fd: BorrowedFd<'_>,
        msg: &[u8],
        priority: u32,
        wait: Wait,
    ) -> Result<(), SendError> {
        if !self.writable {
            return Err(SendError::NotWritable);
        }
        if msg.len() > self.msgsize {
            return Err(SendError::TooLarge {
                len: msg.len(),
                max: self.msgsize,
            });
        }
        // A blocking send waits in slices: when a slice ends with the queue still full, it
        // looks whether the queue was unlinked (its receiver is gone) before waiting on. The
        // first attempt does not wait, so a send that finds room costs one mq_timedsend and
        // no clock read.
        let mut first = true;
        loop {
            let slice = match wait {
                Wait::NoWait => Wait::NoWait,
                _ if first => Wait::NoWait,
                _ => {
                    let end = std::time::Instant::now() + UNLINK_CHECK_INTERVAL;
                    match wait {
                        Wait::Until(d) if d <= end => wait,
                        _ => Wait::Until(end),
                    }
                }
            };
            first = false;
            let e = match sys::mq_send(fd, msg, priority, slice) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            match e.raw_os_error() {
                Some(libc::EAGAIN | libc::ETIMEDOUT) => {
                    if let Some(stranded) = self.unlinked(fd) {
                        return Err(SendError::Unlinked { stranded });
                    }
                    // EAGAIN: a non-blocking descriptor, where every send is a `try_send`.
                    if wait == Wait::NoWait || e.raw_os_error() == Some(libc::EAGAIN) {
                        return Err(SendError::Full);
                    }
                    if wait.expired() {
                        return Err(SendError::Timeout);
                    }
                }
                Some(libc::EMSGSIZE) => {
                    return Err(SendError::TooLarge {
                        len: msg.len(),
                        max: self.msgsize,
                    });
                }
                Some(libc::EBADF) => return Err(SendError::NotWritable),
                _ => return Err(SendError::Io(e)),
            }
        }
    }

    /// `Some(messages still queued)` when the queue, opened by name, has lost its name.
    fn unlinked(&self, fd: BorrowedFd<'_>) -> Option<usize> {
        if !self.watch_unlink || still_linked(fd) {
            return None;
        }
        Some(
            sys::mq_getattr(fd)
                .map(|a| a.curmsgs.max(0) as usize)
                .unwrap_or(0),
        )
    }

    fn recv_into(
        &self,
        fd: BorrowedFd<'_>,
        buf: &mut [u8],
        wait: Wait,
    ) -> Result<(usize, u32), RecvError> {
        if !self.readable {
            return Err(RecvError::NotReadable);
        }
        if buf.len() < self.msgsize {
            return Err(RecvError::BufferTooSmall {
                len: buf.len(),
                needed: self.msgsize,
            });
        }
        sys::mq_receive(fd, buf, wait).map_err(|e| match e.raw_os_error() {
            Some(libc::EAGAIN) => RecvError::WouldBlock,
            Some(libc::ETIMEDOUT) if wait == Wait::NoWait => RecvError::WouldBlock,
            Some(libc::ETIMEDOUT) => RecvError::Timeout,
            Some(libc::EMSGSIZE) => RecvError::BufferTooSmall {
                len: buf.len(),
                needed: self.msgsize,
            },
            Some(libc::EBADF) => RecvError::NotReadable,
            _ => RecvError::Io(e),
        })
    }
}

/// The queue's name and whether to unlink it on drop.
#[derive(Debug)]
struct Link {
    /// `None` for a queue adopted from a bare descriptor.
    name: Option<PosixName>,
    /// Whether to unlink on drop.
    ownership: Ownership,
}

impl Link {
    /// Unlinks the name if this handle owns the queue and the name still names it: once the
    /// name was removed (by `ipcx rm`, say), it may name another process's queue since.
    fn release(&mut self, fd: BorrowedFd<'_>) {
        if self.ownership.take_removal()
            && let Some(name) = &self.name
            && still_linked(fd)
        {
            let _ = sys::mq_unlink(name);
        }
    }
}

/// Whether the queue behind `fd` still has its name (a queue has at most one: names cannot be
/// linked twice, so a link count of 1 means the name still leads to this very queue).
fn still_linked(fd: BorrowedFd<'_>) -> bool {
    sys::mq_fstat(fd).is_ok_and(|st| st.nlink > 0)
}

impl Drop for MessageQueue {
    fn drop(&mut self) {
        if let Some(fd) = &self.fd {
            self.core.link.release(fd.as_fd());
        }
    }
}

#[cfg(feature = "tokio")]
impl Drop for AsyncMessageQueue {
    fn drop(&mut self) {
        self.core.link.release(self.io.get_ref().as_fd());
    }
}

impl AsFd for MessageQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd()
    }
}

impl AsRawFd for MessageQueue {
    fn as_raw_fd(&self) -> RawFd {
        self.fd().as_raw_fd()
    }
}

impl From<MessageQueue> for OwnedFd {
    /// The descriptor; the queue is no longer unlinked on drop.
    fn from(mut q: MessageQueue) -> OwnedFd {
        q.take_apart().0
    }
}

impl From<OwnedFd> for MessageQueue {
    /// Adopts a message-queue descriptor (for instance one inherited or passed over a Unix
    /// socket). The handle has no name and never unlinks. If the descriptor is not a queue,
    /// operations on it fail with an I/O error.
    fn from(fd: OwnedFd) -> MessageQueue {
        let msgsize = sys::mq_getattr(fd.as_fd())
            .map(|a| a.msgsize.max(0) as usize)
            .unwrap_or(0);
        MessageQueue {
            fd: Some(fd),
            core: Core {
                link: Link {
                    name: None,
                    ownership: Ownership::opened(),
                },
                msgsize,
                readable: true,
                writable: true,
                watch_unlink: false,
            },
        }
    }
}

/// An async POSIX message queue (feature `tokio`): the queue descriptor is non-blocking and
/// registered with tokio's reactor, so `send` and `recv` wait without a thread.
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub struct AsyncMessageQueue {
    io: tokio::io::unix::AsyncFd<OwnedFd>,
    core: Core,
}

#[cfg(feature = "tokio")]
impl AsyncMessageQueue {
    /// Opens (or creates) a queue as `opts` says, non-blocking, registered with the current
    /// tokio runtime.
    ///
    /// # Errors
    /// As [`OpenOptions::open`]; also fails outside a tokio runtime.
    pub fn open(opts: &OpenOptions, name: &str) -> Result<AsyncMessageQueue, OpenError> {
        let q = opts.clone().nonblocking(true).open(name)?;
        let name = q.name().map(|n| n.to_string()).unwrap_or_default();
        q.into_async()
            .map_err(|source| OpenError::Io { name, source })
    }

    /// The largest message this queue takes (`mq_msgsize`).
    pub fn max_message_size(&self) -> usize {
        self.core.msgsize
    }

    /// The queue's current attributes (`mq_getattr`).
    pub fn attributes(&self) -> io::Result<Attributes> {
        attributes(self.io.get_ref().as_fd())
    }

    /// Keeps the queue after this handle is dropped.
    pub fn persist(mut self) -> AsyncMessageQueue {
        self.core.link.ownership.set_persist(true);
        self
    }

    /// Sends `msg` with `priority`, waiting (asynchronously) while the queue is full.
    ///
    /// # Errors
    /// As [`MessageQueue::send`].
    pub async fn send(&self, msg: &[u8], priority: u32) -> Result<(), SendError> {
        loop {
            let mut guard = self.io.writable().await.map_err(SendError::Io)?;
            match self
                .core
                .send(self.io.get_ref().as_fd(), msg, priority, Wait::NoWait)
            {
                Err(SendError::Full) => guard.clear_ready(),
                other => return other,
            }
        }
    }

    /// Receives the highest-priority message, waiting (asynchronously) while the queue is
    /// empty.
    ///
    /// # Errors
    /// As [`MessageQueue::recv`].
    pub async fn recv(&self) -> Result<(Vec<u8>, u32), RecvError> {
        let mut buf = vec![0u8; self.core.msgsize];
        let (n, prio) = self.recv_into(&mut buf).await?;
        buf.truncate(n);
        Ok((buf, prio))
    }

    /// Receives into `buf` (at least `mq_msgsize` bytes), waiting while the queue is empty.
    ///
    /// # Errors
    /// As [`MessageQueue::recv_into`].
    pub async fn recv_into(&self, buf: &mut [u8]) -> Result<(usize, u32), RecvError> {
        loop {
            let mut guard = self.io.readable().await.map_err(RecvError::Io)?;
            match self
                .core
                .recv_into(self.io.get_ref().as_fd(), buf, Wait::NoWait)
            {
                Err(RecvError::WouldBlock) => guard.clear_ready(),
                other => return other,
            }
        }
    }
}

#[cfg(feature = "tokio")]
impl AsFd for AsyncMessageQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.get_ref().as_fd()
    }
}

#[cfg(feature = "tokio")]
impl AsRawFd for AsyncMessageQueue {
    fn as_raw_fd(&self) -> RawFd {
        self.io.get_ref().as_raw_fd()
    }
}
