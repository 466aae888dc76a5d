//! [`Segment`]: a System V shared-memory segment by id, and its state ([`SegmentStat`]).

use std::time::{Duration, SystemTime};

use super::error::id_error;
use super::{Attached, SegmentOptions, SysvShmError};
use crate::registry::Ownership;
use crate::sys;
use crate::sysv::Key;

/// A System V shared-memory segment (by id). Attach it to read and write.
#[derive(Debug)]
pub struct Segment {
    pub(super) id: i32,
    pub(super) key: Key,
    pub(super) ownership: Ownership,
}

impl Segment {
    /// Options: mode, size.
    pub fn options() -> SegmentOptions {
        SegmentOptions::new()
    }

    /// Opens the existing segment with `key`, whatever its size.
    pub fn open(key: Key) -> Result<Segment, SysvShmError> {
        SegmentOptions::new().open(key)
    }

    /// Opens the segment with `key`, creating it (mode `0o600`, `size` bytes) if there is none.
    pub fn create(key: Key, size: usize) -> Result<Segment, SysvShmError> {
        SegmentOptions::new().size(size).create(key)
    }

    /// Creates a new segment (mode `0o600`); fails if `key` is taken.
    pub fn create_new(key: Key, size: usize) -> Result<Segment, SysvShmError> {
        SegmentOptions::new().size(size).create_new(key)
    }

    /// A handle on a segment by id (as `ipcs -m` prints it, or as a creator of a
    /// [`Key::PRIVATE`] segment hands it over). Checks that the id exists. Never removes it
    /// on drop.
    pub fn from_id(id: i32) -> Result<Segment, SysvShmError> {
        let st = sys::sysv_shm::stat(id).map_err(|e| id_error("stat", id, e))?;
        Ok(Segment {
            id,
            key: Key(st.key),
            ownership: Ownership::opened(),
        })
    }

    /// The segment id (`shmid`).
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The key the segment was opened or created with.
    pub fn key(&self) -> Key {
        self.key
    }

    /// Keeps the segment after this handle is dropped (until [`Segment::remove`] or `ipcrm`).
    pub fn persist(mut self) -> Segment {
        self.ownership.set_persist(true);
        self
    }

    /// Whether this handle created the segment and removes it on drop.
    pub fn is_owner(&self) -> bool {
        self.ownership.is_owner()
    }

    /// `shmctl(IPC_STAT)`: size, attach count, pids, owner, mode, times.
    #[doc(alias = "IPC_STAT")]
    pub fn stat(&self) -> Result<SegmentStat, SysvShmError> {
        let st = sys::sysv_shm::stat(self.id).map_err(|e| id_error("stat", self.id, e))?;
        Ok(SegmentStat {
            key: Key(st.key),
            size: st.size,
            attach_count: st.nattch,
            creator_pid: st.cpid,
            last_pid: st.lpid,
            uid: st.uid,
            gid: st.gid,
            creator_uid: st.cuid,
            creator_gid: st.cgid,
            mode: st.mode,
            marked_for_removal: st.marked_for_removal,
            attach_time: time(st.atime),
            detach_time: time(st.dtime),
            change_time: time(st.ctime),
        })
    }

    /// Attaches the segment read-write (`shmat`).
    #[doc(alias = "shmat")]
    pub fn attach(&self) -> Result<Attached, SysvShmError> {
        self.attach_with(false)
    }

    /// Attaches the segment read-only (`shmat(SHM_RDONLY)`).
    pub fn attach_read_only(&self) -> Result<Attached, SysvShmError> {
        self.attach_with(true)
    }

    fn attach_with(&self, read_only: bool) -> Result<Attached, SysvShmError> {
        let a = sys::sysv_shm::attach(self.id, read_only)
            .map_err(|e| id_error("attach", self.id, e))?;
        Ok(Attached::new(a))
    }

    /// Marks the segment for removal (`IPC_RMID`): it goes when the last process detaches; see
    /// the module docs. The handle no longer removes it on drop.
    #[doc(alias = "IPC_RMID")]
    pub fn remove(&mut self) -> Result<(), SysvShmError> {
        self.ownership.removed();
        Segment::remove_id(self.id)
    }

    /// Marks the segment with this id for removal (`IPC_RMID`).
    pub fn remove_id(id: i32) -> Result<(), SysvShmError> {
        sys::sysv_shm::remove(id).map_err(|e| id_error("remove", id, e))
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        if !self.ownership.is_owner() {
            return;
        }
        // Remove only the segment we created: still there, same key, not already removed.
        if let Ok(st) = sys::sysv_shm::stat(self.id)
            && st.key == self.key.0
            && !st.marked_for_removal
        {
            let _ = sys::sysv_shm::remove(self.id);
        }
    }
}

fn time(secs: i64) -> Option<SystemTime> {
    let secs = u64::try_from(secs).ok().filter(|s| *s != 0)?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// What `IPC_STAT` reports about a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentStat {
    /// The key ([`Key::PRIVATE`] for private segments and after removal).
    pub key: Key,
    /// Size in bytes.
    pub size: usize,
    /// Number of current attachments (`shm_nattch`).
    pub attach_count: u64,
    /// Pid of the creator (`shm_cpid`).
    pub creator_pid: i32,
    /// Pid of the last `shmat`/`shmdt` (`shm_lpid`).
    pub last_pid: i32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Creator uid.
    pub creator_uid: u32,
    /// Creator gid.
    pub creator_gid: u32,
    /// Permission bits.
    pub mode: u32,
    /// Removed (`IPC_RMID`) and waiting for the last detach.
    pub marked_for_removal: bool,
    /// Last attach, if any.
    pub attach_time: Option<SystemTime>,
    /// Last detach, if any.
    pub detach_time: Option<SystemTime>,
    /// Last change (creation or `IPC_SET`).
    pub change_time: Option<SystemTime>,
}
