//! `unix:`, `unix-dgram:` and `unix-seqpacket:`: Unix domain sockets, paths or abstract
//! `@NAME`s.
//!
//! Stream sockets carry framed messages and connections ([`UnixConnection`], with the peer's
//! kernel-verified credentials); datagram and seqpacket sockets keep message boundaries
//! themselves. The message channels are in [`super::socket`].

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use super::socket::{
    Accepted, PeerListener, Server, StreamSender, check_receiver, connect_retrying, cred_meta,
    map_connect_err, map_err,
};
use super::stream::{Connections, FramedStream, StreamConnection, StreamListener, StreamRaw};
use super::{Connection, ConnectionOptions, Listener, Transport};
use crate::channel::{
    Address, Endpoint, Error, Message, MessageReceiver, MessageSender, Options, RawReader,
};
use crate::socket::unix::send_message;
use crate::socket::{
    Credentials, SocketError, UnixAddr, UnixDatagram, UnixListener,
    UnixSeqpacket as SeqpacketSocket, UnixSeqpacketListener, UnixStream,
};
use crate::sys::socket as sys;
use crate::trust::Trust;
use crate::wait::Wait;

fn unix_addr(addr: &Address) -> &UnixAddr {
    addr.unix().expect("unix: parses socket addresses only")
}

/// `unix:PATH`, `unix:@NAME`: a Unix stream socket, framed.
#[derive(Debug)]
pub(super) struct Unix;

impl Transport for Unix {
    fn scheme(&self) -> &'static str {
        "unix"
    }
    fn syntax(&self) -> &'static [&'static str] {
        &["unix:PATH", "unix:@NAME"]
    }
    fn parse(&self, rest: &str) -> Result<Address, String> {
        Address::parse_unix(rest)
    }
    fn is_byte_stream(&self) -> bool {
        true
    }
    fn receiver(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error> {
        unix_receiver(UnixKind::Stream, unix_addr(addr), opts)
    }
    fn sender(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
        unix_sender(UnixKind::Stream, unix_addr(addr), opts)
    }
    fn connect(
        &self,
        addr: &Address,
        wait: Wait,
        opts: &ConnectionOptions,
    ) -> Result<Box<dyn Connection>, Error> {
        let _ = opts;
        let a = unix_addr(addr);
        let s = if wait == Wait::Forever {
            UnixStream::connect(a)?
        } else {
            UnixStream::connect_timeout(a, super::connection::connect_timeout(wait))?
        };
        Ok(Box::new(UnixConnection::new(s)))
    }
    fn bind(&self, addr: &Address, opts: &ConnectionOptions) -> Result<Box<dyn Listener>, Error> {
        let mut l = UnixListener::bind(unix_addr(addr))?;
        l.set_trust(opts.trust.clone());
        Ok(Box::new(Connections(l)))
    }
    fn raw_writer(&self, addr: &Address, opts: &Options) -> Result<Box<dyn Write + Send>, Error> {
        let a = unix_addr(addr);
        let what = format!("unix:{a}");
        let s = match opts.connect_timeout {
            Some(t) => UnixStream::connect_timeout(a, t),
            None => UnixStream::connect(a),
        }
        .map_err(|e| map_connect_err(e, &what))?;
        let server = s.peer_credentials().ok().map(|c| c.uid);
        check_receiver(&opts.trust, &what, server)?;
        Ok(Box::new(s))
    }
    fn raw_reader(&self, addr: &Address, opts: &Options) -> Result<Box<dyn RawReader>, Error> {
        let a = unix_addr(addr);
        let mut listener = UnixListener::bind_with_mode(a, opts.mode)
            .map_err(|e| map_err(e, &format!("unix:{a}"), false))?;
        listener.set_trust(opts.trust.clone());
        Ok(Box::new(StreamRaw::new(listener)))
    }
    #[cfg(feature = "tokio")]
    fn connect_async<'a>(
        &'a self,
        addr: &'a Address,
        opts: &'a ConnectionOptions,
    ) -> super::asynch::Connecting<'a> {
        let _ = opts;
        Box::pin(super::asynch::connect_unix(unix_addr(addr)))
    }
    #[cfg(feature = "tokio")]
    fn bind_async(
        &self,
        addr: &Address,
        opts: &ConnectionOptions,
    ) -> Result<Box<dyn super::asynch::AsyncListener>, Error> {
        let mut l = UnixListener::bind(unix_addr(addr))?;
        l.set_trust(opts.trust.clone());
        super::asynch::unix_listener(l)
    }
}

/// `unix-dgram:PATH`, `unix-dgram:@NAME`: a Unix datagram socket.
#[derive(Debug)]
pub(super) struct UnixDgram;

impl Transport for UnixDgram {
    fn scheme(&self) -> &'static str {
        "unix-dgram"
    }
    fn syntax(&self) -> &'static [&'static str] {
        &["unix-dgram:PATH"]
    }
    fn parse(&self, rest: &str) -> Result<Address, String> {
        Address::parse_unix(rest)
    }
    fn receiver(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error> {
        unix_receiver(UnixKind::Datagram, unix_addr(addr), opts)
    }
    fn sender(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
        unix_sender(UnixKind::Datagram, unix_addr(addr), opts)
    }
}

/// `unix-seqpacket:PATH`, `unix-seqpacket:@NAME`: a Unix seqpacket socket.
#[derive(Debug)]
pub(super) struct UnixSeqpacket;

impl Transport for UnixSeqpacket {
    fn scheme(&self) -> &'static str {
        "unix-seqpacket"
    }
    fn syntax(&self) -> &'static [&'static str] {
        &["unix-seqpacket:PATH"]
    }
    fn parse(&self, rest: &str) -> Result<Address, String> {
        Address::parse_unix(rest)
    }
    fn receiver(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error> {
        unix_receiver(UnixKind::Seqpacket, unix_addr(addr), opts)
    }
    fn sender(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
        unix_sender(UnixKind::Seqpacket, unix_addr(addr), opts)
    }
}

impl StreamListener for UnixListener {
    type Stream = UnixStream;
    const WHAT: &'static str = "unix listener";
    fn accept_stream(&self, wait: Wait) -> Result<(UnixStream, Option<Credentials>), SocketError> {
        self.accept_wait(wait).map(|(s, c)| (s, Some(c)))
    }
    fn local_endpoint(&self) -> Result<Endpoint, Error> {
        Endpoint::new("unix", Address::Unix(self.local_addr().clone()))
    }
    fn trust(&mut self, trust: Trust) {
        self.set_trust(trust);
    }
}

/// A [`Connection`] over a Unix stream socket, with the peer's kernel-verified credentials.
pub type UnixConnection = StreamConnection<UnixStream>;

impl FramedStream for UnixStream {
    fn send_frame(&mut self, msg: &[u8], wait: Wait) -> Result<(), SocketError> {
        self.send_frame_wait(msg, wait)
    }
    fn recv_frame(&mut self, wait: Wait) -> Result<Option<Vec<u8>>, SocketError> {
        self.recv_frame_wait(wait)
    }
    fn set_max_frame(&mut self, max: usize) {
        self.set_max_frame_len(max);
    }
    fn has_buffered_frame(&self) -> bool {
        self.has_buffered_frame()
    }
    fn credentials(&self) -> Option<Credentials> {
        self.peer_credentials().ok()
    }
    fn peer_name(&self, credentials: Option<Credentials>) -> String {
        match credentials {
            Some(c) => format!("unix peer pid {} uid {}", c.pid, c.uid),
            None => "unix peer".into(),
        }
    }
}

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

fn unix_what(kind: UnixKind, addr: &UnixAddr) -> String {
    match kind {
        UnixKind::Stream => format!("unix:{addr}"),
        UnixKind::Datagram => format!("unix-dgram:{addr}"),
        UnixKind::Seqpacket => format!("unix-seqpacket:{addr}"),
    }
}

fn unix_receiver(
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
            Box::new(Server::new(Box::new(l), what, opts))
        }
        UnixKind::Seqpacket => {
            let mut l = UnixSeqpacketListener::bind_with_mode(addr, opts.mode).map_err(m)?;
            l.set_trust(opts.trust.clone());
            Box::new(Server::new(Box::new(l), what, opts))
        }
        UnixKind::Datagram => {
            let mut sock = UnixDatagram::bind_with_mode(addr, opts.mode).map_err(m)?;
            sock.set_trust(opts.trust.clone());
            Box::new(DgramReceiver { sock, what })
        }
    })
}

fn unix_sender(
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
                Wait::Forever => SeqpacketSocket::connect(addr),
                w => SeqpacketSocket::connect_timeout(addr, timeout(w)),
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

    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        Ok(crate::wait_set::Readiness::fd(std::os::fd::AsFd::as_fd(
            &self.sock,
        )))
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

impl PeerListener for UnixListener {
    fn try_accept_peer(&self, what: &str) -> Result<Accepted, SocketError> {
        self.try_accept().map(|(s, c)| Accepted {
            fd: s.into(),
            meta: cred_meta(Some(c)),
            name: format!("{what} peer pid {} (uid {})", c.pid, c.uid),
            framed: true,
        })
    }
}

impl PeerListener for UnixSeqpacketListener {
    fn try_accept_peer(&self, what: &str) -> Result<Accepted, SocketError> {
        self.try_accept().map(|(s, c)| Accepted {
            fd: s.into(),
            meta: cred_meta(Some(c)),
            name: format!("{what} peer pid {} (uid {})", c.pid, c.uid),
            framed: false,
        })
    }
}
