//! Setup plumbing shared by the rows whose objects cannot be opened by name (pipes, eventfds,
//! memfds): the parent creates them and hands the peer its ends over a Unix socket
//! (`SCM_RIGHTS`). Only setup goes through here; nothing in it is measured.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ipcx::wait::Wait;
use ipcx_bench::LinkError;

/// The most descriptors one handoff carries.
const MAX_FDS: usize = 8;

/// The parent's end: a listener in the run's private directory.
#[derive(Debug)]
pub struct Offer {
    listener: UnixListener,
    path: PathBuf,
}

impl Offer {
    /// Binds `path` (non-blocking, so that the parent can give up).
    pub fn bind(path: &Path) -> Result<Offer, LinkError> {
        let listener = UnixListener::bind(path)
            .map_err(|e| LinkError::Failed(format!("binding {}: {e}", path.display())))?;
        listener.set_nonblocking(true)?;
        Ok(Offer {
            listener,
            path: path.to_owned(),
        })
    }

    /// Waits for the peer to connect (as `wait` allows) and sends it `fds`.
    pub fn give(self, fds: &[BorrowedFd<'_>], wait: Wait) -> Result<(), LinkError> {
        let deadline = setup_deadline(wait);
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(LinkError::Failed(
                            "the peer never came for its descriptors".into(),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(e.into()),
            }
        };
        stream.set_nonblocking(false)?;
        send_fds(&stream, fds)?;
        Ok(())
    }
}

impl Drop for Offer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The peer's end: connected during `open` (the parent's listener exists by then), read during
/// `connect`.
#[derive(Debug)]
pub struct Claim(UnixStream);

impl Claim {
    /// Connects to the parent's [`Offer`].
    pub fn connect(path: &str) -> Result<Claim, LinkError> {
        let s = UnixStream::connect(path)
            .map_err(|e| LinkError::Failed(format!("connecting to {path}: {e}")))?;
        Ok(Claim(s))
    }

    /// Receives exactly `n` descriptors, waiting as `wait` allows.
    pub fn take(self, n: usize, wait: Wait) -> Result<Vec<OwnedFd>, LinkError> {
        let left = setup_deadline(wait).saturating_duration_since(Instant::now());
        self.0
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        let fds = recv_fds(&self.0)?;
        if fds.len() != n {
            return Err(LinkError::Failed(format!(
                "expected {n} descriptors from the parent, got {}",
                fds.len()
            )));
        }
        Ok(fds)
    }
}

/// The deadline of a setup wait: its own, or 10 s from now when it has none.
pub fn setup_deadline(wait: Wait) -> Instant {
    match wait {
        Wait::Until(d) => d,
        _ => Instant::now() + Duration::from_secs(10),
    }
}

fn cmsg_space() -> usize {
    // SAFETY: CMSG_SPACE only computes a size.
    unsafe { libc::CMSG_SPACE((MAX_FDS * size_of::<RawFd>()) as u32) as usize }
}

fn send_fds(s: &UnixStream, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    assert!(!fds.is_empty() && fds.len() <= MAX_FDS);
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // u64 storage keeps the control buffer aligned for cmsghdr.
    let mut control = vec![0u64; cmsg_space().div_ceil(8)];
    let data_len = fds.len() * size_of::<RawFd>();
    // SAFETY: an all-zero msghdr is a valid value (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(data_len as u32) } as _;
    // SAFETY: msg_control points at a buffer of at least msg_controllen bytes, so the first
    // header exists; CMSG_DATA points inside it with room for `data_len` bytes (CMSG_SPACE of
    // that length was reserved), and write_unaligned makes no alignment assumption.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(data_len as u32) as _;
        let data = libc::CMSG_DATA(c).cast::<RawFd>();
        for (i, fd) in fds.iter().enumerate() {
            data.add(i).write_unaligned(fd.as_raw_fd());
        }
    }
    loop {
        // SAFETY: the socket is open for the call; msg and everything it points at (iov, byte,
        // control) live until it returns.
        let r = unsafe { libc::sendmsg(s.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if r >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn recv_fds(s: &UnixStream) -> io::Result<Vec<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = vec![0u64; cmsg_space().div_ceil(8)];
    // SAFETY: an all-zero msghdr is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = (control.len() * 8) as _;
    let n = loop {
        // SAFETY: the socket is open; msg points at live buffers of the stated sizes.
        let r = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if r >= 0 {
            break r;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let mut out = Vec::new();
    // SAFETY: the kernel filled msg_control with msg_controllen bytes of well-formed cmsg
    // headers; CMSG_FIRSTHDR/NXTHDR stay within them, and each SCM_RIGHTS payload holds
    // (cmsg_len - CMSG_LEN(0)) / 4 descriptors that now belong to this process (so wrapping
    // each in an OwnedFd exactly once is right).
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let len = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(c).cast::<RawFd>();
                for i in 0..len / size_of::<RawFd>() {
                    out.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if n == 0 && out.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the parent closed the handoff socket",
        ));
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::other("descriptors were truncated"));
    }
    Ok(out)
}

/// Parent side of a row whose peer gets descriptors: what to give, what to keep.
pub struct Giving<K> {
    /// The listener the peer comes to.
    pub offer: Offer,
    /// Descriptors for the peer (closed here once handed over).
    pub give: Vec<OwnedFd>,
    /// What the parent keeps.
    pub keep: K,
}

impl<K> Giving<K> {
    /// Gives the peer its descriptors and returns what the parent keeps.
    pub fn hand_over(self, wait: Wait) -> Result<K, LinkError> {
        let borrowed: Vec<_> = self.give.iter().map(|f| f.as_fd()).collect();
        self.offer.give(&borrowed, wait)?;
        Ok(self.keep)
    }
}
