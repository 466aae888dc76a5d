//! [`OpenOptions`]: how to open or create a queue.

use std::io;

use super::core::{Core, Link};
use super::error::open_error;
use super::{MessageQueue, OpenError};
use crate::name::PosixName;
use crate::open::{Access, OpenFlags, queue_setters};
use crate::registry::Ownership;
use crate::sys::mq as sys;

/// How to open or create a queue, in the style of [`std::fs::OpenOptions`].
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    access: Access,
    flags: OpenFlags,
    capacity: Option<(usize, usize)>,
    nonblocking: bool,
}

impl OpenOptions {
    /// Read and write access, open only, mode `0o600`, system-default capacity.
    pub fn new() -> OpenOptions {
        OpenOptions::default()
    }

    queue_setters! {
        umask: "applied exactly, whatever the umask",
        /// Whose existing queues to use besides the caller's own (default: only the caller's own
        /// uid; see [`crate::trust`]). A queue that this call did not create and that belongs to
        /// another user is [`OpenError::ForeignOwner`]: another user could read the messages or
        /// forge them.
        trust,
    }

    /// The capacity of a new queue: at most `max_messages` messages of at most
    /// `max_message_size` bytes each (default: the system defaults,
    /// `/proc/sys/fs/mqueue/msg_default` and `msgsize_default`). Ignored when the queue exists.
    pub fn capacity(mut self, max_messages: usize, max_message_size: usize) -> Self {
        self.capacity = Some((max_messages, max_message_size));
        self
    }

    /// Opens the descriptor `O_NONBLOCK`: blocking calls then behave like their `try_` forms.
    /// [`MessageQueue::into_async`] sets this itself.
    pub fn nonblocking(mut self, nonblocking: bool) -> Self {
        self.nonblocking = nonblocking;
        self
    }

    /// Opens (or creates) the queue `name` as configured.
    ///
    /// # Errors
    /// [`OpenError`]: an invalid name (checked before any system call), a missing queue, an
    /// existing one for `create_new`, permission denied, a capacity above the system limits.
    #[doc(alias = "mq_open")]
    pub fn open(&self, name: &str) -> Result<MessageQueue, OpenError> {
        let name = PosixName::queue(name)?;
        self.open_name(&name)
    }

    /// Like [`OpenOptions::open`] with a name already validated.
    pub fn open_name(&self, name: &PosixName) -> Result<MessageQueue, OpenError> {
        let capacity = match self.capacity {
            None => None,
            Some((m, s)) => {
                if m == 0 || s == 0 {
                    return Err(OpenError::InvalidCapacity {
                        name: name.to_string(),
                        reason: format!(
                            "max messages ({m}) and max message size ({s}) must both be at least 1"
                        ),
                    });
                }
                let to_i64 = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
                Some((to_i64(m), to_i64(s)))
            }
        };
        let mut args = sys::OpenArgs {
            read: self.access.read || !self.access.write,
            write: self.access.write,
            nonblocking: self.nonblocking,
            how: sys::Disposition::CreateNew,
            mode: self.flags.mode,
            capacity,
        };
        let err = |e: io::Error| open_error(name, self.capacity, e);
        let (fd, created) = if self.flags.create_new {
            (sys::mq_open(name, &args).map_err(err)?, true)
        } else if self.flags.create {
            // Exclusive create first, so that we know whether this handle owns the queue;
            // on EEXIST open the existing one; if it vanished in between, go round again.
            let mut attempts = 0;
            loop {
                args.how = sys::Disposition::CreateNew;
                match sys::mq_open(name, &args) {
                    Ok(fd) => break (fd, true),
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(err(e)),
                }
                args.how = sys::Disposition::Open;
                match sys::mq_open(name, &args) {
                    Ok(fd) => break (fd, false),
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) && attempts < 100 => {
                        attempts += 1;
                    }
                    Err(e) => return Err(err(e)),
                }
            }
        } else {
            args.how = sys::Disposition::Open;
            (sys::mq_open(name, &args).map_err(err)?, false)
        };
        // From here on, a queue this call created is removed again on any error (the handle
        // owns it); one it opened is left alone.
        let mut q = MessageQueue {
            fd: Some(fd),
            core: Core {
                link: Link {
                    name: Some(name.clone()),
                    ownership: Ownership::new(created, || format!("mq:{name}")),
                },
                msgsize: 0,
                readable: args.read,
                writable: args.write,
                watch_unlink: true,
            },
        };
        if created {
            // mq_open applied the umask: give exactly the mode asked for.
            sys::mq_fchmod(q.fd(), self.flags.mode).map_err(err)?;
        } else {
            let st = sys::mq_fstat(q.fd()).map_err(err)?;
            self.flags
                .trust
                .check_owner(&format!("message queue {name}"), st.uid)?;
        }
        q.core.msgsize = sys::mq_getattr(q.fd()).map_err(err)?.msgsize.max(0) as usize;
        Ok(q)
    }
}
