//! Signals as an IPC mechanism: sending (`kill`, `sigqueue` with an integer payload, pidfds that
//! never hit a recycled pid) and receiving through a `signalfd` with the sender's pid, uid and
//! payload.
//!
//! Signals are named as `kill -l` names them, with or without the `SIG` prefix: `USR1`,
//! `SIGTERM`, `RTMIN+2`, `RTMAX-1`, or by number ([`Signal`]).
//!
//! ```no_run
//! use ipcx::signal::{Signal, SignalReceiver};
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), ipcx::signal::Error> {
//! // In main(), before any thread is spawned (see "Threads" below):
//! let rx = SignalReceiver::new(&[Signal::USR1, Signal::rtmin(1)?])?;
//! let info = rx.recv_timeout(Duration::from_secs(5))?;
//! println!("{} from pid {} (uid {}), value {}", info.signal, info.pid, info.uid, info.value);
//! // A peer: ipcx::signal::queue(pid, Signal::USR1, 42)?;
//! # Ok(())
//! # }
//! ```
//!
//! # Threads
//! A signal sent to a process (`kill`, `sigqueue`) is delivered to *any one thread* of that
//! process that does not block it. [`SignalReceiver::new`] blocks its signals in the calling
//! thread only (`pthread_sigmask`); threads inherit the mask of the thread that spawns them. So
//! create the receiver (or call [`block`]) in `main` **before spawning any thread**, or block the
//! signals in every thread yourself. Otherwise the signal may land in a thread that has not
//! blocked it, where it runs its default action (for `SIGUSR1` and most others: terminate the
//! process) instead of reaching the signalfd.
//!
//! Dropping a [`SignalReceiver`] does not unblock its signals: a signal arriving afterwards would
//! otherwise run its default action. Call [`unblock`] explicitly if that is what you want.
//!
//! # Real-time signals and payloads
//! Standard signals do not queue: while one is pending, more of the same are merged into it
//! (and only the first payload survives). Real-time signals (`RTMIN+n`) queue, each with its own
//! payload, and are delivered lowest number first, in sending order for the same number.
//! `SIGRTMIN` is read at run time, since glibc reserves the first real-time signals.
//!
//! # References
//! [signal(7)](https://man7.org/linux/man-pages/man7/signal.7.html),
//! [sigqueue(3)](https://man7.org/linux/man-pages/man3/sigqueue.3.html),
//! [signalfd(2)](https://man7.org/linux/man-pages/man2/signalfd.2.html),
//! [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html),
//! [pidfd_send_signal(2)](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html).

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::Child;
use std::str::FromStr;
use std::time::Duration;

use crate::sys::poll::poll_wait;
use crate::sys::poll::{WaitError, retry_ready};
use crate::sys::signal as sys;
use crate::wait::Wait;

/// Errors of signal operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not a signal name or number this system knows.
    #[error("invalid signal {input:?}: {reason}")]
    InvalidSignal {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No process has this pid (`ESRCH`).
    #[error("no process with pid {pid}: it has exited (or never existed)")]
    NoSuchProcess {
        /// The pid.
        pid: i32,
    },
    /// The process behind a [`Process`] handle has exited and was reaped: the signal was not
    /// sent (and so cannot reach another process that reused the pid).
    #[error("process {pid} has exited: the signal was not sent")]
    Exited {
        /// The pid the handle was opened for.
        pid: i32,
    },
    /// This process may not signal the target (`EPERM`: another user's process).
    #[error("permission denied sending a signal to pid {pid}: it belongs to another user")]
    PermissionDenied {
        /// The target pid.
        pid: i32,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Too many queued real-time signals (`EAGAIN`: the receiver's `RLIMIT_SIGPENDING`).
    #[error("the signal queue of pid {pid} is full (RLIMIT_SIGPENDING): retry later")]
    QueueFull {
        /// The target pid.
        pid: i32,
    },
    /// `SIGKILL` and `SIGSTOP` cannot be blocked, caught or received through a signalfd.
    #[error("{signal} cannot be blocked or received")]
    Unblockable {
        /// The signal.
        signal: Signal,
    },
    /// `try_recv`: no signal is pending.
    #[error("no signal is pending")]
    WouldBlock,
    /// `recv_timeout`: no signal arrived before the deadline.
    #[error("timed out waiting for a signal")]
    Timeout,
    /// Any other OS error.
    #[error("{what}: {source}")]
    Io {
        /// The failed operation.
        what: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    fn io(what: &'static str, source: io::Error) -> Error {
        Error::Io { what, source }
    }

    fn on_send(what: &'static str, pid: i32, e: io::Error) -> Error {
        match e.raw_os_error() {
            Some(libc::ESRCH) => Error::NoSuchProcess { pid },
            Some(libc::EPERM) => Error::PermissionDenied { pid, source: e },
            Some(libc::EAGAIN) => Error::QueueFull { pid },
            _ => Error::io(what, e),
        }
    }
}

/// A signal: a standard one (1..=31) or a real-time one (`SIGRTMIN..=SIGRTMAX`).
///
/// Displayed as `kill -l` names it, without the prefix (`USR1`, `RTMIN+2`, `RTMAX-1`); the
/// alternate form (`{:#}`) adds `SIG`. Parsed from those forms, with or without `SIG`, in any
/// case, or from a number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(i32);

/// Standard signal names, indexed by number.
const NAMES: [&str; 32] = [
    "", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

impl Signal {
    /// `SIGHUP`.
    pub const HUP: Signal = Signal(libc::SIGHUP);
    /// `SIGINT`.
    pub const INT: Signal = Signal(libc::SIGINT);
    /// `SIGQUIT`.
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    /// `SIGILL`.
    pub const ILL: Signal = Signal(libc::SIGILL);
    /// `SIGTRAP`.
    pub const TRAP: Signal = Signal(libc::SIGTRAP);
    /// `SIGABRT`.
    pub const ABRT: Signal = Signal(libc::SIGABRT);
    /// `SIGBUS`.
    pub const BUS: Signal = Signal(libc::SIGBUS);
    /// `SIGFPE`.
    pub const FPE: Signal = Signal(libc::SIGFPE);
    /// `SIGKILL` (cannot be blocked or received).
    pub const KILL: Signal = Signal(libc::SIGKILL);
    /// `SIGUSR1`.
    pub const USR1: Signal = Signal(libc::SIGUSR1);
    /// `SIGSEGV`.
    pub const SEGV: Signal = Signal(libc::SIGSEGV);
    /// `SIGUSR2`.
    pub const USR2: Signal = Signal(libc::SIGUSR2);
    /// `SIGPIPE`.
    pub const PIPE: Signal = Signal(libc::SIGPIPE);
    /// `SIGALRM`.
    pub const ALRM: Signal = Signal(libc::SIGALRM);
    /// `SIGTERM`.
    pub const TERM: Signal = Signal(libc::SIGTERM);
    /// `SIGCHLD`.
    pub const CHLD: Signal = Signal(libc::SIGCHLD);
    /// `SIGCONT`.
    pub const CONT: Signal = Signal(libc::SIGCONT);
    /// `SIGSTOP` (cannot be blocked or received).
    pub const STOP: Signal = Signal(libc::SIGSTOP);
    /// `SIGTSTP`.
    pub const TSTP: Signal = Signal(libc::SIGTSTP);
    /// `SIGTTIN`.
    pub const TTIN: Signal = Signal(libc::SIGTTIN);
    /// `SIGTTOU`.
    pub const TTOU: Signal = Signal(libc::SIGTTOU);
    /// `SIGURG`.
    pub const URG: Signal = Signal(libc::SIGURG);
    /// `SIGXCPU`.
    pub const XCPU: Signal = Signal(libc::SIGXCPU);
    /// `SIGXFSZ`.
    pub const XFSZ: Signal = Signal(libc::SIGXFSZ);
    /// `SIGVTALRM`.
    pub const VTALRM: Signal = Signal(libc::SIGVTALRM);
    /// `SIGPROF`.
    pub const PROF: Signal = Signal(libc::SIGPROF);
    /// `SIGWINCH`.
    pub const WINCH: Signal = Signal(libc::SIGWINCH);
    /// `SIGIO` (`SIGPOLL`).
    pub const IO: Signal = Signal(libc::SIGIO);
    /// `SIGPWR`.
    pub const PWR: Signal = Signal(libc::SIGPWR);
    /// `SIGSYS`.
    pub const SYS: Signal = Signal(libc::SIGSYS);

    /// The signal with number `raw`: 1..=31 or `SIGRTMIN..=SIGRTMAX` (the numbers between,
    /// reserved by the C library, are rejected).
    pub fn from_raw(raw: i32) -> Result<Signal, Error> {
        let bad = |reason| Error::InvalidSignal {
            input: raw.to_string(),
            reason,
        };
        if (1..=31).contains(&raw) || (sys::sigrtmin()..=sys::sigrtmax()).contains(&raw) {
            Ok(Signal(raw))
        } else if raw > 31 && raw < sys::sigrtmin() {
            Err(bad("reserved by the C library (below SIGRTMIN)"))
        } else {
            Err(bad("not a signal number (1..=31 or SIGRTMIN..=SIGRTMAX)"))
        }
    }

    /// `SIGRTMIN+n` (`n` up to `SIGRTMAX - SIGRTMIN`).
    pub fn rtmin(n: u32) -> Result<Signal, Error> {
        let (lo, hi) = (sys::sigrtmin(), sys::sigrtmax());
        match i32::try_from(n).ok().and_then(|n| lo.checked_add(n)) {
            Some(s) if s <= hi => Ok(Signal(s)),
            _ => Err(Error::InvalidSignal {
                input: format!("RTMIN+{n}"),
                reason: "beyond SIGRTMAX",
            }),
        }
    }

    /// `SIGRTMAX-n` (`n` up to `SIGRTMAX - SIGRTMIN`).
    pub fn rtmax(n: u32) -> Result<Signal, Error> {
        let (lo, hi) = (sys::sigrtmin(), sys::sigrtmax());
        match i32::try_from(n).ok().and_then(|n| hi.checked_sub(n)) {
            Some(s) if s >= lo => Ok(Signal(s)),
            _ => Err(Error::InvalidSignal {
                input: format!("RTMAX-{n}"),
                reason: "below SIGRTMIN",
            }),
        }
    }

    /// The signal number.
    pub fn raw(self) -> i32 {
        self.0
    }

    /// Whether this is a real-time signal (queued, delivered in order).
    pub fn is_realtime(self) -> bool {
        self.0 >= sys::sigrtmin()
    }

    fn name(self) -> String {
        if let Some(n) = usize::try_from(self.0).ok().and_then(|i| NAMES.get(i))
            && !n.is_empty()
        {
            return (*n).to_owned();
        }
        let (lo, hi) = (sys::sigrtmin(), sys::sigrtmax());
        if (lo..=hi).contains(&self.0) {
            // Like bash's `kill -l`: the lower half counts up from RTMIN, the upper half down
            // from RTMAX.
            let off = self.0 - lo;
            if off == 0 {
                "RTMIN".to_owned()
            } else if self.0 == hi {
                "RTMAX".to_owned()
            } else if off <= (hi - lo) / 2 {
                format!("RTMIN+{off}")
            } else {
                format!("RTMAX-{}", hi - self.0)
            }
        } else {
            self.0.to_string()
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            f.write_str("SIG")?;
        }
        f.write_str(&self.name())
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signal({:#} = {})", self, self.0)
    }
}

impl FromStr for Signal {
    type Err = Error;

    fn from_str(s: &str) -> Result<Signal, Error> {
        let bad = |reason| Error::InvalidSignal {
            input: s.to_owned(),
            reason,
        };
        let t = s.trim();
        if let Ok(n) = t.parse::<i32>() {
            return Signal::from_raw(n).map_err(|e| match e {
                Error::InvalidSignal { reason, .. } => bad(reason),
                other => other,
            });
        }
        let up = t.to_ascii_uppercase();
        let name = up.strip_prefix("SIG").unwrap_or(&up);
        let num = |digits: &str| -> Result<u32, Error> {
            digits
                .parse::<u32>()
                .map_err(|_| bad("expected a number after RTMIN+ or RTMAX-, as in RTMIN+2"))
        };
        let out_of_range = |_| bad("outside SIGRTMIN..=SIGRTMAX");
        match name {
            "RTMIN" => return Signal::rtmin(0).map_err(out_of_range),
            "RTMAX" => return Signal::rtmax(0).map_err(out_of_range),
            "IOT" => return Ok(Signal::ABRT),
            "POLL" => return Ok(Signal::IO),
            "CLD" => return Ok(Signal::CHLD),
            _ => {}
        }
        if let Some(n) = name.strip_prefix("RTMIN+") {
            return Signal::rtmin(num(n)?).map_err(out_of_range);
        }
        if let Some(n) = name.strip_prefix("RTMAX-") {
            return Signal::rtmax(num(n)?).map_err(out_of_range);
        }
        match NAMES.iter().position(|n| !n.is_empty() && *n == name) {
            Some(i) => Ok(Signal(i as i32)),
            None => Err(bad(
                "unknown signal name; use a name from `kill -l` (USR1, SIGTERM, RTMIN+2) or a number",
            )),
        }
    }
}

/// Sends `signal` to process `pid` (`kill(2)`); the receiver sees code [`SigCode::User`].
///
/// A pid can be reused once its process exits and is reaped; use a [`Process`] handle to be
/// sure to signal the process you mean.
#[doc(alias = "kill")]
pub fn send(pid: i32, signal: Signal) -> Result<(), Error> {
    check_pid(pid)?;
    sys::kill(pid, signal.0).map_err(|e| Error::on_send("kill", pid, e))
}

/// Sends `signal` with the integer payload `value` to process `pid` (`sigqueue(3)`); the
/// receiver sees code [`SigCode::Queue`] and the value. Works for standard and real-time
/// signals, but only real-time signals queue (see the module docs).
#[doc(alias = "sigqueue")]
pub fn queue(pid: i32, signal: Signal, value: i32) -> Result<(), Error> {
    check_pid(pid)?;
    sys::sigqueue(pid, signal.0, value).map_err(|e| Error::on_send("sigqueue", pid, e))
}

/// Rejects pids that would address a process group or every process (0 and negative numbers
/// mean that to `kill(2)`).
fn check_pid(pid: i32) -> Result<(), Error> {
    if pid <= 0 {
        return Err(Error::Io {
            what: "signal a process",
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("pid {pid} is not a single process (0 and negative pids address groups)"),
            ),
        });
    }
    Ok(())
}

fn sigset(signals: &[Signal]) -> Result<sys::SigSet, Error> {
    let mut set = sys::SigSet::empty();
    for &s in signals {
        if s == Signal::KILL || s == Signal::STOP {
            return Err(Error::Unblockable { signal: s });
        }
        set.add(s.0).map_err(|e| Error::io("sigaddset", e))?;
    }
    Ok(set)
}

/// Blocks `signals` in the calling thread (`pthread_sigmask(SIG_BLOCK)`). Call it in `main`
/// before spawning threads so that every thread inherits the mask (see the module docs).
pub fn block(signals: &[Signal]) -> Result<(), Error> {
    let set = sigset(signals)?;
    sys::thread_sigmask(sys::MaskHow::Block, &set)
        .map(drop)
        .map_err(|e| Error::io("pthread_sigmask", e))
}

/// Unblocks `signals` in the calling thread. Pending ones are then delivered at once (and run
/// their handler or default action).
pub fn unblock(signals: &[Signal]) -> Result<(), Error> {
    let set = sigset(signals)?;
    sys::thread_sigmask(sys::MaskHow::Unblock, &set)
        .map(drop)
        .map_err(|e| Error::io("pthread_sigmask", e))
}

/// Whether `signal` is blocked in the calling thread.
pub fn is_blocked(signal: Signal) -> Result<bool, Error> {
    sys::current_thread_mask()
        .map(|m| m.contains(signal.0))
        .map_err(|e| Error::io("pthread_sigmask", e))
}

/// How a signal was sent (`si_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SigCode {
    /// `SI_USER`: `kill(2)` (or `pidfd_send_signal` without payload).
    User,
    /// `SI_QUEUE`: `sigqueue(3)` (or a [`Process`] send with payload).
    Queue,
    /// `SI_KERNEL`: the kernel.
    Kernel,
    /// `SI_TKILL`: `tkill(2)`/`tgkill(2)`.
    Tkill,
    /// `SI_TIMER`: a POSIX timer expired.
    Timer,
    /// `SI_MESGQ`: a POSIX message queue notification.
    MessageQueue,
    /// `SI_ASYNCIO`: asynchronous I/O completed.
    AsyncIo,
    /// Any other code (for example the `CLD_*` codes of `SIGCHLD`).
    Other(i32),
}

impl SigCode {
    fn from_raw(code: i32) -> SigCode {
        match code {
            libc::SI_USER => SigCode::User,
            libc::SI_QUEUE => SigCode::Queue,
            libc::SI_KERNEL => SigCode::Kernel,
            libc::SI_TKILL => SigCode::Tkill,
            libc::SI_TIMER => SigCode::Timer,
            libc::SI_MESGQ => SigCode::MessageQueue,
            libc::SI_ASYNCIO => SigCode::AsyncIo,
            other => SigCode::Other(other),
        }
    }
}

/// One received signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignalInfo {
    /// The signal.
    pub signal: Signal,
    /// The sender's pid (for `SI_USER`/`SI_QUEUE`; 0 for signals from the kernel).
    pub pid: i32,
    /// The sender's real uid.
    pub uid: u32,
    /// How it was sent.
    pub code: SigCode,
    /// The integer payload (`sival_int`; 0 without payload).
    pub value: i32,
    /// The payload as a pointer-sized integer (`sival_ptr`).
    pub value_ptr: u64,
    /// For `SIGCHLD`: the child's exit status or signal.
    pub status: i32,
}

/// Receives signals through a `signalfd(2)`.
///
/// Creating one blocks its signals in the calling thread; see the module docs for what the
/// rest of the program must do ("Threads"). The fd is close-on-exec and non-blocking; it is
/// readable while one of its signals is pending, so it can be polled or used with an event loop
/// (with the `tokio` feature: [`AsyncSignalReceiver`]).
#[derive(Debug)]
#[doc(alias = "signalfd")]
pub struct SignalReceiver {
    fd: OwnedFd,
}

impl SignalReceiver {
    /// Blocks `signals` in the calling thread and opens a signalfd for them.
    /// [`Error::Unblockable`] for `KILL` and `STOP`.
    pub fn new(signals: &[Signal]) -> Result<SignalReceiver, Error> {
        let set = sigset(signals)?;
        sys::thread_sigmask(sys::MaskHow::Block, &set)
            .map_err(|e| Error::io("pthread_sigmask", e))?;
        let fd = sys::signalfd(&set).map_err(|e| Error::io("signalfd", e))?;
        Ok(SignalReceiver { fd })
    }

    /// Waits for the next signal.
    pub fn recv(&self) -> Result<SignalInfo, Error> {
        self.recv_wait(Wait::Forever)
    }

    /// The next pending signal; [`Error::WouldBlock`] if none is pending.
    pub fn try_recv(&self) -> Result<SignalInfo, Error> {
        self.recv_wait(Wait::NoWait)
    }

    /// Waits at most `timeout` for the next signal; [`Error::Timeout`] if none arrives.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<SignalInfo, Error> {
        self.recv_wait(Wait::timeout(timeout))
    }

    /// Waits for the next signal as `wait` says.
    pub fn recv_wait(&self, wait: Wait) -> Result<SignalInfo, Error> {
        // Only `WouldBlock` reaches the wait loop as an error; every other outcome of the read
        // comes back as `Ok`.
        let read = || match read_info(&self.fd) {
            Err(Error::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            other => Ok(other),
        };
        match retry_ready(self.fd.as_fd(), true, wait, read) {
            Ok(outcome) => outcome,
            Err(WaitError::WouldBlock) => Err(Error::WouldBlock),
            Err(WaitError::Timeout) => Err(Error::Timeout),
            Err(WaitError::Io(e)) => Err(Error::io("poll", e)),
        }
    }
}

fn read_info(fd: impl AsFd) -> Result<SignalInfo, Error> {
    let raw = sys::read_siginfo(fd).map_err(|e| {
        if e.kind() == io::ErrorKind::WouldBlock {
            Error::WouldBlock
        } else {
            Error::io("read(signalfd)", e)
        }
    })?;
    Ok(SignalInfo {
        signal: Signal(raw.signo as i32),
        pid: raw.pid as i32,
        uid: raw.uid,
        code: SigCode::from_raw(raw.code),
        value: raw.int,
        value_ptr: raw.ptr,
        status: raw.status,
    })
}

impl AsFd for SignalReceiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for SignalReceiver {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<OwnedFd> for SignalReceiver {
    /// Wraps an existing signalfd (which should be non-blocking: `SFD_NONBLOCK`). The mask of
    /// the signals it reports is not changed.
    fn from(fd: OwnedFd) -> SignalReceiver {
        SignalReceiver { fd }
    }
}

impl From<SignalReceiver> for OwnedFd {
    fn from(rx: SignalReceiver) -> OwnedFd {
        rx.fd
    }
}

/// A handle on one process through a pidfd (`pidfd_open(2)`).
///
/// Unlike a pid, a pidfd keeps referring to the same process: once that process has exited and
/// been reaped, sending fails with [`Error::Exited`] instead of reaching whichever process got
/// the pid next. The fd becomes readable when the process exits ([`Process::has_exited`],
/// [`Process::wait_exit_timeout`], or poll it yourself).
#[derive(Debug)]
#[doc(alias = "pidfd")]
pub struct Process {
    fd: OwnedFd,
    pid: i32,
}

impl Process {
    /// Opens a pidfd for `pid`. The pid is checked once, here: if it was already reused, the
    /// handle refers to the new process, so prefer [`Process::from_child`] for your own
    /// children. [`Error::NoSuchProcess`] if there is no such process.
    #[doc(alias = "pidfd_open")]
    pub fn from_pid(pid: i32) -> Result<Process, Error> {
        check_pid(pid)?;
        let fd = sys::pidfd_open(pid).map_err(|e| match e.raw_os_error() {
            Some(libc::ESRCH) => Error::NoSuchProcess { pid },
            _ => Error::io("pidfd_open", e),
        })?;
        Ok(Process { fd, pid })
    }

    /// Opens a pidfd for a child spawned with `std::process`. Race-free as long as the child
    /// has not been waited for yet (an unreaped child keeps its pid), so call this before
    /// `wait`/`try_wait` reports its exit.
    pub fn from_child(child: &Child) -> Result<Process, Error> {
        let pid = i32::try_from(child.id()).map_err(|_| Error::NoSuchProcess { pid: -1 })?;
        Process::from_pid(pid)
    }

    /// The pid the handle was opened for.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `signal` (like `kill`; the receiver sees [`SigCode::User`]).
    /// [`Error::Exited`] if the process has exited and was reaped.
    #[doc(alias = "pidfd_send_signal")]
    pub fn send(&self, signal: Signal) -> Result<(), Error> {
        sys::pidfd_send_signal(self.fd.as_fd(), signal.0, None).map_err(|e| self.send_error(e))
    }

    /// Sends `signal` with the payload `value`, as `sigqueue` would (the receiver sees
    /// [`SigCode::Queue`], this process's pid and uid, and the value).
    pub fn queue(&self, signal: Signal, value: i32) -> Result<(), Error> {
        sys::pidfd_send_signal(self.fd.as_fd(), signal.0, Some(value))
            .map_err(|e| self.send_error(e))
    }

    fn send_error(&self, e: io::Error) -> Error {
        match e.raw_os_error() {
            Some(libc::ESRCH) => Error::Exited { pid: self.pid },
            _ => Error::on_send("pidfd_send_signal", self.pid, e),
        }
    }

    /// Whether the process has exited (the pidfd is readable); it may not be reaped yet.
    pub fn has_exited(&self) -> Result<bool, Error> {
        crate::sys::poll::poll(self.fd.as_fd(), true, false, 0)
            .map(|ev| ev.any())
            .map_err(|e| Error::io("poll(pidfd)", e))
    }

    /// Waits at most `timeout` for the process to exit; [`Error::Timeout`] if it is still
    /// running.
    pub fn wait_exit_timeout(&self, timeout: Duration) -> Result<(), Error> {
        let wait = Wait::timeout(timeout);
        match poll_wait(self.fd.as_fd(), true, wait).map_err(|e| Error::io("poll(pidfd)", e))? {
            Some(_) => Ok(()),
            None => Err(Error::Timeout),
        }
    }

    /// Waits (without blocking a thread) until the process exits.
    #[cfg(feature = "tokio")]
    pub async fn exited(&self) -> Result<(), Error> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| Error::io("dup(pidfd)", e))?;
        let afd = sys::register_async(fd).map_err(|e| Error::io("AsyncFd(pidfd)", e))?;
        let _guard = afd
            .readable()
            .await
            .map_err(|e| Error::io("poll(pidfd)", e))?;
        Ok(())
    }
}

impl AsFd for Process {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Process {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<OwnedFd> for Process {
    /// Wraps an existing pidfd; its pid is read from `/proc/self/fdinfo` (`-1` if unknown or
    /// already reaped).
    fn from(fd: OwnedFd) -> Process {
        let pid = sys::pidfd_pid(fd.as_fd()).unwrap_or(-1);
        Process { fd, pid }
    }
}

impl From<Process> for OwnedFd {
    fn from(p: Process) -> OwnedFd {
        p.fd
    }
}

/// A [`SignalReceiver`] for tokio: waits on the signalfd without blocking a thread.
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub struct AsyncSignalReceiver {
    inner: tokio::io::unix::AsyncFd<OwnedFd>,
}

#[cfg(feature = "tokio")]
impl AsyncSignalReceiver {
    /// Blocks `signals` in the calling thread and opens a signalfd for them (see the module
    /// docs: with a multi-threaded runtime, block the signals in `main` before building the
    /// runtime, with [`block`]). Must be called within a tokio runtime.
    pub fn new(signals: &[Signal]) -> Result<AsyncSignalReceiver, Error> {
        AsyncSignalReceiver::from_receiver(SignalReceiver::new(signals)?)
    }

    /// Wraps a receiver. Must be called within a tokio runtime.
    pub fn from_receiver(rx: SignalReceiver) -> Result<AsyncSignalReceiver, Error> {
        let inner = sys::register_async(rx.fd).map_err(|e| Error::io("AsyncFd(signalfd)", e))?;
        Ok(AsyncSignalReceiver { inner })
    }

    /// Waits for the next signal.
    pub async fn recv(&self) -> Result<SignalInfo, Error> {
        loop {
            let mut guard = self
                .inner
                .readable()
                .await
                .map_err(|e| Error::io("poll(signalfd)", e))?;
            match read_info(guard.get_inner()) {
                Err(Error::WouldBlock) => guard.clear_ready(),
                other => return other,
            }
        }
    }

    /// Unwraps the blocking receiver (deregistering the fd from the reactor).
    pub fn into_inner(self) -> SignalReceiver {
        SignalReceiver {
            fd: self.inner.into_inner(),
        }
    }
}

#[cfg(feature = "tokio")]
impl AsFd for AsyncSignalReceiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.get_ref().as_fd()
    }
}

#[cfg(feature = "tokio")]
impl AsRawFd for AsyncSignalReceiver {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.get_ref().as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Signal {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_names_with_and_without_prefix() {
        assert_eq!(parse("USR1"), Signal::USR1);
        assert_eq!(parse("SIGUSR1"), Signal::USR1);
        assert_eq!(parse("sigterm"), Signal::TERM);
        assert_eq!(parse("term"), Signal::TERM);
        assert_eq!(parse("9"), Signal::KILL);
        assert_eq!(parse("IOT"), Signal::ABRT);
        assert_eq!(parse("SIGPOLL"), Signal::IO);
        assert_eq!(parse("CLD"), Signal::CHLD);
    }

    #[test]
    fn parses_realtime_signals_relative_to_runtime_rtmin() {
        let lo = libc::SIGRTMIN();
        let hi = libc::SIGRTMAX();
        assert_eq!(parse("RTMIN").raw(), lo);
        assert_eq!(parse("SIGRTMIN+2").raw(), lo + 2);
        assert_eq!(parse("rtmin+2").raw(), lo + 2);
        assert_eq!(parse("RTMAX").raw(), hi);
        assert_eq!(parse("RTMAX-3").raw(), hi - 3);
        assert_eq!(parse(&(lo + 1).to_string()).raw(), lo + 1);
        assert!(parse("RTMIN+1").is_realtime());
        assert!(!Signal::USR1.is_realtime());
    }

    #[test]
    fn rejects_bad_signals() {
        let lo = libc::SIGRTMIN();
        let hi = libc::SIGRTMAX();
        for bad in [
            "",
            "0",
            "-1",
            "FOO",
            "SIG",
            "RTMIN+",
            "RTMIN+x",
            "RTMIN-1",
            "1000",
            "SIGRTMAX+1",
        ] {
            assert!(
                matches!(bad.parse::<Signal>(), Err(Error::InvalidSignal { .. })),
                "{bad:?}"
            );
        }
        assert!(format!("RTMIN+{}", hi - lo + 1).parse::<Signal>().is_err());
        assert!(format!("RTMAX-{}", hi - lo + 1).parse::<Signal>().is_err());
        if lo > 32 {
            assert!(Signal::from_raw(32).is_err());
        }
        assert!(Signal::from_raw(hi + 1).is_err());
    }

    #[test]
    fn displays_like_kill_dash_l() {
        let lo = libc::SIGRTMIN();
        let hi = libc::SIGRTMAX();
        assert_eq!(Signal::USR1.to_string(), "USR1");
        assert_eq!(format!("{:#}", Signal::TERM), "SIGTERM");
        assert_eq!(Signal::rtmin(0).unwrap().to_string(), "RTMIN");
        assert_eq!(Signal::rtmin(2).unwrap().to_string(), "RTMIN+2");
        assert_eq!(Signal::rtmax(0).unwrap().to_string(), "RTMAX");
        assert_eq!(Signal::rtmax(1).unwrap().to_string(), "RTMAX-1");
        assert_eq!(format!("{:#}", Signal::rtmin(2).unwrap()), "SIGRTMIN+2");
        // Every valid signal round-trips through its name.
        for raw in (1..=31).chain(lo..=hi) {
            let s = Signal::from_raw(raw).unwrap();
            assert_eq!(parse(&s.to_string()), s, "{s}");
            assert_eq!(parse(&format!("{s:#}")), s, "{s:#}");
        }
        if (lo, hi) == (34, 64) {
            // The numbering bash prints with `kill -l`.
            assert_eq!(Signal::from_raw(49).unwrap().to_string(), "RTMIN+15");
            assert_eq!(Signal::from_raw(50).unwrap().to_string(), "RTMAX-14");
        }
    }

    #[test]
    fn kill_and_stop_cannot_be_received() {
        assert!(matches!(
            SignalReceiver::new(&[Signal::KILL]),
            Err(Error::Unblockable { .. })
        ));
        assert!(matches!(
            block(&[Signal::STOP]),
            Err(Error::Unblockable { .. })
        ));
    }

    #[test]
    fn signal_zero_and_groups_are_not_targets() {
        assert!(send(0, Signal::USR1).is_err());
        assert!(send(-1, Signal::USR1).is_err());
        assert!(queue(-5, Signal::USR1, 1).is_err());
    }
}
