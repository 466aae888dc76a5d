//! Bounds-checked, typed access to a mapped region ([`Region`]), shared by the public mapping
//! types ([`ShmMap`](crate::shm::ShmMap), [`MmapFile`](crate::mmap::MmapFile),
//! [`Attached`](crate::sysv::shm::Attached)). Each of them keeps its own error type, built
//! through [`RegionError`], and its own documented public methods, which call these functions.

use std::io;

use zerocopy::{FromBytes, Immutable, IntoBytes, TryFromBytes};

use crate::sys::region::Region;

/// How a mapping type reports the failures of region access in its own error type.
pub(crate) trait RegionError: Sized {
    /// `len` bytes at `offset` do not fit in the `size`-byte region.
    fn out_of_bounds(offset: usize, len: usize, size: usize) -> Self;
    /// A write through a read-only region.
    fn write_read_only() -> Self;
    /// The bytes at `offset` are not a valid `type_name`.
    fn invalid_value(offset: usize, type_name: &'static str) -> Self;
    /// The copy out of the region failed.
    fn read_failed(source: io::Error) -> Self;
    /// The copy into the region failed.
    fn write_failed(source: io::Error) -> Self;
}

/// Implements [`RegionError`] for an error enum with the variants
/// `OutOfBounds { offset, len, size }`, `ReadOnly { what }` and `InvalidValue { offset,
/// type_name }`, given the `what` of a write through a read-only region and how copy failures
/// are reported.
macro_rules! impl_region_error {
    (
        $err:ty,
        write_read_only: $what:expr,
        read_failed($re:ident) => $read:expr,
        write_failed($we:ident) => $write:expr $(,)?
    ) => {
        impl $crate::region::RegionError for $err {
            fn out_of_bounds(offset: usize, len: usize, size: usize) -> Self {
                Self::OutOfBounds { offset, len, size }
            }

            fn write_read_only() -> Self {
                Self::ReadOnly { what: $what }
            }

            fn invalid_value(offset: usize, type_name: &'static str) -> Self {
                Self::InvalidValue { offset, type_name }
            }

            fn read_failed($re: ::std::io::Error) -> Self {
                $read
            }

            fn write_failed($we: ::std::io::Error) -> Self {
                $write
            }
        }
    };
}
pub(crate) use impl_region_error;

/// `out_of_bounds` unless `[offset, offset+len)` lies within `size` bytes.
pub(crate) fn check<E: RegionError>(size: usize, offset: usize, len: usize) -> Result<(), E> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(E::out_of_bounds(offset, len, size)),
    }
}

/// Copies `buf.len()` bytes at `offset` out of `region`.
pub(crate) fn read_at<E: RegionError>(
    region: &Region,
    offset: usize,
    buf: &mut [u8],
) -> Result<(), E> {
    check(region.len(), offset, buf.len())?;
    region.read_at(offset, buf).map_err(E::read_failed)
}

/// Copies `data` into `region` at `offset`.
pub(crate) fn write_at<E: RegionError>(
    region: &Region,
    offset: usize,
    data: &[u8],
) -> Result<(), E> {
    if !region.is_writable() {
        return Err(E::write_read_only());
    }
    check(region.len(), offset, data.len())?;
    region.write_at(offset, data).map_err(E::write_failed)
}

/// Reads a plain-data value at `offset` (unaligned is fine).
pub(crate) fn read<T: FromBytes, E: RegionError>(region: &Region, offset: usize) -> Result<T, E> {
    let (len, size) = (std::mem::size_of::<T>(), region.len());
    with_value_bytes::<T, _, _>(
        offset,
        |o, b| read_at(region, o, b),
        |b| T::read_from_bytes(b).ok(),
    )?
    .ok_or_else(|| E::out_of_bounds(offset, len, size))
}

/// Reads a value whose type has invalid bit patterns; `invalid_value` when the bytes are not a
/// valid `T`.
pub(crate) fn try_read<T: TryFromBytes, E: RegionError>(
    region: &Region,
    offset: usize,
) -> Result<T, E> {
    with_value_bytes::<T, _, _>(
        offset,
        |o, b| read_at(region, o, b),
        |b| T::try_read_from_bytes(b).ok(),
    )?
    .ok_or_else(|| E::invalid_value(offset, std::any::type_name::<T>()))
}

/// Writes a plain-data value at `offset` (unaligned is fine).
pub(crate) fn write<T: IntoBytes + Immutable, E: RegionError>(
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
