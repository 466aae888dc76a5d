//! [`Connection`]: a framed, bidirectional connection; [`Listener`]: what hands them out.
//!
//! A connection carries whole messages (frames) both ways and can be cloned into a second
//! handle on the same connection, so that one thread reads while another writes. Unix stream
//! sockets (with the peer's kernel-verified [`Credentials`]), TCP, the shared-memory ring pair
//! ([`super::shm`]) and TLS implement it; the connection-oriented patterns (pub/sub,
//! request/reply, push/pull) and RPC run over it.

use std::fmt;
use std::os::fd::OwnedFd;
use std::time::Duration;

use crate::channel::{Endpoint, Error};
use crate::socket::{Credentials, SocketError};
use crate::trust::Trust;
use crate::wait::Wait;

/// A framed, bidirectional connection.
pub trait Connection: Send + fmt::Debug {
    /// Sends one message, waiting as `wait` allows.
    fn send_frame_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error>;
    /// Sends one message made of `parts` laid end to end, waiting as `wait` allows (a
    /// transport that can, such as the ring, writes the parts straight into place). The
    /// default joins them into one buffer and sends that.
    fn send_frame_parts(&mut self, parts: &[&[u8]], wait: Wait) -> Result<(), Error> {
        self.send_frame_wait(&parts.concat(), wait)
    }
    /// Receives one message, waiting as `wait` allows: `Ok(None)` when the peer closed
    /// cleanly between messages.
    fn recv_frame_wait(&mut self, wait: Wait) -> Result<Option<Vec<u8>>, Error>;
    /// Receives one message and lends it to `f` (a transport that can, such as the ring,
    /// lends it in place without copying it out); `Ok(false)` when the peer closed cleanly
    /// between messages. The default receives an owned frame.
    fn recv_frame_with(&mut self, wait: Wait, f: &mut dyn FnMut(&[u8])) -> Result<bool, Error> {
        Ok(match self.recv_frame_wait(wait)? {
            Some(frame) => {
                f(&frame);
                true
            }
            None => false,
        })
    }
    /// A second handle on the same connection (one may read while the other writes; each
    /// direction must be used by one handle only).
    fn try_clone(&self) -> Result<Box<dyn Connection>, Error>;
    /// Hands the reading direction to a new handle and keeps the writing direction in this
    /// one; each must then be used by one thread at a time. A transport that can (the ring)
    /// then uses each direction without a lock; the default clones the connection
    /// ([`Connection::try_clone`]).
    fn take_reading_half(&mut self) -> Result<Box<dyn Connection>, Error> {
        self.try_clone()
    }
    /// Sets the largest message accepted and sent.
    fn set_max_frame_len(&mut self, max: usize);
    /// The peer's kernel-verified credentials (Unix sockets), if the transport knows them.
    fn peer_credentials(&self) -> Option<Credentials>;
    /// The peer, for messages.
    fn peer_name(&self) -> String;
    /// How a [`WaitSet`](crate::wait_set::WaitSet) watches the reading direction: ready while
    /// a message (or the peer's end, or an error) waits. The default: the transport has no
    /// descriptor to watch ([`WaitSetError::NotPollable`](crate::wait_set::WaitSetError)).
    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        Err(crate::wait_set::WaitSetError::not_pollable(
            self.peer_name(),
            "this transport's connections have no descriptor to wait on (unix: and tcp: do)",
        ))
    }
}

impl crate::wait_set::Waitable for dyn Connection {
    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        Connection::readiness(self)
    }
}

impl crate::wait_set::Waitable for dyn Listener {
    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        Listener::readiness(self)
    }
}

/// How long accepting pauses when the process is out of descriptors or memory.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Whether an accept failure means "out of descriptors or memory for now".
fn out_of_resources(e: &Error) -> bool {
    let source = match e {
        Error::Socket(SocketError::Io { source, .. }) | Error::Io { source, .. } => source,
        _ => return false,
    };
    matches!(
        source.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// A listener handing out [`Connection`]s ([`Endpoint::bind`]).
pub trait Listener: Send + Sync + fmt::Debug {
    /// Accepts one connection, waiting as `wait` allows, without pausing on resource
    /// exhaustion (see [`Listener::accept_wait`]).
    fn accept_once(&self, wait: Wait) -> Result<Box<dyn Connection>, Error>;

    /// The address it listens on (for TCP, with the port the kernel chose for port 0).
    fn local_addr(&self) -> Result<Endpoint, Error>;

    /// Sets which users' Unix connections are accepted (see [`Endpoint::bind_with`]);
    /// no effect on other transports (the default).
    fn set_trust(&mut self, trust: Trust) {
        let _ = trust;
    }

    /// How a [`WaitSet`](crate::wait_set::WaitSet) watches it: ready while a connection
    /// waits to be accepted. The default: the transport has no descriptor to watch.
    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        Err(crate::wait_set::WaitSetError::not_pollable(
            "this listener",
            "this transport's listeners have no descriptor to wait on (unix: and tcp: do)",
        ))
    }

    /// Accepts one connection, waiting as `wait` allows.
    ///
    /// Out of descriptors or memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`), it pauses (100
    /// ms at a time, within `wait`) instead of failing at once, so that an accept loop neither
    /// spins nor ends while the connections it serves go on; a wait that ends during the
    /// pause is [`Error::Timeout`].
    fn accept_wait(&self, wait: Wait) -> Result<Box<dyn Connection>, Error> {
        loop {
            match self.accept_once(wait) {
                Err(e) if out_of_resources(&e) && wait != Wait::NoWait => match wait.remaining() {
                    Some(left) if left <= ACCEPT_PAUSE => {
                        std::thread::sleep(left);
                        return Err(Error::Timeout);
                    }
                    _ => std::thread::sleep(ACCEPT_PAUSE),
                },
                other => return other,
            }
        }
    }
}

impl<L: Listener + ?Sized> Listener for Box<L> {
    fn accept_once(&self, wait: Wait) -> Result<Box<dyn Connection>, Error> {
        (**self).accept_once(wait)
    }
    fn local_addr(&self) -> Result<Endpoint, Error> {
        (**self).local_addr()
    }
    fn set_trust(&mut self, trust: Trust) {
        (**self).set_trust(trust);
    }
    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        (**self).readiness()
    }
}

/// A duplicate of a connection's descriptor, for a second handle.
pub(crate) fn dup(fd: impl std::os::fd::AsFd) -> Result<OwnedFd, Error> {
    fd.as_fd().try_clone_to_owned().map_err(|source| Error::Io {
        context: "duplicating a connection's descriptor".into(),
        source,
    })
}

/// How long a connect may take within `wait` (a wait without deadline: practically forever).
pub(crate) fn connect_timeout(wait: Wait) -> Duration {
    wait.remaining()
        .unwrap_or(Duration::from_secs(u64::MAX / 4))
}
