//! `ipcx`: exercise, inspect, clean up and benchmark Linux IPC.
//!
//! Thin by design: parse the command line ([`cli`]), call the library, print. Exit status: 0
//! success, 1 runtime error, 2 usage error, 3 timed out. A closed stdout exits 0.

mod args;
mod cli;
mod command;
mod escape;
mod exit;
mod json;
mod msgpack;
mod parse;
mod target;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::command::{
    bench, bridge, call, clean, deadlock, ls, r#pub, recv, rm, sem, send, shm, signal, sub,
};
use crate::exit::Exit;

fn main() -> ExitCode {
    let args = Cli::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(Exit(code)) = err.downcast_ref::<Exit>() {
                return ExitCode::from(*code);
            }
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            if let Some(clap_err) = err.downcast_ref::<clap::Error>() {
                let _ = clap_err.print();
                return ExitCode::from(2);
            }
            eprintln!("ipcx: {}", escape::escape(&error_text(&err)));
            ExitCode::from(1)
        }
    }
}

/// Runs the parsed command.
fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Send(args) => send::run(args),
        Command::Recv(args) => recv::run(args),
        Command::Ls(args) => ls::run(args),
        Command::Rm(args) => rm::run(args),
        Command::Clean(args) => clean::run(args),
        Command::Deadlock(args) => deadlock::run(args),
        Command::Shm(args) => shm::run(args),
        Command::Sem(args) => sem::run(args),
        Command::Signal(args) => signal::run(args),
        Command::Sub(args) => sub::run(args),
        Command::Pub(args) => r#pub::run(args),
        Command::Bridge(args) => bridge::run(args),
        Command::Call(args) => call::run(args),
        Command::Bench(args) => bench::run(args),
        Command::BenchPeer(args) => bench::run_peer(args),
    }
}

/// The error and its causes joined by ": ", each distinct text once: a cause whose text the
/// message already holds (a library error that quotes its OS error, say) is not repeated.
fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let t = cause.to_string();
        if t.is_empty() || text.contains(&t) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&t);
    }
    text
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
