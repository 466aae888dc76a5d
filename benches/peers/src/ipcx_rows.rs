//! ipcx rows that `ipcx bench` still lists as placeholders in this build (`pipe`, `eventfd`,
//! `futex`), written here over ipcx's public API so that each `raw-*` row has its ipcx
//! counterpart. They replace the placeholders only while the harness has none of its own:
//! once ipcx-bench ships a real row of that name, that one is used.
//!
//! They move the same messages as the raw rows, in the same way (same objects, same handoff),
//! only through ipcx's types:
//! - `pipe`: [`ipcx::pipe`] readers and writers (framed), the peer's ends handed over;
//! - `eventfd`: the payload in an [`ipcx::shm::Memfd`] slot, an [`ipcx::sync::EventFd`] per
//!   direction to wake the other side;
//! - `futex`: the payload in a memfd slot, an [`ipcx::sync::Futex`] per direction counting
//!   messages.

use std::os::fd::OwnedFd;
use std::time::Instant;

use ipcx::pipe::{LargeFrames, PipeError, PipeReader, PipeWriter};
use ipcx::shm::{Memfd, ShmMap};
use ipcx::sync::{EventFd, EventFdError, Futex, FutexError};
use ipcx::wait::Wait;
use ipcx_bench::{HalfOpen, Link, LinkError, Mechanism, Pattern, Prepared, RowContext, Side};

use crate::handoff::{Claim, Giving, Offer};
use crate::pipe_pair::PipePair;

const PING_PONG_ONLY: &[Pattern] = &[Pattern::PingPong];

/// Bytes a pipe writes atomically.
const PIPE_BUF: usize = 4096;

/// How long a frame larger than [`PIPE_BUF`] may take to write.
const LARGE_FRAME_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn failed(what: &str, e: impl std::fmt::Display) -> LinkError {
    LinkError::Failed(format!("{what}: {e}"))
}

// ---------------------------------------------------------------------------------------
// pipe

/// `pipe`: two anonymous pipes through `ipcx::pipe`.
fn pipe_row() -> PipePair {
    PipePair {
        name: "pipe",
        description: "anonymous pipes through ipcx::pipe (framed), the peer's ends passed with \
                      SCM_RIGHTS",
        pipe: ipcx_pipe,
        link: |tx, rx, payload| Box::new(pipe_link(tx, rx, payload)),
    }
}

fn pipe_err(e: PipeError) -> LinkError {
    match e {
        PipeError::Timeout { .. } | PipeError::WouldBlock { .. } => LinkError::Timeout,
        PipeError::PeerGone { .. } => LinkError::PeerGone(e.to_string()),
        e => LinkError::Failed(e.to_string()),
    }
}

struct PipeLink {
    tx: PipeWriter,
    rx: PipeReader,
}

impl Link for PipeLink {
    fn send(&mut self, msg: &[u8], wait: Wait) -> Result<(), LinkError> {
        // A frame larger than the pipe that times out half-written leaves the stream torn
        // (ipcx cannot resume it), so large frames get a generous deadline instead of the
        // harness's 100 ms slice: a dead reader still ends the send at once (EPIPE).
        let wait = match wait {
            Wait::Until(d) if msg.len() + 4 > PIPE_BUF => {
                Wait::Until(d.max(Instant::now() + LARGE_FRAME_WAIT))
            }
            w => w,
        };
        self.tx.send_wait(msg, wait).map_err(pipe_err)
    }
    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        *buf = self.rx.recv_wait(wait).map_err(pipe_err)?;
        Ok(())
    }
}

fn pipe_link(tx: OwnedFd, rx: OwnedFd, payload: usize) -> PipeLink {
    let max = payload.max(1024);
    PipeLink {
        tx: PipeWriter::from(tx)
            .with_max_frame_len(max)
            // One writer per pipe: frames larger than PIPE_BUF may take several writes.
            .with_large_frames(LargeFrames::SingleWriter),
        rx: PipeReader::from(rx).with_max_frame_len(max),
    }
}

/// An anonymous pipe through `ipcx::pipe` (read end, write end).
fn ipcx_pipe() -> Result<(OwnedFd, OwnedFd), LinkError> {
    let (r, w) = ipcx::pipe::pipe().map_err(|e| failed("pipe", e))?;
    Ok((r.into(), w.into()))
}

// ---------------------------------------------------------------------------------------
// eventfd and futex: a memfd with one payload slot per direction

fn slot_len(payload: usize) -> usize {
    payload.next_multiple_of(128)
}

/// How the other side learns that its slot holds a message.
enum Waker {
    Eventfd {
        tx: EventFd,
        rx: EventFd,
    },
    /// `[a2b, b2a]`; the parent created them and removes them.
    Futex {
        words: Box<[Futex; 2]>,
        seen: u32,
    },
}

struct SlotLink {
    map: ShmMap,
    me: usize,
    payload: usize,
    waker: Waker,
}

fn efd_err(e: EventFdError) -> LinkError {
    match e {
        EventFdError::Timeout | EventFdError::WouldBlock => LinkError::Timeout,
        e => LinkError::Failed(e.to_string()),
    }
}

impl Link for SlotLink {
    fn send(&mut self, msg: &[u8], _wait: Wait) -> Result<(), LinkError> {
        if msg.len() != self.payload {
            return Err(LinkError::TooLarge(format!(
                "the slot holds {} bytes, not {}",
                self.payload,
                msg.len()
            )));
        }
        self.map
            .write_at(self.me * slot_len(self.payload), msg)
            .map_err(|e| failed("writing the slot", e))?;
        match &self.waker {
            Waker::Eventfd { tx, .. } => tx.write(1).map_err(efd_err),
            Waker::Futex { words, .. } => {
                let w = &words[self.me];
                w.fetch_add(1);
                w.wake_one().map_err(|e| failed("futex wake", e))?;
                Ok(())
            }
        }
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        let rx_dir = 1 - self.me;
        match &mut self.waker {
            Waker::Eventfd { rx, .. } => {
                rx.read_wait(wait).map_err(efd_err)?;
            }
            Waker::Futex { words, seen } => {
                let w = &words[rx_dir];
                loop {
                    let now = w.load();
                    if now != *seen {
                        *seen = now;
                        break;
                    }
                    match w.wait_with(*seen, wait) {
                        Ok(_) => {}
                        Err(FutexError::Timeout | FutexError::WouldBlock) => {
                            return Err(LinkError::Timeout);
                        }
                        Err(e) => return Err(failed("futex wait", e)),
                    }
                }
            }
        }
        buf.resize(self.payload, 0);
        self.map
            .read_at(rx_dir * slot_len(self.payload), buf)
            .map_err(|e| failed("reading the slot", e))
    }

    fn max_payload(&self) -> Option<usize> {
        Some(self.payload)
    }
}

/// Which ipcx wake-up a slot row uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `eventfd`.
    Eventfd,
    /// `futex`.
    Futex,
}

/// `eventfd` or `futex` through ipcx.
#[derive(Debug)]
pub struct IpcxSlots(pub Kind);

struct SlotParent {
    giving: Giving<(ShmMap, Option<(EventFd, EventFd)>)>,
    futex_names: Option<[String; 2]>,
    futexes: Option<[Futex; 2]>,
    payload: usize,
}

struct SlotPeer {
    claim: Claim,
    kind: Kind,
    futex_names: [String; 2],
    payload: usize,
}

impl Mechanism for IpcxSlots {
    fn name(&self) -> &str {
        match self.0 {
            Kind::Eventfd => "eventfd",
            Kind::Futex => "futex",
        }
    }
    fn description(&self) -> &str {
        match self.0 {
            Kind::Eventfd => {
                "payload in an ipcx::shm::Memfd slot, one ipcx::sync::EventFd per direction"
            }
            Kind::Futex => {
                "payload in an ipcx::shm::Memfd slot, one ipcx::sync::Futex per direction"
            }
        }
    }
    fn patterns(&self) -> &[Pattern] {
        PING_PONG_ONLY
    }
    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        // The handoff socket, then the futex names (unused by eventfd).
        Ok(Prepared::new(format!(
            "{} /{}-fa2b /{}-fb2a",
            ctx.socket_path(self.name()),
            ctx.tag,
            ctx.tag
        )))
    }
    fn open(&self, spec: &str, side: Side, payload: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        let parts: Vec<&str> = spec.split(' ').collect();
        let [path, fa, fb] = parts[..] else {
            return Err(LinkError::Failed(format!("bad spec {spec:?}")));
        };
        let names = [fa.to_owned(), fb.to_owned()];
        match side {
            Side::Parent => {
                let offer = Offer::bind(path.as_ref())?;
                let memfd = Memfd::create("ipcx-peers-slot", 2 * slot_len(payload) as u64)
                    .map_err(|e| failed("memfd", e))?;
                let map = memfd.map().map_err(|e| failed("mapping the memfd", e))?;
                let mut give: Vec<OwnedFd> = vec![memfd.into()];
                let mut efds = None;
                let mut futexes = None;
                match self.0 {
                    Kind::Eventfd => {
                        let a2b = EventFd::new(0).map_err(|e| failed("eventfd", e))?;
                        let b2a = EventFd::new(0).map_err(|e| failed("eventfd", e))?;
                        give.push(a2b.try_clone().map_err(|e| failed("eventfd", e))?.into());
                        give.push(b2a.try_clone().map_err(|e| failed("eventfd", e))?.into());
                        efds = Some((a2b, b2a));
                    }
                    Kind::Futex => {
                        let a = Futex::create_new(fa).map_err(|e| failed(fa, e))?;
                        let b = Futex::create_new(fb).map_err(|e| failed(fb, e))?;
                        futexes = Some([a, b]);
                    }
                }
                Ok(Box::new(SlotParent {
                    giving: Giving {
                        offer,
                        give,
                        keep: (map, efds),
                    },
                    futex_names: (self.0 == Kind::Futex).then_some(names),
                    futexes,
                    payload,
                }))
            }
            Side::Peer => Ok(Box::new(SlotPeer {
                claim: Claim::connect(path)?,
                kind: self.0,
                futex_names: names,
                payload,
            })),
        }
    }
}

impl HalfOpen for SlotParent {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let _ = &self.futex_names;
        let (map, efds) = self.giving.hand_over(wait)?;
        let waker = match (efds, self.futexes) {
            (Some((a2b, b2a)), _) => Waker::Eventfd { tx: a2b, rx: b2a },
            (None, Some(words)) => Waker::Futex {
                words: Box::new(words),
                seen: 0,
            },
            _ => return Err(LinkError::Failed("nothing to wake with".into())),
        };
        Ok(Box::new(SlotLink {
            map,
            me: 0,
            payload: self.payload,
            waker,
        }))
    }
}

impl HalfOpen for SlotPeer {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let n = if self.kind == Kind::Eventfd { 3 } else { 1 };
        let mut fds = self.claim.take(n, wait)?.into_iter();
        let memfd = Memfd::from(fds.next().expect("memfd"));
        let map = memfd.map().map_err(|e| failed("mapping the memfd", e))?;
        let waker = match self.kind {
            Kind::Eventfd => {
                let a2b = EventFd::from_fd(fds.next().expect("a2b")).map_err(efd_err)?;
                let b2a = EventFd::from_fd(fds.next().expect("b2a")).map_err(efd_err)?;
                Waker::Eventfd { tx: b2a, rx: a2b }
            }
            Kind::Futex => {
                let deadline = match wait {
                    Wait::Until(d) => d,
                    _ => Instant::now() + std::time::Duration::from_secs(10),
                };
                let [fa, fb] = &self.futex_names;
                let open = |n: &str| loop {
                    match Futex::open(n) {
                        Ok(f) => return Ok(f),
                        Err(_) if Instant::now() < deadline => {
                            std::thread::sleep(std::time::Duration::from_millis(1))
                        }
                        Err(e) => return Err(failed(n, e)),
                    }
                };
                Waker::Futex {
                    words: Box::new([open(fa)?, open(fb)?]),
                    seen: 0,
                }
            }
        };
        Ok(Box::new(SlotLink {
            map,
            me: 1,
            payload: self.payload,
            waker,
        }))
    }
}

/// Rows for the harness placeholders this build still has, in the placeholders' places.
pub fn rows() -> Vec<Box<dyn Mechanism>> {
    vec![
        Box::new(IpcxSlots(Kind::Futex)),
        Box::new(pipe_row()),
        Box::new(IpcxSlots(Kind::Eventfd)),
    ]
}
