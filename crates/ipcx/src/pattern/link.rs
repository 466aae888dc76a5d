//! Framed, bidirectional connections the connection-oriented patterns run over.
//!
//! A [`Link`] carries whole messages (frames) both ways and can be cloned into a second
//! handle on the same connection, so that one thread reads while another writes. Unix stream
//! sockets (with the peer's kernel-verified [`Credentials`]) and TCP implement it; another
//! transport (the shared-memory ring, a TLS stream) plugs in by implementing the trait for its
//! connection type and [`LinkListener`]'s role for its listener; the shared-memory ring does
//! (`shm:/NAME`, [`super::shmlink`]).

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use super::Error;
use super::shmlink::{ShmLink, ShmListener};
use crate::socket::{
    Credentials, SocketError, TcpListener, TcpStream, UnixAddr, UnixListener, UnixStream,
};
use crate::trust::Trust;
use crate::wait::Wait;

/// A framed, bidirectional connection.
pub trait Link: Send + fmt::Debug {
    /// Sends one message, waiting as `wait` allows.
    fn send_frame_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error>;
    /// Sends one message made of `parts` laid end to end, waiting as `wait` allows (a
    /// transport that can, such as the ring, writes the parts straight into place). The
    /// default joins them into one buffer and sends that.
    fn send_frame_parts(&mut self, parts: &[&[u8]], wait: Wait) -> Result<(), Error> {
        self.send_frame_wait(&parts.concat(), wait)
    }
    /// Receives one message, waiting as `wait` allows: `Ok(None)` when the peer closed
    /// cleanly between messages.
    fn recv_frame_wait(&mut self, wait: Wait) -> Result<Option<Vec<u8>>, Error>;
    /// Receives one message and lends it to `f` (a transport that can, such as the ring,
    /// lends it in place without copying it out); `Ok(false)` when the peer closed cleanly
    /// between messages. The default receives an owned frame.
    fn recv_frame_with(&mut self, wait: Wait, f: &mut dyn FnMut(&[u8])) -> Result<bool, Error> {
        Ok(match self.recv_frame_wait(wait)? {
            Some(frame) => {
                f(&frame);
                true
            }
            None => false,
        })
    }
    /// A second handle on the same connection (one may read while the other writes; each
    /// direction must be used by one handle only).
    fn try_clone_link(&self) -> Result<Box<dyn Link>, Error>;
    /// Hands the reading direction to a new handle and keeps the writing direction in this
    /// one; each must then be used by one thread at a time. A transport that can (the ring)
    /// then uses each direction without a lock; the default clones the link
    /// ([`Link::try_clone_link`]).
    fn take_reading_half(&mut self) -> Result<Box<dyn Link>, Error> {
        self.try_clone_link()
    }
    /// Sets the largest message accepted and sent.
    fn set_max_frame_len(&mut self, max: usize);
    /// The peer's kernel-verified credentials (Unix sockets), if the transport knows them.
    fn peer_credentials(&self) -> Option<Credentials>;
    /// The peer, for messages.
    fn peer_name(&self) -> String;
    /// The connection's socket, for a transport that wraps it (TLS over TCP); `None` when the
    /// link is not a plain socket (the default).
    fn into_fd(self: Box<Self>) -> Option<OwnedFd> {
        None
    }
}

/// Where a connection-oriented pattern listens or connects: `unix:PATH`, `unix:@NAME`,
/// `tcp:HOST:PORT` or `shm:/NAME` (a pair of shared-memory rings per connection, see
/// [`super::shmlink`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkAddr {
    /// A Unix stream socket (path or abstract name).
    Unix(UnixAddr),
    /// A TCP address, `HOST:PORT`.
    Tcp(String),
    /// Shared-memory rings, `/NAME` (see [`super::shmlink`]).
    Shm(String),
}

impl LinkAddr {
    /// Parses `unix:PATH`, `unix:@NAME`, `tcp:HOST:PORT` or `shm:/NAME`; a bare `@NAME` or
    /// `/path` is a Unix address.
    pub fn parse(s: &str) -> Result<LinkAddr, Error> {
        let bad = |reason: &str| Error::InvalidAddress {
            addr: s.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(rest) = s.strip_prefix("unix:") {
            return UnixAddr::parse(rest).map(LinkAddr::Unix).map_err(bad);
        }
        if let Some(rest) = s.strip_prefix("tcp:") {
            if !rest.contains(':') {
                return Err(bad("tcp: needs HOST:PORT, as in tcp:127.0.0.1:7000"));
            }
            return Ok(LinkAddr::Tcp(rest.to_owned()));
        }
        if let Some(rest) = s.strip_prefix("shm:") {
            return super::shmlink::check_name(rest)
                .map(|n| LinkAddr::Shm(n.as_str().to_owned()))
                .map_err(|r| bad(&r));
        }
        if s.starts_with('@') || s.starts_with('/') {
            return UnixAddr::parse(s).map(LinkAddr::Unix).map_err(bad);
        }
        Err(bad(
            "expected unix:PATH, unix:@NAME, tcp:HOST:PORT or shm:/NAME",
        ))
    }

    /// Connects, giving up at the deadline.
    pub fn connect(&self, wait: Wait) -> Result<Box<dyn Link>, Error> {
        let timeout = wait
            .remaining()
            .unwrap_or(Duration::from_secs(u64::MAX / 4));
        match self {
            LinkAddr::Unix(a) => {
                let s = if wait == Wait::Forever {
                    UnixStream::connect(a)?
                } else {
                    UnixStream::connect_timeout(a, timeout)?
                };
                Ok(Box::new(UnixLink::new(s)))
            }
            LinkAddr::Tcp(a) => {
                let s = if wait == Wait::Forever {
                    TcpStream::connect(a.as_str())?
                } else {
                    TcpStream::connect_timeout(a.as_str(), timeout)?
                };
                Ok(Box::new(TcpLink::new(s)))
            }
            LinkAddr::Shm(name) => Ok(Box::new(ShmLink::connect(name, wait)?)),
        }
    }

    /// Binds a listener here. A Unix listener accepts only peers of our own uid (see
    /// [`LinkAddr::bind_with_trust`]).
    pub fn bind(&self) -> Result<LinkListener, Error> {
        self.bind_with_trust(Trust::own_user())
    }

    /// Binds a listener here whose Unix connections must come from users `trust` permits:
    /// another user's connection is closed at accept ([`LinkListener::accept_wait`] returns
    /// the refusal; accept again to go on). TCP peers carry no uid and are not checked.
    pub fn bind_with_trust(&self, trust: Trust) -> Result<LinkListener, Error> {
        match self {
            LinkAddr::Unix(a) => {
                let mut l = UnixListener::bind(a)?;
                l.set_trust(trust);
                Ok(LinkListener::Unix(l))
            }
            LinkAddr::Tcp(a) => Ok(LinkListener::Tcp(TcpListener::bind(a.as_str())?)),
            LinkAddr::Shm(name) => Ok(LinkListener::Shm(ShmListener::bind(name)?)),
        }
    }
}

impl fmt::Display for LinkAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkAddr::Unix(a) => write!(f, "unix:{a}"),
            LinkAddr::Tcp(a) => write!(f, "tcp:{a}"),
            LinkAddr::Shm(a) => write!(f, "shm:{a}"),
        }
    }
}

impl std::str::FromStr for LinkAddr {
    type Err = Error;
    fn from_str(s: &str) -> Result<LinkAddr, Error> {
        LinkAddr::parse(s)
    }
}

/// A listener handing out [`Link`]s.
#[derive(Debug)]
#[non_exhaustive]
pub enum LinkListener {
    /// Unix stream listener (removes its socket file on drop).
    Unix(UnixListener),
    /// TCP listener.
    Tcp(TcpListener),
    /// Shared-memory ring links (an abstract Unix socket for the handshake).
    Shm(ShmListener),
}

/// How long accepting pauses when the process is out of descriptors or memory.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Whether an accept failure means "out of descriptors or memory for now".
fn out_of_resources(e: &Error) -> bool {
    let source = match e {
        Error::Socket(SocketError::Io { source, .. }) | Error::Io { source, .. } => source,
        _ => return false,
    };
    matches!(
        source.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

impl LinkListener {
    /// Sets which users' Unix connections are accepted (see [`LinkAddr::bind_with_trust`]);
    /// no effect on TCP and shared-memory listeners.
    pub fn set_trust(&mut self, trust: Trust) {
        if let LinkListener::Unix(l) = self {
            l.set_trust(trust);
        }
    }

    /// Accepts one connection, waiting as `wait` allows.
    ///
    /// Out of descriptors or memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`), it pauses (100
    /// ms at a time, within `wait`) instead of failing at once, so that an accept loop neither
    /// spins nor ends while the connections it serves go on; a wait that ends during the
    /// pause is [`Error::Timeout`].
    pub fn accept_wait(&self, wait: Wait) -> Result<Box<dyn Link>, Error> {
        loop {
            match self.accept_once(wait) {
                Err(e) if out_of_resources(&e) && wait != Wait::NoWait => match wait.remaining() {
                    Some(left) if left <= ACCEPT_PAUSE => {
                        std::thread::sleep(left);
                        return Err(Error::Timeout);
                    }
                    _ => std::thread::sleep(ACCEPT_PAUSE),
                },
                other => return other,
            }
        }
    }

    fn accept_once(&self, wait: Wait) -> Result<Box<dyn Link>, Error> {
        match self {
            LinkListener::Unix(l) => {
                let (s, cred) = l.accept_wait(wait)?;
                let mut link = UnixLink::new(s);
                link.cred = Some(cred);
                Ok(Box::new(link))
            }
            LinkListener::Tcp(l) => {
                let (s, _) = l.accept_wait(wait)?;
                Ok(Box::new(TcpLink::new(s)))
            }
            LinkListener::Shm(l) => Ok(Box::new(l.accept_wait(wait)?)),
        }
    }

    /// The address it listens on (for TCP, with the port the kernel chose for port 0).
    pub fn local_addr(&self) -> Result<LinkAddr, Error> {
        match self {
            LinkListener::Unix(l) => Ok(LinkAddr::Unix(l.local_addr().clone())),
            LinkListener::Tcp(l) => Ok(LinkAddr::Tcp(l.local_addr()?.to_string())),
            LinkListener::Shm(l) => Ok(LinkAddr::Shm(l.name().to_owned())),
        }
    }
}

fn dup(fd: impl AsFd) -> Result<OwnedFd, Error> {
    fd.as_fd().try_clone_to_owned().map_err(|source| Error::Io {
        context: "duplicating a connection's descriptor".into(),
        source,
    })
}

/// A [`Link`] over a Unix stream socket.
#[derive(Debug)]
pub struct UnixLink {
    stream: UnixStream,
    cred: Option<Credentials>,
    max: usize,
}

impl UnixLink {
    /// Wraps a connected stream.
    pub fn new(stream: UnixStream) -> UnixLink {
        let cred = stream.peer_credentials().ok();
        UnixLink {
            stream,
            cred,
            max: crate::framing::DEFAULT_MAX_FRAME_LEN,
        }
    }
}

impl Link for UnixLink {
    fn send_frame_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        Ok(self.stream.send_frame_wait(msg, wait)?)
    }
    fn recv_frame_wait(&mut self, wait: Wait) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.stream.recv_frame_wait(wait)?)
    }
    fn try_clone_link(&self) -> Result<Box<dyn Link>, Error> {
        let mut stream = UnixStream::from(dup(&self.stream)?);
        stream.set_max_frame_len(self.max);
        Ok(Box::new(UnixLink {
            stream,
            cred: self.cred,
            max: self.max,
        }))
    }
    fn set_max_frame_len(&mut self, max: usize) {
        self.max = max;
        self.stream.set_max_frame_len(max);
    }
    fn peer_credentials(&self) -> Option<Credentials> {
        self.cred
    }
    fn peer_name(&self) -> String {
        match self.cred {
            Some(c) => format!("unix peer pid {} uid {}", c.pid, c.uid),
            None => "unix peer".into(),
        }
    }
}

/// A [`Link`] over TCP.
#[derive(Debug)]
pub struct TcpLink {
    stream: TcpStream,
    max: usize,
}

impl TcpLink {
    /// Wraps a connected stream.
    pub fn new(stream: TcpStream) -> TcpLink {
        TcpLink {
            stream,
            max: crate::framing::DEFAULT_MAX_FRAME_LEN,
        }
    }
}

impl Link for TcpLink {
    fn send_frame_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        Ok(self.stream.send_frame_wait(msg, wait)?)
    }
    fn recv_frame_wait(&mut self, wait: Wait) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.stream.recv_frame_wait(wait)?)
    }
    fn try_clone_link(&self) -> Result<Box<dyn Link>, Error> {
        let mut stream = TcpStream::from(dup(&self.stream)?);
        stream.set_max_frame_len(self.max);
        Ok(Box::new(TcpLink {
            stream,
            max: self.max,
        }))
    }
    fn set_max_frame_len(&mut self, max: usize) {
        self.max = max;
        self.stream.set_max_frame_len(max);
    }
    fn peer_credentials(&self) -> Option<Credentials> {
        None
    }
    fn into_fd(self: Box<Self>) -> Option<OwnedFd> {
        Some(OwnedFd::from(self.stream))
    }
    fn peer_name(&self) -> String {
        match self.stream.peer_addr() {
            Ok(a) => format!("tcp peer {a}"),
            Err(_) => "tcp peer".into(),
        }
    }
}
