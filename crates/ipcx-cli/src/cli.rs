//! Command-line definitions (the "low" arguments: as close to the flags as possible).

use clap::{Parser, Subcommand};

/// Exercise, inspect, clean up and benchmark Linux IPC.
#[derive(Debug, Parser)]
#[command(name = "ipcx", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send messages to an endpoint (each MSG one message; with none, each line of stdin).
    Send(crate::command::send::SendArgs),
    /// Receive messages from an endpoint and print each on its own line.
    Recv(crate::command::recv::RecvArgs),
}
