//! [`Fifo`]: the named object (creating it with [`FifoOptions`], owning it, removing it).

use std::path::{Path, PathBuf};

use rustix::fs::FileType;

use super::error::{check_path, kind_name};
use super::{FifoError, open_reader, open_writer_wait};
use crate::pipe::{PipeReader, PipeWriter};
use crate::sys;
use crate::wait::Wait;

/// Options for creating a FIFO: mode and trust of a FIFO that already exists.
#[derive(Debug, Clone)]
pub struct FifoOptions {
    mode: u32,
    allow_foreign_owner: bool,
}

impl Default for FifoOptions {
    fn default() -> Self {
        FifoOptions {
            mode: 0o600,
            allow_foreign_owner: false,
        }
    }
}

impl FifoOptions {
    /// Default options: mode `0o600`, a FIFO owned by another user is refused.
    pub fn new() -> FifoOptions {
        FifoOptions::default()
    }

    /// The permission bits of a new FIFO (applied exactly, whatever the umask).
    pub fn mode(mut self, mode: u32) -> FifoOptions {
        self.mode = mode & 0o7777;
        self
    }

    /// Accept an existing FIFO owned by another user (by default [`FifoError::ForeignOwner`]).
    pub fn allow_foreign_owner(mut self, allow: bool) -> FifoOptions {
        self.allow_foreign_owner = allow;
        self
    }

    /// Creates the FIFO, or uses the FIFO already at `path`.
    pub fn create(&self, path: impl AsRef<Path>) -> Result<Fifo, FifoError> {
        self.create_impl(path.as_ref(), false)
    }

    /// Creates the FIFO; [`FifoError::AlreadyExists`] if anything exists at `path`.
    pub fn create_new(&self, path: impl AsRef<Path>) -> Result<Fifo, FifoError> {
        self.create_impl(path.as_ref(), true)
    }

    fn create_impl(&self, path: &Path, new: bool) -> Result<Fifo, FifoError> {
        check_path(path)?;
        match sys::fifo::mkfifo(path, self.mode) {
            Ok(()) => {
                // Apply the exact mode (mkfifo applies the umask) through a descriptor, and
                // remember which FIFO we made.
                // Not a read open: that would be an end of the FIFO, and a writer already waiting
                // in `open` would connect to it, write and leave, and its bytes would be
                // discarded when this descriptor closed, before any reader opened.
                let fd = sys::fifo::open_path(path)
                    .map_err(|e| FifoError::from_io("opening the new fifo", path, e))?;
                let info =
                    sys::fifo::fstat(&fd).map_err(|e| FifoError::from_io("inspecting", path, e))?;
                if info.kind != FileType::Fifo {
                    return Err(FifoError::NotAFifo {
                        path: path.to_path_buf(),
                        kind: kind_name(info.kind),
                    });
                }
                sys::fifo::chmod_path_fd(&fd, self.mode)
                    .map_err(|e| FifoError::from_io("setting the mode of", path, e))?;
                Ok(Fifo {
                    path: path.to_path_buf(),
                    remove_on_drop: true,
                    id: (info.dev, info.ino),
                    registration: Some(crate::registry::Registration::new(format!(
                        "fifo:{}",
                        std::path::absolute(path)
                            .unwrap_or_else(|_| path.to_path_buf())
                            .display()
                    ))),
                })
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                let info = sys::fifo::lstat(path)
                    .map_err(|e| FifoError::from_io("inspecting", path, e))?;
                if info.kind != FileType::Fifo {
                    return Err(FifoError::NotAFifo {
                        path: path.to_path_buf(),
                        kind: kind_name(info.kind),
                    });
                }
                if new {
                    return Err(FifoError::AlreadyExists {
                        path: path.to_path_buf(),
                    });
                }
                let euid = sys::fifo::euid();
                if info.uid != euid && !self.allow_foreign_owner {
                    return Err(FifoError::ForeignOwner {
                        path: path.to_path_buf(),
                        owner: info.uid,
                        euid,
                    });
                }
                Ok(Fifo {
                    path: path.to_path_buf(),
                    remove_on_drop: false,
                    id: (info.dev, info.ino),
                    registration: None,
                })
            }
            Err(e) => Err(FifoError::from_io("creating fifo", path, e)),
        }
    }
}

/// A FIFO in the filesystem. The handle that created it removes it on drop unless
/// [`persist`](Self::persist) was called; a handle to a FIFO that already existed never removes
/// it.
#[derive(Debug)]
pub struct Fifo {
    path: PathBuf,
    remove_on_drop: bool,
    id: (u64, u64),
    registration: Option<crate::registry::Registration>,
}

impl Fifo {
    /// Creates the FIFO with mode `0o600`, or uses the FIFO already there (see
    /// [`FifoOptions::create`]).
    ///
    /// # Errors
    /// [`FifoError::NotAFifo`] if the path is something else (left untouched),
    /// [`FifoError::ForeignOwner`], [`FifoError::PermissionDenied`], [`FifoError::NotFound`]
    /// when the directory does not exist.
    #[doc(alias = "mkfifo")]
    pub fn create(path: impl AsRef<Path>) -> Result<Fifo, FifoError> {
        FifoOptions::new().create(path)
    }

    /// Creates the FIFO with mode `0o600`; [`FifoError::AlreadyExists`] if the path exists.
    pub fn create_new(path: impl AsRef<Path>) -> Result<Fifo, FifoError> {
        FifoOptions::new().create_new(path)
    }

    /// Options: mode, foreign owners.
    pub fn options() -> FifoOptions {
        FifoOptions::new()
    }

    /// The FIFO's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the FIFO when this handle is dropped.
    pub fn persist(mut self) -> Fifo {
        self.remove_on_drop = false;
        if let Some(r) = self.registration.take() {
            r.persist();
        }
        self
    }

    /// Whether this handle owns the FIFO: it created it and removes it on drop (false for a
    /// FIFO it found, and after [`persist`](Self::persist)).
    pub fn is_owner(&self) -> bool {
        self.remove_on_drop
    }

    /// Removes the FIFO now (whoever created it), if the path still names this FIFO.
    pub fn remove(mut self) -> Result<(), FifoError> {
        self.remove_on_drop = false;
        self.remove_if_ours()
    }

    fn remove_if_ours(&self) -> Result<(), FifoError> {
        let info = sys::fifo::lstat(&self.path)
            .map_err(|e| FifoError::from_io("inspecting", &self.path, e))?;
        if info.kind != FileType::Fifo || (info.dev, info.ino) != self.id {
            // Someone replaced it: not ours to remove.
            return Err(FifoError::NotAFifo {
                path: self.path.clone(),
                kind: if info.kind == FileType::Fifo {
                    "different fifo (replaced since)"
                } else {
                    kind_name(info.kind)
                },
            });
        }
        sys::fifo::unlink(&self.path).map_err(|e| FifoError::from_io("removing", &self.path, e))
    }

    /// Opens the read end (see [`open_reader`]).
    pub fn open_reader(&self) -> Result<PipeReader, FifoError> {
        open_reader(&self.path)
    }

    /// Opens the write end, waiting for a reader as `wait` allows (see [`open_writer_wait`]).
    pub fn open_writer_wait(&self, wait: Wait) -> Result<PipeWriter, FifoError> {
        open_writer_wait(&self.path, wait)
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        if self.remove_on_drop {
            let _ = self.remove_if_ours();
        }
    }
}
