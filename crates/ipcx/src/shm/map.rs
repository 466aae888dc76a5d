//! [`ShmMap`]: a shared mapping of a POSIX object, a memfd or anonymous shared memory.

use std::ops::{Deref, DerefMut};

use super::{MappedRegion, ShmError};
use crate::region;
use crate::sys::mmap::Mapping;

/// A shared mapping of a [`Shm`](super::Shm), a [`Memfd`](super::Memfd), or anonymous shared
/// memory; unmapped on drop.
///
/// It does not borrow the handle it came from: it stays valid after the handle is dropped.
/// See the module docs for why access is copy-in/copy-out. The accessors (`read_at`,
/// `write_at`, `read`, `write`, `as_ptr`...) are those of the [`MappedRegion`] it dereferences
/// to.
#[derive(Debug)]
pub struct ShmMap {
    map: MappedRegion<ShmError>,
}

impl ShmMap {
    /// `len` bytes of zeroed anonymous shared memory (`MAP_SHARED | MAP_ANONYMOUS`), read-write.
    /// It is shared with children created by `fork()` after this call, and with no one else.
    pub fn anonymous(len: usize) -> Result<ShmMap, ShmError> {
        if len == 0 {
            return Err(ShmError::InvalidSize {
                size: 0,
                reason: "a mapping needs at least one byte",
            });
        }
        let map = Mapping::anonymous_shared(len)
            .map_err(|e| ShmError::from_io("map anonymous shared memory", "", e))?;
        Ok(ShmMap::from_mapping(map))
    }

    /// Takes over a mapping of a shared-memory object.
    pub(super) fn from_mapping(map: Mapping) -> ShmMap {
        ShmMap {
            map: MappedRegion::new(map),
        }
    }
}

impl Deref for ShmMap {
    type Target = MappedRegion<ShmError>;

    fn deref(&self) -> &MappedRegion<ShmError> {
        &self.map
    }
}

impl DerefMut for ShmMap {
    fn deref_mut(&mut self) -> &mut MappedRegion<ShmError> {
        &mut self.map
    }
}

region::impl_region_error! {
    ShmError,
    read_failed(e) => ShmError::from_io("read", "mapping", e),
    write_failed(e) => ShmError::from_io("write", "mapping", e),
    truncated: ShmError::Truncated,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::AccessError;

    #[test]
    fn anonymous_map_copies_and_bounds() {
        let m = ShmMap::anonymous(100).unwrap();
        m.write_at(3, b"abcdefghijklmnopq").unwrap();
        let mut b = [0u8; 17];
        m.read_at(3, &mut b).unwrap();
        assert_eq!(&b, b"abcdefghijklmnopq");
        m.write::<u64>(91, &0x0102030405060708).unwrap();
        assert_eq!(m.read::<u64>(91).unwrap(), 0x0102030405060708);
        assert!(matches!(
            m.read::<u64>(93),
            Err(ShmError::Access(AccessError::OutOfBounds { size: 100, .. }))
        ));
        assert!(matches!(
            m.write_at(usize::MAX, b"x"),
            Err(ShmError::Access(AccessError::OutOfBounds { .. }))
        ));
        m.write_at(0, &[2]).unwrap();
        assert!(matches!(
            m.try_read::<bool>(0),
            Err(ShmError::Access(AccessError::InvalidValue { .. }))
        ));
        assert!(matches!(
            ShmMap::anonymous(0),
            Err(ShmError::InvalidSize { .. })
        ));
    }
}
