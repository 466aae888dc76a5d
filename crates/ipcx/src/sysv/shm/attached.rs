//! [`Attached`]: a segment attached to this process, with the accessors of a
//! [`MappedRegion`].

use std::io;
use std::ops::{Deref, DerefMut};

use super::SysvShmError;
use crate::os_error::OsError;
use crate::region::{self, MappedRegion};
use crate::sys::mmap::Mapping;

/// An attached segment, detached on drop (`shmdt`). Independent of the [`Segment`](super::Segment)
/// handle. The accessors (`read_at`, `write_at`, `read`, `write`, `as_ptr`...) are those of the
/// [`MappedRegion`] it dereferences to.
#[derive(Debug)]
pub struct Attached {
    a: MappedRegion<SysvShmError>,
}

impl Attached {
    /// Takes over an attachment.
    pub(super) fn new(a: Mapping) -> Attached {
        Attached {
            a: MappedRegion::new(a),
        }
    }
}

impl Deref for Attached {
    type Target = MappedRegion<SysvShmError>;

    fn deref(&self) -> &MappedRegion<SysvShmError> {
        &self.a
    }
}

impl DerefMut for Attached {
    fn deref_mut(&mut self) -> &mut MappedRegion<SysvShmError> {
        &mut self.a
    }
}

region::impl_region_error! {
    SysvShmError,
    read_failed(e) => SysvShmError::Io(OsError::new("read segment", e)),
    write_failed(e) => SysvShmError::Io(OsError::new("write segment", e)),
    // An attachment is never guarded against truncation (a segment cannot change size), so
    // this error is never made.
    truncated: SysvShmError::Io(OsError::new(
        "access segment",
        io::Error::other("the segment's memory is gone"),
    )),
}
