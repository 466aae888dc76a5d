//! System V message queues (`svipc(7)`): kernel queues named by a numeric [`Key`](super::Key),
//! holding typed messages. Every message carries a positive type; a receiver picks messages by
//! type.
//!
//! ```no_run
//! use ipcx::sysv::{Key, msg::MessageQueue};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let q = MessageQueue::create_new(Key::new(0x1234))?; // removed when `q` is dropped
//! q.send(2, b"second kind")?;
//! q.send(1, b"first kind")?;
//! assert_eq!(q.recv(1)?, (1, b"first kind".to_vec())); // only type 1
//! assert_eq!(q.recv(0)?, (2, b"second kind".to_vec())); // whatever is first
//! # Ok(()) }
//! ```
//!
//! # Behaviour
//! * Open/create follow [`std::fs::OpenOptions`]: [`MessageQueue::open`] (must exist),
//!   [`MessageQueue::create`] (open or create), [`MessageQueue::create_new`] (fail if it
//!   exists), [`MessageQueue::private`] (`IPC_PRIVATE`: a new queue that no key finds; share
//!   its [`id`](MessageQueue::id) and open it with [`MessageQueue::from_id`]). Mode defaults to
//!   `0o600`.
//! * **Ownership**: System V queues live until removed, so the handle that created the queue
//!   removes it (`IPC_RMID`) when dropped, unless [`MessageQueue::persist`] was called. This
//!   matches the rest of ipcx; it is the opposite of the kernel's default, so call `persist`
//!   for queues meant to outlive their creator. `create` learns whether it created the queue by
//!   trying an exclusive create first, so opening an existing queue never removes it.
//! * Receiving selects by type, with `msgrcv(2)` semantics: selector `0` takes the first
//!   message, `n > 0` the first message of type `n`, `n < 0` the first message of the lowest
//!   type that is at most `|n|`.
//! * Timeouts: System V has no timed receive or send. `recv_timeout` and `send_timeout` poll
//!   with `IPC_NOWAIT`, sleeping between attempts with exponential backoff (50 µs doubling up
//!   to [`MAX_POLL_INTERVAL`], 1 ms, never past the deadline). They return within about 1 ms
//!   after the deadline and use little CPU (at most about a thousand cheap system calls a
//!   second), but a message that arrives during a wait is noticed up to 1 ms late. The
//!   blocking forms (`recv`, `send`) sleep in the kernel and wake at once.
//! * A message larger than the system's `msgmax` (`/proc/sys/kernel/msgmax`, default 8192) or
//!   than the queue's capacity `msg_qbytes` is [`SendError::TooLarge`], which names the limit
//!   (the kernel would otherwise fail with `EINVAL`, or block forever).
//! * A queue removed while a call waits on it ends the call with `Removed` (the channel
//!   adapter reports it as `PeerGone`): System V queues are named by id, so a removed queue is
//!   never written into silently.
//! * **Trust**: an existing queue whose owner or creator is another user is refused
//!   ([`OpenError::ForeignOwner`]) unless [`OpenOptions::trust`] allows that user. Both are
//!   checked because the owner can hand the queue to another uid (`IPC_SET`); the creator
//!   cannot change.
//!
//! # References
//! [svipc(7)](https://man7.org/linux/man-pages/man7/svipc.7.html),
//! [msgget(2)](https://man7.org/linux/man-pages/man2/msgget.2.html),
//! [msgop(2)](https://man7.org/linux/man-pages/man2/msgop.2.html),
//! [msgctl(2)](https://man7.org/linux/man-pages/man2/msgctl.2.html).

use std::time::Duration;

mod error;
mod options;
mod queue;

pub use error::{ControlError, OpenError, RecvError, SendError};
pub use options::OpenOptions;
pub use queue::{MessageQueue, Stat};

/// The longest sleep between two attempts of a timed System V send or receive.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_millis(1);
