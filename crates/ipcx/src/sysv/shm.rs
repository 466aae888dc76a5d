//! System V shared-memory segments (`shmget`, `shmat`, `shmdt`, `shmctl`).
//!
//! ```no_run
//! use ipcx::sysv::{Key, shm::Segment};
//!
//! # fn main() -> Result<(), ipcx::sysv::shm::SysvShmError> {
//! let seg = Segment::create_new(Key::new(0x1234), 4096)?; // mode 0600
//! let at = seg.attach()?;
//! at.write_at(0, b"hello")?;
//! println!("{} attached", seg.stat()?.attach_count);
//! # Ok(()) }
//! ```
//!
//! # Access
//! As for POSIX shared memory (see [`crate::shm`] for the reasoning), the safe API copies bytes in
//! and out with volatile accesses ([`MappedRegion::read_at`], [`MappedRegion::write_at`], typed
//! [`MappedRegion::read`] / [`MappedRegion::write`] via zerocopy) with bounds checks
//! ([`SysvShmError::OutOfBounds`]); raw access is `unsafe` ([`MappedRegion::as_slice`]). Unlike a
//! POSIX object, a System V segment never changes size, so an attachment cannot fault.
//!
//! # Removal and ownership
//! [`Segment::remove`] (`IPC_RMID`) only *marks* the segment: it disappears when the last
//! process detaches. Until then every existing attachment keeps working, its key no longer finds
//! it (`ipcs` shows key 0 and status `dest`), and [`Segment::stat`] reports
//! [`SegmentStat::marked_for_removal`]. The handle that created a segment removes it on drop
//! unless [`Segment::persist`] was called; handles that only opened it never remove it. Since
//! removal waits for the last detach, dropping the creator while others are attached is safe.
//! An [`Attached`] does not borrow its [`Segment`]: it stays valid (and keeps the segment alive)
//! until it is dropped (`shmdt`).
//!
//! # References
//! [shmget(2)](https://man7.org/linux/man-pages/man2/shmget.2.html),
//! [shmop(2)](https://man7.org/linux/man-pages/man2/shmop.2.html),
//! [shmctl(2)](https://man7.org/linux/man-pages/man2/shmctl.2.html),
//! [sysvipc(7)](https://man7.org/linux/man-pages/man7/sysvipc.7.html).

use std::io;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, SystemTime};

use super::Key;
use crate::region::{self, MappedRegion};
use crate::registry::Ownership;
use crate::sys;

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
    /// An access outside the segment.
    #[error(
        "{len} bytes at offset {offset} are out of bounds of the {size}-byte segment: stay below {size}"
    )]
    OutOfBounds {
        /// Offset of the access.
        offset: usize,
        /// Length of the access.
        len: usize,
        /// Size of the segment.
        size: usize,
    },
    /// A write through a read-only attachment.
    #[error("read-only: {what}: attach read-write to write")]
    ReadOnly {
        /// What was attempted.
        what: &'static str,
    },
    /// The bytes at `offset` are not a valid value of the type read ([`MappedRegion::try_read`]).
    #[error("the bytes at offset {offset} are not a valid {type_name}")]
    InvalidValue {
        /// Offset of the read.
        offset: usize,
        /// The type asked for.
        type_name: &'static str,
    },
    /// The segment exists but its owner or creator is a user the caller does not trust
    /// ([`SegmentOptions::trust`]). It was left as it is.
    #[error(transparent)]
    ForeignOwner(#[from] crate::trust::ForeignOwner),
    /// Any other OS error.
    #[error("{what}: {source}")]
    Io {
        /// What was attempted.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn id_error(what: &str, id: i32, e: io::Error) -> SysvShmError {
    match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::EIDRM) => SysvShmError::Removed { id, source: e },
        Some(libc::EACCES) | Some(libc::EPERM) => SysvShmError::PermissionDenied {
            what: format!("{what} segment id {id}"),
            source: e,
        },
        _ => SysvShmError::Io {
            what: format!("{what} segment id {id}"),
            source: e,
        },
    }
}

fn key_error(what: &str, key: Key, e: io::Error) -> SysvShmError {
    match e.raw_os_error() {
        Some(libc::ENOENT) => SysvShmError::NotFound { key, source: e },
        Some(libc::EEXIST) => SysvShmError::AlreadyExists { key, source: e },
        Some(libc::EACCES) | Some(libc::EPERM) => SysvShmError::PermissionDenied {
            what: format!("{what} segment {key}"),
            source: e,
        },
        Some(libc::ENOSPC) => SysvShmError::Io {
            what: format!(
                "{what} segment {key}: the system's segment limits (SHMMNI/SHMALL) are reached; \
                 remove unused segments (ipcs -m)"
            ),
            source: e,
        },
        _ => SysvShmError::Io {
            what: format!("{what} segment {key}"),
            source: e,
        },
    }
}

/// Options for opening or creating a segment.
#[derive(Debug, Clone)]
pub struct SegmentOptions {
    mode: u32,
    size: usize,
    trust: crate::trust::Trust,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            mode: 0o600,
            size: 0,
            trust: crate::trust::Trust::own_user(),
        }
    }
}

impl SegmentOptions {
    /// Mode `0o600`, no size.
    pub fn new() -> SegmentOptions {
        SegmentOptions::default()
    }

    /// Permission bits of a new segment (System V IPC ignores the umask). Default `0o600`.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }

    /// Size of a new segment (required for creation). When opening, a non-zero size is a
    /// minimum: a smaller existing segment is [`SysvShmError::ExistingTooSmall`].
    pub fn size(mut self, size: usize) -> Self {
        self.size = size;
        self
    }

    /// Whose existing segments to open by key besides the caller's own (default: only the
    /// caller's own uid; see [`crate::trust`]). A segment whose owner or creator is another
    /// user is [`SysvShmError::ForeignOwner`]. [`Segment::from_id`] does not check: an id is
    /// handed over on purpose.
    pub fn trust(mut self, trust: crate::trust::Trust) -> Self {
        self.trust = trust;
        self
    }

    /// Opens the segment with `key`.
    pub fn open(&self, key: Key) -> Result<Segment, SysvShmError> {
        if key == Key::PRIVATE {
            return Err(SysvShmError::PrivateKey);
        }
        let id = sys::sysv_shm::shmget(key.0, self.size, 0).map_err(|e| {
            if e.raw_os_error() == Some(libc::EINVAL) {
                SysvShmError::ExistingTooSmall {
                    key,
                    requested: self.size,
                    source: e,
                }
            } else {
                key_error("open", key, e)
            }
        })?;
        let st = sys::sysv_shm::stat(id).map_err(|e| key_error("open", key, e))?;
        let what = format!("segment sysv-shm:{key}");
        super::check_owner(&self.trust, &what, st.uid, st.cuid)?;
        Ok(Segment {
            id,
            key,
            ownership: Ownership::opened(),
        })
    }

    /// Opens the segment with `key`, creating it if there is none (the handle owns it only if
    /// it created it). [`Key::PRIVATE`] always creates a new segment.
    pub fn create(&self, key: Key) -> Result<Segment, SysvShmError> {
        self.check_size()?;
        if key == Key::PRIVATE {
            return self.create_new(key);
        }
        for _ in 0..64 {
            match self.create_new(key) {
                Err(SysvShmError::AlreadyExists { .. }) => {}
                other => return other,
            }
            match self.open(key) {
                Err(SysvShmError::NotFound { .. }) => continue,
                other => return other,
            }
        }
        Err(SysvShmError::Io {
            what: format!("create segment {key}"),
            source: io::Error::other("the segment kept appearing and disappearing"),
        })
    }

    /// Creates a new segment; [`SysvShmError::AlreadyExists`] if `key` is taken.
    pub fn create_new(&self, key: Key) -> Result<Segment, SysvShmError> {
        self.check_size()?;
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | self.mode as i32;
        let id = sys::sysv_shm::shmget(key.0, self.size, flags).map_err(|e| {
            if e.raw_os_error() == Some(libc::EINVAL) {
                SysvShmError::InvalidSize {
                    size: self.size,
                    reason: "outside the system limits (see /proc/sys/kernel/shmmax)",
                }
            } else {
                key_error("create", key, e)
            }
        })?;
        Ok(Segment {
            id,
            key,
            ownership: Ownership::created(super::name("sysv-shm", key.0, id)),
        })
    }

    fn check_size(&self) -> Result<(), SysvShmError> {
        if self.size == 0 {
            return Err(SysvShmError::InvalidSize {
                size: 0,
                reason: "a segment needs at least one byte: pass a size",
            });
        }
        Ok(())
    }
}

/// A System V shared-memory segment (by id). Attach it to read and write.
#[derive(Debug)]
pub struct Segment {
    id: i32,
    key: Key,
    ownership: Ownership,
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
        Ok(Attached {
            a: MappedRegion::new(a),
        })
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

/// An attached segment, detached on drop (`shmdt`). Independent of the [`Segment`] handle.
/// The accessors (`read_at`, `write_at`, `read`, `write`, `as_ptr`...) are those of the
/// [`MappedRegion`] it dereferences to.
#[derive(Debug)]
pub struct Attached {
    a: MappedRegion<SysvShmError>,
}

impl Deref for Attached {
    type Target = MappedRegion<SysvShmError>;

    fn deref(&self) -> &MappedRegion<SysvShmError> {
        &self.a
    }
}

impl DerefMut for Attached {
    fn deref_mut(&mut self) -> &mut MappedRegion<SysvShmError> {
        &mut self.a
    }
}

region::impl_region_error! {
    SysvShmError,
    noun: "attachment",
    read_failed(e) => SysvShmError::Io {
        what: "read segment".into(),
        source: e,
    },
    write_failed(e) => SysvShmError::Io {
        what: "write segment".into(),
        source: e,
    },
    // An attachment is never guarded against truncation (a segment cannot change size), so
    // this error is never made.
    truncated: SysvShmError::Io {
        what: "access segment".into(),
        source: io::Error::other("the segment's memory is gone"),
    },
}
