//! Channel adapters for `unix:`, `unix-dgram:`, `unix-seqpacket:`, `tcp:` and `udp:`.

use super::{Error, MessageReceiver, MessageSender, Options, UnixKind};
use crate::socket::UnixAddr;

pub(crate) fn unix_receiver(
    kind: UnixKind,
    addr: &UnixAddr,
    opts: &Options,
) -> Result<Box<dyn MessageReceiver>, Error> {
    let _ = (kind, addr, opts);
    Err(unsupported("unix"))
}

pub(crate) fn unix_sender(
    kind: UnixKind,
    addr: &UnixAddr,
    opts: &Options,
) -> Result<Box<dyn MessageSender>, Error> {
    let _ = (kind, addr, opts);
    Err(unsupported("unix"))
}

pub(crate) fn tcp_receiver(
    host: &str,
    port: u16,
    opts: &Options,
) -> Result<Box<dyn MessageReceiver>, Error> {
    let _ = (host, port, opts);
    Err(unsupported("tcp"))
}

pub(crate) fn tcp_sender(
    host: &str,
    port: u16,
    opts: &Options,
) -> Result<Box<dyn MessageSender>, Error> {
    let _ = (host, port, opts);
    Err(unsupported("tcp"))
}

pub(crate) fn udp_receiver(
    host: &str,
    port: u16,
    opts: &Options,
) -> Result<Box<dyn MessageReceiver>, Error> {
    let _ = (host, port, opts);
    Err(unsupported("udp"))
}

pub(crate) fn udp_sender(
    host: &str,
    port: u16,
    opts: &Options,
) -> Result<Box<dyn MessageSender>, Error> {
    let _ = (host, port, opts);
    Err(unsupported("udp"))
}

fn unsupported(m: &str) -> Error {
    Error::Unsupported {
        what: "opening".into(),
        mechanism: m.into(),
    }
}
