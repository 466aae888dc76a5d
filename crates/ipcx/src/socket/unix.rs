//! Unix domain sockets: stream, datagram and seqpacket, on paths or abstract names.
//!
//! # Socket files
//! Binding a path ([`UnixListener::bind`], [`UnixSeqpacketListener::bind`],
//! [`UnixDatagram::bind`]):
//! * an absent path is created;
//! * a **stale** socket file (nothing is bound behind it: a probe connect gets
//!   `ECONNREFUSED`) of our own user is removed and the path reused; another user's is
//!   [`SocketError::ForeignSocketFile`] and is left untouched (never ours to remove);
//! * a socket file of a **live** socket is [`SocketError::AddrInUse`];
//! * anything else (regular file, directory, symbolic link: symlinks are never followed) is
//!   [`SocketError::NotASocket`] and is left untouched.
//!
//! **Mode.** The socket file gets mode `0o600` by default (`bind_with_mode` for others).
//! `bind(2)` creates the file under the process umask and there is no `fchmod` for it, so ipcx
//! binds, then changes the mode of exactly the bound inode (opened with
//! `O_PATH | O_NOFOLLOW`, checked to be a socket, changed through `/proc/self/fd`), and only then
//! calls `listen(2)`: nobody can connect to a stream or seqpacket socket before its mode is
//! final (connecting to a bound socket that does not listen yet is refused). A bound datagram
//! socket can receive during the few microseconds between `bind` and the mode change when the
//! umask lets others write; every datagram carries its sender's credentials, so a receiver that
//! cares can check them.
//!
//! **Removal.** The socket that created the file removes it on drop, only if the path still
//! holds the same inode (dev, ino) it created; [`UnixListener::persist`] keeps it.
//!
//! Abstract names (`@name`) have no file, no mode (anyone in the network namespace may
//! connect) and vanish with the socket.
//!
//! # Whom a socket accepts: the same-user rule
//! Every bound socket ([`UnixListener`], [`UnixSeqpacketListener`], a bound [`UnixDatagram`])
//! checks the kernel-verified uid of each peer (`SO_PEERCRED` at accept, `SCM_CREDENTIALS` per
//! datagram) against its [`Trust`]: by default only the socket's own effective uid. A
//! connection from another user is closed at accept, a datagram from another user discarded,
//! and the call returns [`SocketError::ForeignPeer`] naming the peer (call again to go on).
//! This is the only protection an abstract name has, and it applies to paths too (a socket
//! file's mode is a second fence). Widen it with `set_trust` ([`Trust::allow_uid`],
//! [`Trust::any_user`]).
//!
//! # References
//! [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html),
//! [bind(2)](https://man7.org/linux/man-pages/man2/bind.2.html).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::UnixAddr;
use super::cred::Credentials;
use super::error::SocketError;
use super::fdpass::{MAX_FDS, ReceivedFds};
use crate::framing::{FramedStream, framed_methods};
use crate::sys::poll::{WaitError, retry_ready};
use crate::sys::socket::{self as sys, FileId, PathKind, RawUnixAddr, UnixType};
use crate::trust::Trust;
use crate::wait::Wait;

/// Default socket file mode.
pub const DEFAULT_MODE: u32 = 0o600;

const BACKLOG: i32 = 128;

pub(crate) fn raw_addr(addr: &UnixAddr) -> Result<RawUnixAddr, SocketError> {
    let r = match addr {
        UnixAddr::Path(p) => sys::unix_path_addr(p),
        UnixAddr::Abstract(n) => sys::unix_abstract_addr(n),
    };
    r.map_err(|e| SocketError::InvalidAddress {
        addr: addr.to_string(),
        reason: e.to_string(),
    })
}

pub(crate) fn from_raw_addr(a: &RawUnixAddr) -> Option<UnixAddr> {
    match sys::unix_addr_parts(a) {
        sys::UnixAddrParts::Path(p) => Some(UnixAddr::Path(PathBuf::from(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(p),
        ))),
        sys::UnixAddrParts::Abstract(n) => Some(UnixAddr::Abstract(n.to_vec())),
        sys::UnixAddrParts::Unnamed => None,
    }
}

fn map_wait(e: WaitError, context: impl FnOnce() -> String) -> SocketError {
    match e {
        WaitError::WouldBlock => SocketError::WouldBlock,
        WaitError::Timeout => SocketError::Timeout,
        WaitError::Io(e) => SocketError::io(context(), e),
    }
}

/// The socket file a bound socket created, removed on drop if still the same inode.
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    id: FileId,
    persist: bool,
    registration: Option<crate::registry::Registration>,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if self.persist {
            return;
        }
        if let Ok(PathKind::Socket(id)) = sys::lstat_kind(&self.path)
            && id == self.id
        {
            let _ = sys::unlink(&self.path);
        }
    }
}

/// Removes a socket file at `path`: refuses (and leaves untouched) anything that is not a
/// socket, and never follows a symbolic link. A missing path is [`SocketError::NotFound`].
pub fn remove_socket_file(path: impl AsRef<Path>) -> Result<(), SocketError> {
    let path = path.as_ref();
    let addr = path.display().to_string();
    match sys::lstat_kind(path).map_err(|e| SocketError::io(format!("lstat {addr}"), e))? {
        PathKind::Missing => Err(SocketError::NotFound {
            addr,
            hint: "there is no socket file to remove",
        }),
        PathKind::Symlink => Err(SocketError::NotASocket {
            addr,
            what: "a symbolic link",
        }),
        PathKind::Other => Err(SocketError::NotASocket {
            addr,
            what: "not a socket",
        }),
        PathKind::Socket(_) => {
            sys::unlink(path).map_err(|e| SocketError::io(format!("removing {addr}"), e))
        }
    }
}

/// Checks what is at `path` before binding: reclaims a stale socket, refuses anything else.
fn prepare_path(kind: UnixType, path: &Path) -> Result<(), SocketError> {
    let addr = path.display().to_string();
    let kind_at = sys::lstat_kind(path).map_err(|e| SocketError::io(format!("lstat {addr}"), e))?;
    let id = match kind_at {
        PathKind::Missing => return Ok(()),
        PathKind::Symlink => {
            return Err(SocketError::NotASocket {
                addr,
                what: "a symbolic link, never followed",
            });
        }
        PathKind::Other => {
            return Err(SocketError::NotASocket {
                addr,
                what: "not a socket",
            });
        }
        PathKind::Socket(id) => id,
    };
    // Probe: is anybody bound behind this socket file?
    let probe = sys::unix_socket(kind, true).map_err(|e| SocketError::io("socket(2)", e))?;
    let raw = sys::unix_path_addr(path).map_err(|e| SocketError::InvalidAddress {
        addr: addr.clone(),
        reason: e.to_string(),
    })?;
    match sys::connect_unix(probe.as_fd(), &raw) {
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            // Stale. Only our own user's stale socket is reclaimed: another user's file is not
            // ours to remove, even where the permissions would let us.
            let euid = crate::trust::euid();
            match sys::lstat_owner(path) {
                Ok(Some(owner)) if owner != euid => {
                    return Err(SocketError::ForeignSocketFile { addr, owner, euid });
                }
                Ok(_) => {}
                Err(e) => return Err(SocketError::io(format!("lstat {addr}"), e)),
            }
            // Remove it if it is still the file we looked at.
            if sys::lstat_kind(path).ok() == Some(PathKind::Socket(id)) {
                sys::unlink(path)
                    .map_err(|e| SocketError::io(format!("removing stale socket {addr}"), e))?;
            }
            Ok(())
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
            Err(SocketError::PermissionDenied { addr, source: e })
        }
        // Connected, or a live socket of another kind (EPROTOTYPE), or a full backlog (EAGAIN).
        _ => Err(SocketError::AddrInUse { addr }),
    }
}

/// Creates a socket of `kind` bound to `addr`; listens when `listen`.
fn bind_socket(
    kind: UnixType,
    addr: &UnixAddr,
    mode: u32,
    listen: bool,
    passcred: bool,
) -> Result<(OwnedFd, Option<SocketFile>), SocketError> {
    let raw = raw_addr(addr)?;
    let name = addr.to_string();
    if let UnixAddr::Path(p) = addr {
        prepare_path(kind, p)?;
    }
    let fd = sys::unix_socket(kind, listen).map_err(|e| SocketError::io("socket(2)", e))?;
    if passcred {
        sys::set_passcred(fd.as_fd(), true)
            .map_err(|e| SocketError::io("setsockopt(SO_PASSCRED)", e))?;
    }
    if let Err(e) = sys::bind_unix(fd.as_fd(), &raw) {
        return Err(match e.raw_os_error() {
            Some(libc::EADDRINUSE) => SocketError::AddrInUse { addr: name },
            Some(libc::ENOENT) => SocketError::Io {
                context: format!("binding {name}: the directory does not exist"),
                source: e,
            },
            _ => SocketError::io(format!("binding {name}"), e),
        });
    }
    let file = match addr {
        UnixAddr::Path(p) => match sys::chmod_socket_file(p, mode) {
            Ok(id) => Some(SocketFile {
                path: p.clone(),
                id,
                persist: false,
                registration: Some(crate::registry::Registration::new(format!(
                    "unix:{}",
                    std::path::absolute(p)
                        .unwrap_or_else(|_| p.clone())
                        .display()
                ))),
            }),
            Err(e) => {
                let _ = sys::unlink(p);
                return Err(SocketError::io(format!("setting the mode of {name}"), e));
            }
        },
        UnixAddr::Abstract(_) => None,
    };
    if listen {
        sys::listen(fd.as_fd(), BACKLOG)
            .map_err(|e| SocketError::io(format!("listen on {name}"), e))?;
    }
    Ok((fd, file))
}

/// Maps a connect(2) failure on `addr`: a refused connection to a path that is not a socket
/// at all (a regular file: it will never listen) is [`SocketError::NotASocket`], not the
/// "nothing listens yet" of a missing or stale socket.
fn connect_failed(addr: &UnixAddr, e: io::Error) -> SocketError {
    if let UnixAddr::Path(p) = addr
        && matches!(e.raw_os_error(), Some(libc::ECONNREFUSED | libc::ENOTSOCK))
        && sys::stat_is_socket(p).ok() == Some(Some(false))
    {
        return SocketError::NotASocket {
            addr: addr.to_string(),
            what: "not a socket, so nothing can ever listen there",
        };
    }
    SocketError::connect(addr.to_string(), e)
}

/// Connects a socket of `kind` to `addr`, waiting as `wait` allows for a full backlog (the
/// peer must exist: a missing one is [`SocketError::NotFound`] at once).
fn connect_socket(kind: UnixType, addr: &UnixAddr, wait: Wait) -> Result<OwnedFd, SocketError> {
    let raw = raw_addr(addr)?;
    if wait == Wait::Forever {
        let fd = sys::unix_socket(kind, false).map_err(|e| SocketError::io("socket(2)", e))?;
        sys::connect_unix(fd.as_fd(), &raw).map_err(|e| connect_failed(addr, e))?;
        return Ok(fd);
    }
    // Non-blocking: a Unix connect to a full backlog fails with EAGAIN (no EINPROGRESS), and
    // there is nothing to poll for, so retry with a short back-off until the deadline.
    let fd = sys::unix_socket(kind, true).map_err(|e| SocketError::io("socket(2)", e))?;
    let mut pause = Duration::from_millis(1);
    loop {
        match sys::connect_unix(fd.as_fd(), &raw) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if wait == Wait::NoWait {
                    return Err(SocketError::WouldBlock);
                }
                match wait.remaining() {
                    Some(left) if left.is_zero() => return Err(SocketError::Timeout),
                    Some(left) => std::thread::sleep(pause.min(left)),
                    None => std::thread::sleep(pause),
                }
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(connect_failed(addr, e)),
        }
    }
    sys::set_nonblocking(fd.as_fd(), false).map_err(|e| SocketError::io("fcntl", e))?;
    Ok(fd)
}

fn accept_on(
    fd: BorrowedFd<'_>,
    wait: Wait,
    name: &str,
    trust: &Trust,
) -> Result<(OwnedFd, Credentials), SocketError> {
    let conn = retry_ready(fd, true, wait, || sys::accept(fd))
        .map_err(|e| map_wait(e, || format!("accepting on {name}")))?;
    let cred: Credentials = sys::peer_cred(conn.as_fd())
        .map_err(|e| SocketError::io("getsockopt(SO_PEERCRED)", e))?
        .into();
    check_peer(trust, name, Some(cred))?;
    Ok((conn, cred))
}

/// `Ok` when `trust` permits the peer with credentials `cred`; a peer without credentials is
/// trusted only by [`Trust::any_user`].
fn check_peer(trust: &Trust, addr: &str, cred: Option<Credentials>) -> Result<(), SocketError> {
    if trust.allows_any() {
        return Ok(());
    }
    match cred {
        Some(c) if trust.permits(c.uid) => Ok(()),
        _ => Err(SocketError::ForeignPeer {
            addr: addr.to_owned(),
            pid: cred.map_or(0, |c| c.pid),
            uid: cred.map_or(u32::MAX, |c| c.uid),
            euid: crate::trust::euid(),
        }),
    }
}

macro_rules! fd_traits {
    ($t:ty) => {
        impl AsFd for $t {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.fd.as_fd()
            }
        }
        impl AsRawFd for $t {
            fn as_raw_fd(&self) -> RawFd {
                self.fd.as_raw_fd()
            }
        }
        impl From<$t> for OwnedFd {
            fn from(s: $t) -> OwnedFd {
                s.fd
            }
        }
    };
}

macro_rules! listener_common {
    ($t:ty) => {
        impl $t {
            /// The address this socket is bound to.
            pub fn local_addr(&self) -> &UnixAddr {
                &self.addr
            }

            /// Sets whose connections this listener accepts (default: its own user's only;
            /// see the [module documentation](self)).
            pub fn set_trust(&mut self, trust: Trust) {
                self.trust = trust;
            }

            /// Whose connections this listener accepts.
            pub fn trust(&self) -> &Trust {
                &self.trust
            }

            /// Keeps the socket file after drop (by default the socket that created the file
            /// removes it).
            pub fn persist(&mut self) {
                if let Some(f) = &mut self.file {
                    f.persist = true;
                    if let Some(r) = f.registration.take() {
                        r.persist();
                    }
                }
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Stream

/// A listening Unix stream socket.
///
/// ```no_run
/// use ipcx::socket::{UnixAddr, UnixListener};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = UnixListener::bind(&UnixAddr::parse("/tmp/svc.sock")?)?;
/// let (mut conn, who) = listener.accept()?;
/// println!("pid {} uid {}", who.pid, who.uid);
/// while let Some(msg) = conn.recv_frame()? {
///     conn.send_frame(&msg)?; // echo
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct UnixListener {
    fd: OwnedFd,
    addr: UnixAddr,
    file: Option<SocketFile>,
    trust: Trust,
}

fd_traits!(UnixListener);
listener_common!(UnixListener);

impl UnixListener {
    /// Binds and listens on `addr`; a socket file gets mode `0o600`. See the
    /// [module documentation](self) for what happens to an existing path.
    pub fn bind(addr: &UnixAddr) -> Result<UnixListener, SocketError> {
        Self::bind_with_mode(addr, DEFAULT_MODE)
    }

    /// Like [`bind`](Self::bind) with the socket file's mode (ignored for abstract names).
    pub fn bind_with_mode(addr: &UnixAddr, mode: u32) -> Result<UnixListener, SocketError> {
        let (fd, file) = bind_socket(UnixType::Stream, addr, mode, true, false)?;
        Ok(UnixListener {
            fd,
            addr: addr.clone(),
            file,
            trust: Trust::own_user(),
        })
    }

    /// Accepts one connection, blocking; returns it with the peer's credentials
    /// (`SO_PEERCRED`).
    #[doc(alias = "accept4")]
    pub fn accept(&self) -> Result<(UnixStream, Credentials), SocketError> {
        self.accept_wait(Wait::Forever)
    }

    /// Accepts a pending connection: [`SocketError::WouldBlock`] if there is none.
    pub fn try_accept(&self) -> Result<(UnixStream, Credentials), SocketError> {
        self.accept_wait(Wait::NoWait)
    }

    /// Accepts a connection, giving up with [`SocketError::Timeout`] after `timeout`.
    pub fn accept_timeout(
        &self,
        timeout: Duration,
    ) -> Result<(UnixStream, Credentials), SocketError> {
        self.accept_wait(Wait::timeout(timeout))
    }

    /// Accepts a connection, waiting as `wait` allows.
    pub fn accept_wait(&self, wait: Wait) -> Result<(UnixStream, Credentials), SocketError> {
        let (fd, cred) = accept_on(self.fd.as_fd(), wait, &self.addr.to_string(), &self.trust)?;
        Ok((UnixStream::from(fd), cred))
    }
}

/// A connected Unix stream socket: raw bytes through [`Read`]/[`Write`], messages through
/// [`send_frame`](Self::send_frame)/[`recv_frame`](Self::recv_frame) (ipcx framing, through a
/// [`FramedStream`]), file descriptors through [`send_with_fds`](Self::send_with_fds).
///
/// Do not mix framed receives and raw reads on one stream: frame receives buffer bytes that a
/// later `read` would not see.
#[derive(Debug)]
pub struct UnixStream {
    framed: FramedStream<OwnedFd, SocketError>,
}

framed_methods!(UnixStream, framed, SocketError);

impl From<OwnedFd> for UnixStream {
    fn from(fd: OwnedFd) -> UnixStream {
        UnixStream {
            framed: FramedStream::new(fd),
        }
    }
}

impl AsFd for UnixStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.framed.get_ref().as_fd()
    }
}
impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.framed.get_ref().as_raw_fd()
    }
}
impl From<UnixStream> for OwnedFd {
    fn from(s: UnixStream) -> OwnedFd {
        s.framed.into_inner()
    }
}

impl UnixStream {
    /// Connects to `addr`, blocking while the listener's backlog is full.
    pub fn connect(addr: &UnixAddr) -> Result<UnixStream, SocketError> {
        Ok(connect_socket(UnixType::Stream, addr, Wait::Forever)?.into())
    }

    /// Connects to `addr`, giving up with [`SocketError::Timeout`] after `timeout`.
    pub fn connect_timeout(addr: &UnixAddr, timeout: Duration) -> Result<UnixStream, SocketError> {
        Ok(connect_socket(UnixType::Stream, addr, Wait::timeout(timeout))?.into())
    }

    /// Two connected streams (`socketpair(2)`): hand one to a child process.
    pub fn pair() -> Result<(UnixStream, UnixStream), SocketError> {
        let (a, b) =
            sys::unix_pair(UnixType::Stream).map_err(|e| SocketError::io("socketpair(2)", e))?;
        Ok((a.into(), b.into()))
    }

    /// The peer's credentials, captured by the kernel at connect time (`SO_PEERCRED`).
    #[doc(alias = "SO_PEERCRED")]
    pub fn peer_credentials(&self) -> Result<Credentials, SocketError> {
        peer_credentials(self.as_fd())
    }

    /// Sends `data` with file descriptors attached (`SCM_RIGHTS`); see [`super::fdpass`].
    /// Returns the bytes sent (a stream may take fewer than `data.len()`; the fds travel with
    /// the first byte).
    pub fn send_with_fds(
        &mut self,
        data: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Result<usize, SocketError> {
        super::fdpass::send_fds_wait(self.as_fd(), data, fds, Wait::Forever)
    }

    /// Receives bytes and the file descriptors attached to them (at most `max_fds`; more is
    /// [`SocketError::ControlTruncated`]). `Ok` with zero bytes and no fds is end of stream.
    pub fn recv_with_fds(
        &mut self,
        buf: &mut [u8],
        max_fds: usize,
    ) -> Result<ReceivedFds, SocketError> {
        super::fdpass::recv_fds_wait(self.as_fd(), buf, max_fds, Wait::Forever)
    }

    /// Shuts the write side down: the peer reads end of stream.
    pub fn shutdown_write(&mut self) -> Result<(), SocketError> {
        sys::shutdown_write(self.as_fd()).map_err(|e| SocketError::io("shutdown(2)", e))
    }
}

impl Read for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        sys::recv_bytes(self.as_fd(), buf, false)
    }
}

impl Write for UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sys::send_bytes(self.as_fd(), buf, false)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(crate) fn peer_credentials(fd: BorrowedFd<'_>) -> Result<Credentials, SocketError> {
    sys::peer_cred(fd)
        .map(Credentials::from)
        .map_err(|e| SocketError::io("getsockopt(SO_PEERCRED)", e))
}

/// Sends an encoded frame on a byte stream (the rules of [`FramedStream`]), for the channel
/// layer's stream senders.
pub(crate) fn send_stream_frame(
    fd: BorrowedFd<'_>,
    frame: Vec<u8>,
    wait: Wait,
) -> Result<(), SocketError> {
    Ok(crate::framing::send_all(fd, &frame, wait)?)
}

fn map_send_wait(e: WaitError) -> SocketError {
    match e {
        WaitError::Io(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN)
            ) =>
        {
            SocketError::PeerGone {
                what: format!("the peer closed the connection ({e})"),
            }
        }
        other => map_wait(other, || "sending".into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Messages (seqpacket, datagram)

/// One message received on a datagram or seqpacket socket: its bytes, the file descriptors
/// that came with it, and (datagrams) the sender's credentials and address.
///
/// File descriptors the caller does not take are closed when the message is dropped.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ReceivedMessage {
    /// The payload.
    pub data: Vec<u8>,
    /// File descriptors passed with the message (`SCM_RIGHTS`), close-on-exec.
    pub fds: Vec<OwnedFd>,
    /// The sender's credentials: `SCM_CREDENTIALS` for datagrams, `SO_PEERCRED` of the
    /// connection for seqpacket.
    pub credentials: Option<Credentials>,
    /// The sender's address (datagrams from a bound socket).
    pub from: Option<UnixAddr>,
}

impl ReceivedMessage {
    /// The sender's credentials, if the kernel reported them.
    pub fn credentials(&self) -> Option<Credentials> {
        self.credentials
    }

    /// Takes the file descriptors out (the rest of the message can then be dropped).
    pub fn take_fds(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.fds)
    }
}

fn check_fds(fds: &[BorrowedFd<'_>]) -> Result<(), SocketError> {
    if fds.len() > MAX_FDS {
        return Err(SocketError::TooManyFds {
            count: fds.len(),
            max: MAX_FDS,
        });
    }
    Ok(())
}

/// Sends one message (with fds) on a message socket.
pub(crate) fn send_message(
    fd: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
    to: Option<&UnixAddr>,
    wait: Wait,
) -> Result<(), SocketError> {
    check_fds(fds)?;
    let raw = to.map(raw_addr).transpose()?;
    let res = retry_ready(fd, false, wait, || {
        sys::send_msg(fd, data, fds, raw.as_ref(), true)
    });
    match res {
        Ok(_) => Ok(()),
        Err(WaitError::Io(e)) => Err(match e.raw_os_error() {
            Some(libc::EMSGSIZE) => SocketError::TooLarge {
                len: data.len(),
                max: sys::send_buffer_size(fd).unwrap_or(0).saturating_sub(32),
                what: "the socket's send buffer (SO_SNDBUF) bounds one Unix datagram",
            },
            Some(libc::ENOENT | libc::ECONNREFUSED) if to.is_some() => {
                SocketError::connect(to.map(|a| a.to_string()).unwrap_or_default(), e)
            }
            Some(libc::ECONNREFUSED) => SocketError::PeerGone {
                what: "the peer socket was closed".into(),
            },
            Some(libc::ETOOMANYREFS) => SocketError::TooManyFds {
                count: fds.len(),
                max: MAX_FDS,
            },
            _ => map_send_wait(WaitError::Io(e)),
        }),
        Err(e) => Err(map_send_wait(e)),
    }
}

/// Receives one message (with up to `max_fds` fds) on a message socket. `connected`: a
/// zero-length read with the peer hung up is the end (seqpacket).
pub(crate) fn recv_message(
    fd: BorrowedFd<'_>,
    max_fds: usize,
    connected: bool,
    wait: Wait,
) -> Result<ReceivedMessage, SocketError> {
    let len = retry_ready(fd, true, wait, || sys::peek_len(fd, true))
        .map_err(|e| map_wait(e, || "receiving".into()))?;
    let mut data = vec![0u8; len];
    let r = match sys::recv_msg(fd, &mut data, max_fds, true) {
        Ok(r) => r,
        Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => {
            return Err(SocketError::PeerGone {
                what: "the peer closed the connection".into(),
            });
        }
        Err(e) => return Err(SocketError::io("recvmsg(2)", e)),
    };
    if r.control_truncated || r.fds.len() > max_fds {
        let received = r.fds.len();
        drop(r);
        return Err(SocketError::ControlTruncated { max_fds, received });
    }
    if connected && r.len == 0 && r.fds.is_empty() {
        let ready =
            crate::sys::poll::poll(fd, true, false, 0).map_err(|e| SocketError::io("poll", e))?;
        if ready.hangup() {
            return Err(SocketError::PeerGone {
                what: "the peer closed the connection".into(),
            });
        }
    }
    data.truncate(r.len);
    Ok(ReceivedMessage {
        data,
        fds: r.fds,
        credentials: r.cred.map(Credentials::from),
        from: r.from.as_ref().and_then(from_raw_addr),
    })
}

macro_rules! message_ops {
    ($t:ty, $connected:expr) => {
        impl $t {
            /// Sends one message, blocking while the socket is full.
            pub fn send(&self, msg: &[u8]) -> Result<(), SocketError> {
                self.send_wait(msg, Wait::Forever)
            }
            /// Sends one message without blocking ([`SocketError::WouldBlock`] when full).
            pub fn try_send(&self, msg: &[u8]) -> Result<(), SocketError> {
                self.send_wait(msg, Wait::NoWait)
            }
            /// Sends one message, giving up after `timeout`.
            pub fn send_timeout(&self, msg: &[u8], timeout: Duration) -> Result<(), SocketError> {
                self.send_wait(msg, Wait::timeout(timeout))
            }
            /// Sends one message, waiting as `wait` allows.
            pub fn send_wait(&self, msg: &[u8], wait: Wait) -> Result<(), SocketError> {
                send_message(self.fd.as_fd(), msg, &[], None, wait)
            }
            /// Sends one message with file descriptors attached (`SCM_RIGHTS`, at most
            /// [`MAX_FDS`]); see [`super::fdpass`].
            pub fn send_with_fds(
                &self,
                msg: &[u8],
                fds: &[BorrowedFd<'_>],
            ) -> Result<(), SocketError> {
                self.send_with_fds_wait(msg, fds, Wait::Forever)
            }
            /// Like [`send_with_fds`](Self::send_with_fds), waiting as `wait` allows.
            pub fn send_with_fds_wait(
                &self,
                msg: &[u8],
                fds: &[BorrowedFd<'_>],
                wait: Wait,
            ) -> Result<(), SocketError> {
                send_message(self.fd.as_fd(), msg, fds, None, wait)
            }
            /// Receives one message (with any fds, up to [`MAX_FDS`]), blocking.
            pub fn recv(&self) -> Result<ReceivedMessage, SocketError> {
                self.recv_wait(Wait::Forever)
            }
            /// Receives a waiting message ([`SocketError::WouldBlock`] when none).
            pub fn try_recv(&self) -> Result<ReceivedMessage, SocketError> {
                self.recv_wait(Wait::NoWait)
            }
            /// Receives one message, giving up after `timeout`.
            pub fn recv_timeout(&self, timeout: Duration) -> Result<ReceivedMessage, SocketError> {
                self.recv_wait(Wait::timeout(timeout))
            }
            /// Receives one message, waiting as `wait` allows.
            pub fn recv_wait(&self, wait: Wait) -> Result<ReceivedMessage, SocketError> {
                self.recv_with_max_fds(MAX_FDS, wait)
            }
            /// Receives one message accepting at most `max_fds` descriptors: a message carrying
            /// more is [`SocketError::ControlTruncated`] (and what arrived is closed).
            pub fn recv_with_max_fds(
                &self,
                max_fds: usize,
                wait: Wait,
            ) -> Result<ReceivedMessage, SocketError> {
                let mut m = recv_message(self.fd.as_fd(), max_fds, $connected, wait)?;
                if m.credentials.is_none() && $connected {
                    m.credentials = peer_credentials(self.fd.as_fd()).ok();
                }
                self.check_sender(&m)?;
                Ok(m)
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Seqpacket

/// A listening Unix seqpacket socket: connections that keep message boundaries.
#[derive(Debug)]
pub struct UnixSeqpacketListener {
    fd: OwnedFd,
    addr: UnixAddr,
    file: Option<SocketFile>,
    trust: Trust,
}

fd_traits!(UnixSeqpacketListener);
listener_common!(UnixSeqpacketListener);

impl UnixSeqpacketListener {
    /// Binds and listens on `addr` (socket file mode `0o600`).
    pub fn bind(addr: &UnixAddr) -> Result<UnixSeqpacketListener, SocketError> {
        Self::bind_with_mode(addr, DEFAULT_MODE)
    }

    /// Like [`bind`](Self::bind) with the socket file's mode.
    pub fn bind_with_mode(
        addr: &UnixAddr,
        mode: u32,
    ) -> Result<UnixSeqpacketListener, SocketError> {
        let (fd, file) = bind_socket(UnixType::Seqpacket, addr, mode, true, false)?;
        Ok(UnixSeqpacketListener {
            fd,
            addr: addr.clone(),
            file,
            trust: Trust::own_user(),
        })
    }

    /// Accepts one connection with the peer's credentials, blocking.
    pub fn accept(&self) -> Result<(UnixSeqpacket, Credentials), SocketError> {
        self.accept_wait(Wait::Forever)
    }

    /// Accepts a pending connection ([`SocketError::WouldBlock`] when none).
    pub fn try_accept(&self) -> Result<(UnixSeqpacket, Credentials), SocketError> {
        self.accept_wait(Wait::NoWait)
    }

    /// Accepts a connection, giving up after `timeout`.
    pub fn accept_timeout(
        &self,
        timeout: Duration,
    ) -> Result<(UnixSeqpacket, Credentials), SocketError> {
        self.accept_wait(Wait::timeout(timeout))
    }

    /// Accepts a connection, waiting as `wait` allows.
    pub fn accept_wait(&self, wait: Wait) -> Result<(UnixSeqpacket, Credentials), SocketError> {
        let (fd, cred) = accept_on(self.fd.as_fd(), wait, &self.addr.to_string(), &self.trust)?;
        Ok((UnixSeqpacket { fd }, cred))
    }
}

/// A connected Unix seqpacket socket: reliable, ordered, message boundaries kept. A received
/// message carries the connection's credentials.
#[derive(Debug)]
pub struct UnixSeqpacket {
    fd: OwnedFd,
}

fd_traits!(UnixSeqpacket);
message_ops!(UnixSeqpacket, true);

impl From<OwnedFd> for UnixSeqpacket {
    fn from(fd: OwnedFd) -> UnixSeqpacket {
        UnixSeqpacket { fd }
    }
}

impl UnixSeqpacket {
    /// Connections were checked at accept (or connect).
    fn check_sender(&self, _: &ReceivedMessage) -> Result<(), SocketError> {
        Ok(())
    }

    /// Connects to `addr`.
    pub fn connect(addr: &UnixAddr) -> Result<UnixSeqpacket, SocketError> {
        Ok(UnixSeqpacket {
            fd: connect_socket(UnixType::Seqpacket, addr, Wait::Forever)?,
        })
    }

    /// Connects to `addr`, giving up after `timeout` (backlog full).
    pub fn connect_timeout(
        addr: &UnixAddr,
        timeout: Duration,
    ) -> Result<UnixSeqpacket, SocketError> {
        Ok(UnixSeqpacket {
            fd: connect_socket(UnixType::Seqpacket, addr, Wait::timeout(timeout))?,
        })
    }

    /// Two connected seqpacket sockets (`socketpair(2)`).
    pub fn pair() -> Result<(UnixSeqpacket, UnixSeqpacket), SocketError> {
        let (a, b) =
            sys::unix_pair(UnixType::Seqpacket).map_err(|e| SocketError::io("socketpair(2)", e))?;
        Ok((a.into(), b.into()))
    }

    /// The peer's credentials (`SO_PEERCRED`).
    pub fn peer_credentials(&self) -> Result<Credentials, SocketError> {
        peer_credentials(self.fd.as_fd())
    }
}

// ---------------------------------------------------------------------------------------------
// Datagram

/// A Unix datagram socket. Bound sockets turn `SO_PASSCRED` on, so every received datagram
/// carries its sender's credentials.
///
/// The largest datagram is bounded by the sender's send buffer (`SO_SNDBUF`, at most
/// `net.core.wmem_max`): [`max_message_len`](Self::max_message_len) reports it; larger is
/// [`SocketError::TooLarge`].
#[derive(Debug)]
pub struct UnixDatagram {
    fd: OwnedFd,
    addr: Option<UnixAddr>,
    file: Option<SocketFile>,
    /// Whose datagrams a bound socket takes; `None` (unbound sockets, pairs): no check.
    trust: Option<Trust>,
}

fd_traits!(UnixDatagram);
message_ops!(UnixDatagram, false);

impl From<OwnedFd> for UnixDatagram {
    fn from(fd: OwnedFd) -> UnixDatagram {
        UnixDatagram {
            fd,
            addr: None,
            file: None,
            trust: None,
        }
    }
}

impl UnixDatagram {
    /// Binds to `addr` (socket file mode `0o600`), with `SO_PASSCRED` on.
    pub fn bind(addr: &UnixAddr) -> Result<UnixDatagram, SocketError> {
        Self::bind_with_mode(addr, DEFAULT_MODE)
    }

    /// Like [`bind`](Self::bind) with the socket file's mode.
    pub fn bind_with_mode(addr: &UnixAddr, mode: u32) -> Result<UnixDatagram, SocketError> {
        let (fd, file) = bind_socket(UnixType::Datagram, addr, mode, false, true)?;
        Ok(UnixDatagram {
            fd,
            addr: Some(addr.clone()),
            file,
            trust: Some(Trust::own_user()),
        })
    }

    /// An unbound datagram socket (to [`send_to`](Self::send_to) or [`connect`](Self::connect)).
    pub fn unbound() -> Result<UnixDatagram, SocketError> {
        let fd = sys::unix_socket(UnixType::Datagram, false)
            .map_err(|e| SocketError::io("socket(2)", e))?;
        Ok(fd.into())
    }

    /// Two connected datagram sockets (`socketpair(2)`), with `SO_PASSCRED` on.
    pub fn pair() -> Result<(UnixDatagram, UnixDatagram), SocketError> {
        let (a, b) =
            sys::unix_pair(UnixType::Datagram).map_err(|e| SocketError::io("socketpair(2)", e))?;
        for fd in [&a, &b] {
            sys::set_passcred(fd.as_fd(), true)
                .map_err(|e| SocketError::io("setsockopt(SO_PASSCRED)", e))?;
        }
        Ok((a.into(), b.into()))
    }

    /// Refuses (after dropping it, with its fds) a datagram from a user this socket does not
    /// trust.
    fn check_sender(&self, m: &ReceivedMessage) -> Result<(), SocketError> {
        match &self.trust {
            Some(t) => {
                let addr = self
                    .addr
                    .as_ref()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                check_peer(t, &addr, m.credentials)
            }
            None => Ok(()),
        }
    }

    /// Sets the default destination (then [`send`](Self::send) works). A missing peer is
    /// [`SocketError::NotFound`].
    pub fn connect(&self, addr: &UnixAddr) -> Result<(), SocketError> {
        let raw = raw_addr(addr)?;
        sys::connect_unix(self.fd.as_fd(), &raw).map_err(|e| connect_failed(addr, e))
    }

    /// The bound address, if any.
    pub fn local_addr(&self) -> Option<&UnixAddr> {
        self.addr.as_ref()
    }

    /// Sets whose datagrams this socket takes (a bound socket defaults to its own user's
    /// only; see the [module documentation](self)): a datagram from another user is
    /// discarded and the receive returns [`SocketError::ForeignPeer`].
    pub fn set_trust(&mut self, trust: Trust) {
        self.trust = Some(trust);
    }

    /// Keeps the socket file after drop.
    pub fn persist(&mut self) {
        if let Some(f) = &mut self.file {
            f.persist = true;
            if let Some(r) = f.registration.take() {
                r.persist();
            }
        }
    }

    /// The largest datagram this socket can send now: its send buffer (`SO_SNDBUF`) less the
    /// kernel's per-datagram overhead.
    pub fn max_message_len(&self) -> Result<usize, SocketError> {
        sys::send_buffer_size(self.fd.as_fd())
            .map(|n| n.saturating_sub(32))
            .map_err(|e| SocketError::io("getsockopt(SO_SNDBUF)", e))
    }

    /// Sends one datagram to `addr`, blocking while the receiver's queue is full.
    pub fn send_to(&self, msg: &[u8], addr: &UnixAddr) -> Result<(), SocketError> {
        self.send_to_wait(msg, &[], addr, Wait::Forever)
    }

    /// Sends one datagram with fds to `addr`, waiting as `wait` allows.
    pub fn send_to_wait(
        &self,
        msg: &[u8],
        fds: &[BorrowedFd<'_>],
        addr: &UnixAddr,
        wait: Wait,
    ) -> Result<(), SocketError> {
        send_message(self.fd.as_fd(), msg, fds, Some(addr), wait)
    }
}
