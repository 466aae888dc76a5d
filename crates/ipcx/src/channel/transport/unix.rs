//! `unix:`, `unix-dgram:` and `unix-seqpacket:`: Unix domain sockets, paths or abstract
//! `@NAME`s.
//!
//! Stream sockets carry framed messages and connections ([`UnixConnection`], with the peer's
//! kernel-verified credentials); datagram and seqpacket sockets keep message boundaries
//! themselves. The message channels are in [`super::socket`].

use std::io::Write;

use super::connection::dup;
use super::socket::{self, UnixKind, check_receiver, map_connect_err, map_err};
use super::{Connection, Listener, Transport};
use crate::channel::raw::{AcceptStream, StreamRaw};
use crate::channel::{
    Address, Endpoint, Error, MessageReceiver, MessageSender, Options, RawReader,
};
use crate::socket::{Credentials, UnixAddr, UnixListener, UnixStream};
use crate::trust::Trust;
use crate::wait::Wait;

fn unix_addr(addr: &Address) -> &UnixAddr {
    match addr {
        Address::Unix(a) => a,
        other => unreachable!("unix: parses socket addresses only, not {other:?}"),
    }
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
        socket::unix_receiver(UnixKind::Stream, unix_addr(addr), opts)
    }
    fn sender(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
        socket::unix_sender(UnixKind::Stream, unix_addr(addr), opts)
    }
    fn connect(&self, addr: &Address, wait: Wait) -> Result<Box<dyn Connection>, Error> {
        let a = unix_addr(addr);
        let s = if wait == Wait::Forever {
            UnixStream::connect(a)?
        } else {
            UnixStream::connect_timeout(a, super::connection::connect_timeout(wait))?
        };
        Ok(Box::new(UnixConnection::new(s)))
    }
    fn bind(&self, addr: &Address, trust: Trust) -> Result<Box<dyn Listener>, Error> {
        let mut l = UnixListener::bind(unix_addr(addr))?;
        l.set_trust(trust);
        Ok(Box::new(UnixConnections(l)))
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
    fn connect_async<'a>(&'a self, addr: &'a Address) -> super::asynch::Connecting<'a> {
        Box::pin(super::asynch::connect_unix(unix_addr(addr)))
    }
    #[cfg(feature = "tokio")]
    fn bind_async(
        &self,
        addr: &Address,
        trust: Trust,
    ) -> Result<Box<dyn super::asynch::AsyncListener>, Error> {
        let mut l = UnixListener::bind(unix_addr(addr))?;
        l.set_trust(trust);
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
        socket::unix_receiver(UnixKind::Datagram, unix_addr(addr), opts)
    }
    fn sender(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
        socket::unix_sender(UnixKind::Datagram, unix_addr(addr), opts)
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
        socket::unix_receiver(UnixKind::Seqpacket, unix_addr(addr), opts)
    }
    fn sender(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
        socket::unix_sender(UnixKind::Seqpacket, unix_addr(addr), opts)
    }
}

impl AcceptStream for UnixListener {
    type Stream = UnixStream;
    fn accept_stream(&self, wait: Wait) -> Result<UnixStream, Error> {
        self.accept_wait(wait)
            .map(|(s, _)| s)
            .map_err(|e| map_err(e, "unix listener", false))
    }
}

/// The [`Listener`] of `unix:` connections.
#[derive(Debug)]
struct UnixConnections(UnixListener);

impl Listener for UnixConnections {
    fn accept_once(&self, wait: Wait) -> Result<Box<dyn Connection>, Error> {
        let (s, cred) = self.0.accept_wait(wait)?;
        let mut conn = UnixConnection::new(s);
        conn.cred = Some(cred);
        Ok(Box::new(conn))
    }
    fn local_addr(&self) -> Result<Endpoint, Error> {
        Endpoint::new("unix", Address::Unix(self.0.local_addr().clone()))
    }
    fn set_trust(&mut self, trust: Trust) {
        self.0.set_trust(trust);
    }
}

/// A [`Connection`] over a Unix stream socket.
#[derive(Debug)]
pub struct UnixConnection {
    stream: UnixStream,
    cred: Option<Credentials>,
    max: usize,
}

impl UnixConnection {
    /// Wraps a connected stream.
    pub fn new(stream: UnixStream) -> UnixConnection {
        let cred = stream.peer_credentials().ok();
        UnixConnection {
            stream,
            cred,
            max: crate::framing::DEFAULT_MAX_FRAME_LEN,
        }
    }
}

impl Connection for UnixConnection {
    fn send_frame_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        Ok(self.stream.send_frame_wait(msg, wait)?)
    }
    fn recv_frame_wait(&mut self, wait: Wait) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.stream.recv_frame_wait(wait)?)
    }
    fn try_clone(&self) -> Result<Box<dyn Connection>, Error> {
        let mut stream = UnixStream::from(dup(&self.stream)?);
        stream.set_max_frame_len(self.max);
        Ok(Box::new(UnixConnection {
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
