//! Raw byte access to the byte-stream endpoints (fifo, unix stream, tcp): bytes copied verbatim,
//! no framing. This is what `ipcx send --raw` / `ipcx recv --raw` use to talk to programs that do
//! not frame (socat, `cat > fifo`, a line-based TCP service).
//!
//! The transports open them ([`super::Transport::raw_writer`],
//! [`super::Transport::raw_reader`]); a listening transport's reader is one [`StreamRaw`] over
//! its listener.

use std::io::Read;
use std::os::fd::AsFd;

use super::Error;
use crate::wait::Wait;

/// A source of raw bytes from every writer or connection of an endpoint, one after another.
pub trait RawReader: Send + std::fmt::Debug {
    /// Reads some bytes, waiting as `wait` allows ([`Error::Timeout`] / [`Error::WouldBlock`]).
    /// A writer or connection that ends is not an error: the reader waits for the next one.
    fn read_wait(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize, Error>;
}

/// A listener of byte streams, for [`StreamRaw`].
pub(crate) trait AcceptStream: Send + std::fmt::Debug {
    /// The accepted stream.
    type Stream: Read + AsFd + Send + std::fmt::Debug;
    /// Accepts one connection, waiting as `wait` allows.
    fn accept_stream(&self, wait: Wait) -> Result<Self::Stream, Error>;
}

/// Reads one connection of a listener to its end, then accepts the next.
#[derive(Debug)]
pub(crate) struct StreamRaw<L: AcceptStream> {
    listener: L,
    conn: Option<L::Stream>,
}

impl<L: AcceptStream> StreamRaw<L> {
    pub(crate) fn new(listener: L) -> StreamRaw<L> {
        StreamRaw {
            listener,
            conn: None,
        }
    }
}

impl<L: AcceptStream> RawReader for StreamRaw<L> {
    fn read_wait(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize, Error> {
        loop {
            let c = match &mut self.conn {
                Some(c) => c,
                None => self.conn.insert(self.listener.accept_stream(wait)?),
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

/// The error of `--raw` on an endpoint that keeps message boundaries.
pub(crate) fn not_a_stream(ep: &str) -> Error {
    Error::Unsupported {
        what: "raw byte access (--raw)".into(),
        mechanism: format!(
            "{ep}, which keeps message boundaries; --raw applies to fifo:, unix: and tcp:"
        ),
    }
}
