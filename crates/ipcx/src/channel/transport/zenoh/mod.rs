//! `zenoh:KEYEXPR`: publish and subscribe through Zenoh, across hosts (feature `zenoh`).
//!
//! A sender puts each message, as its raw bytes, under the key (`zenoh:robot/camera`); a
//! receiver subscribes to a key expression, wildcards allowed (`zenoh:robot/**`), and tells
//! each message's key in [`Meta::key`]. Programs using Zenoh's own clients (Rust, Python
//! `eclipse-zenoh`, C) see the same keys and bytes.
//!
//! Every `zenoh:` endpoint of a process shares one Zenoh session, opened by the first with
//! [`Options::zenoh`] ([`ZenohConfig`]: mode, locators to connect to and listen on, a Zenoh
//! configuration file) and closed by the last.
//!
//! **No message lost at start.** A put that no subscriber matches reaches nobody, so a
//! sender waits until Zenoh reports a matching subscriber (its matching status) before it
//! puts, as `wait` allows and at most [`Options::connect_timeout`] (default 5 s) at a time:
//! [`Error::Timeout`] when none came, [`Error::PeerGone`] when the subscribers it had went
//! away and none came back. Puts are reliable and block under congestion (Zenoh's
//! `CongestionControl::Block`), and a receiver's queue pushes back on the network when it is
//! full: a slow receiver slows the sender down, nothing is dropped. A put itself waits as long
//! as Zenoh's congestion control lets it, whatever `wait` says.
//!
//! Zenoh's own threads do the network work: an endpoint has no thread of its own, and its
//! blocking, non-blocking and timed waits are waits on Zenoh's receive queues.

mod config;
mod reason;
mod session;

use std::time::{Duration, Instant};

use ::zenoh::Wait as _;
use ::zenoh::handlers::FifoChannelHandler;
use ::zenoh::key_expr::{KeyExpr, keyexpr};
use ::zenoh::matching::{MatchingListener, MatchingStatus};
use ::zenoh::pubsub::{Publisher, Subscriber};
use ::zenoh::qos::CongestionControl;
use ::zenoh::sample::{Sample, SampleKind};

pub use config::{ZenohConfig, ZenohMode};
use reason::reason;
use session::SessionRef;

use super::Transport;
use crate::channel::{Address, Error, Message, MessageReceiver, MessageSender, Meta, Options};
use crate::wait::{Wait, deadline_after};

/// How long a sender waits for a matching subscriber when
/// [`Options::connect_timeout`] does not say.
pub const DEFAULT_MATCH_TIMEOUT: Duration = Duration::from_secs(5);

/// `zenoh:KEYEXPR`: Zenoh pub/sub.
#[derive(Debug)]
pub(in crate::channel) struct Zenoh;

impl Transport for Zenoh {
    fn scheme(&self) -> &'static str {
        "zenoh"
    }
    fn syntax(&self) -> &'static [&'static str] {
        &["zenoh:KEYEXPR"]
    }
    fn is_pubsub(&self) -> bool {
        true
    }
    fn parse(&self, rest: &str) -> Result<Address, String> {
        let ke = <&keyexpr>::try_from(rest).map_err(|e| {
            format!(
                "{}; expected a Zenoh key expression, as in robot/camera or robot/** (receiving)",
                reason(&e)
            )
        })?;
        Ok(Address::Name(ke.as_str().to_owned()))
    }
    fn receiver(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageReceiver>, Error> {
        let key = key_of(addr)?;
        let session = open_session(opts)?;
        let subscriber = session
            .session()
            .declare_subscriber(key.clone())
            .wait()
            .map_err(|e| zenoh_error(&format!("subscribing to zenoh:{key}"), &e))?;
        Ok(Box::new(ZenohReceiver {
            what: format!("zenoh:{key}"),
            subscriber,
            _session: session,
        }))
    }
    fn sender(&self, addr: &Address, opts: &Options) -> Result<Box<dyn MessageSender>, Error> {
        let key = key_of(addr)?;
        let what = format!("zenoh:{key}");
        if key.is_wild() {
            return Err(Error::InvalidAddress {
                addr: what,
                reason: "a sender puts under one key: no * or ** (wildcards are for receiving)"
                    .into(),
            });
        }
        let session = open_session(opts)?;
        let publisher = session
            .session()
            .declare_publisher(key.clone())
            .congestion_control(CongestionControl::Block)
            .wait()
            .map_err(|e| zenoh_error(&format!("publishing on {what}"), &e))?;
        // The listener first, then the status: a change after the status is in the listener.
        let matching = publisher
            .matching_listener()
            .wait()
            .map_err(|e| zenoh_error(&format!("matching subscribers of {what}"), &e))?;
        let matched = publisher
            .matching_status()
            .wait()
            .map_err(|e| zenoh_error(&format!("matching subscribers of {what}"), &e))?
            .matching();
        Ok(Box::new(ZenohSender {
            what,
            matching,
            publisher,
            matched,
            ever_matched: matched,
            match_timeout: opts.connect_timeout.unwrap_or(DEFAULT_MATCH_TIMEOUT),
            _session: session,
        }))
    }
}

/// The key expression of a parsed `zenoh:` address.
fn key_of(addr: &Address) -> Result<KeyExpr<'static>, Error> {
    let Address::Name(key) = addr else {
        unreachable!("zenoh: parses into Address::Name only")
    };
    KeyExpr::try_from(key.clone()).map_err(|e| Error::InvalidAddress {
        addr: format!("zenoh:{key}"),
        reason: reason(&e),
    })
}

/// The process's session, opened with `opts.zenoh` when none is.
fn open_session(opts: &Options) -> Result<SessionRef, Error> {
    SessionRef::open(
        &opts.zenoh,
        opts.connect_timeout.unwrap_or(DEFAULT_MATCH_TIMEOUT),
    )
}

/// A Zenoh failure while doing `what`.
fn zenoh_error(what: &str, e: &::zenoh::Error) -> Error {
    Error::Io {
        context: what.to_owned(),
        source: std::io::Error::other(reason(e)),
    }
}

/// The session closed under a receiver or sender.
fn closed(what: &str) -> Error {
    Error::PeerGone {
        what: format!("{what}: the Zenoh session closed"),
    }
}

/// A subscriber: Zenoh's receive queue for it, read as the caller's wait says.
struct ZenohReceiver {
    what: String,
    subscriber: Subscriber<FifoChannelHandler<Sample>>,
    /// Dropped last: the subscriber is undeclared before the session may close.
    _session: SessionRef,
}

impl std::fmt::Debug for ZenohReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZenohReceiver")
            .field("what", &self.what)
            .finish_non_exhaustive()
    }
}

impl MessageReceiver for ZenohReceiver {
    fn recv_wait(&mut self, wait: Wait) -> Result<Message, Error> {
        loop {
            let sample = match wait {
                Wait::Forever => self.subscriber.recv().map(Some),
                Wait::NoWait => self.subscriber.try_recv(),
                Wait::Until(deadline) => self.subscriber.recv_deadline(deadline),
            }
            .map_err(|_| closed(&self.what))?;
            let Some(sample) = sample else {
                return Err(match wait {
                    Wait::NoWait => Error::WouldBlock,
                    _ => Error::Timeout,
                });
            };
            // A delete carries no message (ipcx senders never send one).
            if sample.kind() == SampleKind::Delete {
                continue;
            }
            return Ok(Message {
                data: sample.payload().to_bytes().into_owned(),
                meta: Meta {
                    key: Some(sample.key_expr().as_str().to_owned()),
                    ..Meta::default()
                },
            });
        }
    }
}

/// A publisher, and what it knows of the subscribers that match its key.
struct ZenohSender {
    what: String,
    /// Undeclared before the publisher.
    matching: MatchingListener<FifoChannelHandler<MatchingStatus>>,
    publisher: Publisher<'static>,
    /// Whether a subscriber matches, as of the last status seen.
    matched: bool,
    /// Whether one ever did.
    ever_matched: bool,
    /// The longest one wait for a matching subscriber.
    match_timeout: Duration,
    /// Dropped last: the session closes (flushing the puts) after the publisher is gone.
    _session: SessionRef,
}

impl std::fmt::Debug for ZenohSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZenohSender")
            .field("what", &self.what)
            .field("matched", &self.matched)
            .finish_non_exhaustive()
    }
}

impl ZenohSender {
    /// Takes in the matching changes that arrived.
    fn update(&mut self) -> Result<(), Error> {
        while let Some(status) = self.matching.try_recv().map_err(|_| closed(&self.what))? {
            self.note(status);
        }
        Ok(())
    }

    fn note(&mut self, status: MatchingStatus) {
        self.matched = status.matching();
        self.ever_matched |= self.matched;
    }

    /// Waits, as `wait` allows and at most the match timeout, until a subscriber matches.
    fn await_match(&mut self, wait: Wait) -> Result<(), Error> {
        let cap = deadline_after(self.match_timeout);
        let caller = match wait {
            Wait::Forever => None,
            Wait::NoWait => Some(Instant::now()),
            Wait::Until(d) => Some(d),
        };
        let deadline = match (caller, cap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        while !self.matched {
            let status = match deadline {
                Some(d) => self.matching.recv_deadline(d),
                None => self.matching.recv().map(Some),
            }
            .map_err(|_| closed(&self.what))?;
            match status {
                Some(s) => self.note(s),
                None => return Err(self.no_match(caller, cap)),
            }
        }
        Ok(())
    }

    /// The error when no subscriber matched in time: the caller's deadline (or a try) passed
    /// first, or the match timeout did.
    fn no_match(&self, caller: Option<Instant>, cap: Option<Instant>) -> Error {
        let caller_first = match (caller, cap) {
            (Some(a), Some(b)) => a <= b,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if caller_first || !self.ever_matched {
            Error::Timeout
        } else {
            Error::PeerGone {
                what: format!(
                    "every subscriber of {} went away and none came back within {:?}",
                    self.what, self.match_timeout
                ),
            }
        }
    }
}

impl MessageSender for ZenohSender {
    fn send_wait(&mut self, msg: &[u8], wait: Wait) -> Result<(), Error> {
        self.update()?;
        if !self.matched {
            self.await_match(wait)?;
        }
        self.publisher
            .put(msg)
            .wait()
            .map_err(|e| zenoh_error(&format!("putting on {}", self.what), &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Endpoint;

    #[test]
    fn parses_key_expressions() {
        for good in [
            "zenoh:robot/camera",
            "zenoh:robot/**",
            "zenoh:a/*/b",
            "zenoh:x",
        ] {
            let ep = Endpoint::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(ep.to_string(), good);
        }
        for bad in [
            "zenoh:",
            "zenoh:robot/",
            "zenoh:/robot",
            "zenoh:a//b",
            "zenoh:a/**/**",
            "zenoh:a?b",
            "zenoh:a#b",
        ] {
            let e = Endpoint::parse(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidAddress { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("key expression"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_sender_refuses_wildcards() {
        let ep = Endpoint::parse("zenoh:robot/**").unwrap();
        let e = ep.sender(&Options::default()).unwrap_err();
        assert!(e.to_string().contains("wildcards"), "{e}");
    }
}
