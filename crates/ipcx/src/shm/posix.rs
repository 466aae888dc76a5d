//! POSIX shared-memory objects: [`ShmOptions`] and the [`Shm`] handle, which unlinks the object
//! it created on drop.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::fd::{fd_map, fd_resize, fd_size};
use super::{AccessError, ShmError, ShmMap};
use crate::name::PosixName;
use crate::os_error::OsError;
use crate::sys;
use crate::sys::shm::OpenMode;
use crate::trust::Trust;

/// Default permission bits of new objects.
const DEFAULT_MODE: u32 = 0o600;

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
        Err(ShmError::Io(OsError::new(
            format!("create shared memory {name}"),
            io::Error::other("the object kept appearing and disappearing"),
        )))
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
            return Err(ShmError::Access(AccessError::ReadOnly {
                what: "resize a read-only handle",
            }));
        }
        fd_resize(&self.fd, size, self.name())
    }

    /// Maps the whole object read-write.
    pub fn map(&self) -> Result<ShmMap, ShmError> {
        if !self.writable {
            return Err(ShmError::Access(AccessError::ReadOnly {
                what: "map a read-only handle read-write",
            }));
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
/// `Shm` is a named object. Wrap a bare shared-memory fd in a [`Memfd`](super::Memfd) instead.)
impl From<Shm> for OwnedFd {
    fn from(mut shm: Shm) -> OwnedFd {
        if let Some(o) = shm.owner.take() {
            o.disarm();
        }
        shm.fd
    }
}
