//! System V shared-memory segments: `shmget`, `shmat`/`shmdt`, `shmctl(IPC_STAT, IPC_RMID)`.
//!
//! rustix has no System V IPC, so these are `libc` calls behind safe wrappers.

use std::io;

use super::cvt;
use super::mmap::{Mapping, Origin};

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

/// `shmat(id, NULL, read_only ? SHM_RDONLY : 0)`: the segment attached, detached on drop; the
/// length is the segment size reported by `IPC_STAT` just before attaching (System V segments
/// never change size).
pub(crate) fn attach(id: i32, read_only: bool) -> io::Result<Mapping> {
    let len = stat(id)?.size;
    let flags = if read_only { libc::SHM_RDONLY } else { 0 };
    // SAFETY: a null address lets the kernel choose a free range, so no existing memory is
    // replaced; the result is checked below and owned by the Mapping from then on.
    let ptr = unsafe { libc::shmat(id, std::ptr::null(), flags) };
    if ptr as isize == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: shmat just attached the segment at [ptr, ptr+len) (writable unless
    // `read_only`); the Mapping alone owns it and detaches it exactly once, in `Drop`.
    unsafe { Mapping::adopt(ptr.cast(), len, !read_only, Origin::Shmat) }
}
