//! Socket files: binding a path (reclaiming a stale socket, refusing anything else, the file
//! mode), removing the file the socket created, [`remove_socket_file`].

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::raw_addr;
use crate::socket::{SocketError, UnixAddr};
use crate::sys::socket::{self as sys, FileId, PathKind, UnixType};

/// Default socket file mode.
pub const DEFAULT_MODE: u32 = 0o600;

const BACKLOG: i32 = 128;

/// The socket file a bound socket created, removed on drop if still the same inode.
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    id: FileId,
    persist: bool,
    registration: Option<crate::registry::Registration>,
}

impl SocketFile {
    /// Keeps the file after drop.
    pub(crate) fn persist(&mut self) {
        self.persist = true;
        if let Some(r) = self.registration.take() {
            r.persist();
        }
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if self.persist {
            return;
        }
        if let Ok(PathKind::Socket(id)) = sys::lstat_kind(&self.path)
            && id == self.id
        {
            let _ = sys::unlink(&self.path);
        }
    }
}

/// Removes a socket file at `path`: refuses (and leaves untouched) anything that is not a
/// socket, and never follows a symbolic link. A missing path is [`SocketError::NotFound`].
pub fn remove_socket_file(path: impl AsRef<Path>) -> Result<(), SocketError> {
    let path = path.as_ref();
    let addr = path.display().to_string();
    match sys::lstat_kind(path).map_err(|e| SocketError::io(format!("lstat {addr}"), e))? {
        PathKind::Missing => Err(SocketError::NotFound {
            addr,
            hint: "there is no socket file to remove",
        }),
        PathKind::Symlink => Err(SocketError::NotASocket {
            addr,
            what: "a symbolic link",
        }),
        PathKind::Other => Err(SocketError::NotASocket {
            addr,
            what: "not a socket",
        }),
        PathKind::Socket(_) => {
            sys::unlink(path).map_err(|e| SocketError::io(format!("removing {addr}"), e))
        }
    }
}

/// Checks what is at `path` before binding: reclaims a stale socket, refuses anything else.
fn prepare_path(kind: UnixType, path: &Path) -> Result<(), SocketError> {
    let addr = path.display().to_string();
    let kind_at = sys::lstat_kind(path).map_err(|e| SocketError::io(format!("lstat {addr}"), e))?;
    let id = match kind_at {
        PathKind::Missing => return Ok(()),
        PathKind::Symlink => {
            return Err(SocketError::NotASocket {
                addr,
                what: "a symbolic link, never followed",
            });
        }
        PathKind::Other => {
            return Err(SocketError::NotASocket {
                addr,
                what: "not a socket",
            });
        }
        PathKind::Socket(id) => id,
    };
    // Probe: is anybody bound behind this socket file?
    let probe = sys::unix_socket(kind, true).map_err(|e| SocketError::io("socket(2)", e))?;
    let raw = sys::unix_path_addr(path).map_err(|e| SocketError::InvalidAddress {
        addr: addr.clone(),
        reason: e.to_string(),
    })?;
    match sys::connect_unix(probe.as_fd(), &raw) {
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            // Stale. Only our own user's stale socket is reclaimed: another user's file is not
            // ours to remove, even where the permissions would let us.
            let euid = crate::trust::euid();
            match sys::lstat_owner(path) {
                Ok(Some(owner)) if owner != euid => {
                    return Err(SocketError::ForeignSocketFile { addr, owner, euid });
                }
                Ok(_) => {}
                Err(e) => return Err(SocketError::io(format!("lstat {addr}"), e)),
            }
            // Remove it if it is still the file we looked at.
            if sys::lstat_kind(path).ok() == Some(PathKind::Socket(id)) {
                sys::unlink(path)
                    .map_err(|e| SocketError::io(format!("removing stale socket {addr}"), e))?;
            }
            Ok(())
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
            Err(SocketError::PermissionDenied { addr, source: e })
        }
        // Connected, or a live socket of another kind (EPROTOTYPE), or a full backlog (EAGAIN).
        _ => Err(SocketError::AddrInUse { addr }),
    }
}

/// Creates a socket of `kind` bound to `addr`; listens when `listen`.
pub(crate) fn bind_socket(
    kind: UnixType,
    addr: &UnixAddr,
    mode: u32,
    listen: bool,
    passcred: bool,
) -> Result<(OwnedFd, Option<SocketFile>), SocketError> {
    let raw = raw_addr(addr)?;
    let name = addr.to_string();
    if let UnixAddr::Path(p) = addr {
        prepare_path(kind, p)?;
    }
    let fd = sys::unix_socket(kind, listen).map_err(|e| SocketError::io("socket(2)", e))?;
    if passcred {
        sys::set_passcred(fd.as_fd(), true)
            .map_err(|e| SocketError::io("setsockopt(SO_PASSCRED)", e))?;
    }
    if let Err(e) = sys::bind_unix(fd.as_fd(), &raw) {
        return Err(match e.raw_os_error() {
            Some(libc::EADDRINUSE) => SocketError::AddrInUse { addr: name },
            Some(libc::ENOENT) => SocketError::Io {
                context: format!("binding {name}: the directory does not exist"),
                source: e,
            },
            _ => SocketError::io(format!("binding {name}"), e),
        });
    }
    let file = match addr {
        UnixAddr::Path(p) => match sys::chmod_socket_file(p, mode) {
            Ok(id) => Some(SocketFile {
                path: p.clone(),
                id,
                persist: false,
                registration: Some(crate::registry::Registration::new(format!(
                    "unix:{}",
                    std::path::absolute(p)
                        .unwrap_or_else(|_| p.clone())
                        .display()
                ))),
            }),
            Err(e) => {
                let _ = sys::unlink(p);
                return Err(SocketError::io(format!("setting the mode of {name}"), e));
            }
        },
        UnixAddr::Abstract(_) => None,
    };
    if listen {
        sys::listen(fd.as_fd(), BACKLOG)
            .map_err(|e| SocketError::io(format!("listen on {name}"), e))?;
    }
    Ok((fd, file))
}
