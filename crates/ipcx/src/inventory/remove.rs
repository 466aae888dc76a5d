//! Removing one object ([`remove`], [`remove_checked`]).

use std::fs;
use std::os::unix::fs::FileTypeExt;

use super::{ObjectName, SysvRef};
use crate::registry::{self, Identity};

/// Why removing an object failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoveError {
    /// No such object.
    #[error("no {0}: nothing to remove (ipcx ls lists what exists)")]
    NotFound(String),
    /// The caller may not remove it.
    #[error("permission denied removing {0}: only its owner (or root) can")]
    PermissionDenied(String),
    /// The path holds something else (a FIFO name that is a regular file, a symlink...).
    #[error("{what} is not a {expected}; left untouched")]
    WrongType {
        /// The object.
        what: String,
        /// What it should have been.
        expected: &'static str,
    },
    /// Any other failure.
    #[error("removing {what}: {message}")]
    Other {
        /// The object.
        what: String,
        /// What went wrong.
        message: String,
    },
    /// The name now refers to another object than the one expected (see [`remove_checked`]):
    /// left untouched.
    #[error(
        "{what} is now another object ({found}) than the one expected ({expected}); left untouched"
    )]
    Replaced {
        /// The object.
        what: String,
        /// The identity expected.
        expected: Identity,
        /// The identity found.
        found: Identity,
    },
}

/// Removes one object, and forgets the owner record this user's registry holds for it.
pub fn remove(obj: &ObjectName) -> Result<(), RemoveError> {
    remove_checked(obj, None)
}

/// Removes one object if it is still the object `expected` (when given): same device and inode,
/// or same System V id, checked right before removing. The owner record of the removed object
/// (this user's) is forgotten.
///
/// Objects in `/dev/shm`, FIFOs and socket files are looked at without being opened (or, to
/// read a ring's header, opened without blocking and without following a symlink), so a FIFO
/// put under a shared-memory name is refused at once, never waited on.
pub fn remove_checked(obj: &ObjectName, expected: Option<Identity>) -> Result<(), RemoveError> {
    let what = obj.to_string();
    let result = remove_inner(obj, &what, expected);
    if let Ok(removed) | Err((_, removed)) = &result
        && let Some(id) = removed
    {
        // Forget the record, whatever name (decimal key, id=) the object was given.
        let kind = what.split_once(':').map_or("", |(k, _)| k);
        for r in registry::records(false) {
            if r.identity.is_some_and(|r| r.same_object(id)) && r.object.starts_with(kind) {
                registry::unregister(&r.object);
            }
        }
    }
    match result {
        Ok(_) => {
            registry::unregister(&what);
            Ok(())
        }
        Err((e, _)) => {
            if matches!(e, RemoveError::NotFound(_)) {
                registry::unregister(&what);
            }
            Err(e)
        }
    }
}

type Removal = Result<Option<Identity>, (RemoveError, Option<Identity>)>;

fn remove_inner(obj: &ObjectName, what: &str, expected: Option<Identity>) -> Removal {
    let not_found = || RemoveError::NotFound(what.to_owned());
    let denied = || RemoveError::PermissionDenied(what.to_owned());
    let other = |e: &dyn std::fmt::Display| RemoveError::Other {
        what: what.to_owned(),
        message: e.to_string(),
    };
    let check = |found: Identity| -> Result<(), (RemoveError, Option<Identity>)> {
        match expected {
            Some(e) if !e.same_object(&found) => Err((
                RemoveError::Replaced {
                    what: what.to_owned(),
                    expected: e,
                    found,
                },
                None,
            )),
            _ => Ok(()),
        }
    };
    let shm_err = |e: crate::sysv::shm::SysvShmError| match e {
        crate::sysv::shm::SysvShmError::NotFound { .. }
        | crate::sysv::shm::SysvShmError::Removed { .. } => not_found(),
        crate::sysv::shm::SysvShmError::PermissionDenied { .. } => denied(),
        e => other(&e),
    };
    let sem_err = |e: crate::sysv::sem::SemSetError| match e {
        crate::sysv::sem::SemSetError::NotFound { .. } | crate::sysv::sem::SemSetError::Removed => {
            not_found()
        }
        crate::sysv::sem::SemSetError::PermissionDenied { .. } => denied(),
        e => other(&e),
    };
    let dev_shm = |n: &str, prefix: &str| {
        std::path::Path::new("/dev/shm").join(format!("{prefix}{}", n.trim_start_matches('/')))
    };
    let no_id = |e: RemoveError| (e, None);
    match obj {
        ObjectName::PosixShm(n) => remove_path(
            &dev_shm(n, ""),
            what,
            "shared-memory object",
            expected,
            |t| t.is_file(),
        ),
        ObjectName::PosixSem(n) => {
            remove_path(&dev_shm(n, "sem."), what, "semaphore", expected, |t| {
                t.is_file()
            })
        }
        ObjectName::Ring(n) => {
            let path = dev_shm(n, "");
            let m = lstat(&path, what).map_err(no_id)?;
            if !m.is_file() || !crate::ring::is_ring(n) {
                return Err(no_id(RemoveError::WrongType {
                    what: what.to_owned(),
                    expected: "ipcx ring",
                }));
            }
            remove_path(&path, what, "ipcx ring", expected, |t| t.is_file())
        }
        ObjectName::SysvShm(r) => {
            let seg = match r {
                SysvRef::Id(id) => crate::sysv::shm::Segment::from_id(*id),
                // Removal is up to the kernel's permission check, whoever owns the segment.
                SysvRef::Key(k) => crate::sysv::shm::SegmentOptions::new()
                    .trust(crate::trust::Trust::any_user())
                    .open(*k),
            }
            .map_err(|e| no_id(shm_err(e)))?;
            let id = Identity::Sysv { id: seg.id() };
            check(id)?;
            crate::sysv::shm::Segment::remove_id(seg.id()).map_err(|e| (shm_err(e), Some(id)))?;
            Ok(Some(id))
        }
        ObjectName::SysvSem(r) => {
            let mut set = match r {
                SysvRef::Id(id) => crate::sysv::sem::SemaphoreSet::from_id(*id),
                SysvRef::Key(k) => crate::sysv::sem::SemaphoreSet::options()
                    .trust(crate::trust::Trust::any_user())
                    .open(*k, 0),
            }
            .map_err(|e| no_id(sem_err(e)))?;
            let id = Identity::Sysv { id: set.id() };
            check(id)?;
            set.remove().map_err(|e| (sem_err(e), Some(id)))?;
            Ok(Some(id))
        }
        ObjectName::Mq(n) => {
            let found = registry::queue_identity(n).ok();
            match found {
                Some(found) => check(found)?,
                // Nothing proves it is still the object expected: leave it.
                None if expected.is_some() => {
                    return Err(no_id(other(
                        &"cannot open it to check that it is still the queue recorded",
                    )));
                }
                None => {}
            }
            remove_mq(n).map_err(|e| (e, found))?;
            Ok(found)
        }
        ObjectName::SysvMq(r) => remove_sysv_mq(*r, expected),
        ObjectName::Fifo(p) => remove_path(p, what, "FIFO", expected, |t| t.is_fifo()),
        ObjectName::UnixSocket(p) => remove_path(p, what, "socket", expected, |t| t.is_socket()),
    }
}

fn lstat(p: &std::path::Path, what: &str) -> Result<fs::Metadata, RemoveError> {
    fs::symlink_metadata(p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => RemoveError::NotFound(what.to_owned()),
        std::io::ErrorKind::PermissionDenied => RemoveError::PermissionDenied(what.to_owned()),
        _ => RemoveError::Other {
            what: what.to_owned(),
            message: e.to_string(),
        },
    })
}

/// Unlinks the file `p` (never opened: a FIFO is not waited on, a symlink not followed) if it
/// is of the expected type and, when `expected` is given, still that very file.
fn remove_path(
    p: &std::path::Path,
    what: &str,
    expected_type: &'static str,
    expected: Option<Identity>,
    is: impl Fn(&fs::FileType) -> bool,
) -> Removal {
    let m = lstat(p, what).map_err(|e| (e, None))?;
    if !is(&m.file_type()) {
        return Err((
            RemoveError::WrongType {
                what: what.to_owned(),
                expected: expected_type,
            },
            None,
        ));
    }
    let found = Identity::of_file(&m);
    if let Some(e) = expected
        && !e.same_object(&found)
    {
        return Err((
            RemoveError::Replaced {
                what: what.to_owned(),
                expected: e,
                found,
            },
            None,
        ));
    }
    fs::remove_file(p).map_err(|e| {
        let err = match e.kind() {
            std::io::ErrorKind::NotFound => RemoveError::NotFound(what.to_owned()),
            // /dev/shm and /tmp are sticky: only the owner (or root) may unlink.
            std::io::ErrorKind::PermissionDenied => RemoveError::PermissionDenied(what.to_owned()),
            _ => RemoveError::Other {
                what: what.to_owned(),
                message: e.to_string(),
            },
        };
        (err, Some(found))
    })?;
    Ok(Some(found))
}

fn remove_mq(name: &str) -> Result<(), RemoveError> {
    let what = format!("mq:{name}");
    let pname = crate::name::PosixName::existing(name).map_err(|e| RemoveError::Other {
        what: what.clone(),
        message: e.to_string(),
    })?;
    crate::sys::mq::mq_unlink(&pname).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => RemoveError::NotFound(what),
        std::io::ErrorKind::PermissionDenied => RemoveError::PermissionDenied(what),
        _ => RemoveError::Other {
            what,
            message: e.to_string(),
        },
    })
}

fn remove_sysv_mq(r: SysvRef, expected: Option<Identity>) -> Removal {
    use crate::sysv::msg::{ControlError, MessageQueue, OpenError};
    let what = ObjectName::SysvMq(r).to_string();
    let q = match r {
        // Removal is up to the kernel's permission check, whoever owns the queue.
        SysvRef::Key(k) => MessageQueue::options()
            .trust(crate::trust::Trust::any_user())
            .open(k),
        SysvRef::Id(id) => MessageQueue::from_id(id),
    }
    .map_err(|e| {
        let e = match e {
            OpenError::NotFound { .. } | OpenError::NoSuchId { .. } => {
                RemoveError::NotFound(what.clone())
            }
            OpenError::PermissionDenied { .. } => RemoveError::PermissionDenied(what.clone()),
            e => RemoveError::Other {
                what: what.clone(),
                message: e.to_string(),
            },
        };
        (e, None)
    })?;
    let found = Identity::Sysv { id: q.id() };
    if let Some(e) = expected
        && !e.same_object(&found)
    {
        return Err((
            RemoveError::Replaced {
                what,
                expected: e,
                found,
            },
            None,
        ));
    }
    q.remove().map_err(|e| {
        let e = match e {
            ControlError::Removed => RemoveError::NotFound(what.clone()),
            ControlError::PermissionDenied { .. } => RemoveError::PermissionDenied(what.clone()),
            e => RemoveError::Other {
                what: what.clone(),
                message: e.to_string(),
            },
        };
        (e, Some(found))
    })?;
    Ok(Some(found))
}
