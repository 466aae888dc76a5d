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
//!   [`ShmError::OutOfBounds`], naming the mapping's size.
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

use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::name::{InvalidName, PosixName};
use crate::region;
pub use crate::region::{MappedRegion, RegionError};
use crate::sys;
use crate::sys::mmap::Mapping;
use crate::sys::shm::OpenMode;
use crate::trust::Trust;

/// Default permission bits of new objects.
const DEFAULT_MODE: u32 = 0o600;

/// Longest memfd name (the kernel's limit is 249 bytes, without the NUL).
const MEMFD_NAME_MAX: usize = 249;

/// What can go wrong with POSIX shared memory, memfds and their mappings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShmError {
    /// The name is not a valid POSIX name (or memfd label).
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// No object has this name.
    #[error(
        "no shared-memory object {name}: create it first (create/create_new) or check the name"
    )]
    NotFound {
        /// The name looked up.
        name: String,
        /// The OS error (`ENOENT`).
        #[source]
        source: io::Error,
    },
    /// `create_new` found an object with this name.
    #[error(
        "shared-memory object {name} already exists: open it, pick another name, or unlink it if it is stale"
    )]
    AlreadyExists {
        /// The name.
        name: String,
        /// The OS error (`EEXIST`).
        #[source]
        source: io::Error,
    },
    /// The object's mode does not allow this access (or the fd was opened read-only).
    #[error("permission denied: {what}: check the object's owner and mode")]
    PermissionDenied {
        /// What was attempted.
        what: String,
        /// The OS error (`EACCES`).
        #[source]
        source: io::Error,
    },
    /// A size of 0 (cannot be mapped) or one too large for this machine.
    #[error("invalid size {size}: {reason}")]
    InvalidSize {
        /// The size asked for or found.
        size: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An access outside the mapping.
    #[error(
        "{len} bytes at offset {offset} are out of bounds of the {size}-byte mapping: stay below {size} (or resize and map again)"
    )]
    OutOfBounds {
        /// Offset of the access.
        offset: usize,
        /// Length of the access.
        len: usize,
        /// Size of the mapping.
        size: usize,
    },
    /// A write through a read-only mapping, or a writable mapping of a read-only handle.
    #[error("read-only: {what}: map (or open) the object read-write to write to it")]
    ReadOnly {
        /// What was attempted.
        what: &'static str,
    },
    /// The bytes at `offset` are not a valid value of the type read ([`MappedRegion::try_read`]).
    #[error("the bytes at offset {offset} are not a valid {type_name}")]
    InvalidValue {
        /// Offset of the read.
        offset: usize,
        /// The type asked for.
        type_name: &'static str,
    },
    /// A memfd seal forbids this (`EPERM`): writing, growing, shrinking, or adding seals after
    /// `F_SEAL_SEAL`.
    #[error("{what}: forbidden by the memfd's seals")]
    Sealed {
        /// What was attempted.
        what: String,
        /// The OS error (`EPERM`).
        #[source]
        source: io::Error,
    },
    /// `F_SEAL_WRITE` while a writable shared mapping exists (`EBUSY`).
    #[error(
        "cannot seal against writes while a writable shared mapping exists: drop every writable ShmMap of this memfd (in every process) first"
    )]
    WritableMappingExists {
        /// The OS error (`EBUSY`).
        #[source]
        source: io::Error,
    },
    /// Any other OS error.
    #[error("{what}: {source}")]
    Io {
        /// What was attempted.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The object was shrunk (truncated) by another process under this mapping and an access
    /// hit a lost page: the mapping now reads as zeros and is private to this process. The
    /// bytes a read returned together with this error are not the object's; drop the mapping
    /// (and map again if the object was resized).
    #[error(
        "the shared-memory object behind this mapping was truncated by another process: its bytes are gone; map it again"
    )]
    Truncated,
    /// The object belongs to a user that [`ShmOptions::trust`] does not trust.
    #[error(transparent)]
    ForeignOwner(#[from] crate::trust::ForeignOwner),
}

impl ShmError {
    /// Names the errno cases a caller acts on; `name` is the object's name for the messages.
    fn from_io(what: impl Into<String>, name: &str, e: io::Error) -> ShmError {
        let what = what.into();
        match e.raw_os_error() {
            Some(libc::ENOENT) => ShmError::NotFound {
                name: name.to_owned(),
                source: e,
            },
            Some(libc::EEXIST) => ShmError::AlreadyExists {
                name: name.to_owned(),
                source: e,
            },
            Some(libc::EACCES) => ShmError::PermissionDenied {
                what: format!("{what} {name}"),
                source: e,
            },
            Some(libc::EPERM) => ShmError::Sealed {
                what: format!("{what} {name}"),
                source: e,
            },
            _ => ShmError::Io {
                what: format!("{what} {name}"),
                source: e,
            },
        }
    }
}

/// Options for opening or creating a POSIX shared-memory object, like
/// [`std::fs::OpenOptions`].
#[derive(Debug, Clone)]
pub struct ShmOptions {
    mode: u32,
    size: u64,
    read_only: bool,
    trust: Trust,
}

impl Default for ShmOptions {
    fn default() -> Self {
        ShmOptions {
            mode: DEFAULT_MODE,
            size: 0,
            read_only: false,
            trust: Trust::own_user(),
        }
    }
}

impl ShmOptions {
    /// Read-write, mode `0o600`, no size (creation needs [`ShmOptions::size`]).
    pub fn new() -> ShmOptions {
        ShmOptions::default()
    }

    /// Permission bits of a new object (applied exactly, whatever the umask). Default `0o600`.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }

    /// Size in bytes of a new object; must not be 0. Ignored when an existing object is opened.
    pub fn size(mut self, size: u64) -> Self {
        self.size = size;
        self
    }

    /// Open an existing object read-only (`O_RDONLY`): only read-only maps. Creation always
    /// opens read-write, since the creator sets the size.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Whose existing objects are opened (default: the caller's own uid only); another
    /// user's object is [`ShmError::ForeignOwner`].
    pub fn trust(mut self, trust: Trust) -> Self {
        self.trust = trust;
        self
    }

    /// Opens an existing object ([`ShmError::NotFound`] when there is none).
    #[doc(alias = "shm_open")]
    pub fn open(&self, name: &str) -> Result<Shm, ShmError> {
        let pname = PosixName::new(name)?;
        let fd = sys::shm::shm_open(&pname, OpenMode::Open, !self.read_only, 0)
            .map_err(|e| ShmError::from_io("open shared memory", name, e))?;
        self.opened(fd, pname)
    }

    /// An existing object's handle, once its owner is trusted.
    fn opened(&self, fd: OwnedFd, pname: PosixName) -> Result<Shm, ShmError> {
        let st = sys::shm::fstat(&fd).map_err(|e| ShmError::from_io("stat", pname.as_str(), e))?;
        self.trust
            .check_owner(&format!("posix-shm:{pname}"), st.uid)?;
        Ok(Shm::opened(fd, pname, !self.read_only))
    }

    /// Opens the object, creating it with [`ShmOptions::size`] bytes if it does not exist. The
    /// handle owns (unlinks on drop) the object only if it created it ([`Shm::is_owner`]).
    ///
    /// An existing object is opened as it is (its size and mode are not changed or checked;
    /// its owner must be trusted, see [`ShmOptions::trust`]): whoever can create it first
    /// decides them. Use [`ShmOptions::create_new`] when
    /// the object must be a fresh one of yours.
    pub fn create(&self, name: &str) -> Result<Shm, ShmError> {
        let pname = PosixName::new(name)?;
        self.check_size()?;
        // O_CREAT|O_EXCL first, so that we know whether we created the object; if it exists,
        // open it; if it vanished in between, try again.
        for _ in 0..64 {
            match self.create_exclusive(&pname) {
                Err(ShmError::AlreadyExists { .. }) => {}
                other => return other,
            }
            match sys::shm::shm_open(&pname, OpenMode::Open, !self.read_only, 0) {
                Ok(fd) => return self.opened(fd, pname),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(ShmError::from_io("open shared memory", name, e)),
            }
        }
        Err(ShmError::Io {
            what: format!("create shared memory {name}"),
            source: io::Error::other("the object kept appearing and disappearing"),
        })
    }

    /// Creates a new object of [`ShmOptions::size`] bytes ([`ShmError::AlreadyExists`] if the
    /// name is taken).
    pub fn create_new(&self, name: &str) -> Result<Shm, ShmError> {
        let pname = PosixName::new(name)?;
        self.check_size()?;
        self.create_exclusive(&pname)
    }

    fn check_size(&self) -> Result<(), ShmError> {
        if self.size == 0 {
            return Err(ShmError::InvalidSize {
                size: 0,
                reason: "a shared-memory object needs at least one byte: pass a size",
            });
        }
        if usize::try_from(self.size).is_err() || i64::try_from(self.size).is_err() {
            return Err(ShmError::InvalidSize {
                size: self.size,
                reason: "larger than this machine can map",
            });
        }
        Ok(())
    }

    fn create_exclusive(&self, pname: &PosixName) -> Result<Shm, ShmError> {
        let name = pname.as_str();
        let fd = sys::shm::shm_open(pname, OpenMode::CreateNew, true, self.mode)
            .map_err(|e| ShmError::from_io("create shared memory", name, e))?;
        // From here on the object is ours: the owner guard unlinks it if sizing fails.
        let st = match sys::shm::fstat(&fd) {
            Ok(st) => st,
            Err(e) => {
                let _ = sys::shm::shm_unlink(pname);
                return Err(ShmError::from_io("stat", name, e));
            }
        };
        let shm = Shm {
            fd,
            name: pname.clone(),
            writable: true,
            owner: Some(Owner {
                registration: Some(crate::registry::Registration::new(format!(
                    "posix-shm:{pname}"
                ))),
                name: pname.clone(),
                dev: st.dev,
                ino: st.ino,
                armed: true,
            }),
        };
        sys::shm::fchmod(&shm.fd, self.mode)
            .map_err(|e| ShmError::from_io("set the mode of", name, e))?;
        sys::shm::ftruncate(&shm.fd, self.size).map_err(|e| match e.raw_os_error() {
            Some(libc::EFBIG) | Some(libc::EINVAL) => ShmError::InvalidSize {
                size: self.size,
                reason: "the system refused this size",
            },
            _ => ShmError::from_io("set the size of", name, e),
        })?;
        Ok(Shm {
            writable: !self.read_only,
            ..shm
        })
    }
}

/// A POSIX shared-memory object (`shm_open`): a named, resizable piece of memory in `/dev/shm`.
///
/// Map it with [`Shm::map`] or [`Shm::map_read_only`]; the handle itself only holds the fd.
#[derive(Debug)]
pub struct Shm {
    fd: OwnedFd,
    name: PosixName,
    writable: bool,
    owner: Option<Owner>,
}

impl Shm {
    fn opened(fd: OwnedFd, name: PosixName, writable: bool) -> Shm {
        Shm {
            fd,
            name,
            writable,
            owner: None,
        }
    }

    /// Options: mode, size, read-only.
    pub fn options() -> ShmOptions {
        ShmOptions::new()
    }

    /// Opens an existing object read-write.
    pub fn open(name: &str) -> Result<Shm, ShmError> {
        ShmOptions::new().open(name)
    }

    /// Opens an existing object read-only.
    pub fn open_read_only(name: &str) -> Result<Shm, ShmError> {
        ShmOptions::new().read_only(true).open(name)
    }

    /// Opens the object, creating it (mode `0o600`, `size` bytes) if it does not exist.
    pub fn create(name: &str, size: u64) -> Result<Shm, ShmError> {
        ShmOptions::new().size(size).create(name)
    }

    /// Creates a new object (mode `0o600`, `size` bytes); fails if the name is taken.
    pub fn create_new(name: &str, size: u64) -> Result<Shm, ShmError> {
        ShmOptions::new().size(size).create_new(name)
    }

    /// Removes a name (`shm_unlink`). Existing handles and mappings keep working.
    #[doc(alias = "shm_unlink")]
    pub fn unlink(name: &str) -> Result<(), ShmError> {
        let pname = PosixName::new(name)?;
        sys::shm::shm_unlink(&pname).map_err(|e| match e.raw_os_error() {
            // /dev/shm is sticky: only the owner (or root) may unlink.
            Some(libc::EPERM) => ShmError::PermissionDenied {
                what: format!("unlink {name} (owned by another user)"),
                source: e,
            },
            _ => ShmError::from_io("unlink", name, e),
        })
    }

    /// Keeps the object after this handle is dropped (it stays until [`Shm::unlink`]).
    pub fn persist(mut self) -> Shm {
        if let Some(o) = self.owner.take() {
            o.disarm();
        }
        self
    }

    /// Whether this handle created the object and will unlink it on drop.
    pub fn is_owner(&self) -> bool {
        self.owner.is_some()
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The current size in bytes (`fstat`); another process may have changed it.
    pub fn size(&self) -> Result<u64, ShmError> {
        fd_size(&self.fd, self.name())
    }

    /// Sets the size (`ftruncate`); new bytes read as zero. Existing mappings keep their length:
    /// map again to see a larger object. Shrinking below a mapping makes accesses to the lost
    /// pages fault (see the module docs).
    pub fn resize(&self, size: u64) -> Result<(), ShmError> {
        if !self.writable {
            return Err(ShmError::ReadOnly {
                what: "resize a read-only handle",
            });
        }
        fd_resize(&self.fd, size, self.name())
    }

    /// Maps the whole object read-write.
    pub fn map(&self) -> Result<ShmMap, ShmError> {
        if !self.writable {
            return Err(ShmError::ReadOnly {
                what: "map a read-only handle read-write",
            });
        }
        fd_map(&self.fd, true, self.name())
    }

    /// Maps the whole object read-only.
    pub fn map_read_only(&self) -> Result<ShmMap, ShmError> {
        fd_map(&self.fd, false, self.name())
    }

    /// Whether the handle was opened read-write.
    pub fn is_writable(&self) -> bool {
        self.writable
    }
}

/// Unlinks the name on drop if it still refers to the object this handle created (someone may
/// have unlinked it and created another object under the same name).
#[derive(Debug)]
struct Owner {
    name: PosixName,
    registration: Option<crate::registry::Registration>,
    dev: u64,
    ino: u64,
    armed: bool,
}

impl Owner {
    /// Stops the unlink on drop.
    fn disarm(mut self) {
        self.armed = false;
        if let Some(r) = self.registration.take() {
            r.persist();
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let current = sys::shm::shm_open(&self.name, OpenMode::Open, false, 0)
            .and_then(sys::shm::fstat)
            .ok();
        if let Some(st) = current
            && (st.dev, st.ino) == (self.dev, self.ino)
        {
            let _ = sys::shm::shm_unlink(&self.name);
        }
    }
}

impl AsFd for Shm {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Shm {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Takes the fd; the object is no longer unlinked on drop. (There is no `From<OwnedFd>`: a
/// `Shm` is a named object. Wrap a bare shared-memory fd in a [`Memfd`] instead.)
impl From<Shm> for OwnedFd {
    fn from(mut shm: Shm) -> OwnedFd {
        if let Some(o) = shm.owner.take() {
            o.disarm();
        }
        shm.fd
    }
}

fn fd_size(fd: &OwnedFd, name: &str) -> Result<u64, ShmError> {
    sys::shm::fstat(fd)
        .map(|st| st.size)
        .map_err(|e| ShmError::from_io("stat", name, e))
}

fn fd_resize(fd: &OwnedFd, size: u64, name: &str) -> Result<(), ShmError> {
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
        Some(libc::EINVAL) | Some(libc::EBADF) => ShmError::ReadOnly {
            what: "resize through an fd opened read-only",
        },
        _ => ShmError::from_io("resize", name, e),
    })
}

fn fd_map(fd: &OwnedFd, writable: bool, name: &str) -> Result<ShmMap, ShmError> {
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
    Ok(ShmMap {
        map: MappedRegion::new(map),
    })
}

/// A shared mapping of a [`Shm`], a [`Memfd`], or anonymous shared memory; unmapped on drop.
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
        Ok(ShmMap {
            map: MappedRegion::new(map),
        })
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
    noun: "mapping",
    read_failed(e) => ShmError::from_io("read", "mapping", e),
    write_failed(e) => ShmError::from_io("write", "mapping", e),
    truncated: ShmError::Truncated,
}

/// File seals of a [`Memfd`] (`F_SEAL_*`), combined with `|`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Seals(u32);

impl Seals {
    /// No seal.
    pub const NONE: Seals = Seals(0);
    /// `F_SEAL_SEAL`: no further seals can be added.
    pub const SEAL: Seals = Seals(sys::shm::seal::SEAL);
    /// `F_SEAL_SHRINK`: the size cannot decrease.
    pub const SHRINK: Seals = Seals(sys::shm::seal::SHRINK);
    /// `F_SEAL_GROW`: the size cannot increase.
    pub const GROW: Seals = Seals(sys::shm::seal::GROW);
    /// `F_SEAL_WRITE`: the contents cannot change (no `write`, no writable shared mapping).
    /// Adding it fails with [`ShmError::WritableMappingExists`] while a writable shared mapping
    /// exists.
    pub const WRITE: Seals = Seals(sys::shm::seal::WRITE);
    /// `F_SEAL_FUTURE_WRITE`: no new writes or writable mappings, but existing writable
    /// mappings keep working (a producer keeps writing, receivers cannot).
    pub const FUTURE_WRITE: Seals = Seals(sys::shm::seal::FUTURE_WRITE);

    /// The raw `F_SEAL_*` bits.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Seals from raw `F_SEAL_*` bits (unknown bits are kept).
    pub fn from_bits(bits: u32) -> Seals {
        Seals(bits)
    }

    /// Whether every seal in `other` is in `self`.
    pub fn contains(self, other: Seals) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether there is no seal.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for Seals {
    type Output = Seals;
    fn bitor(self, rhs: Seals) -> Seals {
        Seals(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Seals {
    fn bitor_assign(&mut self, rhs: Seals) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Seals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Seals::SEAL, "SEAL"),
            (Seals::SHRINK, "SHRINK"),
            (Seals::GROW, "GROW"),
            (Seals::WRITE, "WRITE"),
            (Seals::FUTURE_WRITE, "FUTURE_WRITE"),
        ];
        let mut rest = self.0;
        let mut first = true;
        f.write_str("Seals(")?;
        for (s, n) in names {
            if self.contains(s) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(n)?;
                first = false;
                rest &= !s.0;
            }
        }
        if rest != 0 {
            if !first {
                f.write_str(" | ")?;
            }
            write!(f, "{rest:#x}")?;
        } else if first {
            f.write_str("NONE")?;
        }
        f.write_str(")")
    }
}

/// An anonymous memory file (`memfd_create` with `MFD_CLOEXEC | MFD_ALLOW_SEALING`): shared
/// memory without a name, passed to other processes as an fd, and sealable.
///
/// A typical hand-off: create, write, drop the writable maps, [`Memfd::seal_read_only`], send
/// the fd over a Unix socket. The receiver wraps it with `Memfd::from(OwnedFd)` and calls
/// [`Memfd::map_read_only`]; it can check [`Memfd::seals`] before trusting the contents not to
/// change. Even if it reopens the fd read-write (through `/proc`), the kernel refuses writes,
/// writable mappings and size changes.
///
/// ```no_run
/// use ipcx::shm::Memfd;
///
/// # fn main() -> Result<(), ipcx::shm::ShmError> {
/// let memfd = Memfd::create("config", 4096)?;
/// memfd.map()?.write_at(0, b"frozen")?; // the map is dropped at the end of the statement
/// memfd.seal_read_only()?;
/// // send memfd's fd to the peer...
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Memfd {
    fd: OwnedFd,
}

impl Memfd {
    /// Creates a memfd of `size` bytes (zeroed). `name` is a label shown in `/proc/PID/fd`
    /// (`memfd:NAME`); it need not be unique (at most 249 bytes, no NUL).
    #[doc(alias = "memfd_create")]
    pub fn create(name: &str, size: u64) -> Result<Memfd, ShmError> {
        if name.len() > MEMFD_NAME_MAX {
            return Err(InvalidName {
                name: name.to_owned(),
                reason: "a memfd name is at most 249 bytes; shorten it",
            }
            .into());
        }
        let cname = std::ffi::CString::new(name).map_err(|_| InvalidName {
            name: name.to_owned(),
            reason: "the name contains a NUL byte",
        })?;
        if size == 0 {
            return Err(ShmError::InvalidSize {
                size,
                reason: "a memfd needs at least one byte: pass a size",
            });
        }
        let fd = sys::shm::memfd_create(&cname)
            .map_err(|e| ShmError::from_io("memfd_create", name, e))?;
        let memfd = Memfd { fd };
        memfd.resize(size)?;
        Ok(memfd)
    }

    /// The current size in bytes.
    pub fn size(&self) -> Result<u64, ShmError> {
        fd_size(&self.fd, "memfd")
    }

    /// Sets the size (`ftruncate`); [`ShmError::Sealed`] when a grow/shrink seal forbids it.
    pub fn resize(&self, size: u64) -> Result<(), ShmError> {
        fd_resize(&self.fd, size, "memfd")
    }

    /// Maps the whole memfd read-write ([`ShmError::Sealed`] under `F_SEAL_WRITE` or
    /// `F_SEAL_FUTURE_WRITE`; [`ShmError::PermissionDenied`] if the fd was opened read-only).
    pub fn map(&self) -> Result<ShmMap, ShmError> {
        fd_map(&self.fd, true, "memfd")
    }

    /// Maps the whole memfd read-only.
    ///
    /// The mapping is made through a read-only reopening of the memfd (`/proc/self/fd/N`), so
    /// that it does not stop a later [`Seals::WRITE`]: the kernel counts every shared mapping of
    /// a writable fd as possibly writable (it could be `mprotect`ed), and refuses the seal with
    /// `EBUSY` while one exists. Without `/proc`, the memfd's own fd is mapped.
    pub fn map_read_only(&self) -> Result<ShmMap, ShmError> {
        match std::fs::File::open(format!("/proc/self/fd/{}", self.fd.as_raw_fd())) {
            Ok(ro) => fd_map(&OwnedFd::from(ro), false, "memfd"),
            Err(_) => fd_map(&self.fd, false, "memfd"),
        }
    }

    /// Adds seals (`fcntl(F_ADD_SEALS)`). Seals can only be added, never removed.
    ///
    /// # Errors
    /// [`ShmError::WritableMappingExists`] when adding [`Seals::WRITE`] while a writable shared
    /// mapping exists (unmap first); [`ShmError::Sealed`] after [`Seals::SEAL`].
    #[doc(alias = "F_ADD_SEALS")]
    pub fn seal(&self, seals: Seals) -> Result<(), ShmError> {
        sys::shm::add_seals(&self.fd, seals.0).map_err(|e| match e.raw_os_error() {
            Some(libc::EBUSY) => ShmError::WritableMappingExists { source: e },
            Some(libc::EINVAL) => ShmError::Io {
                what: "seal: this fd does not support sealing (not a memfd created with \
                       MFD_ALLOW_SEALING)"
                    .to_owned(),
                source: e,
            },
            _ => ShmError::from_io(format!("add seals {seals:?} to"), "memfd", e),
        })
    }

    /// The seals in force (`fcntl(F_GET_SEALS)`).
    #[doc(alias = "F_GET_SEALS")]
    pub fn seals(&self) -> Result<Seals, ShmError> {
        sys::shm::get_seals(&self.fd)
            .map(Seals)
            .map_err(|e| ShmError::from_io("read the seals of", "memfd", e))
    }

    /// Freezes the memfd: seals `GROW | SHRINK | WRITE`, then `SEAL` so that nothing can be
    /// changed any more. Drop every writable mapping first.
    pub fn seal_read_only(&self) -> Result<(), ShmError> {
        self.seal(Seals::GROW | Seals::SHRINK | Seals::WRITE)?;
        self.seal(Seals::SEAL)
    }

    /// Whether the memfd is frozen as by [`Memfd::seal_read_only`]: no write, grow or shrink
    /// can ever happen again. A receiver checks this before trusting the contents.
    pub fn is_sealed_read_only(&self) -> Result<bool, ShmError> {
        let s = self.seals()?;
        Ok(s.contains(Seals::GROW | Seals::SHRINK | Seals::WRITE | Seals::SEAL))
    }
}

impl AsFd for Memfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Memfd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Wraps a received fd: a memfd, or any shared-memory fd (`shm_open`) or regular file, which
/// then has no seals ([`Memfd::seals`] fails for non-memfds).
impl From<OwnedFd> for Memfd {
    fn from(fd: OwnedFd) -> Memfd {
        Memfd { fd }
    }
}

impl From<Memfd> for OwnedFd {
    fn from(m: Memfd) -> OwnedFd {
        m.fd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_debug_and_ops() {
        let s = Seals::GROW | Seals::WRITE;
        assert!(s.contains(Seals::GROW));
        assert!(!s.contains(Seals::SEAL));
        assert_eq!(format!("{s:?}"), "Seals(GROW | WRITE)");
        assert_eq!(format!("{:?}", Seals::NONE), "Seals(NONE)");
    }

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
            Err(ShmError::OutOfBounds { size: 100, .. })
        ));
        assert!(matches!(
            m.write_at(usize::MAX, b"x"),
            Err(ShmError::OutOfBounds { .. })
        ));
        m.write_at(0, &[2]).unwrap();
        assert!(matches!(
            m.try_read::<bool>(0),
            Err(ShmError::InvalidValue { .. })
        ));
        assert!(matches!(
            ShmMap::anonymous(0),
            Err(ShmError::InvalidSize { .. })
        ));
    }
}
