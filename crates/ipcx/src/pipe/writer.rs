//! [`PipeWriter`]: the write end of a pipe or FIFO, and its [`LargeFrames`] policy.

use std::fmt;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

#[cfg(feature = "tokio")]
use super::AsyncPipeWriter;
use super::child::take_inherited;
use super::chunk::{self, MessageNumbers};
use super::{MAX_ATOMIC_MESSAGE, PIPE_BUF, PipeError, end_common};
use crate::framing::{self, DEFAULT_MAX_FRAME_LEN};
use crate::sys;
use crate::sys::poll::poll_wait;
use crate::wait::Wait;

/// How a writer sends messages whose frame is larger than [`PIPE_BUF`]; see the
/// [module documentation](super).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LargeFrames {
    /// Refuse them with [`PipeError::NotAtomic`] (default for anonymous pipes).
    #[default]
    Refuse,
    /// Cut them into atomic chunks ([`chunk`]) that the reader reassembles per writer: safe
    /// with any number of writers, any of which may crash (default for FIFO writers opened by
    /// path). The reader must be an ipcx reader or speak the chunk format.
    Chunk,
    /// One plain frame in several writes. Only correct with a single writer; any reader of the
    /// plain framing reads it.
    SingleWriter,
}

/// How one message goes out.
pub(super) enum Plan {
    /// As one plain frame (encoded here): at most [`PIPE_BUF`] bytes, or a single writer.
    Frame(Vec<u8>),
    /// As chunks ([`chunk`]).
    Chunked,
}

/// Decides how `msg` goes out from a writer with maximum `max` and policy `large`, or refuses
/// it: [`PipeError::TooLarge`] above the maximum, [`PipeError::NotAtomic`] for a frame above
/// [`PIPE_BUF`] under [`LargeFrames::Refuse`].
pub(super) fn plan(
    msg: &[u8],
    max: usize,
    large: LargeFrames,
    what: &str,
) -> Result<Plan, PipeError> {
    // Lengths with the top bit mark chunks: a plain frame stays below.
    let max = max.min(chunk::MAX_PLAIN_LEN);
    let too_large = || PipeError::TooLarge {
        len: msg.len(),
        max,
        what: what.to_owned(),
    };
    if msg.len() > max {
        return Err(too_large());
    }
    if framing::HEADER_LEN + msg.len() > PIPE_BUF {
        match large {
            LargeFrames::Chunk => return Ok(Plan::Chunked),
            LargeFrames::SingleWriter => {}
            _ => {
                return Err(PipeError::NotAtomic {
                    len: msg.len(),
                    max: MAX_ATOMIC_MESSAGE,
                    pipe_buf: PIPE_BUF,
                    what: what.to_owned(),
                });
            }
        }
    }
    let frame = framing::encode_frame(msg, max).map_err(|_| too_large())?;
    Ok(Plan::Frame(frame))
}

/// The write end of a pipe or FIFO: raw bytes ([`Write`]) or framed messages
/// ([`send`](Self::send)).
pub struct PipeWriter {
    fd: OwnedFd,
    max: usize,
    large: LargeFrames,
    torn: Option<(usize, usize)>,
    what: String,
    /// Chunked messages: this handle's identity and the next message's sequence number.
    numbers: MessageNumbers,
}

impl fmt::Debug for PipeWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeWriter")
            .field("fd", &self.fd.as_raw_fd())
            .field("what", &self.what)
            .field("large_frames", &self.large)
            .finish()
    }
}

impl PipeWriter {
    pub(crate) fn wrap(fd: OwnedFd, what: String) -> PipeWriter {
        PipeWriter {
            fd,
            max: DEFAULT_MAX_FRAME_LEN,
            large: LargeFrames::Refuse,
            torn: None,
            what,
            numbers: MessageNumbers::default(),
        }
    }

    /// Takes a pipe end this process inherited as descriptor `fd` (see [`pass_to_child`](super::pass_to_child)).
    /// Like [`PipeReader::from_inherited`](super::PipeReader::from_inherited), `fd` itself stays open.
    pub fn from_inherited(fd: RawFd) -> io::Result<PipeWriter> {
        let owned = take_inherited(fd)?;
        Ok(PipeWriter::wrap(owned, format!("inherited pipe fd {fd}")))
    }

    /// A second handle to the same write end (`dup`), with the same settings: for handing
    /// the end to several children ([`pass_to_child`](super::pass_to_child)). The copy is a writer of its own for
    /// chunked messages ([`LargeFrames::Chunk`]).
    pub fn try_clone(&self) -> io::Result<PipeWriter> {
        Ok(PipeWriter {
            fd: sys::pipe::dup(&self.fd)?,
            max: self.max,
            large: self.large,
            torn: self.torn,
            what: self.what.clone(),
            numbers: MessageNumbers::default(),
        })
    }

    /// The longest message [`send`](Self::send) accepts (default [`DEFAULT_MAX_FRAME_LEN`]).
    pub fn max_frame_len(&self) -> usize {
        self.max
    }

    /// Sets the longest message accepted.
    pub fn set_max_frame_len(&mut self, max: usize) {
        self.max = max;
    }

    /// Builder form of [`set_max_frame_len`](Self::set_max_frame_len).
    pub fn with_max_frame_len(mut self, max: usize) -> PipeWriter {
        self.max = max;
        self
    }

    /// How frames above [`PIPE_BUF`] are sent.
    pub fn large_frames(&self) -> LargeFrames {
        self.large
    }

    /// Sets how frames above [`PIPE_BUF`] are sent (see the [module documentation](super)).
    pub fn set_large_frames(&mut self, policy: LargeFrames) {
        self.large = policy;
    }

    /// Builder form of [`set_large_frames`](Self::set_large_frames).
    pub fn with_large_frames(mut self, policy: LargeFrames) -> PipeWriter {
        self.large = policy;
        self
    }

    /// Sends one message, blocking while the pipe is full.
    ///
    /// # Errors
    /// [`PipeError::PeerGone`] when no reader is left, [`PipeError::TooLarge`],
    /// [`PipeError::NotAtomic`] (see [`LargeFrames`]).
    pub fn send(&mut self, msg: &[u8]) -> Result<(), PipeError> {
        self.send_wait(msg, Wait::Forever)
    }

    /// Sends one message if the pipe has room for it now: [`PipeError::Full`] otherwise.
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), PipeError> {
        self.send_wait(msg, Wait::NoWait)
    }

    /// Sends one message, giving up with [`PipeError::Timeout`] after `timeout`.
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), PipeError> {
        self.send_wait(msg, Wait::timeout(timeout))
    }

    /// Sends one message, waiting as `wait` allows. A frame of up to [`PIPE_BUF`] bytes is
    /// written in one `write(2)`: all of it or nothing. A larger one follows the
    /// [`LargeFrames`] policy.
    pub fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), PipeError> {
        if let Some((written, len)) = self.torn {
            return Err(PipeError::Torn {
                written,
                len,
                what: self.what.clone(),
            });
        }
        match plan(msg, self.max, self.large, &self.what)? {
            Plan::Chunked => self.send_chunked(msg, wait),
            Plan::Frame(frame) => self.write_frame(&frame, wait),
        }
    }

    /// Sends a large message as atomic chunks ([`chunk`]). Once the first chunk is out, the
    /// rest follows as long as the reader makes room; a reader that stalls makes the send fail
    /// with the message incomplete, which the reader drops when this writer's next message
    /// starts.
    fn send_chunked(&mut self, msg: &[u8], wait: Wait) -> Result<(), PipeError> {
        let (writer, seq) = self.numbers.next_message();
        let mut started = false;
        chunk::for_each_chunk(writer, seq, msg, |c| {
            let w = if started {
                wait.for_frame_remainder()
            } else {
                wait
            };
            let res = self.write_frame(c, w);
            started = true;
            res
        })
    }

    /// Writes a whole frame or chunk; one of up to [`PIPE_BUF`] bytes in a single write call.
    fn write_frame(&mut self, frame: &[u8], wait: Wait) -> Result<(), PipeError> {
        let mut written = 0;
        while written < frame.len() {
            match sys::pipe::write(&self.fd, &frame[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // A started frame is finished (see `wait::FRAME_STALL_LIMIT`).
                    let w = if written == 0 {
                        wait
                    } else {
                        wait.for_frame_remainder()
                    };
                    let ev = poll_wait(self.fd.as_fd(), false, w)
                        .map_err(|e| PipeError::io(format!("polling {}", self.what), e))?;
                    if ev.is_none() {
                        if written > 0 {
                            self.torn = Some((written, frame.len()));
                            return Err(PipeError::Torn {
                                written,
                                len: frame.len(),
                                what: self.what.clone(),
                            });
                        }
                        return Err(if wait == Wait::NoWait {
                            PipeError::Full {
                                what: self.what.clone(),
                            }
                        } else {
                            PipeError::Timeout {
                                what: self.what.clone(),
                            }
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    return Err(PipeError::PeerGone {
                        what: self.what.clone(),
                        detail: "no reader is left (EPIPE)",
                    });
                }
                Err(e) => return Err(PipeError::io(format!("writing {}", self.what), e)),
            }
        }
        Ok(())
    }

    /// Writes raw bytes, waiting as `wait` allows; returns how many were written (at least
    /// one).
    pub fn write_wait(&mut self, buf: &[u8], wait: Wait) -> Result<usize, PipeError> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match sys::pipe::write(&self.fd, buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let ev = poll_wait(self.fd.as_fd(), false, wait)
                        .map_err(|e| PipeError::io(format!("polling {}", self.what), e))?;
                    if ev.is_none() {
                        let what = self.what.clone();
                        return Err(if wait == Wait::NoWait {
                            PipeError::Full { what }
                        } else {
                            PipeError::Timeout { what }
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    return Err(PipeError::PeerGone {
                        what: self.what.clone(),
                        detail: "no reader is left (EPIPE)",
                    });
                }
                Err(e) => return Err(PipeError::io(format!("writing {}", self.what), e)),
            }
        }
    }

    /// An async writer (feature `tokio`; needs a tokio runtime with I/O enabled), with this
    /// writer's [`LargeFrames`] policy.
    #[cfg(feature = "tokio")]
    pub fn into_async(self) -> io::Result<AsyncPipeWriter> {
        let inner = tokio::net::unix::pipe::Sender::from_owned_fd(self.fd)?;
        Ok(AsyncPipeWriter {
            inner,
            max: self.max,
            large: self.large,
            what: self.what,
            numbers: self.numbers,
        })
    }
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_wait(buf, Wait::Forever).map_err(io::Error::from)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

end_common!(PipeWriter);
