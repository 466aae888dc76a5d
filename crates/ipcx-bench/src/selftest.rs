//! `selftest`: a hidden row over a plain `std` Unix stream socket with its own length prefix.
//!
//! It does not go through ipcx at all: it exists to check the harness itself (the two-process
//! protocol, ping-pong, checksums, the report) independently of the mechanisms being measured.
//! Run it with `ipcx bench selftest`.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ipcx::wait::Wait;

use crate::mechanism::{HalfOpen, Link, LinkError, Mechanism, Prepared, RowContext, Side};

/// How long one blocking socket call may last before the link reports a timeout.
const SLICE: Duration = Duration::from_millis(50);

/// The largest frame the self-test link accepts.
const MAX_FRAME: usize = 64 << 20;

/// The hidden harness self-test row.
#[derive(Debug, Clone, Default)]
pub struct SelfTest;

impl Mechanism for SelfTest {
    fn name(&self) -> &str {
        "selftest"
    }

    fn description(&self) -> &str {
        "harness self-test: a std Unix stream socket with its own framing, no ipcx mechanism"
    }

    fn hidden(&self) -> bool {
        true
    }

    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        Ok(Prepared::new(ctx.socket_path("selftest")))
    }

    fn open(&self, spec: &str, side: Side, _: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        let path = PathBuf::from(spec);
        match side {
            Side::Parent => {
                let l = UnixListener::bind(&path)
                    .map_err(|e| LinkError::Failed(format!("binding {spec}: {e}")))?;
                l.set_nonblocking(true)?;
                Ok(Box::new(Half::Listening(l, path)))
            }
            Side::Peer => Ok(Box::new(Half::Connecting(path))),
        }
    }
}

enum Half {
    Listening(UnixListener, PathBuf),
    Connecting(PathBuf),
}

impl HalfOpen for Half {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let deadline = match wait {
            Wait::Until(d) => d,
            _ => Instant::now() + Duration::from_secs(10),
        };
        let stream = match *self {
            Half::Listening(l, path) => loop {
                match l.accept() {
                    Ok((s, _)) => {
                        let _ = std::fs::remove_file(&path);
                        s.set_nonblocking(false)?;
                        break s;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if Instant::now() >= deadline {
                            let _ = std::fs::remove_file(&path);
                            return Err(LinkError::Failed("the peer never connected".into()));
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(e) => return Err(e.into()),
                }
            },
            Half::Connecting(path) => loop {
                match UnixStream::connect(&path) {
                    Ok(s) => break s,
                    Err(e) if Instant::now() < deadline => {
                        let _ = e;
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(e) => {
                        return Err(LinkError::Failed(format!(
                            "connecting to {}: {e}",
                            path.display()
                        )));
                    }
                }
            },
        };
        stream.set_read_timeout(Some(SLICE))?;
        stream.set_write_timeout(Some(SLICE))?;
        Ok(Box::new(StreamLink::new(stream)))
    }
}

/// A length-prefixed (4-byte big-endian) message link over a byte stream whose reads and
/// writes time out; partial frames survive a timeout.
#[derive(Debug)]
pub struct StreamLink<S> {
    stream: S,
    hdr: [u8; 4],
    hdr_got: usize,
    body: Vec<u8>,
    body_got: usize,
    in_body: bool,
    out: Vec<u8>,
    out_done: usize,
}

impl<S: Read + Write> StreamLink<S> {
    /// Wraps a stream whose reads and writes return `WouldBlock`/`TimedOut` after a while.
    pub fn new(stream: S) -> StreamLink<S> {
        StreamLink {
            stream,
            hdr: [0; 4],
            hdr_got: 0,
            body: Vec::new(),
            body_got: 0,
            in_body: false,
            out: Vec::new(),
            out_done: 0,
        }
    }

    fn read_some(&mut self, into_body: bool) -> Result<usize, LinkError> {
        let r = if into_body {
            self.stream.read(&mut self.body[self.body_got..])
        } else {
            self.stream.read(&mut self.hdr[self.hdr_got..])
        };
        match r {
            Ok(0) => Err(LinkError::PeerGone("the stream ended".into())),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e.into()),
        }
    }
}

impl<S: Read + Write + Send> Link for StreamLink<S> {
    fn send(&mut self, msg: &[u8], _wait: Wait) -> Result<(), LinkError> {
        if self.out_done == 0 || self.out.len() != msg.len() + 4 {
            let len = u32::try_from(msg.len())
                .map_err(|_| LinkError::TooLarge("frames carry at most 4 GiB".into()))?;
            self.out.clear();
            self.out.extend_from_slice(&len.to_be_bytes());
            self.out.extend_from_slice(msg);
            self.out_done = 0;
        }
        while self.out_done < self.out.len() {
            match self.stream.write(&self.out[self.out_done..]) {
                Ok(0) => return Err(LinkError::PeerGone("the stream closed".into())),
                Ok(n) => self.out_done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.out_done = 0;
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>, _wait: Wait) -> Result<(), LinkError> {
        loop {
            if !self.in_body {
                self.hdr_got += self.read_some(false)?;
                if self.hdr_got == 4 {
                    let len = u32::from_be_bytes(self.hdr) as usize;
                    if len > MAX_FRAME {
                        return Err(LinkError::Failed(format!(
                            "frame of {len} bytes exceeds {MAX_FRAME}"
                        )));
                    }
                    self.body.clear();
                    self.body.resize(len, 0);
                    self.body_got = 0;
                    self.in_body = true;
                }
            }
            if self.in_body {
                if self.body_got < self.body.len() {
                    self.body_got += self.read_some(true)?;
                }
                if self.body_got == self.body.len() {
                    std::mem::swap(buf, &mut self.body);
                    self.in_body = false;
                    self.hdr_got = 0;
                    return Ok(());
                }
            }
        }
    }
}
