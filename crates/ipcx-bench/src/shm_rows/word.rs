//! `limit` and `futex`: one word.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ipcx::sync::{Futex, FutexError};
use ipcx::wait::Wait;
use serde::{Deserialize, Serialize};

use super::shared::{PING_PONG, Ready, bad_spec, posix_name, seg_err, tags, to_json};
use crate::mechanism::{HalfOpen, Link, LinkError, Mechanism, Prepared, RowContext, Side};
use crate::report::Pattern;
use crate::seqonly::{self, SeqOnly, WordCodec};

/// Spins between two looks at the clock while busy-polling.
const SPINS_PER_CHECK: u32 = 256;

/// After this long without an answer, a busy-polling side yields its CPU at every clock check,
/// so that a peer scheduled on the same CPU gets to run (on 2 CPUs a spinner must never starve
/// its peer). Between two CPUs an answer takes well under a microsecond, so this only matters
/// when the scheduler put both processes on one CPU: then a round trip costs two yields.
const YIELD_AFTER: Duration = Duration::from_micros(5);

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
