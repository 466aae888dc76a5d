//! `shm:/NAME`: the zero-copy ring behind the generic channel interface. The receiver is a
//! subscriber that creates the ring when missing; the sender is its publisher.

use std::time::Duration;

use crate::channel::{Error, Message, MessageReceiver, MessageSender, Options};
use crate::name::PosixName;
use crate::ring::{self, Publisher, Subscriber};
use crate::wait::Wait;

/// Ring options from channel options: `capacity(n, size)` gives the largest message and room
/// for `n` of them.
fn ring_options(opts: &Options) -> ring::Options {
    let mut o = ring::Options::new()
        .mode(opts.mode)
        .trust(opts.trust.clone());
    if let Some(max) = opts.max_message_size {
        o = o.max_message(max);
    }
    let max = o.max_message;
    if let Some(n) = opts.max_messages {
        o = o.capacity(n.saturating_mul(max + 16));
    } else if opts.max_message_size.is_some() {
        o = o.capacity(max.saturating_mul(16));
    }
    o
}

fn convert(name: &PosixName, e: ring::RingError) -> Error {
    let what = format!("ring shm:{name}");
    match e {
        ring::RingError::NotFound { .. } => Error::NotFound {
            what,
            hint: "start the receiver first (ipcx recv creates the ring), or pass --create".into(),
        },
        ring::RingError::AlreadyExists { .. } => Error::AlreadyExists {
            what,
            hint: "open it, or remove it first (ipcx rm)".into(),
        },
        ring::RingError::PermissionDenied { .. } => Error::PermissionDenied {
            what,
            source: std::io::Error::from_raw_os_error(libc::EACCES),
        },
        ring::RingError::TooLarge { len, max } => Error::TooLarge { len, max, what },
        ring::RingError::Full => Error::Full { what },
        ring::RingError::Empty => Error::WouldBlock,
        ring::RingError::Timeout => Error::Timeout,
        ring::RingError::PeerGone { what } => Error::PeerGone { what },
        ring::RingError::InvalidName(e) => Error::InvalidName(e),
        ring::RingError::ForeignOwner(e) => Error::ForeignOwner(e),
        ring::RingError::Corrupt { what: reason, .. } => Error::Corrupt {
            what,
            reason: reason.into(),
        },
        e => Error::Io {
            context: what,
            source: std::io::Error::other(e.to_string()),
        },
    }
}

/// The receiving side: a subscriber that outlives its publishers (serves sender after sender).
#[derive(Debug)]
pub(crate) struct RingReceiver {
    name: PosixName,
    sub: Subscriber,
}

pub(super) fn receiver(
    name: &PosixName,
    opts: &Options,
) -> Result<Box<dyn MessageReceiver>, Error> {
    let sub =
        Subscriber::create(name.as_str(), &ring_options(opts)).map_err(|e| convert(name, e))?;
    Ok(Box::new(RingReceiver {
        name: name.clone(),
        sub,
    }))
}

impl MessageReceiver for RingReceiver {
    fn recv_wait(&mut self, wait: Wait) -> Result<Message, Error> {
        loop {
            let got = self.sub.recv_wait(wait).map(|s| Message::new(s.to_vec()));
            match got {
                Ok(m) => {
                    // A truncation while the bytes were copied may have zeroed part of them.
                    self.sub.check().map_err(|e| convert(&self.name, e))?;
                    return Ok(m);
                }
                // The publisher left or died: wait for the next one, as a FIFO reader does.
                Err(ring::RingError::PeerGone { .. }) => {
                    if wait == Wait::NoWait {
                        return Err(Error::WouldBlock);
                    }
                    if wait.expired() {
                        return Err(Error::Timeout);
                    }
                    let nap = wait.remaining().map_or(Duration::from_millis(5), |r| {
                        r.min(Duration::from_millis(5))
                    });
                    std::thread::sleep(nap);
                }
                Err(e) => return Err(convert(&self.name, e)),
            }
        }
    }

    /// Ready while a message waits, through the ring's futex-to-fd wake-up (a helper thread,
    /// see [`crate::ring`]); a publisher leaving does not make it ready (the receiver waits
    /// for the next one).
    fn readiness(&self) -> Result<crate::wait_set::Readiness<'_>, crate::wait_set::WaitSetError> {
        self.sub.readiness_for(false)
    }
}

/// The sending side: the ring's publisher.
#[derive(Debug)]
pub(crate) struct RingSender {
    name: PosixName,
    publ: Publisher,
    _listed: crate::discovery::Registration,
}

pub(super) fn sender(name: &PosixName, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
    let ropts = ring_options(opts);
    // Another sender may be finishing: retry a busy publisher place until the connect timeout
    // (without one, not at all; one too long to be a deadline, for ever).
    let wait = opts.connect_timeout.map(Wait::timeout);
    let publ = loop {
        let r = if opts.create {
            Publisher::create(name.as_str(), &ropts)
        } else {
            Publisher::open(name.as_str(), &ropts)
        };
        match r {
            Err(ring::RingError::PublisherExists { .. }) if wait.is_some_and(|w| !w.expired()) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            r => break r.map_err(|e| convert(name, e))?,
        }
    };
    Ok(Box::new(RingSender {
        _listed: crate::discovery::listing(
            crate::discovery::Kind::Ring,
            &format_args!("shm:{name}"),
        ),
        name: name.clone(),
        publ,
    }))
}

impl MessageSender for RingSender {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        if msg.len() > self.publ.max_message_len() {
            return Err(Error::TooLarge {
                len: msg.len(),
                max: self.publ.max_message_len(),
                what: format!("ring shm:{}", self.name),
            });
        }
        if self.publ.subscribers() == 0 {
            self.publ.check().map_err(|e| convert(&self.name, e))?;
            return Err(Error::PeerGone {
                what: format!("ring shm:{} has no receiver", self.name),
            });
        }
        self.publ
            .send_wait(msg, wait)
            .map_err(|e| convert(&self.name, e))
    }

    fn max_message_len(&self) -> Option<usize> {
        Some(self.publ.max_message_len())
    }
}
