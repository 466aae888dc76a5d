//! `posix-sem` and `sysv-sem`: a word handed over under two semaphores.

use ipcx::sem::Semaphore;
use ipcx::sync::Futex;
use ipcx::sysv::Key;
use ipcx::sysv::sem::{SemOp, SemaphoreSet};
use ipcx::wait::Wait;
use serde::{Deserialize, Serialize};

use super::shared::{PING_PONG, Ready, bad_spec, posix_name, seg_err, tags, to_json};
use crate::mechanism::{HalfOpen, Link, LinkError, Mechanism, Prepared, RowContext, Side};
use crate::report::Pattern;
use crate::seqonly::{self, SeqOnly, WordCodec};

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
                ipcx::sysv::sem::SemSetError::Removed => {
                    LinkError::PeerGone("the semaphore set was removed".into())
                }
                e => LinkError::Failed(format!("semop: {e}")),
            }),
        }
    }

    fn wait(&self, wait: Wait) -> Result<(), LinkError> {
        match self {
            Sems::Posix { mine, .. } => mine.wait_with(wait).map_err(|e| match e {
                ipcx::sem::NamedSemError::Timeout | ipcx::sem::NamedSemError::WouldBlock => {
                    LinkError::Timeout
                }
                e => LinkError::Failed(format!("sem_wait: {e}")),
            }),
            Sems::SysV { set, mine, .. } => {
                set.op_wait(&[SemOp::wait(*mine)], wait)
                    .map_err(|e| match e {
                        ipcx::sysv::sem::SemSetError::Timeout
                        | ipcx::sysv::sem::SemSetError::WouldBlock => LinkError::Timeout,
                        ipcx::sysv::sem::SemSetError::Removed => {
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
