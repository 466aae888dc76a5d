//! A borrowed view of shared memory mapped into this process: the accessors of a
//! [`Mapping`](super::mmap::Mapping) (an `mmap`'d region or a `shmat`'d segment). The owner
//! maps the range, keeps a `Region` describing it, and unmaps it (munmap or shmdt) in its own
//! `Drop`.

use std::io;
use std::ptr::NonNull;

/// An address range `[ptr, ptr+len)` mapped readable (and writable when `writable`) for as long
/// as the owner of the `Region` keeps it.
#[derive(Debug)]
pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
}

// SAFETY: a Region describes an owned address range; moving or sharing its owner between
// threads is fine. Its bytes are only reached through volatile copies, raw pointers whose users
// synchronise themselves, or the caller-checked unsafe slice accessors.
unsafe impl Send for Region {}
// SAFETY: as above; `&Region` only allows volatile copies and hands out raw pointers.
unsafe impl Sync for Region {}

impl Region {
    /// Describes `[ptr, ptr+len)`.
    ///
    /// # Safety
    /// The range must be mapped readable (and writable when `writable`) for as long as the
    /// `Region` (or a value replacing it) is used, and must not be reachable through any other
    /// owner: the caller unmaps it exactly once, after the last use of the `Region`.
    pub(crate) unsafe fn new(ptr: NonNull<u8>, len: usize, writable: bool) -> Region {
        Region { ptr, len, writable }
    }

    /// The first byte of the region.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The region's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the region was mapped writable (`PROT_WRITE`, or attached without
    /// `SHM_RDONLY`).
    pub(crate) fn is_writable(&self) -> bool {
        self.writable
    }

    /// Copies `buf.len()` bytes starting at `offset` out of the region (volatile reads);
    /// `EINVAL` when the range is outside it.
    pub(crate) fn read_at(&self, offset: usize, buf: &mut [u8]) -> io::Result<()> {
        check_range(self.len, offset, buf.len())?;
        // SAFETY: [offset, offset+buf.len()) lies inside the region (checked above), which is
        // readable and stays mapped while `self` is borrowed (`Region::new`'s contract).
        unsafe { volatile_copy_out(self.ptr.as_ptr().add(offset), buf) };
        Ok(())
    }

    /// Copies `data` into the region at `offset` (volatile writes). Fails with `EACCES` on a
    /// read-only region instead of faulting, `EINVAL` when the range is outside it.
    pub(crate) fn write_at(&self, offset: usize, data: &[u8]) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::from_raw_os_error(libc::EACCES));
        }
        check_range(self.len, offset, data.len())?;
        // SAFETY: the range lies inside the region (checked above), the region is writable
        // (checked above) and stays mapped while `self` is borrowed (`Region::new`'s contract).
        unsafe { volatile_copy_in(self.ptr.as_ptr().add(offset), data) };
        Ok(())
    }

    /// The region as a byte slice.
    ///
    /// # Safety
    /// No process or thread may write to the bytes while the slice is alive, and the object
    /// behind the region must not shrink below the region's length.
    pub(crate) unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the pointer is valid for `len` readable bytes while `self` lives; the caller
        // guarantees the bytes do not change and stay backed while the slice exists.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The region as a mutable byte slice; `None` for a read-only region.
    ///
    /// # Safety
    /// No other process or thread may read or write the bytes while the slice is alive, and the
    /// object behind the region must not shrink below the region's length.
    pub(crate) unsafe fn as_mut_slice(&mut self) -> Option<&mut [u8]> {
        if !self.writable {
            return None;
        }
        // SAFETY: the pointer is valid for `len` writable bytes while `self` lives, `&mut self`
        // excludes other references through this Region, and the caller guarantees that no
        // one else touches the bytes while the slice exists.
        Some(unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) })
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
unsafe fn volatile_copy_out(src: *const u8, dst: &mut [u8]) {
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
unsafe fn volatile_copy_in(dst: *mut u8, src: &[u8]) {
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
