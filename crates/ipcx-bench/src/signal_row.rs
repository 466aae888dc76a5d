//! `signal`: real-time signals queued with a value (`sigqueue` through an
//! [`ipcx::signal::Process`] pidfd handle), received through a signalfd
//! ([`ipcx::signal::SignalReceiver`]). The value carries the sequence number
//! ([`WordCodec`]); real-time signals queue in order, so the row streams too.
//!
//! # Safety of the processes
//! A process-directed signal goes to any thread that does not block it, and a real-time
//! signal's default action terminates the process. So the row only runs when **every thread**
//! of the process blocks [`bench_signal`]: [`block_signals`] blocks it in the calling thread,
//! and threads inherit the mask of the thread that starts them. The harness calls it first
//! thing in [`crate::runner::run_plan`] and [`crate::run_peer`], before either starts a thread;
//! `ipcx bench` and `ipcx __bench-peer` run those on their main thread before any other thread
//! exists. Before creating its signalfd, each side checks the signal mask of every thread of
//! its process (`SigBlk` in `/proc/self/task/*/status`); where one thread does not block the
//! signal (a program that started threads before calling the harness, such as a test
//! harness), the row is skipped with that reason instead of risking the process.
//!
//! The signal stays blocked when the run ends: a late signal (from a peer killed in the middle
//! of a phase) then stays pending instead of killing the process. Each row drains pending
//! signals when it opens, and ignores signals that do not come from the other process.

use std::time::Duration;

use ipcx::signal::{self, Process, SigCode, Signal, SignalReceiver};
use ipcx::wait::Wait;

use crate::mechanism::{HalfOpen, Link, LinkError, Mechanism, Prepared, RowContext, Side};
use crate::rendezvous::{Rendezvous, RendezvousSpec, fetch};
use crate::seqonly::{self, SeqOnly, WordCodec};

/// The signal is `SIGRTMIN + RT_OFFSET`.
const RT_OFFSET: u32 = 6;

/// Tags of the value: for the peer, for the parent.
const FOR_PEER: u32 = 1;
const FOR_PARENT: u32 = 2;

/// The real-time signal the `signal` row uses (`RTMIN+6`).
pub fn bench_signal() -> Signal {
    Signal::rtmin(RT_OFFSET).expect("SIGRTMIN+6 exists on Linux")
}

/// Blocks [`bench_signal`] in the calling thread (and so in every thread it starts later).
/// Call it before the process starts any thread; the harness's entry points do.
pub fn block_signals() -> std::io::Result<()> {
    signal::block(&[bench_signal()]).map_err(std::io::Error::other)
}

/// Threads of this process that do not block `sig`, as `tid (name)`.
fn threads_not_blocking(sig: Signal) -> Result<Vec<String>, String> {
    let bit = 1u64 << (sig.raw() - 1);
    let mut open = Vec::new();
    let tasks = std::fs::read_dir("/proc/self/task")
        .map_err(|e| format!("reading /proc/self/task: {e}"))?;
    for t in tasks.flatten() {
        // A thread may exit while we look: skip what cannot be read.
        let Ok(status) = std::fs::read_to_string(t.path().join("status")) else {
            continue;
        };
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(str::trim)
                .unwrap_or("")
                .to_owned()
        };
        let blocked = u64::from_str_radix(&field("SigBlk:"), 16)
            .map_err(|e| format!("reading the signal mask of thread {:?}: {e}", t.file_name()))?;
        if blocked & bit == 0 {
            open.push(format!(
                "{} ({})",
                t.file_name().to_string_lossy(),
                field("Name:")
            ));
        }
    }
    Ok(open)
}

/// Checks that a signal sent to this process can only reach the signalfd.
fn check_blocked(sig: Signal) -> Result<(), LinkError> {
    let open = threads_not_blocking(sig).map_err(LinkError::Unsupported)?;
    if open.is_empty() {
        return Ok(());
    }
    Err(LinkError::Unsupported(format!(
        "{sig} is not blocked in every thread of process {} (not in thread {}): a signal could \
         kill it; ipcx bench blocks it before starting any thread, a program embedding the \
         harness must call ipcx_bench::signal_row::block_signals() before it starts threads",
        std::process::id(),
        open.join(", ")
    )))
}

/// The `signal` row.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignalRow;

impl Mechanism for SignalRow {
    fn name(&self) -> &str {
        "signal"
    }

    fn description(&self) -> &str {
        "real-time signal queued with the sequence number as its value (ipcx::signal pidfd \
         sigqueue), received through a signalfd"
    }

    fn check_payload(&self, payload: usize) -> Result<(), String> {
        seqonly::check_payload(self.name(), payload)
    }

    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        Ok(Prepared::new(RendezvousSpec::new(ctx, "signal").to_json()))
    }

    fn open(&self, spec: &str, side: Side, payload: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        let spec = RendezvousSpec::parse(spec)?;
        let sig = bench_signal();
        check_blocked(sig)?;
        let rx = SignalReceiver::new(&[sig])
            .map_err(|e| LinkError::Failed(format!("signalfd for {sig}: {e}")))?;
        // Signals left over from an earlier row (a phase that failed half-way).
        while rx.try_recv().is_ok() {}
        let rendezvous = match side {
            Side::Parent => Some(Rendezvous::bind(&spec)?),
            Side::Peer => None,
        };
        Ok(Box::new(SignalHalf {
            spec,
            rendezvous,
            rx,
            side,
            payload,
        }))
    }
}

struct SignalHalf {
    spec: RendezvousSpec,
    rendezvous: Option<Rendezvous>,
    rx: SignalReceiver,
    side: Side,
    payload: usize,
}

impl HalfOpen for SignalHalf {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        // Each side learns the other's pid from the kernel (SO_PEERCRED of the hand-over).
        let other = match self.rendezvous {
            Some(r) => r.hand_over(&[], wait)?.pid,
            None => fetch(&self.spec, 0, wait)?.1.pid,
        };
        let to = Process::from_pid(other)
            .map_err(|e| LinkError::PeerGone(format!("opening a pidfd for {other}: {e}")))?;
        let (mine, theirs) = match self.side {
            Side::Parent => (FOR_PARENT, FOR_PEER),
            Side::Peer => (FOR_PEER, FOR_PARENT),
        };
        Ok(Box::new(SignalLink {
            rx: self.rx,
            to,
            sig: bench_signal(),
            mine,
            theirs,
            codec: WordCodec::new(),
            seq: SeqOnly::new(self.payload),
        }))
    }
}

struct SignalLink {
    rx: SignalReceiver,
    to: Process,
    sig: Signal,
    mine: u32,
    theirs: u32,
    codec: WordCodec,
    seq: SeqOnly,
}

impl Link for SignalLink {
    fn send(&mut self, msg: &[u8], wait: Wait) -> Result<(), LinkError> {
        let seq = self.seq.seq(msg)?;
        let value = WordCodec::pack(seq, self.theirs) as i32;
        loop {
            match self.to.queue(self.sig, value) {
                Ok(()) => return Ok(()),
                // The receiver's queue of pending signals is full: it is behind.
                Err(signal::SignalError::QueueFull { .. }) => {
                    if wait.expired() {
                        return Err(LinkError::Timeout);
                    }
                    std::thread::sleep(Duration::from_micros(20));
                }
                Err(
                    e @ (signal::SignalError::Exited { .. }
                    | signal::SignalError::NoSuchProcess { .. }),
                ) => {
                    return Err(LinkError::PeerGone(e.to_string()));
                }
                Err(e) => return Err(LinkError::Failed(format!("sigqueue: {e}"))),
            }
        }
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        loop {
            let info = self.rx.recv_wait(wait).map_err(|e| match e {
                signal::SignalError::Timeout | signal::SignalError::WouldBlock => {
                    LinkError::Timeout
                }
                e => LinkError::Failed(format!("signalfd: {e}")),
            })?;
            if info.pid != self.to.pid() || info.code != SigCode::Queue {
                continue; // not from the other side
            }
            let w = info.value as u32;
            if WordCodec::tag(w) != self.mine {
                return Err(LinkError::Failed(format!(
                    "a signal value {w:#x} not addressed to this side"
                )));
            }
            let seq = self.codec.unpack(w);
            self.seq.fill(buf, seq);
            return Ok(());
        }
    }

    fn max_payload(&self) -> Option<usize> {
        Some(seqonly::MAX_PAYLOAD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_of_every_thread_is_read() {
        let sig = bench_signal();
        assert!(sig.is_realtime());
        // The test harness's own threads do not block it.
        let open = threads_not_blocking(sig).unwrap();
        assert!(!open.is_empty());
        let e = check_blocked(sig).unwrap_err();
        assert!(
            e.is_skip() && e.to_string().contains("block_signals"),
            "{e}"
        );
    }
}
