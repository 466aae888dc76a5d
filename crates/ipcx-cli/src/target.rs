//! The POSIX or System V object `ipcx shm` and `ipcx sem` work on, as named on the command
//! line.

use crate::exit::usage;

/// The two families of objects `ipcx shm` and `ipcx sem` work on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Shared memory: `posix-shm:/NAME` (or `/NAME`), `sysv-shm:KEY`.
    Shm,
    /// Semaphores: `posix-sem:/NAME` (or `/NAME`), `sysv-sem:KEY`.
    Sem,
}

/// A POSIX or System V object of one family, as named on the command line.
#[derive(Debug)]
pub enum Target {
    /// A POSIX name, with its leading `/`.
    Posix(String),
    /// A System V key or id.
    Sysv(ipcx::inventory::SysvRef),
}

impl Target {
    /// Parses `obj` as an object of `family` (`/NAME` is the POSIX one); anything else is a
    /// usage error.
    pub fn parse(obj: &str, family: Family) -> anyhow::Result<Target> {
        use ipcx::inventory::ObjectName as O;
        let (posix, what) = match family {
            Family::Shm => (
                "posix-shm",
                "shared memory: use /NAME, posix-shm:/NAME or sysv-shm:KEY",
            ),
            Family::Sem => (
                "posix-sem",
                "a semaphore: use /NAME, posix-sem:/NAME or sysv-sem:KEY",
            ),
        };
        let full = if obj.starts_with('/') {
            format!("{posix}:{obj}")
        } else {
            obj.to_owned()
        };
        match (family, O::parse(&full).map_err(usage)?) {
            (Family::Shm, O::PosixShm(n)) | (Family::Sem, O::PosixSem(n)) => Ok(Target::Posix(n)),
            (Family::Shm, O::SysvShm(r)) | (Family::Sem, O::SysvSem(r)) => Ok(Target::Sysv(r)),
            (_, other) => Err(usage(format!("{other} is not {what}"))),
        }
    }

    /// The object's name as `ipcx rm` takes it.
    pub fn object_name(self, family: Family) -> ipcx::inventory::ObjectName {
        use ipcx::inventory::ObjectName as O;
        match (family, self) {
            (Family::Shm, Target::Posix(n)) => O::PosixShm(n),
            (Family::Shm, Target::Sysv(r)) => O::SysvShm(r),
            (Family::Sem, Target::Posix(n)) => O::PosixSem(n),
            (Family::Sem, Target::Sysv(r)) => O::SysvSem(r),
        }
    }
}
