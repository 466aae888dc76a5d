//! [`FramedStream`]: framed messages over a stream socket (Unix stream, TCP), with the
//! blocking, non-blocking and timeout forms. The socket types ([`crate::socket::UnixStream`],
//! [`crate::socket::TcpStream`]) hold one and hand its methods on.

use std::fmt;
use std::io::{self, Read};
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd};

use super::{DEFAULT_MAX_FRAME_LEN, FrameDecoder, FrameError, encode_frame};
use crate::sys::poll::{WaitError, poll_until, retry_ready};
use crate::sys::socket::{recv_bytes, send_bytes, shutdown_write};
use crate::wait::{FRAME_STALL_LIMIT, Wait};

/// The error a framed stream reports, made from what went wrong: the framing code reports in
/// the vocabulary of the stream type that holds it (the socket types use
/// [`SocketError`](crate::socket::SocketError); [`io::Error`] works for any stream).
pub trait FramedError: From<FrameError> {
    /// `Wait::NoWait` and the stream was not ready (nothing of the frame was sent).
    fn would_block() -> Self;
    /// The deadline passed before the frame could start (send) or arrive (receive).
    fn timeout() -> Self;
    /// The peer closed the connection, or stopped reading in the middle of a frame.
    fn peer_gone(what: String) -> Self;
    /// Any other OS failure while `context` (`sending`, `receiving`).
    fn io(context: &'static str, source: io::Error) -> Self;
}

impl FramedError for io::Error {
    fn would_block() -> io::Error {
        io::ErrorKind::WouldBlock.into()
    }
    fn timeout() -> io::Error {
        io::ErrorKind::TimedOut.into()
    }
    fn peer_gone(what: String) -> io::Error {
        io::Error::new(io::ErrorKind::BrokenPipe, what)
    }
    fn io(_: &'static str, source: io::Error) -> io::Error {
        source
    }
}

impl From<FrameError> for io::Error {
    fn from(e: FrameError) -> io::Error {
        match e {
            FrameError::Io(e) => e,
            e @ FrameError::Truncated { .. } => io::Error::new(io::ErrorKind::UnexpectedEof, e),
            e => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }
}

/// Framed messages (4-byte big-endian length, then the bytes: see [`crate::framing`]) over a
/// stream socket `F`, sent and received with `MSG_DONTWAIT`, so the socket itself may stay in
/// blocking mode for [`Read`]/[`Write`](std::io::Write) users. `E` is the error the methods
/// return ([`FramedError`]).
///
/// Sends are all or nothing at the start: a call that cannot start its frame before `wait`
/// runs out returns `WouldBlock`/`Timeout` with nothing sent. Once a frame has started it is
/// finished, whatever the deadline, as long as the peer keeps reading; a peer that stops
/// reading for [`FRAME_STALL_LIMIT`] in the middle of a frame gets the write side shut down
/// (it then reads a truncated frame, not garbage) and the send fails with `PeerGone`.
///
/// Receives buffer what has arrived ([`FrameDecoder`]: memory follows the bytes received,
/// never a claimed length); a frame partly received when the wait runs out is kept for the
/// next call. `Ok(None)` is a clean end of stream between frames; a stream that ends inside a
/// frame is [`FrameError::Truncated`].
pub struct FramedStream<F, E = io::Error> {
    io: F,
    decoder: FrameDecoder,
    error: PhantomData<fn() -> E>,
}

impl<F: fmt::Debug, E> fmt::Debug for FramedStream<F, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FramedStream")
            .field("io", &self.io)
            .field("decoder", &self.decoder)
            .finish()
    }
}

impl<F: AsFd, E: FramedError> FramedStream<F, E> {
    /// Frames `io` with the default maximum frame length ([`DEFAULT_MAX_FRAME_LEN`], 16 MiB).
    pub fn new(io: F) -> FramedStream<F, E> {
        Self::with_max_frame_len(io, DEFAULT_MAX_FRAME_LEN)
    }

    /// Frames `io`, refusing frames above `max` bytes both ways.
    pub fn with_max_frame_len(io: F, max: usize) -> FramedStream<F, E> {
        FramedStream {
            io,
            decoder: FrameDecoder::new(max),
            error: PhantomData,
        }
    }

    /// The longest frame sent or accepted.
    pub fn max_frame_len(&self) -> usize {
        self.decoder.max_frame_len()
    }

    /// Sets the longest frame sent or accepted; bytes already received are kept.
    pub fn set_max_frame_len(&mut self, max: usize) {
        self.decoder.set_max_frame_len(max);
    }

    /// Sends one frame, waiting as `wait` allows (see the type's documentation for frames
    /// that have started).
    pub fn send_frame_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), E> {
        let frame = encode_frame(msg, self.decoder.max_frame_len())?;
        send_all(self.io.as_fd(), &frame, wait)
    }

    /// Receives one frame, waiting as `wait` allows: `None` when the peer closed cleanly
    /// between frames.
    pub fn recv_frame_wait(&mut self, wait: Wait) -> Result<Option<Vec<u8>>, E> {
        recv_frame(self.io.as_fd(), &mut self.decoder, wait)
    }

    /// Whether a whole frame has been read already and waits in the buffer (the stream then
    /// need not be readable for a receive to succeed).
    pub fn has_buffered_frame(&self) -> bool {
        self.decoder.has_frame()
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &F {
        &self.io
    }

    /// The stream underneath. Reading from it directly bypasses the frames buffered here.
    pub fn get_mut(&mut self) -> &mut F {
        &mut self.io
    }

    /// Unwraps the stream (bytes already buffered by the decoder are lost).
    pub fn into_inner(self) -> F {
        self.io
    }
}

/// What a failed send (or the wait before it) means.
fn send_failed<E: FramedError>(e: WaitError) -> E {
    match e {
        WaitError::WouldBlock => E::would_block(),
        WaitError::Timeout => E::timeout(),
        WaitError::Io(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN)
            ) =>
        {
            E::peer_gone(format!("the peer closed the connection ({e})"))
        }
        WaitError::Io(source) => E::io("sending", source),
    }
}

/// Sends all of an encoded `frame` on the stream socket `fd`; a frame that has started is
/// finished (see [`FramedStream`]).
pub(crate) fn send_all<E: FramedError>(
    fd: BorrowedFd<'_>,
    frame: &[u8],
    wait: Wait,
) -> Result<(), E> {
    let mut sent = 0;
    while sent < frame.len() {
        // A started frame is finished (see `wait::FRAME_STALL_LIMIT`).
        let w = if sent == 0 {
            wait
        } else {
            wait.for_frame_remainder()
        };
        match retry_ready(fd, false, w, || send_bytes(fd, &frame[sent..], true)) {
            Ok(n) => sent += n,
            Err(WaitError::WouldBlock | WaitError::Timeout) if sent > 0 => {
                // The reader stopped reading in the middle of a frame: the stream is torn.
                // Close our side so that the reader sees a truncated frame, not garbage.
                let _ = shutdown_write(fd);
                return Err(E::peer_gone(format!(
                    "the peer stopped reading in the middle of a {}-byte frame ({} bytes sent) for {:?}; the connection is closed",
                    frame.len(),
                    sent,
                    FRAME_STALL_LIMIT
                )));
            }
            Err(e) => return Err(send_failed(e)),
        }
    }
    Ok(())
}

/// Receives one frame through `decoder`.
fn recv_frame<E: FramedError>(
    fd: BorrowedFd<'_>,
    decoder: &mut FrameDecoder,
    wait: Wait,
) -> Result<Option<Vec<u8>>, E> {
    struct Src<'a>(BorrowedFd<'a>);
    impl Read for Src<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            recv_bytes(self.0, buf, true)
        }
    }
    loop {
        if let Some(f) = decoder.next_frame()? {
            return Ok(Some(f));
        }
        match decoder.read_from(&mut Src(fd)) {
            Ok(0) => {
                decoder.finish()?;
                return Ok(None);
            }
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                poll_until(fd, true, wait).map_err(|e| match e {
                    WaitError::WouldBlock => E::would_block(),
                    WaitError::Timeout => E::timeout(),
                    WaitError::Io(source) => E::io("receiving", source),
                })?;
            }
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => {
                decoder.finish()?;
                return Ok(None);
            }
            Err(source) => return Err(E::io("receiving", source)),
        }
    }
}

/// Gives a stream type that holds a [`FramedStream`] in field `$field` the framed-message
/// methods (`send_frame`, `try_send_frame`, `send_frame_timeout`, `send_frame_wait`, the same
/// for `recv_frame`, and the maximum frame length), handing each on to the field.
macro_rules! framed_methods {
    ($t:ty, $field:ident, $err:ty) => {
        impl $t {
            /// The longest frame [`send_frame`](Self::send_frame) sends and
            /// [`recv_frame`](Self::recv_frame) accepts (default 16 MiB).
            pub fn max_frame_len(&self) -> usize {
                self.$field.max_frame_len()
            }

            /// Sets the longest frame [`recv_frame`](Self::recv_frame) accepts and
            /// [`send_frame`](Self::send_frame) sends (default 16 MiB).
            pub fn set_max_frame_len(&mut self, max: usize) {
                self.$field.set_max_frame_len(max);
            }

            /// Sends one framed message, blocking.
            pub fn send_frame(&mut self, msg: &[u8]) -> Result<(), $err> {
                self.send_frame_wait(msg, $crate::wait::Wait::Forever)
            }

            /// Sends one framed message without blocking.
            pub fn try_send_frame(&mut self, msg: &[u8]) -> Result<(), $err> {
                self.send_frame_wait(msg, $crate::wait::Wait::NoWait)
            }

            /// Sends one framed message, giving up after `timeout`.
            pub fn send_frame_timeout(
                &mut self,
                msg: &[u8],
                timeout: std::time::Duration,
            ) -> Result<(), $err> {
                self.send_frame_wait(msg, $crate::wait::Wait::timeout(timeout))
            }

            /// Sends one framed message, waiting as `wait` allows.
            ///
            /// A call that could not start its frame returns `WouldBlock` or `Timeout` and
            /// nothing of it was sent. A frame that has started is finished as long as the
            /// peer keeps reading; a peer that stops reading in the middle of it for
            /// [`FRAME_STALL_LIMIT`](crate::wait::FRAME_STALL_LIMIT) gets this side's writes
            /// shut down, and the call returns `PeerGone`.
            pub fn send_frame_wait(
                &mut self,
                msg: &[u8],
                wait: $crate::wait::Wait,
            ) -> Result<(), $err> {
                self.$field.send_frame_wait(msg, wait)
            }

            /// Receives one framed message, blocking: `None` when the peer closed cleanly
            /// between frames; a stream ending inside a frame is a truncated-frame error.
            pub fn recv_frame(&mut self) -> Result<Option<Vec<u8>>, $err> {
                self.recv_frame_wait($crate::wait::Wait::Forever)
            }

            /// Receives a framed message if a whole one has arrived.
            pub fn try_recv_frame(&mut self) -> Result<Option<Vec<u8>>, $err> {
                self.recv_frame_wait($crate::wait::Wait::NoWait)
            }

            /// Receives a framed message, giving up after `timeout`.
            pub fn recv_frame_timeout(
                &mut self,
                timeout: std::time::Duration,
            ) -> Result<Option<Vec<u8>>, $err> {
                self.recv_frame_wait($crate::wait::Wait::timeout(timeout))
            }

            /// Receives a framed message, waiting as `wait` allows. A frame partly received
            /// when the wait runs out is kept for the next call.
            pub fn recv_frame_wait(
                &mut self,
                wait: $crate::wait::Wait,
            ) -> Result<Option<Vec<u8>>, $err> {
                self.$field.recv_frame_wait(wait)
            }

            /// Whether a whole frame has been read already and waits in this stream's own
            /// buffer (the socket then need not be readable for a receive to succeed).
            pub fn has_buffered_frame(&self) -> bool {
                self.$field.has_buffered_frame()
            }
        }
    };
}

pub(crate) use framed_methods;

#[cfg(test)]
mod tests {
    use std::io::{self, Write};
    use std::os::unix::net::UnixStream;

    use super::FramedStream;
    use crate::wait::Wait;

    #[test]
    fn frames_cross_a_socket_pair_with_io_errors() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut a: FramedStream<UnixStream> = FramedStream::new(a);
        let mut b: FramedStream<UnixStream> = FramedStream::with_max_frame_len(b, 8);
        a.send_frame_wait(b"hello", Wait::Forever).unwrap();
        assert_eq!(b.recv_frame_wait(Wait::Forever).unwrap().unwrap(), b"hello");
        let e = b.recv_frame_wait(Wait::NoWait).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(
            b.send_frame_wait(b"too long!", Wait::NoWait)
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidData
        );
        // A stream that ends inside a frame is a truncated frame, not a clean end.
        a.get_mut().write_all(&[0, 0, 0, 5, b'h']).unwrap();
        drop(a);
        let e = b.recv_frame_wait(Wait::Forever).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
