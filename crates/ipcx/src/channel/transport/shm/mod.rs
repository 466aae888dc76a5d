//! `shm:/NAME`: the ipcx zero-copy shared-memory ring ([`crate::ring`]).
//!
//! As a message channel the receiver is a subscriber that creates the ring and the
//! sender its publisher. As a connection ([`link`]) each connection is a pair of rings, one per
//! direction, set up through a handshake on an abstract Unix socket.

use super::{Connection, ConnectionOptions, Listener, Transport};
use crate::channel::{Address, Error, MessageReceiver, MessageSender, Options};
use crate::name::PosixName;
use crate::wait::Wait;

pub mod link;
mod ring;

pub use link::{MAX_FRAME, ShmConnection, ShmListener};

fn name(addr: &Address) -> &PosixName {
    addr.posix_name().expect("shm: parses POSIX names only")
}

/// `shm:/NAME`: the shared-memory ring.
#[derive(Debug)]
pub(super) struct Shm;

impl Transport for Shm {
    fn scheme(&self) -> &'static str {
        "shm"
    }
    fn syntax(&self) -> &'static [&'static str] {
        &["shm:/NAME"]
    }
    fn parse(&self, rest: &str) -> Result<Address, String> {
        Address::parse_posix_name(rest, PosixName::new)
    }
    fn receiver(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error> {
        ring::receiver(name(addr), opts)
    }
    fn sender(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
        ring::sender(name(addr), opts)
    }
    fn connect(
        &self,
        addr: &Address,
        wait: Wait,
        opts: &ConnectionOptions,
    ) -> Result<Box<dyn Connection>, Error> {
        let _ = opts;
        Ok(Box::new(ShmConnection::connect(name(addr).as_str(), wait)?))
    }
    fn bind(&self, addr: &Address, opts: &ConnectionOptions) -> Result<Box<dyn Listener>, Error> {
        // The handshake socket is abstract and the rings are made with mode 0o600: the
        // server must run as the client's user already.
        let _ = opts;
        Ok(Box::new(ShmListener::bind(name(addr).as_str())?))
    }
}
