//! The size and mapping calls on a shared-memory fd that [`Shm`](super::Shm) and
//! [`Memfd`](super::Memfd) share.

use std::os::fd::OwnedFd;

use super::{AccessError, ShmError, ShmMap};
use crate::sys;
use crate::sys::mmap::Mapping;

pub(super) fn fd_size(fd: &OwnedFd, name: &str) -> Result<u64, ShmError> {
    sys::shm::fstat(fd)
        .map(|st| st.size)
        .map_err(|e| ShmError::from_io("stat", name, e))
}

pub(super) fn fd_resize(fd: &OwnedFd, size: u64, name: &str) -> Result<(), ShmError> {
    if size == 0 {
        return Err(ShmError::InvalidSize {
            size,
            reason: "a zero-byte object cannot be mapped; unlink it instead",
        });
    }
    if i64::try_from(size).is_err() {
        return Err(ShmError::InvalidSize {
            size,
            reason: "larger than the system allows",
        });
    }
    sys::shm::ftruncate(fd, size).map_err(|e| match e.raw_os_error() {
        Some(libc::EFBIG) => ShmError::InvalidSize {
            size,
            reason: "larger than the system allows",
        },
        Some(libc::EINVAL) | Some(libc::EBADF) => ShmError::Access(AccessError::ReadOnly {
            what: "resize through an fd opened read-only",
        }),
        _ => ShmError::from_io("resize", name, e),
    })
}

pub(super) fn fd_map(fd: &OwnedFd, writable: bool, name: &str) -> Result<ShmMap, ShmError> {
    let size = fd_size(fd, name)?;
    if size == 0 {
        return Err(ShmError::InvalidSize {
            size,
            reason: "the object is empty: resize it before mapping",
        });
    }
    let len = usize::try_from(size).map_err(|_| ShmError::InvalidSize {
        size,
        reason: "larger than this machine can map",
    })?;
    let map = Mapping::map_shared(fd, len, 0, writable).map_err(|e| {
        let what = if writable { "map read-write" } else { "map" };
        ShmError::from_io(what, name, e)
    })?;
    Ok(ShmMap::from_mapping(map))
}
