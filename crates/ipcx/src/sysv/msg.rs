//! System V message queues (`svipc(7)`): kernel queues named by a numeric [`Key`], holding
//! typed messages. Every message carries a positive type; a receiver picks messages by type.
//!
//! ```no_run
//! use ipcx::sysv::{Key, msg::MessageQueue};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let q = MessageQueue::create_new(Key::new(0x1234))?; // removed when `q` is dropped
//! q.send(2, b"second kind")?;
//! q.send(1, b"first kind")?;
//! assert_eq!(q.recv(1)?, (1, b"first kind".to_vec())); // only type 1
//! assert_eq!(q.recv(0)?, (2, b"second kind".to_vec())); // whatever is first
//! # Ok(()) }
//! ```
//!
//! # Behaviour
//! * Open/create follow [`std::fs::OpenOptions`]: [`MessageQueue::open`] (must exist),
//!   [`MessageQueue::create`] (open or create), [`MessageQueue::create_new`] (fail if it
//!   exists), [`MessageQueue::private`] (`IPC_PRIVATE`: a new queue that no key finds; share
//!   its [`id`](MessageQueue::id) and open it with [`MessageQueue::from_id`]). Mode defaults to
//!   `0o600`.
//! * **Ownership**: System V queues live until removed, so the handle that created the queue
//!   removes it (`IPC_RMID`) when dropped, unless [`MessageQueue::persist`] was called. This
//!   matches the rest of ipcx; it is the opposite of the kernel's default, so call `persist`
//!   for queues meant to outlive their creator. `create` learns whether it created the queue by
//!   trying an exclusive create first, so opening an existing queue never removes it.
//! * Receiving selects by type, with `msgrcv(2)` semantics: selector `0` takes the first
//!   message, `n > 0` the first message of type `n`, `n < 0` the first message of the lowest
//!   type that is at most `|n|`.
//! * Timeouts: System V has no timed receive or send. `recv_timeout` and `send_timeout` poll
//!   with `IPC_NOWAIT`, sleeping between attempts with exponential backoff (50 µs doubling up
//!   to [`MAX_POLL_INTERVAL`], 1 ms, never past the deadline). They return within about 1 ms
//!   after the deadline and use little CPU (at most about a thousand cheap system calls a
//!   second), but a message that arrives during a wait is noticed up to 1 ms late. The
//!   blocking forms (`recv`, `send`) sleep in the kernel and wake at once.
//! * A message larger than the system's `msgmax` (`/proc/sys/kernel/msgmax`, default 8192) or
//!   than the queue's capacity `msg_qbytes` is [`SendError::TooLarge`], which names the limit
//!   (the kernel would otherwise fail with `EINVAL`, or block forever).
//! * A queue removed while a call waits on it ends the call with `Removed` (the channel
//!   adapter reports it as `PeerGone`): System V queues are named by id, so a removed queue is
//!   never written into silently.
//! * **Trust**: an existing queue whose owner or creator is another user is refused
//!   ([`OpenError::ForeignOwner`]) unless [`OpenOptions::trust`] allows that user. Both are
//!   checked because the owner can hand the queue to another uid (`IPC_SET`); the creator
//!   cannot change.
//!
//! # References
//! [svipc(7)](https://man7.org/linux/man-pages/man7/svipc.7.html),
//! [msgget(2)](https://man7.org/linux/man-pages/man2/msgget.2.html),
//! [msgop(2)](https://man7.org/linux/man-pages/man2/msgop.2.html),
//! [msgctl(2)](https://man7.org/linux/man-pages/man2/msgctl.2.html).

use std::io;
use std::time::{Duration, SystemTime};

use super::Key;
use crate::open::{OpenFlags, open_flag_setters};
use crate::registry::Ownership;
use crate::sys::sysv_msg as sys;
use crate::wait::Wait;

/// The longest sleep between two attempts of a timed System V send or receive.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_millis(1);
const FIRST_POLL_INTERVAL: Duration = Duration::from_micros(50);

/// The kernel's default `msgmax`, used when `/proc/sys/kernel/msgmax` cannot be read.
const DEFAULT_MSGMAX: u64 = 8192;

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
    /// ([`OpenOptions::trust`]). It was left as it is.
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

/// A queue's state, as `IPC_STAT` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stat {
    /// The queue's key ([`Key::PRIVATE`] for a private queue).
    pub key: Key,
    /// Messages queued (`msg_qnum`).
    pub messages: u64,
    /// Bytes of message text queued (`msg_cbytes`).
    pub bytes: u64,
    /// Capacity in bytes of text (`msg_qbytes`).
    pub max_bytes: u64,
    /// Pid of the last sender (`msg_lspid`; 0 if none).
    pub last_send_pid: i32,
    /// Pid of the last receiver (`msg_lrpid`; 0 if none).
    pub last_recv_pid: i32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Creator user id.
    pub creator_uid: u32,
    /// Creator group id.
    pub creator_gid: u32,
    /// Permission bits (`0o600` and the like).
    pub mode: u32,
    /// Time of the last send (`None` if none yet).
    pub last_send: Option<SystemTime>,
    /// Time of the last receive (`None` if none yet).
    pub last_recv: Option<SystemTime>,
    /// Time of creation or the last `IPC_SET`.
    pub last_change: Option<SystemTime>,
}

fn time(t: i64) -> Option<SystemTime> {
    // A timestamp `SystemTime` cannot hold reads as none.
    (t > 0)
        .then(|| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(t as u64)))
        .flatten()
}

/// How to open or create a queue, in the style of [`std::fs::OpenOptions`].
#[derive(Debug, Clone)]
pub struct OpenOptions {
    flags: OpenFlags,
    read: bool,
    write: bool,
    max_bytes: Option<u64>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// Read and write access, open only, mode `0o600`.
    pub fn new() -> OpenOptions {
        OpenOptions {
            flags: OpenFlags::default(),
            read: true,
            write: true,
            max_bytes: None,
        }
    }

    open_flag_setters! {
        noun: "queue",
        already_exists: "[`OpenError::AlreadyExists`]",
        umask: "System V IPC ignores the umask",
        mode_mask: 0o777,
        /// Whose existing queues to use besides the caller's own (default: only the caller's own
        /// uid; see [`crate::trust`]). A queue that this call did not create and whose owner or
        /// creator is another user is [`OpenError::ForeignOwner`]. Checking needs `IPC_STAT`, so
        /// a queue whose mode denies the caller read access is [`OpenError::PermissionDenied`].
        trust,
    }

    /// Whether the caller needs read (receive) access; checked against an existing queue's
    /// mode when opening (default true).
    pub fn read(mut self, read: bool) -> Self {
        self.read = read;
        self
    }

    /// Whether the caller needs write (send) access; checked when opening (default true).
    pub fn write(mut self, write: bool) -> Self {
        self.write = write;
        self
    }

    /// The capacity in bytes (`msg_qbytes`, set with `IPC_SET`) of a queue this call creates
    /// (default `/proc/sys/kernel/msgmnb`). Raising it above that limit needs privilege.
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = Some(max_bytes);
        self
    }

    fn access(&self) -> i32 {
        (if self.read { 0o400 } else { 0 }) | (if self.write { 0o200 } else { 0 })
    }

    /// Opens (or creates) the queue with `key` as configured. [`Key::PRIVATE`] always creates
    /// a new private queue.
    ///
    /// # Errors
    /// [`OpenError`]: a missing queue, an existing one for `create_new`, permission denied,
    /// the system limit on queues.
    #[doc(alias = "msgget")]
    pub fn open(&self, key: Key) -> Result<MessageQueue, OpenError> {
        let err = |e: io::Error| open_error(key, e);
        let create_flags = libc::IPC_CREAT | libc::IPC_EXCL | self.flags.mode as i32;
        let (id, created) = if key == Key::PRIVATE {
            (
                sys::msgget(key.0, libc::IPC_CREAT | self.flags.mode as i32).map_err(err)?,
                true,
            )
        } else if self.flags.create_new {
            (sys::msgget(key.0, create_flags).map_err(err)?, true)
        } else if self.flags.create {
            let mut attempts = 0;
            loop {
                match sys::msgget(key.0, create_flags) {
                    Ok(id) => break (id, true),
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(err(e)),
                }
                match sys::msgget(key.0, self.access()) {
                    Ok(id) => break (id, false),
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) && attempts < 100 => {
                        attempts += 1;
                    }
                    Err(e) => return Err(err(e)),
                }
            }
        } else {
            (sys::msgget(key.0, self.access()).map_err(err)?, false)
        };
        if !created {
            let ds = sys::stat(id).map_err(err)?;
            let what = format!("System V message queue {key}");
            super::check_owner(&self.flags.trust, &what, ds.uid, ds.cuid)?;
        }
        let q = MessageQueue::new(id, key, created);
        if created && let Some(max) = self.max_bytes {
            // On failure `q` is dropped, which removes the queue just created.
            q.set_max_bytes(max)
                .map_err(|source| OpenError::MaxBytes { key, source })?;
        }
        Ok(q)
    }
}

fn open_error(key: Key, e: io::Error) -> OpenError {
    match e.raw_os_error() {
        Some(libc::ENOENT) => OpenError::NotFound { key },
        Some(libc::EEXIST) => OpenError::AlreadyExists { key },
        Some(libc::EACCES | libc::EPERM) => OpenError::PermissionDenied { key, source: e },
        Some(libc::ENOSPC) => OpenError::LimitReached { key, source: e },
        _ => OpenError::Io { key, source: e },
    }
}

/// An open System V message queue.
///
/// The handle is `Send + Sync`; it holds no file descriptor (System V queues are not
/// pollable), just the queue id.
#[derive(Debug)]
pub struct MessageQueue {
    id: i32,
    key: Key,
    msgmax: usize,
    ownership: Ownership,
}

impl MessageQueue {
    fn new(id: i32, key: Key, owner: bool) -> MessageQueue {
        let msgmax = sys::read_limit(sys::MSGMAX_FILE).unwrap_or(DEFAULT_MSGMAX);
        MessageQueue {
            id,
            key,
            msgmax: usize::try_from(msgmax).unwrap_or(usize::MAX),
            ownership: Ownership::new(owner, || super::name("sysv-mq", key.0, id)),
        }
    }

    /// Options for opening or creating a queue.
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Opens the existing queue with `key` for sending and receiving.
    pub fn open(key: Key) -> Result<MessageQueue, OpenError> {
        OpenOptions::new().open(key)
    }

    /// Opens the queue with `key`, creating it (mode `0o600`) when missing. The handle owns
    /// (removes on drop) the queue only if it created it.
    pub fn create(key: Key) -> Result<MessageQueue, OpenError> {
        OpenOptions::new().create(true).open(key)
    }

    /// Creates a queue with `key` (mode `0o600`); fails with [`OpenError::AlreadyExists`] if
    /// one exists. The handle owns it.
    pub fn create_new(key: Key) -> Result<MessageQueue, OpenError> {
        OpenOptions::new().create_new(true).open(key)
    }

    /// Creates a new private queue (`IPC_PRIVATE`, mode `0o600`), owned by this handle. Other
    /// processes reach it through its [`id`](MessageQueue::id) and [`MessageQueue::from_id`].
    pub fn private() -> Result<MessageQueue, OpenError> {
        OpenOptions::new().open(Key::PRIVATE)
    }

    /// Uses the queue with id `id` (as `ipcs -q` lists, or as another process passed it). The
    /// handle never removes the queue on drop.
    ///
    /// # Errors
    /// [`OpenError::NoSuchId`] when no queue has this id; [`OpenError::PermissionDenied`] when
    /// this process may not read the queue's state.
    pub fn from_id(id: i32) -> Result<MessageQueue, OpenError> {
        match sys::stat(id) {
            Ok(ds) => Ok(MessageQueue::new(id, Key(ds.key), false)),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EIDRM)) => {
                Err(OpenError::NoSuchId { id })
            }
            Err(e) => Err(open_error(Key::PRIVATE, e)),
        }
    }

    /// The queue id (`msqid`).
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The key the queue was opened with.
    pub fn key(&self) -> Key {
        self.key
    }

    /// Keeps the queue after this handle is dropped.
    pub fn persist(mut self) -> MessageQueue {
        self.ownership.set_persist(true);
        self
    }

    /// Whether this handle will remove the queue when dropped.
    pub fn is_owner(&self) -> bool {
        self.ownership.is_owner()
    }

    /// Removes the queue now (`IPC_RMID`). Processes blocked on it wake with `Removed`.
    #[doc(alias = "IPC_RMID")]
    pub fn remove(mut self) -> Result<(), ControlError> {
        self.ownership.removed();
        sys::remove(self.id).map_err(|e| {
            control_error(
                e,
                "only the queue's owner or creator (or a privileged process) may remove it",
            )
        })
    }

    /// The queue's state (`IPC_STAT`; needs read permission).
    #[doc(alias = "IPC_STAT")]
    pub fn stat(&self) -> Result<Stat, ControlError> {
        let ds = sys::stat(self.id)
            .map_err(|e| control_error(e, "reading a queue's state needs read permission"))?;
        Ok(Stat {
            key: Key(ds.key),
            messages: ds.qnum,
            bytes: ds.cbytes,
            max_bytes: ds.qbytes,
            last_send_pid: ds.lspid,
            last_recv_pid: ds.lrpid,
            uid: ds.uid,
            gid: ds.gid,
            creator_uid: ds.cuid,
            creator_gid: ds.cgid,
            mode: ds.mode & 0o777,
            last_send: time(ds.stime),
            last_recv: time(ds.rtime),
            last_change: time(ds.ctime),
        })
    }

    /// Sets the queue's capacity in bytes (`msg_qbytes`, with `IPC_SET`). Needs ownership;
    /// raising it above `/proc/sys/kernel/msgmnb` needs privilege.
    pub fn set_max_bytes(&self, max_bytes: u64) -> Result<(), ControlError> {
        sys::set_qbytes(self.id, max_bytes).map_err(|e| {
            let limit = sys::read_limit(sys::MSGMNB_FILE);
            match (e.raw_os_error(), limit) {
                (Some(libc::EPERM), Some(limit)) if max_bytes > limit => {
                    ControlError::MaxBytesTooLarge {
                        requested: max_bytes,
                        limit,
                        limit_file: sys::MSGMNB_FILE,
                        source: e,
                    }
                }
                _ => control_error(
                    e,
                    "only the queue's owner or creator (or a privileged process) may change it",
                ),
            }
        })
    }

    /// The largest message this queue takes: the system's `msgmax`
    /// (`/proc/sys/kernel/msgmax`, read at open) or the queue's current capacity `msg_qbytes`,
    /// whichever is smaller (`msgmax` alone when this process may not read the queue's state).
    pub fn max_message_size(&self) -> usize {
        match sys::stat(self.id) {
            Ok(st) => self
                .msgmax
                .min(usize::try_from(st.qbytes).unwrap_or(usize::MAX)),
            Err(_) => self.msgmax,
        }
    }

    /// Sends `data` with type `mtype` (positive), blocking while the queue is full.
    ///
    /// # Errors
    /// [`SendError::InvalidType`] for `mtype <= 0`; [`SendError::TooLarge`] above `msgmax` or
    /// the queue's capacity; [`SendError::Removed`] when the queue is removed.
    #[doc(alias = "msgsnd")]
    pub fn send(&self, mtype: i64, data: &[u8]) -> Result<(), SendError> {
        self.send_wait(mtype, data, Wait::Forever)
    }

    /// Sends without blocking: [`SendError::Full`] when the queue has no room.
    pub fn try_send(&self, mtype: i64, data: &[u8]) -> Result<(), SendError> {
        self.send_wait(mtype, data, Wait::NoWait)
    }

    /// Sends, waiting at most `timeout` for room (polling; see the
    /// [module documentation](self)): [`SendError::Timeout`] after that.
    pub fn send_timeout(
        &self,
        mtype: i64,
        data: &[u8],
        timeout: Duration,
    ) -> Result<(), SendError> {
        self.send_wait(mtype, data, Wait::timeout(timeout))
    }

    /// Sends, waiting as `wait` allows.
    pub fn send_wait(&self, mtype: i64, data: &[u8], wait: Wait) -> Result<(), SendError> {
        let ctype = libc::c_long::try_from(mtype).map_err(|_| SendError::InvalidType { mtype })?;
        if ctype <= 0 {
            return Err(SendError::InvalidType { mtype });
        }
        if data.len() > self.msgmax {
            return Err(SendError::TooLarge {
                len: data.len(),
                max: self.msgmax,
                limit: "the system's largest System V message (msgmax, /proc/sys/kernel/msgmax)",
            });
        }
        let buf = sys::MsgBuf::from_message(ctype, data);
        let map = |e: io::Error| match e.raw_os_error() {
            Some(libc::EAGAIN) => SendError::Full,
            // The type and size were checked above, so EINVAL means the id is gone.
            Some(libc::EIDRM | libc::EINVAL) => SendError::Removed,
            Some(libc::EACCES) => SendError::PermissionDenied(e),
            _ => SendError::Io(e),
        };
        // Try without waiting first. When there is no room, make sure the message can fit at
        // all: a message larger than msg_qbytes would otherwise wait forever. (IPC_STAT needs
        // read permission; without it this check is skipped.)
        match sys::msgsnd(self.id, &buf, true).map_err(map) {
            Err(SendError::Full) => {}
            done => return done,
        }
        if let Ok(st) = sys::stat(self.id)
            && data.len() as u64 > st.qbytes
        {
            return Err(SendError::TooLarge {
                len: data.len(),
                max: usize::try_from(st.qbytes).unwrap_or(usize::MAX),
                limit: "the queue's capacity (msg_qbytes)",
            });
        }
        match wait {
            Wait::Forever => sys::msgsnd(self.id, &buf, false).map_err(map),
            Wait::NoWait => Err(SendError::Full),
            Wait::Until(_) => poll_until(wait, || match sys::msgsnd(self.id, &buf, true) {
                Ok(()) => Some(Ok(())),
                Err(e) => match map(e) {
                    SendError::Full => None,
                    other => Some(Err(other)),
                },
            })
            .unwrap_or(Err(SendError::Timeout)),
        }
    }

    /// Receives a message selected by `selector` (`0` first, `n > 0` first of type `n`,
    /// `n < 0` lowest type up to `|n|`), blocking until there is one. Returns the type and the
    /// bytes.
    ///
    /// # Errors
    /// [`RecvError::Removed`] when the queue is removed, also while waiting.
    #[doc(alias = "msgrcv")]
    pub fn recv(&self, selector: i64) -> Result<(i64, Vec<u8>), RecvError> {
        self.recv_wait(selector, Wait::Forever)
    }

    /// Receives without blocking: [`RecvError::Empty`] when no message matches.
    pub fn try_recv(&self, selector: i64) -> Result<(i64, Vec<u8>), RecvError> {
        self.recv_wait(selector, Wait::NoWait)
    }

    /// Receives, waiting at most `timeout` (polling; see the [module documentation](self)):
    /// [`RecvError::Timeout`] after that.
    pub fn recv_timeout(
        &self,
        selector: i64,
        timeout: Duration,
    ) -> Result<(i64, Vec<u8>), RecvError> {
        self.recv_wait(selector, Wait::timeout(timeout))
    }

    /// Receives, waiting as `wait` allows.
    pub fn recv_wait(&self, selector: i64, wait: Wait) -> Result<(i64, Vec<u8>), RecvError> {
        let sel = libc::c_long::try_from(selector)
            .map_err(|_| RecvError::InvalidSelector { selector })?;
        let mut buf = sys::MsgBuf::with_capacity(self.msgmax);
        let n = match wait {
            Wait::Forever => self.recv_once(&mut buf, sel, false),
            Wait::NoWait => self.recv_once(&mut buf, sel, true),
            Wait::Until(_) => poll_until(wait, || match self.recv_once(&mut buf, sel, true) {
                Err(RecvError::Empty) => None,
                other => Some(other),
            })
            .unwrap_or(Err(RecvError::Timeout)),
        }?;
        #[allow(clippy::useless_conversion)] // c_long is i32 on 32-bit targets
        let mtype = i64::from(buf.mtype());
        Ok((mtype, buf.text()[..n].to_vec()))
    }

    /// One `msgrcv`, growing the buffer if a message is larger than it (`E2BIG`; possible
    /// only if `msgmax` was raised after this handle read it).
    fn recv_once(
        &self,
        buf: &mut sys::MsgBuf,
        selector: libc::c_long,
        nowait: bool,
    ) -> Result<usize, RecvError> {
        loop {
            match sys::msgrcv(self.id, buf, selector, nowait) {
                Ok(n) => return Ok(n),
                Err(e) => match e.raw_os_error() {
                    Some(libc::E2BIG) if buf.capacity() < (1 << 26) => {
                        let now = sys::read_limit(sys::MSGMAX_FILE).unwrap_or(0) as usize;
                        *buf = sys::MsgBuf::with_capacity(now.max(buf.capacity() * 2));
                    }
                    Some(libc::ENOMSG | libc::EAGAIN) => return Err(RecvError::Empty),
                    Some(libc::EIDRM | libc::EINVAL) => return Err(RecvError::Removed),
                    Some(libc::EACCES) => return Err(RecvError::PermissionDenied(e)),
                    _ => return Err(RecvError::Io(e)),
                },
            }
        }
    }
}

/// Calls `attempt` until it returns `Some` or the deadline of `wait` passes (then `None`),
/// sleeping between attempts with exponential backoff capped at [`MAX_POLL_INTERVAL`] and at
/// the time left.
fn poll_until<T>(wait: Wait, mut attempt: impl FnMut() -> Option<T>) -> Option<T> {
    let mut interval = FIRST_POLL_INTERVAL;
    loop {
        if let Some(done) = attempt() {
            return Some(done);
        }
        let left = wait.remaining()?;
        if left.is_zero() {
            return None;
        }
        std::thread::sleep(interval.min(left));
        interval = (interval * 2).min(MAX_POLL_INTERVAL);
    }
}

fn control_error(e: io::Error, hint: &'static str) -> ControlError {
    match e.raw_os_error() {
        Some(libc::EIDRM | libc::EINVAL) => ControlError::Removed,
        Some(libc::EACCES | libc::EPERM) => ControlError::PermissionDenied { hint, source: e },
        _ => ControlError::Io(e),
    }
}

impl Drop for MessageQueue {
    fn drop(&mut self) {
        if self.ownership.is_owner() {
            let _ = sys::remove(self.id);
        }
    }
}
