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
