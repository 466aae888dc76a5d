//! POSIX shared memory ([`Shm`]), memfds with seals ([`Memfd`]) and shared anonymous mappings
//! ([`ShmMap::anonymous`]).
//!
//! ```no_run
//! use ipcx::shm::Shm;
//!
//! # fn main() -> Result<(), ipcx::shm::ShmError> {
//! // Process A: create a 4 KiB segment (mode 0600) and write into it.
//! let shm = Shm::create_new("/telemetry", 4096)?;
//! let map = shm.map()?;
//! map.write_at(0, b"hello")?;
//! map.write::<u64>(8, &42)?;
//!
//! // Process B: open it and read.
//! let shm = Shm::open_read_only("/telemetry")?;
//! let map = shm.map_read_only()?;
//! let mut buf = [0u8; 5];
//! map.read_at(0, &mut buf)?;
//! let n: u64 = map.read(8)?;
//! assert_eq!((&buf, n), (b"hello", 42));
//! # Ok(()) }
//! ```
//!
//! # How the bytes are accessed, and why
//! Memory shared with another process can change at any moment, without any synchronisation
//! Rust knows about. Handing out `&[u8]` into such memory would be a data race in Rust's memory
//! model (the compiler may assume the bytes behind a shared reference do not change), so the safe
//! API never does. Instead:
//! * **copy-in / copy-out**: [`MappedRegion::read_at`], [`MappedRegion::write_at`], and the typed
//!   [`MappedRegion::read`] / [`MappedRegion::try_read`] / [`MappedRegion::write`] for plain-data
//!   types (via [`zerocopy`]: `FromBytes` / `TryFromBytes` to read, `IntoBytes + Immutable` to
//!   write). The copies use volatile loads and stores (word-sized where aligned), so the compiler
//!   never assumes anything about the shared bytes. A concurrent writer can make a copy observe a
//!   mix of old and new bytes (a torn read): synchronise with a semaphore, futex or atomics if that
//!   matters. Offsets and lengths are bounds-checked: outside the mapping is
//!   [`AccessError::OutOfBounds`], naming the mapping's size.
//! * **raw access** for zero-copy users: [`MappedRegion::as_ptr`], and the `unsafe`
//!   [`MappedRegion::as_slice`] / [`MappedRegion::as_mut_slice`], whose `# Safety` sections state
//!   what the caller must guarantee about the other processes.
//!
//! # A peer that shrinks the object
//! Whoever can write a shared-memory object can also shrink it (`ftruncate`). Touching a page of
//! a mapping that is no longer backed by the object raises `SIGBUS`, which would terminate the
//! process. ipcx catches it for its own mappings: the first access to a lost page replaces the
//! whole mapping with zero pages private to this process, and every copy through
//! [`MappedRegion::read_at`], [`MappedRegion::write_at`], [`MappedRegion::read`] and the others
//! then fails with [`ShmError::Truncated`] (a read that hit the truncation may have copied zeros
//! into the buffer before it failed). Raw access through [`MappedRegion::as_ptr`] or the slices
//! finds zeros, never a signal; check [`MappedRegion::is_truncated`] after it. Only a bounded
//! number of mappings (1024 at once, in one process) is guarded; past that a truncation raises
//! `SIGBUS` as before. When the peer is not trusted, a [`Memfd`] sealed with [`Seals::SHRINK`] (or
//! [`Memfd::seal_read_only`]) is still better: the kernel then refuses to shrink it.
//!
//! # Another user's object
//! An existing object is opened only if its owner is the caller's own user, unless
//! [`ShmOptions::trust`] widens that: another user's object (which anyone can pre-create in
//! `/dev/shm` with any mode) is [`ShmError::ForeignOwner`]. Symlinks are never followed.
//!
//! # Ownership
//! The handle that created a POSIX object ([`Shm::create_new`], or [`Shm::create`] when the
//! object did not exist) unlinks the name on drop, unless [`Shm::persist`] was called. Before
//! unlinking it checks that the name still refers to the object it created. Mappings outlive the
//! handle: unlinking only removes the name; the memory stays until the last mapping goes.
//!
//! # Anonymous shared memory and passing memory to another process
//! [`ShmMap::anonymous`] is `mmap(MAP_SHARED | MAP_ANONYMOUS)`: it has no name and no fd, and is
//! shared only with children created by `fork()` (they inherit the mapping). A process started
//! with `exec` does not inherit mappings; hand it a [`Memfd`] (or a [`Shm`] fd) instead, over a
//! Unix socket (`SCM_RIGHTS`) or by letting it inherit the descriptor, and let it map that.
//!
//! # References
//! [shm_overview(7)](https://man7.org/linux/man-pages/man7/shm_overview.7.html),
//! [memfd_create(2)](https://man7.org/linux/man-pages/man2/memfd_create.2.html),
//! [fcntl(2), "File Sealing"](https://man7.org/linux/man-pages/man2/fcntl.2.html),
//! [mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html).

mod error;
mod fd;
mod map;
mod memfd;
mod posix;

pub use crate::region::{AccessError, MappedRegion, RegionError};
pub use error::ShmError;
pub use map::ShmMap;
pub use memfd::{Memfd, Seals};
pub use posix::{Shm, ShmOptions};
