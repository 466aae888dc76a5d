//! Turns the `SIGBUS` of a shared mapping whose object shrank into an error.
//!
//! Touching a page of a `MAP_SHARED` file mapping past the end of the file raises `SIGBUS`,
//! which kills the process. Any process that can write a shared-memory object or file can
//! shrink it (`ftruncate`, `truncate -s 0`), so a hostile or buggy peer could kill every
//! process that maps it. ipcx guards its own shared file mappings ([`Guard`]) like this:
//!
//! * one process-wide `SIGBUS` handler, installed once (at the first guarded mapping), and
//!   chaining to the handler that was there before for every fault outside our mappings (and
//!   for signals sent with `kill`);
//! * a fixed table of the guarded address ranges, read by the handler without locks: a slot
//!   is claimed with a compare-and-swap, filled, then published (`LIVE`) with release
//!   ordering; the handler only reads published slots;
//! * when the faulting address (`si_addr`) lies in a guarded range, the handler maps
//!   anonymous zero pages over that whole range (`mmap(MAP_FIXED)`: a plain system call,
//!   async-signal-safe; no allocation, no lock) and sets the range's `poisoned` flag. The
//!   faulting instruction then resumes on zeros, and the owner of the mapping reports the
//!   flag as an error on its next check (slow paths and waits, never the per-message path).
//!
//! The zero pages are private to this process: they are never shared again, so a poisoned
//! mapping stays poisoned until it is unmapped. When the table is full (more than
//! [`SLOTS`] guarded mappings at once), further mappings are not guarded: a truncation then
//! kills the process as before.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

/// How many mappings can be guarded at once.
pub(crate) const SLOTS: usize = 1024;

const FREE: u8 = 0;
const BUSY: u8 = 1;
const LIVE: u8 = 2;

/// One guarded range. A cache line each, so that registering a mapping never disturbs the
/// line whose `poisoned` flag another thread checks.
#[repr(align(64))]
struct Slot {
    state: AtomicU8,
    writable: AtomicBool,
    poisoned: AtomicBool,
    start: AtomicUsize,
    len: AtomicUsize,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            state: AtomicU8::new(FREE),
            writable: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
        }
    }
}

static TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];

static INSTALL: Once = Once::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The disposition of `SIGBUS` before ours, written once before our handler is installed and
/// only read afterwards.
struct Previous(UnsafeCell<MaybeUninit<libc::sigaction>>);

// SAFETY: written once, inside `INSTALL.call_once`, before the handler that reads it is
// installed and before `PREVIOUS_SET` is published (release); read only after an acquire load
// of `PREVIOUS_SET` sees it set.
unsafe impl Sync for Previous {}

static PREVIOUS: Previous = Previous(UnsafeCell::new(MaybeUninit::uninit()));
static PREVIOUS_SET: AtomicBool = AtomicBool::new(false);

fn install() {
    INSTALL.call_once(|| {
        // SAFETY: sigaction with a null new action only reads the current disposition into
        // the MaybeUninit, which nothing else accesses yet (PREVIOUS_SET is still false).
        let got = unsafe {
            libc::sigaction(
                libc::SIGBUS,
                std::ptr::null(),
                (*PREVIOUS.0.get()).as_mut_ptr(),
            )
        };
        if got != 0 {
            return;
        }
        PREVIOUS_SET.store(true, Ordering::Release);
        // SAFETY: a zeroed sigaction is a valid value (empty mask, no flags); we fill in the
        // handler (an `extern "C"` function with the SA_SIGINFO signature) and the flags.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_sigbus as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
        // SAFETY: `action` is fully initialised; the old disposition is not needed again.
        let set = unsafe { libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) };
        INSTALLED.store(set == 0, Ordering::Release);
    });
}

/// The registration of one shared mapping: while it lives, a `SIGBUS` inside the range
/// replaces the range with zero pages and sets [`Guard::poisoned`] instead of killing the
/// process. Drop it before unmapping the range.
#[derive(Debug)]
pub(crate) struct Guard {
    slot: usize,
}

impl Guard {
    /// Guards `[start, start+len)`, a shared mapping the caller owns; `None` when the handler
    /// could not be installed or the table is full (the mapping then works unguarded).
    pub(crate) fn register(start: *mut u8, len: usize, writable: bool) -> Option<Guard> {
        install();
        if !INSTALLED.load(Ordering::Acquire) {
            return None;
        }
        for (i, s) in TABLE.iter().enumerate() {
            if s.state
                .compare_exchange(FREE, BUSY, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                s.start.store(start as usize, Ordering::Relaxed);
                s.len.store(len, Ordering::Relaxed);
                s.writable.store(writable, Ordering::Relaxed);
                s.poisoned.store(false, Ordering::Relaxed);
                s.state.store(LIVE, Ordering::Release);
                return Some(Guard { slot: i });
            }
        }
        None
    }

    /// Whether a `SIGBUS` hit the range: its bytes are now zeros, private to this process.
    #[inline]
    pub(crate) fn poisoned(&self) -> bool {
        TABLE[self.slot].poisoned.load(Ordering::Acquire)
    }

    /// The mapping moved or changed size (`mremap`).
    pub(crate) fn moved(&self, start: *mut u8, len: usize) {
        let s = &TABLE[self.slot];
        s.state.store(BUSY, Ordering::Release);
        s.start.store(start as usize, Ordering::Relaxed);
        s.len.store(len, Ordering::Relaxed);
        s.state.store(LIVE, Ordering::Release);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        TABLE[self.slot].state.store(FREE, Ordering::Release);
    }
}

/// The `SIGBUS` handler. Async-signal-safe: atomics, `mmap`, `sigaction` and `raise` only.
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno is thread-local; we save it and restore it so the interrupted code never
    // sees our system calls' errno.
    let errno = unsafe { *libc::__errno_location() };
    // A fault (si_code > 0), not a signal sent by a process (SI_USER, SI_QUEUE... are <= 0).
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler; si_addr is the
    // faulting address for SIGBUS faults.
    let addr =
        unsafe { (!info.is_null() && (*info).si_code > 0).then(|| (*info).si_addr() as usize) };
    if let Some(addr) = addr
        && zero_fill(addr)
    {
        // SAFETY: restores the value saved above.
        unsafe { *libc::__errno_location() = errno };
        return;
    }
    // SAFETY: chains as the previous disposition says; see `chain`.
    unsafe { chain(sig, info, ctx) };
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Replaces the guarded range holding `addr` with zero pages; whether there was one.
fn zero_fill(addr: usize) -> bool {
    for s in &TABLE {
        if s.state.load(Ordering::Acquire) != LIVE {
            continue;
        }
        let (start, len) = (
            s.start.load(Ordering::Relaxed),
            s.len.load(Ordering::Relaxed),
        );
        if addr < start || addr - start >= len {
            continue;
        }
        let prot = if s.writable.load(Ordering::Relaxed) {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: [start, start+len) is a mapping that the slot's owner keeps until it drops
        // its Guard (it unmaps only after that), and a thread of ours is touching it right now,
        // so it is still mapped. Replacing it with anonymous zero pages of the same protection
        // keeps every address of the range valid for the accesses the owner makes; MAP_FIXED
        // only ever replaces that range.
        let r = unsafe {
            libc::mmap(
                start as *mut libc::c_void,
                len,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if r == libc::MAP_FAILED {
            return false;
        }
        s.poisoned.store(true, Ordering::Release);
        return true;
    }
    false
}

/// Hands the signal to the disposition that was there before ours.
///
/// # Safety
/// Called from the `SIGBUS` handler with its arguments.
unsafe fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let fault = !info.is_null() && {
        // SAFETY: info is the kernel's siginfo_t (checked non-null).
        unsafe { (*info).si_code > 0 }
    };
    if PREVIOUS_SET.load(Ordering::Acquire) {
        // SAFETY: written once before our handler was installed (see `Previous`).
        let prev = unsafe { (*PREVIOUS.0.get()).assume_init_ref() };
        let handler = prev.sa_sigaction;
        if handler != libc::SIG_DFL && handler != libc::SIG_IGN {
            if prev.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: an SA_SIGINFO disposition's handler has this signature; we pass the
                // arguments the kernel gave us.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(handler) };
                f(sig, info, ctx);
            } else {
                // SAFETY: a plain handler takes the signal number only.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
                f(sig);
            }
            return;
        }
        if handler == libc::SIG_IGN && !fault {
            return;
        }
    }
    // The default action: restore it, and let the signal act. A fault repeats as soon as the
    // handler returns; a sent signal is raised again (it is blocked until we return).
    // SAFETY: a zeroed sigaction with SIG_DFL (0) is the default disposition.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &dfl, std::ptr::null_mut());
        if !fault {
            libc::raise(sig);
        }
    }
}
