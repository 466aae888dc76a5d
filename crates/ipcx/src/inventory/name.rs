//! [`ObjectName`]: an object name as `ipcx ls` prints it and `ipcx rm` takes it.

/// An object name as `ipcx ls` prints it and `ipcx rm` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjectName {
    /// `posix-shm:/NAME`
    PosixShm(String),
    /// `posix-sem:/NAME`
    PosixSem(String),
    /// `mq:/NAME`
    Mq(String),
    /// `sysv-shm:KEY` or `sysv-shm:id=ID`
    SysvShm(SysvRef),
    /// `sysv-sem:KEY` or `sysv-sem:id=ID`
    SysvSem(SysvRef),
    /// `sysv-mq:KEY` or `sysv-mq:id=ID`
    SysvMq(SysvRef),
    /// `fifo:PATH`
    Fifo(std::path::PathBuf),
    /// `unix:PATH` (also `unix-dgram:`, `unix-seqpacket:`): the socket file.
    UnixSocket(std::path::PathBuf),
    /// `shm:/NAME`: an ipcx ring.
    Ring(String),
}

/// A System V object, by key or by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysvRef {
    /// By key.
    Key(crate::sysv::Key),
    /// By id (what `IPC_PRIVATE` objects have).
    Id(i32),
}

/// Object kinds `ObjectName::parse` knows, for messages.
pub const OBJECT_KINDS: &str = "posix-shm:/NAME, posix-sem:/NAME, mq:/NAME, sysv-shm:KEY, \
     sysv-sem:KEY, sysv-mq:KEY (or id=ID), fifo:PATH, unix:PATH, shm:/NAME";

impl ObjectName {
    /// Parses an object name.
    pub fn parse(s: &str) -> Result<ObjectName, String> {
        let (kind, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("invalid object {s:?}: expected one of {OBJECT_KINDS}"))?;
        // Names of existing objects: any program may have made them, control characters
        // included, and `ipcx rm` must be able to remove them (ipcx never creates such names).
        let posix = |n: &str| -> Result<String, String> {
            crate::name::PosixName::existing(n)
                .map(|n| n.as_str().to_owned())
                .map_err(|e| e.to_string())
        };
        let sysv = |r: &str| -> Result<SysvRef, String> {
            match r.strip_prefix("id=") {
                Some(id) => id
                    .parse()
                    .map(SysvRef::Id)
                    .map_err(|_| format!("invalid System V id {id:?}")),
                None => crate::sysv::Key::parse(r).map(SysvRef::Key),
            }
        };
        Ok(match kind {
            "posix-shm" => ObjectName::PosixShm(posix(rest)?),
            "posix-sem" => ObjectName::PosixSem(posix(rest)?),
            "mq" => ObjectName::Mq(posix(rest)?),
            "shm" => ObjectName::Ring(posix(rest)?),
            "sysv-shm" => ObjectName::SysvShm(sysv(rest)?),
            "sysv-sem" => ObjectName::SysvSem(sysv(rest)?),
            "sysv-mq" => ObjectName::SysvMq(sysv(rest)?),
            "fifo" if !rest.is_empty() => ObjectName::Fifo(rest.into()),
            "unix" | "unix-dgram" | "unix-seqpacket" if !rest.is_empty() => {
                if rest.starts_with('@') {
                    return Err(format!(
                        "{s}: an abstract socket has no file to remove; it goes when its process closes it"
                    ));
                }
                ObjectName::UnixSocket(rest.into())
            }
            _ => {
                return Err(format!(
                    "invalid object {s:?}: expected one of {OBJECT_KINDS}"
                ));
            }
        })
    }
}

impl std::fmt::Display for ObjectName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sysv = |kind: &str, r: &SysvRef| match r {
            SysvRef::Key(k) => crate::sysv::name(kind, k.0, 0),
            SysvRef::Id(id) => format!("{kind}:id={id}"),
        };
        match self {
            ObjectName::PosixShm(n) => write!(f, "posix-shm:{n}"),
            ObjectName::PosixSem(n) => write!(f, "posix-sem:{n}"),
            ObjectName::Mq(n) => write!(f, "mq:{n}"),
            ObjectName::SysvShm(r) => f.write_str(&sysv("sysv-shm", r)),
            ObjectName::SysvSem(r) => f.write_str(&sysv("sysv-sem", r)),
            ObjectName::SysvMq(r) => f.write_str(&sysv("sysv-mq", r)),
            ObjectName::Fifo(p) => write!(f, "fifo:{}", p.display()),
            ObjectName::UnixSocket(p) => write!(f, "unix:{}", p.display()),
            ObjectName::Ring(n) => write!(f, "shm:{n}"),
        }
    }
}
