//! Channel adapter for `fifo:PATH`: framed messages over a FIFO.
//!
//! The receiver creates the FIFO when it is missing (mode `opts.mode`, removed when the
//! receiver is dropped) and serves writer after writer: when the last writer closes, it opens
//! the FIFO again and waits for the next one. A writer that closed or died inside a frame is
//! reported as a recoverable [`Error::TruncatedFrame`]; a frame above the maximum as a
//! recoverable [`Error::FrameTooLarge`], after which the rest of that writer's stream is
//! discarded (it cannot be resynchronised) until every writer has closed.
//!
//! The sender opens an existing FIFO (or creates it, kept, with `opts.create`), waiting for a
//! reader for at most `opts.connect_timeout`.

use std::path::Path;

use super::{Error, Message, MessageReceiver, MessageSender, Options};
use crate::fifo::{self, Fifo, FifoError};
use crate::pipe::{PipeError, PipeReader, PipeWriter};
use crate::wait::Wait;

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
                address: what(&path),
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
            other => Error::Io {
                context: "pipe".into(),
                source: std::io::Error::other(other),
            },
        }
    }
}

pub(crate) fn receiver(path: &Path, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error> {
    let fifo = Fifo::options().mode(opts.mode).create(path)?;
    let reader = fifo.open_reader()?.with_max_frame_len(opts.max_frame_len);
    Ok(Box::new(FifoReceiver {
        fifo,
        reader,
        max: opts.max_frame_len,
        discarding: false,
    }))
}

pub(crate) fn sender(path: &Path, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
    if opts.create {
        // Created or found; a sender never removes the FIFO.
        let _kept = Fifo::options().mode(opts.mode).create(path)?.persist();
    }
    let writer = fifo::open_writer_wait(path, Wait::from_timeout(opts.connect_timeout))?
        .with_max_frame_len(opts.max_frame_len);
    Ok(Box::new(FifoSender { writer }))
}

/// Receives from a FIFO, one writer after another.
#[derive(Debug)]
struct FifoReceiver {
    fifo: Fifo,
    reader: PipeReader,
    max: usize,
    /// After an oversize frame: drop bytes until every writer has closed.
    discarding: bool,
}

impl FifoReceiver {
    /// Opens a fresh read end (before closing the old one, so the FIFO's buffer is never
    /// without a reader) to wait for the next writer.
    fn reopen(&mut self) -> Result<(), Error> {
        let fresh = self.fifo.open_reader()?.with_max_frame_len(self.max);
        self.reader = fresh;
        Ok(())
    }

    /// Discards bytes until every writer closed, as `wait` allows.
    fn discard(&mut self, wait: Wait) -> Result<(), Error> {
        let mut buf = [0u8; 4096];
        loop {
            match self.reader.read_wait(&mut buf, wait) {
                Ok(0) => {
                    self.discarding = false;
                    return self.reopen();
                }
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl MessageReceiver for FifoReceiver {
    fn recv_wait(&mut self, wait: Wait) -> Result<Message, Error> {
        loop {
            if self.discarding {
                self.discard(wait)?;
            }
            match self.reader.recv_wait(wait) {
                Ok(data) => return Ok(Message::new(data)),
                Err(PipeError::PeerGone { .. }) => self.reopen()?,
                Err(e @ PipeError::TruncatedFrame { .. }) => {
                    self.reopen()?;
                    return Err(e.into());
                }
                Err(e @ PipeError::FrameTooLarge { .. }) => {
                    self.discarding = true;
                    return Err(e.into());
                }
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
