//! Channel adapter for `fifo:PATH`: framed messages over a FIFO.
//!
//! The receiver creates the FIFO when it is missing (mode `opts.mode`, removed when the
//! receiver is dropped) and serves writer after writer: when the last writer closes, it opens
//! the FIFO again and waits for the next one. A writer that closed, died or went on to another
//! message in the middle of a chunked message is reported as a recoverable
//! [`Error::TruncatedFrame`] naming it; the other writers' messages are not affected
//! ([`crate::pipe`]). A message that would pass `opts.max_buffered` (what the receiver holds for
//! incomplete messages, all writers together) is dropped as a recoverable
//! [`Error::PeerDropped`]. A plain frame above the maximum is a recoverable
//! [`Error::FrameTooLarge`], after which the stream is out of step: its bytes are dropped until
//! every writer has closed.
//!
//! The sender opens an existing FIFO (or creates it, kept, with `opts.create`). With
//! `opts.connect_timeout` it waits that long for a reader ([`Error::Timeout`] then); without,
//! a FIFO that no reader has open is [`Error::PeerGone`] at once, as a socket with no listener
//! is.

use std::path::Path;

use super::Transport;
use crate::channel::raw::RawReader;
use crate::channel::{Address, Error, Message, MessageReceiver, MessageSender, Options};
use crate::fifo::{self, Fifo as FifoFile, FifoError};
use crate::pipe::{PipeError, PipeReader, PipeWriter};
use crate::wait::Wait;
use crate::wait_set::Watched;
use std::os::fd::AsFd;
use std::sync::OnceLock;

impl From<FifoError> for Error {
    fn from(e: FifoError) -> Error {
        let what = |p: &Path| format!("fifo:{}", p.display());
        match e {
            FifoError::NotFound { path } => Error::NotFound {
                hint: format!("start `ipcx recv {}` first, or pass --create", what(&path)),
                what: what(&path),
            },
            FifoError::AlreadyExists { path } => Error::AlreadyExists {
                what: what(&path),
                hint: "remove it first (ipcx rm) or open the existing one".into(),
            },
            FifoError::PermissionDenied { path, source } => Error::PermissionDenied {
                what: what(&path),
                source,
            },
            FifoError::Timeout { .. } => Error::Timeout,
            FifoError::NoReader { path } => Error::PeerGone {
                what: format!("no reader on {}: start the receiver first", what(&path)),
            },
            FifoError::InvalidPath { path, reason } => Error::InvalidAddress {
                addr: what(&path),
                reason: reason.into(),
            },
            other => Error::Io {
                context: "fifo".into(),
                source: std::io::Error::other(other),
            },
        }
    }
}

impl From<PipeError> for Error {
    fn from(e: PipeError) -> Error {
        match e {
            PipeError::WouldBlock { .. } => Error::WouldBlock,
            PipeError::Full { what } => Error::Full { what },
            PipeError::Timeout { .. } => Error::Timeout,
            PipeError::PeerGone { what, detail } => Error::PeerGone {
                what: format!("{what}: {detail}"),
            },
            PipeError::TooLarge { len, max, what } => Error::TooLarge { len, max, what },
            PipeError::NotAtomic { len, max, what, .. } => Error::TooLarge {
                len,
                max,
                what: format!("{what} (one atomic pipe write)"),
            },
            PipeError::FrameTooLarge { len, max, what } => Error::FrameTooLarge {
                len,
                max,
                peer: what,
            },
            PipeError::TruncatedFrame {
                expected,
                got,
                what,
            } => Error::TruncatedFrame {
                expected,
                got,
                peer: what,
            },
            PipeError::Io { context, source } => Error::Io { context, source },
            PipeError::Dropped { what, reason } => Error::PeerDropped { peer: what, reason },
            other => Error::Io {
                context: "pipe".into(),
                source: std::io::Error::other(other),
            },
        }
    }
}

/// `fifo:PATH`: framed messages over a named pipe.
#[derive(Debug)]
pub(super) struct Fifo;

fn path(addr: &Address) -> &Path {
    addr.path().expect("fifo: parses paths only")
}

impl Transport for Fifo {
    fn scheme(&self) -> &'static str {
        "fifo"
    }
    fn syntax(&self) -> &'static [&'static str] {
        &["fifo:PATH"]
    }
    fn parse(&self, rest: &str) -> Result<Address, String> {
        Address::parse_path(rest)
    }
    fn is_byte_stream(&self) -> bool {
        true
    }
    fn receiver(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error> {
        receiver(path(addr), opts)
    }
    fn sender(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
        sender(path(addr), opts)
    }
    fn raw_writer(
        &self,
        addr: &Address,
        opts: &Options,
    ) -> Result<Box<dyn std::io::Write + Send>, Error> {
        let path = path(addr);
        if opts.create {
            let _kept = FifoFile::options().mode(opts.mode).create(path)?.persist();
        }
        Ok(Box::new(fifo::open_writer_wait(path, open_wait(opts))?))
    }
    fn raw_reader(&self, addr: &Address, opts: &Options) -> Result<Box<dyn RawReader>, Error> {
        let fifo = FifoFile::options().mode(opts.mode).create(path(addr))?;
        let reader = fifo.open_reader()?;
        Ok(Box::new(FifoRaw { fifo, reader }))
    }
}

/// Raw bytes of one writer after another.
#[derive(Debug)]
struct FifoRaw {
    fifo: FifoFile,
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

fn receiver(path: &Path, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error> {
    let fifo = FifoFile::options().mode(opts.mode).create(path)?;
    let reader = fifo
        .open_reader()?
        .with_max_frame_len(opts.max_frame_len)
        .with_max_buffered(opts.max_buffered);
    Ok(Box::new(FifoReceiver {
        fifo,
        reader,
        peeked: None,
        watch: OnceLock::new(),
    }))
}

fn sender(path: &Path, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
    if opts.create {
        // Created or found; a sender never removes the FIFO.
        let _kept = FifoFile::options().mode(opts.mode).create(path)?.persist();
    }
    let writer =
        fifo::open_writer_wait(path, open_wait(opts))?.with_max_frame_len(opts.max_frame_len);
    Ok(Box::new(FifoSender { writer }))
}

/// How long a FIFO sender waits for a reader: `opts.connect_timeout`, or not at all (as a
/// socket sender does not wait for a listener).
fn open_wait(opts: &Options) -> Wait {
    opts.connect_timeout.map_or(Wait::NoWait, Wait::timeout)
}

/// Receives from a FIFO, one writer after another.
#[derive(Debug)]
struct FifoReceiver {
    fifo: FifoFile,
    reader: PipeReader,
    /// Once a wait set asked: what the reader had buffered after the last message (taken out
    /// so that the wait set knows it is there), delivered first.
    peeked: Option<Result<Vec<u8>, PipeError>>,
    /// Once a wait set asked: an epoll set holding the current read end (a stable descriptor
    /// across reopening), and the flag raised while `peeked` holds something.
    watch: OnceLock<Watched>,
}

impl FifoReceiver {
    /// Opens a fresh read end (before closing the old one, so the FIFO's buffer is never
    /// without a reader) to wait for the next writer.
    fn reopen(&mut self) -> Result<(), Error> {
        let fresh = self
            .fifo
            .open_reader()?
            .with_max_frame_len(self.reader.max_frame_len())
            .with_max_buffered(self.reader.max_buffered());
        if let Some(w) = self.watch.get() {
            w.add(&fresh)
                .map_err(|e| Error::from_io("watching the FIFO for a wait set", e))?;
        }
        // Dropping the old read end removes it from the epoll set.
        self.reader = fresh;
        Ok(())
    }

    /// Once a wait set watches: takes the next buffered message out and raises the flag.
    fn peek(&mut self) {
        if let Some(w) = self.watch.get() {
            if self.peeked.is_none() {
                self.peeked = self.reader.take_buffered();
            }
            w.pending().set(self.peeked.is_some());
        }
    }
}

impl MessageReceiver for FifoReceiver {
    fn recv_wait(&mut self, wait: Wait) -> Result<Message, Error> {
        let r = match self.peeked.take() {
            Some(r) => r.map(Message::new).map_err(Error::from),
            None => self.recv_fresh(wait),
        };
        self.peek();
        r
    }

    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        // Messages the reader has buffered already: a receive takes them first, and the next
        // one is then peeked; until then, report the bytes the reader holds.
        Watched::readiness(
            &self.watch,
            "watching the FIFO for a wait set",
            [(self.reader.as_fd(), true)],
            self.reader.buffered() > 0,
        )
    }
}

impl FifoReceiver {
    fn recv_fresh(&mut self, wait: Wait) -> Result<Message, Error> {
        loop {
            match self.reader.recv_wait(wait) {
                Ok(data) => return Ok(Message::new(data)),
                // Every writer closed (what they left incomplete was reported before): wait
                // for the next ones on a fresh read end.
                Err(PipeError::PeerGone { .. }) => self.reopen()?,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Sends framed messages into a FIFO.
#[derive(Debug)]
struct FifoSender {
    writer: PipeWriter,
}

impl MessageSender for FifoSender {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        Ok(self.writer.send_wait(msg, wait)?)
    }

    fn max_message_len(&self) -> Option<usize> {
        Some(self.writer.max_frame_len())
    }
}
