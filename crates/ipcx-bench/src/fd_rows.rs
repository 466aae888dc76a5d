//! The rows over anonymous kernel objects: `pipe` (two [`ipcx::pipe::pipe`]s) and `eventfd`
//! (two [`ipcx::sync::EventFd`]s).
//!
//! The peer is a separate program started before any row, so it cannot inherit these
//! descriptors: the parent creates the objects in its [`Mechanism::open`] and hands the peer
//! its ends by descriptor passing (`SCM_RIGHTS`) over a Unix seqpacket socket of
//! `ipcx::socket` bound in the run's private directory. Nothing is named, so
//! nothing outlives the two processes; the parent closes its copies of the peer's ends once
//! they are sent, so a reader sees the end of the stream (and a writer `EPIPE`) when the other
//! process dies. The handoff itself is in `rendezvous.rs`.

use std::os::fd::{AsFd, OwnedFd};

use ipcx::framing;
use ipcx::pipe::{self, PIPE_BUF, PipeError, PipeReader, PipeWriter};
use ipcx::sync::{EventFd, EventFdError};
use ipcx::wait::Wait;

use crate::checksum::END_SEQ;
use crate::mechanism::{HalfOpen, Link, LinkError, Mechanism, Prepared, RowContext, Side};
use crate::rendezvous::{Fetching, Rendezvous, RendezvousSpec};
use crate::report::Pattern;
use crate::seqonly::{self, SeqOnly};

// ---------------------------------------------------------------------------------------------
// pipe

/// `pipe`: two anonymous pipes, one per direction, framed messages of every size.
#[derive(Debug, Clone, Copy, Default)]
pub struct PipeRow;

impl Mechanism for PipeRow {
    fn name(&self) -> &str {
        "pipe"
    }

    fn description(&self) -> &str {
        "anonymous pipes (ipcx::pipe, one per direction), framed; the peer's ends passed over a \
         Unix socket"
    }

    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        Ok(Prepared::new(RendezvousSpec::new(ctx, "pipe").to_json()))
    }

    fn open(&self, spec: &str, side: Side, _: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        let spec = RendezvousSpec::parse(spec)?;
        match side {
            Side::Parent => {
                let mk =
                    || pipe::pipe().map_err(|e| LinkError::Failed(format!("creating a pipe: {e}")));
                let (peer_rx, tx) = mk()?;
                let (rx, peer_tx) = mk()?;
                Ok(Box::new(PipeParent {
                    rendezvous: Rendezvous::bind(&spec)?,
                    tx,
                    rx,
                    peer_rx,
                    peer_tx,
                }))
            }
            Side::Peer => Ok(Box::new(Fetching {
                spec,
                count: 2,
                build: |mut fds: Vec<OwnedFd>| -> Result<Box<dyn Link>, LinkError> {
                    let tx = PipeWriter::from(fds.pop().expect("two fds"));
                    let rx = PipeReader::from(fds.pop().expect("two fds"));
                    Ok(Box::new(PipeLink::new(tx, rx)))
                },
            })),
        }
    }
}

struct PipeParent {
    rendezvous: Rendezvous,
    tx: PipeWriter,
    rx: PipeReader,
    peer_rx: PipeReader,
    peer_tx: PipeWriter,
}

impl HalfOpen for PipeParent {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let PipeParent {
            rendezvous,
            tx,
            rx,
            peer_rx,
            peer_tx,
        } = *self;
        rendezvous.hand_over(&[peer_rx.as_fd(), peer_tx.as_fd()], wait)?;
        // Only the peer holds its ends now: its death ends our reads and writes.
        drop((peer_rx, peer_tx));
        Ok(Box::new(PipeLink::new(tx, rx)))
    }
}

/// Framed messages over a pair of pipes.
///
/// Frames of up to `PIPE_BUF` bytes go out with [`PipeWriter::send_wait`] (one `write(2)`, all
/// or nothing). Larger frames are encoded with [`ipcx::framing`] and written with
/// [`PipeWriter::write_wait`], resuming where a timeout left off: each pipe has a single
/// writer, and `send_wait` with `LargeFrames::SingleWriter` abandons a frame whose deadline
/// passes half-way (`PipeError::Torn`), while the harness gives every call a short deadline
/// and retries.
struct PipeLink {
    tx: PipeWriter,
    rx: PipeReader,
    /// A large frame being written, and how much of it went out.
    pending: Option<(Vec<u8>, usize)>,
}

impl PipeLink {
    fn new(tx: PipeWriter, rx: PipeReader) -> PipeLink {
        PipeLink {
            tx,
            rx,
            pending: None,
        }
    }
}

fn pipe_err(e: PipeError) -> LinkError {
    match e {
        PipeError::Timeout { .. } | PipeError::Full { .. } | PipeError::WouldBlock { .. } => {
            LinkError::Timeout
        }
        PipeError::PeerGone { .. } => LinkError::PeerGone(e.to_string()),
        PipeError::TooLarge { .. } | PipeError::FrameTooLarge { .. } => {
            LinkError::TooLarge(e.to_string())
        }
        e => LinkError::Failed(e.to_string()),
    }
}

impl Link for PipeLink {
    fn send(&mut self, msg: &[u8], wait: Wait) -> Result<(), LinkError> {
        if self.pending.is_none() {
            if msg.len() + framing::HEADER_LEN <= PIPE_BUF {
                return self.tx.send_wait(msg, wait).map_err(pipe_err);
            }
            let frame = framing::encode_frame(msg, self.tx.max_frame_len())
                .map_err(|e| LinkError::TooLarge(e.to_string()))?;
            self.pending = Some((frame, 0));
        }
        let (frame, done) = self.pending.as_mut().expect("a pending frame");
        while *done < frame.len() {
            *done += self
                .tx
                .write_wait(&frame[*done..], wait)
                .map_err(pipe_err)?;
        }
        self.pending = None;
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        *buf = self.rx.recv_wait(wait).map_err(pipe_err)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// eventfd

/// `eventfd`: two eventfd counters, one per direction; the value written is the sequence
/// number plus one (an eventfd cannot carry zero).
#[derive(Debug, Clone, Copy, Default)]
pub struct EventFdRow;

/// The counter value that ends a phase (the largest value a write may add).
const EVENTFD_END: u64 = u64::MAX - 1;

impl Mechanism for EventFdRow {
    fn name(&self) -> &str {
        "eventfd"
    }

    fn description(&self) -> &str {
        "eventfd write/read (ipcx::sync::EventFd), the counter carrying the sequence number; \
         passed to the peer over a Unix socket"
    }

    fn check_payload(&self, payload: usize) -> Result<(), String> {
        seqonly::check_payload(self.name(), payload)
    }

    fn patterns(&self) -> &[Pattern] {
        // Writes add up in the counter: one message in flight at a time.
        &[Pattern::PingPong]
    }

    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        Ok(Prepared::new(RendezvousSpec::new(ctx, "eventfd").to_json()))
    }

    fn open(&self, spec: &str, side: Side, payload: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        let spec = RendezvousSpec::parse(spec)?;
        let ev_err = |e: EventFdError| LinkError::Failed(format!("eventfd: {e}"));
        match side {
            Side::Parent => Ok(Box::new(EventFdParent {
                rendezvous: Rendezvous::bind(&spec)?,
                to_peer: EventFd::new(0).map_err(ev_err)?,
                to_parent: EventFd::new(0).map_err(ev_err)?,
                payload,
            })),
            Side::Peer => Ok(Box::new(Fetching {
                spec,
                count: 2,
                build: move |mut fds: Vec<OwnedFd>| -> Result<Box<dyn Link>, LinkError> {
                    let tx = EventFd::from_fd(fds.pop().expect("two fds")).map_err(ev_err)?;
                    let rx = EventFd::from_fd(fds.pop().expect("two fds")).map_err(ev_err)?;
                    Ok(Box::new(EventFdLink {
                        tx,
                        rx,
                        seq: SeqOnly::new(payload),
                    }))
                },
            })),
        }
    }
}

struct EventFdParent {
    rendezvous: Rendezvous,
    to_peer: EventFd,
    to_parent: EventFd,
    payload: usize,
}

impl HalfOpen for EventFdParent {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let EventFdParent {
            rendezvous,
            to_peer,
            to_parent,
            payload,
        } = *self;
        rendezvous.hand_over(&[to_peer.as_fd(), to_parent.as_fd()], wait)?;
        Ok(Box::new(EventFdLink {
            tx: to_peer,
            rx: to_parent,
            seq: SeqOnly::new(payload),
        }))
    }
}

struct EventFdLink {
    tx: EventFd,
    rx: EventFd,
    seq: SeqOnly,
}

impl Link for EventFdLink {
    fn send(&mut self, msg: &[u8], wait: Wait) -> Result<(), LinkError> {
        let seq = self.seq.seq(msg)?;
        let value = if seq == END_SEQ {
            EVENTFD_END
        } else {
            seq.checked_add(1)
                .filter(|&v| v < EVENTFD_END)
                .ok_or_else(|| LinkError::Failed(format!("sequence number {seq} out of range")))?
        };
        self.tx.write_wait(value, wait).map_err(|e| match e {
            EventFdError::Timeout | EventFdError::WouldBlock => LinkError::Timeout,
            e => LinkError::Failed(format!("eventfd write: {e}")),
        })
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        let value = self.rx.read_wait(wait).map_err(|e| match e {
            EventFdError::Timeout | EventFdError::WouldBlock => LinkError::Timeout,
            e => LinkError::Failed(format!("eventfd read: {e}")),
        })?;
        let seq = if value == EVENTFD_END {
            END_SEQ
        } else {
            value - 1
        };
        self.seq.fill(buf, seq);
        Ok(())
    }

    fn max_payload(&self) -> Option<usize> {
        Some(seqonly::MAX_PAYLOAD)
    }
}
