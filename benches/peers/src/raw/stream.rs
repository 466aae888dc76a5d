//! The byte-stream rows: `raw-pipe` (two anonymous pipes) and `raw-unix` (one Unix stream
//! connection), both framed by hand (a 4-byte length, then the payload).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ipcx::wait::Wait;
use ipcx_bench::{HalfOpen, Link, LinkError, Mechanism, Prepared, RowContext, Side};

use super::sys::{SLICE, deadline_of, last_err, poll_in};
use crate::pipe_pair::PipePair;

/// A length-prefixed message link over two byte-stream descriptors (pipes or one socket),
/// written with `writev` and read through a buffer, with no framing library in between.
struct RawStreamLink {
    tx: OwnedFd,
    rx: OwnedFd,
    /// Poll before reading (pipes: nothing else bounds a read); sockets rely on SO_RCVTIMEO.
    poll_first: bool,
    /// Bytes of the current outgoing message already written (header included).
    out_done: usize,
    inbuf: Vec<u8>,
    start: usize,
    end: usize,
}

impl RawStreamLink {
    fn new(tx: OwnedFd, rx: OwnedFd, poll_first: bool, payload: usize) -> RawStreamLink {
        RawStreamLink {
            tx,
            rx,
            poll_first,
            out_done: 0,
            inbuf: vec![0; (payload + 4).max(64 << 10)],
            start: 0,
            end: 0,
        }
    }

    /// A whole frame in the buffer, if there is one.
    fn frame(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let have = self.end - self.start;
        if have < 4 {
            return None;
        }
        let hdr: [u8; 4] = self.inbuf[self.start..self.start + 4].try_into().ok()?;
        let len = u32::from_le_bytes(hdr) as usize;
        if have < 4 + len {
            if self.inbuf.len() < 4 + len {
                // Make room for a frame larger than the buffer.
                self.inbuf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                self.inbuf.resize(4 + len, 0);
            }
            return None;
        }
        out.clear();
        out.extend_from_slice(&self.inbuf[self.start + 4..self.start + 4 + len]);
        self.start += 4 + len;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Some(())
    }
}

impl Link for RawStreamLink {
    fn send(&mut self, msg: &[u8], _wait: Wait) -> Result<(), LinkError> {
        let len = u32::try_from(msg.len())
            .map_err(|_| LinkError::TooLarge("frames carry at most 4 GiB".into()))?;
        let hdr = len.to_le_bytes();
        let total = 4 + msg.len();
        while self.out_done < total {
            let (h, m) = if self.out_done < 4 {
                (&hdr[self.out_done..], msg)
            } else {
                (&hdr[4..], &msg[self.out_done - 4..])
            };
            let iov = [
                libc::iovec {
                    iov_base: h.as_ptr() as *mut _,
                    iov_len: h.len(),
                },
                libc::iovec {
                    iov_base: m.as_ptr() as *mut _,
                    iov_len: m.len(),
                },
            ];
            // SAFETY: both iovecs point at live slices of the stated lengths (the kernel only
            // reads them); the fd is open.
            let r = unsafe { libc::writev(self.tx.as_raw_fd(), iov.as_ptr(), 2) };
            if r < 0 {
                let e = last_err();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    // SO_SNDTIMEO ran out: keep what was written, the harness calls again.
                    io::ErrorKind::WouldBlock => return Err(LinkError::Timeout),
                    _ => return Err(e.into()),
                }
            }
            self.out_done += r as usize;
        }
        self.out_done = 0;
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        loop {
            if self.frame(buf).is_some() {
                return Ok(());
            }
            if self.end == self.inbuf.len() {
                self.inbuf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.poll_first && !poll_in(self.rx.as_raw_fd(), deadline_of(wait))? {
                return Err(LinkError::Timeout);
            }
            let room = &mut self.inbuf[self.end..];
            // SAFETY: `room` is a live, writable buffer of `room.len()` bytes; the fd is open.
            let r =
                unsafe { libc::read(self.rx.as_raw_fd(), room.as_mut_ptr().cast(), room.len()) };
            match r {
                0 => return Err(LinkError::PeerGone("end of stream".into())),
                r if r > 0 => self.end += r as usize,
                _ => {
                    let e = last_err();
                    match e.kind() {
                        io::ErrorKind::Interrupted => return Err(LinkError::Timeout),
                        io::ErrorKind::WouldBlock => return Err(LinkError::Timeout),
                        _ => return Err(e.into()),
                    }
                }
            }
        }
    }
}

fn pipe2() -> Result<(OwnedFd, OwnedFd), LinkError> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(last_err().into());
    }
    // SAFETY: pipe2 succeeded: both descriptors are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

// ---------------------------------------------------------------------------------------
// raw-pipe

/// `raw-pipe`: two anonymous pipes, the peer's ends handed over with SCM_RIGHTS.
pub(super) fn pipe_row() -> PipePair {
    PipePair {
        name: "raw-pipe",
        description: "bare libc: two anonymous pipes, writev of length + payload, poll + read",
        pipe: pipe2,
        link: |tx, rx, payload| Box::new(RawStreamLink::new(tx, rx, true, payload)),
    }
}

// ---------------------------------------------------------------------------------------
// raw-unix

/// One Unix stream connection (both directions), framed by hand.
#[derive(Debug, Default)]
pub struct RawUnix;

enum UnixHalf {
    Listening(UnixListener, PathBuf, usize),
    Connecting(PathBuf, usize),
}

impl Mechanism for RawUnix {
    fn name(&self) -> &str {
        "raw-unix"
    }
    fn description(&self) -> &str {
        "bare libc: one Unix stream connection, writev of length + payload, read (SO_RCVTIMEO)"
    }
    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        Ok(Prepared::new(ctx.socket_path("raw-unix")))
    }
    fn open(&self, spec: &str, side: Side, payload: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        let path = PathBuf::from(spec);
        Ok(Box::new(match side {
            Side::Parent => {
                let l = UnixListener::bind(&path)
                    .map_err(|e| LinkError::Failed(format!("binding {spec}: {e}")))?;
                l.set_nonblocking(true)?;
                UnixHalf::Listening(l, path, payload)
            }
            Side::Peer => UnixHalf::Connecting(path, payload),
        }))
    }
}

impl HalfOpen for UnixHalf {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let deadline = deadline_of(wait).unwrap_or_else(|| Instant::now() + SLICE * 100);
        let (s, payload) = match *self {
            UnixHalf::Listening(l, path, payload) => {
                let s = loop {
                    match l.accept() {
                        Ok((s, _)) => break s,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            if Instant::now() >= deadline {
                                return Err(LinkError::Failed("the peer never connected".into()));
                            }
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Err(e) => return Err(e.into()),
                    }
                };
                let _ = std::fs::remove_file(path);
                s.set_nonblocking(false)?;
                (s, payload)
            }
            UnixHalf::Connecting(path, payload) => loop {
                match UnixStream::connect(&path) {
                    Ok(s) => break (s, payload),
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(1))
                    }
                    Err(e) => return Err(LinkError::Failed(format!("connecting: {e}"))),
                }
            },
        };
        s.set_read_timeout(Some(SLICE))?;
        s.set_write_timeout(Some(SLICE))?;
        let fd = OwnedFd::from(s);
        let rx = fd.try_clone()?;
        Ok(Box::new(RawStreamLink::new(fd, rx, false, payload)))
    }
}
