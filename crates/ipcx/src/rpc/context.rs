//! What a handler knows about its call ([`CallContext`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::channel::Codec;
use crate::socket::Credentials;

/// What a handler knows about its call.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CallContext {
    /// The method.
    pub method: String,
    /// When the caller stops waiting.
    pub deadline: Option<Instant>,
    /// The caller's kernel-verified credentials (Unix sockets).
    pub credentials: Option<Credentials>,
    /// The codec the caller calls in (its arguments came in it, its result goes back in it).
    pub codec: Codec,
    pub(super) gone: Arc<AtomicBool>,
}

impl CallContext {
    /// Whether the caller's connection has ended (it closed it or died) while the call runs:
    /// nobody will read the result, so stop working. Noticed within about 250 ms.
    pub fn caller_gone(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }

    /// Whether to stop: the deadline passed or the caller is gone.
    pub fn cancelled(&self) -> bool {
        self.expired() || self.caller_gone()
    }

    /// Whether the caller has stopped waiting: stop working when it has.
    pub fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }
}
