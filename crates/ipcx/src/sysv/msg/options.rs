//! [`OpenOptions`]: how to open or create a queue.

use std::io;

use super::error::open_error;
use super::{MessageQueue, OpenError};
use crate::open::{Access, OpenFlags, queue_setters};
use crate::sys::sysv_msg as sys;
use crate::sysv::Key;

/// How to open or create a queue, in the style of [`std::fs::OpenOptions`].
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    access: Access,
    flags: OpenFlags,
    max_bytes: Option<u64>,
}

impl OpenOptions {
    /// Read and write access, open only, mode `0o600`.
    pub fn new() -> OpenOptions {
        OpenOptions::default()
    }

    queue_setters! {
        umask: "System V IPC ignores the umask",
        /// Whose existing queues to use besides the caller's own (default: only the caller's own
        /// uid; see [`crate::trust`]). A queue that this call did not create and whose owner or
        /// creator is another user is [`OpenError::ForeignOwner`]. Checking needs `IPC_STAT`, so
        /// a queue whose mode denies the caller read access is [`OpenError::PermissionDenied`].
        trust,
    }

    /// The capacity in bytes (`msg_qbytes`, set with `IPC_SET`) of a queue this call creates
    /// (default `/proc/sys/kernel/msgmnb`). Raising it above that limit needs privilege.
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = Some(max_bytes);
        self
    }

    fn access(&self) -> i32 {
        (if self.access.read { 0o400 } else { 0 }) | (if self.access.write { 0o200 } else { 0 })
    }

    /// Opens (or creates) the queue with `key` as configured. [`Key::PRIVATE`] always creates
    /// a new private queue.
    ///
    /// # Errors
    /// [`OpenError`]: a missing queue, an existing one for `create_new`, permission denied,
    /// the system limit on queues.
    #[doc(alias = "msgget")]
    pub fn open(&self, key: Key) -> Result<MessageQueue, OpenError> {
        let err = |e: io::Error| open_error(key, e);
        let create_flags = libc::IPC_CREAT | libc::IPC_EXCL | self.flags.mode as i32;
        let (id, created) = if key == Key::PRIVATE {
            (
                sys::msgget(key.0, libc::IPC_CREAT | self.flags.mode as i32).map_err(err)?,
                true,
            )
        } else if self.flags.create_new {
            (sys::msgget(key.0, create_flags).map_err(err)?, true)
        } else if self.flags.create {
            let mut attempts = 0;
            loop {
                match sys::msgget(key.0, create_flags) {
                    Ok(id) => break (id, true),
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(err(e)),
                }
                match sys::msgget(key.0, self.access()) {
                    Ok(id) => break (id, false),
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) && attempts < 100 => {
                        attempts += 1;
                    }
                    Err(e) => return Err(err(e)),
                }
            }
        } else {
            (sys::msgget(key.0, self.access()).map_err(err)?, false)
        };
        if !created {
            let ds = sys::stat(id).map_err(err)?;
            let what = format!("System V message queue {key}");
            crate::sysv::check_owner(&self.flags.trust, &what, ds.uid, ds.cuid)?;
        }
        let q = MessageQueue::new(id, key, created);
        if created && let Some(max) = self.max_bytes {
            // On failure `q` is dropped, which removes the queue just created.
            q.set_max_bytes(max)
                .map_err(|source| OpenError::MaxBytes { key, source })?;
        }
        Ok(q)
    }
}
