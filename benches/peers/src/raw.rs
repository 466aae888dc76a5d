//! `raw-*` rows: the same ping-pong as ipcx's classic rows, done with bare libc calls, so that
//! the cost of ipcx's wrappers is a measured ratio (`--rounds`). `limit` lives here too when
//! the harness has no implementation of its own: it is bare shared memory by definition.
//!
//! What each row does per message (the fast path, after setup):
//!
//! | row | send | receive |
//! |---|---|---|
//! | `raw-pipe` | one `writev` (4-byte length + payload) | `poll` + one `read` into a buffer |
//! | `raw-unix` | one `writev` | one blocking `read` (`SO_RCVTIMEO` bounds it) |
//! | `raw-mq` | one `mq_timedsend` | one `mq_timedreceive` |
//! | `raw-eventfd` | `memcpy` into a shared slot + `write(efd, 1)` | `poll` + `read(efd)` + `memcpy` out |
//! | `raw-futex` | `memcpy` + atomic increment + `FUTEX_WAKE` | `FUTEX_WAIT` while the word is unchanged + `memcpy` out |
//! | `limit` | `memcpy` + atomic increment | spin on the word (yield after a while) + `memcpy` out |
//!
//! Every `unsafe` block here calls libc on descriptors and mappings this module owns.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ipcx::wait::Wait;
use ipcx_bench::{HalfOpen, Link, LinkError, Mechanism, Pattern, Prepared, RowContext, Side};

use crate::handoff::{Claim, Giving, Offer, PipePair};

/// How long one blocking call may last before the link reports a timeout (the harness then
/// checks Ctrl-C and the peer, and calls again).
pub const SLICE: Duration = Duration::from_millis(100);

const PING_PONG_ONLY: &[Pattern] = &[Pattern::PingPong];

/// How long `limit` spins on the word before yielding the CPU between polls: long enough for
/// any answer from another CPU, short enough that a peer sharing this CPU (unpinned runs) gets
/// to answer soon.
const SPIN: Duration = Duration::from_micros(10);

fn last_err() -> io::Error {
    io::Error::last_os_error()
}

fn ms_until(deadline: Instant) -> i32 {
    let left = deadline.saturating_duration_since(Instant::now());
    left.as_millis().min(i32::MAX as u128) as i32
}

fn deadline_of(wait: Wait) -> Option<Instant> {
    match wait {
        Wait::Until(d) => Some(d),
        Wait::NoWait => Some(Instant::now()),
        _ => None,
    }
}

/// `poll(2)` for readability until `deadline`: `Ok(false)` on timeout.
fn poll_in(fd: RawFd, deadline: Option<Instant>) -> io::Result<bool> {
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

/// A length-prefixed message link over two byte-stream descriptors (pipes or one socket),
/// written with `writev` and read through a buffer, with no framing library in between.
struct RawStreamLink {
    tx: OwnedFd,
    rx: OwnedFd,
    /// Poll before reading (pipes: nothing else bounds a read); sockets rely on SO_RCVTIMEO.
    poll_first: bool,
    /// Bytes of the current outgoing message already written (header included).
    out_done: usize,
    inbuf: Vec<u8>,
    start: usize,
    end: usize,
}

impl RawStreamLink {
    fn new(tx: OwnedFd, rx: OwnedFd, poll_first: bool, payload: usize) -> RawStreamLink {
        RawStreamLink {
            tx,
            rx,
            poll_first,
            out_done: 0,
            inbuf: vec![0; (payload + 4).max(64 << 10)],
            start: 0,
            end: 0,
        }
    }

    /// A whole frame in the buffer, if there is one.
    fn frame(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let have = self.end - self.start;
        if have < 4 {
            return None;
        }
        let hdr: [u8; 4] = self.inbuf[self.start..self.start + 4].try_into().ok()?;
        let len = u32::from_le_bytes(hdr) as usize;
        if have < 4 + len {
            if self.inbuf.len() < 4 + len {
                // Make room for a frame larger than the buffer.
                self.inbuf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                self.inbuf.resize(4 + len, 0);
            }
            return None;
        }
        out.clear();
        out.extend_from_slice(&self.inbuf[self.start + 4..self.start + 4 + len]);
        self.start += 4 + len;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Some(())
    }
}

impl Link for RawStreamLink {
    fn send(&mut self, msg: &[u8], _wait: Wait) -> Result<(), LinkError> {
        let len = u32::try_from(msg.len())
            .map_err(|_| LinkError::TooLarge("frames carry at most 4 GiB".into()))?;
        let hdr = len.to_le_bytes();
        let total = 4 + msg.len();
        while self.out_done < total {
            let (h, m) = if self.out_done < 4 {
                (&hdr[self.out_done..], msg)
            } else {
                (&hdr[4..], &msg[self.out_done - 4..])
            };
            let iov = [
                libc::iovec {
                    iov_base: h.as_ptr() as *mut _,
                    iov_len: h.len(),
                },
                libc::iovec {
                    iov_base: m.as_ptr() as *mut _,
                    iov_len: m.len(),
                },
            ];
            // SAFETY: both iovecs point at live slices of the stated lengths (the kernel only
            // reads them); the fd is open.
            let r = unsafe { libc::writev(self.tx.as_raw_fd(), iov.as_ptr(), 2) };
            if r < 0 {
                let e = last_err();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    // SO_SNDTIMEO ran out: keep what was written, the harness calls again.
                    io::ErrorKind::WouldBlock => return Err(LinkError::Timeout),
                    _ => return Err(e.into()),
                }
            }
            self.out_done += r as usize;
        }
        self.out_done = 0;
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        loop {
            if self.frame(buf).is_some() {
                return Ok(());
            }
            if self.end == self.inbuf.len() {
                self.inbuf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.poll_first && !poll_in(self.rx.as_raw_fd(), deadline_of(wait))? {
                return Err(LinkError::Timeout);
            }
            let room = &mut self.inbuf[self.end..];
            // SAFETY: `room` is a live, writable buffer of `room.len()` bytes; the fd is open.
            let r =
                unsafe { libc::read(self.rx.as_raw_fd(), room.as_mut_ptr().cast(), room.len()) };
            match r {
                0 => return Err(LinkError::PeerGone("end of stream".into())),
                r if r > 0 => self.end += r as usize,
                _ => {
                    let e = last_err();
                    match e.kind() {
                        io::ErrorKind::Interrupted => return Err(LinkError::Timeout),
                        io::ErrorKind::WouldBlock => return Err(LinkError::Timeout),
                        _ => return Err(e.into()),
                    }
                }
            }
        }
    }
}

fn pipe2() -> Result<(OwnedFd, OwnedFd), LinkError> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(last_err().into());
    }
    // SAFETY: pipe2 succeeded: both descriptors are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

// ---------------------------------------------------------------------------------------
// raw-pipe

/// `raw-pipe`: two anonymous pipes, the peer's ends handed over with SCM_RIGHTS.
fn pipe_row() -> PipePair {
    PipePair {
        name: "raw-pipe",
        description: "bare libc: two anonymous pipes, writev of length + payload, poll + read",
        pipe: pipe2,
        link: |tx, rx, payload| Box::new(RawStreamLink::new(tx, rx, true, payload)),
    }
}

// ---------------------------------------------------------------------------------------
// raw-unix

/// One Unix stream connection (both directions), framed by hand.
#[derive(Debug, Default)]
pub struct RawUnix;

enum UnixHalf {
    Listening(UnixListener, PathBuf, usize),
    Connecting(PathBuf, usize),
}

impl Mechanism for RawUnix {
    fn name(&self) -> &str {
        "raw-unix"
    }
    fn description(&self) -> &str {
        "bare libc: one Unix stream connection, writev of length + payload, read (SO_RCVTIMEO)"
    }
    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        Ok(Prepared::new(ctx.socket_path("raw-unix")))
    }
    fn open(&self, spec: &str, side: Side, payload: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        let path = PathBuf::from(spec);
        Ok(Box::new(match side {
            Side::Parent => {
                let l = UnixListener::bind(&path)
                    .map_err(|e| LinkError::Failed(format!("binding {spec}: {e}")))?;
                l.set_nonblocking(true)?;
                UnixHalf::Listening(l, path, payload)
            }
            Side::Peer => UnixHalf::Connecting(path, payload),
        }))
    }
}

impl HalfOpen for UnixHalf {
    fn connect(self: Box<Self>, wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        let deadline = deadline_of(wait).unwrap_or_else(|| Instant::now() + SLICE * 100);
        let (s, payload) = match *self {
            UnixHalf::Listening(l, path, payload) => {
                let s = loop {
                    match l.accept() {
                        Ok((s, _)) => break s,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            if Instant::now() >= deadline {
                                return Err(LinkError::Failed("the peer never connected".into()));
                            }
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Err(e) => return Err(e.into()),
                    }
                };
                let _ = std::fs::remove_file(path);
                s.set_nonblocking(false)?;
                (s, payload)
            }
            UnixHalf::Connecting(path, payload) => loop {
                match UnixStream::connect(&path) {
                    Ok(s) => break (s, payload),
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(1))
                    }
                    Err(e) => return Err(LinkError::Failed(format!("connecting: {e}"))),
                }
            },
        };
        s.set_read_timeout(Some(SLICE))?;
        s.set_write_timeout(Some(SLICE))?;
        let fd = OwnedFd::from(s);
        let rx = fd.try_clone()?;
        Ok(Box::new(RawStreamLink::new(fd, rx, false, payload)))
    }
}

// ---------------------------------------------------------------------------------------
// raw-mq

/// Two POSIX message queues created by the parent (which unlinks them), one message per
/// payload, `mq_timedsend`/`mq_timedreceive`.
#[derive(Debug, Default)]
pub struct RawMq;

fn read_proc(path: &str) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Removes the row's queues when the row ends.
struct Unlink(Vec<CString>);

impl Drop for Unlink {
    fn drop(&mut self) {
        for n in &self.0 {
            // SAFETY: `n` is a valid NUL-terminated name.
            unsafe { libc::mq_unlink(n.as_ptr()) };
        }
    }
}

struct Mqd(libc::mqd_t);

impl Drop for Mqd {
    fn drop(&mut self) {
        // SAFETY: the descriptor is open and owned by this value.
        unsafe { libc::mq_close(self.0) };
    }
}

fn mq_open(name: &CString, flags: i32, attr: Option<&libc::mq_attr>) -> io::Result<Mqd> {
    let attr_ptr = attr.map_or(std::ptr::null(), |a| a as *const libc::mq_attr);
    // SAFETY: `name` is NUL-terminated; the mode and attr arguments are read only with O_CREAT,
    // and attr is either null or a valid mq_attr.
    let q = unsafe {
        libc::mq_open(
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            0o600 as libc::mode_t,
            attr_ptr,
        )
    };
    if q == -1 as libc::mqd_t {
        Err(last_err())
    } else {
        Ok(Mqd(q))
    }
}

fn raise_mq_rlimit(bytes: u64) {
    let want = bytes + (1 << 20);
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `cur` is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_MSGQUEUE, &mut cur) } != 0 {
        return;
    }
    if cur.rlim_cur == libc::RLIM_INFINITY || cur.rlim_cur >= want {
        return;
    }
    let hard = if is_root() {
        cur.rlim_max.max(want)
    } else {
        cur.rlim_max
    };
    let new = libc::rlimit {
        rlim_cur: want.min(hard),
        rlim_max: hard,
    };
    // SAFETY: `new` is a valid rlimit; failure is harmless (the queue creation says why).
    unsafe { libc::setrlimit(libc::RLIMIT_MSGQUEUE, &new) };
}

fn timespec_at(deadline: Option<Instant>) -> libc::timespec {
    let left = deadline.map_or(Duration::from_secs(3600), |d| {
        d.saturating_duration_since(Instant::now())
    });
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    let mut ns = now.tv_nsec + i64::from(left.subsec_nanos());
    let mut s = now.tv_sec + left.as_secs() as i64;
    if ns >= 1_000_000_000 {
        ns -= 1_000_000_000;
        s += 1;
    }
    libc::timespec {
        tv_sec: s as _,
        tv_nsec: ns as _,
    }
}

struct MqLink {
    tx: Mqd,
    rx: Mqd,
    msgsize: usize,
}

impl Link for MqLink {
    fn send(&mut self, msg: &[u8], wait: Wait) -> Result<(), LinkError> {
        let ts = timespec_at(deadline_of(wait));
        // SAFETY: the queue is open; `msg` is a live buffer of msg.len() bytes; `ts` is valid.
        let r = unsafe { libc::mq_timedsend(self.tx.0, msg.as_ptr().cast(), msg.len(), 0, &ts) };
        if r == 0 {
            return Ok(());
        }
        let e = last_err();
        match e.raw_os_error() {
            Some(libc::ETIMEDOUT) | Some(libc::EINTR) | Some(libc::EAGAIN) => {
                Err(LinkError::Timeout)
            }
            Some(libc::EMSGSIZE) => Err(LinkError::TooLarge(e.to_string())),
            _ => Err(e.into()),
        }
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        let ts = timespec_at(deadline_of(wait));
        buf.resize(self.msgsize, 0);
        // SAFETY: the queue is open; `buf` is writable for msgsize bytes, the queue's message
        // size, so any message fits; `ts` is valid.
        let r = unsafe {
            libc::mq_timedreceive(
                self.rx.0,
                buf.as_mut_ptr().cast(),
                self.msgsize,
                std::ptr::null_mut(),
                &ts,
            )
        };
        if r >= 0 {
            buf.truncate(r as usize);
            return Ok(());
        }
        let e = last_err();
        match e.raw_os_error() {
            Some(libc::ETIMEDOUT) | Some(libc::EINTR) | Some(libc::EAGAIN) => {
                Err(LinkError::Timeout)
            }
            _ => Err(e.into()),
        }
    }

    fn max_payload(&self) -> Option<usize> {
        Some(self.msgsize)
    }
}

struct MqHalf(Option<MqLink>);

impl HalfOpen for MqHalf {
    fn connect(self: Box<Self>, _wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        Ok(Box::new(self.0.expect("opened")))
    }
}

impl Mechanism for RawMq {
    fn name(&self) -> &str {
        "raw-mq"
    }
    fn description(&self) -> &str {
        "bare libc: two POSIX message queues, mq_timedsend / mq_timedreceive"
    }
    fn check_payload(&self, payload: usize) -> Result<(), String> {
        let max = read_proc("/proc/sys/fs/mqueue/msgsize_max").unwrap_or(8192);
        if payload > max && !is_root() {
            Err(format!(
                "POSIX queues take at most msgsize_max = {max} bytes per message; only root \
                 can create larger queues"
            ))
        } else {
            Ok(())
        }
    }
    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        let names: Vec<CString> = ["a2b", "b2a"]
            .iter()
            .map(|d| CString::new(format!("/{}-raw-{d}", ctx.tag)).expect("no NUL"))
            .collect();
        let n = read_proc("/proc/sys/fs/mqueue/msg_default")
            .unwrap_or(10)
            .clamp(1, 10);
        let msgsize = ctx.payload.max(8);
        raise_mq_rlimit(2 * n as u64 * (msgsize as u64 + 64));
        // SAFETY: an all-zero mq_attr is valid; the fields that matter are set below.
        let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
        attr.mq_maxmsg = n as _;
        attr.mq_msgsize = msgsize as _;
        let guard = Unlink(Vec::new());
        let mut guard = guard;
        for name in &names {
            mq_open(
                name,
                libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
                Some(&attr),
            )
            .map_err(|e| {
                let m = format!("creating a {msgsize}-byte POSIX queue: {e}");
                if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::EMFILE)
                {
                    LinkError::TooLarge(m)
                } else {
                    LinkError::Failed(m)
                }
            })?;
            guard.0.push(name.clone());
        }
        let spec = format!(
            "{} {} {msgsize}",
            names[0].to_str().expect("ascii"),
            names[1].to_str().expect("ascii")
        );
        Ok(Prepared::with_guard(spec, guard))
    }
    fn open(&self, spec: &str, side: Side, _: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        let parts: Vec<&str> = spec.split(' ').collect();
        let [a2b, b2a, size] = parts[..] else {
            return Err(LinkError::Failed(format!("bad raw-mq spec {spec:?}")));
        };
        let msgsize: usize = size
            .parse()
            .map_err(|_| LinkError::Failed(format!("bad raw-mq spec {spec:?}")))?;
        let (rx, tx) = match side {
            Side::Parent => (b2a, a2b),
            Side::Peer => (a2b, b2a),
        };
        let open = |n: &str, flags| {
            let c = CString::new(n).map_err(|_| LinkError::Failed("NUL in name".into()))?;
            mq_open(&c, flags, None).map_err(|e| LinkError::Failed(format!("opening {n}: {e}")))
        };
        Ok(Box::new(MqHalf(Some(MqLink {
            rx: open(rx, libc::O_RDONLY)?,
            tx: open(tx, libc::O_WRONLY)?,
            msgsize,
        }))))
    }
}

// ---------------------------------------------------------------------------------------
// Shared-memory slots: raw-eventfd, raw-futex, limit

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

/// The raw rows, in table order.
pub fn rows() -> Vec<Box<dyn Mechanism>> {
    vec![
        Box::new(RawSlots(SlotKind::Futex)),
        Box::new(pipe_row()),
        Box::new(RawSlots(SlotKind::Eventfd)),
        Box::new(RawMq),
        Box::new(RawUnix),
    ]
}
