//! Shared memory mapped into this process: the one owner of `mmap`/`munmap` and of System V
//! attachments (`shmdt`) in ipcx.

use std::io;
use std::ops::Deref;
use std::os::fd::AsFd;
use std::ptr::NonNull;

use rustix::mm::{MapFlags, ProtFlags};

use super::region::{Region, check_range};
use super::sigbus::Guard;

/// A mapped region (an `mmap` or a System V `shmat`), unmapped on drop (`munmap` or `shmdt`).
/// The accessors (`as_ptr`, `len`, `read_at`, ...) come from [`Region`] through `Deref`.
///
/// A shared mapping of a file or shared-memory object is guarded against `SIGBUS`
/// ([`super::sigbus`]): if the object shrinks under it, an access to the lost pages finds
/// zeros instead of killing the process, and [`Mapping::poisoned`] turns true. (A System V
/// segment never changes size, so an attachment needs no guard.)
#[derive(Debug)]
pub(crate) struct Mapping {
    region: Region,
    guard: Option<Guard>,
    origin: Origin,
}

/// How the range was mapped, and so how it is unmapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// `mmap`; unmapped with `munmap`.
    Mmap,
    /// `shmat`; detached with `shmdt`.
    Shmat,
}

impl Deref for Mapping {
    type Target = Region;

    fn deref(&self) -> &Region {
        &self.region
    }
}

impl Mapping {
    /// Maps `len` bytes of `fd` at `offset`, shared with every other mapping of the object.
    pub(crate) fn map_shared(
        fd: impl AsFd,
        len: usize,
        offset: u64,
        writable: bool,
    ) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let prot = if writable {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        // SAFETY:
        // - a null hint lets the kernel choose a fresh range, so no existing memory is replaced;
        // - `fd` is a valid open descriptor for the duration of the call;
        // - the result is checked, and on success we own the range [ptr, ptr+len).
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                MapFlags::SHARED,
                fd,
                offset,
            )?
        };
        // SAFETY: mmap just returned [ptr, ptr+len), shared, with the protection `writable`
        // asked for, and nothing else refers to it.
        let mut map = unsafe { Mapping::adopt(ptr.cast(), len, writable, Origin::Mmap)? };
        map.guard = Guard::register(map.as_ptr(), len, writable);
        Ok(map)
    }

    /// Whether the object behind the mapping shrank under it and an access hit a lost page:
    /// the whole mapping then reads as zeros (private to this process) and is useless.
    #[inline]
    pub(crate) fn poisoned(&self) -> bool {
        self.guard.as_ref().is_some_and(Guard::poisoned)
    }

    /// Maps `len` bytes of zeroed anonymous memory shared with children created by fork.
    pub(crate) fn anonymous_shared(len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: a null hint lets the kernel choose a fresh range; the result is checked and
        // we own [ptr, ptr+len) from then on.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
            )?
        };
        // SAFETY: mmap just returned [ptr, ptr+len), shared, readable and writable, and
        // nothing else refers to it.
        unsafe { Mapping::adopt(ptr.cast(), len, true, Origin::Mmap) }
    }

    /// Takes ownership of the range `[ptr, ptr+len)` that `mmap` or `shmat` (as `origin`
    /// says) just returned.
    ///
    /// # Safety
    /// `[ptr, ptr+len)` must be a fresh shared mapping made as `origin` says, readable (and
    /// writable when `writable`), owned by no one else: the Mapping unmaps it on drop.
    pub(super) unsafe fn adopt(
        ptr: *mut u8,
        len: usize,
        writable: bool,
        origin: Origin,
    ) -> io::Result<Mapping> {
        let ptr = NonNull::new(ptr).ok_or_else(|| io::Error::other("the mapping is null"))?;
        // SAFETY: the caller hands over [ptr, ptr+len), mapped as `writable` says, to this
        // Mapping, which alone owns it and unmaps it exactly once, in `Drop`.
        let region = unsafe { Region::new(ptr, len, writable) };
        Ok(Mapping {
            region,
            guard: None,
            origin,
        })
    }

    /// The mapping as a mutable byte slice; `None` for a read-only mapping.
    ///
    /// # Safety
    /// As for [`Region::as_mut_slice`]: no other process or thread may read or write the
    /// mapped bytes while the slice is alive, and the object behind the mapping must not shrink
    /// below the mapping's length.
    pub(crate) unsafe fn as_mut_slice(&mut self) -> Option<&mut [u8]> {
        // SAFETY: the caller upholds `Region::as_mut_slice`'s contract (stated above).
        unsafe { self.region.as_mut_slice() }
    }

    /// Faults every page of a writable mapping in now (`MADV_POPULATE_WRITE`), so that the
    /// first write to each page later costs no page fault (a latency spike of several
    /// microseconds each). Best effort: kernels before 5.14 lack it and nothing is done.
    pub(crate) fn populate(&self) {
        if !self.is_writable() {
            return;
        }
        // SAFETY: the range is exactly this mapping, which stays mapped for the call; the
        // advice only faults pages in (it changes no contents and no protection).
        let _ = unsafe {
            rustix::mm::madvise(
                self.as_ptr().cast(),
                self.len(),
                rustix::mm::Advice::LinuxPopulateWrite,
            )
        };
    }

    /// `msync` over `[offset, offset+len)` (widened to page boundaries): `MS_SYNC` when `sync`,
    /// else `MS_ASYNC`.
    pub(crate) fn flush(&self, offset: usize, len: usize, sync: bool) -> io::Result<()> {
        check_range(self.len(), offset, len)?;
        if len == 0 {
            return Ok(());
        }
        let page = rustix::param::page_size();
        let start = offset - offset % page;
        let flags = if sync {
            rustix::mm::MsyncFlags::SYNC
        } else {
            rustix::mm::MsyncFlags::ASYNC
        };
        // SAFETY: `start` is page aligned and [start, offset+len) lies inside the mapping
        // (the mapping itself starts on a page boundary); msync does not change the memory.
        unsafe { rustix::mm::msync(self.as_ptr().add(start).cast(), offset + len - start, flags)? };
        Ok(())
    }

    /// Resizes the mapping to `new_len` bytes with `mremap(MREMAP_MAYMOVE)`; the address may
    /// change. The caller makes sure the object behind it is at least `new_len` bytes long
    /// before touching the new bytes. `EINVAL` for a System V attachment, whose segment never
    /// changes size.
    pub(crate) fn remap(&mut self, new_len: usize) -> io::Result<()> {
        if new_len == 0 || self.origin != Origin::Mmap {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: [ptr, ptr+len) is our own page-aligned mapping; `&mut self` guarantees no
        // reference into it exists (borrowed slices borrow `self`); on success the old range
        // is no longer ours and we take the new one.
        let new = unsafe {
            rustix::mm::mremap(
                self.as_ptr().cast(),
                self.len(),
                new_len,
                rustix::mm::MremapFlags::MAYMOVE,
            )?
        };
        let new =
            NonNull::new(new.cast()).ok_or_else(|| io::Error::other("mremap returned null"))?;
        // SAFETY: mremap just moved our mapping to [new, new+new_len) with the same protection,
        // which this Mapping now owns alone and unmaps exactly once, in `Drop`.
        self.region = unsafe { Region::new(new, new_len, self.is_writable()) };
        if let Some(g) = &self.guard {
            g.moved(self.as_ptr(), new_len);
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // The range leaves the SIGBUS table before it is unmapped.
        drop(self.guard.take());
        match self.origin {
            // SAFETY: [ptr, ptr+len) was mapped by this Mapping and is unmapped exactly once
            // here; no reference into it outlives the Mapping (users borrow from it).
            Origin::Mmap => unsafe {
                let _ = rustix::mm::munmap(self.as_ptr().cast(), self.len());
            },
            // SAFETY: the address came from our shmat and is detached exactly once, here; no
            // reference into the segment outlives the Mapping.
            Origin::Shmat => unsafe {
                let _ = libc::shmdt(self.as_ptr().cast());
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_mapping_is_zeroed_and_writable() {
        let m = Mapping::anonymous_shared(4096).unwrap();
        assert_eq!(m.len(), 4096);
        // SAFETY: the mapping is 4096 bytes, readable and writable, and only this test uses it.
        unsafe {
            assert_eq!(*m.as_ptr(), 0);
            *m.as_ptr().add(4095) = 7;
            assert_eq!(*m.as_ptr().add(4095), 7);
        }
        assert!(Mapping::anonymous_shared(0).is_err());
    }
}
