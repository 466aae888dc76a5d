//! The rows over named shared-memory objects of ipcx: `limit` and `futex` (one
//! [`ipcx::sync::Futex`] word), `posix-sem` and `sysv-sem` (a word handed over under two
//! semaphores), and `mutex-condvar` (a [`ipcx::sync::SharedMutex`] value and its condition
//! variable).
//!
//! The parent creates every object in [`crate::Mechanism::prepare`] (fresh names from the run's tag)
//! and keeps the creating handles as the row's guard, so it removes them when the row ends,
//! whatever happened to the peer; both sides then open them by name. These rows are
//! ping-pong only (one message in flight) and carry the sequence number only
//! ([`crate::seqonly`]).
//!
//! The word rows put the message in one 32-bit word ([`crate::seqonly::WordCodec`]): its tag says whose turn
//! it is (1: for the peer, 2: for the parent), so one cache line goes back and forth. `limit`
//! busy-polls the word on both sides (the physical floor); `futex` sleeps in `FUTEX_WAIT` and
//! is woken by `FUTEX_WAKE` (the cost of a kernel wake-up).

mod condvar;
mod sem;
mod shared;
mod word;

pub use condvar::CondvarRow;
pub use sem::{SemKind, SemRow};
pub use word::WordRow;
