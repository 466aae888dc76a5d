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
//! # fn main() -> Result<(), ipcx::signal::SignalError> {
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

mod error;
mod mask;
mod number;
mod process;
mod receiver;
mod send;
#[cfg(feature = "tokio")]
mod tokio;

#[cfg(feature = "tokio")]
pub use self::tokio::AsyncSignalReceiver;
pub use error::SignalError;
pub use mask::{block, is_blocked, unblock};
pub use number::Signal;
pub use process::Process;
pub use receiver::{SigCode, SignalInfo, SignalReceiver};
pub use send::{queue, send};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_and_stop_cannot_be_received() {
        assert!(matches!(
            SignalReceiver::new(&[Signal::KILL]),
            Err(SignalError::Unblockable { .. })
        ));
        assert!(matches!(
            block(&[Signal::STOP]),
            Err(SignalError::Unblockable { .. })
        ));
    }

    #[test]
    fn signal_zero_and_groups_are_not_targets() {
        assert!(send(0, Signal::USR1).is_err());
        assert!(send(-1, Signal::USR1).is_err());
        assert!(queue(-5, Signal::USR1, 1).is_err());
    }
}
