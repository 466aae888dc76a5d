//! `udp:HOST:PORT`: UDP, one datagram per message. The message channels are in
//! [`super::socket`].

use super::Transport;
use super::socket::map_err;
use crate::channel::{Address, Error, Message, MessageReceiver, MessageSender, Meta, Options};
use crate::socket::UdpSocket;
use crate::wait::Wait;

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
        let _ = opts;
        let what = format!("udp:{addr}");
        let sock = UdpSocket::bind(host_port(addr)).map_err(|e| map_err(e, &what, false))?;
        Ok(Box::new(UdpReceiver { sock, what }))
    }
    fn sender(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
        let _ = opts;
        let what = format!("udp:{addr}");
        let sock = UdpSocket::connect(host_port(addr)).map_err(|e| map_err(e, &what, false))?;
        Ok(Box::new(UdpSender { sock, what }))
    }
}

fn host_port(addr: &Address) -> (&str, u16) {
    addr.host_port().expect("udp: parses HOST:PORT only")
}

#[derive(Debug)]
struct UdpReceiver {
    sock: UdpSocket,
    what: String,
}

impl MessageReceiver for UdpReceiver {
    fn recv_wait(&mut self, wait: Wait) -> Result<Message, Error> {
        let (data, from) = self
            .sock
            .recv_from_wait(wait)
            .map_err(|e| map_err(e, &self.what, false))?;
        Ok(Message {
            data,
            meta: Meta {
                peer: Some(from.to_string()),
                ..Meta::default()
            },
        })
    }

    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        Ok(crate::wait_set::Readiness::fd(std::os::fd::AsFd::as_fd(
            &self.sock,
        )))
    }
}

#[derive(Debug)]
struct UdpSender {
    sock: UdpSocket,
    what: String,
}

impl MessageSender for UdpSender {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        self.sock
            .send_wait(msg, wait)
            .map_err(|e| map_err(e, &self.what, true))
    }

    fn max_message_len(&self) -> Option<usize> {
        Some(self.sock.max_message_len())
    }
}
