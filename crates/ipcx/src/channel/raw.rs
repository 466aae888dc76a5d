//! Raw byte access to the byte-stream endpoints (fifo, unix stream, tcp): bytes copied verbatim,
//! no framing. This is what `ipcx send --raw` / `ipcx recv --raw` use to talk to programs that do
//! not frame (socat, `cat > fifo`, a line-based TCP service).

use std::io::{Read, Write};
use std::os::fd::AsFd;

use super::{Endpoint, Error, Options};
use crate::fifo::{self, Fifo};
use crate::pipe::{PipeError, PipeReader};
use crate::socket::{TcpListener, TcpStream, UnixListener, UnixStream};
use crate::wait::Wait;

/// A source of raw bytes from every writer or connection of an endpoint, one after another.
pub trait RawReader: Send + std::fmt::Debug {
    /// Reads some bytes, waiting as `wait` allows ([`Error::Timeout`] / [`Error::WouldBlock`]).
    /// A writer or connection that ends is not an error: the reader waits for the next one.
    fn read_wait(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize, Error>;
}

impl Endpoint {
    /// A writer of raw bytes to a byte-stream endpoint (connects or opens, like
    /// [`Endpoint::sender`], honouring `opts.connect_timeout`).
    pub fn raw_writer(&self, opts: &Options) -> Result<Box<dyn Write + Send>, Error> {
        let what = self.to_string();
        match self {
            Endpoint::Fifo(path) => {
                if opts.create {
                    let _kept = Fifo::options().mode(opts.mode).create(path)?.persist();
                }
                Ok(Box::new(fifo::open_writer_wait(
                    path,
                    super::fifo::open_wait(opts),
                )?))
            }
            Endpoint::Unix(addr) => {
                let s = match opts.connect_timeout {
                    Some(t) => UnixStream::connect_timeout(addr, t),
                    None => UnixStream::connect(addr),
                }
                .map_err(|e| super::socket::map_connect_err(e, &what))?;
                let server = s.peer_credentials().ok().map(|c| c.uid);
                super::socket::check_receiver(&opts.trust, &what, server)?;
                Ok(Box::new(s))
            }
            Endpoint::Tcp { host, port } => {
                let s = match opts.connect_timeout {
                    Some(t) => TcpStream::connect_timeout((host.as_str(), *port), t),
                    None => TcpStream::connect((host.as_str(), *port)),
                }
                .map_err(|e| super::socket::map_err(e, &what, true))?;
                Ok(Box::new(s))
            }
            _ => Err(not_a_stream(self)),
        }
    }

    /// A reader of raw bytes from a byte-stream endpoint: binds or creates like
    /// [`Endpoint::receiver`] (removing what it created on drop), then yields the bytes of one
    /// writer or connection after another.
    pub fn raw_reader(&self, opts: &Options) -> Result<Box<dyn RawReader>, Error> {
        let what = self.to_string();
        let sock = |e| super::socket::map_err(e, &what, false);
        match self {
            Endpoint::Fifo(path) => {
                let fifo = Fifo::options().mode(opts.mode).create(path)?;
                let reader = fifo.open_reader()?;
                Ok(Box::new(FifoRaw { fifo, reader }))
            }
            Endpoint::Unix(addr) => {
                let mut listener = UnixListener::bind_with_mode(addr, opts.mode).map_err(sock)?;
                listener.set_trust(opts.trust.clone());
                Ok(Box::new(UnixRaw {
                    listener,
                    conn: None,
                }))
            }
            Endpoint::Tcp { host, port } => {
                let listener = TcpListener::bind((host.as_str(), *port)).map_err(sock)?;
                Ok(Box::new(TcpRaw {
                    listener,
                    conn: None,
                }))
            }
            _ => Err(not_a_stream(self)),
        }
    }
}

fn not_a_stream(ep: &Endpoint) -> Error {
    Error::Unsupported {
        what: "raw byte access (--raw)".into(),
        mechanism: format!(
            "{ep}, which keeps message boundaries; --raw applies to fifo:, unix: and tcp:"
        ),
    }
}

#[derive(Debug)]
struct FifoRaw {
    fifo: Fifo,
    reader: PipeReader,
}

impl RawReader for FifoRaw {
    fn read_wait(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize, Error> {
        loop {
            match self.reader.read_wait(buf, wait) {
                Ok(0) | Err(PipeError::PeerGone { .. }) => {
                    // The writer left: wait for the next one on a fresh read end.
                    self.reader = self.fifo.open_reader()?;
                }
                Ok(n) => return Ok(n),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Reads one connection to its end, then accepts the next.
fn read_connections<C: Read + AsFd>(
    conn: &mut Option<C>,
    accept: impl Fn(Wait) -> Result<C, Error>,
    buf: &mut [u8],
    wait: Wait,
) -> Result<usize, Error> {
    loop {
        let c = match conn {
            Some(c) => c,
            None => conn.insert(accept(wait)?),
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
            Ok(0) | Err(_) => *conn = None,
            Ok(n) => return Ok(n),
        }
    }
}

#[derive(Debug)]
struct UnixRaw {
    listener: UnixListener,
    conn: Option<UnixStream>,
}

impl RawReader for UnixRaw {
    fn read_wait(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize, Error> {
        let listener = &self.listener;
        read_connections(
            &mut self.conn,
            |w| {
                listener
                    .accept_wait(w)
                    .map(|(s, _)| s)
                    .map_err(|e| super::socket::map_err(e, "unix listener", false))
            },
            buf,
            wait,
        )
    }
}

#[derive(Debug)]
struct TcpRaw {
    listener: TcpListener,
    conn: Option<TcpStream>,
}

impl RawReader for TcpRaw {
    fn read_wait(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize, Error> {
        let listener = &self.listener;
        read_connections(
            &mut self.conn,
            |w| {
                listener
                    .accept_wait(w)
                    .map(|(s, _)| s)
                    .map_err(|e| super::socket::map_err(e, "tcp listener", false))
            },
            buf,
            wait,
        )
    }
}
