//! How long a blocking operation may wait.
//!
//! Every blocking operation in ipcx comes in three forms: `op()` blocks, `try_op()` never
//! blocks, and `op_timeout(Duration)` gives up at a deadline. Internally they all funnel into one
//! function taking a [`Wait`].

use std::time::{Duration, Instant};

/// The instant `timeout` after `from`, or `None` when it is too far to represent: a caller's
/// `Duration::MAX` means "no deadline", never an overflow panic. Every deadline computed from a
/// caller's duration goes through here.
pub fn deadline_from(from: Instant, timeout: Duration) -> Option<Instant> {
    from.checked_add(timeout)
}

/// The instant `timeout` from now, or `None` (no deadline) when it is too far to represent.
pub fn deadline_after(timeout: Duration) -> Option<Instant> {
    deadline_from(Instant::now(), timeout)
}

/// How long a blocking operation may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Block until the operation can complete.
    Forever,
    /// Never block: fail with a `WouldBlock`/`Full`/`Empty` error instead.
    NoWait,
    /// Block until this instant at the latest, then fail with a `Timeout` error.
    Until(Instant),
}

/// How long a writer that has started a frame may go without progress before it abandons the
/// frame (the stream is then torn and the writer unusable).
///
/// A started frame is always completed, whatever the caller's deadline: the deadline bounds the
/// wait for the frame to *start*. Returning `Timeout` halfway through would leave half a frame in
/// the stream (the reader could never resynchronise), and returning `Ok` while part of it is still
/// buffered in the writer could leave the reader waiting for bytes that only the writer's next
/// send would push out.
pub const FRAME_STALL_LIMIT: Duration = Duration::from_secs(10);

impl Wait {
    /// The wait for the rest of a frame that has started: forever when the caller waits forever,
    /// otherwise until the reader has made no room for [`FRAME_STALL_LIMIT`] (call again after
    /// each bit of progress).
    pub(crate) fn for_frame_remainder(self) -> Wait {
        match self {
            Wait::Forever => Wait::Forever,
            _ => Wait::timeout(FRAME_STALL_LIMIT),
        }
    }

    /// A deadline `timeout` from now. A timeout too large to represent waits forever.
    pub fn timeout(timeout: Duration) -> Wait {
        deadline_after(timeout).map_or(Wait::Forever, Wait::Until)
    }

    /// From an optional timeout: `None` waits forever.
    pub fn from_timeout(timeout: Option<Duration>) -> Wait {
        timeout.map_or(Wait::Forever, Wait::timeout)
    }

    /// The time left before the deadline: `None` for [`Wait::Forever`], zero for
    /// [`Wait::NoWait`] and for a deadline that has passed.
    pub fn remaining(&self) -> Option<Duration> {
        match self {
            Wait::Forever => None,
            Wait::NoWait => Some(Duration::ZERO),
            Wait::Until(deadline) => Some(deadline.saturating_duration_since(Instant::now())),
        }
    }

    /// The time left as a poll(2) timeout in milliseconds, rounded up so that a wait never ends
    /// before its deadline: `-1` waits forever.
    pub fn poll_timeout_ms(&self) -> i32 {
        match self.remaining() {
            None => -1,
            Some(d) => {
                let ms = d.as_nanos().div_ceil(1_000_000);
                i32::try_from(ms).unwrap_or(i32::MAX)
            }
        }
    }

    /// Whether the deadline has passed (always false for [`Wait::Forever`]).
    pub fn expired(&self) -> bool {
        match self {
            Wait::Forever => false,
            Wait::NoWait => true,
            Wait::Until(deadline) => Instant::now() >= *deadline,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_and_poll_timeout() {
        assert_eq!(Wait::Forever.remaining(), None);
        assert_eq!(Wait::Forever.poll_timeout_ms(), -1);
        assert_eq!(Wait::NoWait.poll_timeout_ms(), 0);
        let w = Wait::timeout(Duration::from_micros(1500));
        let ms = w.poll_timeout_ms();
        assert!((1..=2).contains(&ms), "{ms}");
        assert!(Wait::timeout(Duration::MAX) == Wait::Forever);
        let past = Wait::Until(Instant::now() - Duration::from_secs(1));
        assert!(past.expired());
        assert_eq!(past.remaining(), Some(Duration::ZERO));
    }
}
