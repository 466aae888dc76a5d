//! [`AsyncFramed`]: the tokio twin of [`FramedStream`](super::FramedStream), over any tokio
//! byte stream.

use std::fmt;
use std::marker::PhantomData;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{DEFAULT_MAX_FRAME_LEN, FrameDecoder, FramedError, encode_frame};

/// Framed messages over any tokio byte stream (Unix stream, TCP, pipe): the same 4-byte
/// big-endian length prefix as [`crate::framing`], so sync and async peers interoperate. `E` is
/// the error the methods return ([`FramedError`]).
pub struct AsyncFramed<S, E = std::io::Error> {
    io: S,
    decoder: FrameDecoder,
    error: PhantomData<fn() -> E>,
}

impl<S: fmt::Debug, E> fmt::Debug for AsyncFramed<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncFramed")
            .field("io", &self.io)
            .field("decoder", &self.decoder)
            .finish()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin, E: FramedError> AsyncFramed<S, E> {
    /// Frames `io` with the default maximum frame length (16 MiB).
    pub fn new(io: S) -> AsyncFramed<S, E> {
        Self::with_max_frame_len(io, DEFAULT_MAX_FRAME_LEN)
    }

    /// Frames `io`, refusing frames above `max` bytes.
    pub fn with_max_frame_len(io: S, max: usize) -> AsyncFramed<S, E> {
        AsyncFramed {
            io,
            decoder: FrameDecoder::new(max),
            error: PhantomData,
        }
    }

    /// Sends one frame.
    pub async fn send_frame(&mut self, msg: &[u8]) -> Result<(), E> {
        let frame = encode_frame(msg, self.decoder.max_frame_len())?;
        self.io
            .write_all(&frame)
            .await
            .map_err(|source| E::io("sending", source))
    }

    /// Receives one frame: `None` at a clean end of stream; a stream ending inside a frame is
    /// a truncated-frame error ([`FrameError::Truncated`](super::FrameError::Truncated)).
    pub async fn recv_frame(&mut self) -> Result<Option<Vec<u8>>, E> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Some(f) = self.decoder.next_frame()? {
                return Ok(Some(f));
            }
            match self.io.read(&mut buf).await {
                Ok(0) => {
                    self.decoder.finish()?;
                    return Ok(None);
                }
                Ok(n) => self.decoder.extend(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    self.decoder.finish()?;
                    return Ok(None);
                }
                Err(source) => return Err(E::io("receiving", source)),
            }
        }
    }

    /// The stream underneath.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// Unwraps the stream (bytes already buffered by the decoder are lost).
    pub fn into_inner(self) -> S {
        self.io
    }
}
