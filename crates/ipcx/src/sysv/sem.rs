//! System V semaphore sets (`semget(2)`, `semop(2)`, `semctl(2)`).
//!
//! A set holds N counting semaphores (values 0..=32767 on Linux) named by a [`Key`]. Several
//! operations on several semaphores of one set are applied atomically, all or none
//! ([`SemaphoreSet::op`]); an operation taken with `SEM_UNDO` is reverted by the kernel when the
//! process exits, even when it is killed with SIGKILL.
//!
//! ```no_run
//! use ipcx::sysv::{Key, sem::{SemaphoreSet, SemOp}};
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), ipcx::sysv::sem::Error> {
//! let set = SemaphoreSet::create_new(Key::new(0x1234), 2)?; // removed when dropped
//! set.set(0, 1)?;
//! set.set(1, 1)?;
//! // Take both semaphores at once, given back automatically if this process dies.
//! set.op_timeout(&[SemOp::new(0, -1).undo(), SemOp::new(1, -1).undo()], Duration::from_secs(1))?;
//! # Ok(())
//! # }
//! ```
//!
//! # Ownership
//! The handle that created the set removes it (`IPC_RMID`) on drop unless
//! [`SemaphoreSet::persist`] was called; handles that only opened it never remove it. Removal
//! is immediate: processes blocked on the set wake up with [`Error::Removed`].
//!
//! # Initialisation race
//! A new set's values are 0 on Linux. When creating a set and then setting values, another
//! process may open it in between and see the zeros; [`Options::values`] sets them right after
//! creation, and openers can check [`SemStat::otime`] (zero until the first `semop`) if that
//! matters to them.
//!
//! # References
//! [semget(2)](https://man7.org/linux/man-pages/man2/semget.2.html),
//! [semop(2)](https://man7.org/linux/man-pages/man2/semop.2.html),
//! [semctl(2)](https://man7.org/linux/man-pages/man2/semctl.2.html).

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::open::{OpenFlags, open_flag_setters};
use crate::registry::Ownership;
use crate::sys::sysv_sem as sys;
use crate::sysv::Key;
use crate::wait::Wait;

/// The largest value of a System V semaphore on Linux (`SEMVMX`).
pub const VALUE_MAX: u16 = 32767;

/// Errors of System V semaphore operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
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
    /// ([`Options::trust`]). It was left as it is.
    #[error(transparent)]
    ForeignOwner(#[from] crate::trust::ForeignOwner),
    /// Any other OS error.
    #[error("{what}: {source}")]
    Io {
        /// The failed operation.
        what: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Maps errors of operations on an existing set (`semop`, `semctl`).
    fn on_set(what: &'static str, id: i32, e: io::Error) -> Error {
        match e.raw_os_error() {
            // EINVAL on an id: the set is gone (removed before the call).
            Some(libc::EIDRM) | Some(libc::EINVAL) => Error::Removed,
            Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied {
                what: format!("id {id}"),
                source: e,
            },
            Some(libc::ERANGE) => Error::Overflow,
            _ => Error::Io { what, source: e },
        }
    }

    fn on_get(key: Key, nsems: usize, e: io::Error) -> Error {
        match e.raw_os_error() {
            Some(libc::ENOENT) => Error::NotFound { key },
            Some(libc::EEXIST) => Error::AlreadyExists { key },
            Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied {
                what: format!("key {key}"),
                source: e,
            },
            Some(libc::EINVAL) => Error::InvalidSize { nsems },
            Some(libc::ENOSPC) => Error::NoSpace,
            _ => Error::Io {
                what: "semget",
                source: e,
            },
        }
    }
}

/// One operation of a [`SemaphoreSet::op`] call (`struct sembuf`).
///
/// `delta > 0` adds to the semaphore; `delta < 0` waits until the value is at least `-delta`
/// and subtracts it; `delta == 0` waits until the value is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemOp {
    /// Index of the semaphore in the set.
    pub index: u16,
    /// What to add (negative: take).
    pub delta: i16,
    /// `SEM_UNDO`: the kernel reverts this operation when the process exits.
    pub undo: bool,
    /// `IPC_NOWAIT`: fail with [`Error::WouldBlock`] instead of waiting.
    pub nowait: bool,
}

impl SemOp {
    /// An operation adding `delta` to semaphore `index`.
    pub fn new(index: u16, delta: i16) -> SemOp {
        SemOp {
            index,
            delta,
            undo: false,
            nowait: false,
        }
    }

    /// Take one (P): `delta = -1`.
    pub fn wait(index: u16) -> SemOp {
        SemOp::new(index, -1)
    }

    /// Give one (V): `delta = +1`.
    pub fn post(index: u16) -> SemOp {
        SemOp::new(index, 1)
    }

    /// Wait until the value is zero: `delta = 0`.
    pub fn wait_zero(index: u16) -> SemOp {
        SemOp::new(index, 0)
    }

    /// With `SEM_UNDO`.
    pub fn undo(mut self) -> SemOp {
        self.undo = true;
        self
    }

    /// With `IPC_NOWAIT`.
    pub fn nowait(mut self) -> SemOp {
        self.nowait = true;
        self
    }
}

/// How to open or create a semaphore set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    flags: OpenFlags,
    values: Option<Vec<u16>>,
}

impl Default for Options {
    fn default() -> Self {
        Options::new()
    }
}

impl Options {
    /// Open an existing set; mode `0o600` for new ones.
    pub fn new() -> Options {
        Options {
            flags: OpenFlags::default(),
            values: None,
        }
    }

    open_flag_setters! {
        noun: "set",
        already_exists: "[`Error::AlreadyExists`]",
        umask: "System V IPC ignores the umask",
        mode_mask: 0o777,
        /// Whose existing sets to use besides the caller's own (default: only the caller's own
        /// uid; see [`crate::trust`]). A set that this call did not create and whose owner or
        /// creator is another user is [`Error::ForeignOwner`].
        trust,
    }

    /// Initial values of a new set (one per semaphore; SETALL right after creation). Without
    /// this, a new set's values are 0.
    pub fn values(mut self, values: &[u16]) -> Self {
        self.values = Some(values.to_vec());
        self
    }

    /// Opens or creates the set with key `key` holding `nsems` semaphores (when opening, the
    /// existing set must hold at least `nsems`; pass 0 to accept any size).
    /// [`Key::PRIVATE`] always creates a new set.
    pub fn open(&self, key: Key, nsems: usize) -> Result<SemaphoreSet, Error> {
        let creating = self.flags.create || self.flags.create_new || key == Key::PRIVATE;
        if creating && (nsems == 0 || nsems > i32::MAX as usize) {
            return Err(Error::InvalidSize { nsems });
        }
        if let Some(values) = &self.values {
            if values.len() != nsems {
                return Err(Error::InvalidSize { nsems });
            }
            if values.iter().any(|v| *v > VALUE_MAX) {
                return Err(Error::Overflow);
            }
        }
        let n = i32::try_from(nsems).map_err(|_| Error::InvalidSize { nsems })?;
        let excl = libc::IPC_CREAT | libc::IPC_EXCL | self.flags.mode as i32;
        let (id, created) = if self.flags.create_new || key == Key::PRIVATE {
            let id = sys::semget(key.0, n, excl).map_err(|e| Error::on_get(key, nsems, e))?;
            (id, true)
        } else if self.flags.create {
            // Try to create, then to open, so that the handle knows whether it created the set.
            let mut found = None;
            for _ in 0..16 {
                match sys::semget(key.0, n, excl) {
                    Ok(id) => {
                        found = Some((id, true));
                        break;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(Error::on_get(key, nsems, e)),
                }
                match sys::semget(key.0, n, 0) {
                    Ok(id) => {
                        found = Some((id, false));
                        break;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                    Err(e) => return Err(Error::on_get(key, nsems, e)),
                }
            }
            found.ok_or(Error::Io {
                what: "semget (the set was repeatedly created and removed by another process)",
                source: io::Error::from_raw_os_error(libc::ENOENT),
            })?
        } else {
            let id = sys::semget(key.0, n, 0).map_err(|e| Error::on_get(key, nsems, e))?;
            (id, false)
        };
        if !created {
            let st = sys::stat(id).map_err(|e| Error::on_set("semctl(IPC_STAT)", id, e))?;
            let what = format!("semaphore set sysv-sem:{key}");
            super::check_owner(&self.flags.trust, &what, st.uid, st.cuid)?;
        }
        let set = SemaphoreSet::from_parts(id, key, created)?;
        if created && let Some(values) = &self.values {
            set.set_all(values)?;
        }
        Ok(set)
    }
}

/// What IPC_STAT reports about a semaphore set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemStat {
    /// The key.
    pub key: Key,
    /// Number of semaphores.
    pub nsems: usize,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Creator uid.
    pub cuid: u32,
    /// Creator gid.
    pub cgid: u32,
    /// Permission bits.
    pub mode: u32,
    /// Time of the last `semop`, `None` if there was none yet.
    pub otime: Option<SystemTime>,
    /// Time of creation or of the last IPC_SET/SETVAL/SETALL.
    pub ctime: SystemTime,
}

/// A kernel timestamp; one that `SystemTime` cannot hold reads as the epoch (unknown).
fn to_time(secs: i64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs.max(0) as u64))
        .unwrap_or(UNIX_EPOCH)
}

/// A System V semaphore set.
///
/// The set is a kernel object addressed by an id; this handle holds no other resource, so it
/// is `Send + Sync` and cheap. The creating handle removes the set on drop unless
/// [`persist`](SemaphoreSet::persist)ed.
#[derive(Debug)]
#[doc(alias = "semget")]
pub struct SemaphoreSet {
    id: i32,
    key: Key,
    nsems: usize,
    undo: bool,
    ownership: Ownership,
}

impl SemaphoreSet {
    fn from_parts(id: i32, key: Key, created: bool) -> Result<SemaphoreSet, Error> {
        // Opening only needs alter/read rights for the operations; a set we cannot stat is
        // unusable for us anyway. (A set we created and cannot stat is left as it is.)
        let st = sys::stat(id).map_err(|e| Error::on_set("semctl(IPC_STAT)", id, e))?;
        Ok(SemaphoreSet {
            id,
            key,
            nsems: st.nsems as usize,
            undo: false,
            ownership: Ownership::new(created, || super::name("sysv-sem", key.0, id)),
        })
    }

    /// Options for opening or creating a set.
    pub fn options() -> Options {
        Options::new()
    }

    /// Opens the existing set with key `key` ([`Error::NotFound`] if there is none).
    ///
    /// Opening needs read permission on the set (the handle reads its size with IPC_STAT);
    /// without it, [`Error::PermissionDenied`].
    pub fn open(key: Key) -> Result<SemaphoreSet, Error> {
        Options::new().open(key, 0)
    }

    /// Opens the set with key `key`, creating it with `nsems` semaphores (values 0, mode
    /// `0o600`) if there is none.
    pub fn create(key: Key, nsems: usize) -> Result<SemaphoreSet, Error> {
        Options::new().create(true).open(key, nsems)
    }

    /// Creates a set of `nsems` semaphores (values 0, mode `0o600`); [`Error::AlreadyExists`]
    /// if one has the key. With [`Key::PRIVATE`], a new set only reachable through its
    /// [`id`](SemaphoreSet::id).
    pub fn create_new(key: Key, nsems: usize) -> Result<SemaphoreSet, Error> {
        Options::new().create_new(true).open(key, nsems)
    }

    /// Opens a set by its id (as printed by `ipcs -s` or handed over by its creator, for
    /// [`Key::PRIVATE`] sets). The handle never removes the set on drop.
    pub fn from_id(id: i32) -> Result<SemaphoreSet, Error> {
        let st = sys::stat(id).map_err(|e| Error::on_set("semctl(IPC_STAT)", id, e))?;
        Ok(SemaphoreSet {
            id,
            key: Key(st.key),
            nsems: st.nsems as usize,
            undo: false,
            ownership: Ownership::opened(),
        })
    }

    /// The kernel id of the set.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The key the set was opened with.
    pub fn key(&self) -> Key {
        self.key
    }

    /// Number of semaphores in the set.
    pub fn len(&self) -> usize {
        self.nsems
    }

    /// Whether the set holds no semaphores (never true for a set the kernel accepted).
    pub fn is_empty(&self) -> bool {
        self.nsems == 0
    }

    /// Whether this handle created the set (and so removes it on drop unless persisted).
    pub fn is_owner(&self) -> bool {
        self.ownership.is_owner()
    }

    /// Keeps the set after this handle is dropped.
    pub fn persist(mut self) -> SemaphoreSet {
        self.ownership.set_persist(true);
        self
    }

    /// Sets whether the set is kept after this (creating) handle is dropped.
    pub fn set_persist(&mut self, persist: bool) {
        self.ownership.set_persist(persist);
    }

    /// Applies `SEM_UNDO` to every operation of this handle, whatever each [`SemOp::undo`]
    /// says (default: off).
    pub fn set_undo(&mut self, undo: bool) {
        self.undo = undo;
    }

    fn check_index(&self, index: usize) -> Result<i32, Error> {
        if index >= self.nsems {
            return Err(Error::IndexOutOfRange {
                index,
                nsems: self.nsems,
            });
        }
        Ok(index as i32)
    }

    /// Applies all `ops` atomically, blocking until they can all proceed.
    #[doc(alias = "semop")]
    pub fn op(&self, ops: &[SemOp]) -> Result<(), Error> {
        self.op_wait(ops, Wait::Forever)
    }

    /// Applies all `ops` atomically if they can all proceed at once; [`Error::WouldBlock`]
    /// otherwise.
    pub fn try_op(&self, ops: &[SemOp]) -> Result<(), Error> {
        self.op_wait(ops, Wait::NoWait)
    }

    /// Applies all `ops` atomically, waiting at most `timeout`; [`Error::Timeout`] if they
    /// could not proceed in time.
    #[doc(alias = "semtimedop")]
    pub fn op_timeout(&self, ops: &[SemOp], timeout: Duration) -> Result<(), Error> {
        self.op_wait(ops, Wait::timeout(timeout))
    }

    /// Applies all `ops` atomically, waiting as `wait` says. Interruptions by signals are
    /// retried with the time left. An `EAGAIN` before the deadline (an op flagged
    /// [`nowait`](SemOp::nowait)) is [`Error::WouldBlock`]; at or after it, [`Error::Timeout`].
    pub fn op_wait(&self, ops: &[SemOp], wait: Wait) -> Result<(), Error> {
        let mut bufs = Vec::with_capacity(ops.len());
        for op in ops {
            self.check_index(usize::from(op.index))?;
            let mut flg = 0;
            if op.undo || self.undo {
                flg |= sys::SEM_UNDO;
            }
            if op.nowait || wait == Wait::NoWait {
                flg |= sys::IPC_NOWAIT;
            }
            bufs.push(sys::SemBuf {
                sem_num: op.index,
                sem_op: op.delta,
                sem_flg: flg,
            });
        }
        loop {
            let timeout = match wait {
                Wait::Forever | Wait::NoWait => None,
                Wait::Until(_) => wait.remaining(),
            };
            match sys::semop(self.id, &mut bufs, timeout) {
                Ok(()) => return Ok(()),
                Err(e) => match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) => {
                        return Err(match wait {
                            Wait::Until(_) if wait.expired() => Error::Timeout,
                            _ => Error::WouldBlock,
                        });
                    }
                    Some(libc::E2BIG) => {
                        return Err(Error::Io {
                            what: "semop (more operations than SEMOPM allows in one call)",
                            source: e,
                        });
                    }
                    Some(libc::EFBIG) => {
                        return Err(Error::IndexOutOfRange {
                            index: ops.iter().map(|o| usize::from(o.index)).max().unwrap_or(0),
                            nsems: self.nsems,
                        });
                    }
                    _ => return Err(Error::on_set("semop", self.id, e)),
                },
            }
        }
    }

    /// Takes one from semaphore `index` (P), blocking while it is zero.
    pub fn wait(&self, index: u16) -> Result<(), Error> {
        self.op(&[SemOp::wait(index)])
    }

    /// Takes one from semaphore `index` if it is above zero; [`Error::WouldBlock`] otherwise.
    pub fn try_wait(&self, index: u16) -> Result<(), Error> {
        self.try_op(&[SemOp::wait(index)])
    }

    /// Takes one from semaphore `index`, waiting at most `timeout`.
    pub fn wait_timeout(&self, index: u16, timeout: Duration) -> Result<(), Error> {
        self.op_timeout(&[SemOp::wait(index)], timeout)
    }

    /// Adds one to semaphore `index` (V).
    pub fn post(&self, index: u16) -> Result<(), Error> {
        self.op(&[SemOp::post(index)])
    }

    /// The value of semaphore `index` (GETVAL).
    pub fn get(&self, index: usize) -> Result<u16, Error> {
        let i = self.check_index(index)?;
        sys::getval(self.id, i)
            .map(|v| v as u16)
            .map_err(|e| Error::on_set("semctl(GETVAL)", self.id, e))
    }

    /// Sets semaphore `index` to `value` (SETVAL), waking waiters that can now proceed and
    /// clearing every process's undo adjustment for it. [`Error::Overflow`] above
    /// [`VALUE_MAX`].
    pub fn set(&self, index: usize, value: u16) -> Result<(), Error> {
        let i = self.check_index(index)?;
        sys::setval(self.id, i, i32::from(value))
            .map_err(|e| Error::on_set("semctl(SETVAL)", self.id, e))
    }

    /// All values (GETALL).
    pub fn get_all(&self) -> Result<Vec<u16>, Error> {
        let mut v = vec![0u16; self.nsems];
        sys::getall(self.id, &mut v).map_err(|e| Error::on_set("semctl(GETALL)", self.id, e))?;
        Ok(v)
    }

    /// Sets all values at once (SETALL); `values` must hold one value per semaphore.
    pub fn set_all(&self, values: &[u16]) -> Result<(), Error> {
        if values.len() != self.nsems {
            return Err(Error::InvalidSize {
                nsems: values.len(),
            });
        }
        sys::setall(self.id, values).map_err(|e| Error::on_set("semctl(SETALL)", self.id, e))
    }

    /// How many processes wait for semaphore `index` to increase (GETNCNT).
    pub fn waiting_count(&self, index: usize) -> Result<usize, Error> {
        let i = self.check_index(index)?;
        sys::getncnt(self.id, i)
            .map(|n| n as usize)
            .map_err(|e| Error::on_set("semctl(GETNCNT)", self.id, e))
    }

    /// How many processes wait for semaphore `index` to become zero (GETZCNT).
    pub fn zero_waiting_count(&self, index: usize) -> Result<usize, Error> {
        let i = self.check_index(index)?;
        sys::getzcnt(self.id, i)
            .map(|n| n as usize)
            .map_err(|e| Error::on_set("semctl(GETZCNT)", self.id, e))
    }

    /// The pid of the last process that operated on semaphore `index` (GETPID; 0 if none).
    pub fn last_pid(&self, index: usize) -> Result<i32, Error> {
        let i = self.check_index(index)?;
        sys::getpid(self.id, i).map_err(|e| Error::on_set("semctl(GETPID)", self.id, e))
    }

    /// Owner, mode, size and times (IPC_STAT).
    pub fn stat(&self) -> Result<SemStat, Error> {
        let st = sys::stat(self.id).map_err(|e| Error::on_set("semctl(IPC_STAT)", self.id, e))?;
        Ok(SemStat {
            key: Key(st.key),
            nsems: st.nsems as usize,
            uid: st.uid,
            gid: st.gid,
            cuid: st.cuid,
            cgid: st.cgid,
            mode: st.mode,
            otime: (st.otime != 0).then(|| to_time(st.otime)),
            ctime: to_time(st.ctime),
        })
    }

    /// Removes the set now (IPC_RMID): processes waiting on it get [`Error::Removed`]. After
    /// this, drop does not remove again.
    #[doc(alias = "IPC_RMID")]
    pub fn remove(&mut self) -> Result<(), Error> {
        self.ownership.removed();
        sys::rmid(self.id).map_err(|e| Error::on_set("semctl(IPC_RMID)", self.id, e))
    }

    /// Removes the set with key `key` ([`Error::NotFound`] if there is none).
    pub fn remove_key(key: Key) -> Result<(), Error> {
        let id = sys::semget(key.0, 0, 0).map_err(|e| Error::on_get(key, 0, e))?;
        sys::rmid(id).map_err(|e| Error::on_set("semctl(IPC_RMID)", id, e))
    }
}

impl Drop for SemaphoreSet {
    fn drop(&mut self) {
        if self.ownership.is_owner() {
            let _ = sys::rmid(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn set_is_send_and_sync() {
        assert_send_sync::<SemaphoreSet>();
    }

    #[test]
    fn private_set_basics() {
        let mut set = SemaphoreSet::options()
            .values(&[2, 0])
            .open(Key::PRIVATE, 2)
            .unwrap();
        assert!(set.is_owner());
        assert_eq!(set.get_all().unwrap(), vec![2, 0]);
        set.try_wait(0).unwrap();
        assert_eq!(set.get(0).unwrap(), 1);
        assert!(matches!(set.try_wait(1), Err(Error::WouldBlock)));
        assert!(matches!(set.get(2), Err(Error::IndexOutOfRange { .. })));
        assert!(matches!(
            set.try_op(&[SemOp::wait(5)]),
            Err(Error::IndexOutOfRange { .. })
        ));
        assert!(matches!(set.set(0, VALUE_MAX), Ok(())));
        assert!(matches!(set.post(0), Err(Error::Overflow)));
        assert_eq!(set.last_pid(0).unwrap(), std::process::id() as i32);
        let other = SemaphoreSet::from_id(set.id()).unwrap();
        assert_eq!(other.len(), 2);
        set.remove().unwrap();
        assert!(matches!(other.get(0), Err(Error::Removed)));
    }
}
