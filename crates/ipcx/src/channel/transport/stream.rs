//! [`StreamConnection`]: the framed [`Connection`] over any connected byte-stream socket (Unix
//! stream, TCP; a new stream transport implements [`FramedStream`] for its socket and reuses
//! it).

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};

use super::Connection;
use super::connection::dup;
use crate::channel::Error;
use crate::socket::{Credentials, SocketError};
use crate::wait::Wait;

/// A connected byte-stream socket that sends and receives frames.
pub trait FramedStream: Send + fmt::Debug + AsFd + From<OwnedFd> + Into<OwnedFd> + 'static {
    /// Whether another layer may take the socket over ([`Connection::into_fd`]: TLS over TCP).
    const WRAPPABLE: bool = false;
    /// Sends one frame, waiting as `wait` allows.
    fn send_frame(&mut self, msg: &[u8], wait: Wait) -> Result<(), SocketError>;
    /// Receives one frame, waiting as `wait` allows: `None` at a clean end of stream.
    fn recv_frame(&mut self, wait: Wait) -> Result<Option<Vec<u8>>, SocketError>;
    /// Sets the largest frame accepted and sent.
    fn set_max_frame(&mut self, max: usize);
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
        }
    }
}

impl<S: FramedStream> Connection for StreamConnection<S> {
    fn send_frame_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        Ok(self.stream.send_frame(msg, wait)?)
    }
    fn recv_frame_wait(&mut self, wait: Wait) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.stream.recv_frame(wait)?)
    }
    fn try_clone(&self) -> Result<Box<dyn Connection>, Error> {
        let mut stream = S::from(dup(&self.stream)?);
        stream.set_max_frame(self.max);
        Ok(Box::new(StreamConnection {
            stream,
            cred: self.cred,
            max: self.max,
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
    fn into_fd(self: Box<Self>) -> Option<OwnedFd> {
        S::WRAPPABLE.then(|| self.stream.into())
    }
}
