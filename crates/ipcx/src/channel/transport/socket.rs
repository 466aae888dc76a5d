//! What the socket transports (`unix:`, `unix-dgram:`, `unix-seqpacket:`, `tcp:` and `udp:`,
//! see [`super::unix`], [`super::tcp`] and [`super::udp`]) share: the mapping of socket errors,
//! connecting with retries, the framed stream sender, and one multi-peer server.
//!
//! Connection-oriented receivers (`unix:`, `unix-seqpacket:`, `tcp:`) bind, listen and serve any
//! number of senders at once from one object: a `poll(2)` loop over the listener and every
//! connection, all non-blocking, with one [`FrameDecoder`] per stream connection, so a slow or
//! half-sent peer never holds up the others. A peer that sends garbage (an oversize length
//! header, a stream that ends inside a frame) is reported once as a recoverable error naming
//! the peer ([`Error::FrameTooLarge`] / [`Error::TruncatedFrame`]) and its connection is dropped;
//! a peer closing cleanly is silent. Messages decoded before a bad frame are delivered first.
//!
//! Unix receivers report the sender's pid/uid/gid (`SO_PEERCRED` captured at accept, or
//! `SCM_CREDENTIALS` per datagram); TCP and UDP receivers report the peer address.
//!
//! Unix receivers (stream, seqpacket, datagram; paths and abstract names alike) deliver only
//! what peers trusted by [`Options::trust`] sent: by default, our own uid. A connection from
//! another user is closed at accept and a datagram from one discarded, each reported as a
//! recoverable [`Error::PeerDropped`].
//!
//! A peer is never trusted with the receiver's resources:
//! * memory grows with the bytes that arrive, never with the length a header claims
//!   ([`FrameDecoder::read_from_limit`]); the bytes of partial frames held across all peers are
//!   capped by [`Options::max_buffered`], and the peer that would pass the cap is dropped;
//! * a peer that holds a partial frame for [`Options::idle_timeout`] without sending more is
//!   dropped (a peer quiet between frames is not);
//! * at [`Options::max_connections`] the receiver stops accepting until a peer leaves (new
//!   senders wait in the kernel's listen backlog);
//! * running out of file descriptors or memory while accepting (`EMFILE`, `ENFILE`,
//!   `ENOBUFS`, `ENOMEM`) pauses accepting with back-off (10 ms doubling to 1 s), reported once
//!   as [`Error::AcceptPaused`]; the connected peers are served meanwhile.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::channel::{Error, Message, MessageReceiver, MessageSender, Meta, Options};
use crate::framing::{FrameDecoder, FrameError};
use crate::socket::unix::{recv_message, send_stream_frame};
use crate::socket::{Credentials, SocketError};
use crate::sys::socket as sys;
use crate::trust::Trust;
use crate::wait::Wait;
use crate::wait_set::Watched;

/// Maps a socket error on `what` (as in `unix:/tmp/s`) to a channel error.
pub(super) fn map_err(e: SocketError, what: &str, sending: bool) -> Error {
    match e {
        SocketError::AddrInUse { .. } => Error::AlreadyExists {
            what: what.to_owned(),
            hint: "a live receiver is bound there: stop it, or pick another address".into(),
        },
        SocketError::NotASocket { what: kind, .. } => Error::AlreadyExists {
            what: format!("{what} ({kind})"),
            hint:
                "it is not a socket and was left untouched: remove it yourself or pick another path"
                    .into(),
        },
        SocketError::NotFound { .. } => Error::NotFound {
            what: format!("listener at {what}"),
            hint: "start `ipcx recv` first".into(),
        },
        SocketError::PermissionDenied { source, .. } => Error::PermissionDenied {
            what: what.to_owned(),
            source,
        },
        SocketError::TooLarge { len, max, .. } => Error::TooLarge {
            len,
            max,
            what: what.to_owned(),
        },
        SocketError::Frame(FrameError::TooLarge { len, max }) if sending => Error::TooLarge {
            len: len as usize,
            max,
            what: what.to_owned(),
        },
        SocketError::Frame(f) => Error::from_frame(what, f),
        SocketError::WouldBlock if sending => Error::Full {
            what: what.to_owned(),
        },
        SocketError::WouldBlock => Error::WouldBlock,
        SocketError::Timeout => Error::Timeout,
        SocketError::PeerGone { what: w } => Error::PeerGone {
            what: format!("{what}: {w}"),
        },
        SocketError::ForeignSocketFile { owner, euid, .. } => Error::AlreadyExists {
            what: format!("{what} (a stale socket file of uid {owner}; we are uid {euid})"),
            hint: "it is not ours and was left untouched: have its owner remove it, or pick another path"
                .into(),
        },
        SocketError::ForeignPeer { pid, uid, euid, .. } => Error::PeerDropped {
            peer: format!("{what} peer pid {pid} (uid {uid})"),
            reason: format!(
                "uid {uid} is not trusted (we are uid {euid}); trust it explicitly with --allow-uid {uid} or --allow-any-uid"
            ),
        },
        other => Error::Io {
            context: what.to_owned(),
            source: other.into(),
        },
    }
}

/// Maps a failure to connect to `what`: a path that is not a socket is "no listener", at
/// once (nothing can ever listen there), rather than the receiver's "already exists".
pub(super) fn map_connect_err(e: SocketError, what: &str) -> Error {
    match e {
        SocketError::NotASocket { what: kind, .. } => Error::NotFound {
            what: format!("listener at {what}"),
            hint: format!("the path is {kind}: give the path the receiver binds"),
        },
        other => map_err(other, what, false),
    }
}

/// Refuses a receiver that runs as a user `trust` does not permit. `uid` is what the kernel
/// says of it: the listener's uid (`SO_PEERCRED` after connect: stream, seqpacket) or the
/// socket file's owner (datagrams to a path); `None` (an abstract datagram name) is not
/// checked.
pub(super) fn check_receiver(trust: &Trust, what: &str, uid: Option<u32>) -> Result<(), Error> {
    match uid {
        Some(uid) => Ok(trust.check_owner(&format!("the receiver at {what}"), uid)?),
        None => Ok(()),
    }
}

pub(super) fn cred_meta(c: Option<Credentials>) -> Meta {
    match c {
        Some(c) => Meta {
            pid: Some(c.pid),
            uid: Some(c.uid),
            gid: Some(c.gid),
            ..Meta::default()
        },
        None => Meta::default(),
    }
}

/// Retries `connect` while the peer is missing, until `opts.connect_timeout` passes (no
/// timeout: one attempt).
pub(super) fn connect_retrying<T>(
    opts: &Options,
    mut connect: impl FnMut(Wait) -> Result<T, SocketError>,
) -> Result<T, SocketError> {
    let wait = Wait::from_timeout(opts.connect_timeout);
    let mut pause = Duration::from_millis(2);
    loop {
        match connect(wait) {
            Err(SocketError::NotFound { .. })
                if opts.connect_timeout.is_some() && !wait.expired() =>
            {
                std::thread::sleep(pause.min(wait.remaining().unwrap_or(pause)));
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(SocketError::NotFound { .. }) if opts.connect_timeout.is_some() => {
                return Err(SocketError::Timeout);
            }
            other => return other,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Receivers

/// A listener the multi-peer [`Server`] accepts from: non-blocking, pollable.
pub(super) trait PeerListener: Send + std::fmt::Debug + AsFd {
    /// Accepts one pending connection of the receiver `what` without blocking.
    fn try_accept_peer(&self, what: &str) -> Result<Accepted, SocketError>;
}

/// A connection a [`PeerListener`] accepted.
pub(super) struct Accepted {
    /// The connection.
    pub(super) fd: OwnedFd,
    /// What the receiver reports with each message from it.
    pub(super) meta: Meta,
    /// The peer, for messages.
    pub(super) name: String,
    /// A byte stream, framed (`false`: the socket keeps message boundaries).
    pub(super) framed: bool,
}

#[derive(Debug)]
struct Conn {
    fd: OwnedFd,
    /// `Some` for byte streams (framed), `None` for seqpacket.
    decoder: Option<FrameDecoder>,
    meta: Meta,
    name: String,
    /// When bytes last arrived (for the idle timeout of a peer inside a frame).
    last_read: Instant,
}

impl Conn {
    /// Bytes of a partial frame held for this peer.
    fn buffered(&self) -> usize {
        self.decoder.as_ref().map_or(0, FrameDecoder::pending)
    }
}

/// The first pause after accepting ran out of descriptors or memory; each further failure
/// doubles it, up to [`MAX_ACCEPT_PAUSE`].
const MIN_ACCEPT_PAUSE: Duration = Duration::from_millis(10);
const MAX_ACCEPT_PAUSE: Duration = Duration::from_secs(1);

/// Whether an accept failure means "out of a resource for now" (pause and retry later).
fn out_of_resources(e: &SocketError) -> Option<&std::io::Error> {
    let source = match e {
        SocketError::Io { source, .. } => source,
        _ => return None,
    };
    matches!(
        source.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
    .then_some(source)
}

/// Whether an accept failure concerns only the connection being accepted (go on with the
/// next).
fn connection_failed(e: &SocketError) -> bool {
    match e {
        SocketError::PeerGone { .. } => true,
        SocketError::Io { source, .. } => matches!(
            source.raw_os_error(),
            Some(libc::ECONNABORTED | libc::EPROTO | libc::EPERM | libc::EINTR)
        ),
        _ => false,
    }
}

/// A receiver serving every connecting sender (see the module documentation).
#[derive(Debug)]
pub(super) struct Server {
    listener: Box<dyn PeerListener>,
    what: String,
    max_frame_len: usize,
    max_buffered: usize,
    max_connections: usize,
    idle_timeout: Option<Duration>,
    conns: Vec<Conn>,
    /// Bytes of partial frames held across all connections.
    buffered: usize,
    ready: VecDeque<Result<Message, Error>>,
    /// Accepting is paused until then (out of descriptors or memory), and the next pause.
    paused_until: Option<Instant>,
    pause: Duration,
    /// Once a wait set asked: an epoll set of the listener and every connection, and the
    /// flag raised while decoded messages wait in `ready`.
    watch: OnceLock<Watched>,
    /// Whether the listener is watched in `watch` now (not at the connection limit, not
    /// paused).
    listener_watched: bool,
}

impl Server {
    pub(super) fn new(listener: Box<dyn PeerListener>, what: String, opts: &Options) -> Server {
        Server {
            listener,
            what,
            max_frame_len: opts.max_frame_len,
            max_buffered: opts.max_buffered,
            max_connections: opts.max_connections.max(1),
            idle_timeout: opts.idle_timeout,
            conns: Vec::new(),
            buffered: 0,
            ready: VecDeque::new(),
            paused_until: None,
            pause: MIN_ACCEPT_PAUSE,
            watch: OnceLock::new(),
            listener_watched: true,
        }
    }

    /// Brings the wait set's view up to date after a receive: the flag, and whether the
    /// listener is watched (a listener the server does not accept from now would keep the
    /// wait set waking for nothing; while accepting is paused, new connections are noticed
    /// when something else wakes the set).
    fn sync_watch(&mut self) {
        let Some(w) = self.watch.get() else {
            return;
        };
        w.pending().set(!self.ready.is_empty());
        let accepting = self.accepting();
        if accepting != self.listener_watched
            && w.set_interest(self.listener.as_fd(), accepting).is_ok()
        {
            self.listener_watched = accepting;
        }
    }

    /// Whether the listener is polled for new connections now.
    fn accepting(&self) -> bool {
        self.conns.len() < self.max_connections
            && self.paused_until.is_none_or(|t| Instant::now() >= t)
    }

    /// Accepts pending connections, up to the connection limit.
    fn accept_all(&mut self) {
        while self.conns.len() < self.max_connections {
            let accepted = self.listener.try_accept_peer(&self.what).map(|a| {
                let Accepted {
                    fd,
                    meta,
                    name,
                    framed,
                } = a;
                (fd, meta, name, framed)
            });
            match accepted {
                Ok((fd, meta, name, framed)) => {
                    self.paused_until = None;
                    self.pause = MIN_ACCEPT_PAUSE;
                    if let Some(w) = self.watch.get()
                        && let Err(e) = w.add(&fd)
                    {
                        // A connection the wait set cannot see would be a silent hang.
                        self.ready.push_back(Err(Error::PeerDropped {
                            peer: name,
                            reason: format!("it could not be watched for the wait set ({e})"),
                        }));
                        continue;
                    }
                    self.conns.push(Conn {
                        fd,
                        decoder: framed.then(|| FrameDecoder::new(self.max_frame_len)),
                        meta,
                        name,
                        last_read: Instant::now(),
                    });
                }
                Err(SocketError::WouldBlock) => {
                    // Nothing waiting: whatever ran out is not in the way (any more).
                    self.paused_until = None;
                    self.pause = MIN_ACCEPT_PAUSE;
                    return;
                }
                Err(e @ SocketError::ForeignPeer { .. }) => {
                    self.ready.push_back(Err(map_err(e, &self.what, false)));
                }
                Err(e) if connection_failed(&e) => {}
                Err(e) => {
                    // Out of descriptors or memory (or an unexpected failure): keep serving the
                    // connected peers, and try again after a pause that grows while it lasts.
                    let reason = match out_of_resources(&e) {
                        Some(source) => format!("out of resources while accepting ({source})"),
                        None => format!("accepting failed ({e})"),
                    };
                    let first = self.pause == MIN_ACCEPT_PAUSE;
                    self.paused_until = Some(Instant::now() + self.pause);
                    if first {
                        self.ready.push_back(Err(Error::AcceptPaused {
                            what: self.what.clone(),
                            reason: format!(
                                "{reason}: new connections wait in the listen backlog while the {} connected peer(s) are served; accepting resumes with back-off (raise the descriptor limit, ulimit -n, or lower --max-connections)",
                                self.conns.len()
                            ),
                        }));
                    }
                    self.pause = (self.pause * 2).min(MAX_ACCEPT_PAUSE);
                    return;
                }
            }
        }
    }

    /// Reads what connection `i` has; returns whether to drop it.
    fn service(&mut self, i: usize) -> bool {
        let others = self.buffered - self.conns[i].buffered();
        let max_buffered = self.max_buffered;
        let conn = &mut self.conns[i];
        let keep = match &mut conn.decoder {
            Some(decoder) => {
                struct R<'a>(std::os::fd::BorrowedFd<'a>);
                impl std::io::Read for R<'_> {
                    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                        sys::recv_bytes(self.0, buf, true)
                    }
                }
                // What this peer may add before the receiver's cap is reached.
                let room = max_buffered.saturating_sub(others + decoder.pending());
                if room == 0 {
                    self.ready.push_back(Err(Error::PeerDropped {
                        peer: conn.name.clone(),
                        reason: format!(
                            "its partial frame ({} bytes so far) would take the receiver past its cap of {max_buffered} bytes buffered across all peers (--max-buffered)",
                            decoder.pending()
                        ),
                    }));
                    false
                } else {
                    let read = decoder.read_from_limit(&mut R(conn.fd.as_fd()), room);
                    if matches!(read, Ok(n) if n > 0) {
                        conn.last_read = Instant::now();
                    }
                    service_stream(decoder, read, &conn.name, &conn.meta, &mut self.ready)
                }
            }
            None => match recv_message(conn.fd.as_fd(), 0, true, Wait::NoWait) {
                Ok(m) => {
                    self.ready.push_back(Ok(Message {
                        data: m.data,
                        meta: conn.meta.clone(),
                    }));
                    true
                }
                Err(SocketError::WouldBlock) => true,
                Err(SocketError::PeerGone { .. }) => false,
                Err(e) => {
                    self.ready.push_back(Err(map_err(e, &conn.name, false)));
                    false
                }
            },
        };
        self.buffered = others + if keep { self.conns[i].buffered() } else { 0 };
        !keep
    }

    /// Drops peers that held a partial frame longer than the idle timeout without sending
    /// more; returns the next moment one may time out.
    fn drop_idle(&mut self) -> Option<Instant> {
        let timeout = self.idle_timeout?;
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut i = self.conns.len();
        while i > 0 {
            i -= 1;
            let held = self.conns[i].buffered();
            if held == 0 {
                continue;
            }
            // A timeout too long to be a deadline never expires.
            let Some(due) = crate::wait::deadline_from(self.conns[i].last_read, timeout) else {
                continue;
            };
            if now >= due {
                let conn = self.conns.remove(i);
                self.buffered -= held;
                self.ready.push_back(Err(Error::PeerDropped {
                    peer: conn.name,
                    reason: format!(
                        "it held a partial frame ({held} bytes) for {timeout:?} without sending more (--idle-timeout)"
                    ),
                }));
            } else {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        next
    }
}

/// Delivers the whole frames a read brought and handles its outcome; returns whether to keep
/// the connection.
fn service_stream(
    decoder: &mut FrameDecoder,
    read: std::io::Result<usize>,
    name: &str,
    meta: &Meta,
    ready: &mut VecDeque<Result<Message, Error>>,
) -> bool {
    // Deliver every whole frame that arrived, then the first error.
    loop {
        match decoder.next_frame() {
            Ok(Some(data)) => ready.push_back(Ok(Message {
                data,
                meta: meta.clone(),
            })),
            Ok(None) => break,
            Err(e) => {
                ready.push_back(Err(Error::from_frame(name, e)));
                return false;
            }
        }
    }
    match read {
        Ok(0) => {
            if let Err(e) = decoder.finish() {
                ready.push_back(Err(Error::from_frame(name, e)));
            }
            false
        }
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
        Err(_) => {
            // Reset by the peer (it died): report a half-sent frame, if any.
            if let Err(e) = decoder.finish() {
                ready.push_back(Err(Error::from_frame(name, e)));
            }
            false
        }
    }
}

impl MessageReceiver for Server {
    fn recv_wait(&mut self, wait: Wait) -> Result<Message, Error> {
        let r = self.recv_inner(wait);
        self.sync_watch();
        r
    }

    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        let listener = (self.listener.as_fd(), self.listener_watched);
        Watched::readiness(
            &self.watch,
            "watching a receiver's connections for a wait set",
            std::iter::once(listener).chain(self.conns.iter().map(|c| (c.fd.as_fd(), true))),
            !self.ready.is_empty(),
        )
    }
}

impl Server {
    fn recv_inner(&mut self, wait: Wait) -> Result<Message, Error> {
        let mut first = true;
        loop {
            if let Some(r) = self.ready.pop_front() {
                return r;
            }
            let next_idle = self.drop_idle();
            if let Some(r) = self.ready.pop_front() {
                return r;
            }
            let mut timeout = if first && wait == Wait::NoWait {
                0
            } else if wait == Wait::NoWait {
                return Err(Error::WouldBlock);
            } else {
                if wait.expired() {
                    return Err(Error::Timeout);
                }
                wait.poll_timeout_ms()
            };
            first = false;
            // Wake for the next idle deadline and the end of an accept pause.
            let accepting = self.accepting();
            let pause_ends = self
                .paused_until
                .filter(|&t| t > Instant::now() && self.conns.len() < self.max_connections);
            let wake = [next_idle, pause_ends];
            for t in wake.into_iter().flatten() {
                let ms = t
                    .saturating_duration_since(Instant::now())
                    .as_millis()
                    .saturating_add(1)
                    .min(i32::MAX as u128) as i32;
                timeout = if timeout < 0 { ms } else { timeout.min(ms) };
            }
            let listener_fd = self.listener.as_fd();
            let mut fds = Vec::with_capacity(self.conns.len() + 1);
            fds.extend(self.conns.iter().map(|c| (c.fd.as_fd(), true, false)));
            if accepting {
                fds.push((listener_fd, true, false));
            }
            let ready = crate::sys::poll::poll_many(&fds, timeout)
                .map_err(|e| Error::from_io("poll", e))?;
            drop(fds);
            let listener_ready = accepting && ready[self.conns.len()].readable;
            let mut i = self.conns.len();
            while i > 0 {
                i -= 1;
                let r = ready[i];
                if (r.readable || r.hangup()) && self.service(i) {
                    self.conns.remove(i);
                }
            }
            if listener_ready || (!accepting && self.accepting()) {
                self.accept_all();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Senders

/// A framed byte-stream sender (unix stream, tcp).
#[derive(Debug)]
pub(super) struct StreamSender {
    pub(super) fd: OwnedFd,
    pub(super) max: usize,
    pub(super) what: String,
}

impl MessageSender for StreamSender {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        let frame = crate::framing::encode_frame(msg, self.max).map_err(|e| match e {
            FrameError::TooLarge { len, max } => Error::TooLarge {
                len: len as usize,
                max,
                what: format!("{} (the maximum frame length)", self.what),
            },
            other => Error::from_frame(self.what.clone(), other),
        })?;
        send_stream_frame(self.fd.as_fd(), frame, wait).map_err(|e| map_err(e, &self.what, true))
    }

    fn max_message_len(&self) -> Option<usize> {
        Some(self.max.min(u32::MAX as usize))
    }
}
