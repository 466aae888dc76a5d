//! How a command fails: the exit status an error carries, usage errors (exit 2) and the
//! errors of an endpoint (a timeout exits 3).

use anyhow::anyhow;
use ipcx::channel::{Endpoint, Error};

use crate::escape::escape;

/// Exit status for a wait that timed out.
pub const EXIT_TIMEOUT: u8 = 3;

/// An error that carries its own exit status.
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// A usage error (exit 2) with this message.
pub fn usage(msg: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(clap::Error::raw(
        clap::error::ErrorKind::InvalidValue,
        format!("{msg}\n"),
    ))
}

/// Turns a channel error into the CLI's error: a timeout exits 3, an invalid address (or
/// locator) 2, the rest 1 with the message.
pub fn endpoint_error(ep: &Endpoint, e: Error) -> anyhow::Error {
    match e {
        Error::InvalidAddress { .. } => usage(e),
        // A send to a pub/sub fabric (zenoh:) times out waiting for a matching subscriber.
        Error::Timeout if ep.is_pubsub() => {
            eprintln!(
                "ipcx: {}: timed out: no subscriber matches it",
                escape(&ep.to_string())
            );
            anyhow::Error::new(Exit(EXIT_TIMEOUT))
        }
        Error::Timeout => {
            eprintln!("ipcx: {}: timed out", escape(&ep.to_string()));
            anyhow::Error::new(Exit(EXIT_TIMEOUT))
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
