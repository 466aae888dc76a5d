//! [`MessageQueue`]: an open System V message queue, and its state ([`Stat`]).

use std::io;
use std::time::{Duration, SystemTime};

use super::error::{control_error, open_error};
use super::{ControlError, MAX_POLL_INTERVAL, OpenError, OpenOptions, RecvError, SendError};
use crate::registry::Ownership;
use crate::sys::sysv_msg as sys;
use crate::sysv::Key;
use crate::wait::Wait;

const FIRST_POLL_INTERVAL: Duration = Duration::from_micros(50);

/// The kernel's default `msgmax`, used when `/proc/sys/kernel/msgmax` cannot be read.
const DEFAULT_MSGMAX: u64 = 8192;

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
    pub(super) fn new(id: i32, key: Key, owner: bool) -> MessageQueue {
        let msgmax = sys::read_limit(sys::MSGMAX_FILE).unwrap_or(DEFAULT_MSGMAX);
        MessageQueue {
            id,
            key,
            msgmax: usize::try_from(msgmax).unwrap_or(usize::MAX),
            ownership: Ownership::new(owner, || crate::sysv::name("sysv-mq", key.0, id)),
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
    /// [module documentation](super)): [`SendError::Timeout`] after that.
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

    /// Receives, waiting at most `timeout` (polling; see the [module documentation](super)):
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

impl Drop for MessageQueue {
    fn drop(&mut self) {
        if self.ownership.is_owner() {
            let _ = sys::remove(self.id);
        }
    }
}
