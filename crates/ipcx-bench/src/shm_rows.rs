//! The rows over named shared-memory objects of ipcx: `limit` and `futex` (one
//! [`ipcx::sync::Futex`] word), `posix-sem` and `sysv-sem` (a word handed over under two
//! semaphores), and `mutex-condvar` (a [`ipcx::sync::SharedMutex`] value and its condition
//! variable).
//!
//! The parent creates every object in [`Mechanism::prepare`] (fresh names from the run's tag)
//! and keeps the creating handles as the row's guard, so it removes them when the row ends,
//! whatever happened to the peer; both sides then open them by name. These rows are
//! ping-pong only (one message in flight) and carry the sequence number only
//! ([`crate::seqonly`]).
//!
//! The word rows put the message in one 32-bit word ([`WordCodec`]): its tag says whose turn
//! it is (1: for the peer, 2: for the parent), so one cache line goes back and forth. `limit`
//! busy-polls the word on both sides (the physical floor); `futex` sleeps in `FUTEX_WAIT` and
//! is woken by `FUTEX_WAKE` (the cost of a kernel wake-up).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ipcx::sem::Semaphore;
use ipcx::sync::{Futex, FutexError, LockError, SegmentError, SharedMutex};
use ipcx::sysv::Key;
use ipcx::sysv::sem::{SemOp, SemaphoreSet};
use ipcx::wait::Wait;
use serde::{Deserialize, Serialize};

use crate::mechanism::{HalfOpen, Link, LinkError, Mechanism, Prepared, RowContext, Side};
use crate::report::Pattern;
use crate::seqonly::{self, SeqOnly, WordCodec};

/// The tag of a word meant for the peer.
const FOR_PEER: u32 = 1;
/// The tag of a word meant for the parent.
const FOR_PARENT: u32 = 2;

/// Spins between two looks at the clock while busy-polling.
const SPINS_PER_CHECK: u32 = 256;

/// After this long without an answer, a busy-polling side yields its CPU at every clock check,
/// so that a peer scheduled on the same CPU gets to run (on 2 CPUs a spinner must never starve
/// its peer). Between two CPUs an answer takes well under a microsecond, so this only matters
/// when the scheduler put both processes on one CPU: then a round trip costs two yields.
const YIELD_AFTER: Duration = Duration::from_micros(5);

const PING_PONG: &[Pattern] = &[Pattern::PingPong];

/// (tag of what this side receives, tag of what it sends).
fn tags(side: Side) -> (u32, u32) {
    match side {
        Side::Parent => (FOR_PARENT, FOR_PEER),
        Side::Peer => (FOR_PEER, FOR_PARENT),
    }
}

fn seg_err(what: &str, e: SegmentError) -> LinkError {
    LinkError::Failed(format!("{what}: {e}"))
}

fn bad_spec(e: serde_json::Error) -> LinkError {
    LinkError::Failed(format!("bad row spec: {e}"))
}

fn to_json<T: Serialize>(spec: &T) -> String {
    serde_json::to_string(spec).expect("specs serialise")
}

/// A fresh POSIX name for object `what` of this row.
fn posix_name(ctx: &RowContext, what: &str) -> String {
    format!("/{}-{what}", ctx.tag)
}

// ---------------------------------------------------------------------------------------------
// limit and futex: one word

/// `limit` (busy-polling) or `futex` (sleeping): a one-word mailbox in a [`Futex`] segment.
#[derive(Debug, Clone, Copy)]
pub struct WordRow {
    blocking: bool,
}

impl WordRow {
    /// The `limit` row: both sides busy-poll the word.
    pub fn limit() -> WordRow {
        WordRow { blocking: false }
    }

    /// The `futex` row: both sides sleep on the word and wake each other.
    pub fn futex() -> WordRow {
        WordRow { blocking: true }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct WordSpec {
    word: String,
}

impl Mechanism for WordRow {
    fn name(&self) -> &str {
        if self.blocking { "futex" } else { "limit" }
    }

    fn description(&self) -> &str {
        if self.blocking {
            "futex wait/wake on a word in shared memory (ipcx::sync::Futex): a kernel wake-up \
             each way"
        } else {
            "cache-line ping-pong through a shared atomic word, both sides busy-polling \
             (ipcx::sync::Futex word): the physical floor"
        }
    }

    fn check_payload(&self, payload: usize) -> Result<(), String> {
        seqonly::check_payload(self.name(), payload)
    }

    fn patterns(&self) -> &[Pattern] {
        PING_PONG
    }

    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        let word = posix_name(ctx, self.name());
        let f = Futex::create_new(&word).map_err(|e| seg_err(&word, e))?;
        Ok(Prepared::with_guard(to_json(&WordSpec { word }), f))
    }

    fn open(&self, spec: &str, side: Side, payload: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        let spec: WordSpec = serde_json::from_str(spec).map_err(bad_spec)?;
        let f = Futex::open(&spec.word).map_err(|e| seg_err(&spec.word, e))?;
        let (mine, theirs) = tags(side);
        Ok(Box::new(Ready(Box::new(WordLink {
            f,
            mine,
            theirs,
            last: 0,
            codec: WordCodec::new(),
            seq: SeqOnly::new(payload),
            blocking: self.blocking,
        }))))
    }
}

/// A half that needs no connection step: the objects are open already.
struct Ready(Box<dyn Link>);

impl HalfOpen for Ready {
    fn connect(self: Box<Self>, _wait: Wait) -> Result<Box<dyn Link>, LinkError> {
        Ok(self.0)
    }
}

struct WordLink {
    f: Futex,
    mine: u32,
    theirs: u32,
    /// The last word received (a message is a word for this side that differs from it).
    last: u32,
    codec: WordCodec,
    seq: SeqOnly,
    blocking: bool,
}

impl WordLink {
    fn take(&mut self, w: u32, buf: &mut Vec<u8>) -> bool {
        if WordCodec::tag(w) != self.mine || w == self.last {
            return false;
        }
        self.last = w;
        let seq = self.codec.unpack(w);
        self.seq.fill(buf, seq);
        true
    }

    /// Busy-polls the word until a message arrives or `wait` runs out.
    fn spin(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        let mut spins: u32 = 0;
        let mut since: Option<Instant> = None;
        loop {
            let w = self.f.word().load(Ordering::Acquire);
            if self.take(w, buf) {
                return Ok(());
            }
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(SPINS_PER_CHECK) {
                let now = Instant::now();
                match wait {
                    Wait::NoWait => return Err(LinkError::Timeout),
                    Wait::Until(d) if now >= d => return Err(LinkError::Timeout),
                    _ => {}
                }
                if now.duration_since(*since.get_or_insert(now)) > YIELD_AFTER {
                    std::thread::yield_now();
                }
            }
        }
    }

    /// Sleeps on the word until a message arrives or `wait` runs out.
    fn sleep(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        loop {
            let w = self.f.load();
            if self.take(w, buf) {
                return Ok(());
            }
            match self.f.wait_with(w, wait) {
                Ok(_) => {}
                Err(FutexError::Timeout | FutexError::WouldBlock) => {
                    return Err(LinkError::Timeout);
                }
                Err(e) => return Err(LinkError::Failed(format!("futex wait: {e}"))),
            }
        }
    }
}

impl Link for WordLink {
    fn send(&mut self, msg: &[u8], _wait: Wait) -> Result<(), LinkError> {
        let seq = self.seq.seq(msg)?;
        self.f.store(WordCodec::pack(seq, self.theirs));
        if self.blocking {
            self.f
                .wake_one()
                .map_err(|e| LinkError::Failed(format!("futex wake: {e}")))?;
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        if self.blocking {
            self.sleep(buf, wait)
        } else {
            self.spin(buf, wait)
        }
    }

    fn max_payload(&self) -> Option<usize> {
        Some(seqonly::MAX_PAYLOAD)
    }
}

// ---------------------------------------------------------------------------------------------
// posix-sem and sysv-sem: a word handed over under two semaphores

/// Which semaphores a [`SemRow`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SemKind {
    /// Two named POSIX semaphores (`ipcx::sem::Semaphore`).
    Posix,
    /// One System V set of two semaphores (`ipcx::sysv::sem::SemaphoreSet`).
    SysV,
}

/// `posix-sem` / `sysv-sem`: the sender writes the word, then posts the receiver's semaphore;
/// the receiver waits on its semaphore, then reads the word.
#[derive(Debug, Clone, Copy)]
pub struct SemRow {
    kind: SemKind,
}

impl SemRow {
    /// The row for `kind`.
    pub fn new(kind: SemKind) -> SemRow {
        SemRow { kind }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct SemSpec {
    word: String,
    /// POSIX: the semaphore the peer waits on, then the parent's.
    names: Option<(String, String)>,
    /// System V: the set's id (semaphore 0 for the peer, 1 for the parent).
    set_id: Option<i32>,
}

impl Mechanism for SemRow {
    fn name(&self) -> &str {
        match self.kind {
            SemKind::Posix => "posix-sem",
            SemKind::SysV => "sysv-sem",
        }
    }

    fn description(&self) -> &str {
        match self.kind {
            SemKind::Posix => {
                "named POSIX semaphores post/wait (ipcx::sem), the sequence number in a shared word"
            }
            SemKind::SysV => {
                "System V semaphore set semop (ipcx::sysv::sem), the sequence number in a shared \
                 word"
            }
        }
    }

    fn check_payload(&self, payload: usize) -> Result<(), String> {
        seqonly::check_payload(self.name(), payload)
    }

    fn patterns(&self) -> &[Pattern] {
        PING_PONG
    }

    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        let word = posix_name(ctx, &format!("{}-word", self.name()));
        let f = Futex::create_new(&word).map_err(|e| seg_err(&word, e))?;
        match self.kind {
            SemKind::Posix => {
                let a = posix_name(ctx, "sem-peer");
                let b = posix_name(ctx, "sem-parent");
                let sa = Semaphore::create_new(&a, 0)
                    .map_err(|e| LinkError::Failed(format!("creating semaphore {a}: {e}")))?;
                let sb = Semaphore::create_new(&b, 0)
                    .map_err(|e| LinkError::Failed(format!("creating semaphore {b}: {e}")))?;
                let spec = SemSpec {
                    word,
                    names: Some((a, b)),
                    set_id: None,
                };
                Ok(Prepared::with_guard(to_json(&spec), (f, sa, sb)))
            }
            SemKind::SysV => {
                let set = SemaphoreSet::create_new(Key::PRIVATE, 2).map_err(|e| {
                    LinkError::Failed(format!("creating a System V semaphore set: {e}"))
                })?;
                let spec = SemSpec {
                    word,
                    names: None,
                    set_id: Some(set.id()),
                };
                Ok(Prepared::with_guard(to_json(&spec), (f, set)))
            }
        }
    }

    fn open(&self, spec: &str, side: Side, payload: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        let spec: SemSpec = serde_json::from_str(spec).map_err(bad_spec)?;
        let f = Futex::open(&spec.word).map_err(|e| seg_err(&spec.word, e))?;
        let sems = match (self.kind, spec.names, spec.set_id) {
            (SemKind::Posix, Some((for_peer, for_parent)), _) => {
                let open = |n: &str| {
                    Semaphore::open(n)
                        .map_err(|e| LinkError::Failed(format!("opening semaphore {n}: {e}")))
                };
                let (mine, theirs) = match side {
                    Side::Parent => (open(&for_parent)?, open(&for_peer)?),
                    Side::Peer => (open(&for_peer)?, open(&for_parent)?),
                };
                Sems::Posix { mine, theirs }
            }
            (SemKind::SysV, _, Some(id)) => {
                let set = SemaphoreSet::from_id(id).map_err(|e| {
                    LinkError::Failed(format!("opening System V semaphore set {id}: {e}"))
                })?;
                let (mine, theirs) = match side {
                    Side::Parent => (1, 0),
                    Side::Peer => (0, 1),
                };
                Sems::SysV { set, mine, theirs }
            }
            _ => return Err(LinkError::Failed("bad semaphore row spec".into())),
        };
        let (mine, theirs) = tags(side);
        Ok(Box::new(Ready(Box::new(SemLink {
            f,
            sems,
            mine,
            theirs,
            codec: WordCodec::new(),
            seq: SeqOnly::new(payload),
        }))))
    }
}

enum Sems {
    Posix {
        mine: Semaphore,
        theirs: Semaphore,
    },
    SysV {
        set: SemaphoreSet,
        mine: u16,
        theirs: u16,
    },
}

impl Sems {
    fn post(&self) -> Result<(), LinkError> {
        match self {
            Sems::Posix { theirs, .. } => theirs
                .post()
                .map_err(|e| LinkError::Failed(format!("sem_post: {e}"))),
            Sems::SysV { set, theirs, .. } => set.post(*theirs).map_err(|e| match e {
                ipcx::sysv::sem::Error::Removed => {
                    LinkError::PeerGone("the semaphore set was removed".into())
                }
                e => LinkError::Failed(format!("semop: {e}")),
            }),
        }
    }

    fn wait(&self, wait: Wait) -> Result<(), LinkError> {
        match self {
            Sems::Posix { mine, .. } => mine.wait_with(wait).map_err(|e| match e {
                ipcx::sem::Error::Timeout | ipcx::sem::Error::WouldBlock => LinkError::Timeout,
                e => LinkError::Failed(format!("sem_wait: {e}")),
            }),
            Sems::SysV { set, mine, .. } => {
                set.op_wait(&[SemOp::wait(*mine)], wait)
                    .map_err(|e| match e {
                        ipcx::sysv::sem::Error::Timeout | ipcx::sysv::sem::Error::WouldBlock => {
                            LinkError::Timeout
                        }
                        ipcx::sysv::sem::Error::Removed => {
                            LinkError::PeerGone("the semaphore set was removed".into())
                        }
                        e => LinkError::Failed(format!("semop: {e}")),
                    })
            }
        }
    }
}

struct SemLink {
    f: Futex,
    sems: Sems,
    mine: u32,
    theirs: u32,
    codec: WordCodec,
    seq: SeqOnly,
}

impl Link for SemLink {
    fn send(&mut self, msg: &[u8], _wait: Wait) -> Result<(), LinkError> {
        let seq = self.seq.seq(msg)?;
        self.f.store(WordCodec::pack(seq, self.theirs));
        self.sems.post()
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        self.sems.wait(wait)?;
        let w = self.f.load();
        if WordCodec::tag(w) != self.mine {
            return Err(LinkError::Failed(format!(
                "the semaphore was posted but the shared word {w:#x} is not addressed to this side"
            )));
        }
        let seq = self.codec.unpack(w);
        self.seq.fill(buf, seq);
        Ok(())
    }

    fn max_payload(&self) -> Option<usize> {
        Some(seqonly::MAX_PAYLOAD)
    }
}

// ---------------------------------------------------------------------------------------------
// mutex-condvar

/// `mutex-condvar`: a [`SharedMutex`] holding `[sequence number, whose turn]`; the sender
/// writes it under the lock and notifies the condition variable, the receiver waits on the
/// condition variable until it is its turn.
#[derive(Debug, Clone, Copy, Default)]
pub struct CondvarRow;

#[derive(Debug, Serialize, Deserialize)]
struct CondvarSpec {
    name: String,
}

/// The shared value: the sequence number and the tag of the side it is for (0: taken).
type Slot = [u64; 2];

impl Mechanism for CondvarRow {
    fn name(&self) -> &str {
        "mutex-condvar"
    }

    fn description(&self) -> &str {
        "robust process-shared mutex and condition variable (ipcx::sync::SharedMutex), the \
         sequence number in the guarded value"
    }

    fn check_payload(&self, payload: usize) -> Result<(), String> {
        seqonly::check_payload(self.name(), payload)
    }

    fn patterns(&self) -> &[Pattern] {
        PING_PONG
    }

    fn prepare(&self, ctx: &RowContext) -> Result<Prepared, LinkError> {
        let name = posix_name(ctx, "mutex");
        let m = SharedMutex::<Slot>::create_new(&name).map_err(|e| seg_err(&name, e))?;
        Ok(Prepared::with_guard(to_json(&CondvarSpec { name }), m))
    }

    fn open(&self, spec: &str, side: Side, payload: usize) -> Result<Box<dyn HalfOpen>, LinkError> {
        let spec: CondvarSpec = serde_json::from_str(spec).map_err(bad_spec)?;
        let m = SharedMutex::<Slot>::open(&spec.name).map_err(|e| seg_err(&spec.name, e))?;
        let (mine, theirs) = tags(side);
        Ok(Box::new(Ready(Box::new(CondvarLink {
            m,
            mine: u64::from(mine),
            theirs: u64::from(theirs),
            seq: SeqOnly::new(payload),
        }))))
    }
}

struct CondvarLink {
    m: SharedMutex<Slot>,
    mine: u64,
    theirs: u64,
    seq: SeqOnly,
}

fn lock_err<T>(e: LockError<'_, T>) -> LinkError {
    match e {
        LockError::Timeout | LockError::WouldBlock => LinkError::Timeout,
        LockError::OwnerDied(_) | LockError::NotRecoverable => {
            LinkError::PeerGone("the other side died holding the shared mutex".into())
        }
        e => LinkError::Failed(format!("shared mutex: {e}")),
    }
}

impl Link for CondvarLink {
    fn send(&mut self, msg: &[u8], wait: Wait) -> Result<(), LinkError> {
        let seq = self.seq.seq(msg)?;
        let mut g = self.m.lock_wait(wait).map_err(lock_err)?;
        *g = [seq, self.theirs];
        drop(g);
        self.m
            .notify_one()
            .map_err(|e| LinkError::Failed(format!("notifying the condition variable: {e}")))
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), LinkError> {
        let g = self.m.lock_wait(wait).map_err(lock_err)?;
        let left = wait.remaining().unwrap_or(Duration::from_secs(3600));
        let mine = self.mine;
        let (mut g, res) = g
            .wait_timeout_while(left, |slot| slot[1] != mine)
            .map_err(lock_err)?;
        if res.timed_out() {
            return Err(LinkError::Timeout);
        }
        let seq = g[0];
        g[1] = 0;
        drop(g);
        self.seq.fill(buf, seq);
        Ok(())
    }

    fn max_payload(&self) -> Option<usize> {
        Some(seqonly::MAX_PAYLOAD)
    }
}
