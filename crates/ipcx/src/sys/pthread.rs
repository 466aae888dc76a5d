//! Process-shared pthread objects placed in POSIX shared memory: robust mutexes, condition
//! variables and unnamed semaphores (`sem_init` with `pshared = 1`), plus the segment layout that
//! holds them (a checked header followed by the objects and the user's value).
//!
//! # Segment layout
//! ```text
//! offset 0     Header (all fields atomics; `ready` is written last with Release)
//! offset 128   body: the pthread objects / semaphore / futex word, then the value
//! ```
//! A segment is created by `shm_open(O_CREAT|O_EXCL)`, sized with `ftruncate` (so it starts
//! zero-filled), mapped, given its header, initialised (`pthread_mutex_init` ...) and only then
//! marked ready. Openers wait (bounded) for the ready mark and compare every header field with
//! what they expect before touching the body, so a peer built for another layout, or a segment of
//! garbage bytes, is an error and never undefined behaviour.
//!
//! # Safety
//! Every pointer handed to libc here points into a `Mapping` whose length was checked against the
//! layout when the segment was established, at an offset aligned for the object, and the mapping
//! outlives the call (the typed segments own it). Objects are initialised once, by the creator,
//! before `ready` is published; nobody else touches them before seeing `ready`.
//! The bytes of a shared segment can be written by any process allowed to open it: the value `T`
//! is `FromBytes` (valid for any bit pattern), the header is all atomics; the pthread objects
//! themselves must only be modified through these functions by trusted peers (see the `sync`
//! module docs, "Trust").
#![allow(unsafe_code)]

use std::io;
use std::marker::PhantomData;
use std::mem::{MaybeUninit, align_of, size_of};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::name::PosixName;
use crate::sys::mmap::Mapping;
use crate::sys::shm::{OpenMode, shm_open, shm_unlink};
use crate::wait::Wait;

/// `b"IPCXSYNC"` read as a little-endian u64.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"IPCXSYNC");
/// Version of the segment layout; bumped on any incompatible change.
pub(crate) const VERSION: u32 = 1;
/// Value of `Header::ready` once the creator has initialised everything.
const READY: u32 = 0x5245_4459; // "REDY"
/// Where the body starts (the header rounded up to two cache lines).
const BODY: usize = 128;
/// Largest alignment a placed value may ask for (mappings are page aligned).
pub(crate) const MAX_ALIGN: usize = 4096;

/// What kind of object a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Kind {
    Mutex = 1,
    Semaphore = 2,
    Futex = 3,
}

/// The header at offset 0 of every ipcx sync segment. All atomics: any bytes are a valid
/// header, so reading one written by a hostile or foreign process is sound.
#[repr(C)]
struct Header {
    magic: AtomicU64,
    version: AtomicU32,
    kind: AtomicU32,
    header_size: AtomicU32,
    body_offset: AtomicU32,
    total_size: AtomicU64,
    value_size: AtomicU64,
    value_align: AtomicU64,
    /// Sizes of the C library objects (catches peers built against another libc ABI).
    abi: AtomicU64,
    tag: AtomicU64,
    creator_pid: AtomicU32,
    ready: AtomicU32,
}

const _: () = assert!(size_of::<Header>() <= BODY);

/// The layout a segment must have, computed identically by creator and openers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    pub(crate) kind: Kind,
    pub(crate) total_size: usize,
    pub(crate) value_size: u64,
    pub(crate) value_align: u64,
    pub(crate) abi: u64,
    pub(crate) tag: u64,
}

/// Why a segment could not be created or opened.
#[derive(Debug)]
pub(crate) enum SegFault {
    Io(io::Error),
    BadMagic {
        found: u64,
    },
    Version {
        found: u32,
    },
    Layout {
        field: &'static str,
        expected: u64,
        found: u64,
    },
    TooSmall {
        size: u64,
        needed: u64,
    },
    NotInitialised,
    NotOwner {
        uid: u32,
    },
}

impl From<io::Error> for SegFault {
    fn from(e: io::Error) -> Self {
        SegFault::Io(e)
    }
}

impl From<rustix::io::Errno> for SegFault {
    fn from(e: rustix::io::Errno) -> Self {
        SegFault::Io(e.into())
    }
}

/// How to establish a segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Establish<'a> {
    pub(crate) name: &'a PosixName,
    pub(crate) how: OpenMode,
    pub(crate) mode: u32,
    /// How long an opener waits for a creator that is still initialising.
    pub(crate) open_timeout: Duration,
    /// An existing segment of another uid is refused ([`SegFault::NotOwner`]) unless its uid
    /// is listed here or `any_owner` is set.
    pub(crate) allowed_uids: &'a [u32],
    /// Accept an existing segment whoever owns it.
    pub(crate) any_owner: bool,
}

impl Establish<'_> {
    /// `Ok` when an existing segment (open descriptor `fd`) belongs to a trusted uid.
    fn check_owner(&self, fd: &std::os::fd::OwnedFd) -> Result<(), SegFault> {
        let uid = rustix::fs::fstat(fd)?.st_uid;
        let me = rustix::process::geteuid().as_raw();
        if self.any_owner || uid == me || self.allowed_uids.contains(&uid) {
            Ok(())
        } else {
            Err(SegFault::NotOwner { uid })
        }
    }
}

/// A mapped, checked, initialised segment.
#[derive(Debug)]
struct Segment {
    map: Mapping,
    /// Whether this process created (and initialised) the object.
    created: bool,
}

impl Segment {
    fn header(&self) -> &Header {
        // SAFETY:
        // - every Segment's mapping is at least BODY >= size_of::<Header>() bytes long (checked
        //   in `create_fresh` / `open_existing` before a Segment is built);
        // - the mapping is page aligned, so aligned for Header (align 8);
        // - Header is all atomics: any bit pattern is valid and concurrent writes by other
        //   processes are atomic accesses, not data races;
        // - the reference borrows self, which owns the mapping.
        unsafe { &*self.map.as_ptr().cast::<Header>() }
    }

    /// A pointer `off` bytes into the mapping (the caller's layout guarantees bounds).
    fn at<U>(&self, off: usize) -> *mut U {
        debug_assert!(off + size_of::<U>() <= self.map.len());
        debug_assert!(off.is_multiple_of(align_of::<U>()));
        self.map.as_ptr().wrapping_add(off).cast::<U>()
    }

    /// Creates, opens, or opens-or-creates the segment named in `e`. `init` runs once, in the
    /// creating process, after the header is written and before `ready` is published.
    fn establish(
        e: &Establish<'_>,
        spec: &Spec,
        init: impl FnOnce(&Segment) -> io::Result<()>,
    ) -> Result<Segment, SegFault> {
        match e.how {
            OpenMode::CreateNew => {
                let fd = shm_open(e.name, OpenMode::CreateNew, true, e.mode)?;
                Self::create_fresh(e.name, fd, spec, init)
            }
            OpenMode::Open => {
                let fd = shm_open(e.name, OpenMode::Open, true, e.mode)?;
                e.check_owner(&fd)?;
                Self::open_existing(fd, spec, e.open_timeout)
            }
            OpenMode::Create => {
                // Race-free open-or-create: try exclusive creation first; if it exists, open it
                // (and retry if it disappears in between).
                let mut attempts = 0;
                loop {
                    match shm_open(e.name, OpenMode::CreateNew, true, e.mode) {
                        Ok(fd) => return Self::create_fresh(e.name, fd, spec, init),
                        Err(err) if err.raw_os_error() == Some(libc::EEXIST) => {}
                        Err(err) => return Err(err.into()),
                    }
                    match shm_open(e.name, OpenMode::Open, true, e.mode) {
                        Ok(fd) => {
                            e.check_owner(&fd)?;
                            return Self::open_existing(fd, spec, e.open_timeout);
                        }
                        Err(err) if err.raw_os_error() == Some(libc::ENOENT) && attempts < 100 => {
                            attempts += 1;
                        }
                        Err(err) => return Err(err.into()),
                    }
                }
            }
        }
    }

    fn create_fresh(
        name: &PosixName,
        fd: std::os::fd::OwnedFd,
        spec: &Spec,
        init: impl FnOnce(&Segment) -> io::Result<()>,
    ) -> Result<Segment, SegFault> {
        let result = (|| {
            rustix::fs::ftruncate(&fd, spec.total_size as u64)?;
            let map = Mapping::map_shared(&fd, spec.total_size, 0, true)?;
            let seg = Segment { map, created: true };
            let h = seg.header();
            h.magic.store(MAGIC, Ordering::Relaxed);
            h.version.store(VERSION, Ordering::Relaxed);
            h.kind.store(spec.kind as u32, Ordering::Relaxed);
            h.header_size
                .store(size_of::<Header>() as u32, Ordering::Relaxed);
            h.body_offset.store(BODY as u32, Ordering::Relaxed);
            h.total_size
                .store(spec.total_size as u64, Ordering::Relaxed);
            h.value_size.store(spec.value_size, Ordering::Relaxed);
            h.value_align.store(spec.value_align, Ordering::Relaxed);
            h.abi.store(spec.abi, Ordering::Relaxed);
            h.tag.store(spec.tag, Ordering::Relaxed);
            h.creator_pid.store(std::process::id(), Ordering::Relaxed);
            init(&seg)?;
            seg.header().ready.store(READY, Ordering::Release);
            Ok::<_, SegFault>(seg)
        })();
        if result.is_err() {
            // Leave nothing half-made behind.
            let _ = shm_unlink(name);
        }
        result
    }

    fn open_existing(
        fd: std::os::fd::OwnedFd,
        spec: &Spec,
        open_timeout: Duration,
    ) -> Result<Segment, SegFault> {
        let deadline = Instant::now().checked_add(open_timeout);
        let expired = || deadline.is_some_and(|d| Instant::now() >= d);
        let size = loop {
            let size = u64::try_from(rustix::fs::fstat(&fd)?.st_size).unwrap_or(0);
            if size > 0 {
                break size;
            }
            // Size 0: the creator has not sized it yet (or it is not an ipcx segment).
            if expired() {
                return Err(SegFault::NotInitialised);
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        if size < BODY as u64 {
            return Err(SegFault::TooSmall {
                size,
                needed: spec.total_size as u64,
            });
        }
        let len = usize::try_from(size).map_err(|_| SegFault::TooSmall {
            size,
            needed: spec.total_size as u64,
        })?;
        let map = Mapping::map_shared(&fd, len, 0, true)?;
        let seg = Segment {
            map,
            created: false,
        };
        let h = seg.header();
        loop {
            let ready = h.ready.load(Ordering::Acquire);
            if ready == READY {
                break;
            }
            let magic = h.magic.load(Ordering::Relaxed);
            if (magic != 0 && magic != MAGIC) || ready != 0 {
                return Err(SegFault::BadMagic { found: magic });
            }
            if expired() {
                return Err(SegFault::NotInitialised);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let magic = h.magic.load(Ordering::Relaxed);
        if magic != MAGIC {
            return Err(SegFault::BadMagic { found: magic });
        }
        let version = h.version.load(Ordering::Relaxed);
        if version != VERSION {
            return Err(SegFault::Version { found: version });
        }
        let checks: [(&'static str, u64, u64); 8] = [
            (
                "kind",
                spec.kind as u64,
                h.kind.load(Ordering::Relaxed).into(),
            ),
            (
                "header size",
                size_of::<Header>() as u64,
                h.header_size.load(Ordering::Relaxed).into(),
            ),
            (
                "body offset",
                BODY as u64,
                h.body_offset.load(Ordering::Relaxed).into(),
            ),
            (
                "C library object sizes",
                spec.abi,
                h.abi.load(Ordering::Relaxed),
            ),
            (
                "value size",
                spec.value_size,
                h.value_size.load(Ordering::Relaxed),
            ),
            (
                "value alignment",
                spec.value_align,
                h.value_align.load(Ordering::Relaxed),
            ),
            ("type tag", spec.tag, h.tag.load(Ordering::Relaxed)),
            (
                "layout size",
                spec.total_size as u64,
                h.total_size.load(Ordering::Relaxed),
            ),
        ];
        for (field, expected, found) in checks {
            if expected != found {
                return Err(SegFault::Layout {
                    field,
                    expected,
                    found,
                });
            }
        }
        if size < spec.total_size as u64 {
            return Err(SegFault::TooSmall {
                size,
                needed: spec.total_size as u64,
            });
        }
        Ok(seg)
    }
}

fn round_up(n: usize, align: usize) -> usize {
    n.div_ceil(align) * align
}

/// Converts a pthread return code (0 or an error number) into an `io::Result`.
fn pcvt(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(ret))
    }
}

/// The absolute time on `clock` that lies `remaining` from now.
fn abs_time(clock: rustix::time::ClockId, remaining: Duration) -> libc::timespec {
    let now = rustix::time::clock_gettime(clock);
    let mut sec = now
        .tv_sec
        .saturating_add(remaining.as_secs().try_into().unwrap_or(i64::MAX));
    let mut nsec = now.tv_nsec + i64::from(remaining.subsec_nanos());
    if nsec >= 1_000_000_000 {
        nsec -= 1_000_000_000;
        sec = sec.saturating_add(1);
    }
    // SAFETY: timespec is plain data; all-zero is a valid value, then both fields are set.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    ts.tv_sec = sec as libc::time_t;
    ts.tv_nsec = nsec as _;
    ts
}

// glibc >= 2.30 has the CLOCK_MONOTONIC-capable variants; the libc crate does not declare them.
#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
mod clockwait {
    unsafe extern "C" {
        pub(super) fn pthread_mutex_clocklock(
            mutex: *mut libc::pthread_mutex_t,
            clock: libc::clockid_t,
            abstime: *const libc::timespec,
        ) -> libc::c_int;
        pub(super) fn sem_clockwait(
            sem: *mut libc::sem_t,
            clock: libc::clockid_t,
            abstime: *const libc::timespec,
        ) -> libc::c_int;
    }
}

// ---------------------------------------------------------------------------------------------
// Robust mutex + condition variable + value

/// Result of a successful lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    Clean,
    /// EOWNERDEAD: the previous owner died holding the lock; the caller now holds it.
    OwnerDied,
}

/// A segment holding a robust process-shared mutex, a process-shared condition variable using
/// `CLOCK_MONOTONIC`, and a `T`.
#[derive(Debug)]
pub(crate) struct MutexSeg<T> {
    seg: Segment,
    cond_off: usize,
    value_off: usize,
    _t: PhantomData<T>,
}

impl<T> MutexSeg<T> {
    /// Whether this handle created (and initialised) the object.
    pub(crate) fn is_creator(&self) -> bool {
        self.seg.created
    }

    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        self.seg.at(BODY)
    }

    fn cond(&self) -> *mut libc::pthread_cond_t {
        self.seg.at(self.cond_off)
    }
}

impl<T> MutexSeg<T>
where
    T: zerocopy::FromBytes + zerocopy::IntoBytes + zerocopy::KnownLayout + zerocopy::Immutable,
{
    fn offsets() -> (usize, usize, usize) {
        let cond_off = round_up(BODY + size_of::<libc::pthread_mutex_t>(), 64);
        let value_off = round_up(
            cond_off + size_of::<libc::pthread_cond_t>(),
            align_of::<T>().max(64),
        );
        let total = value_off + size_of::<T>().max(1);
        (cond_off, value_off, total)
    }

    /// The layout of this segment type, with the given type tag.
    pub(crate) fn spec(tag: u64) -> Spec {
        let (_, _, total) = Self::offsets();
        Spec {
            kind: Kind::Mutex,
            total_size: total,
            value_size: size_of::<T>() as u64,
            value_align: align_of::<T>() as u64,
            abi: ((size_of::<libc::pthread_mutex_t>() as u64) << 32)
                | size_of::<libc::pthread_cond_t>() as u64,
            tag,
        }
    }

    /// Creates and/or opens the segment. Fails with `TooSmall` style layout errors when `T`
    /// asks for an alignment above a page (checked by the caller).
    pub(crate) fn establish(e: &Establish<'_>, tag: u64) -> Result<Self, SegFault> {
        let (cond_off, value_off, _) = Self::offsets();
        let spec = Self::spec(tag);
        let seg = Segment::establish(e, &spec, |seg| {
            // SAFETY: BODY and cond_off lie inside the fresh mapping of `total` bytes and are
            // 64-aligned; the segment was just created by us (O_EXCL) and `ready` is not yet
            // published, so no other process uses these bytes; each object is initialised once.
            unsafe {
                init_mutex(seg.at(BODY))?;
                init_cond(seg.at(cond_off))?;
            }
            // The value starts zeroed (ftruncate zero-fills), a valid T since T: FromBytes.
            Ok(())
        })?;
        Ok(MutexSeg {
            seg,
            cond_off,
            value_off,
            _t: PhantomData,
        })
    }

    /// Locks the mutex, waiting as `wait` says. Errors are the raw pthread codes (EBUSY,
    /// ETIMEDOUT, ENOTRECOVERABLE, EDEADLK...).
    pub(crate) fn lock(self: &Arc<Self>, wait: Wait) -> io::Result<(RawGuard<T>, Acquired)> {
        let m = self.mutex();
        // SAFETY (all calls below): `m` points to the mutex initialised by the creator before
        // `ready` was published (checked when this segment was established); the mapping is
        // owned by `self` and lives for the call.
        let ret = match wait.remaining() {
            // SAFETY: see above.
            None => unsafe { libc::pthread_mutex_lock(m) },
            // `try_lock` is a timed lock with a deadline already passed: glibc's
            // pthread_mutex_trylock, on a robust mutex that is not recoverable, takes the lock
            // word and never gives it back (it compares the CAS result, 0, with its tid), which
            // would then block every other locker. The timed path releases it.
            Some(remaining) => {
                #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
                {
                    let ts = abs_time(rustix::time::ClockId::Monotonic, remaining);
                    // SAFETY: as above; `ts` is a valid timespec living across the call.
                    unsafe { clockwait::pthread_mutex_clocklock(m, libc::CLOCK_MONOTONIC, &ts) }
                }
                #[cfg(not(all(
                    target_os = "linux",
                    target_env = "gnu",
                    target_pointer_width = "64"
                )))]
                {
                    let ts = abs_time(rustix::time::ClockId::Realtime, remaining);
                    // SAFETY: as above; `ts` is a valid timespec living across the call.
                    unsafe { libc::pthread_mutex_timedlock(m, &ts) }
                }
            }
        };
        let ret = if wait == Wait::NoWait && ret == libc::ETIMEDOUT {
            libc::EBUSY
        } else {
            ret
        };
        let acquired = match ret {
            0 => Acquired::Clean,
            libc::EOWNERDEAD => Acquired::OwnerDied,
            e => return Err(io::Error::from_raw_os_error(e)),
        };
        Ok((
            RawGuard {
                seg: Arc::clone(self),
                armed: true,
                _not_send: PhantomData,
            },
            acquired,
        ))
    }

    /// Wakes one (or all) waiters of the condition variable.
    pub(crate) fn notify(&self, all: bool) -> io::Result<()> {
        let c = self.cond();
        // SAFETY: `c` points to the condition variable initialised before `ready` was published;
        // the mapping lives for the call.
        pcvt(unsafe {
            if all {
                libc::pthread_cond_broadcast(c)
            } else {
                libc::pthread_cond_signal(c)
            }
        })
    }
}

/// Initialises a robust, process-shared, error-checking mutex.
///
/// # Safety
/// `m` must be valid for writes of a `pthread_mutex_t`, suitably aligned, and not in use by any
/// thread or process.
unsafe fn init_mutex(m: *mut libc::pthread_mutex_t) -> io::Result<()> {
    let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
    // SAFETY: `attr` is a local initialised by pthread_mutexattr_init before any other use and
    // destroyed once; `m` is valid and unused per this function's contract.
    unsafe {
        pcvt(libc::pthread_mutexattr_init(attr.as_mut_ptr()))?;
        let a = attr.as_mut_ptr();
        let r = (|| {
            pcvt(libc::pthread_mutexattr_settype(
                a,
                libc::PTHREAD_MUTEX_ERRORCHECK,
            ))?;
            pcvt(libc::pthread_mutexattr_setpshared(
                a,
                libc::PTHREAD_PROCESS_SHARED,
            ))?;
            pcvt(libc::pthread_mutexattr_setrobust(
                a,
                libc::PTHREAD_MUTEX_ROBUST,
            ))?;
            pcvt(libc::pthread_mutex_init(m, a))
        })();
        libc::pthread_mutexattr_destroy(a);
        r
    }
}

/// Initialises a process-shared condition variable timed against `CLOCK_MONOTONIC`.
///
/// # Safety
/// `c` must be valid for writes of a `pthread_cond_t`, suitably aligned, and not in use.
unsafe fn init_cond(c: *mut libc::pthread_cond_t) -> io::Result<()> {
    let mut attr = MaybeUninit::<libc::pthread_condattr_t>::uninit();
    // SAFETY: `attr` is initialised before use and destroyed once; `c` is valid and unused per
    // this function's contract.
    unsafe {
        pcvt(libc::pthread_condattr_init(attr.as_mut_ptr()))?;
        let a = attr.as_mut_ptr();
        let r = (|| {
            pcvt(libc::pthread_condattr_setpshared(
                a,
                libc::PTHREAD_PROCESS_SHARED,
            ))?;
            pcvt(libc::pthread_condattr_setclock(a, libc::CLOCK_MONOTONIC))?;
            pcvt(libc::pthread_cond_init(c, a))
        })();
        libc::pthread_condattr_destroy(a);
        r
    }
}

/// Proof that the calling thread holds the mutex of a [`MutexSeg`]; unlocks on drop.
///
/// Holds an `Arc` of the segment, so even a guard leaked with `mem::forget` keeps the mapping
/// (which the thread's robust-futex list points into) mapped. Not `Send`: a robust mutex belongs
/// to the thread that locked it.
#[derive(Debug)]
pub(crate) struct RawGuard<T> {
    seg: Arc<MutexSeg<T>>,
    armed: bool,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: `&RawGuard<T>` only gives `&T` (T: Sync required) and no way to unlock; sharing the
// reference across threads is like sharing `&T`.
unsafe impl<T: Sync> Sync for RawGuard<T> {}

impl<T> RawGuard<T>
where
    T: zerocopy::FromBytes + zerocopy::IntoBytes + zerocopy::KnownLayout + zerocopy::Immutable,
{
    /// `pthread_mutex_consistent`: the state was repaired after the owner died.
    pub(crate) fn mark_consistent(&mut self) -> io::Result<()> {
        // SAFETY: the mutex is initialised (segment established) and held by this thread.
        pcvt(unsafe { libc::pthread_mutex_consistent(self.seg.mutex()) })
    }

    /// Forgets the lock without unlocking (after an error that left it unheld).
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }

    /// Waits on the condition variable, atomically releasing the mutex, and reacquires it.
    /// `Ok(true)` = timed out (mutex held again); EOWNERDEAD comes back as
    /// `Ok(false)`/`Err` with that code and the mutex held; ENOTRECOVERABLE (and any other
    /// error) leaves the mutex not held: the caller disarms the guard.
    pub(crate) fn cond_wait(&mut self, wait: Wait) -> io::Result<bool> {
        let m = self.seg.mutex();
        let c = self.seg.cond();
        let ret = match wait.remaining() {
            // SAFETY: both objects are initialised and this thread holds `m` (this guard).
            None => unsafe { libc::pthread_cond_wait(c, m) },
            Some(remaining) => {
                let ts = abs_time(rustix::time::ClockId::Monotonic, remaining);
                // SAFETY: as above; the condvar was created with CLOCK_MONOTONIC, matching `ts`.
                unsafe { libc::pthread_cond_timedwait(c, m, &ts) }
            }
        };
        match ret {
            0 => Ok(false),
            libc::ETIMEDOUT => Ok(true),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }
}

impl<T> Deref for RawGuard<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY:
        // - value_off + size_of::<T>() <= total size, checked against the mapping when the
        //   segment was established; value_off is aligned for T (T's alignment <= a page);
        // - any bytes are a valid T (MutexSeg requires T: FromBytes; the segment was zero-filled
        //   at creation);
        // - this guard proves the calling thread holds the lock, which every cooperating user of
        //   the value takes before touching it, so no `&mut T` exists elsewhere;
        // - the reference borrows the guard, which keeps the mapping alive through its Arc.
        unsafe { &*self.seg.seg.at::<T>(self.seg.value_off) }
    }
}

impl<T> DerefMut for RawGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` ensures this is the only reference handed out
        // through this guard, and the lock excludes every other guard.
        unsafe { &mut *self.seg.seg.at::<T>(self.seg.value_off) }
    }
}

impl<T> Drop for RawGuard<T> {
    fn drop(&mut self) {
        if self.armed {
            // SAFETY: the mutex is initialised and held by this thread (armed guard).
            unsafe {
                libc::pthread_mutex_unlock(self.seg.mutex());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Unnamed process-shared semaphore

/// A segment holding one unnamed POSIX semaphore initialised with `pshared = 1`.
#[derive(Debug)]
pub(crate) struct SemSeg {
    seg: Segment,
}

impl SemSeg {
    fn spec(tag: u64) -> Spec {
        Spec {
            kind: Kind::Semaphore,
            total_size: BODY + size_of::<libc::sem_t>(),
            value_size: size_of::<libc::sem_t>() as u64,
            value_align: align_of::<libc::sem_t>() as u64,
            abi: size_of::<libc::sem_t>() as u64,
            tag,
        }
    }

    /// Creates and/or opens the segment; a new semaphore starts at `initial`.
    pub(crate) fn establish(e: &Establish<'_>, tag: u64, initial: u32) -> Result<Self, SegFault> {
        let seg = Segment::establish(e, &Self::spec(tag), |seg| {
            // SAFETY: BODY lies inside the fresh mapping (total covers a sem_t) and is aligned;
            // nobody else can use the bytes before `ready` is published.
            crate::sys::cvt(unsafe { libc::sem_init(seg.at(BODY), 1, initial) })?;
            Ok(())
        })?;
        Ok(SemSeg { seg })
    }

    /// Whether this handle created (and initialised) the object.
    pub(crate) fn is_creator(&self) -> bool {
        self.seg.created
    }

    fn sem(&self) -> *mut libc::sem_t {
        self.seg.at(BODY)
    }

    /// Decrements, waiting as `wait` says (EAGAIN when it would block, ETIMEDOUT on timeout).
    pub(crate) fn wait(&self, wait: Wait) -> io::Result<()> {
        let s = self.sem();
        crate::sys::retry_eintr(|| {
            // SAFETY (all arms): `s` points to the semaphore initialised before `ready`; the
            // mapping is owned by self.
            let r = match wait {
                // SAFETY: see above.
                Wait::Forever => unsafe { libc::sem_wait(s) },
                // SAFETY: see above.
                Wait::NoWait => unsafe { libc::sem_trywait(s) },
                Wait::Until(deadline) => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    #[cfg(all(
                        target_os = "linux",
                        target_env = "gnu",
                        target_pointer_width = "64"
                    ))]
                    {
                        let ts = abs_time(rustix::time::ClockId::Monotonic, remaining);
                        // SAFETY: as above; `ts` lives across the call.
                        unsafe { clockwait::sem_clockwait(s, libc::CLOCK_MONOTONIC, &ts) }
                    }
                    #[cfg(not(all(
                        target_os = "linux",
                        target_env = "gnu",
                        target_pointer_width = "64"
                    )))]
                    {
                        let ts = abs_time(rustix::time::ClockId::Realtime, remaining);
                        // SAFETY: as above; `ts` lives across the call.
                        unsafe { libc::sem_timedwait(s, &ts) }
                    }
                }
            };
            crate::sys::cvt(r).map(drop)
        })
    }

    /// Increments (EOVERFLOW at the maximum).
    pub(crate) fn post(&self) -> io::Result<()> {
        // SAFETY: the semaphore is initialised and mapped for the call.
        crate::sys::cvt(unsafe { libc::sem_post(self.sem()) }).map(drop)
    }

    /// The current value.
    pub(crate) fn value(&self) -> io::Result<u32> {
        let mut v: libc::c_int = 0;
        // SAFETY: the semaphore is initialised; `v` is a valid out pointer for the call.
        crate::sys::cvt(unsafe { libc::sem_getvalue(self.sem(), &mut v) })?;
        Ok(u32::try_from(v).unwrap_or(0))
    }
}

// ---------------------------------------------------------------------------------------------
// Futex word

/// A segment holding one 32-bit futex word.
#[derive(Debug)]
pub(crate) struct FutexSeg {
    seg: Segment,
}

impl FutexSeg {
    fn spec(tag: u64) -> Spec {
        Spec {
            kind: Kind::Futex,
            total_size: BODY + size_of::<AtomicU32>(),
            value_size: 4,
            value_align: 4,
            abi: 4,
            tag,
        }
    }

    /// Creates and/or opens the segment; a new word starts at `initial`.
    pub(crate) fn establish(e: &Establish<'_>, tag: u64, initial: u32) -> Result<Self, SegFault> {
        let seg = Segment::establish(e, &Self::spec(tag), |seg| {
            word_of(seg).store(initial, Ordering::Relaxed);
            Ok(())
        })?;
        Ok(FutexSeg { seg })
    }

    /// Whether this handle created (and initialised) the object.
    pub(crate) fn is_creator(&self) -> bool {
        self.seg.created
    }

    /// The shared word.
    pub(crate) fn word(&self) -> &AtomicU32 {
        word_of(&self.seg)
    }
}

fn word_of(seg: &Segment) -> &AtomicU32 {
    // SAFETY: every futex segment is at least BODY + 4 bytes (checked when established), BODY
    // is 4-aligned, AtomicU32 is valid for any bits and tolerates concurrent atomic access
    // from other processes; the reference borrows the segment that owns the mapping.
    unsafe { &*seg.at::<AtomicU32>(BODY) }
}

// ---------------------------------------------------------------------------------------------
// Reading a segment from outside (`ipcx ls --waiters`, `ipcx deadlock`)

/// What an observer learns from the first bytes of a file in `/dev/shm`, read with `pread`
/// (no mapping, no lock taken): the kind of ipcx sync object it holds, if it is one and its
/// creator finished initialising it.
pub(crate) fn observe_kind(bytes: &[u8]) -> Option<Kind> {
    let u32_at = |off: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(
            bytes.get(off..off + 4)?.try_into().ok()?,
        ))
    };
    let magic = u64::from_ne_bytes(bytes.get(..8)?.try_into().ok()?);
    if magic != MAGIC
        || u32_at(std::mem::offset_of!(Header, version))? != VERSION
        || u32_at(std::mem::offset_of!(Header, ready))? != READY
    {
        return None;
    }
    match u32_at(std::mem::offset_of!(Header, kind))? {
        1 => Some(Kind::Mutex),
        2 => Some(Kind::Semaphore),
        3 => Some(Kind::Futex),
        _ => None,
    }
}

/// Where the C library keeps the lock word of a `pthread_mutex_t` (the word robust mutexes
/// store the owner's thread id in, and waiters sleep on with `futex`), from its start.
#[cfg(target_env = "musl")]
const MUTEX_LOCK_WORD: usize = 4; // int _m_type, then volatile int _m_lock
#[cfg(not(target_env = "musl"))]
const MUTEX_LOCK_WORD: usize = 0; // glibc: int __lock first

/// The parts of a mutex segment an observer looks at, as offsets into the file.
pub(crate) struct MutexLayout {
    /// The 32-bit lock word: owner tid, `FUTEX_OWNER_DIED`, `FUTEX_WAITERS`.
    pub(crate) lock_word: usize,
    /// glibc: the `__owner` field (`0x7fffffff` once the mutex is not recoverable).
    pub(crate) owner_field: Option<usize>,
    /// The bytes of the mutex (a futex wait anywhere in them is a wait for the lock).
    pub(crate) mutex: std::ops::Range<usize>,
    /// The bytes of the condition variable.
    pub(crate) cond: std::ops::Range<usize>,
}

/// The layout of every mutex segment (it does not depend on the value type).
pub(crate) fn mutex_layout() -> MutexLayout {
    let mutex = BODY..BODY + size_of::<libc::pthread_mutex_t>();
    let cond_off = round_up(mutex.end, 64);
    MutexLayout {
        lock_word: BODY + MUTEX_LOCK_WORD,
        owner_field: (!cfg!(target_env = "musl")).then_some(BODY + 8),
        mutex,
        cond: cond_off..cond_off + size_of::<libc::pthread_cond_t>(),
    }
}

/// Where the word of a semaphore or futex segment lies (its `sem_t` or futex word).
pub(crate) fn body_of(kind: Kind) -> std::ops::Range<usize> {
    match kind {
        Kind::Mutex => mutex_layout().mutex,
        Kind::Semaphore => BODY..BODY + size_of::<libc::sem_t>(),
        Kind::Futex => BODY..BODY + 4,
    }
}

/// The value of a `sem_t` from its bytes, where the layout is known (glibc on 64-bit targets:
/// the low 32 bits of its first 64-bit word; little-endian).
pub(crate) fn sem_value(bytes: &[u8]) -> Option<u32> {
    if cfg!(all(
        target_env = "gnu",
        target_pointer_width = "64",
        target_endian = "little"
    )) {
        Some(u32::from_ne_bytes(bytes.get(..4)?.try_into().ok()?))
    } else {
        None
    }
}
