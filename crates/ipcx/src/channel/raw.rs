//! Raw byte access to the byte-stream endpoints (fifo, unix stream, tcp): bytes copied verbatim,
//! no framing. This is what `ipcx send --raw` / `ipcx recv --raw` use to talk to programs that do
//! not frame (socat, `cat > fifo`, a line-based TCP service).
//!
//! The transports open them ([`super::Transport::raw_writer`],
//! [`super::Transport::raw_reader`]); a listening transport's reader is one `StreamRaw` over
//! its listener ([`super::transport::StreamListener`]).

use super::Error;
use crate::wait::Wait;

/// A source of raw bytes from every writer or connection of an endpoint, one after another.
pub trait RawReader: Send + std::fmt::Debug {
    /// Reads some bytes, waiting as `wait` allows ([`Error::Timeout`] / [`Error::WouldBlock`]).
    /// A writer or connection that ends is not an error: the reader waits for the next one.
    fn read_wait(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize, Error>;
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
