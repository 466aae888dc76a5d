//! TCP and UDP, IPv4 and IPv6, with the same wait forms as the Unix sockets.
//!
//! * [`TcpStream`] sets `TCP_NODELAY` (messages are small and latency matters) and carries
//!   ipcx frames ([`crate::framing`]) or raw bytes ([`Read`](std::io::Read)/[`Write`](std::io::Write)).
//! * [`UdpSocket`] sends one message per datagram; a message above the protocol's payload limit
//!   ([`MAX_UDP_PAYLOAD_V4`], [`MAX_UDP_PAYLOAD_V6`]) is [`SocketError::TooLarge`].
//! * Host names resolve through [`std::net::ToSocketAddrs`] (`localhost:7000`,
//!   `[::1]:7000`); connecting tries each resolved address in turn.
//!
//! # References
//! [tcp(7)](https://man7.org/linux/man-pages/man7/tcp.7.html),
//! [udp(7)](https://man7.org/linux/man-pages/man7/udp.7.html).

mod tcp;
mod udp;

use std::net::{SocketAddr, ToSocketAddrs};

use super::error::SocketError;
use crate::sys::poll::WaitError;

pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;

/// The largest UDP payload over IPv4: 65535 - 20 (IP header) - 8 (UDP header).
pub const MAX_UDP_PAYLOAD_V4: usize = 65507;
/// The largest UDP payload over IPv6 (without jumbograms): 65535 - 8 (UDP header).
pub const MAX_UDP_PAYLOAD_V6: usize = 65527;

/// Resolves `addr` (shown as `shown` in errors) to at least one address.
pub(super) fn resolve(
    addr: impl ToSocketAddrs,
    shown: &str,
) -> Result<Vec<SocketAddr>, SocketError> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| SocketError::InvalidAddress {
            addr: shown.to_owned(),
            reason: format!("cannot resolve: {e}"),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(SocketError::InvalidAddress {
            addr: shown.to_owned(),
            reason: "the name resolves to no address".into(),
        });
    }
    Ok(addrs)
}

/// `addr` as errors show it.
pub(super) fn shown(addr: &impl ToSocketAddrs) -> String {
    match addr.to_socket_addrs() {
        Ok(mut it) => it.next().map(|a| a.to_string()).unwrap_or_default(),
        Err(_) => String::from("(unresolved)"),
    }
}

/// A failed wait on a socket, with what was being done.
pub(super) fn wait_err(e: WaitError, what: &str) -> SocketError {
    match e {
        WaitError::WouldBlock => SocketError::WouldBlock,
        WaitError::Timeout => SocketError::Timeout,
        WaitError::Io(e) => SocketError::io(what, e),
    }
}
