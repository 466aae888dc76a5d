//! Memory mappings: the one owner of `mmap`/`munmap` in ipcx.

use std::io;
use std::os::fd::AsFd;
use std::ptr::NonNull;

use rustix::mm::{MapFlags, ProtFlags};

/// A mapped region, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
}

// SAFETY: a Mapping is an owned address range; moving or sharing the owner between threads is
// fine. Access to the bytes goes through raw pointers whose users synchronise themselves.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only hands out raw pointers and the length.
unsafe impl Sync for Mapping {}

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
        Ok(Mapping {
            ptr: NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?,
            len,
            writable,
        })
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
        Ok(Mapping {
            ptr: NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?,
            len,
            writable: true,
        })
    }

    /// The first byte of the mapping.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The mapping's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping was made with `PROT_WRITE`.
    pub(crate) fn is_writable(&self) -> bool {
        self.writable
    }

    /// Copies `buf.len()` bytes starting at `offset` out of the mapping (volatile reads).
    pub(crate) fn read_at(&self, offset: usize, buf: &mut [u8]) -> io::Result<()> {
        check_range(self.len, offset, buf.len())?;
        // SAFETY: [offset, offset+buf.len()) lies inside the mapping (checked above), which is
        // readable and stays mapped while `self` is borrowed.
        unsafe { volatile_copy_out(self.ptr.as_ptr().add(offset), buf) };
        Ok(())
    }

    /// Copies `data` into the mapping at `offset` (volatile writes). Fails with `EACCES` on a
    /// read-only mapping instead of faulting.
    pub(crate) fn write_at(&self, offset: usize, data: &[u8]) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::from_raw_os_error(libc::EACCES));
        }
        check_range(self.len, offset, data.len())?;
        // SAFETY: the range lies inside the mapping (checked above), the mapping is writable
        // (checked above) and stays mapped while `self` is borrowed.
        unsafe { volatile_copy_in(self.ptr.as_ptr().add(offset), data) };
        Ok(())
    }

    /// The mapping as a byte slice.
    ///
    /// # Safety
    /// No process or thread may write to the mapped bytes while the slice is alive, and the
    /// object behind the mapping must not shrink below the mapping's length.
    pub(crate) unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the pointer is valid for `len` readable bytes while `self` lives; the caller
        // guarantees the bytes do not change and stay backed while the slice exists.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The mapping as a mutable byte slice; `None` for a read-only mapping.
    ///
    /// # Safety
    /// No other process or thread may read or write the mapped bytes while the slice is
    /// alive, and the object behind the mapping must not shrink below the mapping's length.
    pub(crate) unsafe fn as_mut_slice(&mut self) -> Option<&mut [u8]> {
        if !self.writable {
            return None;
        }
        // SAFETY: the pointer is valid for `len` writable bytes while `self` lives, `&mut self`
        // excludes other references through this Mapping, and the caller guarantees that no
        // one else touches the bytes while the slice exists.
        Some(unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) })
    }

    /// `msync` over `[offset, offset+len)` (widened to page boundaries): `MS_SYNC` when `sync`,
    /// else `MS_ASYNC`.
    pub(crate) fn flush(&self, offset: usize, len: usize, sync: bool) -> io::Result<()> {
        check_range(self.len, offset, len)?;
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
        unsafe {
            rustix::mm::msync(
                self.ptr.as_ptr().add(start).cast(),
                offset + len - start,
                flags,
            )?
        };
        Ok(())
    }

    /// Resizes the mapping to `new_len` bytes with `mremap(MREMAP_MAYMOVE)`; the address may
    /// change. The caller makes sure the object behind it is at least `new_len` bytes long
    /// before touching the new bytes.
    pub(crate) fn remap(&mut self, new_len: usize) -> io::Result<()> {
        if new_len == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: [ptr, ptr+len) is our own page-aligned mapping; `&mut self` guarantees no
        // reference into it exists (borrowed slices borrow `self`); on success the old range
        // is no longer ours and we take the new one.
        let new = unsafe {
            rustix::mm::mremap(
                self.ptr.as_ptr().cast(),
                self.len,
                new_len,
                rustix::mm::MremapFlags::MAYMOVE,
            )?
        };
        self.ptr =
            NonNull::new(new.cast()).ok_or_else(|| io::Error::other("mremap returned null"))?;
        self.len = new_len;
        Ok(())
    }
}

/// Fails with `EINVAL` unless `[offset, offset+len)` lies within `size` bytes.
pub(crate) fn check_range(size: usize, offset: usize, len: usize) -> io::Result<()> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(io::Error::from_raw_os_error(libc::EINVAL)),
    }
}

const WORD: usize = std::mem::size_of::<usize>();

/// Copies `dst.len()` bytes from shared memory at `src` into `dst` with volatile loads (whole
/// aligned words where possible). Volatile accesses are never elided, merged or invented by the
/// compiler, so a concurrent writer in another process can only make us read a mix of old and
/// new bytes, never make the compiler assume something false about the memory.
///
/// # Safety
/// `src` must be valid for reads of `dst.len()` bytes for the duration of the call.
pub(crate) unsafe fn volatile_copy_out(src: *const u8, dst: &mut [u8]) {
    let n = dst.len();
    let mut i = 0;
    while i < n && (src as usize).wrapping_add(i) % WORD != 0 {
        // SAFETY: i < n, so src+i is in the readable range the caller promised.
        dst[i] = unsafe { std::ptr::read_volatile(src.add(i)) };
        i += 1;
    }
    while i + WORD <= n {
        // SAFETY: [src+i, src+i+WORD) is in range and src+i is aligned for usize (loop above).
        let w = unsafe { std::ptr::read_volatile(src.add(i).cast::<usize>()) };
        dst[i..i + WORD].copy_from_slice(&w.to_ne_bytes());
        i += WORD;
    }
    while i < n {
        // SAFETY: i < n, in range.
        dst[i] = unsafe { std::ptr::read_volatile(src.add(i)) };
        i += 1;
    }
}

/// Copies `src` into shared memory at `dst` with volatile stores (whole aligned words where
/// possible); see [`volatile_copy_out`].
///
/// # Safety
/// `dst` must be valid for writes of `src.len()` bytes for the duration of the call, and no
/// Rust reference may point into that range.
pub(crate) unsafe fn volatile_copy_in(dst: *mut u8, src: &[u8]) {
    let n = src.len();
    let mut i = 0;
    while i < n && (dst as usize).wrapping_add(i) % WORD != 0 {
        // SAFETY: i < n, so dst+i is in the writable range the caller promised.
        unsafe { std::ptr::write_volatile(dst.add(i), src[i]) };
        i += 1;
    }
    while i + WORD <= n {
        let mut w = [0u8; WORD];
        w.copy_from_slice(&src[i..i + WORD]);
        // SAFETY: [dst+i, dst+i+WORD) is in range and dst+i is aligned for usize.
        unsafe { std::ptr::write_volatile(dst.add(i).cast::<usize>(), usize::from_ne_bytes(w)) };
        i += WORD;
    }
    while i < n {
        // SAFETY: i < n, in range.
        unsafe { std::ptr::write_volatile(dst.add(i), src[i]) };
        i += 1;
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: [ptr, ptr+len) was mapped by this Mapping and is unmapped exactly once here;
        // no reference into it outlives the Mapping (users borrow from it).
        unsafe {
            let _ = rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len);
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
