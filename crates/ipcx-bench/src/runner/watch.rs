//! The watch over one measurement: every link operation runs through it, so that Ctrl-C, a
//! failing or dead peer and a stall end the measurement.

use std::time::{Duration, Instant};

use ipcx::wait::Wait;

use super::error::PhaseError;
use super::peer_process::Peer;
use crate::checksum::{Digest, PayloadGen};
use crate::mechanism::{Link, LinkError};
use crate::protocol::Reply;
use crate::stall::{SLICE, Stall};

/// Watches over one measurement: Ctrl-C, a failing or dead peer, a stall.
pub(super) struct Watch<'a> {
    pub(super) peer: &'a mut Peer,
    pub(super) stop: &'a dyn Fn() -> bool,
    pub(super) stall: Stall,
    pub(super) count: u64,
    /// Whether the peer already answered this phase (no resync needed after an error).
    pub(super) answered: bool,
}

impl Watch<'_> {
    pub(super) fn check(&mut self) -> Result<(), PhaseError> {
        if (self.stop)() {
            return Err(PhaseError::Interrupted);
        }
        let reply = self.peer.poll_reply()?;
        if reply.is_some() {
            self.answered = true;
        }
        match reply {
            Some(Reply::Failed { reason, skip }) => {
                return Err(if skip {
                    PhaseError::Skip(reason)
                } else {
                    PhaseError::Failed(format!("peer: {reason}"))
                });
            }
            Some(other) => {
                return Err(PhaseError::PeerLost(format!(
                    "the peer answered {other:?} in the middle of a measurement"
                )));
            }
            None => {}
        }
        if !self.peer.alive() {
            return Err(PhaseError::PeerLost("the peer process exited".into()));
        }
        if self.stall.stalled(self.count, Instant::now()) {
            return Err(PhaseError::Failed(
                "no progress within the stall timeout: the mechanism stopped moving messages"
                    .into(),
            ));
        }
        Ok(())
    }

    /// A link error; for a vanished peer, its own explanation when it sent one.
    pub(super) fn link_error(&mut self, e: LinkError) -> PhaseError {
        if let LinkError::PeerGone(_) = e {
            // Give a dying peer a moment to be reaped, then say what happened.
            let deadline = Instant::now() + Duration::from_millis(200);
            while self.peer.alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if !self.peer.alive() {
                return PhaseError::PeerLost(format!(
                    "the peer process died during the measurement ({e})"
                ));
            }
        }
        if let LinkError::PeerGone(_) = e
            && let Ok(Reply::Failed { reason, skip }) =
                self.peer.wait_reply(Duration::from_millis(500), self.stop)
        {
            self.answered = true;
            return if skip {
                PhaseError::Skip(reason)
            } else {
                PhaseError::Failed(format!("peer: {reason}"))
            };
        }
        e.into()
    }

    /// Runs one link operation until it succeeds, renewing the deadline by a [`SLICE`] each
    /// time it runs out (after checking the peer is still there and no stop was asked for).
    pub(super) fn retry(
        &mut self,
        deadline: &mut Instant,
        mut op: impl FnMut(Wait) -> Result<(), LinkError>,
    ) -> Result<(), PhaseError> {
        loop {
            match op(Wait::Until(*deadline)) {
                Ok(()) => {
                    self.count += 1;
                    return Ok(());
                }
                Err(LinkError::Timeout) => {
                    self.check()?;
                    *deadline = Instant::now() + SLICE;
                }
                Err(e) => return Err(self.link_error(e)),
            }
        }
    }

    pub(super) fn send(
        &mut self,
        link: &mut dyn Link,
        msg: &[u8],
        deadline: &mut Instant,
    ) -> Result<(), PhaseError> {
        self.retry(deadline, |wait| link.send(msg, wait))
    }

    /// [`Watch::send`] for message `seq` of `template`, written where the link wants it.
    pub(super) fn send_generated(
        &mut self,
        link: &mut dyn Link,
        template: &mut PayloadGen,
        seq: u64,
        deadline: &mut Instant,
    ) -> Result<(), PhaseError> {
        self.retry(deadline, |wait| link.send_generated(template, seq, wait))
    }

    /// [`Watch::recv`] through [`Link::recv_with`]: `read` sees the message where it lies.
    pub(super) fn recv_with(
        &mut self,
        link: &mut dyn Link,
        scratch: &mut Vec<u8>,
        deadline: &mut Instant,
        read: &mut dyn FnMut(&[u8]),
    ) -> Result<(), PhaseError> {
        self.retry(deadline, |wait| link.recv_with(scratch, wait, read))
    }

    pub(super) fn recv(
        &mut self,
        link: &mut dyn Link,
        buf: &mut Vec<u8>,
        deadline: &mut Instant,
    ) -> Result<(), PhaseError> {
        self.retry(deadline, |wait| link.recv(buf, wait))
    }

    /// Waits for the peer's `Done` at the end of a phase.
    pub(super) fn done(&mut self, timeout: Duration) -> Result<Digest, PhaseError> {
        let reply = self.peer.wait_reply(timeout, self.stop)?;
        self.answered = true;
        match reply {
            Reply::Done { digest } => Ok(digest),
            Reply::Failed { reason, skip: true } => Err(PhaseError::Skip(reason)),
            Reply::Failed { reason, .. } => Err(PhaseError::Failed(format!("peer: {reason}"))),
            other => Err(PhaseError::PeerLost(format!(
                "the peer answered {other:?} instead of done"
            ))),
        }
    }
}
