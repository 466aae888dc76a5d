//! One module per subcommand.

pub mod bench;
pub mod clean;
pub mod ls;
pub mod recv;
pub mod rm;
pub mod sem;
pub mod send;
pub mod shm;
pub mod signal;

use anyhow::anyhow;
use ipcx::channel::{Endpoint, Error};

use crate::cli::{Cli, Command};

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Send(args) => send::run(args),
        Command::Recv(args) => recv::run(args),
        Command::Ls(args) => ls::run(args),
        Command::Rm(args) => rm::run(args),
        Command::Clean(args) => clean::run(args),
        Command::Shm(args) => shm::run(args),
        Command::Sem(args) => sem::run(args),
        Command::Signal(args) => signal::run(args),
        Command::Bench(args) => bench::run(args),
        Command::BenchPeer(args) => bench::run_peer(args),
    }
}

/// Parses an endpoint; a bad address is a usage error (exit 2).
pub fn parse_endpoint(s: &str) -> anyhow::Result<Endpoint> {
    Endpoint::parse(s).map_err(|e| {
        anyhow::Error::new(clap::Error::raw(
            clap::error::ErrorKind::InvalidValue,
            format!("{e}\n"),
        ))
    })
}

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

/// A usage error (exit 2) with this message.
pub fn usage(msg: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(clap::Error::raw(
        clap::error::ErrorKind::InvalidValue,
        format!("{msg}\n"),
    ))
}

/// Turns a channel error into the CLI's error: a timeout exits 3, the rest 1 with the message.
pub fn endpoint_error(ep: &Endpoint, e: Error) -> anyhow::Error {
    match e {
        Error::Timeout => {
            eprintln!(
                "ipcx: {}: timed out",
                crate::escape::escape(&ep.to_string())
            );
            anyhow::Error::new(crate::Exit(crate::EXIT_TIMEOUT))
        }
        // "ring shm:/x" around "ring /x is corrupt": the cause says what it is about already.
        Error::Io { context, source }
            if context.split(' ').next() == source.to_string().split(' ').next() =>
        {
            anyhow!("{ep}: {source}")
        }
        // A message that names the endpoint already is not prefixed with it again.
        e if e.to_string().contains(&ep.to_string()) => anyhow::Error::new(e),
        e => anyhow!("{ep}: {e}"),
    }
}
