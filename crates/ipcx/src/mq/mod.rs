//! POSIX message queues (`mq_overview(7)`): named, kernel-held queues of discrete messages,
//! each with a priority. Higher-priority messages are received first; equal priorities keep
//! their order.
//!
//! ```no_run
//! use ipcx::mq::MessageQueue;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The creating handle removes the queue when dropped (unless `.persist()`).
//! let q = MessageQueue::options()
//!     .capacity(10, 1024)
//!     .create_new(true)
//!     .open("/jobs")?;
//! q.send(b"low", 0)?;
//! q.send(b"urgent", 5)?;
//! let (msg, prio) = q.recv()?;
//! assert_eq!((msg.as_slice(), prio), (&b"urgent"[..], 5));
//! # Ok(()) }
//! ```
//!
//! # Behaviour
//! * Open/create follow [`std::fs::OpenOptions`]: [`MessageQueue::open`] (must exist),
//!   [`MessageQueue::create`] (open or create), [`MessageQueue::create_new`] (fail if it
//!   exists); [`OpenOptions`] sets the mode (default `0o600`), the capacity and the access.
//! * **Ownership**: the handle that actually created the queue unlinks it when dropped, unless
//!   [`MessageQueue::persist`] was called. `create` finds out whether it created the queue by
//!   trying an exclusive create first, so a `create` that opened an existing queue never
//!   unlinks it. Unlinking only removes the name: processes that have the queue open keep using
//!   it until they close it.
//! * **Mode**: a new queue gets exactly the mode asked for (`fchmod` after `mq_open`, which
//!   applies the umask).
//! * **Trust**: an existing queue that belongs to another user is refused
//!   ([`OpenError::ForeignOwner`], checked with `fstat` on the descriptor) unless
//!   [`OpenOptions::trust`] allows that user: its owner could read the messages or forge them.
//! * **A receiver that is gone**: a queue has no count of readers, but a receiver that goes
//!   away removes the queue it created, and a removed queue can never be opened again. A send
//!   that would block waits in slices of 100 ms and, between them, checks whether the queue's
//!   name was removed (`fstat`: the link count drops to 0); if so it fails with
//!   [`SendError::Unlinked`], counting the messages stranded in the queue. A send that finds
//!   room costs nothing extra, so a sender that never blocks asks
//!   [`MessageQueue::undelivered`] at the end of its batch. A queue whose name still exists is
//!   a valid meeting point (a receiver may come later): a send blocked on it waits on (use a
//!   timeout). Descriptors adopted with `From<OwnedFd>` are not watched (the queue may have
//!   been unlinked on purpose), and an [`AsyncMessageQueue`] checks only when it tries to send,
//!   not while it waits for room.
//! * Every blocking operation comes as `op`, `try_op` (never blocks) and `op_timeout`.
//!   Timeouts are turned into an absolute `CLOCK_REALTIME` deadline for `mq_timedsend` /
//!   `mq_timedreceive`, as those calls require, so a wall-clock step during the wait shortens or
//!   lengthens it.
//! * Capacity: unprivileged processes may create queues of at most
//!   `/proc/sys/fs/mqueue/msg_max` messages (default 10) of at most
//!   `/proc/sys/fs/mqueue/msgsize_max` bytes (default 8192); a larger request is
//!   [`OpenError::CapacityTooLarge`], naming the limit. Privileged processes (`CAP_SYS_RESOURCE`)
//!   may exceed them, up to the kernel's hard limits.
//! * The descriptor is pollable ([`AsFd`](std::os::fd::AsFd)); with the `tokio` feature,
//!   [`AsyncMessageQueue`] offers `async` send and receive.
//!
//! # References
//! [mq_overview(7)](https://man7.org/linux/man-pages/man7/mq_overview.7.html),
//! [mq_open(3)](https://man7.org/linux/man-pages/man3/mq_open.3.html),
//! [mq_send(3)](https://man7.org/linux/man-pages/man3/mq_send.3.html),
//! [mq_receive(3)](https://man7.org/linux/man-pages/man3/mq_receive.3.html),
//! [mq_getattr(3)](https://man7.org/linux/man-pages/man3/mq_getattr.3.html).

mod core;
mod error;
mod options;
mod queue;
#[cfg(feature = "tokio")]
mod tokio;

#[cfg(feature = "tokio")]
pub use self::tokio::AsyncMessageQueue;
pub use error::{OpenError, RecvError, SendError};
pub use options::OpenOptions;
pub use queue::{Attributes, MessageQueue};
