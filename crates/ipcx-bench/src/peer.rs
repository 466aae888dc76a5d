//! The peer process: re-executed by the parent, it opens its side of each row, echoes
//! (ping-pong) and sinks (stream), checksumming every byte it reads.
//!
//! The peer ends when the control connection closes (the parent exited or died), when it is
//! told to, on SIGINT/SIGTERM/SIGHUP (dropping its links first, which removes what it created),
//! and when its parent dies (`PR_SET_PDEATHSIG` delivers SIGTERM).

use std::io;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use ipcx::wait::Wait;
use serde::{Deserialize, Serialize};

use crate::checksum::{Digest, END_SEQ, seq_of};
use crate::cpu::pin_to_cpu;
use crate::mechanism::{HalfOpen, Link, LinkError, Side};
use crate::protocol::{Command, Incoming, Reply, send_line, spawn_reader};
use crate::registry::Registry;

/// How long one blocking link call lasts before the loops look at their stop flags.
pub(crate) const SLICE: Duration = Duration::from_millis(100);

/// What the parent tells the peer on its command line (or in [`PeerArgs::ENV`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerArgs {
    /// The parent's control socket.
    pub control: PathBuf,
    /// The parent's pid: the peer exits if its parent is already someone else.
    pub parent_pid: i32,
    /// The CPU to pin the peer to.
    pub cpu: Option<usize>,
    /// Give up on a phase after this long without a message, in milliseconds.
    pub stall_ms: u64,
}

impl PeerArgs {
    /// The environment variable that carries the arguments as JSON, for launchers that cannot
    /// pass arguments (a test binary re-executing itself).
    pub const ENV: &'static str = "IPCX_BENCH_PEER";

    /// As command-line arguments: `--control PATH --parent-pid PID [--cpu N] --stall-ms MS`.
    pub fn to_args(&self) -> Vec<String> {
        let mut v = vec![
            "--control".to_owned(),
            self.control.display().to_string(),
            "--parent-pid".to_owned(),
            self.parent_pid.to_string(),
            "--stall-ms".to_owned(),
            self.stall_ms.to_string(),
        ];
        if let Some(c) = self.cpu {
            v.push("--cpu".to_owned());
            v.push(c.to_string());
        }
        v
    }

    /// Parses what [`PeerArgs::to_args`] produced.
    pub fn parse(args: &[String]) -> Result<PeerArgs, String> {
        let mut control = None;
        let mut parent_pid = None;
        let mut cpu = None;
        let mut stall_ms = 10_000;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--control" => control = Some(PathBuf::from(value()?)),
                "--parent-pid" => {
                    parent_pid = Some(value()?.parse().map_err(|e| format!("--parent-pid: {e}"))?)
                }
                "--cpu" => cpu = Some(value()?.parse().map_err(|e| format!("--cpu: {e}"))?),
                "--stall-ms" => {
                    stall_ms = value()?.parse().map_err(|e| format!("--stall-ms: {e}"))?
                }
                other => return Err(format!("unknown peer argument {other:?}")),
            }
        }
        Ok(PeerArgs {
            control: control.ok_or("--control is required")?,
            parent_pid: parent_pid.ok_or("--parent-pid is required")?,
            cpu,
            stall_ms,
        })
    }

    /// As JSON for [`PeerArgs::ENV`].
    pub fn to_env(&self) -> String {
        serde_json::to_string(self).expect("peer args serialise")
    }

    /// Reads [`PeerArgs::ENV`]: `None` when unset (this process is not a peer).
    pub fn from_env() -> Option<Result<PeerArgs, String>> {
        let v = std::env::var(Self::ENV).ok()?;
        Some(serde_json::from_str(&v).map_err(|e| format!("{}: {e}", Self::ENV)))
    }
}

struct Flags {
    abort: Arc<AtomicBool>,
    gone: Arc<AtomicBool>,
    stall: Duration,
}

impl Flags {
    fn stop(&self) -> bool {
        self.abort.load(Ordering::SeqCst)
            || self.gone.load(Ordering::SeqCst)
            || ipcx::interrupt::requested()
    }
}

fn failed(e: &LinkError) -> Reply {
    Reply::Failed {
        reason: e.to_string(),
        skip: e.is_skip(),
    }
}

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

/// Notices a phase that makes no progress: `check` is called on each timeout with the number
/// of messages handled so far.
pub(crate) struct Stall {
    limit: Duration,
    seen: u64,
    since: Instant,
}

impl Stall {
    pub(crate) fn new(limit: Duration) -> Stall {
        Stall {
            limit,
            seen: 0,
            since: Instant::now(),
        }
    }

    /// The limit.
    pub(crate) fn limit(&self) -> Duration {
        self.limit
    }

    /// Whether nothing moved for longer than the limit.
    pub(crate) fn stalled(&mut self, count: u64, now: Instant) -> bool {
        if count != self.seen {
            self.seen = count;
            self.since = now;
            false
        } else {
            now.duration_since(self.since) > self.limit
        }
    }
}

/// A link call retried across timeouts (refreshing the deadline) until a stop flag or a stall.
struct Retry<'a> {
    flags: &'a Flags,
    stall: Stall,
    deadline: Instant,
    count: u64,
}

impl<'a> Retry<'a> {
    fn new(flags: &'a Flags) -> Retry<'a> {
        Retry {
            flags,
            stall: Stall::new(flags.stall),
            deadline: Instant::now() + SLICE,
            count: 0,
        }
    }

    fn on_timeout(&mut self, what: &str) -> Result<(), Reply> {
        if self.flags.stop() {
            return Err(Reply::Aborted);
        }
        let now = Instant::now();
        if self.stall.stalled(self.count, now) {
            return Err(Reply::Failed {
                reason: format!(
                    "the peer could not {what} for {:.1} s",
                    self.flags.stall.as_secs_f64()
                ),
                skip: false,
            });
        }
        self.deadline = now + SLICE;
        Ok(())
    }

    /// Runs one link operation (`what`: for the error) until it succeeds, renewing the
    /// deadline each time it runs out.
    fn retry(
        &mut self,
        what: &str,
        mut op: impl FnMut(Wait) -> Result<(), LinkError>,
    ) -> Result<(), Reply> {
        loop {
            match op(Wait::Until(self.deadline)) {
                Ok(()) => {
                    self.count += 1;
                    return Ok(());
                }
                Err(LinkError::Timeout) => self.on_timeout(what)?,
                Err(e) => return Err(failed(&e)),
            }
        }
    }

    fn recv(&mut self, link: &mut dyn Link, buf: &mut Vec<u8>) -> Result<(), Reply> {
        self.retry("receive", |wait| link.recv(buf, wait))
    }

    fn recv_with(
        &mut self,
        link: &mut dyn Link,
        scratch: &mut Vec<u8>,
        read: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Reply> {
        self.retry("receive", |wait| link.recv_with(scratch, wait, read))
    }

    fn send(&mut self, link: &mut dyn Link, msg: &[u8]) -> Result<(), Reply> {
        self.retry("send", |wait| link.send(msg, wait))
    }
}

/// Echoes every message back until the end marker; checksums what it read (after echoing, so
/// the checksum overlaps the parent's next send rather than adding to the round trip).
fn echo(link: &mut dyn Link, flags: &Flags) -> Reply {
    let mut buf = Vec::new();
    let mut digest = Digest::new();
    let mut io = Retry::new(flags);
    // Forwarding in place where the link can (the checksum then reads the received message
    // after the echo is on its way, before it is released).
    loop {
        let add = &mut |m: &[u8]| digest.add_bytes(m);
        match link.forward(Wait::Until(io.deadline), add) {
            None => break,
            Some(Ok(true)) => io.count += 1,
            Some(Ok(false)) => return Reply::Done { digest },
            Some(Err(LinkError::Timeout)) => {
                if let Err(r) = io.on_timeout("receive") {
                    return r;
                }
            }
            Some(Err(e)) => return failed(&e),
        }
    }
    loop {
        if let Err(r) = io.recv(link, &mut buf) {
            return r;
        }
        if seq_of(&buf) == Some(END_SEQ) {
            return Reply::Done { digest };
        }
        if let Err(r) = io.send(link, &buf) {
            return r;
        }
        digest.add_bytes(&buf);
    }
}

/// Reads and checksums every message until the end marker, checking that none is missing,
/// returning a credit every `credit_every` messages when asked to. The checksum reads each
/// message where the link hands it over ([`Link::recv_with`]): in place for a ring.
fn sink(link: &mut dyn Link, credit_every: u64, flags: &Flags) -> Reply {
    let mut scratch = Vec::new();
    let mut digest = Digest::new();
    let mut io = Retry::new(flags);
    let mut expected: u64 = 0;
    loop {
        // What the message was: its sequence number and length (checksummed when in order).
        let mut got: (Option<u64>, usize) = (None, 0);
        let mut read = |msg: &[u8]| {
            let seq = seq_of(msg);
            got = (seq, msg.len());
            if seq == Some(expected) {
                digest.add_bytes(msg);
            }
        };
        if let Err(r) = io.recv_with(link, &mut scratch, &mut read) {
            return r;
        }
        match got.0 {
            Some(END_SEQ) => return Reply::Done { digest },
            Some(s) if s == expected => {}
            seq => {
                return Reply::Failed {
                    reason: format!(
                        "message {expected} never arrived (got {}): the mechanism lost or \
                         reordered messages",
                        seq.map_or_else(|| format!("{} bytes", got.1), |s| format!("#{s}"))
                    ),
                    skip: false,
                };
            }
        }
        expected += 1;
        if credit_every > 0 && expected.is_multiple_of(credit_every) {
            let credit = expected.to_le_bytes();
            if let Err(r) = io.send(link, &credit) {
                return r;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip() {
        let a = PeerArgs {
            control: "/tmp/x/control.sock".into(),
            parent_pid: 42,
            cpu: Some(1),
            stall_ms: 5000,
        };
        assert_eq!(PeerArgs::parse(&a.to_args()).unwrap(), a);
        let b = PeerArgs { cpu: None, ..a };
        assert_eq!(PeerArgs::parse(&b.to_args()).unwrap(), b);
        assert!(PeerArgs::parse(&["--bogus".into()]).is_err());
        assert!(PeerArgs::parse(&[]).is_err());
    }
}
