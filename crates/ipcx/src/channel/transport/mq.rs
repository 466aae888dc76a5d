//! `mq:/NAME`: a POSIX message queue, messages with priorities.
//!
//! Receivers create the queue when it is missing (mode and capacity from the options) and
//! remove it when dropped if they created it. Senders open an existing queue; with `create`
//! they create a missing one and leave it in place.

use std::io;

use super::Transport;
use crate::channel::{Address, Error, Message, MessageReceiver, MessageSender, Meta, Options};
use crate::mq::{self, MessageQueue};
use crate::name::PosixName;
use crate::wait::Wait;

pub(super) const START_HINT: &str = "start a receiver first or pass --create";

/// `mq:/NAME`: a POSIX message queue.
#[derive(Debug)]
pub(super) struct Mq;

impl Transport for Mq {
    fn scheme(&self) -> &'static str {
        "mq"
    }
    fn syntax(&self) -> &'static [&'static str] {
        &["mq:/NAME"]
    }
    fn parse(&self, rest: &str) -> Result<Address, String> {
        Address::parse_posix_name(rest, PosixName::queue)
    }
    fn receiver(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error> {
        posix_receiver(name(addr), opts)
    }
    fn sender(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
        posix_sender(name(addr), opts)
    }
}

fn name(addr: &Address) -> &PosixName {
    addr.posix_name().expect("mq: parses POSIX names only")
}

fn posix_open_error(what: &str, e: mq::OpenError) -> Error {
    match e {
        mq::OpenError::InvalidName(e) => Error::InvalidName(e),
        mq::OpenError::NotFound { .. } => Error::NotFound {
            what: what.to_owned(),
            hint: START_HINT.into(),
        },
        mq::OpenError::AlreadyExists { .. } => Error::AlreadyExists {
            what: what.to_owned(),
            hint: "remove it first (ipcx rm) or open the existing one".into(),
        },
        mq::OpenError::PermissionDenied { source, .. } => Error::PermissionDenied {
            what: what.to_owned(),
            source,
        },
        mq::OpenError::ForeignOwner(mut e) => {
            e.what = what.to_owned();
            Error::ForeignOwner(e)
        }
        mq::OpenError::Io { source, .. } => Error::Io {
            context: format!("opening {what}"),
            source,
        },
        // The rest name the queue and the limit themselves.
        other => Error::Io {
            context: "opening a POSIX message queue".into(),
            source: io::Error::other(other),
        },
    }
}

fn posix_options(opts: &Options, create: bool) -> mq::OpenOptions {
    let mut o = MessageQueue::options()
        .mode(opts.mode)
        .create(create)
        .trust(opts.trust.clone());
    if create {
        let defaults = (
            crate::sys::mq::read_limit("/proc/sys/fs/mqueue/msg_default").unwrap_or(10) as usize,
            crate::sys::mq::read_limit("/proc/sys/fs/mqueue/msgsize_default").unwrap_or(8192)
                as usize,
        );
        match (opts.max_messages, opts.max_message_size) {
            (None, None) => {}
            (m, s) => {
                o = o.capacity(m.unwrap_or(defaults.0), s.unwrap_or(defaults.1));
            }
        }
    }
    o
}

#[derive(Debug)]
struct PosixReceiver {
    q: MessageQueue,
    buf: Vec<u8>,
}

impl MessageReceiver for PosixReceiver {
    fn recv_wait(&mut self, wait: Wait) -> Result<Message, Error> {
        if self.buf.len() < self.q.max_message_size() {
            self.buf.resize(self.q.max_message_size(), 0);
        }
        match self.q.recv_into_wait(&mut self.buf, wait) {
            Ok((n, priority)) => Ok(Message {
                data: self.buf[..n].to_vec(),
                meta: Meta {
                    priority: Some(priority),
                    ..Meta::default()
                },
            }),
            Err(mq::RecvError::WouldBlock) => Err(Error::WouldBlock),
            Err(mq::RecvError::Timeout) => Err(Error::Timeout),
            Err(e) => Err(Error::Io {
                context: format!("receiving from {}", what_posix(&self.q)),
                source: io::Error::other(e),
            }),
        }
    }

    /// A POSIX queue descriptor is pollable on Linux: readable while the queue holds a
    /// message.
    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        Ok(crate::wait_set::Readiness::fd(std::os::fd::AsFd::as_fd(
            &self.q,
        )))
    }
}

#[derive(Debug)]
struct PosixSender {
    q: MessageQueue,
    priority: u32,
}

fn what_posix(q: &MessageQueue) -> String {
    match q.name() {
        Some(n) => format!("queue mq:{n}"),
        None => "POSIX message queue".into(),
    }
}

impl MessageSender for PosixSender {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        self.q
            .send_wait(msg, self.priority, wait)
            .map_err(|e| match e {
                mq::SendError::TooLarge { len, max } => Error::TooLarge {
                    len,
                    max,
                    what: format!("{} (mq_msgsize)", what_posix(&self.q)),
                },
                mq::SendError::Full => Error::Full {
                    what: what_posix(&self.q),
                },
                mq::SendError::Timeout => Error::Timeout,
                e @ mq::SendError::Unlinked { .. } => Error::PeerGone {
                    what: format!("{}: {e}", what_posix(&self.q)),
                },
                e => Error::Io {
                    context: format!("sending to {}", what_posix(&self.q)),
                    source: io::Error::other(e),
                },
            })
    }

    fn max_message_len(&self) -> Option<usize> {
        Some(self.q.max_message_size())
    }

    fn finish(&mut self) -> Result<(), Error> {
        match self.q.undelivered() {
            Some(lost) if lost > 0 => Err(Error::PeerGone {
                what: format!(
                    "{} was removed (its receiver exited, or someone removed it) with {lost} \
                     message{} sent into it that will never be received",
                    what_posix(&self.q),
                    if lost == 1 { "" } else { "s" }
                ),
            }),
            _ => Ok(()),
        }
    }
}

fn posix_receiver(name: &PosixName, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error> {
    let what = format!("queue mq:{name}");
    let q = posix_options(opts, true)
        .read(true)
        .write(false)
        .open_name(name)
        .map_err(|e| posix_open_error(&what, e))?;
    Ok(Box::new(PosixReceiver { q, buf: Vec::new() }))
}

fn posix_sender(name: &PosixName, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
    let what = format!("queue mq:{name}");
    let q = posix_options(opts, opts.create)
        .read(false)
        .write(true)
        .open_name(name)
        .map_err(|e| posix_open_error(&what, e))?
        .persist();
    Ok(Box::new(PosixSender {
        q,
        priority: opts.priority,
    }))
}
