//! `tcp:HOST:PORT`: TCP streams (`TCP_NODELAY`), framed; connections ([`TcpConnection`]) for
//! the patterns and RPC. The message channels are in [`super::socket`].

use std::io::Write;

use super::connection::connect_timeout;
use super::socket::{
    Accepted, PeerListener, Server, StreamSender, connect_retrying, map_connect_err, map_err,
};
use super::stream::{Connections, FramedStream, StreamConnection, StreamListener, StreamRaw};
use super::{Connection, ConnectionOptions, Listener, Transport};
use crate::channel::Meta;
use crate::channel::{
    Address, Endpoint, Error, MessageReceiver, MessageSender, Options, RawReader,
};
use crate::socket::{Credentials, SocketError, TcpListener, TcpStream};
use crate::wait::Wait;

pub(super) fn host_port(addr: &Address) -> (&str, u16) {
    addr.host_port().expect("tcp: parses HOST:PORT only")
}

/// Connects a TCP stream to `addr` (`HOST:PORT`), giving up at the deadline.
pub(super) fn connect_stream(addr: &Address, wait: Wait) -> Result<TcpStream, SocketError> {
    let a = host_port(addr);
    if wait == Wait::Forever {
        TcpStream::connect(a)
    } else {
        TcpStream::connect_timeout(a, connect_timeout(wait))
    }
}

/// `tcp:HOST:PORT`, `tcp:[V6]:PORT`: a TCP stream, framed.
#[derive(Debug)]
pub(super) struct Tcp;

impl Transport for Tcp {
    fn scheme(&self) -> &'static str {
        "tcp"
    }
    fn syntax(&self) -> &'static [&'static str] {
        &["tcp:HOST:PORT"]
    }
    fn parse(&self, rest: &str) -> Result<Address, String> {
        Address::parse_host_port(rest)
    }
    fn is_byte_stream(&self) -> bool {
        true
    }
    fn receiver(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error> {
        let what = format!("tcp:{addr}");
        let l = TcpListener::bind(host_port(addr)).map_err(|e| map_err(e, &what, false))?;
        Ok(Box::new(Server::new(Box::new(l), what, opts)))
    }
    fn sender(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
        let what = format!("tcp:{addr}");
        let a = host_port(addr);
        let s = connect_retrying(opts, |w| match w.remaining() {
            None => TcpStream::connect(a),
            Some(left) => TcpStream::connect_timeout(a, left),
        })
        .map_err(|e| map_connect_err(e, &what))?;
        Ok(Box::new(StreamSender {
            fd: s.into(),
            max: opts.max_frame_len,
            what,
        }))
    }
    fn connect(
        &self,
        addr: &Address,
        wait: Wait,
        opts: &ConnectionOptions,
    ) -> Result<Box<dyn Connection>, Error> {
        let _ = opts;
        Ok(Box::new(TcpConnection::new(connect_stream(addr, wait)?)))
    }
    fn bind(&self, addr: &Address, opts: &ConnectionOptions) -> Result<Box<dyn Listener>, Error> {
        let _ = opts; // TCP peers carry no uid.
        Ok(Box::new(Connections(TcpListener::bind(host_port(addr))?)))
    }
    fn raw_writer(&self, addr: &Address, opts: &Options) -> Result<Box<dyn Write + Send>, Error> {
        let a = host_port(addr);
        let s = match opts.connect_timeout {
            Some(t) => TcpStream::connect_timeout(a, t),
            None => TcpStream::connect(a),
        }
        .map_err(|e| map_err(e, &format!("tcp:{addr}"), true))?;
        Ok(Box::new(s))
    }
    fn raw_reader(&self, addr: &Address, opts: &Options) -> Result<Box<dyn RawReader>, Error> {
        let _ = opts;
        let listener = TcpListener::bind(host_port(addr))
            .map_err(|e| map_err(e, &format!("tcp:{addr}"), false))?;
        Ok(Box::new(StreamRaw::new(listener)))
    }
    #[cfg(feature = "tokio")]
    fn connect_async<'a>(
        &'a self,
        addr: &'a Address,
        opts: &'a ConnectionOptions,
    ) -> super::asynch::Connecting<'a> {
        let _ = opts;
        Box::pin(super::asynch::connect_tcp(host_port(addr)))
    }
    #[cfg(feature = "tokio")]
    fn bind_async(
        &self,
        addr: &Address,
        opts: &ConnectionOptions,
    ) -> Result<Box<dyn super::asynch::AsyncListener>, Error> {
        let _ = opts; // TCP peers carry no uid.
        super::asynch::tcp_listener(TcpListener::bind(host_port(addr))?)
    }
}

impl StreamListener for TcpListener {
    type Stream = TcpStream;
    const WHAT: &'static str = "tcp listener";
    fn accept_stream(&self, wait: Wait) -> Result<(TcpStream, Option<Credentials>), SocketError> {
        self.accept_wait(wait).map(|(s, _)| (s, None))
    }
    fn local_endpoint(&self) -> Result<Endpoint, Error> {
        let a = self.local_addr()?;
        Endpoint::new("tcp", a.into())
    }
}

/// A [`Connection`] over TCP.
pub type TcpConnection = StreamConnection<TcpStream>;

impl FramedStream for TcpStream {
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
    fn peer_name(&self, credentials: Option<Credentials>) -> String {
        let _ = credentials;
        match self.peer_addr() {
            Ok(a) => format!("tcp peer {a}"),
            Err(_) => "tcp peer".into(),
        }
    }
}

impl PeerListener for TcpListener {
    fn try_accept_peer(&self, what: &str) -> Result<Accepted, SocketError> {
        let _ = what;
        self.try_accept().map(|(s, peer)| Accepted {
            fd: s.into(),
            meta: Meta {
                peer: Some(peer.to_string()),
                ..Meta::default()
            },
            name: format!("tcp peer {peer}"),
            framed: true,
        })
    }
}
