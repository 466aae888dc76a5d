//! Noticing a measurement that makes no progress, on either side: link calls last a
//! [`SLICE`] at a time, and a [`Stall`] tells when nothing moved for too long.

use std::time::{Duration, Instant};

/// How long one blocking link call lasts before the loops look at their stop flags.
pub(crate) const SLICE: Duration = Duration::from_millis(100);

/// Notices a phase that makes no progress: `check` is called on each timeout with the number
/// of messages handled so far.
pub(crate) struct Stall {
    limit: Duration,
    seen: u64,
    since: Instant,
}

impl Stall {
    pub(crate) fn new(limit: Duration) -> Stall {
        Stall {
            limit,
            seen: 0,
            since: Instant::now(),
        }
    }

    /// The limit.
    pub(crate) fn limit(&self) -> Duration {
        self.limit
    }

    /// Whether nothing moved for longer than the limit.
    pub(crate) fn stalled(&mut self, count: u64, now: Instant) -> bool {
        if count != self.seen {
            self.seen = count;
            self.since = now;
            false
        } else {
            now.duration_since(self.since) > self.limit
        }
    }
}
