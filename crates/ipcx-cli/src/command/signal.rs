//! `ipcx signal send PID SIGNAL [--value N]` and `ipcx signal wait SIGNAL... [--count N]`.

use std::io::Write;
use std::time::Duration;

use ipcx::signal::{Process, SigCode, Signal, SignalReceiver};
use ipcx::wait::Wait;

use crate::args::Actions;
use crate::parse::parse_duration;

/// Arguments of `ipcx signal`.
pub type SignalArgs = Actions<Action>;

/// The actions of `ipcx signal`.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Send SIGNAL to PID (through a pidfd, so a recycled pid is never hit); with --value, the
    /// value travels with it (sigqueue).
    Send {
        /// The receiving process.
        pid: i32,
        /// The signal: USR1, SIGTERM, RTMIN+2, or a number.
        signal: String,
        /// An integer payload.
        #[arg(long, allow_hyphen_values = true)]
        value: Option<i32>,
    },
    /// Print each signal received: name, sender pid and uid, value.
    Wait {
        /// The signals to wait for.
        #[arg(required = true)]
        signals: Vec<String>,
        /// Stop after N signals.
        #[arg(long)]
        count: Option<u64>,
        /// Give up (exit 3) when no signal arrives within this long.
        #[arg(long, value_parser = parse_duration)]
        timeout: Option<Duration>,
    },
}

fn parse_signal(s: &str) -> anyhow::Result<Signal> {
    s.parse::<Signal>()
        .map_err(|e| crate::exit::usage(e.to_string()))
}

/// Runs `ipcx signal`.
pub fn run(args: SignalArgs) -> anyhow::Result<()> {
    match args.action {
        Action::Send { pid, signal, value } => {
            let sig = parse_signal(&signal)?;
            let p = Process::from_pid(pid)?;
            match value {
                Some(v) => p.queue(sig, v)?,
                None => p.send(sig)?,
            }
        }
        Action::Wait {
            signals,
            count,
            timeout,
        } => {
            let sigs = signals
                .iter()
                .map(|s| parse_signal(s))
                .collect::<anyhow::Result<Vec<_>>>()?;
            // This program is single-threaded here, so blocking in this thread blocks them for
            // the whole process.
            let rx = SignalReceiver::new(&sigs)?;
            let mut out = std::io::stdout().lock();
            let mut n = 0u64;
            while count.is_none_or(|c| n < c) {
                let info = match rx.recv_wait(Wait::from_timeout(timeout)) {
                    Err(ipcx::signal::SignalError::Timeout) => {
                        eprintln!("ipcx: no signal within the timeout");
                        return Err(crate::exit::Exit(crate::exit::EXIT_TIMEOUT).into());
                    }
                    other => other?,
                };
                let mut line = format!("{} pid={} uid={}", info.signal, info.pid, info.uid);
                if info.code == SigCode::Queue {
                    line.push_str(&format!(" value={}", info.value));
                }
                writeln!(out, "{line}")?;
                out.flush()?;
                n += 1;
            }
        }
    }
    Ok(())
}
