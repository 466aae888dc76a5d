//! What every byte-stream socket transport (Unix stream, TCP) shares, so that a new one
//! implements [`FramedStream`] for its socket and [`StreamListener`] for its listener and
//! reuses the rest: [`StreamConnection`], the framed [`Connection`]; [`Connections`], the
//! [`Listener`] of them; and the raw (`--raw`) reader of one connection after another.

use std::fmt;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;

use super::connection::dup;
use super::socket::map_err;
use super::{Connection, Listener};
use crate::channel::{Endpoint, Error, RawReader};
use crate::socket::{Credentials, SocketError};
use crate::trust::Trust;
use crate::wait::Wait;
use crate::wait_set::{Pending, Readiness};

/// A connected byte-stream socket that sends and receives frames.
pub trait FramedStream: Send + fmt::Debug + AsFd + From<OwnedFd> + Into<OwnedFd> + 'static {
    /// Sends one frame, waiting as `wait` allows.
    fn send_frame(&mut self, msg: &[u8], wait: Wait) -> Result<(), SocketError>;
    /// Receives one frame, waiting as `wait` allows: `None` at a clean end of stream.
    fn recv_frame(&mut self, wait: Wait) -> Result<Option<Vec<u8>>, SocketError>;
    /// Sets the largest frame accepted and sent.
    fn set_max_frame(&mut self, max: usize);
    /// Whether a whole frame waits in the stream's own buffer (read, not yet received).
    fn has_buffered_frame(&self) -> bool;
    /// The peer's kernel-verified credentials, when the socket has them.
    fn credentials(&self) -> Option<Credentials> {
        None
    }
    /// The peer, for messages (`credentials` as the connection knows them).
    fn peer_name(&self, credentials: Option<Credentials>) -> String;
}

/// A framed [`Connection`] over a connected byte-stream socket.
#[derive(Debug)]
pub struct StreamConnection<S> {
    stream: S,
    cred: Option<Credentials>,
    max: usize,
    /// Raised while a whole frame waits in the stream's buffer, once a wait set asked.
    pending: OnceLock<Pending>,
}

impl<S: FramedStream> StreamConnection<S> {
    /// Wraps a connected stream.
    pub fn new(stream: S) -> StreamConnection<S> {
        let cred = stream.credentials();
        StreamConnection::with_credentials(stream, cred)
    }

    /// Wraps a connected stream whose peer's credentials are known already (from accept).
    pub fn with_credentials(stream: S, cred: Option<Credentials>) -> StreamConnection<S> {
        StreamConnection {
            stream,
            cred,
            max: crate::framing::DEFAULT_MAX_FRAME_LEN,
            pending: OnceLock::new(),
        }
    }
}

impl<S: FramedStream> Connection for StreamConnection<S> {
    fn send_frame_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        Ok(self.stream.send_frame(msg, wait)?)
    }
    fn recv_frame_wait(&mut self, wait: Wait) -> Result<Option<Vec<u8>>, Error> {
        let r = self.stream.recv_frame(wait);
        if let Some(p) = self.pending.get() {
            p.set(self.stream.has_buffered_frame());
        }
        Ok(r?)
    }
    fn try_clone(&self) -> Result<Box<dyn Connection>, Error> {
        let mut stream = S::from(dup(&self.stream)?);
        stream.set_max_frame(self.max);
        Ok(Box::new(StreamConnection {
            stream,
            cred: self.cred,
            max: self.max,
            pending: OnceLock::new(),
        }))
    }
    fn set_max_frame_len(&mut self, max: usize) {
        self.max = max;
        self.stream.set_max_frame(max);
    }
    fn peer_credentials(&self) -> Option<Credentials> {
        self.cred
    }
    fn peer_name(&self) -> String {
        self.stream.peer_name(self.cred)
    }
    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        let pending = self.pending.get_or_init(|| {
            let p = Pending::new();
            p.set(self.stream.has_buffered_frame());
            p
        });
        Ok(Readiness::fd(self.stream.as_fd()).with_pending(pending.clone()))
    }
}

/// A listening byte-stream socket.
pub trait StreamListener: Send + Sync + fmt::Debug + AsFd + 'static {
    /// The connections it accepts.
    type Stream: FramedStream + Read;
    /// What it is called in errors (`unix listener`).
    const WHAT: &'static str;
    /// Accepts one connection, waiting as `wait` allows, with the peer's credentials when the
    /// socket has them.
    fn accept_stream(&self, wait: Wait)
    -> Result<(Self::Stream, Option<Credentials>), SocketError>;
    /// The endpoint it listens on (for TCP, with the port the kernel chose for port 0).
    fn local_endpoint(&self) -> Result<Endpoint, Error>;
    /// Sets which users' connections are accepted; no effect by default (peers without a uid).
    fn trust(&mut self, trust: Trust) {
        let _ = trust;
    }
}

/// The [`Listener`] of a [`StreamListener`]'s connections.
#[derive(Debug)]
pub struct Connections<L>(pub L);

impl<L: StreamListener> Listener for Connections<L> {
    fn accept_once(&self, wait: Wait) -> Result<Box<dyn Connection>, Error> {
        let (s, cred) = self.0.accept_stream(wait)?;
        Ok(Box::new(match cred {
            Some(c) => StreamConnection::with_credentials(s, Some(c)),
            None => StreamConnection::new(s),
        }))
    }
    fn local_addr(&self) -> Result<Endpoint, Error> {
        self.0.local_endpoint()
    }
    fn set_trust(&mut self, trust: Trust) {
        self.0.trust(trust);
    }
    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        Ok(Readiness::fd(self.0.as_fd()))
    }
}

/// Reads one connection of a listener to its end, then accepts the next (`--raw`).
#[derive(Debug)]
pub(super) struct StreamRaw<L: StreamListener> {
    listener: L,
    conn: Option<L::Stream>,
}

impl<L: StreamListener> StreamRaw<L> {
    pub(super) fn new(listener: L) -> StreamRaw<L> {
        StreamRaw {
            listener,
            conn: None,
        }
    }
}

impl<L: StreamListener> RawReader for StreamRaw<L> {
    fn read_wait(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize, Error> {
        loop {
            let c = match &mut self.conn {
                Some(c) => c,
                None => {
                    let (s, _) = self
                        .listener
                        .accept_stream(wait)
                        .map_err(|e| map_err(e, L::WHAT, false))?;
                    self.conn.insert(s)
                }
            };
            match crate::sys::poll::poll_until(c.as_fd(), true, wait) {
                Ok(()) => {}
                Err(crate::sys::poll::WaitError::Timeout) => return Err(Error::Timeout),
                Err(crate::sys::poll::WaitError::WouldBlock) => return Err(Error::WouldBlock),
                Err(crate::sys::poll::WaitError::Io(e)) => {
                    return Err(Error::from_io("polling a connection", e));
                }
            }
            match c.read(buf) {
                Ok(0) | Err(_) => self.conn = None,
                Ok(n) => return Ok(n),
            }
        }
    }
}
