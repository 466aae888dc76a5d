//! Listening sockets, stream and seqpacket: one [`Bound`] state (address, socket file, whom
//! they accept) and one set of methods for both.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::connect::accept_on;
use super::file::{DEFAULT_MODE, SocketFile, bind_socket};
use super::{UnixSeqpacket, UnixStream};
use crate::socket::{Credentials, SocketError, UnixAddr};
use crate::sys::socket::UnixType;
use crate::trust::Trust;
use crate::wait::Wait;

/// What a listening socket keeps besides its descriptor: the address it is bound to, the
/// socket file it created (removed on drop) and whom it accepts. The async listeners hold the
/// same.
#[derive(Debug)]
pub(crate) struct Bound {
    pub(crate) addr: UnixAddr,
    pub(crate) file: Option<SocketFile>,
    pub(crate) trust: Trust,
}

impl Bound {
    /// Binds a socket of `kind` to `addr` (socket file mode `mode`) and listens.
    fn listen(kind: UnixType, addr: &UnixAddr, mode: u32) -> Result<(OwnedFd, Bound), SocketError> {
        let (fd, file) = bind_socket(kind, addr, mode, true, false)?;
        let bound = Bound {
            addr: addr.clone(),
            file,
            trust: Trust::own_user(),
        };
        Ok((fd, bound))
    }

    /// Accepts a connection on `fd`, this listener's descriptor, waiting as `wait` allows; a
    /// peer the trust does not permit is closed and refused.
    pub(crate) fn accept(
        &self,
        fd: BorrowedFd<'_>,
        wait: Wait,
    ) -> Result<(OwnedFd, Credentials), SocketError> {
        accept_on(fd, wait, &self.addr.to_string(), &self.trust)
    }
}

/// The methods of a listener type `$t` (sync or async) that holds a [`Bound`] in `bound`.
macro_rules! bound_methods {
    ($t:ty) => {
        impl $t {
            /// The address this socket is bound to.
            pub fn local_addr(&self) -> &$crate::socket::UnixAddr {
                &self.bound.addr
            }

            /// Sets whose connections this listener accepts (default: its own user's only;
            /// see [`crate::socket::unix`]).
            pub fn set_trust(&mut self, trust: $crate::trust::Trust) {
                self.bound.trust = trust;
            }

            /// Whose connections this listener accepts.
            pub fn trust(&self) -> &$crate::trust::Trust {
                &self.bound.trust
            }

            /// Keeps the socket file after drop (by default the socket that created the file
            /// removes it).
            pub fn persist(&mut self) {
                if let Some(f) = &mut self.bound.file {
                    f.persist();
                }
            }
        }
    };
}

#[cfg(feature = "tokio")]
pub(crate) use bound_methods;

/// A listener type `$t` for sockets of kind `$kind`, whose connections are `$conn`.
macro_rules! listener {
    ($(#[$doc:meta])* $t:ident, $kind:expr, $conn:ty) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $t {
            fd: OwnedFd,
            bound: Bound,
        }

        fd_traits!($t);
        bound_methods!($t);

        impl $t {
            /// Binds and listens on `addr`; a socket file gets mode `0o600`. See
            /// [`crate::socket::unix`] for what happens to an existing path.
            pub fn bind(addr: &UnixAddr) -> Result<$t, SocketError> {
                Self::bind_with_mode(addr, DEFAULT_MODE)
            }

            /// Like [`bind`](Self::bind) with the socket file's mode (ignored for abstract
            /// names).
            pub fn bind_with_mode(addr: &UnixAddr, mode: u32) -> Result<$t, SocketError> {
                let (fd, bound) = Bound::listen($kind, addr, mode)?;
                Ok($t { fd, bound })
            }

            /// Accepts one connection, blocking; returns it with the peer's credentials
            /// (`SO_PEERCRED`).
            #[doc(alias = "accept4")]
            pub fn accept(&self) -> Result<($conn, Credentials), SocketError> {
                self.accept_wait(Wait::Forever)
            }

            /// Accepts a pending connection: [`SocketError::WouldBlock`] if there is none.
            pub fn try_accept(&self) -> Result<($conn, Credentials), SocketError> {
                self.accept_wait(Wait::NoWait)
            }

            /// Accepts a connection, giving up with [`SocketError::Timeout`] after `timeout`.
            pub fn accept_timeout(
                &self,
                timeout: std::time::Duration,
            ) -> Result<($conn, Credentials), SocketError> {
                self.accept_wait(Wait::timeout(timeout))
            }

            /// Accepts a connection, waiting as `wait` allows.
            pub fn accept_wait(&self, wait: Wait) -> Result<($conn, Credentials), SocketError> {
                let (fd, cred) = self.bound.accept(self.fd.as_fd(), wait)?;
                Ok((<$conn>::from(fd), cred))
            }

            /// The descriptor and the rest, for the async listener.
            #[cfg(feature = "tokio")]
            pub(crate) fn into_parts(self) -> (OwnedFd, Bound) {
                (self.fd, self.bound)
            }
        }
    };
}

listener!(
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
    UnixListener,
    UnixType::Stream,
    UnixStream
);

listener!(
    /// A listening Unix seqpacket socket: connections that keep message boundaries.
    UnixSeqpacketListener,
    UnixType::Seqpacket,
    UnixSeqpacket
);
