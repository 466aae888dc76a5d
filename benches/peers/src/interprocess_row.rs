//! The `interprocess` row: a local socket (a Unix stream socket on Linux) carrying
//! length-prefixed messages.

use std::time::{Duration, Instant};

use interprocess::local_socket::prelude::*;
use interprocess::local_socket::{
    GenericFilePath, Listener, ListenerNonblockingMode, ListenerOptions, Stream,
};
use ipcx::wait::Wait;
use ipcx_bench::selftest::StreamLink;
use ipcx_bench::{HalfOpen, Link, LinkError, Mechanism, Prepared, RowContext, Side};

use crate::handoff::setup_deadline;

/// How long one blocking socket call may last before the link reports a timeout.
const SLICE: Duration = Duration::from_millis(100);

/// The interprocess row: one local-socket stream, length-prefixed messages.
#[derive(Debug, Default)]
pub struct Interprocess;

enum LocalHalf {
    Listening(Listener),
    Connecting(String),
}

impl Mechanism for Interprocess {
    fn name(&self) -> &str {
        "interprocess"
    }
    fn description(&self) -> &str {
        "interprocess 2.4 local socket (a Unix stream socket), length-prefixed messages"
    }
    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        Ok(Prepared::new(ctx.socket_path("interprocess")))
    }
    fn open(&self, spec: &str, side: Side, _: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        match side {
            Side::Parent => {
                let name = spec
                    .to_fs_name::<GenericFilePath>()
                    .map_err(|e| LinkError::Failed(format!("socket name {spec}: {e}")))?;
                let l = ListenerOptions::new()
                    .name(name)
                    .reclaim_name(true)
                    .create_sync()
                    .map_err(|e| LinkError::Failed(format!("listening on {spec}: {e}")))?;
                l.set_nonblocking(ListenerNonblockingMode::Accept)?;
                Ok(Box::new(LocalHalf::Listening(l)))
            }
            Side::Peer => Ok(Box::new(LocalHalf::Connecting(spec.to_owned()))),
        }
    }
}

impl HalfOpen for LocalHalf {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let deadline = setup_deadline(wait);
        let stream = match *self {
            LocalHalf::Listening(l) => loop {
                match l.accept() {
                    Ok(s) => break s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if Instant::now() >= deadline {
                            return Err(LinkError::Failed("the peer never connected".into()));
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(e) => return Err(e.into()),
                }
            },
            LocalHalf::Connecting(path) => loop {
                let name = path
                    .as_str()
                    .to_fs_name::<GenericFilePath>()
                    .map_err(|e| LinkError::Failed(format!("socket name {path}: {e}")))?;
                match Stream::connect(name) {
                    Ok(s) => break s,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(1))
                    }
                    Err(e) => return Err(LinkError::Failed(format!("connecting: {e}"))),
                }
            },
        };
        stream.set_nonblocking(false)?;
        stream.set_recv_timeout(Some(SLICE))?;
        stream.set_send_timeout(Some(SLICE))?;
        Ok(Box::new(StreamLink::new(stream)))
    }
}
