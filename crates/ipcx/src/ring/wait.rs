//! How a blocked ring call waits: spinning, yielding, then sleeping on a futex word in the
//! segment, with a look for dead peers every [`TICK`].

use std::sync::atomic::{Ordering, fence};
use std::time::Duration;

use ipcx_ring::WaitLine;

use super::RingError;
use crate::sync::futex::{FutexError, wait_on, wake_on};
use crate::wait::Wait;

/// How a blocked call waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WaitStrategy {
    /// Busy-poll (with an occasional `sched_yield`): lowest latency, one CPU busy.
    Spin,
    /// Spin briefly, yield a few times, then sleep on a futex (default).
    #[default]
    SpinThenSleep,
    /// Sleep on a futex at once.
    Block,
}

/// How long a receiver spins before yielding the CPU (bounded by time, not iterations: on a
/// machine with few cores the peer it waits for may need this very CPU), yields before
/// sleeping, and how often a sleeper wakes up to look for dead peers.
pub(super) const SPIN_FOR: Duration = Duration::from_micros(5);
pub(super) const YIELDS: u32 = 8;
pub(super) const TICK: Duration = Duration::from_millis(20);

/// Waits until `ready(quick)` is true, as `wait` and `strategy` say. While spinning it is
/// called with `quick = true`: it may then look at less (one cache line) as long as it never
/// says true wrongly. `tick()` runs every [`TICK`] while waiting (liveness checks) and may end
/// the wait with an error. `spun`: the caller has just spun (and nothing came), so the spin
/// phase is skipped.
#[allow(clippy::too_many_arguments)]
pub(super) fn wait_until(
    line: &WaitLine,
    strategy: WaitStrategy,
    policy: &mut SpinPolicy,
    spun: bool,
    wait: Wait,
    mut ready: impl FnMut(bool) -> bool,
    mut tick: impl FnMut() -> Result<(), RingError>,
) -> Result<(), RingError> {
    if ready(false) {
        return Ok(());
    }
    if wait == Wait::NoWait {
        return Err(RingError::Timeout);
    }
    if strategy != WaitStrategy::Block {
        let already = spun;
        let spun = already || policy.should_spin(strategy);
        if spun && !already && spin(&mut ready) {
            policy.spin_worked();
            return Ok(());
        }
        for n in 0..YIELDS {
            std::thread::yield_now();
            if ready(false) {
                if spun && n == 0 {
                    // Nothing came while we spun, and it came as soon as we let go of the
                    // CPU: the peer needs this CPU. Spinning only delays it.
                    policy.spin_failed();
                }
                return Ok(());
            }
        }
    }
    let mut last_tick = std::time::Instant::now();
    loop {
        if wait.expired() {
            return Err(RingError::Timeout);
        }
        if last_tick.elapsed() >= TICK {
            tick()?;
            last_tick = std::time::Instant::now();
        }
        if strategy == WaitStrategy::Spin {
            if spin(&mut ready) {
                return Ok(());
            }
            std::thread::yield_now();
            if ready(false) {
                return Ok(());
            }
            continue;
        }
        line.sleepers.fetch_add(1, Ordering::SeqCst);
        let seq = line.seq.load(Ordering::SeqCst);
        if ready(false) {
            line.sleepers.fetch_sub(1, Ordering::SeqCst);
            return Ok(());
        }
        let until = match wait.remaining() {
            Some(r) if r < TICK => wait,
            _ => Wait::timeout(TICK),
        };
        let r = wait_on(&line.seq, seq, until);
        line.sleepers.fetch_sub(1, Ordering::SeqCst);
        match r {
            Ok(_) | Err(FutexError::Timeout) | Err(FutexError::WouldBlock) => {}
            Err(FutexError::Io(source)) => {
                // A futex word whose page was truncated away faults (EFAULT): the liveness
                // check names that.
                tick()?;
                return Err(RingError::Io {
                    name: String::new(),
                    source,
                });
            }
        }
        if ready(false) {
            return Ok(());
        }
    }
}

/// Whether a waiter spins before yielding. A waiter whose spin phase keeps failing while the
/// peer answers as soon as it yields shares a CPU with that peer (or the machine is
/// oversubscribed): it then yields at once, and tries spinning again every so often. One
/// failure proves little (an interrupt or a preemption can hold up a peer on another CPU), so
/// it changes nothing; from the second failure in a row the waits skipped double, from 2 to
/// [`SpinPolicy::BACKOFF`], and a spin that works starts over.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SpinPolicy {
    /// Waits left before spinning is tried again.
    skip: u32,
    /// Waits skipped after the last failure (0: the last spin worked; 1: one failure).
    backoff: u32,
}

impl SpinPolicy {
    /// The most waits that yield at once after spin phases proved useless.
    const BACKOFF: u32 = 256;

    pub(super) fn should_spin(&mut self, strategy: WaitStrategy) -> bool {
        if strategy == WaitStrategy::Spin || self.skip == 0 {
            return true;
        }
        self.skip -= 1;
        false
    }
    /// Whether a waiter spins now (like `should_spin`, without counting a skipped wait).
    pub(super) fn may_poll(&self, strategy: WaitStrategy) -> bool {
        strategy == WaitStrategy::Spin
            || (strategy == WaitStrategy::SpinThenSleep && self.skip == 0)
    }
    pub(super) fn spin_worked(&mut self) {
        self.skip = 0;
        self.backoff = 0;
    }
    pub(super) fn spin_failed(&mut self) {
        if self.backoff == 0 {
            self.backoff = 1;
            return;
        }
        self.backoff = (self.backoff * 2).clamp(2, Self::BACKOFF);
        self.skip = self.backoff;
    }
}

/// Busy-polls `ready(true)` for [`SPIN_FOR`]; returns whether it became true.
pub(super) fn spin(ready: &mut impl FnMut(bool) -> bool) -> bool {
    let mut start = None;
    loop {
        for _ in 0..64 {
            if ready(true) {
                return true;
            }
            std::hint::spin_loop();
        }
        // The clock is read after the first polls: a quick answer costs no clock read.
        let now = std::time::Instant::now();
        if now.duration_since(*start.get_or_insert(now)) >= SPIN_FOR {
            return false;
        }
    }
}

/// Wakes the sleepers of `line`, if any (no system call otherwise).
#[inline]
pub(crate) fn notify(line: &WaitLine) {
    // Pairs with the sleeper's SeqCst increment then re-check: either it sees our update, or
    // we see it counted.
    fence(Ordering::SeqCst);
    if line.sleepers.load(Ordering::Relaxed) > 0 {
        line.seq.fetch_add(1, Ordering::SeqCst);
        let _ = wake_on(&line.seq, i32::MAX as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::{SpinPolicy, WaitStrategy};

    fn skipped(p: &mut SpinPolicy) -> u32 {
        let mut n = 0;
        while !p.should_spin(WaitStrategy::SpinThenSleep) {
            n += 1;
        }
        n
    }

    /// One failed spin costs nothing; failures in a row back off exponentially up to the cap;
    /// a spin that works starts over; a spinning strategy always spins.
    #[test]
    fn spin_backoff_doubles_and_resets() {
        let mut p = SpinPolicy::default();
        assert!(p.may_poll(WaitStrategy::SpinThenSleep));
        let mut seen = Vec::new();
        for _ in 0..10 {
            p.spin_failed();
            assert!(p.may_poll(WaitStrategy::Spin));
            seen.push(skipped(&mut p));
        }
        assert_eq!(seen, [0, 2, 4, 8, 16, 32, 64, 128, 256, 256]);
        p.spin_worked();
        p.spin_failed();
        assert_eq!(skipped(&mut p), 0);
        p.spin_failed();
        assert!(!p.may_poll(WaitStrategy::SpinThenSleep));
        assert_eq!(skipped(&mut p), 2);
        assert!(!p.may_poll(WaitStrategy::Block));
    }
}
