//! Rows whose implementation needs APIs that are not in this build yet (phase 2): they are
//! listed and shown as skipped with a reason, so the table always has them.

use crate::mechanism::{HalfOpen, LinkError, Mechanism, Prepared, RowContext, Side};

/// A row that is known but not implemented in this build.
#[derive(Debug, Clone)]
pub struct Placeholder {
    name: &'static str,
    description: &'static str,
    needs: &'static str,
}

impl Placeholder {
    /// A placeholder row; `needs` names what is missing (`the futex module`).
    pub const fn new(
        name: &'static str,
        description: &'static str,
        needs: &'static str,
    ) -> Placeholder {
        Placeholder {
            name,
            description,
            needs,
        }
    }

    fn reason(&self) -> String {
        format!("not available in this build yet (needs {})", self.needs)
    }
}

impl Mechanism for Placeholder {
    fn name(&self) -> &str {
        self.name
    }

    fn description(&self) -> &str {
        self.description
    }

    fn unavailable(&self) -> Option<String> {
        Some(self.reason())
    }

    fn prepare(&self, _ctx: &RowContext) -> Result<Prepared, LinkError> {
        Err(LinkError::Unsupported(self.reason()))
    }

    fn open(
        &self,
        _spec: &str,
        _side: Side,
        _payload: usize,
    ) -> Result<Box<dyn HalfOpen>, LinkError> {
        Err(LinkError::Unsupported(self.reason()))
    }
}

/// The phase-2 rows: each needs a non-channel API of ipcx.
pub const PHASE2: [Placeholder; 8] = [
    Placeholder::new(
        "limit",
        "cache-line ping-pong through a shared atomic, busy-polling: the physical floor",
        "a shared-memory mapping between the two processes",
    ),
    Placeholder::new(
        "futex",
        "process-shared futex wait/wake on a word in shared memory",
        "ipcx::sync futex",
    ),
    Placeholder::new(
        "eventfd",
        "eventfd write/read, the value carrying the sequence number",
        "ipcx::sync eventfd",
    ),
    Placeholder::new(
        "signal",
        "sigqueue with the sequence number as the signal's value",
        "ipcx::signal",
    ),
    Placeholder::new(
        "posix-sem",
        "named POSIX semaphores post/wait, data in shared memory",
        "ipcx::sem",
    ),
    Placeholder::new(
        "sysv-sem",
        "System V semaphore set semop, data in shared memory",
        "ipcx::sysv::sem",
    ),
    Placeholder::new(
        "mutex-condvar",
        "robust process-shared pthread mutex and condition variable",
        "ipcx::sync robust mutex and condvar",
    ),
    Placeholder::new(
        "pipe",
        "anonymous pipes inherited by the peer, framed",
        "ipcx::pipe and passing the fds to the peer",
    ),
];
