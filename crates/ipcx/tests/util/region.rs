//! The bounds checks every mapped-memory type shares (one `MappedRegion` serves POSIX shared
//! memory, mapped files and System V attachments): one test body run over each of them.

use std::fmt::Debug;

use ipcx::shm::{AccessError, MappedRegion, RegionError};

/// Asserts the bounds of a writable 100-byte `region`: an access running past the end, one that
/// starts past it, one at an offset that overflows and a typed read past the end are
/// `OutOfBounds` naming the size; accesses that end at the end succeed. `access` picks the
/// shared cause out of the mechanism's error (its `Access` variant).
pub fn check_bounds<E: RegionError + Debug + std::fmt::Display>(
    region: &MappedRegion<E>,
    access: impl Fn(&E) -> Option<&AccessError>,
) {
    assert_eq!(region.len(), 100);
    let out_of_bounds = |e: E| {
        assert!(
            matches!(access(&e), Some(AccessError::OutOfBounds { size: 100, .. })),
            "{e:?}"
        );
        e
    };
    let mut buf = [0u8; 10];
    let e = out_of_bounds(region.read_at(95, &mut buf).unwrap_err());
    assert!(
        matches!(
            access(&e),
            Some(AccessError::OutOfBounds {
                offset: 95,
                len: 10,
                size: 100
            })
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("100-byte"), "{e}");
    out_of_bounds(region.write_at(96, b"12345").unwrap_err());
    out_of_bounds(region.write_at(101, b"").unwrap_err());
    out_of_bounds(region.write_at(usize::MAX, b"xy").unwrap_err());
    out_of_bounds(region.read::<u64>(93).unwrap_err());
    region.write_at(100, b"").unwrap();
    region.write_at(90, &[1; 10]).unwrap();
    assert_eq!(region.read::<u64>(92).unwrap(), u64::from_ne_bytes([1; 8]));
}
