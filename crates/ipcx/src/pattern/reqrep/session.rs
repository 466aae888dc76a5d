//! What a client keeps per connection, the thread-based and the async client alike: the
//! server's address and limit, request ids, the calls waiting for their replies, and why the
//! connection ended. The clients differ only in how they move bytes and wake their callers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::wire::{self, DecodeError};
use crate::pattern::Error;

/// A client connection's bookkeeping.
#[derive(Debug)]
pub(crate) struct Session {
    next_id: AtomicU64,
    max_frame: usize,
    addr: String,
}

/// What one read on a client's connection came to.
pub(crate) enum Read {
    /// A reply (handed to its call, or to nobody if no call waits for it any more).
    Reply,
    /// Nothing came in time.
    Nothing,
    /// The connection ended: why, in the words every call on it reports.
    Ended(String),
}

impl Session {
    /// A connection to the server at `addr`, which takes request frames of at most
    /// `max_frame` bytes.
    pub(crate) fn new(max_frame: usize, addr: &str) -> Session {
        Session {
            next_id: AtomicU64::new(1),
            max_frame,
            addr: addr.to_owned(),
        }
    }

    /// The server's address.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// The largest request payload the server accepts for `method`.
    pub(crate) fn max_payload_len(&self, method: &str) -> usize {
        wire::max_request_payload(self.max_frame, method)
    }

    /// Checks a request of `method` with `payload_len` bytes before anything is sent (see
    /// [`wire::check_request`]) and gives it its id.
    pub(crate) fn begin(&self, method: &str, payload_len: usize) -> Result<u64, Error> {
        wire::check_request(method, payload_len, self.max_frame, &self.addr)?;
        Ok(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// What a read came to: `got` is what the link said (a frame read, the end of the
    /// stream, or an error), `bad` why the frame read is not a reply.
    pub(crate) fn read(&self, got: Result<bool, Error>, bad: Option<DecodeError>) -> Read {
        let addr = &self.addr;
        match (got, bad) {
            (Ok(true), None) => Read::Reply,
            (Ok(true), Some(e)) => Read::Ended(format!("the server at {addr} sent garbage: {e}")),
            (Ok(false), _) => Read::Ended(format!("the server at {addr} closed the connection")),
            (Err(Error::Timeout | Error::WouldBlock), _) => Read::Nothing,
            (Err(e), _) => Read::Ended(self.failed(&e)),
        }
    }

    /// Why the connection ended when reading or writing failed with `e`.
    pub(crate) fn failed(&self, e: &dyn std::fmt::Display) -> String {
        format!("the connection to {} failed: {e}", self.addr)
    }

    /// The error of a call on a connection that has ended (`why`, when known).
    pub(crate) fn gone(&self, why: Option<&String>) -> Error {
        Error::PeerGone {
            what: why
                .cloned()
                .unwrap_or_else(|| format!("the connection to {} ended", self.addr)),
        }
    }
}

/// The calls on one connection waiting for their replies, and why the connection ended once
/// it has. `S` is what a call waits on: the slot its reply is stored in (thread-based client)
/// or the sending end of its future (async client).
#[derive(Debug)]
pub(crate) struct Waiting<S> {
    calls: HashMap<u64, S>,
    ended: Option<String>,
}

impl<S> Waiting<S> {
    /// No call waiting, the connection open.
    pub(crate) fn new() -> Waiting<S> {
        Waiting {
            calls: HashMap::new(),
            ended: None,
        }
    }

    /// Why the connection ended, once it has.
    pub(crate) fn ended(&self) -> Option<&String> {
        self.ended.as_ref()
    }

    /// Records why the connection ended (the first reason stays).
    pub(crate) fn end(&mut self, why: String) {
        self.ended.get_or_insert(why);
    }

    /// Adds call `id`, waiting on `slot`; `false` if it was there already.
    pub(crate) fn insert(&mut self, id: u64, slot: S) -> bool {
        self.calls.insert(id, slot).is_none()
    }

    /// Removes call `id`, returning what it waited on.
    pub(crate) fn remove(&mut self, id: u64) -> Option<S> {
        self.calls.remove(&id)
    }

    /// What call `id` waits on.
    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut S> {
        self.calls.get_mut(&id)
    }

    /// Forgets every call (what they waited on is dropped).
    #[cfg(feature = "tokio")]
    pub(crate) fn clear(&mut self) {
        self.calls.clear();
    }
}
