//! [`PipeReader`]: the read end of a pipe or FIFO, with framed messages reassembled per
//! writer.

use std::fmt;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

#[cfg(feature = "tokio")]
use super::AsyncPipeReader;
use super::child::take_inherited;
use super::chunk::WriterId;
use super::error::reassembly_error;
use super::reassembly::{self, Reassembler, ReassemblyError};
use super::{DEFAULT_MAX_BUFFERED, FdRead, PipeError, end_common};
use crate::framing::DEFAULT_MAX_FRAME_LEN;
use crate::sys;
use crate::sys::poll::poll_wait;
use crate::wait::Wait;

/// Linux's default pipe capacity: a read that returns less has emptied the pipe.
const PIPE_DEFAULT_CAPACITY: usize = 64 * 1024;

/// How often, at most, a reader looks whether the writers of its incomplete messages are gone.
const GONE_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// How many writers one such look covers at most.
const GONE_CHECK_LIMIT: usize = 256;

/// The read end of a pipe or FIFO: raw bytes ([`Read`]) or framed messages ([`recv`](Self::recv)).
///
/// Do not mix raw reads and framed receives on one reader: bytes the frame decoder has
/// buffered are not visible to [`Read`].
pub struct PipeReader {
    fd: OwnedFd,
    dec: Reassembler,
    what: String,
    /// When the writers of incomplete messages were last looked at.
    gone_checked: Option<std::time::Instant>,
    /// Writers found gone with a message incomplete: dropped once the pipe has been emptied
    /// after they were found gone (their last chunks may still be in it until then).
    gone: Vec<WriterId>,
    /// The last read drained the pipe: wait with `poll` before reading again, instead of a
    /// read that would only say `EAGAIN` (a message exchange then costs poll + read, as with a
    /// blocking descriptor, not read + poll + read).
    drained: bool,
}

impl fmt::Debug for PipeReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeReader")
            .field("fd", &self.fd.as_raw_fd())
            .field("what", &self.what)
            .field("buffered", &self.dec.buffered())
            .finish()
    }
}

impl PipeReader {
    pub(crate) fn wrap(fd: OwnedFd, what: String) -> PipeReader {
        PipeReader {
            fd,
            dec: Reassembler::new(DEFAULT_MAX_FRAME_LEN, DEFAULT_MAX_BUFFERED),
            what,
            gone_checked: None,
            gone: Vec::new(),
            drained: false,
        }
    }

    /// Takes a pipe end this process inherited as descriptor `fd` (see [`pass_to_child`](super::pass_to_child)).
    ///
    /// The descriptor is duplicated (close-on-exec) and checked to be a pipe or FIFO; `fd`
    /// itself stays open, untouched (closing a descriptor number the program might own
    /// elsewhere would not be safe).
    pub fn from_inherited(fd: RawFd) -> io::Result<PipeReader> {
        let owned = take_inherited(fd)?;
        Ok(PipeReader::wrap(owned, format!("inherited pipe fd {fd}")))
    }

    /// A second handle to the same read end (`dup`), with its own frame buffer.
    pub fn try_clone(&self) -> io::Result<PipeReader> {
        Ok(
            PipeReader::wrap(sys::pipe::dup(&self.fd)?, self.what.clone())
                .with_max_frame_len(self.max_frame_len())
                .with_max_buffered(self.max_buffered()),
        )
    }

    /// The longest frame [`recv`](Self::recv) accepts (default
    /// [`DEFAULT_MAX_FRAME_LEN`], 16 MiB).
    pub fn max_frame_len(&self) -> usize {
        self.dec.max_frame_len()
    }

    /// Sets the longest frame accepted; a longer one is [`PipeError::FrameTooLarge`], raised
    /// before allocating. Bytes already received are kept.
    pub fn set_max_frame_len(&mut self, max: usize) {
        self.dec.set_max_frame_len(max);
    }

    /// Builder form of [`set_max_frame_len`](Self::set_max_frame_len).
    pub fn with_max_frame_len(mut self, max: usize) -> PipeReader {
        self.set_max_frame_len(max);
        self
    }

    /// The most bytes held for incomplete messages, all writers together (default
    /// [`DEFAULT_MAX_BUFFERED`], 64 MiB).
    pub fn max_buffered(&self) -> usize {
        self.dec.max_buffered()
    }

    /// Sets the cap on bytes held for incomplete messages: the message that would pass it is
    /// dropped with [`PipeError::Dropped`], and the reader goes on.
    pub fn set_max_buffered(&mut self, max: usize) {
        self.dec.set_max_buffered(max);
    }

    /// Builder form of [`set_max_buffered`](Self::set_max_buffered).
    pub fn with_max_buffered(mut self, max: usize) -> PipeReader {
        self.set_max_buffered(max);
        self
    }

    /// Bytes this reader holds now: incomplete messages and bytes not yet taken apart.
    pub fn buffered(&self) -> usize {
        self.dec.buffered()
    }

    /// Receives one message, blocking until one arrives.
    ///
    /// # Errors
    /// [`PipeError::PeerGone`] at the end of the stream (every writer closed). Recoverable
    /// (call again for the next message): [`PipeError::TruncatedFrame`] when the stream ended
    /// inside a frame or a writer left a chunked message incomplete, [`PipeError::Dropped`],
    /// [`PipeError::FrameTooLarge`] (after a plain frame above the maximum, the stream is out of
    /// step: its bytes are dropped until every writer has closed).
    pub fn recv(&mut self) -> Result<Vec<u8>, PipeError> {
        self.recv_wait(Wait::Forever)
    }

    /// Receives one message if a whole one is waiting: [`PipeError::WouldBlock`] otherwise.
    pub fn try_recv(&mut self) -> Result<Vec<u8>, PipeError> {
        self.recv_wait(Wait::NoWait)
    }

    /// Receives one message, giving up with [`PipeError::Timeout`] after `timeout`. A frame
    /// partly received when the time runs out is kept for the next call.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, PipeError> {
        self.recv_wait(Wait::timeout(timeout))
    }

    /// Receives one message, waiting as `wait` allows.
    ///
    /// On a FIFO that no writer has opened yet, this waits for a writer (Linux reports no
    /// hang-up on a read end that has never had a writer).
    pub fn recv_wait(&mut self, wait: Wait) -> Result<Vec<u8>, PipeError> {
        loop {
            match self.dec.next() {
                Some(Ok(msg)) => return Ok(msg),
                Some(Err(e)) => return Err(self.reassembly_error(e)),
                None => {}
            }
            let mut emptied = false;
            if !self.drained || wait == Wait::NoWait || self.gone_check_due() {
                let mut src = FdRead(self.fd.as_fd());
                // Ok(0): no writer right now; WouldBlock: writers but no data. Either way,
                // poll: a hang-up means the end of the stream, and a FIFO that never had a
                // writer reports nothing until one writes.
                match self.dec.read_from(&mut src) {
                    Ok(0) => {}
                    Ok(n) => {
                        // A short read emptied the pipe (its buffer is at least 64 KiB).
                        self.drained = n < PIPE_DEFAULT_CAPACITY;
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => emptied = true,
                    Err(e) => return Err(PipeError::io(format!("reading {}", self.what), e)),
                }
            }
            if emptied && self.drop_gone_writers() {
                continue;
            }
            match poll_wait(self.fd.as_fd(), true, wait)
                .map_err(|e| PipeError::io(format!("polling {}", self.what), e))?
            {
                Some(ev) if ev.ready() => {
                    self.drained = false;
                    continue;
                }
                // Hang-up: no writer is left. Bytes may have arrived between the empty read
                // and the hang-up: deliver their frames first.
                Some(_) => {
                    if self.drain() > 0 {
                        continue;
                    }
                    self.dec.end_of_stream();
                    if let Some(item) = self.dec.next() {
                        return item.map_err(|e| self.reassembly_error(e));
                    }
                    return Err(PipeError::PeerGone {
                        what: self.what.clone(),
                        detail: "every writer closed the pipe (end of stream)",
                    });
                }
                None => {
                    return Err(match wait {
                        Wait::NoWait => PipeError::WouldBlock {
                            what: self.what.clone(),
                        },
                        _ => PipeError::Timeout {
                            what: self.what.clone(),
                        },
                    });
                }
            }
        }
    }

    /// Reads whatever is left in the pipe into the decoder; returns the bytes read.
    fn drain(&mut self) -> usize {
        let mut src = FdRead(self.fd.as_fd());
        let mut total = 0;
        while let Ok(n) = self.dec.read_from(&mut src) {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    }

    /// Whether it is time to look for writers that are gone with a message incomplete.
    fn gone_check_due(&self) -> bool {
        self.dec.has_partial_messages()
            && self
                .gone_checked
                .is_none_or(|t| t.elapsed() >= GONE_CHECK_INTERVAL)
    }

    /// Called when a read found the pipe empty: drops the incomplete messages of the writers
    /// found gone before that read (everything they wrote has been read by now), then looks
    /// for more (at most every [`GONE_CHECK_INTERVAL`]), to be dropped after the next read
    /// that finds the pipe empty. Returns whether the loop should go round again rather than
    /// wait: there is something to report, or a read to make.
    fn drop_gone_writers(&mut self) -> bool {
        for w in std::mem::take(&mut self.gone) {
            self.dec.drop_writer(w, reassembly::Cause::WriterGone);
        }
        if self.dec.has_pending_output() {
            return true;
        }
        if !self.gone_check_due() {
            return false;
        }
        self.gone_checked = Some(std::time::Instant::now());
        self.gone = self.dec.gone_writers(GONE_CHECK_LIMIT);
        if self.gone.is_empty() {
            return false;
        }
        self.drained = false;
        true
    }

    /// The next message (or recoverable error) already in this reader's buffer, without
    /// reading from the pipe.
    pub(crate) fn take_buffered(&mut self) -> Option<Result<Vec<u8>, PipeError>> {
        self.dec
            .next()
            .map(|r| r.map_err(|e| self.reassembly_error(e)))
    }

    fn reassembly_error(&self, e: ReassemblyError) -> PipeError {
        reassembly_error(&self.what, e)
    }

    /// Reads raw bytes, waiting as `wait` allows. `Ok(0)` is the end of the stream.
    pub fn read_wait(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize, PipeError> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match sys::pipe::read(&self.fd, buf) {
                Ok(n) if n > 0 => return Ok(n),
                Ok(_) => {
                    // No writer now; on a FIFO that never had one, wait for one.
                    match poll_wait(self.fd.as_fd(), true, wait)
                        .map_err(|e| PipeError::io(format!("polling {}", self.what), e))?
                    {
                        Some(ev) if ev.ready() => continue,
                        Some(_) => return Ok(0),
                        None => return Err(self.timeout_error(wait, false)),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if poll_wait(self.fd.as_fd(), true, wait)
                        .map_err(|e| PipeError::io(format!("polling {}", self.what), e))?
                        .is_none()
                    {
                        return Err(self.timeout_error(wait, false));
                    }
                }
                Err(e) => return Err(PipeError::io(format!("reading {}", self.what), e)),
            }
        }
    }

    fn timeout_error(&self, wait: Wait, write: bool) -> PipeError {
        let what = self.what.clone();
        match (wait, write) {
            (Wait::NoWait, false) => PipeError::WouldBlock { what },
            (Wait::NoWait, true) => PipeError::Full { what },
            _ => PipeError::Timeout { what },
        }
    }

    /// An async reader (feature `tokio`; needs a tokio runtime with I/O enabled).
    #[cfg(feature = "tokio")]
    pub fn into_async(self) -> io::Result<AsyncPipeReader> {
        let dec = Reassembler::new(self.max_frame_len(), self.max_buffered());
        let what = self.what;
        let inner = tokio::net::unix::pipe::Receiver::from_owned_fd(self.fd)?;
        Ok(AsyncPipeReader { inner, dec, what })
    }
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_wait(buf, Wait::Forever).map_err(io::Error::from)
    }
}

end_common!(PipeReader);
