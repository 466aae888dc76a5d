//! `epoll(7)` and `timerfd_create(2)`: what a wait set is built on.
//!
//! # References
//! [epoll(7)](https://man7.org/linux/man-pages/man7/epoll.7.html),
//! [timerfd_create(2)](https://man7.org/linux/man-pages/man2/timerfd_create.2.html).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use rustix::event::Timespec;
use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags};

/// What one descriptor reported to [`wait`]: its token, and whether it is readable or hung up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fired {
    /// The token given to [`add`].
    pub(crate) token: u64,
    /// `EPOLLIN`.
    pub(crate) readable: bool,
    /// `EPOLLHUP`, `EPOLLRDHUP` or `EPOLLERR`.
    pub(crate) hangup: bool,
}

/// `epoll_create1(EPOLL_CLOEXEC)`.
pub(crate) fn create() -> io::Result<OwnedFd> {
    Ok(epoll::create(CreateFlags::CLOEXEC)?)
}

/// Watches `fd` for readability (level-triggered) under `token`.
pub(crate) fn add(ep: impl AsFd, fd: impl AsFd, token: u64) -> io::Result<()> {
    Ok(epoll::add(
        ep,
        fd,
        EventData::new_u64(token),
        EventFlags::IN | EventFlags::RDHUP,
    )?)
}

/// Watches `fd` for readability (`on`) or for nothing (`!on`: a descriptor kept registered but
/// muted; hang-ups are still reported).
pub(crate) fn set_interest(ep: impl AsFd, fd: impl AsFd, token: u64, on: bool) -> io::Result<()> {
    let flags = if on {
        EventFlags::IN | EventFlags::RDHUP
    } else {
        EventFlags::empty()
    };
    Ok(epoll::modify(ep, fd, EventData::new_u64(token), flags)?)
}

/// Stops watching `fd`.
pub(crate) fn delete(ep: impl AsFd, fd: impl AsFd) -> io::Result<()> {
    Ok(epoll::delete(ep, fd)?)
}

/// `epoll_wait` for at most `timeout_ms` milliseconds (`< 0`: forever), up to `max` events.
/// An interrupted wait (`EINTR`) reports nothing, like a timeout.
pub(crate) fn wait(ep: impl AsFd, max: usize, timeout_ms: i32) -> io::Result<Vec<Fired>> {
    let ts = (timeout_ms >= 0).then(|| Timespec {
        tv_sec: i64::from(timeout_ms / 1000),
        tv_nsec: i64::from(timeout_ms % 1000) * 1_000_000,
    });
    let mut events: Vec<Event> = Vec::with_capacity(max.max(1));
    match epoll::wait(ep, rustix::buffer::spare_capacity(&mut events), ts.as_ref()) {
        Ok(_) => {}
        Err(rustix::io::Errno::INTR) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    }
    Ok(events
        .iter()
        .map(|e| {
            let flags = e.flags;
            Fired {
                token: e.data.u64(),
                readable: flags.contains(EventFlags::IN),
                hangup: flags.intersects(EventFlags::HUP | EventFlags::RDHUP | EventFlags::ERR),
            }
        })
        .collect())
}

/// A non-blocking, close-on-exec `CLOCK_MONOTONIC` timer descriptor, disarmed.
pub(crate) fn timer() -> io::Result<OwnedFd> {
    Ok(rustix::time::timerfd_create(
        TimerfdClockId::Monotonic,
        TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK,
    )?)
}

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// Arms `timer` to fire `first` from now (at least one nanosecond: zero would disarm it), then
/// every `every` (`None`: once).
pub(crate) fn set_timer(
    timer: impl AsFd,
    first: Duration,
    every: Option<Duration>,
) -> io::Result<()> {
    let spec = Itimerspec {
        it_value: timespec(first.max(Duration::from_nanos(1))),
        it_interval: timespec(every.unwrap_or(Duration::ZERO)),
    };
    rustix::time::timerfd_settime(timer, TimerfdTimerFlags::empty(), &spec)?;
    Ok(())
}

/// Reads a timer's expiry count, clearing it: 0 when it has not fired since the last read.
pub(crate) fn timer_expirations(timer: impl AsFd) -> io::Result<u64> {
    let mut buf = [0u8; 8];
    match crate::sys::retry_eintr(|| Ok(rustix::io::read(&timer, &mut buf)?)) {
        Ok(8) => Ok(u64::from_ne_bytes(buf)),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "short read from timerfd",
        )),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
        Err(e) => Err(e),
    }
}
