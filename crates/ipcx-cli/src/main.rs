//! `ipcx`: exercise, inspect, clean up and benchmark Linux IPC.
//!
//! Thin by design: parse the command line ([`cli`]), call the library, print. Exit status: 0
//! success, 1 runtime error, 2 usage error, 3 timed out. A closed stdout exits 0.

mod args;
mod cli;
mod command;
mod escape;

use std::process::ExitCode;

use clap::Parser;

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

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match command::run(args) {
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
