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
            eprintln!("ipcx: {ep}: timed out");
            anyhow::Error::new(crate::Exit(crate::EXIT_TIMEOUT))
        }
        e => anyhow!("{ep}: {e}"),
    }
}
