//! [`Identity`]: which object a name referred to, so that a reused name is told apart.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Which object a name referred to when it was recorded (names can be reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Identity {
    /// A file (in `/dev/shm`, a FIFO, a socket file) or a POSIX queue: device and inode, and
    /// the creation time where the file system keeps one (ext4 gives a new file the inode
    /// number of one just removed).
    File {
        /// Device.
        dev: u64,
        /// Inode.
        ino: u64,
        /// Creation (birth) time, nanoseconds since the epoch, when known.
        btime: Option<u64>,
    },
    /// A System V object: its id (a new object under the same key gets another id).
    Sysv {
        /// The id.
        id: i32,
    },
}

impl Identity {
    /// The identity of the file `m` describes.
    pub fn of_file(m: &fs::Metadata) -> Identity {
        Identity::File {
            dev: m.dev(),
            ino: m.ino(),
            btime: m
                .created()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .and_then(|d| u64::try_from(d.as_nanos()).ok()),
        }
    }

    /// Whether both name the same object (creation times are compared when both are known).
    pub fn same_object(&self, other: &Identity) -> bool {
        match (self, other) {
            (
                Identity::File { dev, ino, btime },
                Identity::File {
                    dev: d2,
                    ino: i2,
                    btime: b2,
                },
            ) => dev == d2 && ino == i2 && (btime.is_none() || b2.is_none() || btime == b2),
            (Identity::Sysv { id }, Identity::Sysv { id: id2 }) => id == id2,
            _ => false,
        }
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::File { dev, ino, .. } => write!(f, "inode {ino} on device {dev:#x}"),
            Identity::Sysv { id } => write!(f, "id {id}"),
        }
    }
}

/// Finds out which object `object` names right now (see [`Identity`]); `None` when it does not
/// exist or cannot be looked at.
pub fn identity_of(object: &str) -> Option<Identity> {
    let (kind, rest) = object.split_once(':')?;
    let file = |p: &Path| fs::symlink_metadata(p).ok().map(|m| Identity::of_file(&m));
    let sysv = |key: &str| -> Option<i32> {
        let hex = key.strip_prefix("0x")?;
        Some(u32::from_str_radix(hex, 16).ok()? as i32)
    };
    match kind {
        "posix-shm" | "shm" => file(&Path::new("/dev/shm").join(rest.strip_prefix('/')?)),
        "posix-sem" => {
            file(&Path::new("/dev/shm").join(format!("sem.{}", rest.strip_prefix('/')?)))
        }
        "fifo" | "unix" | "unix-dgram" | "unix-seqpacket" => file(Path::new(rest)),
        "mq" => queue_identity(rest).ok(),
        _ if kind.starts_with("sysv-") && rest.starts_with("id=") => {
            rest[3..].parse().ok().map(|id| Identity::Sysv { id })
        }
        "sysv-shm" => crate::sys::sysv_shm::shmget(sysv(rest)?, 0, 0)
            .ok()
            .map(|id| Identity::Sysv { id }),
        "sysv-sem" => crate::sys::sysv_sem::semget(sysv(rest)?, 0, 0)
            .ok()
            .map(|id| Identity::Sysv { id }),
        "sysv-mq" => crate::sys::sysv_msg::msgget(sysv(rest)?, 0)
            .ok()
            .map(|id| Identity::Sysv { id }),
        _ => None,
    }
}

/// A POSIX queue's identity, from `fstat` on a descriptor of it (which works without
/// `/dev/mqueue` mounted): opened for reading, or writing when reading is not allowed.
pub(crate) fn queue_identity(name: &str) -> io::Result<Identity> {
    let m = fs::File::from(open_queue(name)?).metadata()?;
    Ok(Identity::of_file(&m))
}

/// Opens an existing POSIX queue (any name it may have) without blocking and without taking
/// anything from it: for reading, or for writing when reading is not allowed.
pub(crate) fn open_queue(name: &str) -> io::Result<std::os::fd::OwnedFd> {
    use crate::sys::mq::{Disposition, OpenArgs, mq_open};
    let name = crate::name::PosixName::existing(name)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let args = |read: bool| OpenArgs {
        read,
        write: !read,
        nonblocking: true,
        how: Disposition::Open,
        mode: 0,
        capacity: None,
    };
    match mq_open(&name, &args(true)) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => mq_open(&name, &args(false)),
        r => r,
    }
}
