//! A blocked call's wait, for room (senders) or for a message (receivers), with what every
//! such wait looks at while it sleeps: dead peers, a truncated segment, senders gone.

use ipcx_ring::{RingError as CoreError, WaitLine};

use super::RingError;
use super::segment::Segment;
use super::wait::{SpinPolicy, WaitStrategy, wait_until};
use crate::wait::Wait;

/// A sender's wait for room: `take()` is tried, as `wait` and `strategy` say, until it gives
/// something other than `None` (no room yet): what it took, or `err` of what the ring said.
/// Every [`TICK`] dead peers are reaped (freeing what they held back) and a truncated segment
/// ends the wait. A wait that ends without room is [`RingError::Full`] (`Wait::NoWait`) or what
/// ended it.
///
/// [`TICK`]: super::wait::TICK
pub(super) fn wait_for_room<T>(
    seg: &Segment,
    line: &WaitLine,
    strategy: WaitStrategy,
    spin: &mut SpinPolicy,
    wait: Wait,
    mut take: impl FnMut() -> Option<Result<T, CoreError>>,
    err: impl FnOnce(CoreError) -> RingError,
) -> Result<T, RingError> {
    let mut got = None;
    let r = wait_until(
        line,
        strategy,
        spin,
        false,
        wait,
        |_| {
            got = take();
            got.is_some()
        },
        || {
            seg.reap();
            seg.fault(true).map_or(Ok(()), Err)
        },
    );
    match (r, got) {
        (_, Some(Ok(v))) => Ok(v),
        (_, Some(Err(e))) => Err(err(e)),
        (Err(RingError::Timeout), None) if wait == Wait::NoWait => Err(RingError::Full),
        (Err(e), None) => Err(e),
        (Ok(()), None) => Err(RingError::Full),
    }
}

/// A receiver's wait for a message: until `ready` (as for [`wait_until`]), as `wait` and
/// `strategy` say. Every [`TICK`] dead peers are reaped, a truncated segment ends the wait,
/// and so does `gone()` (the reason no message will come: the senders left) once nothing is
/// left to read (`has_data()`). A wait that ends without a message is `gone()` or
/// [`RingError::Empty`] (`Wait::NoWait`), `gone()` or [`RingError::Timeout`] (a deadline), or what
/// ended it.
///
/// [`TICK`]: super::wait::TICK
#[allow(clippy::too_many_arguments)]
pub(super) fn wait_for_message(
    seg: &Segment,
    line: &WaitLine,
    strategy: WaitStrategy,
    spin: &mut SpinPolicy,
    spun: bool,
    wait: Wait,
    ready: impl FnMut(bool) -> bool,
    has_data: impl Fn() -> bool,
    gone: impl Fn() -> Option<RingError>,
) -> Result<(), RingError> {
    let ended = |e: Option<RingError>| e.filter(|_| !has_data());
    let r = wait_until(line, strategy, spin, spun, wait, ready, || {
        seg.reap();
        if let Some(e) = seg.fault(true) {
            return Err(e);
        }
        ended(gone()).map_or(Ok(()), Err)
    });
    match r {
        Err(RingError::Timeout) if wait == Wait::NoWait => Err(gone().unwrap_or(RingError::Empty)),
        Err(RingError::Timeout) => Err(ended(gone()).unwrap_or(RingError::Timeout)),
        r => r,
    }
}
