//! `udp:HOST:PORT`: UDP, one datagram per message. The message channels are in
//! [`super::socket`].

use super::Transport;
use super::socket;
use crate::channel::{Address, Error, MessageReceiver, MessageSender, Options};

/// `udp:HOST:PORT`: UDP.
#[derive(Debug)]
pub(super) struct Udp;

impl Transport for Udp {
    fn scheme(&self) -> &'static str {
        "udp"
    }
    fn syntax(&self) -> &'static [&'static str] {
        &["udp:HOST:PORT"]
    }
    fn parse(&self, rest: &str) -> Result<Address, String> {
        Address::parse_host_port(rest)
    }
    fn receiver(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error> {
        let Address::HostPort { host, port } = addr else {
            unreachable!("udp: parses HOST:PORT only, not {addr:?}")
        };
        socket::udp_receiver(host, *port, opts)
    }
    fn sender(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
        let Address::HostPort { host, port } = addr else {
            unreachable!("udp: parses HOST:PORT only, not {addr:?}")
        };
        socket::udp_sender(host, *port, opts)
    }
}
