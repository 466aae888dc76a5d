//! `ipcx signal send PID SIGNAL [--value N]` and `ipcx signal wait SIGNAL... [--count N]`.

use std::io::Write;
use std::time::Duration;

use ipcx::signal::{Process, SigCode, Signal, SignalInfo, SignalReceiver};
use ipcx::wait::Wait;

use crate::args::Actions;
use crate::json;
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
    /// Print each signal received: name, sender pid and uid, value (when it carries one).
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
        /// Print one JSON object per signal as it arrives: `signal` (its name, as `kill -l`
        /// spells it without `SIG`), `pid` and `uid` of the sender, and `value` when it was
        /// queued with one (sigqueue, `ipcx signal send --value`).
        #[arg(long)]
        json: bool,
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
            json,
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
                print_signal(&mut out, &info, json)?;
                n += 1;
            }
        }
    }
    Ok(())
}

/// A received signal as `signal wait --json` prints it.
#[derive(serde::Serialize)]
struct SignalRecord {
    signal: String,
    pid: i32,
    uid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<i32>,
}

/// Prints one received signal: `USR1 pid=.. uid=.. [value=..]`, or with `json` the object
/// `{"signal","pid","uid"[,"value"]}` (the value only when the signal was queued with one).
fn print_signal(out: &mut impl Write, info: &SignalInfo, json: bool) -> std::io::Result<()> {
    let value = (info.code == SigCode::Queue).then_some(info.value);
    if json {
        let record = SignalRecord {
            signal: info.signal.to_string(),
            pid: info.pid,
            uid: info.uid,
            value,
        };
        return json::line(out, &record);
    }
    let mut line = format!("{} pid={} uid={}", info.signal, info.pid, info.uid);
    if let Some(v) = value {
        line.push_str(&format!(" value={v}"));
    }
    writeln!(out, "{line}")?;
    out.flush()
}
