//! `sysv-mq:KEY`: a System V message queue, messages with types.
//!
//! Receivers create the queue when it is missing (mode from the options) and remove it when
//! dropped if they created it. Senders open an existing queue; with `create` they create a
//! missing one and leave it in place.

use std::io;

use super::Transport;
use super::mq::START_HINT;
use crate::channel::{Address, Error, Message, MessageReceiver, MessageSender, Meta, Options};
use crate::sysv::Key;
use crate::sysv::msg as sysv;
use crate::wait::Wait;

/// `sysv-mq:KEY`: a System V message queue.
#[derive(Debug)]
pub(super) struct SysvMq;

impl Transport for SysvMq {
    fn scheme(&self) -> &'static str {
        "sysv-mq"
    }
    fn syntax(&self) -> &'static [&'static str] {
        &["sysv-mq:KEY"]
    }
    fn parse(&self, rest: &str) -> Result<Address, String> {
        Address::parse_sysv_key(rest)
    }
    fn receiver(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error> {
        sysv_receiver(key(addr), opts)
    }
    fn sender(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
        sysv_sender(key(addr), opts)
    }
}

fn key(addr: &Address) -> i32 {
    addr.sysv_key().expect("sysv-mq: parses keys only")
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
            addr: format!("sysv-mq:{key}"),
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

    /// System V queues have no descriptor: the kernel offers no way to poll them.
    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        Err(crate::wait_set::WaitSetError::not_pollable(
            sysv_what(self.q.key().0),
            "System V message queues have no descriptor to poll; use a POSIX queue (mq:) or call try_recv from an interval timer",
        ))
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

fn sysv_receiver(key: i32, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error> {
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

fn sysv_sender(key: i32, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
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
