//! System V shared-memory segments: `shmget`, `shmat`/`shmdt`, `shmctl(IPC_STAT, IPC_RMID)`.
//!
//! rustix has no System V IPC, so these are `libc` calls behind safe wrappers.

use std::io;
use std::ptr::NonNull;

use super::cvt;
use super::mmap::{check_range, volatile_copy_in, volatile_copy_out};

/// `SHM_DEST` from `<linux/shm.h>`: the segment is marked for removal at its last detach.
const SHM_DEST: u32 = 0o1000;

/// `shmget(key, size, flags)`: the segment id.
pub(crate) fn shmget(key: i32, size: usize, flags: i32) -> io::Result<i32> {
    // SAFETY: shmget takes no pointers; any argument values are checked by the kernel.
    cvt(unsafe { libc::shmget(key, size, flags) })
}

/// `shmctl(id, IPC_RMID)`: marks the segment for removal (it goes at the last detach).
pub(crate) fn remove(id: i32) -> io::Result<()> {
    // SAFETY: IPC_RMID ignores the buffer argument, so a null pointer is allowed.
    cvt(unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) }).map(drop)
}

/// The fields of `struct shmid_ds` that ipcx reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShmStat {
    pub(crate) key: i32,
    pub(crate) size: usize,
    pub(crate) nattch: u64,
    pub(crate) cpid: i32,
    pub(crate) lpid: i32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) cuid: u32,
    pub(crate) cgid: u32,
    pub(crate) mode: u32,
    pub(crate) marked_for_removal: bool,
    pub(crate) atime: i64,
    pub(crate) dtime: i64,
    pub(crate) ctime: i64,
}

/// `shmctl(id, IPC_STAT)`.
pub(crate) fn stat(id: i32) -> io::Result<ShmStat> {
    // SAFETY: shmid_ds is plain integers, for which all-zero bytes are a valid value.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable shmid_ds that outlives the call.
    cvt(unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) })?;
    let mode = u32::from(ds.shm_perm.mode);
    Ok(ShmStat {
        key: ds.shm_perm.__key,
        size: ds.shm_segsz,
        nattch: ds.shm_nattch,
        cpid: ds.shm_cpid,
        lpid: ds.shm_lpid,
        uid: ds.shm_perm.uid,
        gid: ds.shm_perm.gid,
        cuid: ds.shm_perm.cuid,
        cgid: ds.shm_perm.cgid,
        mode: mode & 0o777,
        marked_for_removal: mode & SHM_DEST != 0,
        atime: ds.shm_atime,
        dtime: ds.shm_dtime,
        ctime: ds.shm_ctime,
    })
}

/// A segment attached with `shmat`, detached on drop.
#[derive(Debug)]
pub(crate) struct Attachment {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
}

// SAFETY: an Attachment is an owned address range; its bytes are only reached through volatile
// copies or the caller-checked unsafe slice accessors.
unsafe impl Send for Attachment {}
// SAFETY: as above; `&Attachment` only allows volatile copies and raw pointers.
unsafe impl Sync for Attachment {}

impl Attachment {
    /// `shmat(id, NULL, read_only ? SHM_RDONLY : 0)`; the length is the segment size reported
    /// by `IPC_STAT` just before attaching (System V segments never change size).
    pub(crate) fn attach(id: i32, read_only: bool) -> io::Result<Attachment> {
        let len = stat(id)?.size;
        let flags = if read_only { libc::SHM_RDONLY } else { 0 };
        // SAFETY: a null address lets the kernel choose a free range, so no existing memory
        // is replaced; the result is checked below and owned by the Attachment from then on.
        let ptr = unsafe { libc::shmat(id, std::ptr::null(), flags) };
        if ptr as isize == -1 {
            return Err(io::Error::last_os_error());
        }
        let Some(ptr) = NonNull::new(ptr.cast::<u8>()) else {
            return Err(io::Error::other("shmat returned null"));
        };
        Ok(Attachment {
            ptr,
            len,
            writable: !read_only,
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_writable(&self) -> bool {
        self.writable
    }

    /// Volatile copy out of the segment; `EINVAL` when the range is outside it.
    pub(crate) fn read_at(&self, offset: usize, buf: &mut [u8]) -> io::Result<()> {
        check_range(self.len, offset, buf.len())?;
        // SAFETY: the range lies inside the attached segment (checked), which stays attached
        // while `self` is borrowed.
        unsafe { volatile_copy_out(self.ptr.as_ptr().add(offset), buf) };
        Ok(())
    }

    /// Volatile copy into the segment; `EACCES` when attached read-only, `EINVAL` out of range.
    pub(crate) fn write_at(&self, offset: usize, data: &[u8]) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::from_raw_os_error(libc::EACCES));
        }
        check_range(self.len, offset, data.len())?;
        // SAFETY: the range lies inside the segment (checked), attached writable (checked),
        // and stays attached while `self` is borrowed.
        unsafe { volatile_copy_in(self.ptr.as_ptr().add(offset), data) };
        Ok(())
    }

    /// # Safety
    /// No process or thread may write the segment while the slice is alive.
    pub(crate) unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: valid for `len` readable bytes while attached; the caller guarantees no writes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// `None` when attached read-only.
    ///
    /// # Safety
    /// No other process or thread may read or write the segment while the slice is alive.
    pub(crate) unsafe fn as_mut_slice(&mut self) -> Option<&mut [u8]> {
        if !self.writable {
            return None;
        }
        // SAFETY: valid for `len` writable bytes while attached; `&mut self` and the caller's
        // promise exclude every other access.
        Some(unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) })
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // SAFETY: the address came from our shmat and is detached exactly once, here; no
        // reference into the segment outlives `self`.
        unsafe {
            let _ = libc::shmdt(self.ptr.as_ptr().cast());
        }
    }
}
