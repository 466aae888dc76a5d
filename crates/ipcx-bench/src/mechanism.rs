//! The row plug-in interface: what a mechanism must provide to be measured.
//!
//! A row runs between two processes, the *parent* (which times) and the *peer* (which echoes
//! and sinks). For each payload size the harness:
//!
//! 1. calls [`Mechanism::check_payload`] (static limits: a skipped row says why);
//! 2. calls [`Mechanism::prepare`] in the parent: fresh unique names under the run's private
//!    directory, objects the parent must own; it returns a [`Prepared`] whose `spec` string is
//!    sent to the peer and whose `guard` the parent keeps until the row ends (dropping it removes
//!    what it created);
//! 3. calls [`Mechanism::open`] on both sides with the spec: each side creates its *receiving*
//!    half (binds, listens, creates its queue) and returns a [`HalfOpen`];
//! 4. once both receiving halves exist, calls [`HalfOpen::connect`] on both sides: each side opens
//!    its sending half and gets a [`Link`];
//! 5. drives the [`Link`]s: ping-pong (the parent sends, the peer echoes) and one-way streaming
//!    (the parent sends, the peer reads every byte, checksums it and reports the digest).
//!
//! Every message starts with its 8-byte little-endian sequence number; `u64::MAX` ends a phase.
//! A `Link` only moves bytes: counting, checksums and timing are the harness's job.
//!
//! A row that carries no data of its own (futex, eventfd, semaphores, signals) still implements
//! `Link`: it may carry the 8-byte sequence number as the value the mechanism transports (an
//! eventfd count, a sigqueue value) or in a shared-memory slot it wakes the other side for, and
//! reject larger payloads in [`Mechanism::check_payload`].

use std::any::Any;
use std::fmt;
use std::path::PathBuf;

use ipcx::wait::Wait;

use crate::checksum::PayloadGen;
use crate::report::Pattern;

/// Which of the two processes is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The process that times and sends first.
    Parent,
    /// The re-executed process that echoes and sinks.
    Peer,
}

/// Why a link operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The wait ran out; nothing was lost, call again (the harness retries after checking for
    /// Ctrl-C and a dead peer).
    #[error("timed out")]
    Timeout,
    /// The mechanism cannot carry this payload: the row is reported as skipped with this reason.
    #[error("{0}")]
    TooLarge(String),
    /// The mechanism is not available here (not built, not permitted): skipped with this reason.
    #[error("{0}")]
    Unsupported(String),
    /// The other side closed or died.
    #[error("peer gone: {0}")]
    PeerGone(String),
    /// Anything else: the row is reported as failed with this message.
    #[error("{0}")]
    Failed(String),
}

impl LinkError {
    /// Whether the row should be reported as skipped (rather than failed).
    pub fn is_skip(&self) -> bool {
        matches!(self, LinkError::TooLarge(_) | LinkError::Unsupported(_))
    }
}

impl From<std::io::Error> for LinkError {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::WouldBlock | K::TimedOut => LinkError::Timeout,
            K::BrokenPipe | K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof => {
                LinkError::PeerGone(e.to_string())
            }
            _ => LinkError::Failed(e.to_string()),
        }
    }
}

/// [`Link::recv`] for a link that lends its messages in place: receives through
/// [`Link::recv_with`] and copies the message into the caller's reused `buf`.
pub fn recv_copied<L: Link + ?Sized>(
    link: &mut L,
    buf: &mut Vec<u8>,
    wait: Wait,
) -> Result<(), LinkError> {
    link.recv_with(&mut Vec::new(), wait, &mut |m| {
        buf.clear();
        buf.extend_from_slice(m);
    })
}

/// A two-way message link between the parent and the peer: one side of it.
pub trait Link: Send {
    /// Sends one message. Returns [`LinkError::Timeout`] when `wait` runs out before the message
    /// was accepted; the harness then calls again with the same message, so an implementation
    /// that accepted part of it must remember how much.
    fn send(&mut self, msg: &[u8], wait: Wait) -> Result<(), LinkError>;

    /// Receives one message into `buf` (replacing its contents). [`LinkError::Timeout`] when
    /// `wait` runs out; a partially received message must be kept for the next call.
    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError>;

    /// Receives one message and hands it to `read` as a slice, once. A link that can expose
    /// the message where it lies (a shared-memory ring) does so and leaves `scratch` alone; the
    /// default receives into `scratch` with [`Link::recv`] and hands that over. Timeouts as for
    /// [`Link::recv`] (`read` is not called then).
    fn recv_with(
        &mut self,
        scratch: &mut Vec<u8>,
        wait: Wait,
        read: &mut dyn FnMut(&[u8]),
    ) -> Result<(), LinkError> {
        self.recv(scratch, wait)?;
        read(scratch);
        Ok(())
    }

    /// Echo in place: receives one message and, unless it is the end marker (sequence number
    /// [`crate::checksum::END_SEQ`]: not echoed, `Ok(false)`), sends it straight back, then
    /// hands it to `read` (`Ok(true)`). A link that can forward a message where it lies (a
    /// ring: from the received sample into a loan, one copy) implements it; the default is
    /// `None`, and the caller receives and sends through [`Link::recv`] and [`Link::send`].
    /// A timeout (`Some(Err(Timeout))`) consumes nothing.
    fn forward(
        &mut self,
        _wait: Wait,
        _read: &mut dyn FnMut(&[u8]),
    ) -> Option<Result<bool, LinkError>> {
        None
    }

    /// Sends message `seq` of `template`. A link that can write the message in place (into a
    /// ring's loan) overrides this with [`PayloadGen::write_message`]; the default sends
    /// [`PayloadGen::message`] with [`Link::send`]. Timeouts as for [`Link::send`].
    fn send_generated(
        &mut self,
        template: &mut PayloadGen,
        seq: u64,
        wait: Wait,
    ) -> Result<(), LinkError> {
        self.send(template.message(seq), wait)
    }

    /// The largest message this link carries, when it knows.
    fn max_payload(&self) -> Option<usize> {
        None
    }
}

/// A side whose receiving half exists and whose sending half is not open yet.
pub trait HalfOpen: Send {
    /// Opens the sending half (connects, opens the peer's queue), waiting as `wait` allows for
    /// the other side to be there.
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError>;
}

/// What [`Mechanism::prepare`] hands back to the harness.
pub struct Prepared {
    /// Sent to the peer verbatim and given to both sides' [`Mechanism::open`].
    pub spec: String,
    /// Kept by the parent until the row ends; dropping it removes the objects it created.
    pub guard: Box<dyn Any + Send>,
}

impl Prepared {
    /// A spec with nothing for the parent to keep.
    pub fn new(spec: impl Into<String>) -> Prepared {
        Prepared {
            spec: spec.into(),
            guard: Box::new(()),
        }
    }

    /// A spec and something to keep alive until the row ends.
    pub fn with_guard(spec: impl Into<String>, guard: impl Any + Send) -> Prepared {
        Prepared {
            spec: spec.into(),
            guard: Box::new(guard),
        }
    }
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

/// What [`Mechanism::prepare`] may use.
#[derive(Debug, Clone)]
pub struct RowContext {
    /// Bytes per message.
    pub payload: usize,
    /// The run's private directory (mode 0700), removed with everything in it when the run
    /// ends: put socket files and FIFOs here.
    pub dir: PathBuf,
    /// A tag unique to this run and row (`ipcx-bench-<pid>-<n>`), for names outside `dir`
    /// (POSIX queue names, abstract socket names).
    pub tag: String,
}

impl RowContext {
    /// A socket path for this row in the run's directory: `DIR/TAG-WHAT.sock`.
    pub fn socket_path(&self, what: &str) -> String {
        self.dir
            .join(format!("{}-{what}.sock", self.tag))
            .display()
            .to_string()
    }
}

/// One row of the benchmark: a mechanism the harness can run between two processes.
pub trait Mechanism: Send + Sync + fmt::Debug {
    /// The name typed on the command line and printed in the table (`unix`, `limit`).
    fn name(&self) -> &str;

    /// One line telling what is measured.
    fn description(&self) -> &str;

    /// Rows left out of the default list and of `--list` (harness self-tests).
    fn hidden(&self) -> bool {
        false
    }

    /// Why this row cannot run at all in this build or on this machine (it is then shown as
    /// skipped with this reason for every size), or `None`.
    fn unavailable(&self) -> Option<String> {
        None
    }

    /// Whether this payload size can be carried; `Err(reason)` skips that size.
    fn check_payload(&self, payload: usize) -> Result<(), String> {
        let _ = payload;
        Ok(())
    }

    /// The patterns this row supports.
    fn patterns(&self) -> &[Pattern] {
        &[Pattern::PingPong, Pattern::Stream]
    }

    /// Whether one-way streaming must be windowed (the receiver returns credits) because the
    /// mechanism drops messages when the receiver falls behind (UDP).
    fn needs_flow_control(&self) -> bool {
        false
    }

    /// Parent only, once per payload size: allocates fresh names and whatever the parent must
    /// own. The returned spec goes to both sides' [`Mechanism::open`].
    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError>;

    /// Both sides: creates this side's receiving half from `spec`.
    fn open(&self, spec: &str, side: Side, payload: usize) -> Result<Box<dyn HalfOpen>, LinkError>;
}
