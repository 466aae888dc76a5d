//! [`SegmentOptions`]: how to open or create a segment.

use std::io;

use super::error::key_error;
use super::{Segment, SysvShmError};
use crate::os_error::OsError;
use crate::registry::Ownership;
use crate::sys;
use crate::sysv::Key;

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
        crate::sysv::check_owner(&self.trust, &what, st.uid, st.cuid)?;
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
        Err(SysvShmError::Io(OsError::new(
            format!("create segment {key}"),
            io::Error::other("the segment kept appearing and disappearing"),
        )))
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
            ownership: Ownership::created(crate::sysv::name("sysv-shm", key.0, id)),
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
