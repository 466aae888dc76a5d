//! The libc helpers every raw row uses: errors, deadlines and `poll`.

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use ipcx::wait::Wait;

/// How long one blocking call may last before the link reports a timeout (the harness then
/// checks Ctrl-C and the peer, and calls again).
pub(super) const SLICE: Duration = Duration::from_millis(100);

pub(super) fn last_err() -> io::Error {
    io::Error::last_os_error()
}

pub(super) fn ms_until(deadline: Instant) -> i32 {
    let left = deadline.saturating_duration_since(Instant::now());
    left.as_millis().min(i32::MAX as u128) as i32
}

pub(super) fn deadline_of(wait: Wait) -> Option<Instant> {
    match wait {
        Wait::Until(d) => Some(d),
        Wait::NoWait => Some(Instant::now()),
        _ => None,
    }
}

/// `poll(2)` for readability until `deadline`: `Ok(false)` on timeout.
pub(super) fn poll_in(fd: RawFd, deadline: Option<Instant>) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = deadline.map_or(-1, ms_until);
    // SAFETY: `p` is one valid pollfd for the duration of the call.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    match r {
        r if r > 0 => Ok(true),
        0 => Ok(false),
        _ => {
            let e = last_err();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}
