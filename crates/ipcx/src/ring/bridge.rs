//! The ring's futex-to-fd wake-up: a helper thread that sleeps on a ring's futex for one
//! receiver and signals a local eventfd, for an async receiver ([`Bridge`], the eventfd
//! registered with tokio) or a [`WaitSet`](crate::wait_set::WaitSet) ([`FdWake`]).
//!
//! A futex cannot be polled, and an eventfd cannot be shared through the segment (fds belong
//! to a process), so each such receiver gets one helper thread. The thread is parked on a
//! condition variable while nobody waits; when its owner waits ("arms" it), the thread sleeps
//! on the futex like a blocking receiver (so senders wake it only when it announced that it
//! sleeps), re-checks every [`TICK`] (reaping dead peers), and writes the eventfd once the
//! receiver has something to do; it then disarms itself until the next wait.
//!
//! [`TICK`]: super::wait::TICK

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};

use ipcx_ring::WaitLine;

#[cfg(feature = "tokio")]
use super::RingError;
#[cfg(feature = "tokio")]
use super::hot::waiting_for_a_message;
use super::segment::Segment;
use super::wait::TICK;
use crate::poison;
use crate::sync::futex::wait_on;
use crate::sys::eventfd;
use crate::wait::Wait;

/// Which futex line to sleep on (`None`: the segment is not what the receiver expects).
pub(crate) type LineFn = fn(&Segment) -> Option<&WaitLine>;

#[derive(Debug, Default)]
struct Flags {
    armed: bool,
    stop: bool,
}

#[derive(Debug, Default)]
struct Shared {
    flags: Mutex<Flags>,
    cv: Condvar,
}

/// Starts the helper thread over `seg`, signalling a new eventfd; returns the eventfd and
/// what arms and stops the thread. `ready` says whether the receiver has something to do (a
/// message, or a reason to fail).
fn start_thread(
    seg: Arc<Segment>,
    line: LineFn,
    ready: impl Fn(&Segment) -> bool + Send + 'static,
) -> std::io::Result<(OwnedFd, Arc<Shared>)> {
    let efd = eventfd::eventfd(0, false)?;
    let tfd = efd.try_clone()?;
    let shared = Arc::new(Shared::default());
    let sh = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("ipcx-ring-wake".into())
        .spawn(move || run(&seg, line, ready, &sh, &tfd))?;
    Ok((efd, shared))
}

impl Shared {
    /// Asks the thread to watch the futex until the receiver has something to do.
    fn arm(&self) {
        let mut f = poison::lock(&self.flags);
        f.armed = true;
        self.cv.notify_one();
    }

    /// Ends the thread.
    fn stop(&self) {
        let mut f = poison::lock(&self.flags);
        f.stop = true;
        self.cv.notify_one();
    }
}

/// The wait-set side of the helper thread: an eventfd that becomes readable when the receiver
/// has something to do, after [`FdWake::arm`]. Dropping it ends the thread.
#[derive(Debug)]
pub(crate) struct FdWake {
    efd: OwnedFd,
    shared: Arc<Shared>,
    seg: Arc<Segment>,
}

impl FdWake {
    /// Starts the helper thread (see [`start_thread`]).
    pub(crate) fn start(
        seg: Arc<Segment>,
        line: LineFn,
        ready: impl Fn(&Segment) -> bool + Send + 'static,
    ) -> std::io::Result<FdWake> {
        let (efd, shared) = start_thread(Arc::clone(&seg), line, ready)?;
        Ok(FdWake { efd, shared, seg })
    }

    /// Before a wait: clears the eventfd, then says whether `ready` holds now (nothing to
    /// wait for) or arms the thread, which writes the eventfd once it does. A wake-up the
    /// thread signalled for a message received since costs one empty wait, never a lost one.
    pub(crate) fn arm(&self, ready: impl Fn(&Segment) -> bool) -> bool {
        let _ = eventfd::read(&self.efd);
        if ready(&self.seg) || self.seg.fault(false).is_some() {
            return true;
        }
        self.shared.arm();
        false
    }
}

impl FdWake {
    /// Ends the thread (its owner leaves; a wait set may still hold this until detached).
    pub(crate) fn stop(&self) {
        self.shared.stop();
    }
}

impl AsFd for FdWake {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.efd.as_fd()
    }
}

impl Drop for FdWake {
    fn drop(&mut self) {
        self.shared.stop();
    }
}

/// The async side of the helper thread.
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub(crate) struct Bridge {
    afd: tokio::io::unix::AsyncFd<OwnedFd>,
    shared: Arc<Shared>,
}

#[cfg(feature = "tokio")]
impl Bridge {
    /// Starts the helper thread. `ready` says whether the receiver has something to do (a
    /// message, or a reason to fail).
    fn start(
        seg: Arc<Segment>,
        line: LineFn,
        ready: impl Fn(&Segment) -> bool + Send + 'static,
    ) -> std::io::Result<Bridge> {
        let (efd, shared) = start_thread(seg, line, ready)?;
        let afd = crate::sys::signal::register_async(efd)?;
        Ok(Bridge { afd, shared })
    }

    /// Waits (asynchronously) until the receiver of `seg` may have something to do, with the
    /// bridge in `slot`, started on first use (`ready` makes its `ready` test, as for
    /// [`Bridge::start`]). Errors name the segment.
    pub(crate) async fn wait_in<R>(
        slot: &mut Option<Bridge>,
        seg: &Arc<Segment>,
        line: LineFn,
        ready: impl FnOnce() -> R,
    ) -> Result<(), RingError>
    where
        R: Fn(&Segment) -> bool + Send + 'static,
    {
        let io = |source| RingError::Io {
            name: seg.name.to_string(),
            source,
        };
        let b = match slot {
            Some(b) => b,
            None => slot.insert(Bridge::start(Arc::clone(seg), line, ready()).map_err(io)?),
        };
        waiting_for_a_message();
        b.wait().await.map_err(io)
    }

    /// Waits (asynchronously) until the receiver may have something to do.
    async fn wait(&self) -> std::io::Result<()> {
        self.shared.arm();
        let mut g = self.afd.readable().await?;
        let _ = eventfd::read(self.afd.get_ref());
        g.clear_ready();
        Ok(())
    }
}

#[cfg(feature = "tokio")]
impl Drop for Bridge {
    fn drop(&mut self) {
        self.shared.stop();
    }
}

fn run(seg: &Segment, line: LineFn, ready: impl Fn(&Segment) -> bool, sh: &Shared, efd: &OwnedFd) {
    loop {
        {
            let mut f = poison::lock(&sh.flags);
            while !f.armed && !f.stop {
                f = poison::wait(&sh.cv, f, Wait::Forever).0;
            }
            if f.stop {
                return;
            }
        }
        let Some(line) = line(seg) else {
            return;
        };
        loop {
            if poison::lock(&sh.flags).stop {
                return;
            }
            // A truncated segment wakes the task too: it reports the error.
            if ready(seg) || seg.fault(false).is_some() {
                break;
            }
            line.sleepers.fetch_add(1, Ordering::SeqCst);
            let seq = line.seq.load(Ordering::SeqCst);
            if ready(seg) {
                line.sleepers.fetch_sub(1, Ordering::SeqCst);
                break;
            }
            let woken = wait_on(&line.seq, seq, Wait::timeout(TICK));
            line.sleepers.fetch_sub(1, Ordering::SeqCst);
            if woken.is_err() {
                // A tick without news: look for dead peers (their slots, their messages), and
                // for a file truncated under the mapping.
                seg.reap();
                if seg.fault(true).is_some() {
                    break;
                }
            }
        }
        poison::lock(&sh.flags).armed = false;
        let _ = eventfd::write(efd, 1);
    }
}
