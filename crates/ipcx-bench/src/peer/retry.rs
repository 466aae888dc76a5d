//! The peer's link calls: retried across timeouts until the parent aborts, the control
//! connection closes, or the phase stalls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ipcx::wait::Wait;

use crate::mechanism::{Link, LinkError};
use crate::protocol::Reply;
use crate::stall::{SLICE, Stall};

/// What ends the peer's current phase: the parent's abort, the control connection closing,
/// Ctrl-C; and how long a phase may go without progress.
pub(super) struct Flags {
    pub(super) abort: Arc<AtomicBool>,
    pub(super) gone: Arc<AtomicBool>,
    pub(super) stall: Duration,
}

impl Flags {
    pub(super) fn stop(&self) -> bool {
        self.abort.load(Ordering::SeqCst)
            || self.gone.load(Ordering::SeqCst)
            || ipcx::interrupt::requested()
    }
}

/// The reply for a link error.
pub(super) fn failed(e: &LinkError) -> Reply {
    Reply::Failed {
        reason: e.to_string(),
        skip: e.is_skip(),
    }
}

/// A link call retried across timeouts (refreshing the deadline) until a stop flag or a stall.
pub(super) struct Retry<'a> {
    flags: &'a Flags,
    stall: Stall,
    pub(super) deadline: Instant,
    pub(super) count: u64,
}

impl<'a> Retry<'a> {
    pub(super) fn new(flags: &'a Flags) -> Retry<'a> {
        Retry {
            flags,
            stall: Stall::new(flags.stall),
            deadline: Instant::now() + SLICE,
            count: 0,
        }
    }

    pub(super) fn on_timeout(&mut self, what: &str) -> Result<(), Reply> {
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

    pub(super) fn recv(&mut self, link: &mut dyn Link, buf: &mut Vec<u8>) -> Result<(), Reply> {
        self.retry("receive", |wait| link.recv(buf, wait))
    }

    pub(super) fn recv_with(
        &mut self,
        link: &mut dyn Link,
        scratch: &mut Vec<u8>,
        read: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Reply> {
        self.retry("receive", |wait| link.recv_with(scratch, wait, read))
    }

    pub(super) fn send(&mut self, link: &mut dyn Link, msg: &[u8]) -> Result<(), Reply> {
        self.retry("send", |wait| link.send(msg, wait))
    }
}
