//! Memfds ([`Memfd`]): anonymous memory files passed as fds, and their seals ([`Seals`]).

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::fd::{fd_map, fd_resize, fd_size};
use super::{ShmError, ShmMap};
use crate::name::InvalidName;
use crate::os_error::OsError;
use crate::sys;

/// Longest memfd name (the kernel's limit is 249 bytes, without the NUL).
const MEMFD_NAME_MAX: usize = 249;

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
            Some(libc::EINVAL) => ShmError::Io(OsError::new(
                "seal: this fd does not support sealing (not a memfd created with \
                 MFD_ALLOW_SEALING)",
                e,
            )),
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
}
