//! Bounds-checked, typed access to shared memory mapped into this process: [`MappedRegion`],
//! the one accessor surface of [`ShmMap`](crate::shm::ShmMap),
//! [`MmapFile`](crate::mmap::MmapFile) and [`Attached`](crate::sysv::shm::Attached). Each of
//! them holds a `MappedRegion` of its own error type (built through [`RegionError`], sharing
//! [`AccessError`]) and
//! dereferences to it.

use std::fmt;
use std::io;
use std::marker::PhantomData;

use zerocopy::{FromBytes, Immutable, IntoBytes, TryFromBytes};

use crate::sys::mmap::Mapping;
use crate::sys::region::Region;

/// A failed access to mapped memory: the vocabulary [`ShmError`](crate::shm::ShmError),
/// [`MmapError`](crate::mmap::MmapError) and [`SysvShmError`](crate::sysv::shm::SysvShmError)
/// share (each as its `Access` variant).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// An access outside the mapping.
    #[error(
        "{len} bytes at offset {offset} are out of bounds of the {size}-byte mapping: stay below \
         {size}"
    )]
    OutOfBounds {
        /// Offset of the access.
        offset: usize,
        /// Length of the access.
        len: usize,
        /// Size of the mapping.
        size: usize,
    },
    /// A write (or resize) through a read-only mapping or handle, or a writable mapping of a
    /// read-only handle.
    #[error("read-only: {what}: map (or open) it read-write to write to it")]
    ReadOnly {
        /// What was attempted.
        what: &'static str,
    },
    /// The bytes at `offset` are not a valid value of the type read
    /// ([`MappedRegion::try_read`]).
    #[error("the bytes at offset {offset} are not a valid {type_name}")]
    InvalidValue {
        /// Offset of the read.
        offset: usize,
        /// The type asked for.
        type_name: &'static str,
    },
}

/// How a mapping type reports the failures of region access in its own error type: the
/// [`AccessError`] cases through `From`, the rest as below. Implemented by
/// [`ShmError`](crate::shm::ShmError), [`MmapError`](crate::mmap::MmapError) and
/// [`SysvShmError`](crate::sysv::shm::SysvShmError) only.
pub trait RegionError: From<AccessError> + sealed::Sealed {
    /// The copy out of the region failed.
    #[doc(hidden)]
    fn read_failed(source: io::Error) -> Self;
    /// The copy into the region failed.
    #[doc(hidden)]
    fn write_failed(source: io::Error) -> Self;
    /// The object behind the region shrank under it (the mapping now reads as zeros).
    #[doc(hidden)]
    fn truncated() -> Self;
}

pub(crate) mod sealed {
    /// Keeps [`RegionError`](super::RegionError) to the crate's own error types.
    pub trait Sealed {}
}

/// Implements [`RegionError`] for an error enum with an `Access(#[from] AccessError)` variant,
/// given how copy failures are reported and the error of a truncated region.
macro_rules! impl_region_error {
    (
        $err:ty,
        read_failed($re:ident) => $read:expr,
        write_failed($we:ident) => $write:expr,
        truncated: $truncated:expr $(,)?
    ) => {
        impl $crate::region::sealed::Sealed for $err {}

        impl $crate::region::RegionError for $err {
            fn read_failed($re: ::std::io::Error) -> Self {
                $read
            }

            fn write_failed($we: ::std::io::Error) -> Self {
                $write
            }

            fn truncated() -> Self {
                $truncated
            }
        }
    };
}
pub(crate) use impl_region_error;

/// Shared memory mapped into this process (a POSIX object, memfd, file or anonymous mapping, or
/// an attached System V segment), unmapped on drop, with failures reported as `E`.
///
/// [`ShmMap`](crate::shm::ShmMap), [`MmapFile`](crate::mmap::MmapFile) and
/// [`Attached`](crate::sysv::shm::Attached) dereference to it. See [`crate::shm`] for why the
/// safe access copies bytes in and out instead of handing out `&[u8]`, and what happens when
/// another process shrinks the object.
pub struct MappedRegion<E> {
    map: Mapping,
    error: PhantomData<fn() -> E>,
}

impl<E> fmt::Debug for MappedRegion<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MappedRegion")
            .field("map", &self.map)
            .finish()
    }
}

impl<E: RegionError> MappedRegion<E> {
    /// Takes over a mapping.
    pub(crate) fn new(map: Mapping) -> MappedRegion<E> {
        MappedRegion {
            map,
            error: PhantomData,
        }
    }

    /// The mapping, for the owner's own calls (`msync`, `mremap`).
    pub(crate) fn mapping(&self) -> &Mapping {
        &self.map
    }

    /// The mapping, mutably (`mremap`).
    pub(crate) fn mapping_mut(&mut self) -> &mut Mapping {
        &mut self.map
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Always false: mappings have at least one byte.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Whether the mapping is writable.
    pub fn is_writable(&self) -> bool {
        self.map.is_writable()
    }

    /// Copies `buf.len()` bytes at `offset` out of the mapping (a `Truncated` error once
    /// another process shrank the object under it).
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), E> {
        read_at::<E>(&self.map, offset, buf)?;
        self.intact()
    }

    /// Copies `data` into the mapping at `offset`.
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), E> {
        write_at::<E>(&self.map, offset, data)?;
        self.intact()
    }

    /// Reads a plain-data value (any bytes are a valid `T`) at `offset`. `offset` need not be
    /// aligned: the bytes are copied.
    pub fn read<T: FromBytes>(&self, offset: usize) -> Result<T, E> {
        let v = read::<T, E>(&self.map, offset)?;
        self.intact().map(|()| v)
    }

    /// Reads a value at `offset` whose type has invalid bit patterns (`bool`, enums...): an
    /// `InvalidValue` error when the bytes are not a valid `T`.
    pub fn try_read<T: TryFromBytes>(&self, offset: usize) -> Result<T, E> {
        let v = try_read(&self.map, offset);
        self.intact()?;
        v
    }

    /// Writes a plain-data value at `offset` (unaligned is fine).
    pub fn write<T: IntoBytes + Immutable>(&self, offset: usize, value: &T) -> Result<(), E> {
        write::<T, E>(&self.map, offset, value)?;
        self.intact()
    }

    /// Whether another process shrank the object under this mapping and an access hit a lost
    /// page: the mapping then reads as zeros (see [`crate::shm`]). Never true for a System V
    /// attachment, whose segment cannot change size.
    pub fn is_truncated(&self) -> bool {
        self.map.poisoned()
    }

    fn intact(&self) -> Result<(), E> {
        if self.map.poisoned() {
            return Err(E::truncated());
        }
        Ok(())
    }

    /// The first byte of the mapping. Reading or writing through it is `unsafe` and subject to
    /// the same rules as [`MappedRegion::as_slice`] / [`MappedRegion::as_mut_slice`].
    pub fn as_ptr(&self) -> *mut u8 {
        self.map.as_ptr()
    }

    /// The mapping as a byte slice, for zero-copy reads.
    ///
    /// # Safety
    /// While the slice is alive, no process (including this one, through another mapping or
    /// thread, or `write(2)` to a mapped file) may write to the mapped bytes, and the object
    /// must not be shrunk below the mapping's length. For example: the object is a memfd sealed
    /// with [`Memfd::seal_read_only`](crate::shm::Memfd::seal_read_only), every attachment but
    /// this one is read-only, or the processes follow a protocol (a lock, a semaphore) that
    /// gives this process exclusive read access for the slice's lifetime.
    #[allow(unsafe_code)] // declaring the unsafe accessor; the unsafe operation lives in sys
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the caller upholds the contract above, which is the contract of
        // `Region::as_slice`.
        unsafe { self.map.as_slice() }
    }

    /// The mapping as a mutable byte slice, for zero-copy writes; a `ReadOnly` error for a
    /// read-only mapping.
    ///
    /// # Safety
    /// While the slice is alive, no other process or thread may read or write the mapped bytes,
    /// and the object must not be shrunk below the mapping's length.
    #[allow(unsafe_code)] // declaring the unsafe accessor; the unsafe operation lives in sys
    pub unsafe fn as_mut_slice(&mut self) -> Result<&mut [u8], E> {
        // SAFETY: the caller upholds the contract above, which is the contract of
        // `Mapping::as_mut_slice`.
        unsafe { self.map.as_mut_slice() }.ok_or_else(|| {
            E::from(AccessError::ReadOnly {
                what: "mutable slice of a read-only mapping",
            })
        })
    }
}

/// [`AccessError::OutOfBounds`] unless `[offset, offset+len)` lies within `size` bytes.
pub(crate) fn check<E: RegionError>(size: usize, offset: usize, len: usize) -> Result<(), E> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(AccessError::OutOfBounds { offset, len, size }.into()),
    }
}

/// Copies `buf.len()` bytes at `offset` out of `region`.
fn read_at<E: RegionError>(region: &Region, offset: usize, buf: &mut [u8]) -> Result<(), E> {
    check::<E>(region.len(), offset, buf.len())?;
    region.read_at(offset, buf).map_err(E::read_failed)
}

/// Copies `data` into `region` at `offset`.
fn write_at<E: RegionError>(region: &Region, offset: usize, data: &[u8]) -> Result<(), E> {
    if !region.is_writable() {
        return Err(AccessError::ReadOnly {
            what: "write through a read-only mapping",
        }
        .into());
    }
    check::<E>(region.len(), offset, data.len())?;
    region.write_at(offset, data).map_err(E::write_failed)
}

/// Reads a plain-data value at `offset` (unaligned is fine).
fn read<T: FromBytes, E: RegionError>(region: &Region, offset: usize) -> Result<T, E> {
    let (len, size) = (std::mem::size_of::<T>(), region.len());
    with_value_bytes::<T, _, _>(
        offset,
        |o, b| read_at::<E>(region, o, b),
        |b| T::read_from_bytes(b).ok(),
    )?
    .ok_or_else(|| AccessError::OutOfBounds { offset, len, size }.into())
}

/// Reads a value whose type has invalid bit patterns; [`AccessError::InvalidValue`] when the
/// bytes are not a valid `T`.
fn try_read<T: TryFromBytes, E: RegionError>(region: &Region, offset: usize) -> Result<T, E> {
    with_value_bytes::<T, _, _>(
        offset,
        |o, b| read_at::<E>(region, o, b),
        |b| T::try_read_from_bytes(b).ok(),
    )?
    .ok_or_else(|| {
        AccessError::InvalidValue {
            offset,
            type_name: std::any::type_name::<T>(),
        }
        .into()
    })
}

/// Writes a plain-data value at `offset` (unaligned is fine).
fn write<T: IntoBytes + Immutable, E: RegionError>(
    region: &Region,
    offset: usize,
    value: &T,
) -> Result<(), E> {
    write_at(region, offset, value.as_bytes())
}

/// Copies `size_of::<T>()` bytes with `read` into a buffer (on the stack when small) and hands
/// them to `f`.
fn with_value_bytes<T, E, R>(
    offset: usize,
    read: impl FnOnce(usize, &mut [u8]) -> Result<(), E>,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, E> {
    let n = std::mem::size_of::<T>();
    let mut stack = [0u8; 256];
    let mut heap;
    let buf: &mut [u8] = if n <= stack.len() {
        &mut stack[..n]
    } else {
        heap = vec![0u8; n];
        &mut heap
    };
    read(offset, buf)?;
    Ok(f(buf))
}
