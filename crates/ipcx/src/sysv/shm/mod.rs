//! System V shared-memory segments (`shmget`, `shmat`, `shmdt`, `shmctl`).
//!
//! ```no_run
//! use ipcx::sysv::{Key, shm::Segment};
//!
//! # fn main() -> Result<(), ipcx::sysv::shm::SysvShmError> {
//! let seg = Segment::create_new(Key::new(0x1234), 4096)?; // mode 0600
//! let at = seg.attach()?;
//! at.write_at(0, b"hello")?;
//! println!("{} attached", seg.stat()?.attach_count);
//! # Ok(()) }
//! ```
//!
//! # Access
//! As for POSIX shared memory (see [`crate::shm`] for the reasoning), the safe API copies bytes in
//! and out with volatile accesses ([`MappedRegion::read_at`](crate::shm::MappedRegion::read_at),
//! [`MappedRegion::write_at`](crate::shm::MappedRegion::write_at), typed
//! [`MappedRegion::read`](crate::shm::MappedRegion::read) /
//! [`MappedRegion::write`](crate::shm::MappedRegion::write) via zerocopy) with bounds checks
//! ([`AccessError::OutOfBounds`](crate::shm::AccessError::OutOfBounds)); raw access is `unsafe`
//! ([`MappedRegion::as_slice`](crate::shm::MappedRegion::as_slice)). Unlike a POSIX object, a
//! System V segment never changes size, so an attachment cannot fault.
//!
//! # Removal and ownership
//! [`Segment::remove`] (`IPC_RMID`) only *marks* the segment: it disappears when the last
//! process detaches. Until then every existing attachment keeps working, its key no longer finds
//! it (`ipcs` shows key 0 and status `dest`), and [`Segment::stat`] reports
//! [`SegmentStat::marked_for_removal`]. The handle that created a segment removes it on drop
//! unless [`Segment::persist`] was called; handles that only opened it never remove it. Since
//! removal waits for the last detach, dropping the creator while others are attached is safe.
//! An [`Attached`] does not borrow its [`Segment`]: it stays valid (and keeps the segment alive)
//! until it is dropped (`shmdt`).
//!
//! # References
//! [shmget(2)](https://man7.org/linux/man-pages/man2/shmget.2.html),
//! [shmop(2)](https://man7.org/linux/man-pages/man2/shmop.2.html),
//! [shmctl(2)](https://man7.org/linux/man-pages/man2/shmctl.2.html),
//! [sysvipc(7)](https://man7.org/linux/man-pages/man7/sysvipc.7.html).

mod attached;
mod error;
mod options;
mod segment;

pub use attached::Attached;
pub use error::SysvShmError;
pub use options::SegmentOptions;
pub use segment::{Segment, SegmentStat};
