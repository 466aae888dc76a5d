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

mod mq;
mod slots;
mod stream;
mod sys;

use ipcx_bench::Mechanism;

use mq::RawMq;
pub use slots::{RawSlots, SlotKind};
use stream::{RawUnix, pipe_row};

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
