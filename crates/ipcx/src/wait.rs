//! How long a blocking operation may wait.
//!
//! Every blocking operation in ipcx comes in three forms: `op()` blocks, `try_op()` never
//! blocks, and `op_timeout(Duration)` gives up at a deadline. Internally they all funnel into one
//! function taking a [`Wait`].

use std::time::{Duration, Instant};

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

impl Wait {
    /// A deadline `timeout` from now. A timeout too large to represent waits forever.
    pub fn timeout(timeout: Duration) -> Wait {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => Wait::Until(deadline),
            None => Wait::Forever,
        }
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
