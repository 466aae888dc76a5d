//! Handing a row's anonymous objects to the peer: the parent binds a Unix seqpacket socket
//! of `ipcx::socket` in the run's private directory (or an abstract name when the path would
//! be too long), and the peer fetches its descriptors there (`SCM_RIGHTS`) while connecting.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use ipcx::socket::{
    Credentials, SocketError, UNIX_PATH_MAX, UnixAddr, UnixSeqpacket, UnixSeqpacketListener,
};
use ipcx::wait::Wait;
use serde::{Deserialize, Serialize};

use crate::mechanism::{HalfOpen, Link, LinkError, RowContext};

/// What the parent tells the peer: where to fetch its descriptors.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RendezvousSpec {
    /// A Unix socket address (`PATH` or `@NAME`).
    pub(crate) addr: String,
}

impl RendezvousSpec {
    /// A fresh address for `row` under the run's directory (an abstract name when the path
    /// would be too long for a socket address).
    pub(crate) fn new(ctx: &RowContext, row: &str) -> RendezvousSpec {
        let s = ctx.socket_path(row);
        let addr = if s.len() <= UNIX_PATH_MAX - 7 {
            s
        } else {
            format!("@{}-{row}", ctx.tag)
        };
        RendezvousSpec { addr }
    }

    pub(crate) fn parse(spec: &str) -> Result<RendezvousSpec, LinkError> {
        serde_json::from_str(spec).map_err(|e| LinkError::Failed(format!("bad row spec: {e}")))
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("specs serialise")
    }

    fn unix_addr(&self) -> Result<UnixAddr, LinkError> {
        UnixAddr::parse(&self.addr)
            .map_err(|e| LinkError::Failed(format!("socket address {}: {e}", self.addr)))
    }
}

fn sock_err(what: &str, e: SocketError) -> LinkError {
    if e.is_timeout() || matches!(e, SocketError::WouldBlock) {
        LinkError::Timeout
    } else if e.is_peer_gone() {
        LinkError::PeerGone(format!("{what}: {e}"))
    } else {
        LinkError::Failed(format!("{what}: {e}"))
    }
}

/// The parent's end of the hand-over: a listening seqpacket socket that gives the peer its
/// descriptors (and tells each side the other's pid, from `SO_PEERCRED`).
#[derive(Debug)]
pub(crate) struct Rendezvous {
    listener: UnixSeqpacketListener,
}

impl Rendezvous {
    /// Binds the parent's socket (in the parent's `open`, before the peer is told to open).
    pub(crate) fn bind(spec: &RendezvousSpec) -> Result<Rendezvous, LinkError> {
        let addr = spec.unix_addr()?;
        let listener = UnixSeqpacketListener::bind(&addr)
            .map_err(|e| LinkError::Failed(format!("binding {}: {e}", spec.addr)))?;
        Ok(Rendezvous { listener })
    }

    /// Waits for the peer, sends it `fds`, and returns the peer's credentials. The socket (and
    /// its file) is gone when this returns.
    pub(crate) fn hand_over(
        self,
        fds: &[BorrowedFd<'_>],
        wait: Wait,
    ) -> Result<Credentials, LinkError> {
        let (conn, cred) = self.listener.accept_wait(wait).map_err(|e| match e {
            SocketError::Timeout => {
                LinkError::Failed("the peer never came for its descriptors".into())
            }
            e => sock_err("accepting the peer", e),
        })?;
        conn.send_with_fds_wait(b"ipcx-bench", fds, wait)
            .map_err(|e| sock_err("passing descriptors to the peer", e))?;
        Ok(cred)
    }
}

/// The peer's end of the hand-over: connects, receives `count` descriptors, and returns them
/// with the parent's credentials.
pub(crate) fn fetch(
    spec: &RendezvousSpec,
    count: usize,
    wait: Wait,
) -> Result<(Vec<OwnedFd>, Credentials), LinkError> {
    let addr = spec.unix_addr()?;
    let deadline = match wait {
        Wait::Until(d) => d,
        _ => Instant::now() + Duration::from_secs(10),
    };
    let conn = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match UnixSeqpacket::connect_timeout(&addr, left.max(Duration::from_millis(1))) {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(sock_err(&format!("connecting to {}", spec.addr), e)),
        }
    };
    let mut m = conn
        .recv_with_max_fds(count, Wait::Until(deadline))
        .map_err(|e| sock_err("receiving descriptors from the parent", e))?;
    let fds = m.take_fds();
    if fds.len() != count {
        return Err(LinkError::Failed(format!(
            "the parent passed {} descriptors instead of {count}",
            fds.len()
        )));
    }
    let cred = match m.credentials {
        Some(c) => c,
        None => conn
            .peer_credentials()
            .map_err(|e| sock_err("reading the parent's credentials", e))?,
    };
    Ok((fds, cred))
}

/// The peer's half of a row whose objects come by descriptor passing.
pub(crate) struct Fetching<F> {
    /// Where the parent waits.
    pub(crate) spec: RendezvousSpec,
    /// How many descriptors it gives.
    pub(crate) count: usize,
    /// Makes the link from them.
    pub(crate) build: F,
}

impl<F> HalfOpen for Fetching<F>
where
    F: FnOnce(Vec<OwnedFd>) -> Result<Box<dyn Link>, LinkError> + Send,
{
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let (fds, _parent) = fetch(&self.spec, self.count, wait)?;
        (self.build)(fds)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn rendezvous_addresses_fit_or_fall_back_to_abstract_names() {
        let short = RowContext {
            payload: 64,
            dir: std::env::temp_dir(),
            tag: "ipcx-bench-1-2".into(),
        };
        let s = RendezvousSpec::new(&short, "pipe");
        assert!(
            s.addr.len() <= UNIX_PATH_MAX && !s.addr.starts_with('@'),
            "{}",
            s.addr
        );
        let long = RowContext {
            dir: Path::new("/tmp").join("x".repeat(120)),
            ..short
        };
        let l = RendezvousSpec::new(&long, "pipe");
        assert!(l.addr.starts_with('@'), "{}", l.addr);
        l.unix_addr().unwrap();
    }
}
