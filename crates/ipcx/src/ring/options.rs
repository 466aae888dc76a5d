//! How a ring or work queue is created and how its handles behave.

use ipcx_ring::record_size;

use super::RingError;
use super::format::{MAX_SLOTS, slot_size};
use super::format::{PATTERN_PUBSUB, PATTERN_WORK};
use super::segment::Create;
use super::wait::WaitStrategy;
use crate::trust::Trust;

/// The data area of a ring by default: 4 MiB. Many small rings can ask for less with
/// [`Options::capacity`]. (Why 4 MiB: `crates/ipcx-bench/README.md`, section "ring".)
pub const DEFAULT_CAPACITY: usize = 4 << 20;

/// Ring creation and behaviour options.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Bytes in the data area (rounded up to a power of two; default 4 MiB, see
    /// [`DEFAULT_CAPACITY`]).
    pub capacity: usize,
    /// The largest message (default 64 KiB; the capacity grows to hold two of them).
    pub max_message: usize,
    /// Subscriber places (default 16); for a work queue, producer and consumer places
    /// together.
    pub max_subscribers: u32,
    /// Work queue: message slots (rounded up to a power of two; default: as many as fit in
    /// `capacity`, at least 2).
    pub slots: Option<usize>,
    /// Overwrite the oldest messages instead of waiting for slow subscribers.
    pub overwrite: bool,
    /// Mode of a created segment (default `0o600`).
    pub mode: u32,
    /// How blocked calls wait.
    pub strategy: WaitStrategy,
    /// Publisher of a lossless ring: the hot window in bytes (see [`HOT_WINDOW`]); `Some(0)`
    /// turns it off. Default `None`: [`HOT_WINDOW`] for rings of at least four windows, off
    /// for smaller ones.
    ///
    /// [`HOT_WINDOW`]: super::HOT_WINDOW
    pub hot_window: Option<usize>,
    /// Whose existing segments are opened (default: the caller's own uid only); a segment
    /// of another user is refused with [`RingError::ForeignOwner`].
    pub trust: Trust,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            capacity: DEFAULT_CAPACITY,
            max_message: 64 << 10,
            max_subscribers: 16,
            slots: None,
            overwrite: false,
            mode: 0o600,
            strategy: WaitStrategy::SpinThenSleep,
            hot_window: None,
            trust: Trust::own_user(),
        }
    }
}

impl Options {
    /// Defaults.
    pub fn new() -> Options {
        Options::default()
    }
    /// Data area size in bytes.
    pub fn capacity(mut self, bytes: usize) -> Options {
        self.capacity = bytes;
        self
    }
    /// Largest message.
    pub fn max_message(mut self, bytes: usize) -> Options {
        self.max_message = bytes;
        self
    }
    /// Subscriber places.
    pub fn max_subscribers(mut self, n: u32) -> Options {
        self.max_subscribers = n;
        self
    }
    /// Work queue: message slots.
    pub fn slots(mut self, n: usize) -> Options {
        self.slots = Some(n);
        self
    }
    /// Overwrite the oldest messages instead of blocking (pub/sub with a missed count).
    pub fn overwrite(mut self, on: bool) -> Options {
        self.overwrite = on;
        self
    }
    /// Creation mode.
    pub fn mode(mut self, mode: u32) -> Options {
        self.mode = mode;
        self
    }
    /// Wait strategy.
    pub fn strategy(mut self, s: WaitStrategy) -> Options {
        self.strategy = s;
        self
    }
    /// Hot window of the publisher (0: off); see [`HOT_WINDOW`](super::HOT_WINDOW).
    pub fn hot_window(mut self, bytes: usize) -> Options {
        self.hot_window = Some(bytes);
        self
    }
    /// Whose existing segments are opened (see [`Options::trust`](Options#structfield.trust)).
    pub fn trust(mut self, trust: Trust) -> Options {
        self.trust = trust;
        self
    }

    pub(super) fn create(&self) -> Result<Create, RingError> {
        let max_msg =
            u32::try_from(self.max_message).map_err(|_| RingError::InvalidParameters {
                reason: "max_message must fit in 32 bits",
            })?;
        let need = record_size(u64::from(max_msg)) * 2;
        let capacity = (self.capacity as u64)
            .max(need)
            .max(64)
            .checked_next_power_of_two()
            .ok_or(RingError::InvalidParameters {
                reason: "capacity too large",
            })?;
        Ok(Create {
            pattern: PATTERN_PUBSUB,
            params: ipcx_ring::Params {
                capacity,
                max_msg,
                overwrite: self.overwrite,
            },
            participants: self.max_subscribers,
            mode: self.mode,
        })
    }
}

impl Options {
    /// Work-queue creation parameters: `slots` slots of `max_message` bytes (rounded up to 16).
    pub(super) fn create_work(&self) -> Result<Create, RingError> {
        let max_msg =
            u32::try_from(self.max_message).map_err(|_| RingError::InvalidParameters {
                reason: "max_message must fit in 32 bits",
            })?;
        let slot = slot_size(max_msg);
        let slots = match self.slots {
            Some(n) => n as u64,
            None => (self.capacity as u64 / slot).max(2),
        };
        let slots = slots.max(1).checked_next_power_of_two();
        let capacity = slots.and_then(|n| n.checked_mul(slot));
        let (Some(slots), Some(capacity)) = (slots, capacity) else {
            return Err(RingError::InvalidParameters {
                reason: "too many work-queue slots",
            });
        };
        if slots > MAX_SLOTS || capacity > 1 << 40 {
            return Err(RingError::InvalidParameters {
                reason: "work queue: at most 2^20 slots and 1 TiB of data",
            });
        }
        Ok(Create {
            pattern: PATTERN_WORK,
            params: ipcx_ring::Params {
                capacity,
                max_msg,
                overwrite: false,
            },
            participants: self.max_subscribers,
            mode: self.mode,
        })
    }
}
