//! [`SemaphoreSet`]: an open System V semaphore set, and its state ([`SemStat`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Options, SemOp, SemSetError};
use crate::registry::Ownership;
use crate::sys::sysv_sem as sys;
use crate::sysv::Key;
use crate::wait::Wait;

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
    pub(super) fn from_parts(
        id: i32,
        key: Key,
        created: bool,
    ) -> Result<SemaphoreSet, SemSetError> {
        // Opening only needs alter/read rights for the operations; a set we cannot stat is
        // unusable for us anyway. (A set we created and cannot stat is left as it is.)
        let st = sys::stat(id).map_err(|e| SemSetError::on_set("semctl(IPC_STAT)", id, e))?;
        Ok(SemaphoreSet {
            id,
            key,
            nsems: st.nsems as usize,
            undo: false,
            ownership: Ownership::new(created, || crate::sysv::name("sysv-sem", key.0, id)),
        })
    }

    /// Options for opening or creating a set.
    pub fn options() -> Options {
        Options::new()
    }

    /// Opens the existing set with key `key` ([`SemSetError::NotFound`] if there is none).
    ///
    /// Opening needs read permission on the set (the handle reads its size with IPC_STAT);
    /// without it, [`SemSetError::PermissionDenied`].
    pub fn open(key: Key) -> Result<SemaphoreSet, SemSetError> {
        Options::new().open(key, 0)
    }

    /// Opens the set with key `key`, creating it with `nsems` semaphores (values 0, mode
    /// `0o600`) if there is none.
    pub fn create(key: Key, nsems: usize) -> Result<SemaphoreSet, SemSetError> {
        Options::new().create(true).open(key, nsems)
    }

    /// Creates a set of `nsems` semaphores (values 0, mode `0o600`); [`SemSetError::AlreadyExists`]
    /// if one has the key. With [`Key::PRIVATE`], a new set only reachable through its
    /// [`id`](SemaphoreSet::id).
    pub fn create_new(key: Key, nsems: usize) -> Result<SemaphoreSet, SemSetError> {
        Options::new().create_new(true).open(key, nsems)
    }

    /// Opens a set by its id (as printed by `ipcs -s` or handed over by its creator, for
    /// [`Key::PRIVATE`] sets). The handle never removes the set on drop.
    pub fn from_id(id: i32) -> Result<SemaphoreSet, SemSetError> {
        let st = sys::stat(id).map_err(|e| SemSetError::on_set("semctl(IPC_STAT)", id, e))?;
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

    fn check_index(&self, index: usize) -> Result<i32, SemSetError> {
        if index >= self.nsems {
            return Err(SemSetError::IndexOutOfRange {
                index,
                nsems: self.nsems,
            });
        }
        Ok(index as i32)
    }

    /// Applies all `ops` atomically, blocking until they can all proceed.
    #[doc(alias = "semop")]
    pub fn op(&self, ops: &[SemOp]) -> Result<(), SemSetError> {
        self.op_wait(ops, Wait::Forever)
    }

    /// Applies all `ops` atomically if they can all proceed at once; [`SemSetError::WouldBlock`]
    /// otherwise.
    pub fn try_op(&self, ops: &[SemOp]) -> Result<(), SemSetError> {
        self.op_wait(ops, Wait::NoWait)
    }

    /// Applies all `ops` atomically, waiting at most `timeout`; [`SemSetError::Timeout`] if they
    /// could not proceed in time.
    #[doc(alias = "semtimedop")]
    pub fn op_timeout(&self, ops: &[SemOp], timeout: Duration) -> Result<(), SemSetError> {
        self.op_wait(ops, Wait::timeout(timeout))
    }

    /// Applies all `ops` atomically, waiting as `wait` says. Interruptions by signals are
    /// retried with the time left. An `EAGAIN` before the deadline (an op flagged
    /// [`nowait`](SemOp::nowait)) is [`SemSetError::WouldBlock`]; at or after it,
    /// [`SemSetError::Timeout`].
    pub fn op_wait(&self, ops: &[SemOp], wait: Wait) -> Result<(), SemSetError> {
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
                            Wait::Until(_) if wait.expired() => SemSetError::Timeout,
                            _ => SemSetError::WouldBlock,
                        });
                    }
                    Some(libc::E2BIG) => {
                        return Err(SemSetError::io(
                            "semop (more operations than SEMOPM allows in one call)",
                            e,
                        ));
                    }
                    Some(libc::EFBIG) => {
                        return Err(SemSetError::IndexOutOfRange {
                            index: ops.iter().map(|o| usize::from(o.index)).max().unwrap_or(0),
                            nsems: self.nsems,
                        });
                    }
                    _ => return Err(SemSetError::on_set("semop", self.id, e)),
                },
            }
        }
    }

    /// Takes one from semaphore `index` (P), blocking while it is zero.
    pub fn wait(&self, index: u16) -> Result<(), SemSetError> {
        self.op(&[SemOp::wait(index)])
    }

    /// Takes one from semaphore `index` if it is above zero; [`SemSetError::WouldBlock`] otherwise.
    pub fn try_wait(&self, index: u16) -> Result<(), SemSetError> {
        self.try_op(&[SemOp::wait(index)])
    }

    /// Takes one from semaphore `index`, waiting at most `timeout`.
    pub fn wait_timeout(&self, index: u16, timeout: Duration) -> Result<(), SemSetError> {
        self.op_timeout(&[SemOp::wait(index)], timeout)
    }

    /// Adds one to semaphore `index` (V).
    pub fn post(&self, index: u16) -> Result<(), SemSetError> {
        self.op(&[SemOp::post(index)])
    }

    /// The value of semaphore `index` (GETVAL).
    pub fn get(&self, index: usize) -> Result<u16, SemSetError> {
        let i = self.check_index(index)?;
        sys::getval(self.id, i)
            .map(|v| v as u16)
            .map_err(|e| SemSetError::on_set("semctl(GETVAL)", self.id, e))
    }

    /// Sets semaphore `index` to `value` (SETVAL), waking waiters that can now proceed and
    /// clearing every process's undo adjustment for it. [`SemSetError::Overflow`] above
    /// [`VALUE_MAX`](super::VALUE_MAX).
    pub fn set(&self, index: usize, value: u16) -> Result<(), SemSetError> {
        let i = self.check_index(index)?;
        sys::setval(self.id, i, i32::from(value))
            .map_err(|e| SemSetError::on_set("semctl(SETVAL)", self.id, e))
    }

    /// All values (GETALL).
    pub fn get_all(&self) -> Result<Vec<u16>, SemSetError> {
        let mut v = vec![0u16; self.nsems];
        sys::getall(self.id, &mut v)
            .map_err(|e| SemSetError::on_set("semctl(GETALL)", self.id, e))?;
        Ok(v)
    }

    /// Sets all values at once (SETALL); `values` must hold one value per semaphore.
    pub fn set_all(&self, values: &[u16]) -> Result<(), SemSetError> {
        if values.len() != self.nsems {
            return Err(SemSetError::InvalidSize {
                nsems: values.len(),
            });
        }
        sys::setall(self.id, values).map_err(|e| SemSetError::on_set("semctl(SETALL)", self.id, e))
    }

    /// How many processes wait for semaphore `index` to increase (GETNCNT).
    pub fn waiting_count(&self, index: usize) -> Result<usize, SemSetError> {
        let i = self.check_index(index)?;
        sys::getncnt(self.id, i)
            .map(|n| n as usize)
            .map_err(|e| SemSetError::on_set("semctl(GETNCNT)", self.id, e))
    }

    /// How many processes wait for semaphore `index` to become zero (GETZCNT).
    pub fn zero_waiting_count(&self, index: usize) -> Result<usize, SemSetError> {
        let i = self.check_index(index)?;
        sys::getzcnt(self.id, i)
            .map(|n| n as usize)
            .map_err(|e| SemSetError::on_set("semctl(GETZCNT)", self.id, e))
    }

    /// The pid of the last process that operated on semaphore `index` (GETPID; 0 if none).
    pub fn last_pid(&self, index: usize) -> Result<i32, SemSetError> {
        let i = self.check_index(index)?;
        sys::getpid(self.id, i).map_err(|e| SemSetError::on_set("semctl(GETPID)", self.id, e))
    }

    /// Owner, mode, size and times (IPC_STAT).
    pub fn stat(&self) -> Result<SemStat, SemSetError> {
        let st =
            sys::stat(self.id).map_err(|e| SemSetError::on_set("semctl(IPC_STAT)", self.id, e))?;
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

    /// Removes the set now (IPC_RMID): processes waiting on it get [`SemSetError::Removed`]. After
    /// this, drop does not remove again.
    #[doc(alias = "IPC_RMID")]
    pub fn remove(&mut self) -> Result<(), SemSetError> {
        self.ownership.removed();
        sys::rmid(self.id).map_err(|e| SemSetError::on_set("semctl(IPC_RMID)", self.id, e))
    }

    /// Removes the set with key `key` ([`SemSetError::NotFound`] if there is none).
    pub fn remove_key(key: Key) -> Result<(), SemSetError> {
        let id = sys::semget(key.0, 0, 0).map_err(|e| SemSetError::on_get(key, 0, e))?;
        sys::rmid(id).map_err(|e| SemSetError::on_set("semctl(IPC_RMID)", id, e))
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
    use crate::sysv::sem::VALUE_MAX;

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
        assert!(matches!(set.try_wait(1), Err(SemSetError::WouldBlock)));
        assert!(matches!(
            set.get(2),
            Err(SemSetError::IndexOutOfRange { .. })
        ));
        assert!(matches!(
            set.try_op(&[SemOp::wait(5)]),
            Err(SemSetError::IndexOutOfRange { .. })
        ));
        assert!(matches!(set.set(0, VALUE_MAX), Ok(())));
        assert!(matches!(set.post(0), Err(SemSetError::Overflow)));
        assert_eq!(set.last_pid(0).unwrap(), std::process::id() as i32);
        let other = SemaphoreSet::from_id(set.id()).unwrap();
        assert_eq!(other.len(), 2);
        set.remove().unwrap();
        assert!(matches!(other.get(0), Err(SemSetError::Removed)));
    }
}
