//! One module per subcommand.

pub mod recv;
pub mod send;

use crate::cli::{Cli, Command};

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Send(args) => send::run(args),
        Command::Recv(args) => recv::run(args),
    }
}
