//! The shared-memory slot rows: `raw-eventfd`, `raw-futex` and `limit` (a memfd with one
//! payload slot per direction, and a sequence word or an eventfd to wake the other side).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ipcx::wait::Wait;
use ipcx_bench::{HalfOpen, Link, LinkError, Mechanism, Pattern, Prepared, RowContext, Side};

use super::sys::{deadline_of, last_err, poll_in};
use crate::handoff::{Claim, Giving, Offer};

const PING_PONG_ONLY: &[Pattern] = &[Pattern::PingPong];

/// How long `limit` spins on the word before yielding the CPU between polls: long enough for
/// any answer from another CPU, short enough that a peer sharing this CPU (unpinned runs) gets
/// to answer soon.
const SPIN: Duration = Duration::from_micros(10);

/// Offsets in the shared mapping: a 128-byte line per direction for the sequence word, then
/// one payload slot per direction.
const WORD: [usize; 2] = [0, 128];
const DATA: usize = 256;

/// A shared mapping of a memfd (both processes map the same file).
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; the pointer is only dereferenced through
// atomics (the words) and by the single thread that owns the link (the slots), whichever
// thread that is.
unsafe impl Send for Mapping {}

impl Mapping {
    fn len_for(payload: usize) -> usize {
        let slot = payload.next_multiple_of(128);
        DATA + 2 * slot
    }

    fn new_memfd(len: usize) -> Result<OwnedFd, LinkError> {
        let name = c"ipcx-peers-slot";
        // SAFETY: `name` is NUL-terminated.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(last_err().into());
        }
        // SAFETY: memfd_create returned a new descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: the fd is open.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
            return Err(last_err().into());
        }
        Ok(fd)
    }

    fn map(fd: &OwnedFd, len: usize) -> Result<Mapping, LinkError> {
        // SAFETY: a fresh shared mapping of an open file of at least `len` bytes; nothing else
        // in this process refers to the address range it returns.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(last_err().into());
        }
        Ok(Mapping { ptr: p.cast(), len })
    }

    fn word(&self, dir: usize) -> &AtomicU32 {
        // SAFETY: WORD[dir] + 4 <= DATA <= len, the offset is 4-aligned in a page-aligned
        // mapping, and the word is only accessed atomically by both processes.
        unsafe { &*(self.ptr.add(WORD[dir]).cast::<AtomicU32>()) }
    }

    fn slot(&self, dir: usize, payload: usize) -> *mut u8 {
        let slot = payload.next_multiple_of(128);
        debug_assert!(DATA + (dir + 1) * slot <= self.len);
        // SAFETY: in bounds (see len_for).
        unsafe { self.ptr.add(DATA + dir * slot) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned; no reference into it outlives self.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// How a slot link waits for and announces a message.
enum Signal {
    /// Busy-poll the word (yielding the CPU after a while): `limit`.
    Spin,
    /// FUTEX_WAIT / FUTEX_WAKE on the word.
    Futex,
    /// An eventfd per direction: `tx` is written, `rx` polled and read.
    Eventfd { tx: OwnedFd, rx: OwnedFd },
}

/// One payload slot per direction, the receiver watching the direction's sequence word.
struct SlotLink {
    map: Mapping,
    /// 0 for the parent (sends on a2b = 0, receives on b2a = 1), 1 for the peer.
    me: usize,
    payload: usize,
    seen: u32,
    signal: Signal,
}

fn futex(word: &AtomicU32, op: i32, val: u32, timeout: Option<&libc::timespec>) -> isize {
    let ts = timeout.map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned u32 in a shared mapping (so no FUTEX_PRIVATE_FLAG);
    // the timeout is null or a valid relative timespec.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), op, val, ts, 0usize, 0u32) as isize }
}

impl SlotLink {
    fn tx_dir(&self) -> usize {
        self.me
    }
    fn rx_dir(&self) -> usize {
        1 - self.me
    }
}

impl Link for SlotLink {
    fn send(&mut self, msg: &[u8], _wait: Wait) -> Result<(), LinkError> {
        if msg.len() != self.payload {
            return Err(LinkError::TooLarge(format!(
                "the slot holds {} bytes, not {}",
                self.payload,
                msg.len()
            )));
        }
        let d = self.tx_dir();
        // SAFETY: the slot has room for `payload` bytes and the receiver reads it only after
        // the Release increment below (ping-pong: it never reads while we write).
        unsafe {
            std::ptr::copy_nonoverlapping(msg.as_ptr(), self.map.slot(d, self.payload), msg.len())
        };
        let w = self.map.word(d);
        w.fetch_add(1, Ordering::Release);
        match &self.signal {
            Signal::Spin => {}
            Signal::Futex => {
                if futex(w, libc::FUTEX_WAKE, 1, None) < 0 {
                    return Err(last_err().into());
                }
            }
            Signal::Eventfd { tx, .. } => {
                let one: u64 = 1;
                // SAFETY: writes 8 bytes from a live u64 to an open eventfd.
                let r = unsafe { libc::write(tx.as_raw_fd(), (&one as *const u64).cast(), 8) };
                if r != 8 {
                    return Err(last_err().into());
                }
            }
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        let d = self.rx_dir();
        let deadline = deadline_of(wait);
        let mut spins: u32 = 0;
        let start = Instant::now();
        loop {
            let now = self.map.word(d).load(Ordering::Acquire);
            if now != self.seen {
                self.seen = now;
                buf.resize(self.payload, 0);
                // SAFETY: the slot holds `payload` bytes written before the Acquire-observed
                // increment; the sender does not write it again until we answer.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        self.map.slot(d, self.payload),
                        buf.as_mut_ptr(),
                        self.payload,
                    )
                };
                return Ok(());
            }
            match &self.signal {
                Signal::Spin => {
                    spins = spins.wrapping_add(1);
                    if spins.is_multiple_of(1024) {
                        let t = Instant::now();
                        if deadline.is_some_and(|dl| t >= dl) {
                            return Err(LinkError::Timeout);
                        }
                        // Spin for a while, then let the other process have this CPU if it
                        // needs it (unpinned runs on two CPUs).
                        if t - start > SPIN {
                            std::thread::yield_now();
                        }
                    } else {
                        std::hint::spin_loop();
                    }
                }
                Signal::Futex => {
                    let left = deadline.map(|dl| dl.saturating_duration_since(Instant::now()));
                    if left == Some(Duration::ZERO) {
                        return Err(LinkError::Timeout);
                    }
                    let ts = left.map(|l| libc::timespec {
                        tv_sec: l.as_secs() as _,
                        tv_nsec: l.subsec_nanos() as _,
                    });
                    if futex(self.map.word(d), libc::FUTEX_WAIT, self.seen, ts.as_ref()) < 0 {
                        let e = last_err();
                        match e.raw_os_error() {
                            Some(libc::EAGAIN) | Some(libc::EINTR) => {}
                            Some(libc::ETIMEDOUT) => return Err(LinkError::Timeout),
                            _ => return Err(e.into()),
                        }
                    }
                }
                Signal::Eventfd { rx, .. } => {
                    if !poll_in(rx.as_raw_fd(), deadline)? {
                        return Err(LinkError::Timeout);
                    }
                    let mut v: u64 = 0;
                    // SAFETY: reads 8 bytes into a live u64 from an open eventfd.
                    let r = unsafe { libc::read(rx.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
                    if r != 8 {
                        let e = last_err();
                        if !matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) {
                            return Err(e.into());
                        }
                    }
                }
            }
        }
    }

    fn max_payload(&self) -> Option<usize> {
        Some(self.payload)
    }
}

/// Which wake-up a slot row uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    /// `limit`: busy-polling, no kernel.
    Spin,
    /// `raw-futex`.
    Futex,
    /// `raw-eventfd`.
    Eventfd,
}

/// A row over a shared memfd with one slot per direction.
#[derive(Debug)]
pub struct RawSlots(pub SlotKind);

struct SlotParent(
    Giving<(Mapping, Option<(OwnedFd, OwnedFd)>)>,
    SlotKind,
    usize,
);
struct SlotPeer(Claim, SlotKind, usize);

fn eventfd() -> Result<OwnedFd, LinkError> {
    // SAFETY: eventfd has no memory preconditions.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(last_err().into());
    }
    // SAFETY: a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn make_signal(kind: SlotKind, fds: Option<(OwnedFd, OwnedFd)>) -> Signal {
    match (kind, fds) {
        (SlotKind::Eventfd, Some((tx, rx))) => Signal::Eventfd { tx, rx },
        (SlotKind::Futex, _) => Signal::Futex,
        _ => Signal::Spin,
    }
}

impl Mechanism for RawSlots {
    fn name(&self) -> &str {
        match self.0 {
            SlotKind::Spin => "limit",
            SlotKind::Futex => "raw-futex",
            SlotKind::Eventfd => "raw-eventfd",
        }
    }
    fn description(&self) -> &str {
        match self.0 {
            SlotKind::Spin => {
                "cache-line ping-pong: the payload copied through shared memory, both sides \
                 busy-polling a sequence word (the physical floor)"
            }
            SlotKind::Futex => {
                "bare libc: payload in a shared slot, FUTEX_WAIT / FUTEX_WAKE on a sequence word"
            }
            SlotKind::Eventfd => {
                "bare libc: payload in a shared slot, one eventfd per direction (poll + read)"
            }
        }
    }
    fn patterns(&self) -> &[Pattern] {
        PING_PONG_ONLY
    }
    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        Ok(Prepared::new(ctx.socket_path(self.name())))
    }
    fn open(&self, spec: &str, side: Side, payload: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        match side {
            Side::Parent => {
                let offer = Offer::bind(spec.as_ref())?;
                let len = Mapping::len_for(payload);
                let memfd = Mapping::new_memfd(len)?;
                let map = Mapping::map(&memfd, len)?;
                let mut give = vec![memfd];
                let mut efds = None;
                if self.0 == SlotKind::Eventfd {
                    let (a2b, b2a) = (eventfd()?, eventfd()?);
                    give.push(a2b.try_clone()?);
                    give.push(b2a.try_clone()?);
                    efds = Some((a2b, b2a));
                }
                Ok(Box::new(SlotParent(
                    Giving {
                        offer,
                        give,
                        keep: (map, efds),
                    },
                    self.0,
                    payload,
                )))
            }
            Side::Peer => Ok(Box::new(SlotPeer(Claim::connect(spec)?, self.0, payload))),
        }
    }
}

impl HalfOpen for SlotParent {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let (map, efds) = self.0.hand_over(wait)?;
        Ok(Box::new(SlotLink {
            map,
            me: 0,
            payload: self.2,
            seen: 0,
            signal: make_signal(self.1, efds),
        }))
    }
}

impl HalfOpen for SlotPeer {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let n = if self.1 == SlotKind::Eventfd { 3 } else { 1 };
        let mut fds = self.0.take(n, wait)?.into_iter();
        let memfd = fds.next().expect("memfd");
        let map = Mapping::map(&memfd, Mapping::len_for(self.2))?;
        // The peer sends on b2a and receives on a2b.
        let efds = match (fds.next(), fds.next()) {
            (Some(a2b), Some(b2a)) => Some((b2a, a2b)),
            _ => None,
        };
        Ok(Box::new(SlotLink {
            map,
            me: 1,
            payload: self.2,
            seen: 0,
            signal: make_signal(self.1, efds),
        }))
    }
}
