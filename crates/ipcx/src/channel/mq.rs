//! Channel adapters for `mq:/NAME` and `sysv-mq:KEY`.
//!
//! Receivers create the queue when it is missing (mode and, for POSIX queues, capacity from
//! the options) and remove it when dropped if they created it. Senders open an existing queue;
//! with `create` they create a missing one and leave it in place.

use std::io;

use super::{Error, Message, MessageReceiver, MessageSender, Meta, Options};
use crate::mq::{self, MessageQueue};
use crate::name::PosixName;
use crate::sysv::Key;
use crate::sysv::msg as sysv;
use crate::wait::Wait;

const START_HINT: &str = "start a receiver first or pass --create";

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

pub(crate) fn posix_receiver(
    name: &PosixName,
    opts: &Options,
) -> Result<Box<dyn MessageReceiver>, Error> {
    let what = format!("queue mq:{name}");
    let q = posix_options(opts, true)
        .read(true)
        .write(false)
        .open_name(name)
        .map_err(|e| posix_open_error(&what, e))?;
    Ok(Box::new(PosixReceiver { q, buf: Vec::new() }))
}

pub(crate) fn posix_sender(
    name: &PosixName,
    opts: &Options,
) -> Result<Box<dyn MessageSender>, Error> {
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

fn sysv_what(key: i32) -> String {
    format!("queue sysv-mq:{key}")
}

fn sysv_open_error(key: i32, e: sysv::OpenError) -> Error {
    let what = sysv_what(key);
    match e {
        sysv::OpenError::NotFound { .. } => Error::NotFound {
            what,
            hint: START_HINT.into(),
        },
        sysv::OpenError::AlreadyExists { .. } => Error::AlreadyExists {
            what,
            hint: "remove it first (ipcx rm) or open the existing one".into(),
        },
        sysv::OpenError::PermissionDenied { source, .. } => {
            Error::PermissionDenied { what, source }
        }
        sysv::OpenError::ForeignOwner(mut e) => {
            e.what = what;
            Error::ForeignOwner(e)
        }
        sysv::OpenError::Io { source, .. } => Error::Io {
            context: format!("opening {what}"),
            source,
        },
        other => Error::Io {
            context: format!("opening {what}"),
            source: io::Error::other(other),
        },
    }
}

fn check_key(key: i32) -> Result<Key, Error> {
    if key == Key::PRIVATE.0 {
        return Err(Error::InvalidAddress {
            address: format!("sysv-mq:{key}"),
            reason: "key 0 is IPC_PRIVATE, which no other process can open; choose a nonzero key"
                .into(),
        });
    }
    Ok(Key(key))
}

#[derive(Debug)]
struct SysvReceiver {
    q: sysv::MessageQueue,
    selector: i64,
}

impl MessageReceiver for SysvReceiver {
    fn recv_wait(&mut self, wait: Wait) -> Result<Message, Error> {
        match self.q.recv_wait(self.selector, wait) {
            Ok((mtype, data)) => Ok(Message {
                data,
                meta: Meta {
                    mtype: Some(mtype),
                    ..Meta::default()
                },
            }),
            Err(sysv::RecvError::Empty) => Err(Error::WouldBlock),
            Err(sysv::RecvError::Timeout) => Err(Error::Timeout),
            Err(sysv::RecvError::Removed) => Err(Error::PeerGone {
                what: format!("{} was removed", sysv_what(self.q.key().0)),
            }),
            Err(e) => Err(Error::Io {
                context: format!("receiving from {}", sysv_what(self.q.key().0)),
                source: io::Error::other(e),
            }),
        }
    }
}

#[derive(Debug)]
struct SysvSender {
    q: sysv::MessageQueue,
    mtype: i64,
}

impl MessageSender for SysvSender {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        let what = sysv_what(self.q.key().0);
        self.q
            .send_wait(self.mtype, msg, wait)
            .map_err(|e| match e {
                sysv::SendError::TooLarge { len, max, limit } => Error::TooLarge {
                    len,
                    max,
                    what: format!("{what} ({limit})"),
                },
                sysv::SendError::Full => Error::Full { what },
                sysv::SendError::Timeout => Error::Timeout,
                sysv::SendError::Removed => Error::PeerGone {
                    what: format!(
                        "{what} was removed (its receiver exited, or someone removed it): this \
                         message was not sent, and any still in the queue are lost"
                    ),
                },
                e => Error::Io {
                    context: format!("sending to {what}"),
                    source: io::Error::other(e),
                },
            })
    }

    fn max_message_len(&self) -> Option<usize> {
        Some(self.q.max_message_size())
    }
}

pub(crate) fn sysv_receiver(key: i32, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error> {
    let k = check_key(key)?;
    let q = sysv::MessageQueue::options()
        .mode(opts.mode)
        .trust(opts.trust.clone())
        .create(true)
        .write(false)
        .open(k)
        .map_err(|e| sysv_open_error(key, e))?;
    Ok(Box::new(SysvReceiver {
        q,
        selector: opts.mtype.unwrap_or(0),
    }))
}

pub(crate) fn sysv_sender(key: i32, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
    let k = check_key(key)?;
    let mtype = opts.mtype.unwrap_or(1);
    if mtype <= 0 {
        return Err(Error::Io {
            context: format!("invalid message type {mtype} for {}", sysv_what(key)),
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "System V message types are positive: use --type 1 or higher",
            ),
        });
    }
    let q = sysv::MessageQueue::options()
        .mode(opts.mode)
        .trust(opts.trust.clone())
        .create(opts.create)
        .read(false)
        .open(k)
        .map_err(|e| sysv_open_error(key, e))?
        .persist();
    Ok(Box::new(SysvSender { q, mtype }))
}
