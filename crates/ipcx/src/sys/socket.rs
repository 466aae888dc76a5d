//! Socket back end: Unix domain sockets (stream, datagram, seqpacket), peer
//! credentials (`SO_PEERCRED`, `SO_PASSCRED` / `SCM_CREDENTIALS`), file-descriptor passing
//! (`SCM_RIGHTS`), and the socket-file checks done when binding and removing a path.
//!
//! Everything here goes through rustix's safe wrappers: this file needs no `unsafe`. Every fd is
//! created with `SOCK_CLOEXEC` / `MSG_CMSG_CLOEXEC` / `O_CLOEXEC` in the same syscall.
//!
//! # References
//! [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html),
//! [socket(7)](https://man7.org/linux/man-pages/man7/socket.7.html),
//! [cmsg(3)](https://man7.org/linux/man-pages/man3/cmsg.3.html).

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrAny, SocketAddrUnix,
    SocketFlags, SocketType,
};

use super::retry_eintr;

/// The most file descriptors the kernel accepts in one `SCM_RIGHTS` message.
pub(crate) const SCM_MAX_FD: usize = 253;

/// The three kinds of Unix socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnixType {
    Stream,
    Datagram,
    Seqpacket,
}

impl UnixType {
    fn raw(self) -> SocketType {
        match self {
            UnixType::Stream => SocketType::STREAM,
            UnixType::Datagram => SocketType::DGRAM,
            UnixType::Seqpacket => SocketType::SEQPACKET,
        }
    }
}

/// Process credentials as the kernel reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawCred {
    pub(crate) pid: i32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

fn cred(u: rustix::net::UCred) -> RawCred {
    RawCred {
        pid: u.pid.as_raw_nonzero().get(),
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
    }
}

/// `socket(AF_UNIX, kind | SOCK_CLOEXEC, 0)`.
pub(crate) fn unix_socket(kind: UnixType, nonblocking: bool) -> io::Result<OwnedFd> {
    let mut flags = SocketFlags::CLOEXEC;
    if nonblocking {
        flags |= SocketFlags::NONBLOCK;
    }
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        kind.raw(),
        flags,
        None,
    )?)
}

/// A kernel Unix socket address: a path, an abstract name, or unnamed.
pub(crate) type RawUnixAddr = SocketAddrUnix;

/// A socket address for a path.
pub(crate) fn unix_path_addr(path: &Path) -> io::Result<RawUnixAddr> {
    Ok(SocketAddrUnix::new(path)?)
}

/// A socket address for an abstract name (without the leading NUL).
pub(crate) fn unix_abstract_addr(name: &[u8]) -> io::Result<RawUnixAddr> {
    Ok(SocketAddrUnix::new_abstract_name(name)?)
}

/// What a kernel Unix address holds.
pub(crate) enum UnixAddrParts<'a> {
    Path(&'a [u8]),
    Abstract(&'a [u8]),
    Unnamed,
}

/// Splits a kernel Unix address into its parts.
pub(crate) fn unix_addr_parts(a: &RawUnixAddr) -> UnixAddrParts<'_> {
    if let Some(p) = a.path_bytes() {
        UnixAddrParts::Path(p)
    } else if let Some(n) = a.abstract_name() {
        UnixAddrParts::Abstract(n)
    } else {
        UnixAddrParts::Unnamed
    }
}

/// `bind(2)`.
pub(crate) fn bind_unix(fd: BorrowedFd<'_>, addr: &RawUnixAddr) -> io::Result<()> {
    Ok(rustix::net::bind(fd, addr)?)
}

/// `connect(2)`, retried on `EINTR`.
pub(crate) fn connect_unix(fd: BorrowedFd<'_>, addr: &RawUnixAddr) -> io::Result<()> {
    retry_eintr(|| Ok(rustix::net::connect(fd, addr)?))
}

/// `listen(2)`.
pub(crate) fn listen(fd: BorrowedFd<'_>, backlog: i32) -> io::Result<()> {
    Ok(rustix::net::listen(fd, backlog)?)
}

/// `accept4(2)` with `SOCK_CLOEXEC` (the new socket is blocking), retried on `EINTR`.
pub(crate) fn accept(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    retry_eintr(|| Ok(rustix::net::accept_with(fd, SocketFlags::CLOEXEC)?))
}

/// `getsockopt(SO_PEERCRED)`.
#[doc(alias = "SO_PEERCRED")]
pub(crate) fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<RawCred> {
    Ok(cred(rustix::net::sockopt::socket_peercred(fd)?))
}

/// `setsockopt(SO_PASSCRED)`.
#[doc(alias = "SO_PASSCRED")]
pub(crate) fn set_passcred(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    Ok(rustix::net::sockopt::set_socket_passcred(fd, on)?)
}

/// `getsockopt(SO_SNDBUF)`.
pub(crate) fn send_buffer_size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    Ok(rustix::net::sockopt::socket_send_buffer_size(fd)?)
}

/// `ioctl(FIONBIO)`: switches `O_NONBLOCK` on or off.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    Ok(rustix::io::ioctl_fionbio(fd, on)?)
}

/// `shutdown(2)` of the write side.
pub(crate) fn shutdown_write(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::net::shutdown(fd, rustix::net::Shutdown::Write)?)
}

/// `sendmsg(2)` of one message with optional `SCM_RIGHTS` fds, to `to` (unconnected datagram
/// sockets) or the connected peer. Always `MSG_NOSIGNAL` (a dead peer is `EPIPE`, never
/// `SIGPIPE`); `MSG_DONTWAIT` when `nonblocking`.
#[doc(alias = "sendmsg")]
#[doc(alias = "SCM_RIGHTS")]
pub(crate) fn send_msg(
    fd: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
    to: Option<&RawUnixAddr>,
    nonblocking: bool,
) -> io::Result<usize> {
    let mut flags = SendFlags::NOSIGNAL;
    if nonblocking {
        flags |= SendFlags::DONTWAIT;
    }
    let iov = [IoSlice::new(data)];
    let space = if fds.is_empty() {
        0
    } else {
        rustix::cmsg_space!(ScmRights(fds.len()))
    };
    let mut buf = vec![MaybeUninit::<u8>::uninit(); space];
    let mut control = SendAncillaryBuffer::new(&mut buf);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    retry_eintr(|| {
        Ok(match to {
            Some(addr) => rustix::net::sendmsg_addr(fd, addr, &iov, &mut control, flags)?,
            None => rustix::net::sendmsg(fd, &iov, &mut control, flags)?,
        })
    })
}

/// One received message.
#[derive(Debug)]
pub(crate) struct Received {
    /// Bytes stored in the buffer.
    pub(crate) len: usize,
    /// Control data did not fit (`MSG_CTRUNC`): some fds (or the credentials) were dropped by
    /// the kernel.
    pub(crate) control_truncated: bool,
    /// File descriptors that arrived (`SCM_RIGHTS`), already close-on-exec.
    pub(crate) fds: Vec<OwnedFd>,
    /// Sender credentials (`SCM_CREDENTIALS`, when `SO_PASSCRED` is on).
    pub(crate) cred: Option<RawCred>,
    /// The sender's address (datagram sockets).
    pub(crate) from: Option<RawUnixAddr>,
}

/// `recvmsg(2)` with room for `max_fds` descriptors and one set of credentials; always
/// `MSG_CMSG_CLOEXEC`, `MSG_DONTWAIT` when `nonblocking`.
#[doc(alias = "recvmsg")]
#[doc(alias = "MSG_CMSG_CLOEXEC")]
pub(crate) fn recv_msg(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    max_fds: usize,
    nonblocking: bool,
) -> io::Result<Received> {
    let mut flags = RecvFlags::CMSG_CLOEXEC;
    if nonblocking {
        flags |= RecvFlags::DONTWAIT;
    }
    let space = rustix::cmsg_space!(ScmRights(max_fds.max(1)), ScmCredentials(1));
    let mut cbuf = vec![MaybeUninit::<u8>::uninit(); space];
    let mut control = RecvAncillaryBuffer::new(&mut cbuf);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = retry_eintr(|| Ok(rustix::net::recvmsg(fd, &mut iov, &mut control, flags)?))?;
    let mut fds = Vec::new();
    let mut cred_out = None;
    for m in control.drain() {
        match m {
            RecvAncillaryMessage::ScmRights(it) => fds.extend(it),
            RecvAncillaryMessage::ScmCredentials(c) => cred_out = Some(cred(c)),
            _ => {}
        }
    }
    let from = msg
        .address
        .and_then(|a: SocketAddrAny| SocketAddrUnix::try_from(a).ok());
    Ok(Received {
        len: msg.bytes.min(iov[0].len()),
        control_truncated: msg.flags.contains(ReturnFlags::CTRUNC),
        fds,
        cred: cred_out,
        from,
    })
}

/// The length of the next message without taking it (`MSG_PEEK | MSG_TRUNC`).
pub(crate) fn peek_len(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<usize> {
    let mut flags = RecvFlags::PEEK | RecvFlags::TRUNC;
    if nonblocking {
        flags |= RecvFlags::DONTWAIT;
    }
    let mut b = [0u8; 1];
    retry_eintr(|| Ok(rustix::net::recv(fd, &mut b[..], flags)?.1))
}

/// `recv(2)` of bytes from a stream.
pub(crate) fn recv_bytes(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    nonblocking: bool,
) -> io::Result<usize> {
    let flags = if nonblocking {
        RecvFlags::DONTWAIT
    } else {
        RecvFlags::empty()
    };
    retry_eintr(|| Ok(rustix::net::recv(fd, &mut *buf, flags)?.0))
}

/// `send(2)` of bytes to a stream, with `MSG_NOSIGNAL`.
pub(crate) fn send_bytes(fd: BorrowedFd<'_>, buf: &[u8], nonblocking: bool) -> io::Result<usize> {
    let mut flags = SendFlags::NOSIGNAL;
    if nonblocking {
        flags |= SendFlags::DONTWAIT;
    }
    retry_eintr(|| Ok(rustix::net::send(fd, buf, flags)?))
}

/// The identity of a file, as `lstat(2)` reports it (never following a symlink).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

/// What sits at a path, without following a final symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathKind {
    Missing,
    Socket(FileId),
    Symlink,
    Other,
}

/// `lstat(2)`.
pub(crate) fn lstat_kind(path: &Path) -> io::Result<PathKind> {
    match rustix::fs::lstat(path) {
        Ok(st) => {
            let id = FileId {
                dev: st.st_dev,
                ino: st.st_ino,
            };
            Ok(match FileType::from_raw_mode(st.st_mode) {
                FileType::Socket => PathKind::Socket(id),
                FileType::Symlink => PathKind::Symlink,
                _ => PathKind::Other,
            })
        }
        Err(rustix::io::Errno::NOENT) => Ok(PathKind::Missing),
        Err(e) => Err(e.into()),
    }
}

/// Whether `path` (following symlinks, as `connect(2)` does) is a socket; `None` when
/// nothing is there.
pub(crate) fn stat_is_socket(path: &Path) -> io::Result<Option<bool>> {
    match rustix::fs::stat(path) {
        Ok(st) => Ok(Some(
            FileType::from_raw_mode(st.st_mode) == FileType::Socket,
        )),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The owner (uid) of what sits at `path`, without following a final symlink; `None` when
/// nothing is there.
pub(crate) fn lstat_owner(path: &Path) -> io::Result<Option<u32>> {
    match rustix::fs::lstat(path) {
        Ok(st) => Ok(Some(st.st_uid)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Sets the mode of the socket file at `path` without following symlinks: opens it with
/// `O_PATH | O_NOFOLLOW`, checks with `fstat` that it is a socket, then changes the mode of
/// exactly that inode through `/proc/self/fd`. Returns the socket file's identity.
pub(crate) fn chmod_socket_file(path: &Path, mode: u32) -> io::Result<FileId> {
    let fd = rustix::fs::open(
        path,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Socket {
        return Err(io::Error::other("the bound path is no longer a socket"));
    }
    let proc_path = format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd.as_fd())
    );
    rustix::fs::chmod(proc_path.as_str(), Mode::from_raw_mode(mode & 0o7777))?;
    Ok(FileId {
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

/// `unlink(2)`.
pub(crate) fn unlink(path: &Path) -> io::Result<()> {
    Ok(rustix::fs::unlink(path)?)
}

/// `socketpair(AF_UNIX, kind | SOCK_CLOEXEC)`: two connected sockets.
pub(crate) fn unix_pair(kind: UnixType) -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        kind.raw(),
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Registers a socket with the tokio reactor; the `AsyncFd` owns its descriptor.
#[cfg(feature = "tokio")]
pub(crate) fn async_fd(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: the `OwnedFd` is open and moves into the `AsyncFd`, so nothing else can close it
    // while it is registered, and `OwnedFd::as_raw_fd` always returns that same descriptor; it
    // is closed only after the `AsyncFd` has deregistered it (on drop), or handed back by
    // `into_inner`.
    unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
}
