//! Memory-mapped files shared between processes (`mmap(MAP_SHARED)` of a regular file).
//!
//! ```no_run
//! use ipcx::mmap::MmapFile;
//!
//! # fn main() -> Result<(), ipcx::mmap::MmapError> {
//! // SAFETY: /var/lib/app/state is our own file; no process truncates it while it is mapped.
//! let mut map = unsafe { MmapFile::open("/var/lib/app/state")? };
//! map.write_at(0, b"checkpoint")?;
//! map.flush()?; // msync(MS_SYNC): on disk when this returns
//! map.grow(1 << 20)?; // ftruncate + mremap
//! # Ok(()) }
//! ```
//!
//! # Why the constructors are `unsafe`
//! A mapped file stays connected to the file: if anyone (this process or another, any user with
//! write access to the file) truncates it, touching a mapped page past the new end raises
//! `SIGBUS` and kills the process, and a concurrent writer can change the bytes at any time.
//! ipcx cannot prevent either (files have no seals; `MAP_PRIVATE` copies would not be shared), so,
//! as ripgrep does for its mmap searcher, the constructors that map a file ([`MmapFile::open`],
//! [`MmapFile::open_read_only`], [`MmapFile::map`], [`MmapFile::map_read_only`]) are
//! `unsafe fn`: the caller promises that the file is not shrunk below the mapping while it
//! exists. (Broken, that promise no longer kills the process: ipcx catches the `SIGBUS` of its
//! own mappings, the mapping then reads as zeros and the copying methods fail with
//! [`MmapError::Truncated`]; see [`crate::shm`]. The constructors stay `unsafe` because raw
//! access through [`MappedRegion::as_ptr`] and the slices still depends on it.) Given that
//! promise, every other method is safe: bytes move by volatile copy-in /
//! copy-out with bounds checks, as in [`crate::shm`] (whose module docs explain why no `&[u8]`
//! into shared memory is handed out safely). For memory that untrusted peers share, use a sealed
//! [`crate::shm::Memfd`] instead: the kernel then refuses to shrink it.
//!
//! # Durability
//! Writes through the mapping are visible to every other process mapping (or `read`ing) the file
//! at once. [`MmapFile::flush`] (`msync(MS_SYNC)`) waits until they are written to the storage;
//! [`MmapFile::flush_async`] (`MS_ASYNC`) only schedules it; the `_range` variants limit this to
//! part of the file.
//!
//! # References
//! [mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html),
//! [msync(2)](https://man7.org/linux/man-pages/man2/msync.2.html),
//! [mremap(2)](https://man7.org/linux/man-pages/man2/mremap.2.html).

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

use crate::os_error::OsError;
use crate::region::{self, AccessError, MappedRegion};
use crate::sys;
use crate::sys::mmap::Mapping;

/// What can go wrong with a memory-mapped file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MmapError {
    /// The file does not exist.
    #[error("no file {path}: create it first (and give it a size)")]
    NotFound {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file's mode does not allow this access, or a read-only file was mapped read-write.
    #[error("permission denied: {what}: check the file's mode, or map it read-only")]
    PermissionDenied {
        /// What was attempted.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An empty file (nothing to map), a size too large, or an attempt to shrink with
    /// [`MmapFile::grow`].
    #[error("invalid size {size}: {reason}")]
    InvalidSize {
        /// The size found or asked for.
        size: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A failed access to the mapping: out of bounds, read-only, or not a valid value.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// Any other OS error.
    #[error(transparent)]
    Io(OsError),
    /// The file was truncated under the mapping (the constructor's promise was broken) and an
    /// access hit a lost page: the mapping now reads as zeros, private to this process. The
    /// bytes a read returned together with this error are not the file's.
    #[error("the mapped file was truncated under the mapping: its bytes are gone; map it again")]
    Truncated,
}

fn io_error(what: impl Into<String>, e: io::Error) -> MmapError {
    let what = what.into();
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => MmapError::PermissionDenied { what, source: e },
        _ => MmapError::Io(OsError::new(what, e)),
    }
}

/// A file mapped `MAP_SHARED`, unmapped on drop. See the module docs for the safety contract.
/// The accessors (`read_at`, `write_at`, `read`, `write`, `as_ptr`...) are those of the
/// [`MappedRegion`] it dereferences to.
#[derive(Debug)]
pub struct MmapFile {
    file: File,
    map: MappedRegion<MmapError>,
}

impl MmapFile {
    /// Opens the file at `path` read-write and maps all of it read-write.
    ///
    /// # Safety
    /// While the returned value exists, the file must not be truncated below the mapping's
    /// length, by this or any other process (a later access would raise `SIGBUS`).
    #[allow(unsafe_code)] // declares the caller's promise; no unsafe operation here
    pub unsafe fn open(path: impl AsRef<Path>) -> Result<MmapFile, MmapError> {
        let path = path.as_ref();
        let file = open_file(path, true)?;
        // SAFETY: forwarded to our caller (same contract).
        unsafe { MmapFile::map(file) }
    }

    /// Opens the file at `path` read-only and maps all of it read-only.
    ///
    /// # Safety
    /// As for [`MmapFile::open`]: the file must not be truncated below the mapping's length
    /// while the returned value exists.
    #[allow(unsafe_code)] // declares the caller's promise; no unsafe operation here
    pub unsafe fn open_read_only(path: impl AsRef<Path>) -> Result<MmapFile, MmapError> {
        let path = path.as_ref();
        let file = open_file(path, false)?;
        // SAFETY: forwarded to our caller (same contract).
        unsafe { MmapFile::map_read_only(file) }
    }

    /// Maps all of `file` read-write (it must be open for reading and writing).
    ///
    /// # Safety
    /// As for [`MmapFile::open`].
    #[allow(unsafe_code)] // declares the caller's promise; no unsafe operation here
    pub unsafe fn map(file: File) -> Result<MmapFile, MmapError> {
        map_file(file, true)
    }

    /// Maps all of `file` read-only.
    ///
    /// # Safety
    /// As for [`MmapFile::open`].
    #[allow(unsafe_code)] // declares the caller's promise; no unsafe operation here
    pub unsafe fn map_read_only(file: File) -> Result<MmapFile, MmapError> {
        map_file(file, false)
    }

    /// The mapped file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Writes the whole mapping to storage and waits (`msync(MS_SYNC)`).
    #[doc(alias = "msync")]
    pub fn flush(&self) -> Result<(), MmapError> {
        self.flush_range(0, self.len())
    }

    /// Schedules the whole mapping to be written to storage (`msync(MS_ASYNC)`).
    pub fn flush_async(&self) -> Result<(), MmapError> {
        self.flush_range_async(0, self.len())
    }

    /// Writes `[offset, offset+len)` to storage and waits (`MS_SYNC`; the range is widened to
    /// whole pages).
    pub fn flush_range(&self, offset: usize, len: usize) -> Result<(), MmapError> {
        region::check::<MmapError>(self.len(), offset, len)?;
        self.map
            .mapping()
            .flush(offset, len, true)
            .map_err(|e| io_error("msync(MS_SYNC)", e))
    }

    /// Schedules `[offset, offset+len)` to be written to storage (`MS_ASYNC`).
    pub fn flush_range_async(&self, offset: usize, len: usize) -> Result<(), MmapError> {
        region::check::<MmapError>(self.len(), offset, len)?;
        self.map
            .mapping()
            .flush(offset, len, false)
            .map_err(|e| io_error("msync(MS_ASYNC)", e))
    }

    /// Grows the file to `new_len` bytes (`ftruncate`; new bytes read as zero) and the mapping
    /// with it (`mremap`; the address may change). Other processes see the larger file and can
    /// follow with [`MmapFile::remap`]. Shrinking is refused ([`MmapError::InvalidSize`]): it
    /// would make other processes' mappings fault.
    pub fn grow(&mut self, new_len: u64) -> Result<(), MmapError> {
        if !self.is_writable() {
            return Err(AccessError::ReadOnly {
                what: "grow a read-only mapping",
            }
            .into());
        }
        let new = usize::try_from(new_len).map_err(|_| MmapError::InvalidSize {
            size: new_len,
            reason: "larger than this machine can map",
        })?;
        if new < self.len() {
            return Err(MmapError::InvalidSize {
                size: new_len,
                reason: "grow never shrinks: shrinking would make other mappings fault",
            });
        }
        let on_disk = sys::shm::fstat(&self.file)
            .map_err(|e| io_error("stat file", e))?
            .size;
        if on_disk < new_len {
            sys::shm::ftruncate(&self.file, new_len).map_err(|e| match e.raw_os_error() {
                Some(libc::EFBIG) | Some(libc::EINVAL) => MmapError::InvalidSize {
                    size: new_len,
                    reason: "the file system refused this size",
                },
                _ => io_error("grow file", e),
            })?;
        }
        self.map
            .mapping_mut()
            .remap(new)
            .map_err(|e| io_error("mremap", e))
    }

    /// Follows a size change made by another process: remaps to the file's current size
    /// (growing or shrinking the mapping). Returns the new length.
    pub fn remap(&mut self) -> Result<usize, MmapError> {
        let size = sys::shm::fstat(&self.file)
            .map_err(|e| io_error("stat file", e))?
            .size;
        let len = mappable_len(size)?;
        if len != self.len() {
            self.map
                .mapping_mut()
                .remap(len)
                .map_err(|e| io_error("mremap", e))?;
        }
        Ok(len)
    }
}

impl Deref for MmapFile {
    type Target = MappedRegion<MmapError>;

    fn deref(&self) -> &MappedRegion<MmapError> {
        &self.map
    }
}

impl DerefMut for MmapFile {
    fn deref_mut(&mut self) -> &mut MappedRegion<MmapError> {
        &mut self.map
    }
}

region::impl_region_error! {
    MmapError,
    read_failed(e) => io_error("read mapping", e),
    write_failed(e) => io_error("write mapping", e),
    truncated: MmapError::Truncated,
}

fn open_file(path: &Path, writable: bool) -> Result<File, MmapError> {
    OpenOptions::new()
        .read(true)
        .write(writable)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => MmapError::NotFound {
                path: path.to_owned(),
                source: e,
            },
            _ => io_error(format!("open {}", path.display()), e),
        })
}

fn mappable_len(size: u64) -> Result<usize, MmapError> {
    if size == 0 {
        return Err(MmapError::InvalidSize {
            size,
            reason: "the file is empty: give it a size (set_len) before mapping",
        });
    }
    usize::try_from(size).map_err(|_| MmapError::InvalidSize {
        size,
        reason: "larger than this machine can map",
    })
}

fn map_file(file: File, writable: bool) -> Result<MmapFile, MmapError> {
    let size = sys::shm::fstat(&file)
        .map_err(|e| io_error("stat file", e))?
        .size;
    let len = mappable_len(size)?;
    let map = Mapping::map_shared(&file, len, 0, writable).map_err(|e| {
        if writable && e.raw_os_error() == Some(libc::EACCES) {
            MmapError::PermissionDenied {
                what: "map read-write a file not opened for writing".into(),
                source: e,
            }
        } else {
            io_error("mmap", e)
        }
    })?;
    Ok(MmapFile {
        file,
        map: MappedRegion::new(map),
    })
}
