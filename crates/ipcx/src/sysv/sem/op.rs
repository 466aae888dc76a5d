//! [`SemOp`]: one operation of a `semop` call.

/// One operation of a [`SemaphoreSet::op`](super::SemaphoreSet::op) call (`struct sembuf`).
///
/// `delta > 0` adds to the semaphore; `delta < 0` waits until the value is at least `-delta`
/// and subtracts it; `delta == 0` waits until the value is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemOp {
    /// Index of the semaphore in the set.
    pub index: u16,
    /// What to add (negative: take).
    pub delta: i16,
    /// `SEM_UNDO`: the kernel reverts this operation when the process exits.
    pub undo: bool,
    /// `IPC_NOWAIT`: fail with [`SemSetError::WouldBlock`](super::SemSetError::WouldBlock)
    /// instead of waiting.
    pub nowait: bool,
}

impl SemOp {
    /// An operation adding `delta` to semaphore `index`.
    pub fn new(index: u16, delta: i16) -> SemOp {
        SemOp {
            index,
            delta,
            undo: false,
            nowait: false,
        }
    }

    /// Take one (P): `delta = -1`.
    pub fn wait(index: u16) -> SemOp {
        SemOp::new(index, -1)
    }

    /// Give one (V): `delta = +1`.
    pub fn post(index: u16) -> SemOp {
        SemOp::new(index, 1)
    }

    /// Wait until the value is zero: `delta = 0`.
    pub fn wait_zero(index: u16) -> SemOp {
        SemOp::new(index, 0)
    }

    /// With `SEM_UNDO`.
    pub fn undo(mut self) -> SemOp {
        self.undo = true;
        self
    }

    /// With `IPC_NOWAIT`.
    pub fn nowait(mut self) -> SemOp {
        self.nowait = true;
        self
    }
}
