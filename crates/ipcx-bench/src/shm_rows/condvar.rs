//! `mutex-condvar`: a shared mutex's value and its condition variable.

use std::time::Duration;

use ipcx::sync::{LockError, SharedMutex};
use ipcx::wait::Wait;
use serde::{Deserialize, Serialize};

use super::shared::{PING_PONG, Ready, bad_spec, posix_name, seg_err, tags, to_json};
use crate::mechanism::{HalfOpen, Link, LinkError, Mechanism, Prepared, RowContext, Side};
use crate::report::Pattern;
use crate::seqonly::{self, SeqOnly};

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
