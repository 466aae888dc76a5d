//! The peer process: re-executed by the parent, it opens its side of each row, echoes
//! (ping-pong) and sinks (stream), checksumming every byte it reads.
//!
//! The peer ends when the control connection closes (the parent exited or died), when it is
//! told to, on SIGINT/SIGTERM/SIGHUP (dropping its links first, which removes what it created),
//! and when its parent dies (`PR_SET_PDEATHSIG` delivers SIGTERM).

mod args;
mod retry;
mod serve;

use std::io;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use ipcx::wait::Wait;

pub use args::PeerArgs;
use retry::{Flags, failed};
use serve::{echo, sink};

use crate::cpu::pin_to_cpu;
use crate::mechanism::{HalfOpen, Link, Side};
use crate::protocol::{Command, Incoming, Reply, send_line, spawn_reader};
use crate::registry::Registry;
use crate::stall::SLICE;

/// Runs the peer until the parent is done with it.
///
/// Blocks the `signal` row's real-time signal first (before the control reader thread starts),
/// so that it can only reach that row's signalfd.
pub fn run_peer(registry: &Registry, args: &PeerArgs) -> io::Result<()> {
    crate::signal_row::block_signals()?;
    // A Ctrl-C in the terminal reaches the whole process group: stop cleanly instead of dying.
    ipcx::interrupt::install()?;
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
        .map_err(io::Error::from)?;
    let ppid = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get());
    if ppid != args.parent_pid {
        return Err(io::Error::other("the parent process is already gone"));
    }
    if let Some(cpu) = args.cpu {
        pin_to_cpu(cpu).map_err(|e| io::Error::other(format!("pinning to CPU {cpu}: {e}")))?;
    }
    let ctl = UnixStream::connect(&args.control)?;
    let flags = Flags {
        abort: Arc::new(AtomicBool::new(false)),
        gone: Arc::new(AtomicBool::new(false)),
        stall: Duration::from_millis(args.stall_ms.max(100)),
    };
    let abort = flags.abort.clone();
    let gone = flags.gone.clone();
    let commands = spawn_reader::<Command>(
        ctl.try_clone()?,
        move |c| {
            if matches!(c, Command::Abort) {
                abort.store(true, Ordering::SeqCst);
                false
            } else {
                true
            }
        },
        move || gone.store(true, Ordering::SeqCst),
    )?;
    let mut out = ctl;
    send_line(
        &mut out,
        &Reply::Hello {
            pid: std::process::id() as i32,
            cpu: args.cpu,
        },
    )?;

    let mut half: Option<Box<dyn HalfOpen>> = None;
    let mut link: Option<Box<dyn Link>> = None;
    loop {
        let cmd = match commands.recv_timeout(SLICE) {
            Ok(Incoming::Msg(c)) => c,
            Ok(Incoming::Closed(_)) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                if ipcx::interrupt::requested() {
                    break;
                }
                continue;
            }
        };
        flags.abort.store(false, Ordering::SeqCst);
        let reply = match cmd {
            Command::Open {
                mechanism,
                spec,
                payload,
            } => {
                link = None;
                half = None;
                match registry.get(&mechanism) {
                    None => Reply::Failed {
                        reason: format!("the peer has no mechanism {mechanism:?}"),
                        skip: false,
                    },
                    Some(m) => match m.open(&spec, Side::Peer, payload) {
                        Ok(h) => {
                            half = Some(h);
                            Reply::Opened
                        }
                        Err(e) => failed(&e),
                    },
                }
            }
            Command::Connect { timeout_ms } => match half.take() {
                None => Reply::Failed {
                    reason: "connect before open".into(),
                    skip: false,
                },
                Some(h) => match h.connect(Wait::timeout(Duration::from_millis(timeout_ms))) {
                    Ok(l) => {
                        link = Some(l);
                        Reply::Connected
                    }
                    Err(e) => failed(&e),
                },
            },
            Command::Echo => match link.as_deref_mut() {
                None => Reply::Failed {
                    reason: "echo without a link".into(),
                    skip: false,
                },
                Some(l) => echo(l, &flags),
            },
            Command::Sink { credit_every } => match link.as_deref_mut() {
                None => Reply::Failed {
                    reason: "sink without a link".into(),
                    skip: false,
                },
                Some(l) => sink(l, credit_every, &flags),
            },
            Command::Abort => continue,
            Command::Close => {
                link = None;
                half = None;
                Reply::Closed
            }
            Command::Exit => break,
        };
        if send_line(&mut out, &reply).is_err() {
            break;
        }
    }
    drop(link);
    drop(half);
    Ok(())
}
