//! [`DuplexEnd`]: a two-way channel made of two pipes.

use std::io::{self, Read, Write};
use std::process::Stdio;

use super::{PipeError, PipeReader, PipeWriter, pipe};
use crate::wait::Wait;

/// One end of a two-way channel made of two pipes: reads what the other end writes and vice
/// versa. See [`duplex()`].
#[derive(Debug)]
pub struct DuplexEnd {
    /// The receiving half.
    pub reader: PipeReader,
    /// The sending half.
    pub writer: PipeWriter,
}

/// Creates a two-way channel from two pipes: whatever one end writes, the other reads.
///
/// ```
/// use std::io::{Read, Write};
/// # fn main() -> std::io::Result<()> {
/// let (mut a, mut b) = ipcx::pipe::duplex()?;
/// a.write_all(b"ping")?;
/// let mut buf = [0; 4];
/// b.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"ping");
/// b.send(b"pong").unwrap();
/// assert_eq!(a.recv().unwrap(), b"pong");
/// # Ok(()) }
/// ```
pub fn duplex() -> io::Result<(DuplexEnd, DuplexEnd)> {
    let (r1, w1) = pipe()?;
    let (r2, w2) = pipe()?;
    Ok((
        DuplexEnd {
            reader: r1,
            writer: w2,
        },
        DuplexEnd {
            reader: r2,
            writer: w1,
        },
    ))
}

impl DuplexEnd {
    /// Sends one message to the other end (see [`PipeWriter::send`]).
    pub fn send(&mut self, msg: &[u8]) -> Result<(), PipeError> {
        self.writer.send(msg)
    }
    /// Sends one message, waiting as `wait` allows.
    pub fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), PipeError> {
        self.writer.send_wait(msg, wait)
    }
    /// Receives one message from the other end (see [`PipeReader::recv`]).
    pub fn recv(&mut self) -> Result<Vec<u8>, PipeError> {
        self.reader.recv()
    }
    /// Receives one message, waiting as `wait` allows.
    pub fn recv_wait(&mut self, wait: Wait) -> Result<Vec<u8>, PipeError> {
        self.reader.recv_wait(wait)
    }
    /// The two halves.
    pub fn into_parts(self) -> (PipeReader, PipeWriter) {
        (self.reader, self.writer)
    }
    /// For a child process: `(stdin, stdout)`, so the child reads this end's input on stdin
    /// and writes this end's output on stdout.
    pub fn into_stdio(self) -> (Stdio, Stdio) {
        (Stdio::from(self.reader), Stdio::from(self.writer))
    }
}

impl Read for DuplexEnd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

impl Write for DuplexEnd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
