//! The async (tokio) ends of a pipe or FIFO: [`AsyncPipeReader`], [`AsyncPipeWriter`].

use std::io;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::unix::pipe;

use super::chunk::{self, MessageNumbers};
use super::error::reassembly_error;
use super::reassembly::Reassembler;
use super::writer::{Plan, plan};
use super::{FdRead, LargeFrames, PipeError};

/// The async read end of a pipe or FIFO (feature `tokio`): [`AsyncRead`] for raw bytes,
/// [`recv`](Self::recv) for framed messages.
///
/// On a FIFO that has not had a writer yet, [`recv`](Self::recv) waits for one (as the
/// blocking reader does); [`AsyncRead`] reports end of stream instead.
#[derive(Debug)]
pub struct AsyncPipeReader {
    pub(super) inner: pipe::Receiver,
    pub(super) dec: Reassembler,
    pub(super) what: String,
}

impl AsyncPipeReader {
    /// Receives one message. Cancel-safe: a partly received frame stays buffered.
    ///
    /// # Errors
    /// As [`super::PipeReader::recv`].
    pub async fn recv(&mut self) -> Result<Vec<u8>, PipeError> {
        loop {
            match self.dec.next() {
                Some(Ok(m)) => return Ok(m),
                Some(Err(e)) => return Err(reassembly_error(&self.what, e)),
                None => {}
            }
            self.inner.readable().await.map_err(|e| PipeError::Io {
                context: format!("waiting on {}", self.what),
                source: e,
            })?;
            let fd = self.inner.as_fd();
            let dec = &mut self.dec;
            let res = self.inner.try_io(|| match dec.read_from(&mut FdRead(fd)) {
                Ok(0) => {
                    // No writer now. A hang-up is the end of the stream; no hang-up means
                    // a FIFO that has not had a writer yet: wait for one (WouldBlock
                    // clears tokio's readiness).
                    let ev = crate::sys::poll::poll(fd, true, false, 0)?;
                    if ev.ready() {
                        Err(io::ErrorKind::Interrupted.into())
                    } else if ev.hup || ev.err {
                        Ok(0)
                    } else {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                }
                other => other,
            });
            match res {
                Ok(0) => {
                    self.dec.end_of_stream();
                    if let Some(item) = self.dec.next() {
                        return item.map_err(|e| reassembly_error(&self.what, e));
                    }
                    return Err(PipeError::PeerGone {
                        what: self.what.clone(),
                        detail: "every writer closed the pipe (end of stream)",
                    });
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    return Err(PipeError::Io {
                        context: format!("reading {}", self.what),
                        source: e,
                    });
                }
            }
        }
    }

    /// The tokio pipe receiver underneath.
    pub fn get_ref(&self) -> &pipe::Receiver {
        &self.inner
    }
}

impl AsyncRead for AsyncPipeReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

/// The async write end of a pipe or FIFO (feature `tokio`): [`AsyncWrite`] for raw bytes,
/// [`send`](Self::send) for framed messages.
#[derive(Debug)]
pub struct AsyncPipeWriter {
    pub(super) inner: pipe::Sender,
    pub(super) max: usize,
    pub(super) large: LargeFrames,
    pub(super) what: String,
    pub(super) numbers: MessageNumbers,
}

impl AsyncPipeWriter {
    /// Sends one message. A frame of up to [`PIPE_BUF`](super::PIPE_BUF) bytes goes out in one write; a
    /// larger one follows the writer's [`LargeFrames`] policy.
    ///
    /// Not cancel-safe for messages above `PIPE_BUF`: dropping the future mid-message
    /// leaves it incomplete (chunked: the reader drops it when this writer's next message
    /// starts; single-writer: the stream is left inside a frame).
    pub async fn send(&mut self, msg: &[u8]) -> Result<(), PipeError> {
        match plan(msg, self.max, self.large, &self.what)? {
            Plan::Chunked => self.send_chunked(msg).await,
            Plan::Frame(frame) => self.write_all(&frame).await,
        }
    }

    /// Sends a large message as atomic chunks (see [`super::PipeWriter`]).
    async fn send_chunked(&mut self, msg: &[u8]) -> Result<(), PipeError> {
        let (writer, seq) = self.numbers.next_message();
        let mut chunks = Vec::new();
        chunk::for_each_chunk::<()>(writer, seq, msg, |c| {
            chunks.push(c.to_vec());
            Ok(())
        })
        .expect("collecting chunks does not fail");
        for c in &chunks {
            self.write_all(c).await?;
        }
        Ok(())
    }

    /// Writes all of `frame`; one of up to `PIPE_BUF` bytes in a single write.
    async fn write_all(&mut self, frame: &[u8]) -> Result<(), PipeError> {
        let mut written = 0;
        while written < frame.len() {
            self.inner.writable().await.map_err(|e| PipeError::Io {
                context: format!("waiting on {}", self.what),
                source: e,
            })?;
            match self.inner.try_write(&frame[written..]) {
                Ok(n) => written += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    return Err(PipeError::PeerGone {
                        what: self.what.clone(),
                        detail: "no reader is left (EPIPE)",
                    });
                }
                Err(e) => {
                    return Err(PipeError::Io {
                        context: format!("writing {}", self.what),
                        source: e,
                    });
                }
            }
        }
        Ok(())
    }

    /// The tokio pipe sender underneath.
    pub fn get_ref(&self) -> &pipe::Sender {
        &self.inner
    }
}

impl AsyncWrite for AsyncPipeWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
