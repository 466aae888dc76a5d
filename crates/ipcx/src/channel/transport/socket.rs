//! The message channels of the socket transports (`unix:`, `unix-dgram:`, `unix-seqpacket:`,
//! `tcp:` and `udp:`, see [`super::unix`], [`super::tcp`] and [`super::udp`]): one multi-peer
//! server and the senders they share.
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
use std::time::{Duration, Instant};

use crate::channel::{Error, Message, MessageReceiver, MessageSender, Meta, Options};
use crate::framing::{FrameDecoder, FrameError};
use crate::socket::unix::{recv_message, send_message, send_stream_frame};
use crate::socket::{
    Credentials, SocketError, TcpListener, TcpStream, UdpSocket, UnixAddr, UnixDatagram,
    UnixListener, UnixSeqpacket, UnixSeqpacketListener, UnixStream,
};
use crate::sys::socket as sys;
use crate::trust::Trust;
use crate::wait::Wait;

/// The three kinds of Unix domain socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnixKind {
    /// `SOCK_STREAM`: a byte stream, framed by ipcx.
    Stream,
    /// `SOCK_DGRAM`: connectionless datagrams.
    Datagram,
    /// `SOCK_SEQPACKET`: connected, reliable, message boundaries kept.
    Seqpacket,
}

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

fn cred_meta(c: Option<Credentials>) -> Meta {
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
fn connect_retrying<T>(
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

enum Listener {
    Unix(UnixListener),
    Seqpacket(UnixSeqpacketListener),
    Tcp(TcpListener),
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listener::Unix(l) => l.fmt(f),
            Listener::Seqpacket(l) => l.fmt(f),
            Listener::Tcp(l) => l.fmt(f),
        }
    }
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
struct Server {
    listener: Listener,
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
}

impl Server {
    fn new(listener: Listener, what: String, opts: &Options) -> Server {
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
            let accepted = match &self.listener {
                Listener::Unix(l) => l.try_accept().map(|(s, c)| {
                    let name = format!("{} peer pid {} (uid {})", self.what, c.pid, c.uid);
                    (OwnedFd::from(s), cred_meta(Some(c)), name, true)
                }),
                Listener::Seqpacket(l) => l.try_accept().map(|(s, c)| {
                    let name = format!("{} peer pid {} (uid {})", self.what, c.pid, c.uid);
                    (OwnedFd::from(s), cred_meta(Some(c)), name, false)
                }),
                Listener::Tcp(l) => l.try_accept().map(|(s, peer)| {
                    let meta = Meta {
                        peer: Some(peer.to_string()),
                        ..Meta::default()
                    };
                    (OwnedFd::from(s), meta, format!("tcp peer {peer}"), true)
                }),
            };
            match accepted {
                Ok((fd, meta, name, framed)) => {
                    self.paused_until = None;
                    self.pause = MIN_ACCEPT_PAUSE;
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
            let listener_fd = match &self.listener {
                Listener::Unix(l) => l.as_fd(),
                Listener::Seqpacket(l) => l.as_fd(),
                Listener::Tcp(l) => l.as_fd(),
            };
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

#[derive(Debug)]
struct DgramReceiver {
    sock: UnixDatagram,
    what: String,
}

impl MessageReceiver for DgramReceiver {
    fn recv_wait(&mut self, wait: Wait) -> Result<Message, Error> {
        let m = self
            .sock
            .recv_with_max_fds(0, wait)
            .map_err(|e| map_err(e, &self.what, false))?;
        let mut meta = cred_meta(m.credentials);
        meta.peer = m.from.map(|a| format!("unix-dgram:{a}"));
        Ok(Message { data: m.data, meta })
    }
}

#[derive(Debug)]
struct UdpReceiver {
    sock: UdpSocket,
    what: String,
}

impl MessageReceiver for UdpReceiver {
    fn recv_wait(&mut self, wait: Wait) -> Result<Message, Error> {
        let (data, from) = self
            .sock
            .recv_from_wait(wait)
            .map_err(|e| map_err(e, &self.what, false))?;
        Ok(Message {
            data,
            meta: Meta {
                peer: Some(from.to_string()),
                ..Meta::default()
            },
        })
    }
}

fn unix_what(kind: UnixKind, addr: &UnixAddr) -> String {
    match kind {
        UnixKind::Stream => format!("unix:{addr}"),
        UnixKind::Datagram => format!("unix-dgram:{addr}"),
        UnixKind::Seqpacket => format!("unix-seqpacket:{addr}"),
    }
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

pub(super) fn unix_receiver(
    kind: UnixKind,
    addr: &UnixAddr,
    opts: &Options,
) -> Result<Box<dyn MessageReceiver>, Error> {
    let what = unix_what(kind, addr);
    let m = |e| map_err(e, &what, false);
    Ok(match kind {
        UnixKind::Stream => {
            let mut l = UnixListener::bind_with_mode(addr, opts.mode).map_err(m)?;
            l.set_trust(opts.trust.clone());
            Box::new(Server::new(Listener::Unix(l), what, opts))
        }
        UnixKind::Seqpacket => {
            let mut l = UnixSeqpacketListener::bind_with_mode(addr, opts.mode).map_err(m)?;
            l.set_trust(opts.trust.clone());
            Box::new(Server::new(Listener::Seqpacket(l), what, opts))
        }
        UnixKind::Datagram => {
            let mut sock = UnixDatagram::bind_with_mode(addr, opts.mode).map_err(m)?;
            sock.set_trust(opts.trust.clone());
            Box::new(DgramReceiver { sock, what })
        }
    })
}

pub(super) fn tcp_receiver(
    host: &str,
    port: u16,
    opts: &Options,
) -> Result<Box<dyn MessageReceiver>, Error> {
    let what = format!("tcp:{}", host_port(host, port));
    let l = TcpListener::bind((host, port)).map_err(|e| map_err(e, &what, false))?;
    Ok(Box::new(Server::new(Listener::Tcp(l), what, opts)))
}

pub(super) fn udp_receiver(
    host: &str,
    port: u16,
    opts: &Options,
) -> Result<Box<dyn MessageReceiver>, Error> {
    let _ = opts;
    let what = format!("udp:{}", host_port(host, port));
    let sock = UdpSocket::bind((host, port)).map_err(|e| map_err(e, &what, false))?;
    Ok(Box::new(UdpReceiver { sock, what }))
}

// ---------------------------------------------------------------------------------------------
// Senders

/// A framed byte-stream sender (unix stream, tcp).
#[derive(Debug)]
struct StreamSender {
    fd: OwnedFd,
    max: usize,
    what: String,
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

/// A message sender on a connected seqpacket or datagram socket.
#[derive(Debug)]
struct PacketSender {
    fd: OwnedFd,
    what: String,
    max: Option<usize>,
}

impl MessageSender for PacketSender {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        send_message(self.fd.as_fd(), msg, &[], None, wait).map_err(|e| match e {
            SocketError::NotFound { .. } => Error::PeerGone {
                what: format!("{}: the receiver is gone", self.what),
            },
            e => map_err(e, &self.what, true),
        })
    }

    fn max_message_len(&self) -> Option<usize> {
        self.max
    }
}

#[derive(Debug)]
struct UdpSender {
    sock: UdpSocket,
    what: String,
}

impl MessageSender for UdpSender {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        self.sock
            .send_wait(msg, wait)
            .map_err(|e| map_err(e, &self.what, true))
    }

    fn max_message_len(&self) -> Option<usize> {
        Some(self.sock.max_message_len())
    }
}

pub(super) fn unix_sender(
    kind: UnixKind,
    addr: &UnixAddr,
    opts: &Options,
) -> Result<Box<dyn MessageSender>, Error> {
    let what = unix_what(kind, addr);
    let timeout = |w: Wait| w.remaining().unwrap_or(Duration::MAX);
    Ok(match kind {
        UnixKind::Stream => {
            let s = connect_retrying(opts, |w| match w {
                Wait::Forever => UnixStream::connect(addr),
                w => UnixStream::connect_timeout(addr, timeout(w)),
            })
            .map_err(|e| map_connect_err(e, &what))?;
            let server = s.peer_credentials().ok().map(|c| c.uid);
            check_receiver(&opts.trust, &what, server)?;
            Box::new(StreamSender {
                fd: s.into(),
                max: opts.max_frame_len,
                what,
            })
        }
        UnixKind::Seqpacket => {
            let s = connect_retrying(opts, |w| match w {
                Wait::Forever => UnixSeqpacket::connect(addr),
                w => UnixSeqpacket::connect_timeout(addr, timeout(w)),
            })
            .map_err(|e| map_connect_err(e, &what))?;
            let server = s.peer_credentials().ok().map(|c| c.uid);
            check_receiver(&opts.trust, &what, server)?;
            // Like datagrams, a seqpacket message must fit in the send buffer.
            let fd: OwnedFd = s.into();
            let max = crate::sys::socket::send_buffer_size(fd.as_fd())
                .ok()
                .map(|n| n.saturating_sub(32));
            Box::new(PacketSender { fd, what, max })
        }
        UnixKind::Datagram => {
            let s = connect_retrying(opts, |_| {
                let s = UnixDatagram::unbound()?;
                s.connect(addr)?;
                Ok(s)
            })
            .map_err(|e| map_connect_err(e, &what))?;
            // Datagram sockets have no SO_PEERCRED: a path's socket file tells its owner.
            let owner = match addr {
                UnixAddr::Path(p) => sys::lstat_owner(p).ok().flatten(),
                UnixAddr::Abstract(_) => None,
            };
            check_receiver(&opts.trust, &what, owner)?;
            let max = s.max_message_len().ok();
            Box::new(PacketSender {
                fd: s.into(),
                what,
                max,
            })
        }
    })
}

pub(super) fn tcp_sender(
    host: &str,
    port: u16,
    opts: &Options,
) -> Result<Box<dyn MessageSender>, Error> {
    let what = format!("tcp:{}", host_port(host, port));
    let s = connect_retrying(opts, |w| match w.remaining() {
        None => TcpStream::connect((host, port)),
        Some(left) => TcpStream::connect_timeout((host, port), left),
    })
    .map_err(|e| map_connect_err(e, &what))?;
    Ok(Box::new(StreamSender {
        fd: s.into(),
        max: opts.max_frame_len,
        what,
    }))
}

pub(super) fn udp_sender(
    host: &str,
    port: u16,
    opts: &Options,
) -> Result<Box<dyn MessageSender>, Error> {
    let _ = opts;
    let what = format!("udp:{}", host_port(host, port));
    let sock = UdpSocket::connect((host, port)).map_err(|e| map_err(e, &what, false))?;
    Ok(Box::new(UdpSender { sock, what }))
}
